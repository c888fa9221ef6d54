"""Rows of the store as immutable values: the contract between the store and its users.

JSON columns are decoded: ``settings`` is the JobSettings document (a dict in Jobs API shape), never a
pydantic object, so the store does not depend on the spec layer. Times are epoch milliseconds; 0 means
"not yet".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    settings: dict[str, Any]
    created_time: int
    updated_time: int
    creator_user_name: str = ""
    #: ``<bundle name>/<resource key>`` for jobs deployed from a bundle; the key redeploys update.
    bundle_key: str | None = None
    #: The file the job was loaded from, for paths that resolve relative to it.
    source_path: str | None = None


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    job_id: int | None
    run_name: str
    run_type: str
    trigger: str
    #: LifeCycleState value.
    state: str
    #: ResultState value, or None while not terminal.
    result_state: str | None
    state_message: str
    termination_code: str | None
    termination_type: str | None
    queue_reason: str | None
    #: The JobSettings the run executes (a snapshot; repairs replace it with the job's current settings).
    settings: dict[str, Any]
    #: ``[{name, default, value}]`` as run-now resolved them.
    job_parameters: list[dict[str, Any]]
    #: Legacy parameter maps actually passed (``notebook_params``, ``python_params`` ...).
    overriding_parameters: dict[str, Any]
    start_time: int
    end_time: int
    queue_time: int
    created_time: int
    idempotency_token: str | None = None
    parent_run_id: int | None = None
    #: Extra trigger facts (``{"run_id": parent task run}``, file arrival location, schedule slot ...).
    trigger_info: dict[str, Any] = field(default_factory=dict)
    #: ``host:pid:starttime`` of the process driving the run, None when nobody drives it.
    driver: str | None = None
    heartbeat_time: int = 0
    cancel_requested: bool = False
    #: Commit checked out for git_source runs.
    git_commit: str | None = None
    repair_count: int = 0
    #: Only-these task keys (run-now ``only``), None for all.
    only_tasks: list[str] | None = None
    #: Who started the run (see sluice.identity); scheduled and run-job runs: the job's creator.
    creator_user_name: str = ""


@dataclass(frozen=True)
class TaskRunRecord:
    #: The task run id: globally unique, from the same id sequence as job runs.
    run_id: int
    job_run_id: int
    task_key: str
    attempt_number: int
    #: LifeCycleState value.
    state: str
    result_state: str | None
    state_message: str
    start_time: int
    end_time: int
    created_time: int
    original_attempt_run_id: int | None = None
    #: The repair that created this task run (0 for the original run).
    repair_id: int = 0
    #: For-each iterations: the task run of the for-each task, and the iteration index.
    parent_task_run_id: int | None = None
    iteration: int | None = None
    #: Parameters after reference resolution, per task type (Jobs API ``resolved_values``).
    resolved_values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_trace: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    #: Directory holding this attempt's context, logs, task values and outputs.
    attempt_dir: str | None = None
    #: Condition tasks: "true" / "false".
    outcome: str | None = None
    #: Anything a task type reports back (notebook exit value, sql output, child run id ...).
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RepairRecord:
    repair_id: int
    run_id: int
    type: str
    start_time: int
    end_time: int
    state: str
    result_state: str | None
    task_run_ids: list[int] = field(default_factory=list)
