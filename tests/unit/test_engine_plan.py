"""The engine's reading of validated Jobs API JSON (sluice.engine.plan)."""

from __future__ import annotations

from sluice import dag
from sluice.engine.plan import TASK_TYPE_FIELDS, JobPlan, TaskPlan
from sluice.spec.jobs import TASK_TYPES, JobSettings
from sluice.states import RunIf


def test_task_type_fields_match_the_spec() -> None:
    assert set(TASK_TYPE_FIELDS) == set(TASK_TYPES)


def test_defaults_follow_the_jobs_api() -> None:
    plan = JobPlan.of({"tasks": [{"task_key": "a", "spark_python_task": {"python_file": "a.py"}}]})
    task = plan.tasks["a"]
    assert plan.name == "Untitled"
    assert plan.max_concurrent_runs == 1
    assert plan.queue_enabled is None
    assert plan.timeout_seconds == 0
    assert (task.task_type, task.run_if, task.disabled) == ("spark_python_task", RunIf.ALL_SUCCESS, False)
    assert (task.max_retries, task.min_retry_interval_millis, task.retry_on_timeout) == (0, 0, False)


def test_reads_what_the_models_validated() -> None:
    settings = JobSettings.from_api(
        {
            "name": "etl",
            "max_concurrent_runs": 3,
            "queue": {"enabled": False},
            "timeout_seconds": 60,
            "parameters": [{"name": "env", "default": "dev"}],
            "tasks": [
                {
                    "task_key": "a",
                    "spark_python_task": {"python_file": "/a.py"},
                    "max_retries": -1,
                    "min_retry_interval_millis": 500,
                    "retry_on_timeout": True,
                    "timeout_seconds": 5,
                },
                {
                    "task_key": "b",
                    "depends_on": [{"task_key": "a"}],
                    "run_if": "ALL_DONE",
                    "disabled": True,
                    "python_wheel_task": {"package_name": "p", "entry_point": "e"},
                },
            ],
        }
    ).to_api()
    plan = JobPlan.of(settings)
    assert (plan.name, plan.max_concurrent_runs, plan.queue_enabled, plan.timeout_seconds) == (
        "etl",
        3,
        False,
        60,
    )
    assert plan.parameters == (("env", "dev"),)
    a, b = plan.tasks["a"], plan.tasks["b"]
    assert (a.max_retries, a.min_retry_interval_millis, a.retry_on_timeout, a.timeout_seconds) == (
        -1,
        500,
        True,
        5,
    )
    assert b.deps == (dag.Dep("a", None),)
    assert (b.run_if, b.disabled, b.task_type) == (RunIf.ALL_DONE, True, "python_wheel_task")
    assert b.payload == {"package_name": "p", "entry_point": "e"}


def test_graph_restricted_to_only_drops_outside_dependencies() -> None:
    plan = JobPlan.of(
        {
            "tasks": [
                {"task_key": "a", "spark_python_task": {"python_file": "a.py"}},
                {
                    "task_key": "b",
                    "depends_on": [{"task_key": "a"}],
                    "spark_python_task": {"python_file": "b.py"},
                },
            ]
        }
    )
    graph = plan.graph({"b"})
    assert list(graph.order) == ["b"]
    assert graph.nodes["b"].deps == ()


def test_condition_outcome_is_kept() -> None:
    task = TaskPlan.of(
        {
            "task_key": "x",
            "depends_on": [{"task_key": "c", "outcome": "true"}],
            "notebook_task": {"notebook_path": "n"},
        }
    )
    assert task.deps == (dag.Dep("c", "true"),)
