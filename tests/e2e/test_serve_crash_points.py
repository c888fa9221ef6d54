"""Crash points: ``sluice serve`` SIGKILLs itself at a named step (``SLUICE_CRASH_AT``), then restarts.

After each crash the store is read as the dead server left it, a server without the hook is started on
it, and the tests check the written policy (docs/guide/server.md, "Crash safety"): no run stuck active,
an interrupted attempt ends INTERNAL_ERROR and is retried by its ``max_retries``, a scheduled slot fires
exactly once (or, rolled back before its commit, the latest due slot fires once with the skipped ones
counted). As Dagster tests its scheduler (reference/peers.md §4b), with real processes and a real clock.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.helpers import Run, Workspace, task_life, wait_for
from e2e.test_api_sdk import Server, start_server
from sluice.store import Store
from sluice.store import scheduler as slot_rows

EVERY_2_S = "0/2 * * * * ?"


@contextmanager
def crash_armed(ws: Workspace, point: str) -> Iterator[None]:
    """Commands started inside get ``SLUICE_CRASH_AT=point``; the workspace's env is restored after."""
    before = ws.env
    ws.env = {**before, "SLUICE_CRASH_AT": point}
    try:
        yield
    finally:
        ws.env = before


def serve_armed(ws: Workspace, token: str, point: str) -> Server:
    with crash_armed(ws, point):
        return start_server(ws, token)


def died_at(server: Server, point: str) -> None:
    """Wait for the server to kill itself at ``point``."""
    code = server.bg.proc.wait(60)
    err = server.bg.stderr.read_text()
    assert code == -signal.SIGKILL, f"sluice serve exited {code}, not by SIGKILL: {err}"
    assert f"crash point {point} reached" in err


@pytest.fixture
def token(ws: Workspace) -> str:
    return str(ws.json("tokens", "create", "--comment", "crash", "--output", "json")["token_value"])


def _create(ws: Workspace, name: str, tasks: list[dict[str, Any]], **settings: Any) -> int:
    path = ws.dir / f"{name}.json"
    path.write_text(json.dumps({"name": name, "tasks": tasks, **settings}))
    return int(ws.json("jobs", "create", "--json", str(path))["job_id"])


def _marker_task(ws: Workspace, log: Path, **fields: Any) -> dict[str, Any]:
    """A task that appends its task run id to ``log`` (one line per attempt that ran its code)."""
    script = ws.write(
        "mark.py",
        f"import os\nwith open({str(log)!r}, 'a') as f:\n"
        "    f.write(os.environ['SLUICE_TASK_RUN_ID'] + '\\n')\n",
    )
    return {"task_key": "t", "spark_python_task": {"python_file": str(script)}, **fields}


def _driver(ws: Workspace, run_id: int) -> str | None:
    store = Store.open(None, ws.home)
    try:
        return store.get_run(run_id).driver
    finally:
        store.close()


def _lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _finished(ws: Workspace, run_id: int) -> Run:
    def done() -> Run | None:
        run = ws.get_run(run_id)
        return run if run.life_cycle_state in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED") else None

    return wait_for(done, timeout=90, what=f"run {run_id} to end after the restart", interval=0.2)


def _nothing_active(ws: Workspace) -> None:
    assert ws.list_runs("--active-only") == [], "no run is left active after the restart"


def _run_now(server: Server, job_id: int) -> int:
    """Run the job; its run id (from the store when the server died before it could answer)."""
    try:
        answer = httpx.post(
            f"{server.url}/api/2.2/jobs/run-now",
            json={"job_id": job_id},
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30,
        )
    except httpx.TransportError:
        # The run was committed before the orchestrator woke and crashed at its armed point, which can
        # happen before the response is written: the run is in the store all the same.
        (run,) = [r for r in server.ws.list_runs() if r["job_id"] == job_id]
        return int(run["run_id"])
    assert answer.status_code == 200, answer.text
    return int(answer.json()["run_id"])


# ------------------------------------------------------------------------------------------ runs and tasks


def test_crash_after_claim_before_any_task(ws: Workspace, token: str) -> None:
    log = ws.dir / "ran.log"
    job_id = _create(ws, "claimed", [_marker_task(ws, log, max_retries=1)])
    server = serve_armed(ws, token, "orchestrator.run_claimed")
    run_id = _run_now(server, job_id)
    died_at(server, "orchestrator.run_claimed")
    left = ws.get_run(run_id)
    assert left.life_cycle_state in ("PENDING", "QUEUED"), "claimed, not started"
    assert _driver(ws, run_id), "the dead server had claimed it"
    assert all(task_life(t) in ("PENDING", "BLOCKED") for t in left.tasks), left.tasks
    assert _lines(log) == []

    start_server(ws, token)
    run = _finished(ws, run_id)
    assert run.result_state == "SUCCESS"
    assert [a["attempt_number"] for a in run.attempts("t")] == [0], "nothing was interrupted: no retry"
    assert len(_lines(log)) == 1, "the task ran once"
    _nothing_active(ws)


@pytest.mark.parametrize("retries", [1, 0])
def test_crash_after_running_commit_before_launch(ws: Workspace, token: str, retries: int) -> None:
    log = ws.dir / "ran.log"
    job_id = _create(ws, "committed", [_marker_task(ws, log, max_retries=retries)])
    server = serve_armed(ws, token, "task.running_committed")
    run_id = _run_now(server, job_id)
    died_at(server, "task.running_committed")
    assert task_life(ws.get_run(run_id).task("t")) == "RUNNING", "RUNNING was committed before the launch"
    assert _lines(log) == [], "the process never started"

    start_server(ws, token)
    run = _finished(ws, run_id)
    first = run.attempts("t")[0]
    assert task_life(first) == "INTERNAL_ERROR"
    assert "died while the task was running" in first["state"]["state_message"]
    if retries:
        assert run.result_state == "SUCCESS"
        assert [task_life(a) for a in run.attempts("t")] == ["INTERNAL_ERROR", "TERMINATED"]
        assert _lines(log) == [str(run.attempts("t")[1]["run_id"])], "only the retry ran the code"
    else:
        assert run.result_state == "FAILED"
        assert len(run.attempts("t")) == 1, "no retry without max_retries"
        assert _lines(log) == []
    _nothing_active(ws)


def test_crash_while_the_task_runs(ws: Workspace, token: str) -> None:
    log, gate = ws.dir / "ran.log", ws.dir / "open"
    script = ws.write(
        "gated.py",
        "import os, sys, time\n"
        f"with open({str(log)!r}, 'a') as f:\n    f.write(os.environ['SLUICE_TASK_RUN_ID'] + '\\n')\n"
        f"while not os.path.exists({str(gate)!r}):\n    time.sleep(0.05)\n",
    )
    task = {"task_key": "t", "spark_python_task": {"python_file": str(script)}, "max_retries": 1}
    job_id = _create(ws, "launched", [task])
    server = serve_armed(ws, token, "task.launched")
    run_id = _run_now(server, job_id)
    died_at(server, "task.launched")
    wait_for(lambda: not ws.processes() or None, timeout=15, what="the task processes to die with the server")
    gate.write_text("open")

    start_server(ws, token)
    run = _finished(ws, run_id)
    assert run.result_state == "SUCCESS"
    assert [task_life(a) for a in run.attempts("t")] == ["INTERNAL_ERROR", "TERMINATED"]
    assert _lines(log)[-1] == str(run.attempts("t")[1]["run_id"])
    _nothing_active(ws)


def test_crash_after_exit_before_the_result_is_recorded(ws: Workspace, token: str) -> None:
    log = ws.dir / "ran.log"
    job_id = _create(ws, "exited", [_marker_task(ws, log, max_retries=1)])
    server = serve_armed(ws, token, "task.exited")
    run_id = _run_now(server, job_id)
    died_at(server, "task.exited")
    first = ws.get_run(run_id).task("t")
    assert task_life(first) == "RUNNING", "the exit was never recorded"
    assert _lines(log) == [str(first["run_id"])], "the code ran to its end"

    start_server(ws, token)
    run = _finished(ws, run_id)
    assert run.result_state == "SUCCESS"
    assert [task_life(a) for a in run.attempts("t")] == ["INTERNAL_ERROR", "TERMINATED"]
    # At least once: an attempt whose end was not recorded counts as interrupted and runs again.
    assert _lines(log) == [str(a["run_id"]) for a in run.attempts("t")]
    _nothing_active(ws)


# ------------------------------------------------------------------------------------------ the scheduler


def _scheduled_job(ws: Workspace) -> int:
    task = {"task_key": "t", "spark_python_task": {"python_file": str(ws.dir / "ok.py")}}
    schedule = {"quartz_cron_expression": EVERY_2_S, "timezone_id": "UTC", "pause_status": "UNPAUSED"}
    return _create(ws, "every-2s", [task], schedule=schedule)


def _slots(ws: Workspace, job_id: int) -> list[slot_rows.SlotRow]:
    store = Store.open(None, ws.home)
    try:
        return slot_rows.list_slots(store, job_id)
    finally:
        store.close()


def _cursor(ws: Workspace, job_id: int) -> int:
    store = Store.open(None, ws.home)
    try:
        row = slot_rows.get_trigger(store, job_id, "schedule")
    finally:
        store.close()
    assert row is not None
    return int(row.state["cursor"])


def _scheduled_runs(ws: Workspace, job_id: int) -> list[dict[str, Any]]:
    return ws.list_runs("--job-id", str(job_id), "--limit", "1000")


def _pause_and_settle(ws: Workspace, job_id: int) -> list[dict[str, Any]]:
    """Pause the schedule, let every run of the job end; its runs, oldest first."""
    ws.json("jobs", "pause", str(job_id))
    runs = _scheduled_runs(ws, job_id)
    for r in runs:
        _finished(ws, int(r["run_id"]))
    return sorted(_scheduled_runs(ws, job_id), key=lambda r: int(r["run_id"]))


def _exactly_once(ws: Workspace, job_id: int, runs: list[dict[str, Any]]) -> None:
    """Each run has its own slot, each slot its own run, and every run ended (none stuck)."""
    times = [int(r["trigger_info"]["scheduled_time"]) for r in runs]
    assert len(set(times)) == len(times), f"a slot fired twice: {times}"
    assert {(s.slot_time, s.run_id) for s in _slots(ws, job_id)} == {
        (int(r["trigger_info"]["scheduled_time"]), int(r["run_id"])) for r in runs
    }
    assert all(r["state"].get("result_state") == "SUCCESS" for r in runs), runs
    _nothing_active(ws)


def test_crash_after_the_slot_commits(ws: Workspace, token: str) -> None:
    server = serve_armed(ws, token, "scheduler.slot_committed")
    job_id = _scheduled_job(ws)  # after the start: the first slot is 2 s away at most
    died_at(server, "scheduler.slot_committed")
    [slot] = _slots(ws, job_id)
    assert slot.slot_time % 2000 == 0
    left = ws.get_run(slot.run_id)
    assert left.life_cycle_state in ("PENDING", "QUEUED"), "committed, claimed by nobody"
    assert left.data["trigger_info"]["scheduled_time"] == slot.slot_time
    assert _cursor(ws, job_id) == slot.slot_time, "the cursor moved with the slot"

    start_server(ws, token)
    assert _finished(ws, slot.run_id).result_state == "SUCCESS", "the orphaned run was claimed and ran"
    runs = _pause_and_settle(ws, job_id)
    assert [int(r["trigger_info"]["scheduled_time"]) for r in runs].count(slot.slot_time) == 1
    assert int(runs[0]["run_id"]) == slot.run_id
    _exactly_once(ws, job_id, runs)


def test_crash_before_the_slot_commits(ws: Workspace, token: str) -> None:
    server = serve_armed(ws, token, "scheduler.slot_uncommitted")
    job_id = _scheduled_job(ws)  # after the start: the first slot is 2 s away at most
    died_at(server, "scheduler.slot_uncommitted")
    assert _slots(ws, job_id) == [], "the slot's transaction was rolled back"
    assert _scheduled_runs(ws, job_id) == [], "and its run with it"
    cursor = _cursor(ws, job_id)
    lost = (cursor // 2000 + 1) * 2000  # the slot the dead server was firing

    start_server(ws, token)
    first = wait_for(
        lambda: _scheduled_runs(ws, job_id) or None, timeout=30, what="the restarted scheduler to fire"
    )[-1]
    runs = _pause_and_settle(ws, job_id)
    assert int(runs[0]["run_id"]) == int(first["run_id"])
    fired = int(first["trigger_info"]["scheduled_time"])
    assert fired >= lost, "nothing before the lost slot fires"
    # After an outage the latest due slot fires once; the ones it replaces are counted, not replayed.
    assert int(first["trigger_info"].get("skipped_slots", 0)) == (fired - lost) // 2000
    _exactly_once(ws, job_id, runs)


def test_an_unknown_crash_point_stops_serve_at_start(ws: Workspace) -> None:
    with crash_armed(ws, "task.exitted"):
        done = ws.cli("serve", "--port", "0")
    assert done.returncode == 2
    assert "SLUICE_CRASH_AT names unknown crash points ['task.exitted']" in done.stderr
    assert "task.exited" in done.stderr
