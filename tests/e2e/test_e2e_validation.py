"""Invalid job files: exit code 2, every problem on stderr with file, job, task and field, nothing written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Workspace, py_task


def assert_rejected(ws: Workspace, path: Path, *expected: str) -> str:
    """``sluice run`` refuses ``path`` (exit 2) naming each of ``expected``; no job and no run exist."""
    done = ws.cli("run", str(path), "--output", "json")
    assert done.returncode == 2, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout == ""
    for text in expected:
        assert text in done.stderr, f"{text!r} not in stderr:\n{done.stderr}"
    assert ws.list_runs() == [], "an invalid job was run"
    assert ws.list_jobs() == [], "an invalid job was deployed"
    return done.stderr


def write_job(ws: Workspace, tasks: list[dict[str, Any]]) -> Path:
    return ws.job(tasks, file="pipeline.yml")


def test_duplicate_task_key(ws: Workspace) -> None:
    path = write_job(ws, [py_task("load", "ok.py"), py_task("load", "ok.py")])
    assert_rejected(ws, path, str(path), "job 'pipeline'", "task 'load'", "tasks[1].task_key", "unique")


def test_unknown_dependency_suggests_the_closest_key(ws: Workspace) -> None:
    path = write_job(ws, [py_task("ingest", "ok.py"), py_task("transform", "ok.py", deps=["ingset"])])
    assert_rejected(
        ws,
        path,
        str(path),
        "task 'transform'",
        "tasks[1].depends_on[0].task_key",
        "'ingset'",
        "did you mean 'ingest'",
    )


def test_dependency_cycle_is_shown(ws: Workspace) -> None:
    tasks = [
        py_task("a", "ok.py", deps=["c"]),
        py_task("b", "ok.py", deps=["a"]),
        py_task("c", "ok.py", deps=["b"]),
        py_task("d", "ok.py"),
    ]
    stderr = assert_rejected(ws, write_job(ws, tasks), "cycle")
    shown = re.search(r"(\w+) -> (\w+) -> (\w+) -> (\w+)", stderr)
    assert shown is not None, stderr
    assert shown.group(1) == shown.group(4)
    assert sorted(shown.group(1, 2, 3)) == ["a", "b", "c"]


def test_bad_run_if_value(ws: Workspace) -> None:
    path = write_job(ws, [py_task("a", "ok.py"), py_task("b", "ok.py", deps=["a"], run_if="SOMETIMES")])
    assert_rejected(ws, path, str(path), "task 'b'", "tasks[1].run_if", "'SOMETIMES'", "ALL_DONE")


def test_reference_to_a_missing_task(ws: Workspace) -> None:
    tasks = [py_task("a", "ok.py"), py_task("b", "ok.py", deps=["a"], params=["{{tasks.missing.values.x}}"])]
    assert_rejected(ws, write_job(ws, tasks), "task 'b'", "missing")


def test_validate_command_reports_and_writes_nothing(ws: Workspace) -> None:
    good = ws.job([py_task("a", "ok.py")], file="good.yml")
    done = ws.cli("validate", str(good))
    assert done.returncode == 0, done.stderr
    assert "good: OK (1 task)" in done.stdout
    bad = ws.job([py_task("a", "ok.py", deps=["zzz"])], file="bad.yml")
    done = ws.cli("validate", str(bad))
    assert done.returncode == 2
    assert "depends_on 'zzz' is not a task key" in done.stderr
    assert ws.list_jobs() == []
    assert ws.list_runs() == []


@pytest.mark.parametrize("content", ["tasks: [", "name: x\ntasks: 7\n"])
def test_malformed_file_is_invalid_input(ws: Workspace, content: str) -> None:
    path = ws.write("broken.yml", content)
    done = ws.cli("run", str(path))
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr
    assert ws.list_runs() == []


def test_a_job_over_1000_tasks_is_refused_naming_the_limit(ws: Workspace) -> None:
    many = ws.job([py_task(f"t{i}", "ok.py") for i in range(1001)], file="many.yml")
    done = ws.cli("validate", str(many))
    assert done.returncode == 2, done.stdout
    assert "the job has 1001 tasks; a job may have at most 1000 tasks (Databricks' limit)" in done.stderr
    assert "run_job_task" in done.stderr, "the message says how to split the job"
    assert ws.list_jobs() == []
    done = ws.cli("validate", str(ws.job([py_task(f"t{i}", "ok.py") for i in range(1000)], file="max.yml")))
    assert done.returncode == 0, done.stderr


def test_jvm_task_types_are_refused_before_anything_runs(ws: Workspace) -> None:
    jar = {"task_key": "cleanup", "spark_jar_task": {"main_class_name": "com.acme.Cleanup"}}
    submit = {
        "task_key": "submit",
        "spark_submit_task": {"parameters": ["--class", "com.acme.Main", "app.jar"]},
    }
    path = write_job(ws, [py_task("load", "ok.py"), jar, submit])
    assert_rejected(
        ws,
        path,
        "task 'cleanup', tasks[1].spark_jar_task: spark_jar_task runs a JAR's main class",
        "task 'submit', tasks[2].spark_submit_task: spark_submit_task runs spark-submit",
        "Spark Connect",
    )


def test_a_missing_python_file_is_refused_naming_the_task(ws: Workspace) -> None:
    path = write_job(ws, [py_task("load", "ok.py"), py_task("report", "reports/weekly.py", deps=["load"])])
    assert_rejected(
        ws, path, "task 'report', tasks[1].spark_python_task.python_file", "reports/weekly.py' not found"
    )
