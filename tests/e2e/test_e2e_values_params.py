"""Task values and job parameters, through ``sluice run`` (databricks.md §2, §6.2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from e2e.helpers import Workspace, py_task, task_message, task_result

#: Writes its argv (without the script) as JSON to the file named by argv[1].
ECHO_ARGS = """
import json, sys
with open(sys.argv[1], "w") as f:
    json.dump(sys.argv[2:], f)
"""


def test_task_values_reach_downstream_through_dbutils_and_references(ws: Workspace) -> None:
    ws.write(
        "producer.py",
        """
        from sluice.runtime import dbutils
        dbutils.jobs.taskValues.set("count", 42)
        dbutils.jobs.taskValues.set("items", [1, "two", {"three": 3}])
        dbutils.jobs.taskValues.set("name", "orders")
        """,
    )
    ws.write(
        "consumer.py",
        """
        import json, sys
        from sluice.runtime import dbutils
        got = {
            "argv": sys.argv[2:],
            "count": dbutils.jobs.taskValues.get(taskKey="producer", key="count"),
            "items": dbutils.jobs.taskValues.get(taskKey="producer", key="items", default=None),
            "missing": dbutils.jobs.taskValues.get(taskKey="producer", key="nope", default="fallback"),
        }
        with open(sys.argv[1], "w") as f:
            json.dump(got, f)
        """,
    )
    out = ws.dir / "consumer.json"
    refs = ["{{tasks.producer.values.count}}", "{{tasks.producer.values.items}}"]
    tasks = [
        py_task("producer", "producer.py"),
        py_task("consumer", "consumer.py", params=[str(out), *refs, "{{tasks.producer.values.name}}"],
                deps=["producer"]),
    ]  # fmt: skip
    done = ws.run(ws.job(tasks))
    assert done.run.results() == {"producer": "SUCCESS", "consumer": "SUCCESS"}
    got = json.loads(out.read_text())
    assert got["count"] == 42
    assert got["items"] == [1, "two", {"three": 3}]
    assert got["missing"] == "fallback"
    count_arg, items_arg, name_arg = got["argv"]
    assert count_arg == "42"
    assert json.loads(items_arg) == [1, "two", {"three": 3}], "a list value arrives as JSON text"
    assert name_arg == "orders"
    resolved = done.run.task("consumer")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved[1:] == got["argv"]


def test_task_value_over_48_kib_fails_the_setting_task(ws: Workspace) -> None:
    ws.write(
        "big.py",
        """
        from sluice.runtime import dbutils
        dbutils.jobs.taskValues.set("blob", "x" * (49 * 1024))
        """,
    )
    done = ws.run(ws.job([py_task("big", "big.py"), py_task("next", "ok.py", deps=["big"])]))
    big = done.run.task("big")
    assert task_result(big) == "FAILED"
    message = task_message(big)
    assert "blob" in message
    assert "48 KiB" in message or "49,152" in message, message
    assert task_result(done.run.task("next")) == "UPSTREAM_FAILED"
    assert done.returncode == 1


def _params_job(ws: Workspace) -> tuple[Path, Path]:
    """A job whose task writes its argv: job parameters env (default dev) and rows (default 10)."""
    ws.write("echo.py", ECHO_ARGS)
    out = ws.dir / "argv.json"
    params = [
        str(out),
        "{{job.parameters.env}}",
        "{{job.parameters.rows}}",
        "{{job.run_id}}",
        "{{task.name}}",
    ]
    job = ws.job(
        [py_task("echo", "echo.py", params=params)],
        parameters=[{"name": "env", "default": "dev"}, {"name": "rows", "default": "10"}],
    )
    return job, out


def test_job_parameter_defaults_reach_argv_and_resolved_values(ws: Workspace) -> None:
    job, out = _params_job(ws)
    done = ws.run(job)
    assert done.returncode == 0
    run_id = str(done.run.run_id)
    assert json.loads(out.read_text()) == ["dev", "10", run_id, "echo"]
    resolved = done.run.task("echo")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved[1:] == ["dev", "10", run_id, "echo"]
    assert done.run.data["job_parameters"] == [
        {"name": "env", "default": "dev", "value": "dev"},
        {"name": "rows", "default": "10", "value": "10"},
    ]


def test_param_overrides_a_default(ws: Workspace) -> None:
    job, out = _params_job(ws)
    done = ws.run(job, "--param", "env=prod")
    assert done.returncode == 0
    assert json.loads(out.read_text())[:2] == ["prod", "10"]
    assert done.run.data["job_parameters"] == [
        {"name": "env", "default": "dev", "value": "prod"},
        {"name": "rows", "default": "10", "value": "10"},
    ]
    resolved = done.run.task("echo")["resolved_values"]["spark_python_task"]["parameters"]
    assert resolved[1:3] == ["prod", "10"]


def test_unknown_param_is_invalid_input_naming_it(ws: Workspace) -> None:
    job, out = _params_job(ws)
    done = ws.cli("run", str(job), "--output", "json", "--param", "colour=blue")
    assert done.returncode == 2, done.stderr
    assert "colour" in done.stderr
    assert done.stdout == ""
    assert not out.exists()
    assert ws.list_runs() == [], "an invalid request created a run"


def test_job_parameter_default_may_hold_a_reference(ws: Workspace) -> None:
    """databricks.md §2.1: references are substituted in job-parameter defaults, at run start."""
    ws.write("echo.py", ECHO_ARGS)
    out = ws.dir / "argv.json"
    job = ws.job(
        [py_task("echo", "echo.py", params=[str(out), "{{job.parameters.rid}}"])],
        parameters=[{"name": "rid", "default": "run-{{job.run_id}}"}],
    )
    done = ws.run(job)
    assert done.returncode == 0
    assert json.loads(out.read_text()) == [f"run-{done.run.run_id}"]


def test_references_in_task_parameters(ws: Workspace) -> None:
    ws.write("echo.py", ECHO_ARGS)
    out = ws.dir / "argv.json"
    refs = [
        "{{job.id}}",
        "{{job.name}}",
        "{{job.run_id}}",
        "{{task.name}}",
        "{{task.run_id}}",
        "{{task.execution_count}}",
        "{{job.parameters.`my-param`}}",
        "{{job.start_time.iso_date}}",
        "{{tasks.first.result_state}}",
        "{{not_a_namespace.x}}",
        "prefix-{{job.parameters.`my-param`}}-suffix",
    ]
    job = ws.job(
        [py_task("first", "ok.py"), py_task("echo", "echo.py", params=[str(out), *refs], deps=["first"])],
        name="refs-job",
        parameters=[{"name": "my-param", "default": "mine"}],
    )
    done = ws.run(job)
    assert done.returncode == 0
    run = done.run
    echo = run.task("echo")
    start_date = time.strftime("%Y-%m-%d", time.gmtime(run.data["start_time"] / 1000))
    assert json.loads(out.read_text()) == [
        str(run.job_id),
        "refs-job",
        str(run.run_id),
        "echo",
        str(echo["run_id"]),
        "1",
        "mine",
        start_date,
        "SUCCESS",
        "{{not_a_namespace.x}}",
        "prefix-mine-suffix",
    ]
