"""SQL as Databricks learners write it, through real tasks on the run's Spark (Sail): ``SET`` and ``${k}``
substitution, file paths in FROM clauses and ``read_files`` over ``/Volumes``, ``DESCRIBE DETAIL``, SQL
functions (temporary, and permanent ones a later task calls), in a notebook's ``%sql`` cells and in a SQL
task's file."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from e2e.helpers import Workspace, task_message, task_result

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sluice.runtime.spark") is None, reason="SQL needs the compute engine"
)

RAW = "/Volumes/workspace/default/raw"

NOTEBOOK = f"""# Databricks notebook source
# MAGIC %sql
# MAGIC CREATE VOLUME IF NOT EXISTS workspace.default.raw

# COMMAND ----------

dbutils.fs.put("{RAW}/people.csv", "id,name\\n1,ann\\n2,bob\\n3,cy\\n", True)

# COMMAND ----------

# MAGIC %sql
# MAGIC SET my.min_id = 2;
# MAGIC SET target.name = people

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TABLE workspace.default.${{target.name}} AS
# MAGIC SELECT * FROM read_files('{RAW}/people.csv', format => 'csv', header => true)
# MAGIC WHERE id >= ${{hiveconf:my.min_id}}

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE SCHEMA IF NOT EXISTS workspace.fx;
# MAGIC CREATE OR REPLACE FUNCTION workspace.fx.greet(name STRING, punct STRING DEFAULT '!')
# MAGIC   RETURNS STRING COMMENT 'a greeting' RETURN concat('hello ', name, punct);
# MAGIC CREATE OR REPLACE TEMPORARY FUNCTION double_it(x INT) RETURNS INT RETURN x * 2

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TEMPORARY VIEW people_csv USING csv
# MAGIC OPTIONS (path '{RAW}/people.csv', header 'true', inferSchema 'true')

# COMMAND ----------

# MAGIC %sql
# MAGIC USE workspace.fx

# COMMAND ----------

import json
udf = list(spark.sql("SELECT double_it(21) AS d, greet('ann') AS g").first())
view = [tuple(r) for r in spark.sql("SELECT id, name FROM people_csv ORDER BY id").collect()]
spark.sql("USE default")
setting = [tuple(r) for r in spark.sql("SET my.min_id").collect()]
raw = spark.sql("SELECT count(*) AS n FROM csv.`{RAW}/people.csv`").first()["n"]
people = [tuple(r) for r in spark.sql("SELECT id, name FROM workspace.default.people ORDER BY id").collect()]
try:
    spark.sql("SELECT * FROM csv.`{RAW}/missing.csv`").collect()
    missing = "no error"
except Exception as exc:
    missing = str(exc)
spark.range(5).repartition(2).write.format("delta").save("{RAW}/events")
detail = spark.sql("DESCRIBE DETAIL '{RAW}/events'").first().asDict()
detail = {{k: detail[k] for k in ("format", "name", "numFiles", "partitionColumns", "minReaderVersion")}}
dbutils.notebook.exit(
    json.dumps(
        {{
            "setting": setting, "raw": raw, "people": people, "missing": missing, "detail": detail,
            "udf": udf, "view": view,
        }}
    )
)
"""

SQL_FILE = f"""
-- settings, then substituted, then a parameter bound as a value
SET report.table = workspace.default.people;
SET report.label = ${{hiveconf:report.table}};
SELECT count(*) AS n, '${{report.label}}' AS label,
       (SELECT count(*) FROM csv.`{RAW}/*.csv`) AS raw_lines,
       (SELECT max(name) FROM read_files('{RAW}/peo*.csv', header => true)) AS last_name,
       fx.greet('sql', '?') AS greeting
FROM ${{report.table}} WHERE id >= CAST(:min AS INT)
"""


def test_set_substitution_and_volume_paths_in_sql_cells_and_sql_tasks(ws: Workspace) -> None:
    ws.write("nb/load.py", NOTEBOOK)
    ws.write("report.sql", SQL_FILE)
    ws.write("missing.sql", f"SELECT * FROM parquet.`{RAW}/nowhere`")
    ws.write("detail.sql", "DESCRIBE DETAIL workspace.default.people")
    tasks: list[dict[str, Any]] = [
        {"task_key": "load", "notebook_task": {"notebook_path": "nb/load"}},
        {
            "task_key": "report",
            "depends_on": [{"task_key": "load"}],
            "sql_task": {"file": {"path": "report.sql"}, "parameters": {"min": "3"}},
        },
        {
            "task_key": "missing",
            "depends_on": [{"task_key": "load"}],
            "sql_task": {"file": {"path": "missing.sql"}},
        },
    ]
    tasks.append(
        {
            "task_key": "detail",
            "depends_on": [{"task_key": "load"}],
            "sql_task": {"file": {"path": "detail.sql"}},
        }
    )
    done = ws.run(ws.job(tasks), timeout=300)
    load, report, missing = (done.run.task(k) for k in ("load", "report", "missing"))
    assert task_result(load) == "SUCCESS", task_message(load)
    result = json.loads(ws.json("runs", "get-output", str(load["run_id"]))["notebook_output"]["result"])
    assert result["setting"] == [["my.min_id", "2"]]
    assert result["raw"] == 4  # csv.`...` reads without a header, as on Databricks
    assert result["people"] == [[2, "bob"], [3, "cy"]]
    assert "[PATH_NOT_FOUND]" in result["missing"]
    assert f"{RAW}/missing.csv" in result["missing"]
    assert result["udf"] == [42, "hello ann!"]
    assert result["view"] == [[1, "ann"], [2, "bob"], [3, "cy"]]  # was no rows: the path was not mapped
    assert result["detail"] == {
        "format": "delta",
        "name": None,
        "numFiles": 2,
        "partitionColumns": [],
        "minReaderVersion": 1,
    }

    assert task_result(report) == "SUCCESS", task_message(report)
    rows = ws.json("runs", "get-output", str(report["run_id"]))["sql_output"]["rows"]
    assert rows == [
        {
            "n": 1,
            "label": "workspace.default.people",
            "raw_lines": 4,
            "last_name": "cy",
            "greeting": "hello sql?",  # the notebook's permanent function, from the store's catalog
        }
    ]

    assert task_result(missing) == "FAILED"
    assert "[PATH_NOT_FOUND]" in task_message(missing)
    assert f"{RAW}/nowhere" in task_message(missing)

    detail = ws.json("runs", "get-output", str(done.run.task("detail")["run_id"]))["sql_output"]
    assert [c["name"] for c in detail["columns"]] == [
        "format", "id", "name", "description", "location", "createdAt", "lastModified", "partitionColumns",
        "clusteringColumns", "numFiles", "sizeInBytes", "properties", "minReaderVersion", "minWriterVersion",
        "tableFeatures", "statistics",
    ]  # fmt: skip
    (row,) = detail["rows"]
    assert row["format"] == "delta"
    assert row["name"] == "workspace.default.people"
    assert row["location"].endswith("/warehouse/workspace/default/people")
    assert row["numFiles"] >= 1
    assert row["sizeInBytes"] > 0
    assert row["partitionColumns"] == []
