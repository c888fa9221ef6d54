"""SQL tasks through `sluice run`: a .sql file of statements on the run's job cluster, parameters bound as
values (never as SQL text), the last result kept as `sql_output` and referenced by downstream tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from e2e.helpers import Workspace, py_task, task_message

#: Several statements; comments and a `;` inside a string literal must not split them.
SETUP = """
-- a schema, a table named by a parameter, rows bound from parameters
CREATE SCHEMA IF NOT EXISTS workspace.sales;
CREATE OR REPLACE TABLE IDENTIFIER(:tbl) (id INT, note STRING, amount INT);
/* the note is a value: it stays one, whatever it holds */
INSERT INTO IDENTIFIER(:tbl) VALUES (1, :note, 30), (2, 'a;b -- not a comment', 12);
INSERT INTO workspace.sales.orders VALUES (3, 'third', CAST(:extra AS INT));
SELECT count(*) AS total, sum(amount) AS amount, max(note) FILTER (WHERE id = 1) AS note,
       max(note) FILTER (WHERE id = 2) AS literal
FROM IDENTIFIER(:tbl) WHERE amount >= :min_amount
"""

CONSUMER = """
import json, sys
open(sys.argv[1], "w").write(json.dumps({"total": sys.argv[2], "rows": json.loads(sys.argv[3])}))
"""

#: A value that would end a string literal and the statement if it were pasted into the SQL text.
INJECTION = "'; DROP TABLE x; -- \\' \" ${tbl} :tbl \u00fc\U0001f600\n"


def _sql_task(key: str, path: str, parameters: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"task_key": key, "sql_task": {"file": {"path": path}, "parameters": parameters}, **fields}


def test_sql_file_runs_binds_parameters_and_feeds_downstream_tasks(ws: Workspace) -> None:
    ws.write("setup.sql", SETUP)
    ws.write("consumer.py", CONSUMER)
    out = ws.dir / "consumer.json"
    params = {"tbl": "workspace.sales.orders", "note": INJECTION, "extra": "5", "min_amount": "1"}
    tasks = [
        _sql_task("q", "setup.sql", params),
        py_task(
            "use",
            "consumer.py",
            params=[str(out), "{{tasks.q.output.first_row.total}}", "{{tasks.q.output.rows}}"],
            deps=["q"],
        ),
    ]
    # The job parameter is pushed down and wins over the task's own value (Databricks' rule).
    job = ws.job(tasks, file="sql.yml", parameters=[{"name": "min_amount", "default": "10"}])
    done = ws.run(job, timeout=240)
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]

    row = {"total": 2, "amount": 42, "note": INJECTION, "literal": "a;b -- not a comment"}
    assert json.loads(out.read_text()) == {"total": "2", "rows": [row]}

    output = ws.json("runs", "get-output", str(done.run.task("q")["run_id"]))
    sql_output = output["sql_output"]
    assert sql_output["rows"] == [row]
    assert sql_output["truncated"] is False
    assert [c["name"] for c in sql_output["columns"]] == ["total", "amount", "note", "literal"]
    assert "logs" not in output

    # The table is in the store's catalog, and a later run's SQL reads it (the injected text stayed a value).
    ws.write("read.sql", "SELECT id, note FROM workspace.sales.orders ORDER BY id")
    later = ws.run(ws.job([_sql_task("r", "read.sql", {})], file="read.yml"), timeout=240)
    assert later.run.result_state == "SUCCESS", [task_message(t) for t in later.run.tasks]
    rows = ws.json("runs", "get-output", str(later.run.task("r")["run_id"]))["sql_output"]["rows"]
    assert rows == [
        {"id": 1, "note": INJECTION},
        {"id": 2, "note": "a;b -- not a comment"},
        {"id": 3, "note": "third"},
    ]


def test_failing_statement_fails_the_task_with_the_spark_error(ws: Workspace) -> None:
    ws.write("bad.sql", "SELECT 1 AS one;\nSELECT * FROM workspace.nowhere.missing_table;\nSELECT 2")
    done = ws.run(ws.job([_sql_task("bad", "bad.sql", {})], file="bad.yml"), timeout=240)
    assert done.run.result_state == "FAILED"
    message = task_message(done.run.task("bad"))
    assert "missing_table" in message, message
    output = ws.json("runs", "get-output", str(done.run.task("bad")["run_id"]))
    assert "AnalysisException" in output["error"], output
    assert "sql_output" not in output


def test_missing_parameter_and_unsupported_kinds_fail_clearly(ws: Workspace) -> None:
    ws.write("param.sql", "SELECT :nope AS x")
    tasks = [
        _sql_task("p", "param.sql", {"other": "1"}),
        {"task_key": "saved", "sql_task": {"query": {"query_id": "abc"}}},
    ]
    # A SQL file that does not exist is refused by validation, naming the task, before anything runs.
    refused = ws.cli("run", str(ws.job([*tasks, _sql_task("gone", "absent.sql", {})], file="gone.yml")))
    assert refused.returncode == 2
    assert "task 'gone'" in refused.stderr
    assert "absent.sql' not found" in refused.stderr
    done = ws.run(ws.job(tasks, file="kinds.yml"), timeout=240)
    assert done.run.results() == {"p": "FAILED", "saved": "FAILED"}
    assert ":nope" in task_message(done.run.task("p"))
    assert "sql_task.file" in task_message(done.run.task("saved"))
    assert Path(ws.dir / "param.sql").exists()


def test_repaired_downstream_task_reads_the_sql_output_of_the_original_run(ws: Workspace) -> None:
    ws.write("count.sql", "SELECT 7 AS total UNION ALL SELECT 8 ORDER BY total")
    flag = ws.dir / "fixed"
    ws.write(
        "flaky.py",
        f"""
        import os, sys
        if not os.path.exists({str(flag)!r}):
            raise SystemExit("not fixed yet")
        open(sys.argv[1], "w").write(sys.argv[2])
        """,
    )
    out = ws.dir / "flaky.txt"
    tasks = [
        _sql_task("q", "count.sql", {}),
        py_task("use", "flaky.py", params=[str(out), "{{tasks.q.output.first_row.total}}"], deps=["q"]),
    ]
    first = ws.run(ws.job(tasks, file="repair.yml"), timeout=240)
    assert first.run.results() == {"q": "SUCCESS", "use": "FAILED"}
    flag.touch()
    done = ws.cli("runs", "repair", str(first.run.run_id), "--all-failed", "--wait", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "7"  # the output of q, kept by the store, not re-run
