"""dbutils.notebook: exit ends the notebook (and the task, successfully) with a value; run is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice.runtime import dbutils, notebook
from sluice.runtime.context import CONTEXT_ENV, CONTEXT_JSON_ENV, write_context
from sluice.runtime.notebook import (
    MAX_RESULT_BYTES,
    NOTEBOOK_EXIT_FILE,
    NotebookExit,
    NotebookUtil,
    truncate_result,
)

nb = NotebookUtil()


@pytest.fixture
def outside_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.delenv(CONTEXT_JSON_ENV, raising=False)


def job_context(tmp_path: Path) -> Path:
    path = tmp_path / "attempt" / "context.json"
    write_context(path, {"job_id": 1, "job_run_id": 2, "task_key": "nb", "task_run_id": 3})
    return path


@pytest.fixture
def in_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The attempt directory of a task in a job."""
    path = job_context(tmp_path)
    monkeypatch.delenv(CONTEXT_JSON_ENV, raising=False)
    monkeypatch.setenv(CONTEXT_ENV, str(path))
    return path.parent


def read_exit(attempt_dir: Path) -> object:
    return json.loads((attempt_dir / NOTEBOOK_EXIT_FILE).read_text(encoding="utf-8"))


# -- exit ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("outside_job")
def test_exit_outside_a_job_only_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotebookExit) as info:
        nb.exit("done")
    assert info.value.value == "done"
    assert str(info.value) == "done"
    assert info.value.code == 0  # an uncaught exit ends the process with status 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("outside_job")
def test_except_exception_does_not_catch_exit() -> None:
    ran: list[str] = []

    def cell() -> None:
        try:
            nb.exit("stop here")
            ran.append("after exit")
        except Exception:  # the user's catch-all, which must not swallow exit
            ran.append("caught")

    with pytest.raises(NotebookExit, match="stop here"):
        cell()
    assert ran == []
    assert issubclass(NotebookExit, SystemExit)
    assert not issubclass(NotebookExit, Exception)


def test_exit_in_a_job_writes_the_value(in_job: Path) -> None:
    with pytest.raises(NotebookExit):
        nb.exit('{"rows": 12}')
    assert read_exit(in_job) == {"result": '{"rows": 12}', "truncated": False}
    with pytest.raises(NotebookExit) as info:
        nb.exit(42)  # type: ignore[arg-type]  # not a string on purpose: recorded as text
    assert info.value.value == "42"
    assert read_exit(in_job) == {"result": "42", "truncated": False}  # the last exit wins
    assert sorted(p.name for p in in_job.iterdir()) == ["context.json", NOTEBOOK_EXIT_FILE]


def test_a_large_exit_value_is_cut_to_5_mb(in_job: Path) -> None:
    value = "x" * (MAX_RESULT_BYTES + 10)
    with pytest.raises(NotebookExit) as info:
        nb.exit(value)
    assert info.value.value == value  # the exception carries it whole
    written = read_exit(in_job)
    assert written == {"result": "x" * MAX_RESULT_BYTES, "truncated": True}


def test_truncation_counts_utf8_bytes_and_never_splits_a_character() -> None:
    assert MAX_RESULT_BYTES == 5 * 1024 * 1024
    assert truncate_result("") == ("", False)
    exact = "x" * MAX_RESULT_BYTES
    assert truncate_result(exact) == (exact, False)
    cut, truncated = truncate_result("é" * MAX_RESULT_BYTES)  # 2 bytes each
    assert truncated
    assert cut == "é" * (MAX_RESULT_BYTES // 2)
    over = "xxx" + "€" * (MAX_RESULT_BYTES // 3)  # 3 bytes each: 1 byte over, the cut falls inside a €
    assert len(over.encode()) == MAX_RESULT_BYTES + 1
    cut, truncated = truncate_result(over)
    assert truncated
    assert cut == "xxx" + "€" * (MAX_RESULT_BYTES // 3 - 1)
    assert len(cut.encode()) <= MAX_RESULT_BYTES
    small = "€" * (MAX_RESULT_BYTES // 3)
    assert truncate_result(small) == (small, False)


# -- run ------------------------------------------------------------------------------------------------


def test_run_outside_a_job_says_how_to_include_the_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICE_TASK_CONTEXT", raising=False)
    monkeypatch.delenv("SLUICE_TASK_CONTEXT_JSON", raising=False)
    with pytest.raises(RuntimeError, match=r"dbutils.notebook.run\('./child', ...\) needs a job run") as info:
        nb.run("./child", 60, {"a": "1"})
    assert "%run" in str(info.value)


def test_dbutils_notebook_is_the_process_notebook_util() -> None:
    assert dbutils.notebook is notebook.notebook


# -- as a task process ------------------------------------------------------------------------------------


def run_script(tmp_path: Path, source: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "task.py"
    script.write_text(textwrap.dedent(source))
    clean = {k: v for k, v in os.environ.items() if k not in (CONTEXT_ENV, CONTEXT_JSON_ENV)}
    return subprocess.run(
        [sys.executable, str(script)], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_exit_in_a_task_process_succeeds_and_stops_it(tmp_path: Path) -> None:
    context = job_context(tmp_path)
    done = run_script(
        tmp_path,
        """
        from sluice.runtime import dbutils
        print("before")
        try:
            dbutils.notebook.exit("finished early")
        except Exception:
            print("swallowed")
        print("after")
        """,
        {CONTEXT_ENV: str(context)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "before\n", "")
    assert read_exit(context.parent) == {"result": "finished early", "truncated": False}


def test_the_seed_try_except_exit_template(tmp_path: Path) -> None:
    context = job_context(tmp_path)
    done = run_script(
        tmp_path,
        """
        from sluice.runtime import dbutils
        try:
            raise RuntimeError("table bronze_data not found")
        except Exception as e:
            error_msg = f"Task failed: {str(e)}"
            print(error_msg)
            dbutils.notebook.exit(error_msg)
        print("not reached")
        """,
        {CONTEXT_ENV: str(context)},
    )
    assert (done.returncode, done.stdout) == (0, "Task failed: table bronze_data not found\n")
    assert read_exit(context.parent) == {
        "result": "Task failed: table bronze_data not found",
        "truncated": False,
    }
