"""dbutils.fs and dbutils.secrets in a task run by `sluice run`; printed secrets are redacted in the logs."""

from __future__ import annotations

import json

from e2e.helpers import Workspace, py_task

SECRET = "s3cr3t-Pa55word!"

#: Uses dbutils.fs in DBFS and a volume, reads a secret, prints and logs it in several ways.
TASK = """
import json, logging, sys
from sluice.runtime import dbutils

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # before any secret is read
dbutils.fs.put("dbfs:/tmp/hello.txt", "hello from a task", True)
dbutils.fs.cp("/tmp/hello.txt", "/Volumes/main/raw/landing/hello.txt")
listing = [f.name for f in dbutils.fs.ls("/Volumes/main/raw/landing")]
password = dbutils.secrets.get(scope="etl", key="db-password")
print("password is", password)
print(f"inline:{password}:end")
print({"conn": {"password": password}})
logging.info("connecting with %s", password)
sys.stderr.write("stderr " + password + "\\n")
with open(sys.argv[1], "w") as f:
    json.dump({
        "head": dbutils.fs.head("dbfs:/tmp/hello.txt"),
        "listing": listing,
        "scopes": [s.name for s in dbutils.secrets.listScopes()],
        "keys": [m.key for m in dbutils.secrets.list("etl")],
        "length": len(password),
    }, f)
"""


def test_a_task_uses_fs_and_secrets_and_its_logs_show_redacted(ws: Workspace) -> None:
    assert ws.cli("secrets", "create-scope", "etl").returncode == 0
    put = ws.cli("secrets", "put-secret", "etl", "db-password", "--string-value", SECRET)
    assert put.returncode == 0, put.stderr
    (ws.home / "volumes" / "main" / "raw" / "landing").mkdir(parents=True)
    ws.write("task.py", TASK)
    out = ws.dir / "out.json"
    done = ws.run(ws.job([py_task("t", "task.py", params=[str(out)])]))
    assert done.run.results() == {"t": "SUCCESS"}, done.stderr

    got = json.loads(out.read_text())
    assert got == {
        "head": "hello from a task",
        "listing": ["hello.txt"],
        "scopes": ["etl"],
        "keys": ["db-password"],
        "length": len(SECRET),
    }
    assert (ws.home / "dbfs" / "tmp" / "hello.txt").read_text() == "hello from a task"
    assert (ws.home / "volumes/main/raw/landing/hello.txt").read_text() == "hello from a task"

    logs = ws.cli("runs", "logs", str(done.run.run_id), "--task", "t")
    assert logs.returncode == 0, logs.stderr
    text = logs.stdout
    assert SECRET not in text
    assert "password is [REDACTED]" in text
    assert "inline:[REDACTED]:end" in text
    assert "{'conn': {'password': '[REDACTED]'}}" in text
    assert "INFO connecting with [REDACTED]" in text
    assert "stderr [REDACTED]" in text


def test_a_missing_secret_fails_the_task_with_a_clear_message(ws: Workspace) -> None:
    ws.write(
        "task.py",
        """
        from sluice.runtime import dbutils
        dbutils.secrets.get("nope", "k")
        """,
    )
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "FAILED"}
    output = ws.json("runs", "get-output", str(done.run.task("t")["run_id"]))
    assert "Scope nope does not exist; create it with `sluice secrets create-scope nope`" in output["error"]


def test_a_traceback_holding_a_secret_is_redacted_in_the_log(ws: Workspace) -> None:
    assert ws.cli("secrets", "create-scope", "etl").returncode == 0
    assert ws.cli("secrets", "put-secret", "etl", "pw", "--string-value", SECRET).returncode == 0
    ws.write(
        "task.py",
        """
        from sluice.runtime import dbutils
        password = dbutils.secrets.get("etl", "pw")
        raise ValueError("cannot log in with " + password)
        """,
    )
    done = ws.run(ws.job([py_task("t", "task.py")]))
    assert done.run.results() == {"t": "FAILED"}
    logs = ws.cli("runs", "logs", str(done.run.run_id), "--task", "t").stdout
    assert "ValueError: cannot log in with [REDACTED]" in logs
    assert SECRET not in logs
