"""Whole-job checks the models cannot make alone, reported all at once with file, job, task and field.

The models (:mod:`sluice.spec.jobs`) check each object in isolation (types, enums, ranges, one task type per
task); here the job is checked as a whole: unique task keys, dependencies that exist and form no cycle,
``outcome`` only after condition tasks, condition tasks without retries or notifications, one level of
for-each, compute keys that are defined, every ``{{...}}`` reference inside a known namespace, a
``git_source`` git can be given safely (:func:`sluice.gitsource.git_source_problems`), and no task type that
needs a JVM (``spark_jar_task``, ``spark_submit_task``). For jobs loaded from files, :func:`missing_files`
checks that the notebooks, Python files and SQL files of workspace-sourced tasks exist.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from sluice.dag import find_cycle
from sluice.errors import InvalidJobError, Problem
from sluice.refs import RefScope, check_references
from sluice.spec.bundle import LoadedJob, build_job, load_raw_jobs
from sluice.spec.jobs import COMPUTE_FIELDS, JobSettings, Task, problems_from_validation_error

__all__ = [
    "load_and_validate",
    "missing_files",
    "problems_from_validation_error",
    "validate",
    "validate_settings",
]

_NO_VARS: Mapping[str, str] = MappingProxyType({})
#: Inline for-each input arrays are limited to this many characters (task-value references allow more).
MAX_INLINE_FOR_EACH_INPUTS = 10_000
#: A job has at most this many tasks (Databricks refuses more on create, reset and update).
MAX_TASKS = 1000
#: Task fields whose text is prose, not a place where ``{{...}}`` references are resolved.
_NOT_REFERENCE_FIELDS = frozenset({"task_key", "description", "depends_on"})


def load_and_validate(
    path: Path,
    *,
    target: str | None = None,
    variables: Mapping[str, str] = _NO_VARS,
    job_key: str | None = None,
) -> list[LoadedJob]:
    """:func:`~sluice.spec.bundle.load_jobs` plus :func:`validate`; InvalidJobError lists every problem."""
    jobs: list[LoadedJob] = []
    problems: list[Problem] = []
    for raw in load_raw_jobs(path, target=target, variables=variables, job_key=job_key):
        try:
            job = build_job(raw)
        except InvalidJobError as exc:
            problems.extend(exc.problems)
            continue
        jobs.append(job)
        problems.extend(validate(job))
        problems.extend(missing_files(job))
    if problems:
        raise InvalidJobError(problems)
    return jobs


def validate(job: LoadedJob) -> list[Problem]:
    """Every problem of one loaded job; [] when it is valid."""
    return validate_settings(job.settings, file=str(job.source_file), job=job.key)


#: Path prefixes of storage Sluice does not read task files from (a run-time error names them).
_REMOTE_PREFIXES = ("dbfs:", "s3:", "s3a:", "gs:", "abfss:", "wasbs:", "adl:", "http:", "https:")


_FILE_KINDS = {
    "notebook_task.notebook_path": "notebook",
    "spark_python_task.python_file": "python_file",
    "sql_task.file.path": "SQL file",
}


def missing_files(job: LoadedJob) -> list[Problem]:
    """A problem for every notebook, Python file and SQL file of a task that is not on disk.

    Only files the task reads from the workspace, i.e. the local file system: a GIT source is checked out
    at run time, and paths that are references (``{{...}}``) or remote storage (``dbfs:/...``) are left to
    the run. Notebook paths may leave out the extension, as Sluice resolves them when it runs the task
    (:data:`sluice.notebooks.source.NOTEBOOK_EXTENSIONS`). Relative paths are relative to the job's file.
    """
    from sluice.notebooks.source import NOTEBOOK_EXTENSIONS
    from sluice.spec.bundle_yaml import record

    has_git = job.settings.git_source is not None
    base = job.source_file.parent
    problems: list[Problem] = []
    for i, top in enumerate(job.settings.tasks):
        inner = top.for_each_task.task if top.for_each_task is not None else None
        for t, where in ((top, f"tasks[{i}]"), (inner, f"tasks[{i}].for_each_task.task")):
            if t is None:
                continue
            checks: list[tuple[str, str, bool, tuple[str, ...]]] = []  # field, path, from git, extensions
            if t.notebook_task is not None:
                nb = t.notebook_task
                git = nb.source == "GIT" or (nb.source is None and has_git)
                checks.append(("notebook_task.notebook_path", nb.notebook_path, git, NOTEBOOK_EXTENSIONS))
            if t.spark_python_task is not None:
                py = t.spark_python_task
                checks.append(("spark_python_task.python_file", py.python_file, py.source == "GIT", ()))
            if t.sql_task is not None and t.sql_task.file is not None:
                f = t.sql_task.file
                git = f.source == "GIT" or (f.source is None and has_git)
                checks.append(("sql_task.file.path", f.path, git, ()))
            for field, path, git, extensions in checks:
                if git or not path or path.startswith(_REMOTE_PREFIXES) or "{{" in path or "${" in path:
                    continue
                given = Path(path) if Path(path).is_absolute() else base / path
                candidates = [given, *(given.with_name(given.name + ext) for ext in extensions)]
                found = next((c for c in candidates if c.is_file()), None)
                if found is not None:
                    record("exists", found, ("yes",))
                    continue
                tried = f" (nor with {', '.join(extensions)})" if extensions else ""
                what = _FILE_KINDS[field]
                problems.append(
                    Problem(
                        f"{what} '{path}' not found: no file {given}{tried}",
                        file=str(job.source_file),
                        job=job.key,
                        task=t.task_key,
                        field=f"{where}.{field}",
                    )
                )
    return problems


#: Task types of the Jobs API that need a JVM: why Sluice refuses them, and what to use instead.
_JVM_TASKS = {
    "spark_jar_task": (
        "spark_jar_task runs a JAR's main class in the JVM of a Spark cluster; Sluice runs Python files, "
        "notebooks and SQL against a Spark Connect engine (sail, or the JVM Spark Connect server), which "
        "cannot run a JAR: that would need a classic Apache Spark driver (spark-submit). Port the job to a "
        "spark_python_task or notebook_task, or run it on Databricks"
    ),
    "spark_submit_task": (
        "spark_submit_task runs spark-submit on a classic Apache Spark cluster (a JVM driver with its jars "
        "and --conf settings), which Sluice does not provide: it runs Python files, notebooks and SQL "
        "against a Spark Connect engine. For a Python script use a spark_python_task with its python_file "
        "and parameters; a JAR needs Databricks or your own Spark cluster"
    ),
}


def validate_settings(
    settings: JobSettings,
    *,
    file: str | None = None,
    job: str | None = None,
    allow_local_git: bool = True,
) -> list[Problem]:
    """Every problem of one job's settings (for callers without a file, e.g. ``jobs/create``).

    ``allow_local_git=False`` refuses a ``git_source.git_url`` that is a local path or ``file://`` (a
    server without ``allow_local_git_sources``).
    """
    c = _Checker(settings, file, job)
    c.task_count()
    c.task_keys()
    c.dependencies()
    c.cycle()
    c.parameters()
    c.triggers()
    c.git_source(allow_local=allow_local_git)
    for i, task in enumerate(settings.tasks):
        c.task(task, f"tasks[{i}]", task.task_key)
        fe = task.for_each_task
        if fe is not None:
            c.for_each(fe.inputs, f"tasks[{i}].for_each_task", task.task_key)
            c.task(fe.task, f"tasks[{i}].for_each_task.task", task.task_key, nested=True)
    c.references()
    return c.problems


def _closest(word: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


@dataclass
class _Checker:
    settings: JobSettings
    file: str | None
    job: str | None

    def __post_init__(self) -> None:
        self.problems: list[Problem] = []
        self.keys = frozenset(self.settings.task_keys)
        self.kinds: dict[str, str] = {}
        for t in self.settings.tasks:
            self.kinds.setdefault(t.task_key, t.task_type)

    def add(self, message: str, task: str | None = None, field: str | None = None) -> None:
        self.problems.append(Problem(message, file=self.file, job=self.job, task=task, field=field))

    # -- the task graph -----------------------------------------------------------------------------------

    def task_count(self) -> None:
        count = len(self.settings.tasks)
        if count > MAX_TASKS:
            self.add(
                f"the job has {count} tasks; a job may have at most {MAX_TASKS} tasks (Databricks' limit): "
                "split it into jobs that run each other with run_job_task, or use a for_each_task",
                field="tasks",
            )

    def task_keys(self) -> None:
        first: dict[str, int] = {}
        for i, t in enumerate(self.settings.tasks):
            if t.task_key in first:
                self.add(
                    f"task key '{t.task_key}' is already used by tasks[{first[t.task_key]}]; "
                    "task keys must be unique",
                    t.task_key,
                    f"tasks[{i}].task_key",
                )
            first.setdefault(t.task_key, i)

    def dependencies(self) -> None:
        for i, t in enumerate(self.settings.tasks):
            seen: set[str] = set()
            for j, dep in enumerate(t.depends_on):
                where = f"tasks[{i}].depends_on[{j}]"
                parent = dep.task_key
                if parent == t.task_key:
                    self.add(f"task '{parent}' depends on itself", t.task_key, f"{where}.task_key")
                elif parent not in self.keys:
                    hint = _closest(parent, self.keys - {t.task_key})
                    self.add(
                        f"depends_on '{parent}' is not a task key{hint}", t.task_key, f"{where}.task_key"
                    )
                elif parent in seen:
                    self.add(f"depends_on names '{parent}' more than once", t.task_key, f"{where}.task_key")
                seen.add(parent)
                if dep.outcome is not None:
                    self.outcome(dep.outcome, parent, t.task_key, f"{where}.outcome")

    def outcome(self, outcome: str, parent: str, task: str, where: str) -> None:
        if outcome not in ("true", "false"):
            self.add(f'outcome must be "true" or "false", not \'{outcome}\'', task, where)
            return
        kind = self.kinds.get(parent)
        if kind is not None and kind != "condition_task":
            self.add(
                f"outcome '{outcome}' is only for dependencies on a condition_task; '{parent}' is a {kind}",
                task,
                where,
            )

    def cycle(self) -> None:
        deps: dict[str, list[str]] = {}
        for t in self.settings.tasks:
            parents = [p for p in t.dependency_keys if p in self.keys and p != t.task_key]
            deps.setdefault(t.task_key, []).extend(parents)
        found = find_cycle(deps)
        if found:
            self.add(
                f"tasks depend on each other in a cycle: {' -> '.join(found)} (each depends on the next)",
                found[0],
                "tasks",
            )

    # -- job-level settings -------------------------------------------------------------------------------

    def parameters(self) -> None:
        first: dict[str, int] = {}
        for i, p in enumerate(self.settings.parameters):
            if p.name in first:
                self.add(
                    f"job parameter '{p.name}' is already defined by parameters[{first[p.name]}]",
                    field=f"parameters[{i}].name",
                )
            first.setdefault(p.name, i)

    def triggers(self) -> None:
        s = self.settings
        kinds = [n for n in ("schedule", "trigger", "continuous") if getattr(s, n) is not None]
        if len(kinds) > 1:
            self.add(f"a job takes one of schedule, trigger and continuous; found {', '.join(kinds)}")
        if s.triggers and kinds:
            self.add(f"triggers cannot be combined with {', '.join(kinds)}", field="triggers")
        if s.schedule is not None:
            self.schedule(s.schedule.quartz_cron_expression, s.schedule.timezone_id)

    def schedule(self, expression: str, timezone_id: str) -> None:
        """A schedule's Quartz expression and time zone, checked as the scheduler will read them."""
        from sluice import cron

        try:
            cron.parse(expression)
        except cron.CronError as exc:
            self.add(str(exc), field="schedule.quartz_cron_expression")
        try:
            cron.resolve_timezone(timezone_id)
        except cron.CronError as exc:
            self.add(str(exc), field="schedule.timezone_id")

    def git_source(self, *, allow_local: bool) -> None:
        from sluice.gitsource import git_source_problems

        git = self.settings.git_source
        if git is None:
            return
        for name, message in git_source_problems(git.model_dump(), allow_local=allow_local):
            self.add(message, field=f"git_source.{name}")

    # -- one task -----------------------------------------------------------------------------------------

    def task(self, t: Task, where: str, owner: str, *, nested: bool = False) -> None:
        kind = t.task_type
        if kind in _JVM_TASKS:
            self.add(_JVM_TASKS[kind], owner, f"{where}.{kind}")
        if t.condition_task is not None:
            self.condition(t, where, owner)
        wheel = t.python_wheel_task
        if wheel is not None and wheel.parameters is not None and wheel.named_parameters is not None:
            self.add(
                "python_wheel_task takes parameters or named_parameters, not both",
                owner,
                f"{where}.python_wheel_task",
            )
        if nested and t.for_each_task is not None:
            self.add(
                "the task of a for_each_task cannot itself be a for_each_task",
                owner,
                f"{where}.for_each_task",
            )
        self.compute(t, where, owner)

    def condition(self, t: Task, where: str, owner: str) -> None:
        if t.max_retries not in (None, 0):
            self.add("a condition_task cannot retry; remove max_retries", owner, f"{where}.max_retries")
        if t.retry_on_timeout:
            self.add(
                "a condition_task cannot retry; remove retry_on_timeout", owner, f"{where}.retry_on_timeout"
            )
        for name in ("email_notifications", "webhook_notifications", "notification_settings"):
            if getattr(t, name) is not None:
                self.add(f"a condition_task sends no notifications; remove {name}", owner, f"{where}.{name}")

    def compute(self, t: Task, where: str, owner: str) -> None:
        given = [f for f in COMPUTE_FIELDS if getattr(t, f) is not None]
        if len(given) > 1:
            self.add(
                f"give at most one of {', '.join(COMPUTE_FIELDS)}; found {', '.join(given)}", owner, where
            )
        clusters = {c.job_cluster_key for c in self.settings.job_clusters}
        if t.job_cluster_key is not None and t.job_cluster_key not in clusters:
            self.add(
                f"job_cluster_key '{t.job_cluster_key}' is not defined in job_clusters"
                f"{_closest(t.job_cluster_key, clusters)}",
                owner,
                f"{where}.job_cluster_key",
            )
        environments = {e.environment_key for e in self.settings.environments}
        if t.environment_key is not None and t.environment_key not in environments:
            self.add(
                f"environment_key '{t.environment_key}' is not defined in environments"
                f"{_closest(t.environment_key, environments)}",
                owner,
                f"{where}.environment_key",
            )

    def for_each(self, inputs: str, where: str, owner: str) -> None:
        if "{{" in inputs:
            return
        try:
            value = json.loads(inputs)
        except ValueError:
            value = None
        if not isinstance(value, list):
            self.add(
                "inputs must be a JSON array or a reference such as {{tasks.<key>.values.<name>}}",
                owner,
                f"{where}.inputs",
            )
        elif len(inputs) > MAX_INLINE_FOR_EACH_INPUTS:
            self.add(
                f"inline inputs are limited to {MAX_INLINE_FOR_EACH_INPUTS:,} characters; "
                "pass a larger array as a task value reference",
                owner,
                f"{where}.inputs",
            )

    # -- {{...}} references -------------------------------------------------------------------------------

    def references(self) -> None:
        params = frozenset(p.name for p in self.settings.parameters)
        scope = RefScope(task_keys=self.keys, parameter_names=params)
        loop_scope = RefScope(task_keys=self.keys, parameter_names=params, in_for_each=True)
        for i, p in enumerate(self.settings.parameters):
            for message in check_references(p.default, scope):
                self.add(message, field=f"parameters[{i}].default")
        for i, t in enumerate(self.settings.tasks):
            for where, text in _strings(t, f"tasks[{i}]"):
                in_loop = where.startswith(f"tasks[{i}].for_each_task.task.")
                for message in check_references(text, loop_scope if in_loop else scope):
                    self.add(message, t.task_key, where)


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside a task with its field path, skipping prose fields."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            if name in _NOT_REFERENCE_FIELDS:
                continue
            item = getattr(value, name)
            if item is not None:
                yield from _strings(item, f"{where}.{info.alias or name}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
