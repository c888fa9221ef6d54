"""Controlling runs from outside: cancel, a driver killed with SIGKILL, max_concurrent_runs and queueing."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import (
    GATE,
    SLEEPER,
    Background,
    Workspace,
    pid_alive,
    py_task,
    read_pid,
    task_life,
    task_message,
    task_result,
    wait_for,
)

ACTIVE_STATES = {"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"}


def wait_pid(path: Path, timeout: float = 30.0) -> int:
    return wait_for(lambda: read_pid(path), timeout=timeout, what=f"a pid in {path}")


def test_cancel_kills_the_task_and_failure_handlers_still_run(ws: Workspace) -> None:
    ws.write("sleeper.py", SLEEPER)
    pid_file = ws.dir / "pid"
    tasks = [
        py_task("a", "sleeper.py", params=[str(pid_file), "60"]),
        py_task("b", "ok.py", deps=["a"]),
        py_task("c", "ok.py", deps=["a"], run_if="ALL_DONE"),
    ]
    bg = ws.start("run", str(ws.job(tasks)), "--output", "json")
    run_id = ws.wait_active_run()
    ws.wait_task_running(run_id, "a")
    pid = wait_pid(pid_file)
    assert pid in ws.processes(), "the harness sees the task process (so its absence later means something)"

    cancel = ws.cli("runs", "cancel", str(run_id))
    assert cancel.returncode == 0, cancel.stderr

    done = bg.finish(timeout=30)
    assert done.run.run_id == run_id
    assert done.run.results() == {"a": "CANCELED", "b": "UPSTREAM_CANCELED", "c": "SUCCESS"}
    assert task_life(done.run.task("b")) == "SKIPPED"
    assert done.run.result_state == "CANCELED"
    assert done.run.life_cycle_state == "TERMINATED"
    assert done.returncode == 1
    assert not pid_alive(pid), "the canceled task's process survived"
    assert ws.get_run(run_id).result_state == "CANCELED"
    assert ws.list_runs("--active-only") == []


def crash_job(ws: Workspace) -> tuple[Path, Path]:
    """A task that sleeps 30 s on its first execution ever (in any run) and succeeds at once afterwards.

    ``{{task.execution_count}}`` counts within one run, so the pid file marks the first execution across
    runs: a later run of the job (or the retry) finds it and succeeds at once. max_retries 1.
    """
    ws.write(
        "crashy.py",
        """
        import os, sys, time
        if not os.path.exists(sys.argv[1]):
            with open(sys.argv[1], "w") as f:
                f.write(f"{os.getpid()}\\n")
            time.sleep(30)
        print("execution", sys.argv[2], "done")
        """,
    )
    pid_file = ws.dir / "pid"
    task = py_task("sleepy", "crashy.py", params=[str(pid_file), "{{task.execution_count}}"], max_retries=1)
    return ws.job([task]), pid_file


def kill_driver_mid_task(ws: Workspace, job: Path, pid_file: Path) -> tuple[int, int]:
    """Start ``sluice run``, SIGKILL it while its task runs; return the run id and the task's pid."""
    bg: Background = ws.start("run", str(job), "--output", "json")
    run_id = ws.wait_active_run()
    ws.wait_task_running(run_id, "sleepy")
    task_pid = wait_pid(pid_file)
    assert task_pid in ws.processes()
    bg.proc.kill()
    bg.proc.wait(timeout=10)
    wait_for(
        lambda: not pid_alive(task_pid), timeout=5, what=f"task process {task_pid} to die with its driver"
    )
    wait_for(
        lambda: ws.processes() == [],
        timeout=5,
        what="every process of the killed driver (executor, tasks) to be gone",
    )
    return run_id, task_pid


def test_driver_killed_then_reconcile_fails_the_orphan_and_retries(ws: Workspace) -> None:
    job, pid_file = crash_job(ws)
    run_id, _ = kill_driver_mid_task(ws, job, pid_file)

    reconcile = ws.cli("runs", "reconcile")
    assert reconcile.returncode == 0, reconcile.stderr
    assert f"run {run_id}" in reconcile.stdout

    run = ws.get_run(run_id)
    attempts = run.attempts("sleepy")
    assert [a["attempt_number"] for a in attempts] == [0, 1]
    orphan, retry = attempts
    assert task_life(orphan) == "INTERNAL_ERROR"
    assert task_result(orphan) == "FAILED"
    assert "died" in task_message(orphan)
    assert task_life(retry) == "TERMINATED"
    assert task_result(retry) == "SUCCESS"
    assert run.life_cycle_state == "TERMINATED"
    assert run.result_state == "SUCCESS"
    assert not [t["task_key"] for t in run.tasks if task_life(t) in ACTIVE_STATES]
    assert ws.list_runs("--active-only") == []
    logs = ws.cli("runs", "logs", str(run_id), "--task", "sleepy", "--attempt", "1")
    assert "execution 2 done" in logs.stdout
    assert ws.processes() == []


def test_cancel_of_a_run_whose_driver_died_finishes_it(ws: Workspace) -> None:
    job, pid_file = crash_job(ws)
    run_id, _ = kill_driver_mid_task(ws, job, pid_file)

    cancel = ws.cli("runs", "cancel", str(run_id), "--wait", timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    run = ws.get_run(run_id)
    assert run.life_cycle_state == "TERMINATED"
    assert run.result_state == "CANCELED"
    assert not [t["task_key"] for t in run.tasks if task_life(t) in ACTIVE_STATES]
    wait_for(lambda: ws.processes() == [], timeout=10, what="the background driver to exit")


def gate_job(ws: Workspace, **settings: Any) -> tuple[Path, Path, Path]:
    """A one-task job whose task waits for a gate file; returns the job, the pid file and the gate."""
    ws.write("gate.py", GATE)
    pid_file, gate = ws.dir / "pid", ws.dir / "gate"
    job = ws.job([py_task("wait", "gate.py", params=[str(pid_file), str(gate)])], **settings)
    return job, pid_file, gate


def test_max_concurrent_runs_without_queue_skips_the_second_run(ws: Workspace) -> None:
    job, _, gate = gate_job(ws, max_concurrent_runs=1, queue={"enabled": False})
    first = ws.start("run", str(job), "--output", "json")
    first_id = ws.wait_active_run()
    ws.wait_task_running(first_id, "wait")

    second = ws.run(job)
    assert second.returncode == 1
    assert second.run.run_id != first_id
    assert second.run.life_cycle_state == "SKIPPED"
    assert second.run.result_state == "MAXIMUM_CONCURRENT_RUNS_REACHED"
    assert "concurrent" in second.run.state_message
    assert not [t for t in second.run.tasks if t.get("start_time")], "a skipped run started a task"

    gate.touch()
    done = first.finish(timeout=30)
    assert done.run.result_state == "SUCCESS"
    assert done.returncode == 0


def test_max_concurrent_runs_with_queue_runs_the_second_after_the_first(ws: Workspace) -> None:
    job, _, gate = gate_job(ws, max_concurrent_runs=1)
    first = ws.start("run", str(job), "--output", "json")
    first_id = ws.wait_active_run()
    ws.wait_task_running(first_id, "wait")

    second = ws.start("run", str(job), "--output", "json")

    def queued() -> dict[str, Any] | None:
        runs = [r for r in ws.list_runs("--active-only") if r["run_id"] != first_id]
        return runs[0] if runs and runs[0]["state"]["life_cycle_state"] == "QUEUED" else None

    waiting = wait_for(queued, timeout=30, what="the second run to be QUEUED")
    assert waiting["status"] == {
        "state": "QUEUED",
        "queue_details": {
            "code": "MAX_CONCURRENT_RUNS_REACHED",
            "message": waiting["state"]["state_message"],
        },
    }
    assert second.proc.poll() is None, "the queued run's command must wait, not return"

    gate.touch()
    one, two = first.finish(timeout=30), second.finish(timeout=30)
    assert one.run.run_id == first_id
    assert (one.run.result_state, two.run.result_state) == ("SUCCESS", "SUCCESS")
    assert (one.returncode, two.returncode) == (0, 0)
    assert two.run.data["start_time"] >= one.run.data["end_time"]
    assert two.run.task("wait")["start_time"] >= one.run.data["end_time"]
    assert two.run.data["queue_duration"] > 0


def test_cancel_while_waiting_for_retry(ws: Workspace) -> None:
    tasks = [
        py_task("flaky", "fail.py", max_retries=3, min_retry_interval_millis=60_000),
        py_task("cleanup", "ok.py", deps=["flaky"], run_if="ALL_DONE"),
    ]
    bg = ws.start("run", str(ws.job(tasks)), "--output", "json")
    run_id = ws.wait_active_run()

    def waiting_for_retry() -> bool:
        attempts = [t for t in ws.get_run(run_id).tasks if t["task_key"] == "flaky"]
        return len(attempts) == 2 and task_life(attempts[1]) == "WAITING_FOR_RETRY"

    wait_for(waiting_for_retry, timeout=30, what="the retry of flaky to wait")
    assert ws.cli("runs", "cancel", str(run_id)).returncode == 0
    done = bg.finish(timeout=20)
    attempts = done.run.attempts("flaky")
    assert [task_result(a) for a in attempts] == ["FAILED", "CANCELED"]
    assert attempts[1]["start_time"] == 0, "the canceled retry never started"
    assert task_result(done.run.task("cleanup")) == "SUCCESS"
    assert done.run.result_state == "CANCELED"
    assert done.returncode == 1


def test_cancel_of_a_queued_run(ws: Workspace) -> None:
    job, _, gate = gate_job(ws, max_concurrent_runs=1)
    first = ws.start("run", str(job), "--output", "json")
    first_id = ws.wait_active_run()
    ws.wait_task_running(first_id, "wait")
    second = ws.start("run", str(job), "--output", "json")

    def queued_id() -> int | None:
        runs = [r for r in ws.list_runs("--active-only") if r["run_id"] != first_id]
        return int(runs[0]["run_id"]) if runs and runs[0]["state"]["life_cycle_state"] == "QUEUED" else None

    second_id = wait_for(queued_id, timeout=30, what="the second run to be QUEUED")
    assert ws.cli("runs", "cancel", str(second_id)).returncode == 0
    canceled = second.finish(timeout=20)
    assert canceled.run.run_id == second_id
    assert canceled.run.result_state == "CANCELED"
    assert canceled.returncode == 1
    assert not [t for t in canceled.run.tasks if t.get("start_time")], "a task of the canceled run started"
    assert first.proc.poll() is None, "canceling the queued run left the running one alone"
    gate.touch()
    assert first.finish(timeout=30).run.result_state == "SUCCESS"


def test_ctrl_c_on_sluice_run_cancels_the_run(ws: Workspace) -> None:
    ws.write("sleeper.py", SLEEPER)
    pid_file = ws.dir / "pid"
    tasks = [py_task("a", "sleeper.py", params=[str(pid_file), "60"]), py_task("b", "ok.py", deps=["a"])]
    bg = ws.start("run", str(ws.job(tasks)), "--output", "json")
    run_id = ws.wait_active_run()
    ws.wait_task_running(run_id, "a")
    pid = wait_pid(pid_file)

    bg.proc.send_signal(signal.SIGINT)
    code = bg.proc.wait(timeout=20)
    assert code != 0
    wait_for(lambda: not pid_alive(pid), timeout=5, what="the task to be killed")
    run = ws.get_run(run_id)
    assert run.life_cycle_state == "TERMINATED"
    assert run.result_state == "CANCELED"
    assert run.results() == {"a": "CANCELED", "b": "UPSTREAM_CANCELED"}


@pytest.mark.slow
def test_next_run_after_a_dead_driver_is_not_queued_forever(ws: Workspace) -> None:
    job, pid_file = crash_job(ws)
    orphan_id, _ = kill_driver_mid_task(ws, job, pid_file)

    done = ws.run(job, timeout=8)  # about 2 s when working; hangs on the bug
    assert done.run.run_id != orphan_id
    assert done.run.result_state == "SUCCESS"
    orphan = ws.get_run(orphan_id)
    assert orphan.life_cycle_state == "TERMINATED", "the new driver reconciled the orphaned run"
    assert [task_life(a) for a in orphan.attempts("sleepy")] == ["INTERNAL_ERROR", "TERMINATED"]


@pytest.mark.slow
def test_driver_killed_while_a_retry_waits_then_reconcile_runs_it(ws: Workspace) -> None:
    ws.write("flaky.py", "import sys\nif sys.argv[1] == '1':\n    raise RuntimeError('first try fails')\n")
    interval = 3000
    task = py_task(
        "flaky",
        "flaky.py",
        params=["{{task.execution_count}}"],
        max_retries=1,
        min_retry_interval_millis=interval,
    )
    bg = ws.start("run", str(ws.job([task])), "--output", "json")
    run_id = ws.wait_active_run()

    def waiting() -> bool:
        attempts = [t for t in ws.get_run(run_id).tasks if t["task_key"] == "flaky"]
        return len(attempts) == 2 and task_life(attempts[1]) == "WAITING_FOR_RETRY"

    wait_for(waiting, timeout=30, what="the retry to wait")
    bg.proc.kill()
    bg.proc.wait(timeout=10)

    assert ws.cli("runs", "reconcile").returncode == 0
    run = ws.get_run(run_id)
    first, second = run.attempts("flaky")
    assert task_result(first) == "FAILED"
    assert task_result(second) == "SUCCESS"
    assert second["start_time"] >= first["start_time"] + interval, "the interval survives the crash"
    assert second["resolved_values"]["spark_python_task"]["parameters"] == ["2"]
    assert run.result_state == "SUCCESS"


@pytest.mark.slow
def test_orphaned_queued_run_does_not_block_other_jobs(ws: Workspace) -> None:
    job, _, gate = gate_job(ws, max_concurrent_runs=1)
    first = ws.start("run", str(job), "--output", "json")
    first_id = ws.wait_active_run()
    ws.wait_task_running(first_id, "wait")
    second = ws.start("run", str(job), "--output", "json")

    def queued() -> bool:
        return any(r["state"]["life_cycle_state"] == "QUEUED" for r in ws.list_runs("--active-only"))

    wait_for(queued, timeout=30, what="the second run to be QUEUED")
    second.proc.kill()
    second.proc.wait(timeout=10)

    other = ws.job([py_task("solo", "ok.py")], file="other.yml")
    done = ws.run(other, timeout=8)  # about 1 s when working; blocks until the gate opens on the bug
    assert done.run.result_state == "SUCCESS"
    assert first.proc.poll() is None, "the first run is still running"
    gate.touch()
    assert first.finish(timeout=30).run.result_state == "SUCCESS"
