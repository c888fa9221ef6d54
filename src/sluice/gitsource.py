"""Check out a job's ``git_source`` (``git_url`` + one of ``git_branch``, ``git_tag``, ``git_commit``).

One checkout per job run, shared by its tasks (Databricks checks the commit out once per run, so every
task sees the same code). ``git`` is run as a subprocess; the URL is one of ``https://``, ``http://``,
``ssh://``, scp-like ``[user@]host:path``, ``file://`` or a local path (the last two only where local
sources are allowed: :func:`url_problem`). Credentials come from the user's git configuration; git never
prompts (``GIT_TERMINAL_PROMPT=0``), so a private repository without credentials fails fast.

Nothing a job says reaches git as an option: URLs and revisions are checked (:func:`url_problem`,
:func:`ref_problem`: nothing starting with ``-``), every command puts ``--`` before the URL (or gives the
revision as ``--branch=<ref>``), and the commit a run checks out is git's own full sha.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from sluice.errors import SluiceError

#: Seconds a checkout may take by default (the driver's ``git_timeout`` setting overrides it).
GIT_TIMEOUT = 300.0
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_HEX_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
#: ``scheme://`` of a URL; schemes Sluice checks out from (``file`` only where local sources are allowed).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
REMOTE_SCHEMES = ("https", "http", "ssh")
#: ``[user@]host:path`` as git reads it (no ``/`` before the first ``:``).
_SCP = re.compile(r"(?:(?P<user>[^@/:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\[\]]+):(?P<path>.*)", re.S)
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*)|\[[0-9A-Fa-f:.]+\]")
#: What git forbids in a ref name (``git check-ref-format``), besides control characters and spaces.
_REF_FORBIDDEN = ("..", "@{", "~", "^", ":", "?", "*", "[", "\\")
#: ``<transport>::<address>``: git runs the remote helper ``git-remote-<transport>``.
_HELPER = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.-]*::")
REMOTE_FORMS = "https://, http://, ssh:// or git@host:path"


class RepositoryCheckoutError(SluiceError):
    """The repository or revision could not be checked out (termination code REPOSITORY_CHECKOUT_FAILED)."""

    def __init__(self, message: str, *, git_url: str, revision: str | None) -> None:
        super().__init__(message)
        self.git_url = git_url
        self.revision = revision


def checkout(
    git_url: str,
    *,
    dest: Path,
    branch: str | None = None,
    tag: str | None = None,
    commit: str | None = None,
    timeout: float = GIT_TIMEOUT,
) -> str:
    """Clone ``git_url`` into ``dest`` (which must not exist or be empty) at the revision; return its sha.

    Without a revision the remote's default branch is checked out. Clones are shallow where that helps
    (remote URLs and a branch, tag or full commit sha). On failure ``dest`` is removed again and a
    :class:`RepositoryCheckoutError` names the URL, the revision and git's own message.
    """
    given = [name for name, value in (("branch", branch), ("tag", tag), ("commit", commit)) if value]
    if len(given) > 1:
        raise RepositoryCheckoutError(
            f"git_source for {git_url}: give one of git_branch, git_tag, git_commit, "
            f"not {' and '.join(given)}",
            git_url=git_url,
            revision=None,
        )
    revision = branch or tag or commit
    described = f"{given[0]} '{revision}'" if given else "the default branch"
    problems = git_source_problems(
        {"git_url": git_url, "git_branch": branch, "git_tag": tag, "git_commit": commit}
    )
    if problems:
        raise RepositoryCheckoutError(
            f"cannot check out {described} of {git_url}: "
            + "; ".join(f"git_source.{field}: {message}" for field, message in problems),
            git_url=git_url,
            revision=revision,
        )
    if dest.exists() and any(dest.iterdir()):
        raise RepositoryCheckoutError(
            f"cannot check out {git_url} into {dest}: the directory is not empty",
            git_url=git_url,
            revision=revision,
        )
    created = not dest.exists()
    try:
        if commit:
            _checkout_commit(git_url, commit, dest, timeout)
        else:
            _clone(git_url, branch or tag, dest, timeout)
        return _git(["rev-parse", "HEAD"], cwd=dest, timeout=timeout).strip()
    except _GitFailed as exc:
        _remove(dest, keep_dir=not created)
        raise RepositoryCheckoutError(
            f"could not check out {described} of {git_url}: {exc.message}",
            git_url=git_url,
            revision=revision,
        ) from None


def url_kind(git_url: str) -> str | None:
    """``remote`` (https, http, ssh, scp-like), ``local`` (file:// or a path) or None: not a URL Sluice
    checks out from (another scheme, a remote helper ``<transport>::<address>``, an option)."""
    if not git_url or git_url.startswith("-") or _has_control(git_url):
        return None
    scheme = _SCHEME.match(git_url)
    if scheme is not None:
        name = scheme[1].lower()
        if name == "file":
            return "local"
        if name not in REMOTE_SCHEMES:
            return None
        return "remote" if _remote_url_ok(git_url) else None
    colon, slash = git_url.find(":"), git_url.find("/")
    if colon < 0 or 0 <= slash < colon:
        return "local"  # git's rule: no ':' before the first '/' is a path
    if _HELPER.match(git_url):
        return None
    scp = _SCP.fullmatch(git_url)
    if scp is None or not scp["path"] or not _HOST.fullmatch(scp["host"]):
        return None
    user: str = scp["user"] or ""
    return None if user.startswith("-") else "remote"


def _remote_url_ok(git_url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(git_url)
        host, user = parts.hostname or "", parts.username or ""
    except ValueError:
        return False
    return bool(host) and not host.startswith("-") and not user.startswith("-")


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def url_problem(git_url: str, *, allow_local: bool = True) -> str | None:
    """Why ``git_url`` cannot be checked out (None: it can). ``allow_local``: local paths and ``file://``
    are allowed (``sluice run``; ``sluice serve`` with ``allow_local_git_sources``)."""
    kind = url_kind(git_url)
    if kind == "remote" or (kind == "local" and allow_local):
        return None
    if kind == "local":
        return (
            f"'{git_url}' is a local repository and this server does not allow local git sources; "
            f"use a remote URL ({REMOTE_FORMS}), or allow them on the server "
            "(SLUICE_ALLOW_LOCAL_GIT_SOURCES=true, or allow_local_git_sources = true under [server])"
        )
    if git_url.startswith("-"):
        why = "it begins with '-', which git would read as an option"
    elif not git_url.strip():
        why = "it is empty"
    elif _has_control(git_url):
        why = "it contains control characters"
    else:
        why = "it is not a repository URL Sluice checks out from"
    forms = f"{REMOTE_FORMS.replace(' or ', ', ')}, file:// or a local path" if allow_local else REMOTE_FORMS
    return f"'{git_url}' cannot be used: {why}; give {forms}"


def ref_problem(kind: str, value: str) -> str | None:
    """Why ``value`` is not a usable ``kind`` (``branch``, ``tag`` or ``commit``) name (None: it is)."""
    if kind == "commit":
        if _HEX_SHA.fullmatch(value):
            return None
        return f"'{value}' is not a commit sha: give the commit's hexadecimal sha (4 to 64 digits)"
    if value.startswith("-"):
        return f"'{value}' is not a valid {kind} name: it must not begin with '-'"
    if _has_control(value) or any(c.isspace() for c in value):
        return f"'{value}' is not a valid {kind} name: it contains spaces or control characters"
    bad = [s for s in _REF_FORBIDDEN if s in value]
    if bad or value.endswith(("/", ".", ".lock")) or value == "@" or "//" in value:
        shown = f" ({' '.join(repr(b) for b in bad)})" if bad else ""
        return f"'{value}' is not a valid {kind} name{shown}: see `git check-ref-format`"
    return None


def git_source_problems(
    git_source: Mapping[str, object], *, allow_local: bool = True
) -> list[tuple[str, str]]:
    """``(field, message)`` for each unusable field of a job's ``git_source`` (JSON as the API takes it);
    an empty revision counts as not given."""
    found = []
    url = git_source.get("git_url")
    if isinstance(url, str):
        problem = url_problem(url, allow_local=allow_local)
        if problem is not None:
            found.append(("git_url", problem))
    for kind in ("branch", "tag", "commit"):
        value = git_source.get(f"git_{kind}")
        if isinstance(value, str) and value:
            problem = ref_problem(kind, value)
            if problem is not None:
                found.append((f"git_{kind}", problem))
    return found


class _GitFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_local(git_url: str) -> bool:
    return "://" not in git_url and url_kind(git_url) != "remote"


def _clone(git_url: str, ref: str | None, dest: Path, timeout: float) -> None:
    args = ["clone", "--quiet", "--no-tags" if ref is None else "--single-branch"]
    if not _is_local(git_url):
        args += ["--depth", "1"]  # local clones hard-link objects instead, which is cheaper still
    if ref is not None:
        args.append(f"--branch={ref}")  # one argument: the ref is the option's value, never an option
    _git([*args, "--", git_url, str(dest)], cwd=None, timeout=timeout)


def _checkout_commit(git_url: str, commit: str, dest: Path, timeout: float) -> None:
    """Fetch just that commit when the server allows it (full sha, remote URL); else clone and look it up."""
    if _FULL_SHA.fullmatch(commit) and not _is_local(git_url):
        dest.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet"], cwd=dest, timeout=timeout)
        try:
            _git(["fetch", "--quiet", "--depth", "1", "--", git_url, commit], cwd=dest, timeout=timeout)
        except _GitFailed:
            _remove(dest, keep_dir=True)  # the server refuses fetching by sha: fall back to a full clone
        else:
            _git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], cwd=dest, timeout=timeout)
            return
    _git(["clone", "--quiet", "--no-checkout", "--", git_url, str(dest)], cwd=None, timeout=timeout)
    try:
        found = _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}"],
            cwd=dest,
            timeout=timeout,
        ).strip()
    except _GitFailed:
        raise _GitFailed(f"commit '{commit}' is not in the repository") from None
    _git(["checkout", "--quiet", "--detach", found], cwd=dest, timeout=timeout)  # git's own full sha


def _git(args: list[str], *, cwd: Path | None, timeout: float) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise _GitFailed("git is not installed (no 'git' on PATH)") from None
    except subprocess.TimeoutExpired:
        raise _GitFailed(f"'git {args[0]}' took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        fatal = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))]
        detail = "; ".join(fatal or lines[-3:]) or f"git {args[0]} exited with status {done.returncode}"
        raise _GitFailed(detail)
    return done.stdout


def _remove(dest: Path, *, keep_dir: bool) -> None:
    """Undo a failed checkout: nothing half-written stays behind."""
    if not dest.exists():
        return
    if not keep_dir:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
