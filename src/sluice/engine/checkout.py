"""A run's ``git_source`` checkout, off the driver's loop: a process of its own with a hard deadline.

A checkout talks to a remote that may never answer. Run inside the driver's loop it would stop every other
run of that driver — and, in ``sluice serve``, its heartbeats, so that another server adopts runs whose
tasks still run here. So the driver starts each checkout as a child process (``python -m
sluice.engine.checkout``, which calls :func:`sluice.gitsource.checkout`) in a session of its own, watches
it from its loop (the child's stdout pipe reaches end-of-file when it exits, so the loop wakes at once),
and at the deadline kills the whole session — git and the helpers it spawned (``git-remote-http``, ssh) —
and removes the half-written checkout. The child writes its result as JSON next to the checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

RESULT_FILE = "checkout.json"


@dataclass
class Checkout:
    """One checkout in flight."""

    run_id: int
    git_url: str
    #: "branch 'main'", "the default branch", ...
    described: str
    dest: Path
    timeout: float
    deadline: float  # time.monotonic()
    proc: subprocess.Popen[bytes]
    pipe: IO[bytes]

    def fileno(self) -> int:
        """Readable (end-of-file) once the checkout process exits."""
        return self.pipe.fileno()

    @property
    def done(self) -> bool:
        """Whether the checkout process exited (left unreaped, so its process group id stays its own)."""
        if self.proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    @property
    def overdue(self) -> bool:
        return time.monotonic() >= self.deadline

    def kill(self) -> None:
        """Kill the checkout process and every process it started; remove what it wrote."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.pipe.close()
        shutil.rmtree(self.dest, ignore_errors=True)
        (self.dest.parent / RESULT_FILE).unlink(missing_ok=True)

    def result(self) -> tuple[str | None, str | None]:
        """``(commit, None)`` or ``(None, error)`` of a finished checkout."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers git left behind, if any (before reaping)
        returncode = self.proc.wait()
        self.pipe.close()
        result_file = self.dest.parent / RESULT_FILE
        try:
            data = json.loads(result_file.read_text())
        except (OSError, ValueError):
            return None, f"the checkout process of {self.git_url} exited with code {returncode}"
        finally:
            result_file.unlink(missing_ok=True)
        if data.get("commit"):
            return str(data["commit"]), None
        return None, str(data.get("error") or f"could not check out {self.git_url}")

    def timeout_message(self) -> str:
        return (
            f"could not check out {self.described} of {self.git_url} within {self.timeout:g} s, the git "
            "checkout timeout (setting git_timeout, SLUICE_GIT_TIMEOUT): the remote did not answer in time; "
            "the checkout was stopped"
        )


def start(run_id: int, git: dict[str, Any], *, commit: str | None, dest: Path, timeout: float) -> Checkout:
    """Start checking out ``git`` (a job's git_source) into ``dest``; ``commit`` pins a resumed run's sha."""
    branch = None if commit else git.get("git_branch")
    tag = None if commit else git.get("git_tag")
    commit = commit or git.get("git_commit")
    request = {
        "git_url": git["git_url"],
        "branch": branch,
        "tag": tag,
        "commit": commit,
        "dest": str(dest),
        "timeout": timeout,
    }
    given = [
        f"{name} '{value}'" for name, value in (("branch", branch), ("tag", tag), ("commit", commit)) if value
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    (dest.parent / RESULT_FILE).unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice.engine.checkout", json.dumps(request)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # killpg reaches git and its helpers
        close_fds=True,
    )
    assert proc.stdout is not None
    return Checkout(
        run_id=run_id,
        git_url=str(git["git_url"]),
        described=given[0] if given else "the default branch",
        dest=dest,
        timeout=timeout,
        deadline=time.monotonic() + timeout,
        proc=proc,
        pipe=proc.stdout,
    )


def main(argv: list[str]) -> int:
    """The checkout process: check out, write ``{"commit": sha}`` or ``{"error": message}``."""
    from sluice import gitsource
    from sluice.errors import SluiceError

    request = json.loads(argv[0])
    dest = Path(request["dest"])
    try:
        commit = gitsource.checkout(
            request["git_url"],
            branch=request["branch"],
            tag=request["tag"],
            commit=request["commit"],
            dest=dest,
            timeout=float(request["timeout"]),
        )
        result: dict[str, str] = {"commit": commit}
    except SluiceError as exc:
        result = {"error": str(exc)}
    tmp = dest.parent / f"{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(dest.parent / RESULT_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
