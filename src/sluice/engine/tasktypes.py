"""What each task type needs to start: a launch spec for a task process, or the reason it cannot start.

Task types that later issues implement are parsed and validated now; a run that reaches one fails that task
with a clear message, never a silent success.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import params
from sluice.engine.plan import TaskPlan
from sluice.executors import LaunchSpec, TaskKind
from sluice.states import Source

#: Task types parsed and validated but not run by this version, and what to do instead.
NOT_SUPPORTED_YET: dict[str, str] = {
    "notebook_task": "notebook tasks are not supported yet by this version of Sluice",
    "sql_task": "SQL tasks are not supported yet by this version of Sluice",
    "dbt_task": "dbt tasks are not supported yet by this version of Sluice",
    "pipeline_task": "pipeline tasks are not supported yet by this version of Sluice",
}

_REMOTE_PREFIXES = ("dbfs:", "s3:", "s3a:", "gs:", "abfss:", "wasbs:", "adl:", "http:", "https:")


@dataclass(frozen=True)
class Prepared:
    """A task ready to launch, or the error that fails it without launching."""

    spec: LaunchSpec | None
    resolved_values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class LaunchInputs:
    """Everything of the run that a task's launch depends on."""

    attempt_id: int
    attempt_dir: Path
    #: Resolves ``{{...}}`` references for this attempt.
    resolve: Callable[[str], str]
    #: Directory that relative WORKSPACE paths resolve against (the job file's directory).
    base_dir: Path
    #: The git_source checkout, if the job has one.
    repo_dir: Path | None
    job_parameters: Mapping[str, str]
    #: Legacy run-now maps: python_params, python_named_params ...
    overriding: Mapping[str, Any]
    env: Mapping[str, str]


def prepare(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    kind = task.task_type
    if kind == "spark_python_task":
        return _spark_python(task, inputs)
    if kind == "python_wheel_task":
        return _python_wheel(task, inputs)
    reason = NOT_SUPPORTED_YET.get(kind, f"{kind} is not supported by Sluice")
    return Prepared(None, error=f"task '{task.key}': {reason}")


def _source_path(
    path: str, source: str | None, inputs: LaunchInputs, what: str, *, git_by_default: bool = False
) -> Path | str:
    """A task's file as a local path, or an error message.

    An unset ``source`` means WORKSPACE for Python files and GIT for notebooks of a job with git_source
    (the Jobs API's rule for each; ``git_by_default`` selects the notebook one).
    """
    if path.startswith(_REMOTE_PREFIXES):
        return f"{what} '{path}' is not a local path; Sluice runs files from the local file system"
    use_git = source == Source.GIT or (source is None and git_by_default and inputs.repo_dir is not None)
    if use_git:
        if inputs.repo_dir is None:
            return f"{what} '{path}' has source GIT but the job has no git_source"
        resolved = inputs.repo_dir / path.lstrip("/")
    else:
        resolved = Path(path) if Path(path).is_absolute() else inputs.base_dir / path
    if not resolved.is_file():
        return f"{what} '{resolved}' does not exist"
    return resolved


def _spark_python(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    payload = task.payload
    where = _source_path(payload["python_file"], payload.get("source"), inputs, "python_file")
    if isinstance(where, str):
        return Prepared(None, error=where)
    legacy = inputs.overriding.get("python_params")
    argv = [inputs.resolve(p) for p in params.positional(payload.get("parameters") or [], legacy)]
    spec = LaunchSpec(
        attempt_id=inputs.attempt_id,
        kind=TaskKind.PYTHON_FILE,
        target=str(where),
        argv=argv,
        cwd=str(where.parent),
        env=dict(inputs.env),
        attempt_dir=str(inputs.attempt_dir),
    )
    return Prepared(spec, {"spark_python_task": {"parameters": argv}})


def _python_wheel(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    payload = task.payload
    positional_params = payload.get("parameters") or []
    named_params = payload.get("named_parameters")
    argv: list[str]
    resolved: dict[str, Any]
    # Job parameters are pushed down to wheels that take keyword arguments (named_parameters), and to
    # wheels that declare no positional parameters; positional argv never receives them implicitly.
    if named_params is not None or (not positional_params and inputs.job_parameters):
        named = params.merge_named(
            named_params or {},
            inputs.job_parameters,
            inputs.overriding.get("python_named_params"),
        )
        values = {k: inputs.resolve(v) for k, v in named.items()}
        argv = [f"--{k}={v}" for k, v in values.items()]
        resolved = {"named_parameters": values}
    else:
        argv = [inputs.resolve(p) for p in params.positional(positional_params, _legacy_list(inputs))]
        resolved = {"parameters": argv}
    spec = LaunchSpec(
        attempt_id=inputs.attempt_id,
        kind=TaskKind.PYTHON_WHEEL,
        target=f"{payload['package_name']}:{payload['entry_point']}",
        argv=argv,
        cwd=str(inputs.attempt_dir),
        env=dict(inputs.env),
        attempt_dir=str(inputs.attempt_dir),
    )
    return Prepared(spec, {"python_wheel_task": resolved})


def _legacy_list(inputs: LaunchInputs) -> Sequence[str] | None:
    value = inputs.overriding.get("python_params")
    return list(value) if value is not None else None
