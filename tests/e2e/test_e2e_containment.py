"""A task cannot outlive its timeout or cancel: not even a descendant that left its session and environment.

The escaper below starts a child with a scrubbed environment (no ``SLUICE_PROCESS_TAG``, no
``SLUICE_HOME``) in a new session; that child forks again, the middle process exits (so the daemon is an
orphan), and the daemon beats a heartbeat file with its pid. Before containment, 3 of 3 tries left it
beating after the run ended (docs/adr/0004-fork-server-for-task-processes.md, revision 2).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.helpers import Workspace, pid_alive, py_task, task_result, wait_for

ESCAPER = """
import os, subprocess, sys, time
heartbeat = sys.argv[1]
DAEMON = '''
import os, sys, time
if os.fork():
    os._exit(0)        # the middle process exits: the daemon is an orphan
os.setsid()            # and leaves the session again
beat = 0
while True:
    beat += 1
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {beat}\\\\n")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(0.05)
'''
subprocess.Popen(
    [sys.executable, "-c", DAEMON, heartbeat],
    env={},                        # no marker, no SLUICE_HOME
    start_new_session=True,        # its own session and process group
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
).wait()
while not os.path.exists(heartbeat):
    time.sleep(0.01)
print("escaped", flush=True)
time.sleep(120)
"""


def beat(heartbeat: Path) -> tuple[int, int] | None:
    try:
        text = heartbeat.read_text()
    except FileNotFoundError:
        return None
    if not text.endswith("\n"):
        return None
    pid, count = text.split()
    return int(pid), int(count)


@pytest.fixture(params=["auto", "subreaper"])
def heartbeat(ws: Workspace, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The heartbeat file, with the cgroup layer on where the host allows it (auto) and off (subreaper)."""
    ws.env["SLUICE_CONTAINMENT"] = request.param
    path = ws.dir / "heartbeat"
    yield path
    found = beat(path)  # if containment failed, do not leave the daemon beating on the machine
    if found is not None and pid_alive(found[0]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(found[0], signal.SIGKILL)


def assert_stopped(heartbeat: Path) -> None:
    found = beat(heartbeat)
    assert found is not None, "the escaper never started its daemon"
    daemon = found[0]
    wait_for(lambda: not pid_alive(daemon), timeout=10, what=f"the escaped daemon {daemon} to be killed")
    last = beat(heartbeat)
    time.sleep(0.3)  # several beat periods: a live daemon would have written again
    assert beat(heartbeat) == last, "the heartbeat goes on"


def test_a_timeout_kills_a_descendant_that_left_the_session_and_the_environment(
    ws: Workspace, heartbeat: Path
) -> None:
    ws.write("escaper.py", ESCAPER)
    task = py_task("escaper", "escaper.py", params=[str(heartbeat)], timeout_seconds=2)
    done = ws.run(ws.job([task]))
    assert task_result(done.run.task("escaper")) == "TIMEDOUT"
    assert_stopped(heartbeat)


def test_a_cancel_kills_a_descendant_that_left_the_session_and_the_environment(
    ws: Workspace, heartbeat: Path
) -> None:
    ws.write("escaper.py", ESCAPER)
    bg = ws.start(
        "run", str(ws.job([py_task("escaper", "escaper.py", params=[str(heartbeat)])])), "--output", "json"
    )
    run_id = ws.wait_active_run()
    wait_for(lambda: beat(heartbeat), timeout=30, what="the daemon's first heartbeat")
    cancel = ws.cli("runs", "cancel", str(run_id))
    assert cancel.returncode == 0, cancel.stderr
    done = bg.finish(timeout=30)
    assert task_result(done.run.task("escaper")) == "CANCELED"
    assert_stopped(heartbeat)


def test_a_normal_exit_kills_a_descendant_that_left_the_session_and_the_environment(
    ws: Workspace, heartbeat: Path
) -> None:
    ws.write("escaper.py", ESCAPER.replace("time.sleep(120)", "pass"))
    done = ws.run(ws.job([py_task("escaper", "escaper.py", params=[str(heartbeat)])]))
    assert task_result(done.run.task("escaper")) == "SUCCESS"
    assert_stopped(heartbeat)
