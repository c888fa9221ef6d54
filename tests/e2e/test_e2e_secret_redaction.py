"""A secret read with ``dbutils.secrets.get`` never leaves a task in clear (issue 12, item 3).

Each channel a task's text leaves through is checked with a secret that holds ``<``, ``&``, ``"``, ``\\``
and a newline (so its HTML-escaped and JSON-escaped forms differ from it): the logs of script, wheel and
notebook tasks (whole, split across writes, one character per write), notebook cell outputs, the executed
``notebook.ipynb`` and its HTML export, ``dbutils.notebook.exit`` values (``runs get-output``), task values
and a downstream task's resolved parameters (``runs get``, API and CLI, under ``sluice serve``), error
messages and traces. Then every file under ``SLUICE_HOME`` — the SQLite database and its ``-wal`` file
included, read as raw bytes — is searched for the value in each of its forms.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.helpers import Workspace, py_task, task_message, wait_for
from e2e.test_api_sdk import Server, start_server
from e2e.test_e2e_wheel import install_wheel
from sluice.store.testing import postgres_schema, require_postgres

SECRET = 'Xk7<q&"m\\p\nZr2-tail'
#: Pieces of the secret that nothing else contains: any form of the value that leaks shows one of them.
FRAGMENTS = ("Xk7", "Zr2-tail")
REDACTED = "[REDACTED]"


def _forms(value: str) -> list[str]:
    return sorted(
        {
            value,
            repr(value)[1:-1],
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            html.escape(value),
            html.escape(value, quote=False),
            json.dumps(html.escape(value))[1:-1],
        }
    )


def assert_clean(text: str, where: str) -> None:
    """Neither the secret, in any of its forms, nor a piece of it is in ``text``."""
    for fragment in (*_forms(SECRET), *FRAGMENTS):
        assert fragment not in text, f"{where} holds the secret ({fragment!r}):\n{text}"


def assert_home_clean(ws: Workspace) -> list[str]:
    """Every file under SLUICE_HOME, as raw bytes (the database, its -wal, logs, notebooks, JSON files)."""
    checked = []
    needles = {f.encode() for f in (*_forms(SECRET), *FRAGMENTS)}
    for path in sorted(ws.home.rglob("*")):
        if not path.is_file() or path.name == "secrets.key":
            continue
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path} holds the secret ({needle!r})"
        checked.append(path.name)
    return checked


def put_secret(ws: Workspace) -> None:
    assert ws.cli("secrets", "create-scope", "etl").returncode == 0
    put = ws.cli("secrets", "put-secret", "etl", "pw", "--string-value", SECRET)
    assert put.returncode == 0, put.stderr


# ------------------------------------------------------------------------------------------ script tasks

SCRIPT = """
import json, logging, os, subprocess, sys
from sluice.runtime import dbutils
s = dbutils.secrets.get("etl", "pw")
print("whole:", s)
print("repr:", repr(s), "json:", json.dumps({"pw": s}))
sys.stdout.write("split:"); sys.stdout.write(s[:3]); sys.stdout.write(s[3:]); sys.stdout.write("\\n")
print("chars:", end="")
for c in s:
    print(c, end="", flush=True)
print()
for c in s:
    sys.stderr.write(c)
    sys.stderr.flush()
sys.stderr.write("\\n")
logging.warning("logged %s", s)
sys.stdout.buffer.write(b"buffer:" + s.encode() + b"\\n"); sys.stdout.flush()
os.write(1, b"fd:" + s[:4].encode()); os.write(1, s[4:].encode() + b"\\n")
subprocess.run(["printf", "subprocess:%s\\n", s], check=True)
sys.stdout.write("last:" + s[:5])
sys.stdout.write(s[5:])
"""


def test_script_task_logs_redact_whole_split_and_char_by_char_writes(ws: Workspace) -> None:
    put_secret(ws)
    ws.write("task.py", SCRIPT)
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "SUCCESS"}
    logs = ws.cli("runs", "logs", str(done.run.run_id), "--task", "t").stdout
    assert_clean(logs, "the task's logs")
    for line in (
        f"whole: {REDACTED}",
        f'repr: \'{REDACTED}\' json: {{"pw": "{REDACTED}"}}',
        f"split:{REDACTED}",
        f"chars:{REDACTED}",
        f"logged {REDACTED}",
        f"buffer:{REDACTED}",
        f"fd:{REDACTED}",
        f"subprocess:{REDACTED}",
        f"last:{REDACTED}",
    ):
        assert line in logs, f"{line!r} not in:\n{logs}"
    output = ws.json("runs", "get-output", str(done.run.task("t")["run_id"]))
    assert_clean(json.dumps(output), "get-output")
    assert assert_home_clean(ws)


WHEEL_SITE = """
import sys
from sluice.runtime import dbutils

def main():
    s = dbutils.secrets.get("etl", "pw")
    for c in s:
        sys.stdout.write(c)
    print(" <- wheel")
    raise RuntimeError("wheel failed with " + s)
"""


def test_wheel_task_logs_and_error_are_redacted(ws: Workspace, tmp_path: Path) -> None:
    put_secret(ws)
    site = install_wheel(tmp_path)
    (site / "etl_tools" / "__init__.py").write_text(WHEEL_SITE)
    ws.env["PYTHONPATH"] = str(site)
    task = {"task_key": "w", "python_wheel_task": {"package_name": "etl-tools", "entry_point": "etl"}}
    done = ws.run(ws.job([task]))
    assert done.run.results() == {"w": "FAILED"}
    assert task_message(done.run.task("w")) == f"RuntimeError: wheel failed with {REDACTED}"
    logs = ws.cli("runs", "logs", str(done.run.run_id)).stdout
    assert f"{REDACTED} <- wheel" in logs
    assert_clean(logs, "the wheel task's logs")
    output = ws.json("runs", "get-output", str(done.run.task("w")["run_id"]))
    assert f"wheel failed with {REDACTED}" in output["error_trace"]
    assert_clean(json.dumps(output), "get-output")
    assert_home_clean(ws)


LOUD = """
import os, subprocess, sys
from sluice.runtime import dbutils
s = dbutils.secrets.get("etl", "pw")
subprocess.Popen(["sleep", "30"])  # a child that still holds the task's stdout when the task ends
for i in range(20000):
    print(f"print {i} {s}")
    os.write(2, f"fd {i} {s}\\n".encode())
sys.stdout.write("no newline at the end " + s)
"""


def test_a_task_that_read_a_secret_loses_no_output_at_exit(ws: Workspace) -> None:
    put_secret(ws)
    ws.write("task.py", LOUD)
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "SUCCESS"}
    [stdout] = list(ws.home.rglob(f"*/{done.run.task('t')['run_id']}/stdout.log"))
    stderr = stdout.with_name("stderr.log")
    out, err = stdout.read_text().splitlines(), stderr.read_text().splitlines()
    assert out == [f"print {i} {REDACTED}" for i in range(20000)] + [f"no newline at the end {REDACTED}"]
    assert err == [f"fd {i} {REDACTED}" for i in range(20000)]


EXITS_WITH_MESSAGE = """
import sys
from sluice.runtime import dbutils
sys.exit("giving up on " + dbutils.secrets.get("etl", "pw"))
"""


def test_sys_exit_message_is_redacted(ws: Workspace) -> None:
    put_secret(ws)
    ws.write("task.py", EXITS_WITH_MESSAGE)
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "FAILED"}
    logs = ws.cli("runs", "logs", str(done.run.run_id)).stdout
    assert f"giving up on {REDACTED}" in logs
    assert_clean(logs, "logs")
    assert_home_clean(ws)


# ------------------------------------------------------------------------------------------ notebooks

NOTEBOOK = """# Databricks notebook source
import html, json, sys
s = dbutils.secrets.get("etl", "pw")
print("whole:", s)
sys.stdout.write("split:"); sys.stdout.write(s[:3]); sys.stdout.flush()
sys.stdout.write(s[3:]); sys.stdout.write("\\n")
print("chars:", end="")
for c in s:
    print(c, end="", flush=True)
print()

# COMMAND ----------

displayHTML("<b>" + s + "</b> and escaped: " + html.escape(s))

# COMMAND ----------

{"pw": s, "list": [s]}

# COMMAND ----------

import subprocess
subprocess.run(["printf", "subprocess:%s\\\\n", s], check=True)

# COMMAND ----------

dbutils.jobs.taskValues.set("pw", s)
dbutils.notebook.exit("done with " + s)
"""


def test_notebook_outputs_exports_exit_value_and_logs_are_redacted(ws: Workspace) -> None:
    ws.env.pop(
        "PYTEST_CURRENT_TEST", None
    )  # ipykernel does not capture fd 1/2 under pytest; users' kernels do
    put_secret(ws)
    ws.write("nb.py", NOTEBOOK)
    done = ws.run(ws.job([{"task_key": "n", "notebook_task": {"notebook_path": "nb"}}]))
    assert done.run.results() == {"n": "SUCCESS"}, task_message(done.run.task("n"))
    task_run_id = str(done.run.task("n")["run_id"])
    output = ws.json("runs", "get-output", task_run_id)
    assert output["notebook_output"]["result"] == f"done with {REDACTED}"
    assert_clean(json.dumps(output), "get-output")
    exported = ws.cli("runs", "export", task_run_id)
    assert exported.returncode == 0, exported.stderr
    assert_clean(exported.stdout, "the HTML export")
    assert f"whole: {REDACTED}" in exported.stdout
    logs = ws.cli("runs", "logs", str(done.run.run_id)).stdout
    assert_clean(logs, "the notebook's logs")
    for line in (f"whole: {REDACTED}", f"split:{REDACTED}", f"chars:{REDACTED}", f"subprocess:{REDACTED}"):
        assert line in logs, f"{line!r} not in:\n{logs}"
    [ipynb] = list(ws.home.rglob(f"*/{task_run_id}/notebook.ipynb"))
    outputs = json.dumps([c.get("outputs") for c in json.loads(ipynb.read_text())["cells"]])
    assert outputs.count(REDACTED) >= 8, outputs
    checked = assert_home_clean(ws)
    assert {"notebook.ipynb", "notebook.html", "stdout.log", "sluice.db"} <= set(checked)


FAILING_NOTEBOOK = """# Databricks notebook source
s = dbutils.secrets.get("etl", "pw")

# COMMAND ----------

def connect(password):
    raise ConnectionError(f"login refused for {password!r} / {password}")

connect(s)
"""


def test_notebook_error_and_traceback_are_redacted(ws: Workspace) -> None:
    put_secret(ws)
    ws.write("nb.py", FAILING_NOTEBOOK)
    done = ws.run(ws.job([{"task_key": "n", "notebook_task": {"notebook_path": "nb"}}]))
    assert done.run.results() == {"n": "FAILED"}
    message = task_message(done.run.task("n"))
    assert message == f"ConnectionError: login refused for '{REDACTED}' / {REDACTED}"
    output = ws.json("runs", "get-output", str(done.run.task("n")["run_id"]))
    assert REDACTED in output["error_trace"]
    assert_clean(json.dumps(output), "get-output")
    assert_home_clean(ws)


PARENT = """# Databricks notebook source
s = dbutils.secrets.get("etl", "pw")
print("child said:", dbutils.notebook.run("child", 60, {"pw": s}))
"""

CHILD = """# Databricks notebook source
dbutils.widgets.text("pw", "")
dbutils.notebook.exit("widget " + dbutils.widgets.get("pw"))
"""


def test_notebook_run_arguments_holding_a_secret_are_stored_redacted(ws: Workspace) -> None:
    put_secret(ws)
    ws.write("parent.py", PARENT)
    ws.write("child.py", CHILD)
    done = ws.run(ws.job([{"task_key": "p", "notebook_task": {"notebook_path": "parent"}}]))
    assert done.run.results() == {"p": "SUCCESS"}, task_message(done.run.task("p"))
    logs = ws.cli("runs", "logs", str(done.run.run_id)).stdout
    assert f"child said: widget {REDACTED}" in logs
    children = [r for r in ws.list_runs("--limit", "10") if r["run_id"] != done.run.run_id]
    assert children, "the child run"
    child = ws.get_run(int(children[0]["run_id"]))
    assert child.data["tasks"][0]["notebook_task"]["base_parameters"] == {"pw": REDACTED}
    assert_home_clean(ws)


# ------------------------------------------------------------------------------------------ sluice serve

PRODUCER = """
from sluice.runtime import dbutils
s = dbutils.secrets.get("etl", "pw")
dbutils.jobs.taskValues.set("pw", s)
dbutils.jobs.taskValues.set("nested", {"login": "user:" + s, "all": [s, 1]})
dbutils.jobs.taskValues.set(s, "a key that is the secret")
"""

CONSUMER = """
import sys
from sluice.runtime import dbutils
print("argv", sys.argv[1:])
print("got", dbutils.jobs.taskValues.get("producer", "pw"))
"""


def test_task_values_and_downstream_parameters_are_redacted_in_the_store_api_and_cli(ws: Workspace) -> None:
    put_secret(ws)
    token = ws.json("tokens", "create", "--comment", "t", "--output", "json")["token_value"]
    server: Server = start_server(ws, token)
    producer = ws.write("producer.py", PRODUCER)
    consumer = ws.write("consumer.py", CONSUMER)
    settings: dict[str, Any] = {
        "name": "secrets",
        "tasks": [
            {"task_key": "producer", "spark_python_task": {"python_file": str(producer)}},
            {
                "task_key": "consumer",
                "depends_on": [{"task_key": "producer"}],
                "spark_python_task": {
                    "python_file": str(consumer),
                    "parameters": ["{{tasks.producer.values.pw}}", "{{tasks.producer.values.nested}}"],
                },
            },
        ],
    }
    headers = {"Authorization": f"Bearer {token}"}
    api = httpx.Client(base_url=server.url + "/api/2.2", headers=headers, timeout=30)
    job_id = api.post("/jobs/create", json=settings).json()["job_id"]
    run_id = api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"]

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(
            "/jobs/runs/get", params={"run_id": run_id, "include_resolved_values": "true"}
        ).json()
        return run if run["state"].get("result_state") else None

    run = wait_for(finished, timeout=90, what="the run to finish")
    assert run["state"]["result_state"] == "SUCCESS", run
    shown = json.dumps(run)
    assert_clean(shown, "runs/get")
    consumer_task = next(t for t in run["tasks"] if t["task_key"] == "consumer")
    argv = consumer_task["resolved_values"]["spark_python_task"]["parameters"]
    assert argv[0] == REDACTED
    assert json.loads(argv[1]) == {"login": f"user:{REDACTED}", "all": [REDACTED, 1]}
    output = api.get("/jobs/runs/get-output", params={"run_id": consumer_task["run_id"]}).json()
    assert f"got {REDACTED}" in output["logs"]
    assert_clean(json.dumps(output), "runs/get-output")
    cli = ws.cli("runs", "get", str(run_id), "--output", "json")
    assert cli.returncode == 0, cli.stderr
    assert REDACTED in cli.stdout
    assert_clean(cli.stdout, "sluice runs get")
    # the store while the server holds it open: the database file and its write-ahead log, as raw bytes
    checked = assert_home_clean(ws)
    assert {"sluice.db", "sluice.db-wal"} <= set(checked), checked
    api.close()


# ------------------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
def test_postgresql_tables_never_hold_the_clear_value(ws: Workspace) -> None:
    import psycopg

    ws.env.pop("PYTEST_CURRENT_TEST", None)  # as in the notebook test above
    with postgres_schema(require_postgres()) as url:
        ws.env["SLUICE_DATABASE_URL"] = url
        put_secret(ws)
        ws.write("producer.py", PRODUCER)
        ws.write("consumer.py", CONSUMER)
        ws.write("nb.py", NOTEBOOK)
        tasks = [
            py_task("producer", "producer.py"),
            py_task("consumer", "consumer.py", params=["{{tasks.producer.values.pw}}"], deps=["producer"]),
            {"task_key": "n", "notebook_task": {"notebook_path": "nb"}},
            py_task("fails", "task.py"),
        ]
        ws.write(
            "task.py",
            'from sluice.runtime import dbutils\nraise ValueError(dbutils.secrets.get("etl", "pw"))\n',
        )
        done = ws.run(ws.job(tasks))
        assert done.run.results() == {
            "producer": "SUCCESS",
            "consumer": "SUCCESS",
            "n": "SUCCESS",
            "fails": "FAILED",
        }
        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(url) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
                )
            ]
            assert "task_values" in tables
            assert "secrets" in tables
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
                assert_clean("\n".join(str(r[0]) for r in rows), f"table {table}")
    assert_home_clean(ws)
