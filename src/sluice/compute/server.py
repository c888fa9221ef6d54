"""Spark Connect servers as managed child processes: start, readiness, stop, and no orphans.

A server is ``python -m sluice.compute.serve`` (see that module) in its own session and process group, with
its output in a log file under ``SLUICE_HOME/compute/logs``. Each server has a state file under
``SLUICE_HOME/compute/servers`` (pid, process start time, port, owner). Three guarantees keep servers from
outliving their owner:

1. an *owned* server reads a pipe from its owner and exits at end of file, which the kernel delivers when
   the owner exits for any reason, ``kill -9`` included;
2. the parent-death signal (``PR_SET_PDEATHSIG``) when the owner starts it from its main thread;
3. :func:`sweep` (run before every start) kills servers whose owner is gone and removes their state files.

A *detached* server (an all-purpose cluster, ``sluice clusters start``) has no owner and runs until
``sluice clusters stop``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from sluice.errors import SluiceError
from sluice.executors import PROCESS_TAG_ENV
from sluice.executors.containment import detached_marker

Engine = Literal["sail", "spark"]
ENGINES: tuple[str, ...] = ("sail", "spark")
#: Seconds a server has to report its port (the JVM needs ~6 s on an idle machine; more when loaded).
START_TIMEOUT = {"sail": 60.0, "spark": 180.0}
#: Seconds between SIGTERM and SIGKILL when stopping a server.
STOP_GRACE = 5.0
_SERVE_MODULE = "sluice.compute.serve"
_PR_SET_PDEATHSIG = 1


class ComputeError(SluiceError):
    """A Spark Connect server could not start, or an endpoint is unusable."""


def compute_dir(home: Path) -> Path:
    return home / "compute"


def _state_dir(home: Path) -> Path:
    return compute_dir(home) / "servers"


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (guards against pid reuse); None if it is gone or a
    zombie (exited, not yet reaped: a detached server's starter never waits for it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[1].split()
    return None if fields[0] == b"Z" else int(fields[19])


@dataclass(frozen=True)
class ServerInfo:
    """What a server's state file records."""

    server_id: str
    engine: str
    pid: int
    start_ticks: int
    port: int
    log: str
    #: Pid and start ticks of the owning process; 0 for a detached server (all-purpose cluster).
    owner_pid: int = 0
    owner_ticks: int = 0
    #: The all-purpose cluster's name, or ``run-<id>/<job cluster key>``.
    name: str = ""
    started: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks

    def owner_alive(self) -> bool:
        return self.owner_pid == 0 or process_start_ticks(self.owner_pid) == self.owner_ticks


class Server:
    """A running server this process started (or found in its state file)."""

    def __init__(self, info: ServerInfo, home: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.info = info
        self.home = home
        self._proc = proc

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    @property
    def state_file(self) -> Path:
        return _state_dir(self.home) / f"{self.info.server_id}.json"

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the server's process group, SIGKILL after ``grace`` seconds; remove its state file."""
        if self._proc is not None:
            _stop_group(self.info.pid, grace, wait=self._proc.wait)
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        elif self.info.alive():
            _stop_group(self.info.pid, grace, wait=lambda timeout: _wait_gone(self.info, timeout))
        self.state_file.unlink(missing_ok=True)


def _wait_gone(info: ServerInfo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while info.alive():
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(_SERVE_MODULE, timeout)
        time.sleep(0.05)


def _stop_group(pid: int, grace: float, *, wait: Callable[[float], object]) -> None:
    """SIGTERM the group led by ``pid``, wait (``Popen.wait`` or :func:`_wait_gone`), SIGKILL what is left."""
    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        try:
            wait(timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the rest of the group (a JVM)
        os.killpg(pid, signal.SIGKILL)


def _set_parent_death_signal() -> None:
    import ctypes  # only when starting a server

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_server(
    home: Path,
    *,
    engine: str = "sail",
    port: int = 0,
    name: str = "",
    detached: bool = False,
    env: dict[str, str] | None = None,
    watch: tuple[int, int] | None = None,
) -> Server:
    """Start a server and wait until it listens; ComputeError (naming the log file) when it cannot.

    By default the server dies with this process. ``detached``: it outlives it (stopped through its state
    file). ``watch=(pid, start ticks)``: it outlives this process but dies with process ``pid``.
    """
    if engine not in ENGINES:
        raise ComputeError(
            f"compute engine '{engine}' is unknown; use one of: {', '.join(ENGINES)} (or sc://...)"
        )
    sweep(home)
    server_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(4).hex()}"
    base = compute_dir(home)
    log = base / "logs" / f"{server_id}.log"
    workdir = base / "work" / server_id
    for d in (log.parent, workdir, _state_dir(home)):
        d.mkdir(parents=True, exist_ok=True)
    owner = os.getpid()
    argv = [sys.executable, "-m", _SERVE_MODULE, "--engine", engine, "--port", str(port)]
    if watch is not None:
        detached = True
        argv += ["--watch-pid", str(watch[0]), "--watch-ticks", str(watch[1])]
    elif not detached:
        argv += ["--owned", "--owner-pid", str(owner)]
    in_main = threading.current_thread() is threading.main_thread()
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    if detached:  # it outlives its starter: never killed as one of the starter's task processes
        tag = child_env.pop(PROCESS_TAG_ENV, None)
        child_env.update(detached_marker(tag))  # the one sanctioned way out of a task's containment
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if detached else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=workdir,
            env=child_env,
            start_new_session=True,
            preexec_fn=None if detached or not in_main else _set_parent_death_signal,
        )
    try:
        bound = _await_port(proc, engine, log)
    except BaseException:
        _stop_group(proc.pid, 1.0, wait=proc.wait)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        raise
    info = ServerInfo(
        server_id=server_id,
        engine=engine,
        pid=proc.pid,
        start_ticks=process_start_ticks(proc.pid) or 0,
        port=bound,
        log=str(log),
        owner_pid=watch[0] if watch else 0 if detached else owner,
        owner_ticks=watch[1] if watch else 0 if detached else process_start_ticks(owner) or 0,
        name=name,
        started=time.time(),
    )
    _write_state(_state_dir(home) / f"{server_id}.json", info)
    if detached:
        # Outlives this process (``sluice clusters start``): stopped through its state file, never waited
        # for here; marking it finished keeps Popen from warning that it still runs.
        proc.returncode = 0
        return Server(info, home)
    return Server(info, home, proc)


def _await_port(proc: subprocess.Popen[bytes], engine: str, log: Path) -> int:
    """The port from the server's ``LISTENING <port>`` line, once the port accepts connections."""
    assert proc.stdout is not None
    timeout = START_TIMEOUT[engine]
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise ComputeError(
                    f"the {engine} Spark Connect server did not start within {timeout:.0f} s; "
                    f"see its log {log}"
                )
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                code = proc.wait()
                raise ComputeError(
                    f"the {engine} Spark Connect server exited with code {code} before listening: "
                    f"{_last_line(log)} (log: {log})"
                )
            line += chunk
    proc.stdout.close()
    word, _, port = line.decode().strip().partition(" ")
    if word != "LISTENING" or not port.isdigit():
        raise ComputeError(f"the {engine} Spark Connect server said {line!r} instead of its port; see {log}")
    if not wait_for_port("127.0.0.1", int(port), timeout=5.0):
        raise ComputeError(
            f"the {engine} Spark Connect server reported port {port} but does not accept; see {log}"
        )
    return int(port)


def _last_line(log: Path) -> str:
    try:
        lines = log.read_bytes()[-4096:].decode(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    useful = [line for line in lines if line.strip()]
    return useful[-1].strip() if useful else "no output"


def wait_for_port(host: str, port: int, *, timeout: float) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            probe.settimeout(min(1.0, max(0.05, timeout)))
            if probe.connect_ex((host, port)) == 0:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _write_state(path: Path, info: ServerInfo) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=1))
    tmp.replace(path)


def read_states(home: Path) -> list[ServerInfo]:
    """Every server state file under ``home`` (unreadable ones are skipped)."""
    infos = []
    for path in sorted(_state_dir(home).glob("*.json")):
        try:
            infos.append(ServerInfo(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return infos


def _is_our_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return _SERVE_MODULE.encode() in f.read()
    except OSError:
        return False


def sweep(home: Path) -> list[ServerInfo]:
    """Kill servers whose owner is gone and forget servers that are gone; the ones swept."""
    swept = []
    for info in read_states(home):
        state_file = _state_dir(home) / f"{info.server_id}.json"
        alive = info.alive()
        if alive and info.owner_alive():
            continue
        if alive and _is_our_server(info.pid):
            _stop_group(info.pid, 1.0, wait=lambda timeout, i=info: _wait_gone(i, timeout))  # type: ignore[misc]
        state_file.unlink(missing_ok=True)
        swept.append(info)
    return swept
