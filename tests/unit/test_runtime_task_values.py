"""dbutils.jobs.taskValues in and outside a job (in-process; the context comes from the environment)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sluice.runtime import dbutils
from sluice.runtime.context import CONTEXT_ENV, write_context
from sluice.runtime.task_values import MAX_VALUE_BYTES, encode_value, read_values

tv = dbutils.jobs.taskValues


@pytest.fixture
def outside_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)


@pytest.fixture
def in_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A context for task 'silver' whose upstream tasks are 'bronze' (with values) and 'quiet' (none)."""
    attempt_dir = tmp_path / "attempt"
    write_context(
        attempt_dir / "context.json",
        {
            "job_id": 1,
            "job_run_id": 2,
            "task_key": "silver",
            "task_run_id": 3,
            "task_values": {"bronze": {"rows": 7, "zero": 0, "nothing": None}, "quiet": {}},
        },
    )
    monkeypatch.setenv(CONTEXT_ENV, str(attempt_dir / "context.json"))
    return attempt_dir


# -- outside a job (databricks-sdk's local behaviour) ------------------------------------------------


@pytest.mark.usefixtures("outside_job")
def test_get_outside_a_job_returns_the_debug_value() -> None:
    assert tv.get("bronze", "rows", default=1, debugValue=42) == 42


@pytest.mark.usefixtures("outside_job")
def test_get_outside_a_job_without_debug_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Must pass debugValue when calling get outside of a job context"):
        tv.get("bronze", "rows", default=1)


@pytest.mark.usefixtures("outside_job")
def test_set_outside_a_job_validates_and_keeps_nothing(tmp_path: Path) -> None:
    tv.set("ok", {"a": [1, 2.5, None, True]})
    with pytest.raises(TypeError, match="task value 'bad' must be JSON-serialisable"):
        tv.set("bad", {1, 2})
    assert list(tmp_path.iterdir()) == []


# -- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", math.nan, math.inf])
def test_values_must_be_json(value: Any) -> None:
    with pytest.raises(TypeError, match="task value 'k' must be JSON-serialisable"):
        encode_value("k", value)


def test_circular_values_are_rejected() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="task value 'k'"):
        encode_value("k", loop)


@pytest.mark.parametrize("key", ["", 3, None])
def test_keys_must_be_non_empty_strings(key: Any) -> None:
    with pytest.raises(TypeError, match="task value key must be a non-empty string"):
        encode_value(key, 1)


def test_the_size_limit_is_48_kib_of_json() -> None:
    exactly = "x" * (MAX_VALUE_BYTES - 2)  # plus two quotes
    assert len(encode_value("k", exactly).encode()) == MAX_VALUE_BYTES
    with pytest.raises(
        ValueError, match=r"task value 'k' is 49,153 bytes as JSON; the limit is 49,152 bytes"
    ):
        encode_value("k", exactly + "x")
    with pytest.raises(ValueError, match="is 49,154 bytes"):
        encode_value("k", "é" * (MAX_VALUE_BYTES // 2))  # counted in UTF-8 bytes


# -- in a job ---------------------------------------------------------------------------------------


def test_get_upstream_values(in_job: Path) -> None:
    assert tv.get("bronze", "rows") == 7
    assert tv.get(taskKey="bronze", key="zero", default=5) == 0
    assert tv.get("bronze", "nothing", default="d") is None  # a value that is null is still a value
    assert tv.get("bronze", "missing", default="d") == "d"
    assert tv.get("quiet", "missing", default=[]) == []


def test_missing_key_without_default_names_the_task_and_key(in_job: Path) -> None:
    with pytest.raises(
        ValueError, match=r"task 'bronze' did not set a task value 'missing' \(it set: nothing, rows"
    ):
        tv.get("bronze", "missing")


def test_unknown_task_names_the_known_ones(in_job: Path) -> None:
    with pytest.raises(
        ValueError, match=r"no task 'bronz' among the upstream tasks of 'silver' \(known: bronze, quiet\)"
    ):
        tv.get("bronz", "rows")
    assert tv.get("bronz", "rows", default=1) == 1


def test_set_persists_every_value_at_once(in_job: Path) -> None:
    tv.set("a", 1)
    assert json.loads((in_job / "task_values.json").read_text()) == {"a": 1}
    tv.set("b", {"nested": ["x"]})
    tv.set("a", 2)
    assert read_values(str(in_job)) == {"a": 2, "b": {"nested": ["x"]}}
    assert tv.get("silver", "b") == {"nested": ["x"]}  # a task reads back its own values
    assert sorted(p.name for p in in_job.iterdir()) == [
        "context.json",
        "task_values.json",
        "task_values.json.lock",
    ]


def test_a_rejected_value_changes_nothing(in_job: Path) -> None:
    tv.set("a", 1)
    with pytest.raises(ValueError, match="the limit is"):
        tv.set("a", "x" * MAX_VALUE_BYTES)
    assert read_values(str(in_job)) == {"a": 1}


def test_unknown_dbutils_parts_say_what_exists() -> None:
    with pytest.raises(AttributeError, match=r"dbutils.nope is not available in Sluice \(available: jobs"):
        _ = dbutils.nope


def test_parts_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dbutils.PARTS, "example", "json:dumps")
    try:
        assert dbutils.example is json.dumps
    finally:
        vars(dbutils).pop("example", None)
