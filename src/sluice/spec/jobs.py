"""Job definitions as immutable pydantic models in the exact shapes of the Databricks Jobs API 2.2.

Field names are the API's own (``databricks-sdk`` ``service/jobs.py``), so real job JSON and bundle YAML load
unchanged, and every model forbids unknown fields so typos are caught (``depend_on`` -> ``depends_on``).
Task types Sluice does not run (``spark_jar_task`` ...) are kept as plain dicts so such jobs still load
(:mod:`sluice.spec.validate` then refuses the JVM ones, ``spark_jar_task`` and ``spark_submit_task``).

``JobSettings.from_api(dict)`` validates (raising :class:`~sluice.errors.InvalidJobError` with readable
problems) and ``JobSettings.to_api()`` gives the API JSON back; the round trip is lossless.

Models are built lazily (``defer_build``): importing this module only creates classes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from sluice.errors import InvalidJobError, Problem
from sluice.states import ConditionOp, PauseStatus, RunIf, Source

# --------------------------------------------------------------------------------------------------------
# Enumerations of the Jobs API not shared outside the spec
# --------------------------------------------------------------------------------------------------------


class GitProvider(StrEnum):
    """``git_source.git_provider``; matched case-insensitively on input, written in the API's spelling."""

    GIT_HUB = "gitHub"
    BITBUCKET_CLOUD = "bitbucketCloud"
    AZURE_DEV_OPS_SERVICES = "azureDevOpsServices"
    GIT_HUB_ENTERPRISE = "gitHubEnterprise"
    BITBUCKET_SERVER = "bitbucketServer"
    GIT_LAB = "gitLab"
    GIT_LAB_ENTERPRISE_EDITION = "gitLabEnterpriseEdition"
    AWS_CODE_COMMIT = "awsCodeCommit"


class JobEditMode(StrEnum):
    UI_LOCKED = "UI_LOCKED"
    EDITABLE = "EDITABLE"


class JobFormat(StrEnum):
    SINGLE_TASK = "SINGLE_TASK"
    MULTI_TASK = "MULTI_TASK"


class PerformanceTarget(StrEnum):
    STANDARD = "STANDARD"
    PERFORMANCE_OPTIMIZED = "PERFORMANCE_OPTIMIZED"


class HealthMetric(StrEnum):
    RUN_DURATION_SECONDS = "RUN_DURATION_SECONDS"
    STREAMING_BACKLOG_BYTES = "STREAMING_BACKLOG_BYTES"
    STREAMING_BACKLOG_RECORDS = "STREAMING_BACKLOG_RECORDS"
    STREAMING_BACKLOG_SECONDS = "STREAMING_BACKLOG_SECONDS"
    STREAMING_BACKLOG_FILES = "STREAMING_BACKLOG_FILES"


class HealthOperator(StrEnum):
    GREATER_THAN = "GREATER_THAN"


class PeriodicUnit(StrEnum):
    MINUTES = "MINUTES"
    HOURS = "HOURS"
    DAYS = "DAYS"
    WEEKS = "WEEKS"


class TableUpdateCondition(StrEnum):
    ANY_UPDATED = "ANY_UPDATED"
    ALL_UPDATED = "ALL_UPDATED"


class TaskRetryMode(StrEnum):
    NEVER = "NEVER"
    ON_FAILURE = "ON_FAILURE"


class DeploymentKind(StrEnum):
    BUNDLE = "BUNDLE"
    SYSTEM_MANAGED = "SYSTEM_MANAGED"


# --------------------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------------------


def _to_text(value: object) -> object:
    """YAML scalars into API strings, as the bundle CLI does: ``true`` -> "true", ``10`` -> "10"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _none_to_empty(value: object) -> object:
    return () if value is None else value


def _git_provider(value: object) -> object:
    if isinstance(value, str):
        for provider in GitProvider:
            if provider.value.lower() == value.lower():
                return provider
    return value


def _inputs_to_json(value: object) -> object:
    """``for_each_task.inputs`` is a JSON string; a YAML list is accepted and written as JSON."""
    if isinstance(value, list | tuple):
        return json.dumps(list(value), separators=(",", ":"))
    return value


#: A string of the API that YAML may write as a number or boolean.
Text = Annotated[str, BeforeValidator(_to_text)]
TextMap = dict[str, Text]
TextList = tuple[Text, ...]
#: A free-form object of the API that Sluice stores without interpreting (cluster specs, libraries ...).
FreeDict = dict[str, Any]

_TASK_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
_PARAM_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def _check_task_key(value: object) -> object:
    if isinstance(value, str) and not _TASK_KEY_RE.fullmatch(value):
        raise ValueError(f"task_key '{value}' must be 1-100 characters of letters, digits, '_' and '-'")
    return value


def _check_param_name(value: object) -> object:
    if isinstance(value, str) and not _PARAM_NAME_RE.fullmatch(value):
        raise ValueError(f"job parameter name '{value}' may only contain letters, digits, '_', '.' and '-'")
    return value


TaskKey = Annotated[str, BeforeValidator(_check_task_key)]
ParameterName = Annotated[str, BeforeValidator(_check_param_name)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        defer_build=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


def _only_one(model: BaseModel, names: tuple[str, ...], *, required: bool) -> None:
    present = [n for n in names if getattr(model, n) is not None]
    if len(present) > 1:
        raise ValueError(f"give only one of {', '.join(names)}; found {', '.join(present)}")
    if required and not present:
        raise ValueError(f"give one of {', '.join(names)}")


# --------------------------------------------------------------------------------------------------------
# Job-level building blocks
# --------------------------------------------------------------------------------------------------------


class JobParameterDefinition(_Model):
    """One job parameter: ``{name, default}``; values are strings."""

    name: ParameterName
    default: Text


class QueueSettings(_Model):
    enabled: bool


class HealthRule(_Model):
    metric: HealthMetric
    op: HealthOperator
    value: int


class HealthRules(_Model):
    rules: tuple[HealthRule, ...] | None = None


class Webhook(_Model):
    id: str


class WebhookNotifications(_Model):
    on_start: tuple[Webhook, ...] | None = None
    on_success: tuple[Webhook, ...] | None = None
    on_failure: tuple[Webhook, ...] | None = None
    on_duration_warning_threshold_exceeded: tuple[Webhook, ...] | None = None
    on_streaming_backlog_exceeded: tuple[Webhook, ...] | None = None
    on_maintenance_start: tuple[Webhook, ...] | None = None
    on_maintenance_complete: tuple[Webhook, ...] | None = None


class EmailNotifications(_Model):
    """Job (``JobEmailNotifications``) and task (``TaskEmailNotifications``) email lists: the same fields."""

    on_start: tuple[str, ...] | None = None
    on_success: tuple[str, ...] | None = None
    on_failure: tuple[str, ...] | None = None
    on_duration_warning_threshold_exceeded: tuple[str, ...] | None = None
    on_streaming_backlog_exceeded: tuple[str, ...] | None = None
    on_maintenance_start: tuple[str, ...] | None = None
    on_maintenance_complete: tuple[str, ...] | None = None
    #: Deprecated; ``notification_settings.no_alert_for_skipped_runs`` replaces it.
    no_alert_for_skipped_runs: bool | None = None


class JobNotificationSettings(_Model):
    no_alert_for_skipped_runs: bool | None = None
    no_alert_for_canceled_runs: bool | None = None


class TaskNotificationSettings(_Model):
    no_alert_for_skipped_runs: bool | None = None
    no_alert_for_canceled_runs: bool | None = None
    alert_on_last_attempt: bool | None = None


class CronSchedule(_Model):
    quartz_cron_expression: str
    timezone_id: str
    pause_status: PauseStatus | None = None
    sql_condition: FreeDict | None = None


class FileArrivalTrigger(_Model):
    url: str
    min_time_between_triggers_seconds: int | None = Field(default=None, ge=0)
    wait_after_last_change_seconds: int | None = Field(default=None, ge=0)


class PeriodicTrigger(_Model):
    interval: int = Field(ge=1)
    unit: PeriodicUnit


class TableUpdateTrigger(_Model):
    table_names: tuple[str, ...]
    condition: TableUpdateCondition | None = None
    min_time_between_triggers_seconds: int | None = Field(default=None, ge=0)
    wait_after_last_change_seconds: int | None = Field(default=None, ge=0)


#: The kinds of ``trigger``; exactly one is given.
TRIGGER_KINDS: tuple[str, ...] = ("file_arrival", "periodic", "table_update", "model", "job_completion")


class TriggerSettings(_Model):
    pause_status: PauseStatus | None = None
    file_arrival: FileArrivalTrigger | None = None
    periodic: PeriodicTrigger | None = None
    table_update: TableUpdateTrigger | None = None
    model: FreeDict | None = None
    job_completion: FreeDict | None = None
    sql_condition: FreeDict | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TriggerSettings:
        _only_one(self, TRIGGER_KINDS, required=True)
        return self

    @property
    def kind(self) -> str:
        """``file_arrival``, ``periodic``, ``table_update``, ``model`` or ``job_completion``."""
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)


class Continuous(_Model):
    pause_status: PauseStatus | None = None
    task_retry_mode: TaskRetryMode | None = None
    maintenance_window: FreeDict | None = None


class SparseCheckout(_Model):
    patterns: tuple[str, ...] | None = None


class GitSource(_Model):
    git_url: str
    git_provider: Annotated[GitProvider, BeforeValidator(_git_provider)]
    git_branch: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None
    git_snapshot: FreeDict | None = None
    sparse_checkout: SparseCheckout | None = None
    job_source: FreeDict | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> GitSource:
        _only_one(self, ("git_branch", "git_tag", "git_commit"), required=False)
        return self


class JobCluster(_Model):
    job_cluster_key: str
    new_cluster: FreeDict | None = None
    serverless_compute: FreeDict | None = None
    serverless_compute_id: str | None = None


class JobEnvironment(_Model):
    environment_key: str
    spec: FreeDict | None = None


class EnvironmentVariablesSpec(_Model):
    variables: TextMap | None = None
    files: tuple[str, ...] | None = None


class JobEnvironmentVariables(_Model):
    environment_variables_key: str
    spec: EnvironmentVariablesSpec | None = None


class JobRunAs(_Model):
    user_name: str | None = None
    service_principal_name: str | None = None
    group_name: str | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> JobRunAs:
        _only_one(self, ("user_name", "service_principal_name", "group_name"), required=False)
        return self


class JobDeployment(_Model):
    kind: DeploymentKind
    metadata_file_path: str | None = None
    deployment_id: str | None = None
    version_id: str | None = None


# --------------------------------------------------------------------------------------------------------
# Task types
# --------------------------------------------------------------------------------------------------------


class NotebookTask(_Model):
    notebook_path: str
    base_parameters: TextMap | None = None
    source: Source | None = None
    warehouse_id: str | None = None


class SparkPythonTask(_Model):
    python_file: str
    parameters: TextList | None = None
    source: Source | None = None


class PythonWheelTask(_Model):
    package_name: str
    entry_point: str
    parameters: TextList | None = None
    named_parameters: TextMap | None = None


class SqlTaskQuery(_Model):
    query_id: str


class SqlTaskFile(_Model):
    path: str
    source: Source | None = None


class SqlTaskSubscription(_Model):
    destination_id: str | None = None
    user_name: str | None = None


class SqlTaskAlert(_Model):
    alert_id: str
    subscriptions: tuple[SqlTaskSubscription, ...] | None = None
    pause_subscriptions: bool | None = None


class SqlTaskDashboard(_Model):
    dashboard_id: str
    subscriptions: tuple[SqlTaskSubscription, ...] | None = None
    custom_subject: str | None = None
    pause_subscriptions: bool | None = None


class SqlTask(_Model):
    """``warehouse_id`` is required by Databricks; Sluice runs SQL locally and accepts it missing."""

    warehouse_id: str | None = None
    query: SqlTaskQuery | None = None
    file: SqlTaskFile | None = None
    alert: SqlTaskAlert | None = None
    dashboard: SqlTaskDashboard | None = None
    parameters: TextMap | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SqlTask:
        _only_one(self, ("query", "file", "alert", "dashboard"), required=True)
        return self


class DbtTask(_Model):
    commands: tuple[str, ...] = Field(min_length=1, max_length=10)
    project_directory: str | None = None
    profiles_directory: str | None = None
    warehouse_id: str | None = None
    catalog: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    source: Source | None = None

    @model_validator(mode="after")
    def _commands_are_dbt(self) -> DbtTask:
        for i, command in enumerate(self.commands):
            if command.split(maxsplit=1)[:1] != ["dbt"]:
                raise ValueError(f"dbt_task.commands[{i}] '{command}' must start with 'dbt'")
        return self


class PipelineParams(_Model):
    full_refresh: bool | None = None
    full_refresh_selection: tuple[str, ...] | None = None
    refresh_selection: tuple[str, ...] | None = None
    refresh_flow_selection: tuple[str, ...] | None = None
    reset_checkpoint_selection: tuple[str, ...] | None = None


class PipelineTask(_Model):
    pipeline_id: str
    full_refresh: bool | None = None
    full_refresh_selection: tuple[str, ...] | None = None
    refresh_selection: tuple[str, ...] | None = None
    refresh_flow_selection: tuple[str, ...] | None = None
    reset_checkpoint_selection: tuple[str, ...] | None = None
    parameters: TextMap | None = None


#: ``${resources.jobs.<key>.id}``: another job of the same bundle, replaced by its id when deployed.
BundleJobId = Annotated[str, Field(pattern=r"^\$\{resources\.jobs\.[A-Za-z0-9_-]+\.id\}$")]


class RunJobTask(_Model):
    job_id: int | BundleJobId
    job_parameters: TextMap | None = None
    pipeline_params: PipelineParams | None = None
    # Deprecated legacy parameter maps, still accepted by the API.
    notebook_params: TextMap | None = None
    python_params: TextList | None = None
    python_named_params: TextMap | None = None
    jar_params: TextList | None = None
    spark_submit_params: TextList | None = None
    sql_params: TextMap | None = None
    dbt_commands: tuple[str, ...] | None = None


class ConditionTask(_Model):
    op: ConditionOp
    left: Text
    right: Text


class ForEachTask(_Model):
    #: A JSON array, or a reference to one (``{{tasks.a.values.items}}``).
    inputs: Annotated[Text, BeforeValidator(_inputs_to_json)]
    task: Task
    concurrency: int = Field(default=1, ge=1)


class TaskDependency(_Model):
    task_key: str
    #: Only for condition-task parents: "true" or "false".
    outcome: str | None = None


#: Task types Sluice models and runs, in the order of the reference table.
SUPPORTED_TASK_TYPES: tuple[str, ...] = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
)
#: Task types of the Jobs API kept as plain dicts: they load, Sluice does not run them.
OTHER_TASK_TYPES: tuple[str, ...] = (
    "spark_jar_task",
    "spark_submit_task",
    "dashboard_task",
    "alert_task",
    "power_bi_task",
    "clean_rooms_notebook_task",
    "dbt_cloud_task",
    "dbt_platform_task",
    "genie_task",
    "python_operator_task",
    "ai_runtime_task",
    "ai_function_task",
    "gen_ai_compute_task",
    "agentic_task",
)
TASK_TYPES: tuple[str, ...] = SUPPORTED_TASK_TYPES + OTHER_TASK_TYPES

#: Where a task runs; Databricks takes at most one of these.
COMPUTE_FIELDS: tuple[str, ...] = ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key")


class Task(_Model):
    task_key: TaskKey
    description: str | None = None
    depends_on: Annotated[tuple[TaskDependency, ...], BeforeValidator(_none_to_empty)] = ()
    run_if: RunIf = RunIf.ALL_SUCCESS
    disabled: bool | None = None
    timeout_seconds: int | None = Field(default=None, ge=0)
    #: -1 retries forever, 0 never.
    max_retries: int | None = Field(default=None, ge=-1)
    min_retry_interval_millis: int | None = Field(default=None, ge=0)
    retry_on_timeout: bool | None = None
    health: HealthRules | None = None
    email_notifications: EmailNotifications | None = None
    webhook_notifications: WebhookNotifications | None = None
    notification_settings: TaskNotificationSettings | None = None
    # Compute
    existing_cluster_id: str | None = None
    new_cluster: FreeDict | None = None
    job_cluster_key: str | None = None
    environment_key: str | None = None
    compute: FreeDict | None = None
    libraries: tuple[FreeDict, ...] | None = None
    environment_variables_key: str | None = None
    disable_auto_optimization: bool | None = None
    # Task types Sluice runs
    notebook_task: NotebookTask | None = None
    spark_python_task: SparkPythonTask | None = None
    python_wheel_task: PythonWheelTask | None = None
    sql_task: SqlTask | None = None
    dbt_task: DbtTask | None = None
    pipeline_task: PipelineTask | None = None
    run_job_task: RunJobTask | None = None
    condition_task: ConditionTask | None = None
    for_each_task: ForEachTask | None = None
    # Task types kept as data
    spark_jar_task: FreeDict | None = None
    spark_submit_task: FreeDict | None = None
    dashboard_task: FreeDict | None = None
    alert_task: FreeDict | None = None
    power_bi_task: FreeDict | None = None
    clean_rooms_notebook_task: FreeDict | None = None
    dbt_cloud_task: FreeDict | None = None
    dbt_platform_task: FreeDict | None = None
    genie_task: FreeDict | None = None
    python_operator_task: FreeDict | None = None
    ai_runtime_task: FreeDict | None = None
    ai_function_task: FreeDict | None = None
    gen_ai_compute_task: FreeDict | None = None
    agentic_task: FreeDict | None = None

    @model_validator(mode="after")
    def _one_task_type(self) -> Task:
        present = [t for t in TASK_TYPES if getattr(self, t) is not None]
        if len(present) != 1:
            found = f"found {len(present)}: {', '.join(present)}" if present else "found none"
            raise ValueError(
                f"a task needs exactly one task type ({', '.join(SUPPORTED_TASK_TYPES)}, ...); {found}"
            )
        return self

    @property
    def task_type(self) -> str:
        """The name of the task-type field that is set, e.g. ``"spark_python_task"``."""
        for name in TASK_TYPES:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("unreachable: validation guarantees one task type")  # pragma: no cover

    @property
    def dependency_keys(self) -> tuple[str, ...]:
        return tuple(d.task_key for d in self.depends_on)


# --------------------------------------------------------------------------------------------------------
# JobSettings
# --------------------------------------------------------------------------------------------------------


class JobSettings(_Model):
    """A job's settings (``jobs/create`` body, ``jobs/get`` ``settings``), plus bundle ``permissions``."""

    name: Text = "Untitled"
    description: str | None = None
    tasks: Annotated[tuple[Task, ...], BeforeValidator(_none_to_empty)] = ()
    job_clusters: Annotated[tuple[JobCluster, ...], BeforeValidator(_none_to_empty)] = ()
    environments: Annotated[tuple[JobEnvironment, ...], BeforeValidator(_none_to_empty)] = ()
    parameters: Annotated[tuple[JobParameterDefinition, ...], BeforeValidator(_none_to_empty)] = ()
    schedule: CronSchedule | None = None
    trigger: TriggerSettings | None = None
    continuous: Continuous | None = None
    #: Multi-trigger list (preview), kept as data.
    triggers: tuple[FreeDict, ...] | None = None
    max_concurrent_runs: int = Field(default=1, ge=0, le=1000)
    queue: QueueSettings | None = None
    #: Per run; 0 means no timeout.
    timeout_seconds: int | None = Field(default=None, ge=0)
    health: HealthRules | None = None
    email_notifications: EmailNotifications | None = None
    webhook_notifications: WebhookNotifications | None = None
    notification_settings: JobNotificationSettings | None = None
    tags: TextMap | None = None
    git_source: GitSource | None = None
    run_as: JobRunAs | None = None
    edit_mode: JobEditMode | None = None
    format: JobFormat | None = None
    deployment: JobDeployment | None = None
    budget_policy_id: str | None = None
    usage_policy_id: str | None = None
    performance_target: PerformanceTarget | None = None
    parent_path: str | None = None
    duration_target: str | None = None
    environment_variables: tuple[JobEnvironmentVariables, ...] | None = None
    #: ``jobs/create`` access control list, kept as data.
    access_control_list: tuple[FreeDict, ...] | None = None
    #: Bundle ``permissions`` of the job resource, kept as data.
    permissions: tuple[FreeDict, ...] | None = None

    @classmethod
    def from_api(
        cls, data: Mapping[str, Any], *, file: str | None = None, job: str | None = None
    ) -> JobSettings:
        """Validate a JobSettings document; InvalidJobError lists every problem with its field path."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidJobError(problems_from_validation_error(exc, data, file=file, job=job)) from None

    def to_api(self, *, include_defaults: bool = False) -> dict[str, Any]:
        """The Jobs API JSON: the fields that were given (or also defaults), enums as strings, no nulls."""
        return self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude_unset=not include_defaults
        )

    def task(self, key: str) -> Task:
        """The task with this key; KeyError when there is none."""
        for t in self.tasks:
            if t.task_key == key:
                return t
        raise KeyError(key)

    @property
    def task_keys(self) -> tuple[str, ...]:
        return tuple(t.task_key for t in self.tasks)


# --------------------------------------------------------------------------------------------------------
# Readable validation errors
# --------------------------------------------------------------------------------------------------------

Loc = tuple[int | str, ...]


def field_path(loc: Loc) -> str:
    """``("tasks", 2, "depends_on", 0, "task_key")`` -> ``tasks[2].depends_on[0].task_key``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _unwrap(tp: Any) -> Any:
    """The model or element type behind Optional/Annotated wrappers."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is not None and type(None) in get_args(tp):
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose field ``loc`` would name, following JobSettings' field types."""
    tp: Any = JobSettings
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            if get_origin(tp) not in (tuple, list):
                return None
            tp = get_args(tp)[0]
            continue
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return None
        tp.model_rebuild()
        field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        tp = field.annotation
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _closest(word: str, choices: list[str]) -> str:
    import difflib  # only on the error path

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{found[0]}'?)" if found else ""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    loc: Loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"missing required field '{loc[-1]}'" if loc else "missing required field"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = [f.alias or n for n, f in model.model_fields.items()] if model else []
        return f"unknown field '{loc[-1]}'{_closest(str(loc[-1]), known)}"
    if kind == "enum":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _closest(str(err.get("input")), allowed)
        return f"invalid value {_short(err.get('input'))}{hint}; allowed: {', '.join(allowed)}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    msg = str(err["msg"])
    return f"{msg[:1].lower()}{msg[1:]} (got {_short(err.get('input'))})"


def _task_key_at(data: object, loc: Loc) -> str | None:
    if len(loc) < 2 or loc[0] != "tasks" or not isinstance(loc[1], int) or not isinstance(data, Mapping):
        return None
    tasks = data.get("tasks")
    if isinstance(tasks, list | tuple) and 0 <= loc[1] < len(tasks) and isinstance(tasks[loc[1]], Mapping):
        key = tasks[loc[1]].get("task_key")
        return key if isinstance(key, str) else None
    return None


def problems_from_validation_error(
    exc: ValidationError, data: object, *, file: str | None = None, job: str | None = None
) -> list[Problem]:
    """Pydantic errors as Problems: a readable field path, the task key, and a message with the fix."""
    problems: list[Problem] = []
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        problems.append(
            Problem(
                message=_message(err),
                file=file,
                job=job,
                task=_task_key_at(data, loc),
                field=field_path(loc) or None,
            )
        )
    return problems
