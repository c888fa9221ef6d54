"""The harness of the end-to-end tests: a workspace with its own SLUICE_HOME and the real CLI.

Every command runs as ``python -m sluice.cli.main ...`` in a subprocess, exactly as a user runs ``sluice``.
Job files and task scripts are written into the test's ``tmp_path`` by the test itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

CLI = (sys.executable, "-m", "sluice.cli.main")
#: Upper bound for one CLI command that is expected to finish on its own.
COMMAND_TIMEOUT = 90.0


# ------------------------------------------------------------------------------------------ task scripts

#: Writes its pid to argv[1], then sleeps argv[2] seconds.
SLEEPER = """
import os, sys, time
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(float(sys.argv[2]))
"""

#: Writes its pid to argv[1], then waits (at most a minute) until the file argv[2] exists.
GATE = """
import os, sys, time
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()}\\n")
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]):
    if time.monotonic() > deadline:
        raise SystemExit("the gate never opened")
    time.sleep(0.05)
"""


# ------------------------------------------------------------------------------------------ Run objects


@dataclass(frozen=True)
class Run:
    """A Run object in Jobs API 2.2 shape, as ``sluice run --output json`` / ``sluice runs get`` print it."""

    data: dict[str, Any]

    @property
    def run_id(self) -> int:
        return int(self.data["run_id"])

    @property
    def job_id(self) -> int:
        return int(self.data["job_id"])

    @property
    def life_cycle_state(self) -> str:
        return str(self.data["state"]["life_cycle_state"])

    @property
    def result_state(self) -> str | None:
        value = self.data["state"].get("result_state")
        return None if value is None else str(value)

    @property
    def state_message(self) -> str:
        return str(self.data["state"].get("state_message", ""))

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return list(self.data.get("tasks", []))

    def attempts(self, key: str) -> list[dict[str, Any]]:
        """Every attempt of task ``key``, in attempt order."""
        found = [t for t in self.tasks if t["task_key"] == key]
        assert found, f"task {key!r} has no entry in run {self.run_id}: {[t['task_key'] for t in self.tasks]}"
        return sorted(found, key=lambda t: int(t["attempt_number"]))

    def task(self, key: str) -> dict[str, Any]:
        """The latest attempt of task ``key``."""
        return self.attempts(key)[-1]

    def results(self) -> dict[str, str | None]:
        """Task key -> result_state of its latest attempt."""
        keys = dict.fromkeys(t["task_key"] for t in self.tasks)
        return {k: task_result(self.task(k)) for k in keys}

    def lives(self) -> dict[str, str]:
        """Task key -> life_cycle_state of its latest attempt."""
        keys = dict.fromkeys(t["task_key"] for t in self.tasks)
        return {k: task_life(self.task(k)) for k in keys}


def task_result(task: dict[str, Any]) -> str | None:
    value = task["state"].get("result_state")
    return None if value is None else str(value)


def task_life(task: dict[str, Any]) -> str:
    return str(task["state"]["life_cycle_state"])


def task_message(task: dict[str, Any]) -> str:
    return str(task["state"].get("state_message", ""))


@dataclass(frozen=True)
class Finished:
    """A ``sluice run --output json`` that ended: its exit code, the Run it printed, and its stderr."""

    returncode: int
    run: Run
    stderr: str


# ------------------------------------------------------------------------------------------ job files


def py_task(
    key: str,
    script: str,
    *,
    params: Sequence[str] = (),
    deps: Sequence[str] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A ``spark_python_task`` running ``script`` (relative to the job file) with ``params`` as argv."""
    task: dict[str, Any] = {
        "task_key": key,
        "spark_python_task": {"python_file": script, "parameters": list(params)},
    }
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    task.update(fields)
    return task


# ------------------------------------------------------------------------------------------ processes


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(b")", 1)[1].split()[0]
    return state not in (b"Z", b"X")


def processes_with_env(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (e.g. ``SLUICE_HOME=/tmp/...``)."""
    wanted = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something other than None/False; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def read_pid(path: Path) -> int | None:
    """The pid a task wrote into ``path`` (None while it has not written it completely)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


# ------------------------------------------------------------------------------------------ the workspace


@dataclass
class Background:
    """A CLI command running in the background; its output goes to files (no pipe can fill up)."""

    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def finish(self, timeout: float = COMMAND_TIMEOUT) -> Finished:
        """Wait for a background ``sluice run --output json`` and parse what it printed."""
        code = self.proc.wait(timeout=timeout)
        out, err = self.stdout.read_text(), self.stderr.read_text()
        assert code in (0, 1), f"sluice run exited {code}\nstdout:\n{out}\nstderr:\n{err}"
        return Finished(code, Run(json.loads(out)), err)


def _default_sigint() -> None:
    """In a child before exec: take SIGINT like a terminal would, even if pytest runs with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Workspace:
    """A directory for job files and scripts, a fresh SLUICE_HOME, and the CLI run against them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "work"
        self.home = root / "home"
        self.dir.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "BUNDLE_VAR_"))}
        env.update(
            SLUICE_HOME=str(self.home),
            SLUICE_CACHE_DIR=str(root / "cache"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        self.env = env
        self.background: list[Background] = []

    # -- files ----------------------------------------------------------------------------------------

    def write(self, name: str, text: str) -> Path:
        """Write ``text`` (dedented) to ``name`` under the workspace directory."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def job(self, tasks: list[dict[str, Any]], *, file: str = "job.yml", **settings: Any) -> Path:
        """A YAML file holding one JobSettings document (name defaults to the file's stem)."""
        doc: dict[str, Any] = {"name": Path(file).stem, **settings, "tasks": tasks}
        path = self.dir / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    # -- commands -------------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def json(self, *args: str) -> Any:
        """Run a command that must succeed and print JSON; return what it printed."""
        done = self.cli(*args)
        assert done.returncode == 0, f"sluice {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout)

    def run(self, path: Path, *args: str, timeout: float = COMMAND_TIMEOUT) -> Finished:
        """``sluice run PATH --output json ARGS``; it must end with exit code 0 or 1 and print a Run."""
        done = self.cli("run", str(path), "--output", "json", *args, timeout=timeout)
        assert done.returncode in (0, 1), (
            f"sluice run exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        assert done.stdout.strip(), f"sluice run exited {done.returncode} with no Run; stderr:\n{done.stderr}"
        return Finished(done.returncode, Run(json.loads(done.stdout)), done.stderr)

    def start(self, *args: str) -> Background:
        """Start a CLI command in the background."""
        n = len(self.background)
        out, err = self.root / f"bg{n}.out", self.root / f"bg{n}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                [*CLI, *args],
                env=self.env,
                cwd=self.dir,
                stdout=o,
                stderr=e,
                stdin=subprocess.DEVNULL,
                preexec_fn=_default_sigint,
            )
        bg = Background(proc, out, err)
        self.background.append(bg)
        return bg

    def get_run(self, run_id: int) -> Run:
        return Run(self.json("runs", "get", str(run_id)))

    def list_runs(self, *args: str) -> list[dict[str, Any]]:
        data = self.json("runs", "list", "--output", "json", *args)
        return list(data.get("runs", []))

    def list_jobs(self) -> list[dict[str, Any]]:
        data = self.json("jobs", "list", "--output", "json")
        return list(data.get("jobs", []))

    def wait_task_running(self, run_id: int, key: str, timeout: float = 30.0) -> Run:
        """Poll ``runs get`` until task ``key`` of ``run_id`` is RUNNING."""

        def running() -> Run | None:
            run = self.get_run(run_id)
            found = [t for t in run.tasks if t["task_key"] == key]
            return run if found and task_life(found[-1]) == "RUNNING" else None

        return wait_for(running, timeout=timeout, what=f"task {key} of run {run_id} to be RUNNING")

    def wait_active_run(self, timeout: float = 30.0) -> int:
        """The id of the (only) active run, once ``runs list --active-only`` shows one."""

        def active() -> int | None:
            runs = self.list_runs("--active-only")
            return int(runs[0]["run_id"]) if runs else None

        return wait_for(active, timeout=timeout, what="an active run")

    # -- cleanup --------------------------------------------------------------------------------------

    def processes(self) -> list[int]:
        """Live processes started for this workspace (they carry its SLUICE_HOME)."""
        return processes_with_env(f"SLUICE_HOME={self.home}")

    def close(self) -> None:
        """Stop what the test left running: its background commands, then their task processes."""
        for bg in self.background:
            if bg.proc.poll() is None:
                bg.proc.kill()
            bg.proc.wait()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
