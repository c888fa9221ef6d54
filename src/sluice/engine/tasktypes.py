"""What each task type needs to start: a launch spec for a task process, or the reason it cannot start.

Task types that later issues implement are parsed and validated now; a run that reaches one fails that task
with a clear message, never a silent success.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import params
from sluice.engine.plan import TaskPlan
from sluice.executors import WORKSPACE_ROOT_ENV, LaunchSpec, TaskKind
from sluice.states import Source

#: Task types parsed and validated but not run by this version, and what to do instead.
NOT_SUPPORTED_YET: dict[str, str] = {
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
    prepared = _prepare(task, inputs)
    if prepared.spec is None:
        return prepared
    env = {**prepared.spec.env, WORKSPACE_ROOT_ENV: str(workspace_root(prepared.spec, inputs))}
    return dataclasses.replace(prepared, spec=dataclasses.replace(prepared.spec, env=env))


def workspace_root(spec: LaunchSpec, inputs: LaunchInputs) -> Path:
    """The directory ``%run`` and ``dbutils.notebook.run`` may open notebooks in (docs/guide/notebooks.md).

    The git checkout for a task whose file comes from it; otherwise the job's base directory (the bundle
    root, or the job file's directory); a task whose file lies outside both (an absolute path) gets the
    git work tree holding its file (a ``dbutils.notebook.run`` child of a git task), else its file's own
    directory.
    """
    target = Path(spec.target) if spec.kind is not TaskKind.PYTHON_WHEEL else Path(spec.cwd) / "_"
    real = os.path.realpath(target)
    for root in (inputs.repo_dir, inputs.base_dir):
        if root is not None and _inside(real, os.path.realpath(root)):
            return Path(os.path.realpath(root))
    folder = Path(real).parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _prepare(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    kind = task.task_type
    if kind == "spark_python_task":
        return _spark_python(task, inputs)
    if kind == "python_wheel_task":
        return _python_wheel(task, inputs)
    if kind == "notebook_task":
        return _notebook(task, inputs)
    if kind == "sql_task":
        return _sql(task, inputs)
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


def _notebook_file(path: str, source: str | None, inputs: LaunchInputs) -> Path | str:
    """The notebook file ``notebook_path`` names (extension optional, as in Databricks), or an error.

    WORKSPACE paths are relative to the job file's directory (absolute ones are used as they are); GIT
    paths are relative to the checkout. Without ``source``, a job with git_source reads GIT.
    """
    from sluice.notebooks.source import NotebookSourceError, resolve_notebook_path

    if path.startswith(_REMOTE_PREFIXES):
        return f"notebook_path '{path}' is not a local path; Sluice runs notebooks from the local file system"
    use_git = source == Source.GIT or (source is None and inputs.repo_dir is not None)
    if use_git:
        if inputs.repo_dir is None:
            return f"notebook_path '{path}' has source GIT but the job has no git_source"
        base, relative = inputs.repo_dir, path.lstrip("/")
    else:
        base, relative = inputs.base_dir, path
    try:
        return resolve_notebook_path(base, relative)
    except NotebookSourceError as exc:
        return f"notebook_path: {exc}"


def _notebook(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    payload = task.payload
    where = _notebook_file(payload["notebook_path"], payload.get("source"), inputs)
    if isinstance(where, str):
        return Prepared(None, error=f"task '{task.key}': {where}")
    # Widget values: base_parameters, job parameters pushed down over them (or, for jobs without job
    # parameters, the legacy run-now notebook_params), references resolved; always strings.
    own = {str(k): inputs.resolve(str(v)) for k, v in (payload.get("base_parameters") or {}).items()}
    legacy = inputs.overriding.get("notebook_params")
    legacy_values = {str(k): inputs.resolve(str(v)) for k, v in legacy.items()} if legacy else None
    values = params.merge_named(own, inputs.job_parameters, legacy_values)
    env = _with_context_parameters(dict(inputs.env), values)
    spec = LaunchSpec(
        attempt_id=inputs.attempt_id,
        kind=TaskKind.NOTEBOOK,
        target=str(where),
        argv=[],
        cwd=str(where.parent),
        env=env,
        attempt_dir=str(inputs.attempt_dir),
    )
    return Prepared(spec, {"notebook_task": {"base_parameters": values}})


def _sql(task: TaskPlan, inputs: LaunchInputs) -> Prepared:
    payload = task.payload
    file = payload.get("file")
    if not file:
        what = next((k for k in ("query", "dashboard", "alert") if payload.get(k)), "query")
        return Prepared(None, error=f"task '{task.key}': {_SQL_UNSUPPORTED[what]}")
    # An unset source reads GIT in a job with git_source, as for notebooks (the Jobs API's rule for files).
    where = _source_path(file["path"], file.get("source"), inputs, "sql_task file", git_by_default=True)
    if isinstance(where, str):
        return Prepared(None, error=f"task '{task.key}': {where}")
    # Bound to the statements' :name markers: the task's parameters, job parameters pushed down over them.
    own = {str(k): inputs.resolve(str(v)) for k, v in (payload.get("parameters") or {}).items()}
    legacy = inputs.overriding.get("sql_params")  # run-now's legacy map, for jobs without job parameters
    legacy_values = {str(k): inputs.resolve(str(v)) for k, v in legacy.items()} if legacy else None
    values = params.merge_named(own, inputs.job_parameters, legacy_values)
    spec = LaunchSpec(
        attempt_id=inputs.attempt_id,
        kind=TaskKind.SQL,
        target=str(where),
        argv=[],
        cwd=str(where.parent),
        env=_with_context_parameters(dict(inputs.env), values),
        attempt_dir=str(inputs.attempt_dir),
    )
    return Prepared(spec, {"sql_task": {"parameters": values}})


_SQL_UNSUPPORTED = {
    "query": "sql_task.query names a saved query of a Databricks workspace, which Sluice does not have; "
    "put the SQL in a file and use sql_task.file.path instead",
    "dashboard": "sql_task.dashboard (refreshing a Databricks SQL dashboard) is not supported by Sluice; "
    "use sql_task.file with the dashboard's queries",
    "alert": "sql_task.alert (evaluating a Databricks SQL alert) is not supported by Sluice; "
    "use sql_task.file with a query and a condition_task on its output",
}


def _with_context_parameters(env: dict[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The task environment with the context's ``parameters`` replaced by the notebook's widget values.

    ``dbutils.widgets`` reads its job-passed values from the context (docs/protocol.md); for a notebook
    task they are the merged map, not only the job parameters.
    """
    import json

    from sluice.runtime.context import (
        CONTEXT_ENV,
        CONTEXT_FILE,
        CONTEXT_JSON_ENV,
        INLINE_LIMIT,
        context_document,
        write_context,
    )

    inline = env.get(CONTEXT_JSON_ENV)
    if inline is not None:
        data = json.loads(inline)
    elif CONTEXT_ENV in env:
        data = json.loads(Path(env[CONTEXT_ENV]).read_text(encoding="utf-8"))
    else:
        return env
    data.pop("version", None)
    data["parameters"] = dict(values)
    document = context_document(data)
    if len(document) <= INLINE_LIMIT:
        env.pop(CONTEXT_ENV, None)
        env[CONTEXT_JSON_ENV] = document
        return env
    path = Path(env.get(CONTEXT_ENV) or Path(data["attempt_dir"]) / CONTEXT_FILE)
    write_context(path, data)
    env.pop(CONTEXT_JSON_ENV, None)
    env[CONTEXT_ENV] = str(path)
    return env
