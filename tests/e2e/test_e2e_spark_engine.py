"""The Apache Spark engine: a notebook task and a SQL task on a job cluster that is Spark's JVM server.

Needs the full ``pyspark`` package (its JVM Spark Connect server) and Java 17, which cannot share an
environment with ``pyspark-client``: ``./scripts/test`` runs this file in ``.venv-spark``
(``scripts/spark-env``) with ``SLUICE_REQUIRE_SPARK_ENGINE=1``, where it must run. In the main environment
it is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Workspace, task_message

NOTEBOOK = """
# Databricks notebook source
import json

from pyspark.sql import functions as F

df = spark.createDataFrame([(1, "a"), (2, "b"), (3, "b")], "id int, v string")
counts = {r["v"]: r["n"] for r in df.groupBy("v").agg(F.count("*").alias("n")).collect()}
print(counts)

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 40 + 2 AS answer

# COMMAND ----------

# java_method exists on the JVM engine only: this proves which server ran the cell
java = spark.sql("SELECT java_method('java.lang.System', 'getProperty', 'java.version') AS v").first()["v"]
dbutils.notebook.exit(json.dumps({"b": counts["b"], "java": java}))
"""

#: A Databricks-style script: it builds its own session (the JVM job cluster) and imports nothing from Sluice.
SCRIPT = """
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("jvm-script").getOrCreate()
assert SparkSession.getActiveSession() is spark
# the run's job cluster through Spark Connect, not a classic local JVM session of the script's own
assert type(spark).__module__ == "pyspark.sql.connect.session", type(spark)
java = spark.sql("SELECT java_method('java.lang.System', 'getProperty', 'java.version') AS v").first()["v"]
with open(sys.argv[1], "w") as out:
    out.write(java)
"""

QUERY = "SELECT CAST(:x AS INT) + 1 AS y, java_method('java.lang.System', 'getProperty', 'java.version') AS j"


def _full_pyspark() -> str | None:
    """Why the JVM engine cannot run here, or None when it can."""
    try:
        import pyspark
    except ImportError:
        return "pyspark is not installed"
    jars = Path(pyspark.__file__).parent / "jars"
    if not list(jars.glob("spark-connect*.jar")):
        return "the full pyspark package (JVM Spark Connect server) is not installed: see scripts/spark-env"
    return None


@pytest.fixture(autouse=True)
def _needs_the_jvm_engine() -> None:
    reason = _full_pyspark()
    if reason is not None:
        if os.environ.get("SLUICE_REQUIRE_SPARK_ENGINE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _task(key: str, **fields: Any) -> dict[str, Any]:
    return {"task_key": key, "job_cluster_key": "jvm", **fields}


def test_a_notebook_and_a_sql_task_run_on_apache_spark(ws: Workspace) -> None:
    ws.write("nb.py", NOTEBOOK)
    ws.write("q.sql", QUERY)
    ws.write("script.py", SCRIPT)
    script_out = ws.dir / "script.txt"
    tasks = [
        _task("script", spark_python_task={"python_file": "script.py", "parameters": [str(script_out)]}),
        _task("nb", notebook_task={"notebook_path": "nb"}),
        _task(
            "q",
            depends_on=[{"task_key": "nb"}],
            sql_task={"file": {"path": "q.sql"}, "parameters": {"x": "41"}},
        ),
    ]
    clusters = [{"job_cluster_key": "jvm", "new_cluster": {"spark_conf": {"sluice.compute.engine": "spark"}}}]
    done = ws.run(ws.job(tasks, job_clusters=clusters), timeout=600)
    assert done.run.results() == {"script": "SUCCESS", "nb": "SUCCESS", "q": "SUCCESS"}, [
        task_message(t) for t in done.run.tasks
    ]
    notebook = ws.json("runs", "get-output", str(done.run.task("nb")["run_id"]))
    result = json.loads(notebook["notebook_output"]["result"])
    assert result["b"] == 2
    assert result["java"].split(".")[0] >= "17"
    sql = ws.json("runs", "get-output", str(done.run.task("q")["run_id"]))
    first = sql["sql_output"]["rows"][0]
    assert first["y"] == 42
    assert first["j"] == result["java"], "the run's tasks shared one JVM server"
    assert script_out.read_text() == result["java"], "SparkSession.builder.getOrCreate() is the run's session"
