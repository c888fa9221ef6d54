"""Check out a job's ``git_source`` (``git_url`` + one of ``git_branch``, ``git_tag``, ``git_commit``).

One checkout per job run, shared by its tasks (Databricks checks the commit out once per run, so every
task sees the same code). ``git`` is run as a subprocess; the URL is anything ``git clone`` reaches (a
local path, ``file://``, ``https://``, ``ssh://``). Credentials come from the user's git configuration;
git never prompts (``GIT_TERMINAL_PROMPT=0``), so a private repository without credentials fails fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sluice.errors import SluiceError

#: Seconds a checkout may take by default (the driver's ``git_timeout`` setting overrides it).
GIT_TIMEOUT = 300.0
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


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


class _GitFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_local(git_url: str) -> bool:
    return "://" not in git_url and not re.match(r"^[\w.-]+@[\w.-]+:", git_url)


def _clone(git_url: str, ref: str | None, dest: Path, timeout: float) -> None:
    args = ["clone", "--quiet", "--no-tags" if ref is None else "--single-branch"]
    if not _is_local(git_url):
        args += ["--depth", "1"]  # local clones hard-link objects instead, which is cheaper still
    if ref is not None:
        args += ["--branch", ref]
    _git([*args, "--", git_url, str(dest)], cwd=None, timeout=timeout)


def _checkout_commit(git_url: str, commit: str, dest: Path, timeout: float) -> None:
    """Fetch just that commit when the server allows it (full sha, remote URL); else clone and look it up."""
    if _FULL_SHA.fullmatch(commit) and not _is_local(git_url):
        dest.mkdir(parents=True, exist_ok=True)
        _git(["init", "--quiet"], cwd=dest, timeout=timeout)
        try:
            _git(["fetch", "--quiet", "--depth", "1", git_url, commit], cwd=dest, timeout=timeout)
        except _GitFailed:
            _remove(dest, keep_dir=True)  # the server refuses fetching by sha: fall back to a full clone
        else:
            _git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], cwd=dest, timeout=timeout)
            return
    _git(["clone", "--quiet", "--no-checkout", "--", git_url, str(dest)], cwd=None, timeout=timeout)
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=dest, timeout=timeout)
    except _GitFailed:
        raise _GitFailed(f"commit '{commit}' is not in the repository") from None
    _git(["checkout", "--quiet", "--detach", commit], cwd=dest, timeout=timeout)


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
