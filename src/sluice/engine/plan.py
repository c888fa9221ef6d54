"""A job's settings as the engine needs them, read from validated Jobs API JSON.

The spec layer (pydantic) validates input at the boundary — files, the CLI, the API — and the store keeps
the validated JSON. The engine reads that JSON through these small frozen values, so driving a run never
imports pydantic (ADR 0002 explains the start-up budget this protects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice import dag
from sluice.states import RunIf

#: Every task-type field of a Task, in the Jobs API. A unit test keeps it equal to the spec's list.
TASK_TYPE_FIELDS = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
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


@dataclass(frozen=True, slots=True)
class TaskPlan:
    key: str
    task_type: str
    #: The task type's own settings (``{"python_file": ..., "parameters": [...]}`` ...).
    payload: Mapping[str, Any]
    deps: tuple[dag.Dep, ...]
    run_if: RunIf
    disabled: bool
    timeout_seconds: int
    max_retries: int
    min_retry_interval_millis: int
    retry_on_timeout: bool

    @staticmethod
    def of(task: Mapping[str, Any]) -> TaskPlan:
        kind = next((f for f in TASK_TYPE_FIELDS if f in task), "")
        return TaskPlan(
            key=task["task_key"],
            task_type=kind,
            payload=task.get(kind) or {},
            deps=tuple(dag.Dep(d["task_key"], d.get("outcome")) for d in task.get("depends_on") or ()),
            run_if=RunIf(task.get("run_if") or RunIf.ALL_SUCCESS),
            disabled=bool(task.get("disabled", False)),
            timeout_seconds=int(task.get("timeout_seconds") or 0),
            max_retries=int(task.get("max_retries") or 0),
            min_retry_interval_millis=int(task.get("min_retry_interval_millis") or 0),
            retry_on_timeout=bool(task.get("retry_on_timeout", False)),
        )

    def node(self, keep: Mapping[str, object] | None = None) -> dag.Node:
        """This task as a DAG node; with ``keep``, dependencies outside it are dropped (run-now ``only``)."""
        deps = self.deps if keep is None else tuple(d for d in self.deps if d.task_key in keep)
        return dag.Node(self.key, deps, self.run_if, self.disabled)


@dataclass(frozen=True, slots=True)
class JobPlan:
    name: str
    tasks: Mapping[str, TaskPlan]
    #: ``(name, default)`` of each job parameter.
    parameters: tuple[tuple[str, str], ...]
    timeout_seconds: int
    max_concurrent_runs: int
    #: None when the job does not say (Jobs API 2.2 then queues).
    queue_enabled: bool | None
    git_source: Mapping[str, Any] | None

    @staticmethod
    def of(settings: Mapping[str, Any]) -> JobPlan:
        queue = settings.get("queue")
        return JobPlan(
            name=settings.get("name") or "Untitled",
            tasks={t["task_key"]: TaskPlan.of(t) for t in settings.get("tasks") or ()},
            parameters=tuple(
                (p["name"], str(p.get("default", ""))) for p in settings.get("parameters") or ()
            ),
            timeout_seconds=int(settings.get("timeout_seconds") or 0),
            max_concurrent_runs=int(settings.get("max_concurrent_runs", 1)),
            queue_enabled=None if not queue else bool(queue.get("enabled", True)),
            git_source=settings.get("git_source"),
        )

    def graph(self, only: set[str] | None = None) -> dag.Graph:
        tasks = self.tasks if only is None else {k: t for k, t in self.tasks.items() if k in only}
        return dag.Graph.build(t.node(tasks if only is not None else None) for t in tasks.values())
