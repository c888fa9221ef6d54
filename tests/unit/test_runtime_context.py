"""The context file: written by the engine, read by the task process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.runtime.context import (
    CONTEXT_ENV,
    ContextError,
    current_context,
    read_context,
    write_context,
    write_json_atomic,
)

BASE = {"job_id": 1, "job_run_id": 2, "task_key": "t", "task_run_id": 3}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "attempt" / "context.json"
    write_context(
        path, {**BASE, "attempt_number": 1, "parameters": {"p": "v"}, "task_values": {"u": {"k": 1}}}
    )
    ctx = read_context(str(path))
    assert (ctx.job_id, ctx.job_run_id, ctx.task_key, ctx.task_run_id, ctx.attempt_number) == (
        1,
        2,
        "t",
        3,
        1,
    )
    assert ctx.parameters == {"p": "v"}
    assert ctx.task_values == {"u": {"k": 1}}
    assert ctx.attempt_dir == str(tmp_path / "attempt")
    assert ctx.raw["version"] == 1
    assert not list(path.parent.glob("*.tmp"))


def test_defaults_and_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    write_context(path, {**BASE, "widgets": {"w": "1"}, "attempt_dir": "/elsewhere"})
    ctx = read_context(str(path))
    assert ctx.attempt_number == 0
    assert ctx.parameters == {}
    assert ctx.task_values == {}
    assert ctx.raw["widgets"] == {"w": "1"}
    assert ctx.attempt_dir == "/elsewhere"


def test_write_context_refuses_incomplete_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks task_key, task_run_id"):
        write_context(tmp_path / "c.json", {"job_run_id": 1})
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "which does not exist"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"job_run_id": 1}', "lacks task_key, task_run_id"),
    ],
)
def test_read_context_errors_name_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "context.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ContextError, match=message) as info:
        read_context(str(path))
    assert str(path) in str(info.value)


def test_current_context_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    assert current_context() is None
    monkeypatch.setenv(CONTEXT_ENV, "")
    assert current_context() is None
    path = tmp_path / "context.json"
    write_context(path, BASE)
    monkeypatch.setenv(CONTEXT_ENV, str(path))
    ctx = current_context()
    assert ctx is not None
    assert ctx.task_key == "t"
    assert current_context() is ctx  # read once per process


def test_atomic_write_leaves_the_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["values.json"]


def test_importing_the_runtime_is_cheap() -> None:
    code = (
        "import sys; before = set(sys.modules); from sluice.runtime import dbutils; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "sluice.runtime.dbutils" in loaded
    heavy = {"typing", "dataclasses", "inspect", "pydantic", "sqlalchemy", "sluice.executors", "subprocess"}
    assert loaded & heavy == set()
