"""Parameter precedence: job parameters, task parameters and legacy run-now overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.errors import InvalidRequestError
from sluice.params import LEGACY_MAX_BYTES, check_legacy, merge_named, positional, resolve_job_parameters

DEFS = [("env", "dev"), ("date", "{{job.start_time.iso_date}}"), ("limit", "10")]


def test_job_parameters_defaults_and_overrides_in_definition_order() -> None:
    got = resolve_job_parameters(DEFS, {"limit": "5", "env": "prod"})
    assert got == [
        {"name": "env", "default": "dev", "value": "prod"},
        {"name": "date", "default": "{{job.start_time.iso_date}}", "value": "{{job.start_time.iso_date}}"},
        {"name": "limit", "default": "10", "value": "5"},
    ]


def test_job_parameters_override_with_empty_string_is_kept() -> None:
    (env,) = resolve_job_parameters([("env", "dev")], {"env": ""})
    assert env["value"] == ""


def test_unknown_job_parameter_override_names_it_and_the_defined_ones() -> None:
    with pytest.raises(InvalidRequestError) as info:
        resolve_job_parameters(DEFS, {"evn": "prod"})
    msg = str(info.value)
    assert "'evn' is not defined" in msg
    assert "did you mean 'env'" in msg
    assert "defined parameters: env, date, limit" in msg


def test_unknown_override_when_the_job_has_no_parameters() -> None:
    with pytest.raises(InvalidRequestError, match="defines no parameters"):
        resolve_job_parameters([], {"x": "1"})


def test_job_parameters_are_pushed_down_and_win_over_task_parameters() -> None:
    got = merge_named({"env": "task", "only_task": "t"}, {"env": "job", "date": "d"})
    assert got == {"env": "job", "only_task": "t", "date": "d"}


def test_legacy_overrides_win_over_task_parameters_without_job_parameters() -> None:
    got = merge_named({"a": "task", "b": "task"}, {}, {"b": "run-now", "c": "run-now"})
    assert got == {"a": "task", "b": "run-now", "c": "run-now"}


def test_task_parameters_alone() -> None:
    task = {"a": "1"}
    got = merge_named(task, {})
    assert got == {"a": "1"}
    got["b"] = "2"
    assert task == {"a": "1"}


def test_legacy_overrides_are_refused_with_job_parameters() -> None:
    with pytest.raises(InvalidRequestError, match="pass job_parameters instead"):
        merge_named({}, {"env": "x"}, {"env": "y"})


@given(
    st.dictionaries(st.text(max_size=3), st.text(max_size=3)),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), min_size=1),
)
def test_job_parameter_always_wins(task: dict[str, str], job: dict[str, str]) -> None:
    got = merge_named(task, job)
    assert got.keys() == task.keys() | job.keys()
    for key, value in job.items():
        assert got[key] == value
    for key in task.keys() - job.keys():
        assert got[key] == task[key]


def test_positional_parameters() -> None:
    assert positional(["--a", "1"]) == ["--a", "1"]
    assert positional(["--a", "1"], ["x"]) == ["x"]
    assert positional(["--a", "1"], []) == ["--a", "1"]
    assert positional([], None) == []


def test_check_legacy_size_and_ascii() -> None:
    check_legacy("notebook_params", {"a": "é"})
    check_legacy("python_params", ["ok"], ascii_only=True)
    with pytest.raises(InvalidRequestError, match="python_params must be ASCII only"):
        check_legacy("python_params", ["é"], ascii_only=True)
    with pytest.raises(InvalidRequestError, match=r"notebook_params is \d+ bytes"):
        check_legacy("notebook_params", {"a": "x" * LEGACY_MAX_BYTES})
