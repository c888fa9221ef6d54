"""The notebook context (``dbutils.notebook.entry_point...getContext()``) and the runtime import hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.runtime.context import CONTEXT_JSON_ENV
from sluice.runtime.entry_point import NoSuchElementException, NotebookContext, Option, ScalaMap


def test_option_behaves_like_scalas() -> None:
    assert Option("x").get() == "x"
    assert Option("x").isDefined()
    assert not Option("x").isEmpty()
    assert Option(None).getOrElse("d") == "d"
    assert str(Option(3)) == "Some(3)"
    assert str(Option(None)) == "None"
    with pytest.raises(NoSuchElementException, match=r"None\.get"):
        Option(None).get()


def test_tags_apply_and_get() -> None:
    tags = ScalaMap({"user": "ada"})
    assert tags.apply("user") == "ada"
    assert tags.get("user").get() == "ada"
    assert tags.get("nope").isEmpty()
    with pytest.raises(NoSuchElementException, match="key not found: nope"):
        tags.apply("nope")


def test_the_context_of_a_job_task(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    document = {
        "version": 1,
        "job_id": 7,
        "job_run_id": 40,
        "task_key": "report",
        "task_run_id": 42,
        "user_name": "ada@example.com",
        "job_name": "daily",
        "attempt_dir": str(tmp_path),
    }
    monkeypatch.setenv(CONTEXT_JSON_ENV, json.dumps(document))
    monkeypatch.setenv("SLUICE_NOTEBOOK_PATH", "/repo/notebooks/report.ipynb")
    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-secret")
    ctx = NotebookContext()
    assert ctx.notebookPath().get() == "/repo/notebooks/report"
    assert ctx.userName().get() == ctx.tags().apply("user") == "ada@example.com"
    assert ctx.currentRunId().get().id() == 42
    assert ctx.jobId().get() == "7"
    assert ctx.apiUrl().isEmpty()
    doc = json.loads(ctx.toJson())
    assert doc["currentRunId"] == {"id": 42}
    assert doc["tags"] == {
        "user": "ada@example.com",
        "jobId": "7",
        "runId": "42",
        "multitaskParentRunId": "40",
        "jobRunId": "40",
        "jobName": "daily",
    }
    assert doc["extraContext"] == {"notebook_path": "/repo/notebooks/report", "api_token": "[REDACTED]"}
    assert "dapi-secret" not in ctx.toJson()


def test_outside_a_job_the_context_has_only_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (CONTEXT_JSON_ENV, "SLUICE_TASK_CONTEXT", "SLUICE_NOTEBOOK_PATH"):
        monkeypatch.delenv(name, raising=False)
    ctx = NotebookContext()
    assert ctx.currentRunId().isEmpty()
    assert ctx.jobId().isEmpty()
    assert ctx.notebookPath().isEmpty()
    assert ctx.tags().apply("user") == ctx.userName().get()


HOOKED = """
import json, sys
from sluice.runtime import hooks
hooks.install()
import pyspark
from pyspark.dbutils import DBUtils
from databricks.sdk.runtime import dbutils, display, getArgument, is_local_implementation
from sluice.runtime import dbutils as sluice_dbutils
from sluice.runtime.display import display as sluice_display
print(json.dumps({
    "dbutils": DBUtils(None) is sluice_dbutils and dbutils is sluice_dbutils,
    "display": display is sluice_display,
    "local": is_local_implementation,
    "argument": getArgument("missing", "fallback"),
    "pyspark_untouched": not hasattr(pyspark, "dbutils") or pyspark.dbutils.__name__ == "pyspark.dbutils",
    "spark_loaded": "pyspark.sql.connect.session" in sys.modules,
}))
"""


def test_hooks_give_databricks_imports_sluices_objects_without_starting_spark(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(HOOKED)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "dbutils": True,
        "display": True,
        "local": False,
        "argument": "fallback",
        "pyspark_untouched": True,
        "spark_loaded": False,
    }


def test_without_the_hooks_pyspark_has_no_dbutils(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import pyspark.dbutils"], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "No module named 'pyspark.dbutils'" in done.stderr


def test_the_api_token_is_redacted_once_read(tmp_path: Path) -> None:
    code = (
        "from sluice.runtime import dbutils\n"
        "ctx = dbutils.notebook.entry_point.getDbutils().notebook().getContext()\n"
        "token = ctx.apiToken().get()\n"
        "print(token, len(token))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(DATABRICKS_TOKEN="dapi0123456789abcdef", SLUICE_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[REDACTED] 20\n"
