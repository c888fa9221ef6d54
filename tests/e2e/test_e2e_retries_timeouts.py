"""Retries, task and job timeouts, and killing task processes for good, through ``sluice run``."""

from __future__ import annotations

import itertools
import time

import pytest

from e2e.helpers import SLEEPER, Workspace, pid_alive, py_task, task_message, task_result, wait_for

#: Fails until its execution count (argv[1]) reaches argv[2].
FLAKY = """
import sys
count, succeed_on = int(sys.argv[1]), int(sys.argv[2])
if count < succeed_on:
    raise RuntimeError(f"attempt {count} fails")
print("succeeded on execution", count)
"""


def test_retries_until_success_with_min_interval(ws: Workspace) -> None:
    ws.write("flaky.py", FLAKY)
    interval = 400
    task = py_task(
        "flaky",
        "flaky.py",
        params=["{{task.execution_count}}", "3"],
        max_retries=2,
        min_retry_interval_millis=interval,
    )
    done = ws.run(ws.job([task]))
    attempts = done.run.attempts("flaky")
    assert [a["attempt_number"] for a in attempts] == [0, 1, 2]
    assert [task_result(a) for a in attempts] == ["FAILED", "FAILED", "SUCCESS"]
    assert "RuntimeError: attempt 1 fails" in task_message(attempts[0])
    assert "RuntimeError: attempt 2 fails" in task_message(attempts[1])
    assert len({a["run_id"] for a in attempts}) == 3, "every attempt is a task run of its own"
    first = attempts[0]["run_id"]
    assert [a.get("original_attempt_run_id") for a in attempts[1:]] == [first, first]
    resolved = [a["resolved_values"]["spark_python_task"]["parameters"] for a in attempts]
    assert resolved == [["1", "3"], ["2", "3"], ["3", "3"]]
    for before, after in itertools.pairwise(attempts):
        assert after["start_time"] >= before["start_time"] + interval, (before, after)
    assert done.run.result_state == "SUCCESS"
    assert done.returncode == 0


def test_max_retries_minus_one_retries_until_success(ws: Workspace) -> None:
    ws.write("flaky.py", FLAKY)
    task = py_task("flaky", "flaky.py", params=["{{task.execution_count}}", "4"], max_retries=-1)
    done = ws.run(ws.job([task]))
    attempts = done.run.attempts("flaky")
    assert [a["attempt_number"] for a in attempts] == [0, 1, 2, 3]
    assert [task_result(a) for a in attempts] == ["FAILED", "FAILED", "FAILED", "SUCCESS"]
    assert done.run.result_state == "SUCCESS"
    assert done.returncode == 0


def test_always_failing_task_stops_after_max_retries(ws: Workspace) -> None:
    done = ws.run(ws.job([py_task("broken", "fail.py", max_retries=1)]))
    attempts = done.run.attempts("broken")
    assert [a["attempt_number"] for a in attempts] == [0, 1]
    assert [task_result(a) for a in attempts] == ["FAILED", "FAILED"]
    assert done.run.result_state == "FAILED"
    assert done.returncode == 1


def test_task_timeout_is_timedout_and_not_retried_by_default(ws: Workspace) -> None:
    ws.write("sleeper.py", SLEEPER)
    pid_file = ws.dir / "pid"
    task = py_task("slow", "sleeper.py", params=[str(pid_file), "30"], timeout_seconds=1, max_retries=1)
    started = time.monotonic()
    done = ws.run(ws.job([task]))
    elapsed = time.monotonic() - started
    attempts = done.run.attempts("slow")
    assert len(attempts) == 1, "a timeout is retried only with retry_on_timeout"
    slow = attempts[0]
    assert task_result(slow) == "TIMEDOUT"
    assert "timed out after 1 second." in task_message(slow).lower()
    assert 1000 <= slow["end_time"] - slow["start_time"] < 5000
    # databricks.md §1.5: the job result follows the leaves; a timed-out leaf is a failed leaf.
    assert done.run.result_state == "FAILED"
    assert done.returncode == 1
    assert elapsed < 15
    pid = int(pid_file.read_text())
    assert not pid_alive(pid)


def test_retry_on_timeout_gives_a_second_attempt(ws: Workspace) -> None:
    ws.write("sleeper.py", SLEEPER)
    task = py_task(
        "slow",
        "sleeper.py",
        params=[str(ws.dir / "pid"), "30"],
        timeout_seconds=1,
        max_retries=1,
        retry_on_timeout=True,
    )
    done = ws.run(ws.job([task]))
    attempts = done.run.attempts("slow")
    assert [a["attempt_number"] for a in attempts] == [0, 1]
    assert [task_result(a) for a in attempts] == ["TIMEDOUT", "TIMEDOUT"]
    assert done.run.result_state == "FAILED"
    assert done.returncode == 1


@pytest.mark.slow
def test_task_ignoring_sigterm_is_killed_after_the_grace(ws: Workspace) -> None:
    ws.write(
        "stubborn.py",
        """
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(sys.argv[1], "w") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(120)
        """,
    )
    pid_file = ws.dir / "pid"
    task = py_task("stubborn", "stubborn.py", params=[str(pid_file)], timeout_seconds=1)
    started = time.monotonic()
    done = ws.run(ws.job([task]), timeout=60)
    elapsed = time.monotonic() - started
    stubborn = done.run.task("stubborn")
    assert task_result(stubborn) == "TIMEDOUT"
    assert stubborn["end_time"] - stubborn["start_time"] < 1000 + 6000 + 1000
    assert elapsed < 1 + 6 + 5, f"the run took {elapsed:.1f} s"
    assert done.returncode == 1
    pid = int(pid_file.read_text())
    assert not pid_alive(pid), f"the task process {pid} survived its timeout"


def test_timeout_kills_the_tasks_children_too(ws: Workspace) -> None:
    ws.write(
        "forker.py",
        """
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "120"])
        escaped = subprocess.Popen(["sleep", "121"], start_new_session=True)
        forked = os.fork()
        if forked == 0:
            time.sleep(120)
            os._exit(0)
        with open(sys.argv[1], "w") as f:
            f.write(f"{os.getpid()} {child.pid} {escaped.pid} {forked}\\n")
        time.sleep(120)
        """,
    )
    pid_file = ws.dir / "pids"
    done = ws.run(ws.job([py_task("forker", "forker.py", params=[str(pid_file)], timeout_seconds=1)]))
    assert task_result(done.run.task("forker")) == "TIMEDOUT"
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 4
    wait_for(
        lambda: not any(pid_alive(p) for p in pids),
        timeout=5,
        what=f"the task and its children to be gone: {[p for p in pids if pid_alive(p)]}",
    )
    assert ws.processes() == [], "a process of this workspace outlived its run"


def test_job_timeout_ends_the_run_timedout(ws: Workspace) -> None:
    ws.write("sleeper.py", SLEEPER)
    tasks = [
        py_task("slow", "sleeper.py", params=[str(ws.dir / "pid"), "30"]),
        py_task("after", "ok.py", deps=["slow"]),
    ]
    started = time.monotonic()
    done = ws.run(ws.job(tasks, timeout_seconds=1))
    elapsed = time.monotonic() - started
    assert done.run.result_state == "TIMEDOUT"
    assert done.run.life_cycle_state == "TERMINATED"
    assert done.returncode == 1
    assert elapsed < 15
    assert task_result(done.run.task("slow")) in ("TIMEDOUT", "CANCELED")
    after = done.run.task("after")
    assert after["start_time"] == 0, "nothing starts after the run timed out"
    assert task_result(after) != "SUCCESS"
    assert not pid_alive(int((ws.dir / "pid").read_text()))


def test_min_retry_interval_counts_from_the_failed_attempts_start(ws: Workspace) -> None:
    ws.write("slow_fail.py", "import sys, time\nif sys.argv[1] == '1':\n    time.sleep(1)\n    sys.exit(1)\n")
    interval = 1500
    task = py_task(
        "slow_fail",
        "slow_fail.py",
        params=["{{task.execution_count}}"],
        max_retries=1,
        min_retry_interval_millis=interval,
    )
    done = ws.run(ws.job([task]))
    first, second = done.run.attempts("slow_fail")
    assert task_result(first) == "FAILED"
    assert task_result(second) == "SUCCESS"
    assert first["end_time"] - first["start_time"] >= 1000
    assert second["start_time"] >= first["start_time"] + interval
    # From the start (databricks.md §1.4), not the end, of the failed attempt: ~0.5 s after its end.
    assert second["start_time"] < first["end_time"] + interval - 300, (first, second)
