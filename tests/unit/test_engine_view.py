"""Store records as Jobs API 2.2 JSON (sluice.engine.view)."""

from __future__ import annotations

import pytest

from sluice.engine.view import run_json, state_json, status_json
from sluice.store.records import RunRecord, TaskRunRecord


def _run(**kw: object) -> RunRecord:
    base: dict[str, object] = dict(
        run_id=7,
        job_id=3,
        run_name="etl",
        run_type="JOB_RUN",
        trigger="ONE_TIME",
        state="TERMINATED",
        result_state="SUCCESS",
        state_message="",
        termination_code=None,
        termination_type=None,
        queue_reason=None,
        settings={"name": "etl", "tasks": [{"task_key": "a", "max_retries": 2}]},
        job_parameters=[{"name": "env", "default": "dev", "value": "prod"}],
        overriding_parameters={},
        start_time=1_000,
        end_time=4_500,
        queue_time=0,
        created_time=1_000,
    )
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]  # test rows built from a dict


def _task(**kw: object) -> TaskRunRecord:
    base: dict[str, object] = dict(
        run_id=8,
        job_run_id=7,
        task_key="a",
        attempt_number=0,
        state="TERMINATED",
        result_state="SUCCESS",
        state_message="",
        start_time=1_100,
        end_time=2_100,
        created_time=1_000,
    )
    base.update(kw)
    return TaskRunRecord(**base)  # type: ignore[arg-type]  # test rows built from a dict


def test_run_shape() -> None:
    out = run_json(_run(), [_task(), _task(run_id=9, attempt_number=1, original_attempt_run_id=8)])
    assert out["run_id"] == out["number_in_job"] == 7
    assert out["run_duration"] == 3_500
    assert out["state"] == {
        "life_cycle_state": "TERMINATED",
        "result_state": "SUCCESS",
        "state_message": "",
        "user_cancelled_or_timedout": False,
    }
    assert out["status"] == {
        "state": "TERMINATED",
        "termination_details": {"code": "SUCCESS", "type": "SUCCESS", "message": ""},
    }
    assert [t["attempt_number"] for t in out["tasks"]] == [0, 1]
    assert out["tasks"][1]["original_attempt_run_id"] == 8
    assert out["tasks"][0]["max_retries"] == 2  # the task's settings come along
    assert out["job_parameters"][0]["value"] == "prod"


@pytest.mark.parametrize(
    ("life", "result", "status", "code"),
    [
        ("TERMINATED", "FAILED", "TERMINATED", "RUN_EXECUTION_ERROR"),
        ("TERMINATED", "TIMEDOUT", "TERMINATED", "CANCELED"),
        ("TERMINATED", "CANCELED", "TERMINATED", "USER_CANCELED"),
        ("SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "TERMINATED", "MAX_CONCURRENT_RUNS_EXCEEDED"),
        ("SKIPPED", "UPSTREAM_FAILED", "TERMINATED", "SKIPPED"),
        ("SKIPPED", "DISABLED", "TERMINATED", "DISABLED"),
        ("INTERNAL_ERROR", "FAILED", "TERMINATED", "INTERNAL_ERROR"),
    ],
)
def test_termination_details(life: str, result: str, status: str, code: str) -> None:
    out = status_json(life, result, "why")
    assert out["state"] == status
    assert out["termination_details"]["code"] == code
    assert out["termination_details"]["message"] == "why"


def test_waiting_and_queued_states() -> None:
    assert status_json("WAITING_FOR_RETRY", None, "") == {"state": "WAITING"}
    assert status_json("BLOCKED", None, "") == {"state": "BLOCKED"}
    queued = status_json("QUEUED", None, "busy", queue_reason="MAX_CONCURRENT_RUNS_REACHED")
    assert queued == {
        "state": "QUEUED",
        "queue_details": {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": "busy"},
    }


def test_timeouts_and_cancels_flag_user_cancelled_or_timedout() -> None:
    assert state_json("TERMINATED", "TIMEDOUT", "")["user_cancelled_or_timedout"] is True
    assert state_json("TERMINATED", "CANCELED", "")["user_cancelled_or_timedout"] is True
    assert state_json("TERMINATED", "FAILED", "")["user_cancelled_or_timedout"] is False


def test_git_snapshot_and_job_less_runs() -> None:
    run = _run(
        job_id=None,
        settings={"tasks": [], "git_source": {"git_url": "/r", "git_branch": "main"}},
        git_commit="abc",
    )
    out = run_json(run, [])
    assert "job_id" not in out
    assert out["git_source"] == {
        "git_url": "/r",
        "git_branch": "main",
        "git_snapshot": {"used_commit": "abc"},
    }
