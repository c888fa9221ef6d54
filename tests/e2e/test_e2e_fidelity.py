"""Databricks code as its authors write it, through `sluice run`: nothing imported from Sluice.

A Spark Python script that builds its own session with ``SparkSession.builder...getOrCreate()`` and takes
``dbutils`` from ``databricks.sdk.runtime`` / ``pyspark.dbutils``; a notebook that imports a helper
module doing the same, reads its context through ``dbutils.notebook.entry_point``, uses ``getArgument``
(also in ``%sql``) and ``df.display()``. On the run's job cluster (started lazily) and on a remote
``sc://`` server named by ``SPARK_REMOTE``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from e2e.helpers import Workspace, py_task, task_message

LOAD = """
import json
import time
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("daily_load").config("spark.sql.shuffle.partitions", "4").getOrCreate()
assert SparkSession.getActiveSession() is spark
assert SparkSession.builder.getOrCreate() is spark

from databricks.sdk.runtime import dbutils
from pyspark.dbutils import DBUtils

customers = spark.createDataFrame(
    [(1, "Ada", "emea"), (2, "Grace", "amer"), (3, "Linus", "emea")], "id int, name string, region string"
)
customers.write.mode("overwrite").saveAsTable("workspace.fidelity.customers")
dbutils.jobs.taskValues.set("rows", customers.count())
context = dbutils.notebook.entry_point.getDbutils().notebook().getContext()
with open(sys.argv[1], "w") as out:
    json.dump(
        {
            "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
            "same_dbutils": DBUtils(spark) is dbutils,
            "run_id": context.currentRunId().get().id(),
            "job_id": context.jobId().get(),
            "user": context.tags().apply("user"),
        },
        out,
    )
"""

HELPERS = """
from pyspark.sql import SparkSession


def customers_in(region):
    spark = SparkSession.builder.getOrCreate()
    return spark.table("workspace.fidelity.customers").where(f"region = '{region}'")
"""

REPORT = """
# Databricks notebook source
import json
import time

from databricks.sdk.runtime import dbutils as sdk_dbutils
from helpers import customers_in

region = getArgument("region", "amer")
emea = customers_in(region)
emea.display()
count = emea.count()

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TEMPORARY VIEW picked AS
# MAGIC SELECT name FROM workspace.fidelity.customers
# MAGIC WHERE region = getArgument('region') AND id > getArgument('min_id', '1')

# COMMAND ----------

ctx = dbutils.notebook.entry_point.getDbutils().notebook().getContext()
doc = json.loads(ctx.toJson())
dbutils.notebook.exit(json.dumps({
    "count": count,
    "picked": [r["name"] for r in spark.table("picked").collect()],
    "same_dbutils": sdk_dbutils is dbutils,
    "rows": dbutils.jobs.taskValues.get("load", "rows"),
    "path": ctx.notebookPath().get(),
    "user": ctx.userName().get(),
    "tag_user": ctx.tags().apply("user"),
    "run_id": ctx.currentRunId().get().id(),
    "job_id": ctx.jobId().get(),
    "has_api_url": ctx.apiUrl().isDefined(),
    "json": doc,
}))
"""


def _output(ws: Workspace, task: dict[str, Any]) -> dict[str, Any]:
    out = ws.json("runs", "get-output", str(task["run_id"]))
    result: dict[str, Any] = json.loads(out["notebook_output"]["result"])
    return result


def test_a_databricks_script_and_notebook_build_their_own_session_and_runtime(ws: Workspace) -> None:
    ws.write("load.py", LOAD)
    ws.write("helpers.py", HELPERS)
    ws.write("report.py", REPORT)
    loaded = ws.dir / "load.json"
    tasks = [
        py_task("load", "load.py", params=[str(loaded)]),
        {
            "task_key": "report",
            "depends_on": [{"task_key": "load"}],
            "notebook_task": {"notebook_path": "report", "base_parameters": {"region": "emea"}},
        },
    ]
    done = ws.run(ws.job(tasks, file="customers.yml"), timeout=240)
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    load = json.loads(loaded.read_text())
    assert load["partitions"] == "4"
    assert load["same_dbutils"] is True
    assert load["run_id"] == done.run.task("load")["run_id"]
    assert load["job_id"] == str(done.run.job_id)
    assert load["user"]

    report = _output(ws, done.run.task("report"))
    assert report["count"] == 2
    assert report["picked"] == ["Linus"]
    assert report["same_dbutils"] is True
    assert report["rows"] == 3
    assert report["path"] == str(ws.dir / "report")
    assert report["user"] == report["tag_user"] == load["user"]
    run_id = done.run.task("report")["run_id"]
    assert report["run_id"] == run_id
    assert report["job_id"] == str(done.run.job_id)
    assert report["has_api_url"] is False
    doc = report["json"]
    assert doc["currentRunId"] == {"id": run_id}
    assert doc["tags"]["jobId"] == str(done.run.job_id)
    assert doc["tags"]["runId"] == str(run_id)
    assert doc["tags"]["multitaskParentRunId"] == str(done.run.run_id)
    assert doc["tags"]["user"] == load["user"]
    assert doc["extraContext"]["notebook_path"] == str(ws.dir / "report")

    listed = ws.json("catalog", "list", "workspace.fidelity", "--output", "json")
    assert [i["name"] for i in listed["items"]] == ["workspace.fidelity.customers"]


REMOTE = """
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("remote").getOrCreate()
spark.createDataFrame([(1,)], "n int").write.mode("overwrite").saveAsTable("workspace.fidelity.remote")
with open(sys.argv[1], "w") as out:
    out.write(str(spark.table("workspace.fidelity.remote").count()))
"""


def test_the_builder_returns_the_remote_clusters_prepared_session(ws: Workspace, tmp_path: Path) -> None:
    from sluice.catalog.session import sail_env
    from sluice.compute.server import start_server

    server = start_server(tmp_path / "remote-home", name="remote", env=sail_env([]))
    try:
        ws.env["SPARK_REMOTE"] = server.endpoint
        ws.write("remote.py", REMOTE)
        out = ws.dir / "remote.txt"
        done = ws.run(ws.job([py_task("remote", "remote.py", params=[str(out)])]), timeout=240)
        assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
        assert out.read_text() == "1"
        # saveAsTable went through Sluice's catalog: the table is recorded with its location
        described = ws.json("catalog", "describe", "workspace.fidelity.remote", "--output", "json")
        assert {col["name"] for col in described["columns"]} == {"n"}
    finally:
        server.stop()


def test_the_run_table_shows_the_run_id_and_each_tasks_task_run_id(ws: Workspace) -> None:
    ws.job([py_task("ok", "ok.py")], file="long.yml")
    ws.env["COLUMNS"] = "160"
    shown = ws.cli("run", str(ws.dir / "long.yml"))  # the table a newcomer sees
    assert shown.returncode == 0, shown.stderr
    newest = ws.list_runs()[0]
    task_run = ws.get_run(newest["run_id"]).task("ok")["run_id"]
    assert f"run {newest['run_id']}: SUCCESS" in shown.stdout
    assert "task_run_id" in shown.stdout
    assert f"│ ok   │ {task_run} " in shown.stdout
    assert f"sluice runs logs {newest['run_id']} --task TASK" in shown.stdout


GREETER = """
# Databricks notebook source
print("hello from the notebook")
"""


def test_a_task_run_id_works_where_a_job_run_id_and_task_do(ws: Workspace) -> None:
    ws.write("greeter.py", GREETER)
    tasks = [
        py_task("script", "ok.py"),
        {
            "task_key": "nb",
            "depends_on": [{"task_key": "script"}],
            "notebook_task": {"notebook_path": "greeter"},
        },
    ]
    done = ws.run(ws.job(tasks, file="ids.yml"))
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    job_run, nb_run = done.run.run_id, done.run.task("nb")["run_id"]
    script_run = done.run.task("script")["run_id"]

    by_task_run = ws.cli("runs", "logs", str(nb_run))
    assert by_task_run.returncode == 0, by_task_run.stderr
    assert "hello from the notebook" in by_task_run.stdout
    assert f"=== nb attempt 0 (task run {nb_run}) ===" in by_task_run.stdout
    assert "=== script" not in by_task_run.stdout
    assert ws.cli("runs", "logs", str(nb_run), "--task", "nb").returncode == 0

    wrong = ws.cli("runs", "logs", str(nb_run), "--task", "script")
    assert wrong.returncode != 0
    assert f"use 'sluice runs logs {job_run} --task script'" in wrong.stderr

    page = ws.dir / "nb.html"
    exported = ws.cli("runs", "export", str(job_run), "--task", "nb", "-o", str(page))
    assert exported.returncode == 0, exported.stderr
    assert "hello from the notebook" in page.read_text()

    refused = ws.cli("runs", "export", str(job_run))
    assert refused.returncode != 0
    assert f"script {script_run}, nb {nb_run}" in refused.stderr

    output = ws.cli("runs", "get-output", str(job_run))
    assert output.returncode != 0
    assert (
        f"Run {job_run} is a job run; its tasks (latest task run ids): script {script_run}, nb {nb_run}"
        in (output.stderr)
    )

    missing = ws.cli("runs", "logs", "999999")
    assert "Run 999999 does not exist (neither a job run nor a task run)." in missing.stderr


def test_commands_that_print_json_by_default_say_so(ws: Workspace) -> None:
    ws.env["COLUMNS"] = "200"
    for command in (["runs", "repair", "--help"], ["jobs", "run-now", "--help"]):
        shown = ws.cli(*command)
        assert shown.returncode == 0, shown.stderr
        assert "json (default) or table." in shown.stdout, command


CALLER = """
import json
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.runtime import dbutils

ctx = dbutils.notebook.entry_point.getDbutils().notebook().getContext()
w = WorkspaceClient()  # DATABRICKS_HOST / DATABRICKS_TOKEN of the task: the server and the run's token
me = w.current_user.me()
run = w.jobs.get_run(int(ctx.tags().apply("multitaskParentRunId")))
with open(sys.argv[1], "w") as out:
    json.dump(
        {
            "api_url": ctx.apiUrl().get(),
            "token": ctx.apiToken().get(),
            "me": me.user_name,
            "state": run.state.life_cycle_state.value,
            "same_host": w.config.host == ctx.apiUrl().get(),
        },
        out,
    )
"""


def test_a_served_run_gets_an_api_url_and_a_token_valid_until_it_ends(ws: Workspace) -> None:
    import httpx
    from databricks.sdk.service import jobs

    from e2e.test_api_sdk import start_server

    token = ws.json("tokens", "create", "--comment", "e2e", "--user", "ada@example.com", "--output", "json")
    server = start_server(ws, token["token_value"])
    script = ws.write("caller.py", CALLER)
    out = ws.dir / "caller.json"
    w = server.client()
    created = w.jobs.create(
        name="caller",
        tasks=[
            jobs.Task(
                task_key="call",
                spark_python_task=jobs.SparkPythonTask(python_file=str(script), parameters=[str(out)]),
            )
        ],
    )
    assert created.job_id is not None
    run = w.jobs.run_now(job_id=created.job_id).result(timeout=timedelta(minutes=2))
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    seen = json.loads(out.read_text())
    assert seen["api_url"] == server.url
    assert seen["same_host"] is True
    assert seen["me"] == "ada@example.com", "the run's token acts as the user who started the run"
    assert seen["state"] == "RUNNING"
    assert seen["token"].startswith("dapi")
    after = httpx.get(
        f"{server.url}/api/2.2/jobs/runs/get",
        params={"run_id": run.run_id},
        headers={"Authorization": f"Bearer {seen['token']}"},
        timeout=10,
    )
    assert after.status_code == 403, "the run's token is revoked when the run ends"
    assert "revoked" in after.json()["message"]


FLAKY = """
import os
import sys

if not os.path.exists(sys.argv[1]):
    raise SystemExit("the input is not there yet")
"""


def test_repair_takes_the_task_run_id_of_the_failed_task(ws: Workspace) -> None:
    ws.write("flaky.py", FLAKY)
    marker = ws.dir / "input.csv"
    done = ws.run(ws.job([py_task("ok", "ok.py"), py_task("load", "flaky.py", params=[str(marker)])]))
    assert done.run.results() == {"ok": "SUCCESS", "load": "FAILED"}
    failed = done.run.task("load")["run_id"]
    marker.touch()
    wrong = ws.cli("runs", "repair", str(failed), "--task", "ok", "--wait")
    assert wrong.returncode != 0
    assert f"run {failed} is task run 'load' of job run {done.run.run_id}" in wrong.stderr
    repaired = ws.cli("runs", "repair", str(failed), "--wait", "--output", "json")
    assert repaired.returncode == 0, repaired.stderr
    run = json.loads(repaired.stdout)
    assert run["run_id"] == done.run.run_id
    loads = [t for t in run["tasks"] if t["task_key"] == "load"]
    assert [t["state"]["result_state"] for t in loads] == ["FAILED", "SUCCESS"]
    assert [t["state"]["result_state"] for t in run["tasks"] if t["task_key"] == "ok"] == ["SUCCESS"]


WHEEL_MAIN = """
import sys

from pyspark.sql import SparkSession


def main():
    spark = SparkSession.builder.appName("etl").getOrCreate()
    total = spark.range(1, 11).selectExpr("sum(id) AS s").first()["s"]
    with open(sys.argv[1], "w") as out:
        out.write(str(total))
"""


def test_a_wheel_entry_point_builds_its_own_session(ws: Workspace, tmp_path: Path) -> None:
    site = tmp_path / "site"  # an installed distribution, as pip lays it out
    (site / "etl_spark").mkdir(parents=True)
    (site / "etl_spark" / "__init__.py").write_text(WHEEL_MAIN)
    info = site / "etl_spark-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: etl-spark\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[console_scripts]\netl = etl_spark:main\n")
    ws.env["PYTHONPATH"] = str(site)
    out = ws.dir / "sum.txt"
    task = {
        "task_key": "etl",
        "python_wheel_task": {"package_name": "etl-spark", "entry_point": "etl", "parameters": [str(out)]},
    }
    done = ws.run(ws.job([task]), timeout=240)
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    assert out.read_text() == "55"


ECHO_INPUT = """
import sys

print("report for", sys.argv[1])
"""


def test_runs_logs_takes_the_task_run_id_of_a_for_each_iteration(ws: Workspace) -> None:
    ws.write("report.py", ECHO_INPUT)
    loop = {
        "task_key": "countries",
        "for_each_task": {
            "inputs": '["BR", "CA", "CL"]',
            "concurrency": 1,
            "task": py_task("country", "report.py", params=["{{input}}"]),
        },
    }
    done = ws.run(ws.job([loop], file="countries.yml"))
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    detail = ws.json("runs", "get", str(done.run.task("countries")["run_id"]))
    canada = next(
        i for i in detail["iterations"] if "CA" in i["resolved_values"]["spark_python_task"]["parameters"]
    )
    shown = ws.cli("runs", "logs", str(canada["run_id"]))
    assert shown.returncode == 0, shown.stderr
    assert "report for CA" in shown.stdout
    assert "report for BR" not in shown.stdout
    assert "report for CL" not in shown.stdout
