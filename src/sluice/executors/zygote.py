"""The fork server ("zygote"): a warm Python process that forks one child per task attempt.

Started by :class:`sluice.executors.local.LocalExecutor` as ``python -m sluice.executors.zygote FD TOKEN
PARENT_PID``; it speaks newline-delimited JSON over the socket ``FD`` (see ``docs/protocol.md``).

Why a fork server: a fresh interpreter costs ~30 ms before user code runs; a fork of this process costs
~1 ms. The zygote imports only the standard library and ``sluice.runtime``, so a forked task inherits
nothing it did not ask for.

What it guarantees (DESIGN decision 1):

- every attempt is its own session and process group (``setsid`` in the child);
- when an attempt's leader exits, its group is SIGKILLed *before* the leader is reaped (``waitid`` with
  ``WNOWAIT`` keeps the zombie, so the group id cannot be reused in between);
- processes that left the group (``setsid``, double fork, a scrubbed environment) are contained
  (:mod:`sluice.executors.containment`): every task process is in a cgroup v2 of its own where the host
  allows it (killed through ``cgroup.kill``), and is a child subreaper, so its orphaned descendants stay
  below it; once it is gone they are the zygote's children (the zygote is a subreaper too), and every
  child of the zygote that is not a task or the spare is killed. The marker every task process carries in
  its environment (``SLUICE_PROCESS_TAG=<token>.<attempt id>``, see :func:`find_tagged`) is a third net;
- when the control plane dies (EOF on the socket, or ``PR_SET_PDEATHSIG``), every attempt is SIGKILLed,
  stragglers are swept, and the zygote exits. Task leaders get SIGKILL if the zygote itself dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from sluice.executors import DEFAULT_KILL_GRACE, PROCESS_TAG_ENV, TAG_PLACEHOLDER, TAG_WIDTH
from sluice.executors.containment import Cgroups, is_detached, kill_strays, signal_tree

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_TAG_ENV = PROCESS_TAG_ENV.encode() + b"="
#: Exits are swept for escaped processes in batches, this long after the first exit of a batch.
_SWEEP_DELAY = 0.02
#: Attempts older than this may have seen the pid counter wrap: their sweeps read every process.
_LONG_ATTEMPT = 0.5
_REAP_ALL_TIMEOUT = 3.0
#: A killed task's cgroup is removed once its last process exited: retried this often until then.
_CGROUP_RETRY = 0.2
#: Spares start a notebook kernel ahead while one of this many last launches was a notebook task.
_NOTEBOOK_MEMORY = 4
#: A message on a spare's pipe that is not a task: start a notebook kernel ahead (notebooks are expected).
_WARM_NOTEBOOK = "warm_notebook"
_BLOCKED = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def find_tagged(
    token: str, attempt_ids: Iterable[int] | None = None, *, above_pid: int = 0
) -> dict[int, int]:
    """Processes whose environment carries ``SLUICE_PROCESS_TAG=<token>.<id>``: ``{pid: attempt id}``.

    ``attempt_ids=None`` matches every attempt of the token. The calling process is never included.
    Reads ``/proc/<pid>/environ`` of every process with a pid above ``above_pid`` (about 30 µs each);
    processes of other users are skipped (not readable), and so are processes whose program was exec'd
    with a scrubbed environment.
    """
    prefix = b"\0" + _TAG_ENV + token.encode() + b"."
    wanted = None if attempt_ids is None else set(attempt_ids)
    me = os.getpid()
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) <= above_pid or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                data = b"\0" + f.read()
        except OSError:
            continue
        at = data.find(prefix)
        if at < 0:
            continue
        start = at + len(prefix)
        end = data.find(b"\0", start)
        raw = data[start : end if end >= 0 else len(data)]
        if not raw.isdigit():
            continue  # the zygote itself, or a child not yet marked
        attempt_id = int(raw)
        if wanted is None or attempt_id in wanted:
            found[int(name)] = attempt_id
    return found


def kill_tagged(
    token: str, attempt_ids: Iterable[int] | None, sig: int, *, above_pid: int = 0, passes: int = 5
) -> int:
    """Send ``sig`` to every tagged process, rescanning until none is found; returns how many were hit."""
    wanted = None if attempt_ids is None else frozenset(attempt_ids)
    if wanted is not None and not wanted:
        return 0
    hit = 0
    for _ in range(passes):
        pids = find_tagged(token, wanted, above_pid=above_pid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                hit += 1
        if sig != signal.SIGKILL:
            break  # a polite signal is sent once; survivors are found again at escalation
    return hit


def _sweep_floor(leaders: Iterable[tuple[int, float]], now: float) -> int:
    """The pid above which the escaped processes of these (leader pid, start time) attempts must be.

    Pids are handed out in increasing order, so everything a leader started has a larger pid, unless
    the pid counter wrapped since (then, or for long-lived attempts that might have seen a wrap,
    scan everything: floor 0).
    """
    pairs = list(leaders)
    if not pairs or any(now - started > _LONG_ATTEMPT for _, started in pairs):
        return 0
    floor = min(pid for pid, _ in pairs)
    try:
        with open("/proc/sys/kernel/ns_last_pid", "rb") as f:
            last = int(f.read())
    except (OSError, ValueError):
        return 0
    return floor if last >= floor else 0


def _signal_group(pid: int, sig: int) -> None:
    """Signal the group led by ``pid``; before the child's ``setsid`` the group does not exist yet."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class _Attempt:
    __slots__ = ("attempt_id", "kill_at", "killed", "pid", "started", "timed_out", "timeout_at")

    def __init__(self, attempt_id: int, pid: int, timeout_at: float | None, born: float) -> None:
        self.attempt_id = attempt_id
        self.pid = pid
        #: When its pid was allocated (a spare's is older than its launch): bounds the sweep's pid floor.
        self.started = born
        self.timeout_at = timeout_at
        #: When to escalate to SIGKILL, once killed with a grace.
        self.kill_at: float | None = None
        self.killed = False
        self.timed_out = False


class _Libc:
    """``prctl`` through ctypes, and the address of this process's tag in its environment block."""

    def __init__(self, token: str) -> None:
        import ctypes  # only the zygote needs ctypes: keep it out of every other import

        self._ctypes = ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.tag_address = _find_tag_address(token)

    def prctl(self, option: int, arg: int) -> None:
        if self._libc.prctl(option, arg, 0, 0, 0) != 0:
            raise OSError(self._ctypes.get_errno(), f"prctl({option}) failed")

    def mark(self, attempt_id: int) -> None:
        """Write the attempt id over the placeholder in ``/proc/self/environ`` (copy-on-write after fork)."""
        if self.tag_address:
            value = str(attempt_id).zfill(TAG_WIDTH).encode()[-TAG_WIDTH:]
            self._ctypes.memmove(self.tag_address, value, TAG_WIDTH)


def mark_process_tag(token: str, attempt_id: int) -> None:
    """In a process exec'd with the placeholder tag (a kernel started ahead of its task): mark it."""
    _Libc(token).mark(attempt_id)


def _find_tag_address(token: str) -> int:
    """Address of the placeholder value in this process's initial environment block, 0 if absent."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    env_start = int(fields[47])  # field 50 of proc(5); fields[0] is field 3
    with open("/proc/self/environ", "rb") as f:
        block = b"\0" + f.read()
    needle = b"\0" + _TAG_ENV + f"{token}.{TAG_PLACEHOLDER}".encode()
    at = block.find(needle)
    if at < 0:
        return 0
    return env_start + at + len(needle) - TAG_WIDTH - 1  # -1: the leading NUL we added


class Zygote:
    """The fork server's event loop. ``serve()`` returns only in a forked child (with its request)."""

    def __init__(self, sock: socket.socket, token: str, parent_pid: int) -> None:
        self.sock = sock
        self.token = token
        self.parent_pid = parent_pid
        self.libc = _Libc(token)
        self.cgroups: Cgroups | None = None
        #: Pids of task processes and spares whose cgroups are still to be removed.
        self.to_uncgroup: set[int] = set()
        self.attempts: dict[int, _Attempt] = {}  # by pid
        self.pids: dict[int, int] = {}  # attempt id -> pid
        self.to_sweep: dict[int, tuple[int, float]] = {}  # attempt id -> (leader pid, start time)
        self.sweep_at: float | None = None
        self.closing_at: float | None = None  # escalation time of a graceful close
        self.stopping = False  # the control plane is gone or we were told to terminate
        self.closing = False
        self._buf = b""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel = selectors.DefaultSelector()
        self.spare_pid = 0
        self.spare_w = -1  # write end of the spare's request pipe
        self.spare_born = 0.0
        self.want_spare = True
        #: Called in a spare before it waits (``taskmain.warm_up`` once the zygote preloaded it).
        self.warm_up: Callable[[], None] = _nothing
        self.plain_warm_up: Callable[[], None] = _nothing
        #: Warm-up of spares that start a notebook kernel ahead, once a notebook task was seen or expected.
        self.notebook_warm_up: Callable[[], None] | None = None
        self.recent_kinds: list[bool] = []  # of the last launches: was it a notebook task?
        self.notebooks_preloaded = False  # the notebook client libraries are imported here
        self.spare_notebook = False  # the waiting spare started a kernel ahead

    # -- set-up ---------------------------------------------------------------------------------------

    def install(self) -> None:
        self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
        self.cgroups = Cgroups.probe(self.token)
        signal.signal(signal.SIGCHLD, _noop)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, self._on_parent_death)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGUSR2)
        if os.getppid() != self.parent_pid:
            self.stopping = True  # the parent died before we could ask to be told
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.sel.register(self._wake_r, selectors.EVENT_READ)
        cgroup = self.cgroups.base if self.cgroups is not None else None
        self._send({"ev": "ready", "pid": os.getpid(), "cgroup": cgroup})

    def _on_term(self, _sig: int, _frame: object) -> None:
        self.stopping = True

    def _on_parent_death(self, _sig: int, _frame: object) -> None:
        # PDEATHSIG also fires when the parent *thread* that started us exits: check the process.
        if os.getppid() != self.parent_pid:
            self.stopping = True

    # -- the loop -------------------------------------------------------------------------------------

    def serve(self) -> dict[str, Any] | None:
        """Run until told to stop; in a forked child, return its launch request instead."""
        while not self.stopping:
            for key, _ in self.sel.select(self._next_timeout()):
                if key.fileobj is self.sock:
                    request = self._on_socket()
                    if request is not None:
                        return request
                else:
                    _drain(self._wake_r)
            self._reap()
            self._on_timers(time.monotonic())
            if self.closing and not self.attempts:
                break
            if self.want_spare:
                self.want_spare = False
                request = self._make_spare()
                if request is not None:
                    return request
        self._shutdown(graceful=self.closing and not self.stopping)
        return None

    def _next_timeout(self) -> float | None:
        times = [t for t in (self.sweep_at, self.closing_at) if t is not None]
        for att in self.attempts.values():
            times.extend(t for t in (att.kill_at, att.timeout_at) if t is not None)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _on_socket(self) -> dict[str, Any] | None:
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            self.stopping = True  # EOF: the control plane is gone
            return None
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            request = self._handle(json.loads(line)) if line else None
            if request is not None:
                return request
        return None

    def _handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        op = msg.get("op")
        if op == "launch":
            return self._launch(msg)
        if op == "kill":
            self._kill(int(msg["id"]), float(msg.get("grace", DEFAULT_KILL_GRACE)))
        elif op == "close":
            self._begin_close(float(msg.get("grace", 1.0)))
        elif op == "expect":
            return self._expect(str(msg.get("kind")))
        return None

    # -- launching ------------------------------------------------------------------------------------

    def _launch(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        attempt_id = int(msg["id"])
        if self.closing or attempt_id in self.pids:
            why = "the executor is closing" if self.closing else f"attempt {attempt_id} is already running"
            self._send({"ev": "failed", "id": attempt_id, "error": why})
            return None
        # Only a launch naming the spare the control plane was told about may use it: the control plane
        # returned that pid already, and must not be told of a spare that is no longer one.
        born = self.spare_born
        pid = self._hand_to_spare(msg) if msg.get("spare") == self.spare_pid else None
        if pid is None:
            born = time.monotonic()
            try:
                pid = self._fork()
            except OSError as exc:
                self._send({"ev": "failed", "id": attempt_id, "error": f"fork failed: {exc}"})
                return None
            if pid == 0:
                self.libc.mark(attempt_id)
                return msg
        timeout = msg.get("timeout")
        timeout_at = time.monotonic() + float(timeout) if timeout is not None else None
        self.attempts[pid] = _Attempt(attempt_id, pid, timeout_at, born)
        self.pids[attempt_id] = pid
        self._send({"ev": "started", "id": attempt_id, "pid": pid})
        if msg.get("kind") == "python_wheel" and "importlib.metadata" not in sys.modules:
            _preload_wheel_support()  # for the next spares; this task imports it itself, once
        self._note_kind(str(msg.get("kind")))
        self.want_spare = True  # fork the next spare now, while this task runs
        return None

    def _fork(self) -> int:
        """Fork a child that is its own session and dies with us; 0 in the child (all set up)."""
        zygote_pid = os.getpid()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            raise
        if pid == 0:
            self._become_child(zygote_pid, old_mask)
            return 0
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return pid

    def _become_child(self, zygote_pid: int, old_mask: Iterable[int]) -> None:
        """In the forked child: own session and cgroup, subreaper of its descendants, die with the zygote,
        default signals, no zygote fds."""
        os.setsid()
        self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote_pid:
            os._exit(1)  # the zygote died between fork and prctl
        # Orphans of our descendants become our children, not the zygote's (not inherited by our children).
        self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
        if self.cgroups is not None:
            self.cgroups.enter()  # if that fails, the subreaper still holds the descendants
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.sel.close()
        self.sock.close()
        for fd in (self._wake_r, self._wake_w, self.spare_w):
            if fd >= 0:
                os.close(fd)
        self.spare_w = -1
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    # A spare is a child forked (and warmed up) ahead of time, waiting for its request on a pipe: the
    # fork and the first copy-on-write faults then happen while the previous task runs, not on launch.

    def _hand_to_spare(self, msg: dict[str, Any]) -> int | None:
        pid, fd = self.spare_pid, self.spare_w
        if pid <= 0 or fd < 0:
            return None
        self.spare_pid, self.spare_w = 0, -1
        data = json.dumps(msg, separators=(",", ":")).encode()
        try:
            with os.fdopen(fd, "wb") as pipe:  # blocks only while the spare reads a large request
                pipe.write(len(data).to_bytes(8, "big") + data)
        except OSError:
            _signal_group(pid, signal.SIGKILL)  # the spare died: reaped later, launch by a plain fork
            return None
        return pid

    def _make_spare(self) -> dict[str, Any] | None:
        """Fork a spare unless one is waiting; in the spare, wait and return its request."""
        if self.spare_pid > 0 or self.closing or self.stopping:
            return None
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            pid = self._fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None  # try again on the next launch; that launch forks directly
        if pid == 0:
            os.close(write_fd)
            return self._spare_wait(read_fd)
        os.close(read_fd)
        self.spare_pid, self.spare_w, self.spare_born = pid, write_fd, time.monotonic()
        self.spare_notebook = self.warm_up is self.notebook_warm_up
        self._send({"ev": "spare", "pid": pid})
        return None

    def _spare_wait(self, read_fd: int) -> dict[str, Any]:
        self.warm_up()
        with os.fdopen(read_fd, "rb") as pipe:
            while True:
                header = pipe.read(8)
                if len(header) < 8:
                    os._exit(0)  # the zygote let us go (closing) or died
                request: dict[str, Any] = json.loads(pipe.read(int.from_bytes(header, "big")))
                if request.get("op") != _WARM_NOTEBOOK:
                    break
                _notebook_warm_up()  # notebook tasks are expected: start a kernel while we wait
        self.libc.mark(int(request["id"]))
        return request

    def _expect(self, kind: str) -> dict[str, Any] | None:
        """The control plane expects tasks of ``kind`` soon (a notebook job was submitted): get ready now.

        For notebooks, spares start a kernel ahead from now on; the waiting spare starts one at once (told
        through its pipe), or, with no spare waiting, one is forked now. The notebook client libraries are
        imported here only at the first notebook launch: until then the spare imports them itself, beside
        its booting kernel, and the zygote stays free to answer. Always answers ``expected`` (after the
        ``spare`` event, if any), which the control plane waits for before its next launch.
        """
        request = None
        if kind == "notebook":
            self.recent_kinds = [*self.recent_kinds[-(_NOTEBOOK_MEMORY - 1) :], True]
            if self.notebook_warm_up is None:
                self.notebook_warm_up = _notebook_warm_up
            self.warm_up = self.notebook_warm_up
            if self.spare_pid > 0 and not self.spare_notebook:
                self._warm_spare()
            elif self.spare_pid <= 0:
                self.want_spare = False
                request = self._make_spare()
        if request is None:
            self._send({"ev": "expected", "kind": kind})
        return request

    def _warm_spare(self) -> None:
        """Tell the waiting (plain) spare to start a notebook kernel ahead; its pid stays the same."""
        data = json.dumps({"op": _WARM_NOTEBOOK}).encode()
        try:
            os.write(self.spare_w, len(data).to_bytes(8, "big") + data)  # tiny: one atomic pipe write
        except OSError:
            return  # the spare died: reaped later, replaced by a new (notebook) spare
        self.spare_notebook = True

    def _note_kind(self, kind: str) -> None:
        """Spares start a notebook kernel ahead of time while notebook tasks are among the recent launches.

        The first notebook launch also preloads the notebook client libraries here, once, for the next
        spares (as for wheel support). A spare whose kernel goes unused (it gets another kind of task)
        ends that kernel at once.
        """
        notebook = kind == "notebook"
        self.recent_kinds = [*self.recent_kinds[-(_NOTEBOOK_MEMORY - 1) :], notebook]
        if notebook and not self.notebooks_preloaded:
            self.notebooks_preloaded = True
            self.notebook_warm_up = _preload_notebook_support()
        if self.notebook_warm_up is not None:
            self.warm_up = self.notebook_warm_up if any(self.recent_kinds) else self.plain_warm_up

    # -- killing and reaping --------------------------------------------------------------------------

    def _kill(self, attempt_id: int, grace: float, *, timed_out: bool = False) -> None:
        pid = self.pids.get(attempt_id)
        if pid is None:
            return  # already exited (its exit event is on its way) or never launched
        att = self.attempts[pid]
        first = not att.killed
        att.killed = True
        att.timed_out = att.timed_out or timed_out
        att.timeout_at = None
        if grace <= 0:
            self._signal_attempt(att, signal.SIGKILL)
            return
        if first:
            self._signal_attempt(att, signal.SIGTERM)
        kill_at = time.monotonic() + grace
        att.kill_at = kill_at if att.kill_at is None else min(att.kill_at, kill_at)

    def _signal_attempt(self, att: _Attempt, sig: int) -> None:
        """``sig`` to every process of a running attempt: its cgroup, its group, its tree, its tagged ones."""
        if self.cgroups is not None:
            if sig == signal.SIGKILL:
                self.cgroups.kill(att.pid, spare=self._detached)
            else:
                self.cgroups.signal(att.pid, sig, spare=self._detached)
        _signal_group(att.pid, sig)
        # The leader is their subreaper: every descendant is below it.
        signal_tree(att.pid, sig, spare=self._detached)
        kill_tagged(self.token, [att.attempt_id], sig)

    def _detached(self, pid: int) -> bool:
        """A job-cluster server a task started: it outlives the task (``containment.DETACHED_ENV``)."""
        return is_detached(pid, self.token)

    def _reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            if pid == self.spare_pid:
                self._drop_spare()
                self.want_spare = True
            att = self.attempts.pop(pid, None)
            if att is not None:
                # The leader is a zombie: its pid still names the group, SIGKILL whatever is left in it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            if self.cgroups is not None and (att is not None or pid in self.to_uncgroup):
                self.cgroups.kill(pid, spare=self._detached)
                self.to_uncgroup.add(pid)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            if att is not None:
                self._exited(att, os.waitstatus_to_exitcode(status))

    def _drop_spare(self) -> None:
        if self.spare_w >= 0:
            os.close(self.spare_w)
        pid, self.spare_pid, self.spare_w = self.spare_pid, 0, -1
        if pid > 0:
            _signal_group(pid, signal.SIGKILL)
            if self.cgroups is not None:
                self.cgroups.kill(pid)
                self.to_uncgroup.add(pid)

    def _exited(self, att: _Attempt, returncode: int) -> None:
        del self.pids[att.attempt_id]
        self._send(
            {
                "ev": "exited",
                "id": att.attempt_id,
                "pid": att.pid,
                "rc": returncode,
                "killed": att.killed,
                "timed_out": att.timed_out,
            }
        )
        self.to_sweep[att.attempt_id] = (att.pid, att.started)
        if self.sweep_at is None:
            self.sweep_at = time.monotonic() + _SWEEP_DELAY

    def _on_timers(self, now: float) -> None:
        for att in list(self.attempts.values()):
            if att.timeout_at is not None and now >= att.timeout_at:
                self._kill(att.attempt_id, DEFAULT_KILL_GRACE, timed_out=True)
            if att.kill_at is not None and now >= att.kill_at:
                att.kill_at = None
                self._signal_attempt(att, signal.SIGKILL)
        if self.closing_at is not None and now >= self.closing_at:
            self.closing_at = None
            for att in self.attempts.values():
                self._signal_attempt(att, signal.SIGKILL)
        if self.sweep_at is not None and now >= self.sweep_at:
            self.sweep_at = None
            done, self.to_sweep = self.to_sweep, {}
            if done:
                floor = _sweep_floor(done.values(), now)
                kill_tagged(self.token, done, signal.SIGKILL, above_pid=floor)
                # What the ended attempts left is now ours (their leaders were its subreapers): kill it.
                kill_strays(os.getpid(), self._known(), above_pid=floor, spare=self._detached)
            self._remove_cgroups()

    def _known(self) -> set[int]:
        """The zygote's children that are not strays: running task leaders and the spare."""
        known = set(self.attempts)
        if self.spare_pid > 0:
            known.add(self.spare_pid)
        return known

    def _remove_cgroups(self) -> None:
        """Remove the cgroups of exited task processes; those not empty yet are tried at the next sweep."""
        if self.cgroups is None:
            return
        for pid in list(self.to_uncgroup):
            if pid in self.attempts or pid == self.spare_pid:
                continue
            if self.cgroups.remove(pid):
                self.to_uncgroup.discard(pid)
        if self.to_uncgroup and self.sweep_at is None:
            self.sweep_at = time.monotonic() + _CGROUP_RETRY

    # -- closing --------------------------------------------------------------------------------------

    def _begin_close(self, grace: float) -> None:
        self.closing = True
        self._drop_spare()
        for attempt_id in list(self.pids):
            self._kill(attempt_id, grace)
        self.closing_at = time.monotonic() + max(grace, 0.0)

    def _shutdown(self, *, graceful: bool) -> None:
        """Kill everything this zygote started, reap it, and (when asked politely) say goodbye."""
        self._drop_spare()
        for att in self.attempts.values():
            att.killed = True
            self._signal_attempt(att, signal.SIGKILL)
        kill_tagged(self.token, None, signal.SIGKILL)
        deadline = time.monotonic() + _REAP_ALL_TIMEOUT
        while self.attempts and time.monotonic() < deadline:
            self._reap()
            if self.attempts:
                time.sleep(0.002)
        kill_tagged(self.token, None, signal.SIGKILL)
        kill_strays(os.getpid(), ())
        _reap_orphans(deadline)
        while self.cgroups is not None and not self.cgroups.close() and time.monotonic() < deadline:
            time.sleep(0.002)
        if graceful:
            self._send({"ev": "closed"})

    def _send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


def _reap_orphans(deadline: float) -> None:
    """Reap adopted orphans (we are their subreaper) until none is left or the deadline passes."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.002)


def _preload_wheel_support() -> None:
    """``importlib.metadata`` costs ~70 ms to import: once in the zygote, not in every wheel task."""
    import gc
    import importlib.metadata  # noqa: F401 - imported for the children, who find it in sys.modules

    gc.freeze()


def _preload_notebook_support() -> Callable[[], None]:
    """The notebook task side (jupyter_client, nbclient, nbformat and its validator: ~0.5 s of imports),
    imported once here for the next spares; returns the spares' warm-up that starts a kernel ahead."""
    import gc

    from sluice.executors import taskmain
    from sluice.notebooks import runner

    runner.preload()
    gc.freeze()
    return taskmain.warm_up_for_notebooks


def _notebook_warm_up() -> None:
    """A spare's warm-up for notebook tasks before the zygote imported the notebook client libraries."""
    from sluice.executors import taskmain

    taskmain.warm_up_for_notebooks()


def _nothing() -> None:
    pass


def _noop(_sig: int, _frame: object) -> None:
    """SIGCHLD only needs to wake the selector (through the wakeup fd)."""


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while os.read(fd, 4096):
            pass


def _preload(zygote: Zygote) -> Callable[[dict[str, Any], str], NoReturn]:
    """Import what tasks use, so forked children find it ready (copy-on-write, never re-imported)."""
    import gc

    from sluice.executors import taskmain
    from sluice.runtime import dbutils  # noqa: F401 - imported for the children, who find it in sys.modules

    taskmain.preload()
    zygote.warm_up = zygote.plain_warm_up = taskmain.warm_up
    gc.collect()
    gc.freeze()  # children's collections then skip everything the zygote allocated
    return taskmain.run


def main(argv: list[str] | None = None) -> None:
    fd_text, token, parent_text = (argv if argv is not None else sys.argv[1:])[:3]
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # children inherit it as their stdin
    os.close(null)
    sock = socket.socket(fileno=int(fd_text))
    sock.setblocking(True)  # sends must not drop messages; recv happens only after select says readable
    zygote = Zygote(sock, token, int(parent_text))
    zygote.install()
    run_task = _preload(zygote)
    request = zygote.serve()
    if request is None:
        os._exit(0)
    run_task(request, token)


if __name__ == "__main__":
    main()
