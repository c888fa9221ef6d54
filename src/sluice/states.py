"""The Jobs API vocabulary of states and enums, shared by every layer.

Values are exactly the strings of Databricks' Jobs API 2.2 (``databricks-sdk`` ``service/jobs.py``),
so they can be stored, serialised and compared as plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class LifeCycleState(StrEnum):
    """``state.life_cycle_state`` of a job run or a task run."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    SKIPPED = "SKIPPED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    BLOCKED = "BLOCKED"
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_LIFE_CYCLE


_TERMINAL_LIFE_CYCLE = frozenset(
    {LifeCycleState.TERMINATED, LifeCycleState.SKIPPED, LifeCycleState.INTERNAL_ERROR}
)


class ResultState(StrEnum):
    """``state.result_state``: only present once a run or task run is terminal."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    MAXIMUM_CONCURRENT_RUNS_REACHED = "MAXIMUM_CONCURRENT_RUNS_REACHED"
    EXCLUDED = "EXCLUDED"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    DISABLED = "DISABLED"


class RunStatusState(StrEnum):
    """``status.state`` (the v2 status object)."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    BLOCKED = "BLOCKED"
    WAITING = "WAITING"


class TerminationType(StrEnum):
    SUCCESS = "SUCCESS"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CLIENT_ERROR = "CLIENT_ERROR"
    CLOUD_FAILURE = "CLOUD_FAILURE"


class TerminationCode(StrEnum):
    SUCCESS = "SUCCESS"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    USER_CANCELED = "USER_CANCELED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    DISABLED = "DISABLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DRIVER_ERROR = "DRIVER_ERROR"
    REPOSITORY_CHECKOUT_FAILED = "REPOSITORY_CHECKOUT_FAILED"
    INVALID_RUN_CONFIGURATION = "INVALID_RUN_CONFIGURATION"
    RUN_EXECUTION_ERROR = "RUN_EXECUTION_ERROR"
    MAX_CONCURRENT_RUNS_EXCEEDED = "MAX_CONCURRENT_RUNS_EXCEEDED"
    MAX_JOB_QUEUE_SIZE_EXCEEDED = "MAX_JOB_QUEUE_SIZE_EXCEEDED"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    LIBRARY_INSTALLATION_ERROR = "LIBRARY_INSTALLATION_ERROR"
    FEATURE_DISABLED = "FEATURE_DISABLED"


class QueueDetailsCode(StrEnum):
    ACTIVE_RUNS_LIMIT_REACHED = "ACTIVE_RUNS_LIMIT_REACHED"
    MAX_CONCURRENT_RUNS_REACHED = "MAX_CONCURRENT_RUNS_REACHED"
    ACTIVE_RUN_JOB_TASKS_LIMIT_REACHED = "ACTIVE_RUN_JOB_TASKS_LIMIT_REACHED"


class RunIf(StrEnum):
    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class TriggerType(StrEnum):
    PERIODIC = "PERIODIC"
    ONE_TIME = "ONE_TIME"
    RETRY = "RETRY"
    RUN_JOB_TASK = "RUN_JOB_TASK"
    FILE_ARRIVAL = "FILE_ARRIVAL"
    CONTINUOUS = "CONTINUOUS"
    TABLE = "TABLE"
    CONTINUOUS_RESTART = "CONTINUOUS_RESTART"
    MODEL = "MODEL"


class RunType(StrEnum):
    JOB_RUN = "JOB_RUN"
    WORKFLOW_RUN = "WORKFLOW_RUN"
    SUBMIT_RUN = "SUBMIT_RUN"


class RepairType(StrEnum):
    ORIGINAL = "ORIGINAL"
    REPAIR = "REPAIR"


class PauseStatus(StrEnum):
    PAUSED = "PAUSED"
    UNPAUSED = "UNPAUSED"


class Source(StrEnum):
    WORKSPACE = "WORKSPACE"
    GIT = "GIT"


class ConditionOp(StrEnum):
    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"


#: Task results that count as "succeeded" for a downstream run_if (EXCLUDED counts as success).
SUCCESS_RESULTS = frozenset({ResultState.SUCCESS, ResultState.EXCLUDED, ResultState.SUCCESS_WITH_FAILURES})

#: Task results that count as "failed" for a downstream run_if.
FAILURE_RESULTS = frozenset({ResultState.FAILED, ResultState.TIMEDOUT, ResultState.UPSTREAM_FAILED})

#: Task results that count as "canceled" for a downstream run_if.
CANCELED_RESULTS = frozenset({ResultState.CANCELED, ResultState.UPSTREAM_CANCELED})
