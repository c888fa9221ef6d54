"""Store records -> Jobs API 2.2 shapes (``Run``, ``RunTask``, ``RunState``, ``RunStatus``).

Pure functions: the same shapes serve ``sluice run --output json``, ``sluice runs get`` and the REST API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.states import (
    LifeCycleState,
    ResultState,
    RunStatusState,
    TerminationCode,
    TerminationType,
)
from sluice.store.records import RepairRecord, RunRecord, TaskRunRecord

_STATUS_OF_LIFE_CYCLE = {
    LifeCycleState.QUEUED: RunStatusState.QUEUED,
    LifeCycleState.PENDING: RunStatusState.PENDING,
    LifeCycleState.RUNNING: RunStatusState.RUNNING,
    LifeCycleState.TERMINATING: RunStatusState.TERMINATING,
    LifeCycleState.TERMINATED: RunStatusState.TERMINATED,
    LifeCycleState.SKIPPED: RunStatusState.TERMINATED,
    LifeCycleState.INTERNAL_ERROR: RunStatusState.TERMINATED,
    LifeCycleState.BLOCKED: RunStatusState.BLOCKED,
    LifeCycleState.WAITING_FOR_RETRY: RunStatusState.WAITING,
}

_TERMINATION_OF_RESULT: dict[ResultState, tuple[TerminationCode, TerminationType]] = {
    ResultState.SUCCESS: (TerminationCode.SUCCESS, TerminationType.SUCCESS),
    ResultState.SUCCESS_WITH_FAILURES: (TerminationCode.SUCCESS_WITH_FAILURES, TerminationType.SUCCESS),
    ResultState.FAILED: (TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR),
    ResultState.TIMEDOUT: (TerminationCode.CANCELED, TerminationType.CLIENT_ERROR),
    ResultState.CANCELED: (TerminationCode.USER_CANCELED, TerminationType.SUCCESS),
    ResultState.MAXIMUM_CONCURRENT_RUNS_REACHED: (
        TerminationCode.MAX_CONCURRENT_RUNS_EXCEEDED,
        TerminationType.CLIENT_ERROR,
    ),
    ResultState.EXCLUDED: (TerminationCode.SKIPPED, TerminationType.SUCCESS),
    ResultState.UPSTREAM_FAILED: (TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    ResultState.UPSTREAM_CANCELED: (TerminationCode.SKIPPED, TerminationType.CLIENT_ERROR),
    ResultState.DISABLED: (TerminationCode.DISABLED, TerminationType.SUCCESS),
}


def state_json(
    state: str, result_state: str | None, message: str, *, queue_reason: str | None = None
) -> dict[str, Any]:
    """The deprecated-but-everywhere ``state`` object."""
    out: dict[str, Any] = {"life_cycle_state": state, "state_message": message}
    if result_state is not None:
        out["result_state"] = result_state
        out["user_cancelled_or_timedout"] = result_state in (ResultState.CANCELED, ResultState.TIMEDOUT)
    else:
        out["user_cancelled_or_timedout"] = False
    if queue_reason:
        out["queue_reason"] = queue_reason
    return out


def status_json(
    state: str,
    result_state: str | None,
    message: str,
    *,
    termination_code: str | None = None,
    termination_type: str | None = None,
    queue_reason: str | None = None,
) -> dict[str, Any]:
    """The v2 ``status`` object: ``state`` plus ``termination_details`` or ``queue_details``."""
    life = LifeCycleState(state)
    out: dict[str, Any] = {"state": _STATUS_OF_LIFE_CYCLE[life].value}
    if life is LifeCycleState.INTERNAL_ERROR:
        code, kind = TerminationCode.INTERNAL_ERROR.value, TerminationType.INTERNAL_ERROR.value
        out["termination_details"] = {
            "code": termination_code or code,
            "type": termination_type or kind,
            "message": message,
        }
    elif result_state is not None:
        code_e, kind_e = _TERMINATION_OF_RESULT[ResultState(result_state)]
        out["termination_details"] = {
            "code": termination_code or code_e.value,
            "type": termination_type or kind_e.value,
            "message": message,
        }
    elif life is LifeCycleState.QUEUED and queue_reason:
        out["queue_details"] = {"code": queue_reason, "message": message}
    return out


def _duration(start: int, end: int) -> int:
    return max(0, end - start) if start and end else 0


def task_run_json(tr: TaskRunRecord, task_settings: dict[str, Any] | None) -> dict[str, Any]:
    """One ``RunTask``: the task's settings plus this attempt's facts."""
    out: dict[str, Any] = dict(task_settings or {"task_key": tr.task_key})
    out.update(
        {
            "task_key": tr.task_key,
            "run_id": tr.run_id,
            "attempt_number": tr.attempt_number,
            "start_time": tr.start_time,
            "end_time": tr.end_time,
            "setup_duration": 0,
            "execution_duration": _duration(tr.start_time, tr.end_time),
            "cleanup_duration": 0,
            "run_duration": _duration(tr.start_time, tr.end_time),
            "state": state_json(tr.state, tr.result_state, tr.state_message),
            "status": status_json(tr.state, tr.result_state, tr.state_message),
        }
    )
    if tr.original_attempt_run_id is not None:
        out["original_attempt_run_id"] = tr.original_attempt_run_id
    if tr.resolved_values:
        out["resolved_values"] = tr.resolved_values
    if tr.outcome is not None and "condition_task" in out:
        out["condition_task"] = {**out["condition_task"], "outcome": tr.outcome}
    return out


def run_json(
    run: RunRecord,
    task_runs: Sequence[TaskRunRecord],
    *,
    repairs: Sequence[RepairRecord] = (),
    include_history: bool = False,
) -> dict[str, Any]:
    """A job run as ``runs/get`` returns it, with one ``tasks`` entry per attempt."""
    settings_by_key = {t["task_key"]: t for t in run.settings.get("tasks", [])}
    iterations = [tr for tr in task_runs if tr.parent_task_run_id is not None]
    task_runs = [tr for tr in task_runs if tr.parent_task_run_id is None]
    out: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "creator_user_name": run.creator_user_name,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "run_duration": _duration(run.start_time, run.end_time),
        "queue_duration": _duration(run.queue_time, run.start_time) if run.queue_time else 0,
        "state": state_json(run.state, run.result_state, run.state_message, queue_reason=run.queue_reason),
        "status": status_json(
            run.state,
            run.result_state,
            run.state_message,
            termination_code=run.termination_code,
            termination_type=run.termination_type,
            queue_reason=run.queue_reason,
        ),
        "tasks": [
            _with_stats(task_run_json(tr, settings_by_key.get(tr.task_key)), tr, iterations)
            for tr in task_runs
        ],
        "job_parameters": run.job_parameters,
        "format": "MULTI_TASK",
        "attempt_number": 0,
    }
    if run.job_id is None:
        del out["job_id"]
    if run.overriding_parameters:
        out["overriding_parameters"] = run.overriding_parameters
    if run.trigger_info:
        out["trigger_info"] = run.trigger_info
    if "git_source" in run.settings:
        git = dict(run.settings["git_source"])
        if run.git_commit:
            git["git_snapshot"] = {"used_commit": run.git_commit}
        out["git_source"] = git
    if "schedule" in run.settings and run.trigger == "PERIODIC":
        out["schedule"] = run.settings["schedule"]
    if include_history and repairs:
        out["repair_history"] = [repair_json(r) for r in repairs]
    return out


def _latest_iterations(parent: int, iterations: Sequence[TaskRunRecord]) -> list[TaskRunRecord]:
    latest: dict[int, TaskRunRecord] = {}
    for tr in iterations:
        newer = tr.iteration is not None and (
            tr.iteration not in latest or tr.run_id > latest[tr.iteration].run_id
        )
        if tr.parent_task_run_id == parent and tr.iteration is not None and newer:
            latest[tr.iteration] = tr
    return [latest[i] for i in sorted(latest)]


def _with_stats(
    entry: dict[str, Any], tr: TaskRunRecord, iterations: Sequence[TaskRunRecord]
) -> dict[str, Any]:
    """A for-each task's entry carries ``for_each_task.stats`` of its iterations."""
    if "for_each_task" in entry:
        from sluice.engine.foreach import stats

        latest = _latest_iterations(tr.run_id, iterations)
        entry["for_each_task"] = {
            **entry["for_each_task"],
            "stats": stats([(i.state, i.result_state) for i in latest]),
        }
    return entry


def for_each_run_json(
    run: RunRecord, parent: TaskRunRecord, task_runs: Sequence[TaskRunRecord]
) -> dict[str, Any]:
    """``runs/get`` of a for-each task run: the task, with ``iterations`` (every attempt of each)."""
    settings = next((t for t in run.settings.get("tasks", []) if t["task_key"] == parent.task_key), None)
    iterations = [tr for tr in task_runs if tr.parent_task_run_id == parent.run_id]
    nested = (settings or {}).get("for_each_task", {}).get("task")
    out = _with_stats(task_run_json(parent, settings), parent, iterations)
    out["job_id"], out["job_run_id"] = run.job_id, run.run_id
    out["iterations"] = [
        {**task_run_json(tr, nested), "iteration": tr.iteration}
        for tr in sorted(iterations, key=lambda t: (t.iteration or 0, t.run_id))
    ]
    return out


def repair_json(r: RepairRecord) -> dict[str, Any]:
    """One ``repair_history`` item; only REPAIR items carry an ``id`` (the Jobs API's rule)."""
    msg = ""
    out: dict[str, Any] = {} if r.type == "ORIGINAL" else {"id": r.repair_id}
    return out | {
        "type": r.type,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "state": state_json(r.state, r.result_state, msg),
        "status": status_json(r.state, r.result_state, msg),
        "task_run_ids": list(r.task_run_ids),
    }
