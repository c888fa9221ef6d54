"""``%sql`` binds ``:name`` markers in commands (INSERT, UPDATE, DELETE, MERGE), not only in queries.

Through a real notebook task on the run's Spark (Sail): before, a command with a marker was sent with
``args``, which Sail refuses ("command with parameters"). Values stay values: the name holds quotes, a
semicolon and a comment marker, and ends up in the table as written.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from e2e.helpers import Workspace, task_message, task_result

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sluice.runtime.spark") is None, reason="%sql needs the compute engine"
)

NOTEBOOK = """# Databricks notebook source
import json
for name in ("id", "name", "newname", "gone", "mid", "mname"):
    dbutils.widgets.text(name, "")

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE SCHEMA IF NOT EXISTS workspace.magic;
# MAGIC CREATE OR REPLACE TABLE workspace.magic.people (id INT, name STRING)

# COMMAND ----------

# DBTITLE 1,Insert
# MAGIC %sql
# MAGIC INSERT INTO workspace.magic.people VALUES (CAST(:id AS INT), :name), (2, 'bob'), (3, 'carol')

# COMMAND ----------

# DBTITLE 1,Update
# MAGIC %sql
# MAGIC UPDATE workspace.magic.people SET name = :newname WHERE id = 2

# COMMAND ----------

# DBTITLE 1,Delete
# MAGIC %sql
# MAGIC DELETE FROM workspace.magic.people WHERE id = CAST(:gone AS INT)

# COMMAND ----------

# DBTITLE 1,Merge
# MAGIC %sql
# MAGIC MERGE INTO workspace.magic.people AS t
# MAGIC USING (SELECT CAST(:mid AS INT) AS id, :mname AS name) AS s
# MAGIC ON t.id = s.id
# MAGIC WHEN MATCHED THEN UPDATE SET name = s.name
# MAGIC WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)

# COMMAND ----------

rows = spark.sql("SELECT id, name FROM workspace.magic.people ORDER BY id").collect()
dbutils.notebook.exit(json.dumps([[r["id"], r["name"]] for r in rows]))
"""

#: Would end the literal and the statement if it were pasted into the SQL text.
TRICKY = "O'Brien'); DROP TABLE workspace.magic.people; -- :id ${id}"


def test_sql_magic_binds_markers_in_insert_update_delete_and_merge(ws: Workspace) -> None:
    ws.write("nb/people.py", NOTEBOOK)
    params = {"id": "1", "name": TRICKY, "newname": "robert", "gone": "3", "mid": "4", "mname": "dora"}
    task = {"task_key": "people", "notebook_task": {"notebook_path": "nb/people", "base_parameters": params}}
    done = ws.run(ws.job([task]), timeout=300)
    people = done.run.task("people")
    assert task_result(people) == "SUCCESS", task_message(people)
    output = ws.json("runs", "get-output", str(people["run_id"]))
    assert json.loads(output["notebook_output"]["result"]) == [[1, TRICKY], [2, "robert"], [4, "dora"]]


def test_a_marker_without_a_value_names_the_parameter_and_the_cell(ws: Workspace) -> None:
    ws.write(
        "nb/missing.py",
        "# Databricks notebook source\n# DBTITLE 1,Insert\n# MAGIC %sql\n"
        "# MAGIC INSERT INTO workspace.default.nowhere VALUES (:nobody)\n",
    )
    task = {"task_key": "m", "notebook_task": {"notebook_path": "nb/missing"}}
    done = ws.run(ws.job([task]), timeout=300)
    message = task_message(done.run.task("m"))
    assert task_result(done.run.task("m")) == "FAILED"
    assert "cell 1 ('Insert')" in message, message
    assert "parameter :nobody" in message, message
    assert "define a widget of that name" in message, message
