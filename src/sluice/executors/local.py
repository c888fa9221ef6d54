"""Task attempts as local processes, forked by a pre-warmed zygote (``sluice.executors.zygote``).

The engine drives a :class:`LocalExecutor` from one thread::

    executor = LocalExecutor()
    executor.start()                      # returns at once; the zygote warms up meanwhile
    pid = executor.launch(spec)           # usually returns at once (see below)
    for exited in executor.poll(0.5):     # Exited(attempt_id, pid, returncode, killed, timed_out)
        ...
    executor.kill(attempt_id, grace=5.0)  # SIGTERM now, SIGKILL after grace (done by the zygote)
    executor.close()                      # kill everything, stop the zygote

The zygote keeps one *spare* child forked and warmed up ahead of time and announces its pid. A launch
that finds a spare announced names it and returns its pid without waiting; otherwise it waits for the
zygote to fork (~1 ms). Should the named spare have died meanwhile (something killed it), the zygote
forks a replacement: ``live()`` and ``Exited.pid`` then carry the real pid.

If the zygote dies unexpectedly, every live attempt is reported as exited with ``-SIGKILL`` (its tasks
were killed by ``PR_SET_PDEATHSIG``; stragglers are swept by their environment tag) and the next
``launch`` starts a new zygote.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

from sluice.errors import InternalError
from sluice.executors import (
    DEFAULT_KILL_GRACE,
    PROCESS_TAG_ENV,
    TAG_PLACEHOLDER,
    Exited,
    LaunchSpec,
)

#: How long a launch waits for the zygote's answer (the first one includes its start-up).
LAUNCH_TIMEOUT = 30.0
#: How long ``close`` waits for the zygote beyond the grace it gave the tasks.
CLOSE_MARGIN = 5.0


class LaunchError(InternalError):
    """The executor could not start a task process (the zygote is gone, fork failed ...)."""


class LocalExecutor:
    """Runs each attempt as its own process group, forked from a warm zygote process."""

    def __init__(self, *, python: str | None = None) -> None:
        self._python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None
        self._token = ""
        #: The zygote's cgroup v2 directory (one sub-cgroup per task process), None without cgroups.
        self._cgroup: str | None = None
        self._buf = b""
        self._events: list[Exited] = []
        self._live: dict[int, int] = {}  # attempt id -> pid
        self._dirs: dict[int, str] = {}  # attempt id -> attempt dir, for launches not yet confirmed
        self._answers: dict[int, dict[str, Any]] = {}  # launch answers a waiting launch() looks for
        self._spare = 0  # pid of the zygote's announced, unclaimed spare
        self._closed = False
        self._notebooks_expected = False  # the zygote was told to expect notebook tasks
        self._expect_pending = False  # ... and has not answered yet (the next launch waits for it)

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote if it is not running; does not wait for it to be ready."""
        if self._proc is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._token = secrets.token_hex(8)
        self._cgroup = None
        env = dict(os.environ)
        env[PROCESS_TAG_ENV] = f"{self._token}.{TAG_PLACEHOLDER}"
        try:
            self._proc = subprocess.Popen(
                [
                    self._python,
                    "-m",
                    "sluice.executors.zygote",
                    str(theirs.fileno()),
                    self._token,
                    str(os.getpid()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # no terminal signals: Ctrl-C is the control plane's to handle
            )
        finally:
            theirs.close()
        self._sock = ours  # blocking for sendall; reads use MSG_DONTWAIT after poll() said readable
        self._poller = select.poll()
        self._poller.register(ours.fileno(), select.POLLIN)
        self._buf = b""
        self._spare = 0
        self._closed = False
        self._notebooks_expected = self._expect_pending = False

    @property
    def token(self) -> str:
        """The marker of this executor's processes (``SLUICE_PROCESS_TAG=<token>.<attempt id>``)."""
        return self._token

    @property
    def cgroup(self) -> str | None:
        """The zygote's cgroup v2 directory (a sub-cgroup per task process), None without cgroups."""
        return self._cgroup

    @property
    def zygote_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def fileno(self) -> int:
        """The socket the zygote reports on; readable when ``poll`` has news (also check ``has_events``)."""
        if self._sock is None:
            raise LaunchError("the executor is not started: call start() first")
        return self._sock.fileno()

    @property
    def has_events(self) -> bool:
        """True when exits were already received (during ``launch``) and wait for ``poll``."""
        return bool(self._events)

    def live(self) -> dict[int, int]:
        """Attempts launched and not yet reported exited: ``{attempt id: pid}``."""
        return dict(self._live)

    # -- the engine's calls ---------------------------------------------------------------------------

    def expect_notebooks(self) -> None:
        """Notebook tasks are coming (a job with notebook tasks was submitted): prepare for them now.

        The zygote's spare starts a Jupyter kernel at once, so the first notebook task of the run does not
        wait for a cold kernel (ADR 0005). Returns at once; idempotent. Jobs without notebook tasks never
        call it and pay nothing.
        """
        if self._notebooks_expected and self._proc is not None:
            return
        self.start()
        self._send({"op": "expect", "kind": "notebook"})
        self._notebooks_expected = self._expect_pending = True

    def launch(self, spec: LaunchSpec) -> int:
        """Start ``spec`` as a new process group; return its pid (= pgid)."""
        if spec.attempt_id in self._live:
            raise LaunchError(
                f"attempt {spec.attempt_id} is already running (pid {self._live[spec.attempt_id]})"
            )
        self.start()
        self._receive(0.0)  # learn of a spare announced meanwhile
        if self._expect_pending:
            self._await_expected()
        request = {
            "op": "launch",
            "id": spec.attempt_id,
            "kind": str(spec.kind),
            "target": spec.target,
            "argv": list(spec.argv),
            "cwd": spec.cwd,
            "env": dict(spec.env),
            "dir": spec.attempt_dir,
            "timeout": spec.timeout,
        }
        spare, self._spare = self._spare, 0
        if spare:
            request["spare"] = spare
            self._live[spec.attempt_id] = spare
            self._dirs[spec.attempt_id] = spec.attempt_dir
        self._send(request)
        return spare or self._wait_started(spec.attempt_id)

    def _await_expected(self) -> None:
        """Wait for the zygote's answer to ``expect`` (~1 ms once it runs): a spare it forked for it is
        announced before, so this launch can name it."""
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while self._expect_pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._receive(remaining):
                self._expect_pending = False
                return

    def _wait_started(self, attempt_id: int) -> int:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while attempt_id not in self._answers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LaunchError(f"the task launcher did not answer within {LAUNCH_TIMEOUT:.0f} s")
            if not self._receive(remaining):
                raise LaunchError(self._lost_message())
        answer = self._answers.pop(attempt_id)
        if answer["ev"] == "failed":
            raise LaunchError(f"could not launch attempt {attempt_id}: {answer.get('error')}")
        return int(answer["pid"])

    def poll(self, timeout: float = 0.0) -> list[Exited]:
        """Exits since the last call; waits up to ``timeout`` seconds for one when there is none yet.

        Without a zygote (not started, or lost) it just sleeps ``timeout``: callers may use it as their wait.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        if not self._events:
            self._receive(0.0)  # what already arrived, without waiting
        while not self._events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._sock is None:
                time.sleep(remaining)
                break
            self._receive(remaining)
        events, self._events = self._events, []
        return events

    def kill(self, attempt_id: int, *, grace: float = DEFAULT_KILL_GRACE) -> None:
        """SIGTERM the attempt's group (and its escaped processes); SIGKILL after ``grace`` seconds.

        Returns at once; the exit comes through ``poll`` with ``killed=True``. Unknown or already exited
        attempts are ignored.
        """
        if attempt_id in self._live:
            self._send({"op": "kill", "id": attempt_id, "grace": grace})

    def close(self, *, grace: float = 1.0) -> list[Exited]:
        """Kill live attempts (SIGTERM, SIGKILL after ``grace``), stop the zygote; return unpolled exits."""
        if self._proc is None or self._sock is None:
            return self.poll(0)
        with contextlib.suppress(LaunchError):
            self._send({"op": "close", "grace": grace})
        deadline = time.monotonic() + max(grace, 0.0) + CLOSE_MARGIN
        while not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._receive(remaining):
                break
        self._stop_zygote(deadline)
        return self.poll(0)

    def __enter__(self) -> LocalExecutor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._sock is not None
        data = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._zygote_lost()
            raise LaunchError(self._lost_message(exc)) from exc

    def _receive(self, timeout: float) -> bool:
        """Read and dispatch what the zygote sent (waiting up to ``timeout``); False once it is gone."""
        if self._sock is None or self._poller is None:
            return False
        if not self._poller.poll(timeout * 1000.0):
            return True
        chunks: list[bytes] = []
        while True:
            try:
                data = self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self._take(b"".join(chunks))
                self._zygote_lost()
                return False
            chunks.append(data)
        self._take(b"".join(chunks))
        return True

    def _take(self, data: bytes) -> None:
        if not data:
            return
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line:
                self._dispatch(json.loads(line))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        ev = msg.get("ev")
        if ev == "exited":
            attempt_id = int(msg["id"])
            self._live.pop(attempt_id, None)
            self._dirs.pop(attempt_id, None)
            self._events.append(
                Exited(
                    attempt_id=attempt_id,
                    pid=int(msg["pid"]),
                    returncode=int(msg["rc"]),
                    killed=bool(msg["killed"]),
                    timed_out=bool(msg.get("timed_out", False)),
                )
            )
        elif ev == "ready":
            self._cgroup = msg.get("cgroup")
        elif ev == "spare":
            self._spare = int(msg["pid"])
        elif ev in ("started", "failed"):
            self._on_answer(msg)
        elif ev == "closed":
            self._closed = True
        elif ev == "expected":
            self._expect_pending = False

    def _on_answer(self, msg: dict[str, Any]) -> None:
        attempt_id = int(msg["id"])
        confirmed = self._dirs.pop(attempt_id, None)  # set for launches that named a spare
        if msg["ev"] == "started":
            pid = int(msg["pid"])
            if pid == self._spare:
                self._spare = 0  # the zygote used it for a launch that did not name it
            if confirmed is not None:
                self._live[attempt_id] = pid  # the spare's pid, or its replacement's
                return
            self._live[attempt_id] = pid
        elif confirmed is not None:
            # launch() already returned for it: report the failure as the attempt's exit.
            pid = self._live.pop(attempt_id, 0)
            _write_launch_error(confirmed, str(msg.get("error")))
            self._events.append(Exited(attempt_id, pid, 1, killed=False))
            return
        self._answers[attempt_id] = msg

    def _zygote_lost(self) -> None:
        """The zygote is gone: its tasks died with it (PDEATHSIG); report them and sweep stragglers."""
        lost = dict(self._live)
        self._live.clear()
        self._dirs.clear()
        for attempt_id, pid in lost.items():
            self._events.append(Exited(attempt_id, pid, -int(signal.SIGKILL), killed=False))
        if self._token:
            _kill_tagged(self._token)
        if self._cgroup:
            _remove_cgroup(self._cgroup)  # what its tasks left, wherever they went
        self._stop_zygote(time.monotonic() + CLOSE_MARGIN)

    def _stop_zygote(self, deadline: float) -> None:
        proc, sock = self._proc, self._sock
        self._proc = self._sock = self._poller = None
        self._spare = 0
        self._notebooks_expected = self._expect_pending = False
        if sock is not None:
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._token:
            _kill_tagged(self._token)

    def _lost_message(self, exc: BaseException | None = None) -> str:
        why = f" ({exc})" if exc else ""
        return (
            f"the task launcher (zygote) exited unexpectedly{why}; its error, if any, is on the control "
            f"plane's stderr. The next launch starts a new one."
        )


def _write_launch_error(attempt_dir: str, error: str) -> None:
    """``error.json`` for an attempt whose process could not be started (see docs/protocol.md)."""
    with contextlib.suppress(OSError):
        os.makedirs(attempt_dir, exist_ok=True)
        with open(os.path.join(attempt_dir, "error.json"), "w", encoding="utf-8") as f:
            json.dump({"error": f"could not start the task process: {error}", "error_trace": ""}, f)


def _remove_cgroup(path: str) -> None:
    """Kill everything in a lost zygote's cgroup and remove it (waits a little for the killed to exit)."""
    from sluice.executors.containment import remove_cgroup

    deadline = time.monotonic() + CLOSE_MARGIN
    while not remove_cgroup(path) and time.monotonic() < deadline:
        time.sleep(0.005)


def _kill_tagged(token: str) -> None:
    """SIGKILL every process this executor's tasks left behind (the zygote module is imported only here)."""
    from sluice.executors.zygote import kill_tagged

    kill_tagged(token, None, signal.SIGKILL)
