"""The Jobs API models: shapes, round trip, defaults and readable validation errors."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sluice.errors import InvalidJobError, Problem
from sluice.spec.jobs import (
    OTHER_TASK_TYPES,
    SUPPORTED_TASK_TYPES,
    GitProvider,
    JobSettings,
    Task,
    field_path,
    problems_from_validation_error,
)
from sluice.states import ConditionOp, PauseStatus, RunIf

FIXTURES = Path(__file__).parent / "spec_fixtures"


def rich_settings() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "databricks_job.json").read_text())["settings"]
    return data


def nb(key: str, **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "notebook_task": {"notebook_path": f"/Shared/{key}"}, **extra}


def problems_of(data: dict[str, Any]) -> list[Problem]:
    with pytest.raises(InvalidJobError) as info:
        JobSettings.from_api(data)
    return info.value.problems


def messages(data: dict[str, Any]) -> list[str]:
    return [str(p) for p in problems_of(data)]


# --------------------------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------------------------


def test_rich_databricks_job_round_trips_exactly() -> None:
    data = rich_settings()
    original = copy.deepcopy(data)
    settings = JobSettings.from_api(data)
    assert settings.to_api() == original
    assert JobSettings.from_api(settings.to_api()) == settings
    assert data == original  # the input is not modified


def test_rich_job_fields_are_typed() -> None:
    s = JobSettings.from_api(rich_settings())
    assert s.name == "ecommerce nightly"
    assert s.task_keys[:3] == ("ingest", "validate", "rows_ok")
    assert s.git_source is not None
    assert s.git_source.git_provider is GitProvider.GIT_HUB
    assert s.trigger is not None
    assert s.trigger.kind == "file_arrival"
    assert s.trigger.pause_status is PauseStatus.UNPAUSED
    assert s.queue is not None
    assert s.queue.enabled is True
    assert [p.name for p in s.parameters] == ["catalog", "run.date", "tables"]
    rows_ok = s.task("rows_ok")
    assert rows_ok.condition_task is not None
    assert rows_ok.condition_task.op is ConditionOp.GREATER_THAN_OR_EQUAL
    assert s.task("transform").depends_on[0].outcome == "true"
    assert s.task("per_table").run_if is RunIf.ALL_DONE
    dbt = s.task("dbt_models").dbt_task
    assert dbt is not None
    assert dbt.schema_ == "analytics"
    fe = s.task("per_table").for_each_task
    assert fe is not None
    assert fe.concurrency == 2
    assert fe.task.task_type == "sql_task"
    assert s.task("legacy_jar").spark_jar_task == {
        "main_class_name": "com.example.Cleanup",
        "parameters": ["--days", "7"],
    }
    with pytest.raises(KeyError):
        s.task("nope")


def test_task_type_names_the_set_field() -> None:
    s = JobSettings.from_api(rich_settings())
    assert [t.task_type for t in s.tasks] == [
        "notebook_task",
        "spark_python_task",
        "condition_task",
        "python_wheel_task",
        "dbt_task",
        "pipeline_task",
        "for_each_task",
        "sql_task",
        "run_job_task",
        "spark_jar_task",
    ]


@pytest.mark.parametrize("kind", OTHER_TASK_TYPES)
def test_out_of_scope_task_types_load_as_data(kind: str) -> None:
    s = JobSettings.from_api({"tasks": [{"task_key": "t", kind: {"anything": [1, {"x": None}]}}]})
    assert s.tasks[0].task_type == kind
    assert s.to_api() == {"tasks": [{"task_key": "t", kind: {"anything": [1, {"x": None}]}}]}


def test_every_supported_task_type_has_a_model() -> None:
    for kind in SUPPORTED_TASK_TYPES:
        annotation = Task.model_fields[kind].annotation
        assert "dict" not in str(annotation), kind


# --------------------------------------------------------------------------------------------------------
# Defaults and serialisation
# --------------------------------------------------------------------------------------------------------


def test_defaults_are_applied_but_not_written_unless_asked() -> None:
    s = JobSettings.from_api({"tasks": [nb("a")]})
    assert s.name == "Untitled"
    assert s.max_concurrent_runs == 1
    assert s.tasks[0].run_if is RunIf.ALL_SUCCESS
    assert s.tasks[0].depends_on == ()
    assert s.to_api() == {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/Shared/a"}}]}
    full = s.to_api(include_defaults=True)
    assert full["name"] == "Untitled"
    assert full["max_concurrent_runs"] == 1
    assert full["tasks"][0]["run_if"] == "ALL_SUCCESS"


def test_for_each_concurrency_defaults_to_one() -> None:
    s = JobSettings.from_api(
        {"tasks": [{"task_key": "loop", "for_each_task": {"inputs": "[1,2]", "task": nb("inner")}}]}
    )
    fe = s.tasks[0].for_each_task
    assert fe is not None
    assert fe.concurrency == 1


def test_enums_serialise_as_strings() -> None:
    s = JobSettings.from_api({"tasks": [nb("a", run_if="ALL_DONE")], "edit_mode": "EDITABLE"})
    out = s.to_api()
    assert out["edit_mode"] == "EDITABLE"
    assert type(out["edit_mode"]) is str
    assert type(out["tasks"][0]["run_if"]) is str
    assert json.loads(json.dumps(out)) == out


def test_yaml_scalars_become_api_strings() -> None:
    s = JobSettings.from_api(
        {
            "name": 2024,
            "parameters": [{"name": "limit", "default": 10}, {"name": "full", "default": True}],
            "tags": {"tier": 1},
            "tasks": [
                nb(
                    "a", notebook_task={"notebook_path": "/x", "base_parameters": {"ratio": 0.5, "on": False}}
                ),
                {"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": 1, "right": "1"}},
                {"task_key": "p", "spark_python_task": {"python_file": "/p.py", "parameters": [1, True]}},
            ],
        }
    )
    out = s.to_api()
    assert out["name"] == "2024"
    assert out["parameters"] == [{"name": "limit", "default": "10"}, {"name": "full", "default": "true"}]
    assert out["tags"] == {"tier": "1"}
    assert out["tasks"][0]["notebook_task"]["base_parameters"] == {"ratio": "0.5", "on": "false"}
    assert out["tasks"][1]["condition_task"]["left"] == "1"
    assert out["tasks"][2]["spark_python_task"]["parameters"] == ["1", "true"]


def test_for_each_inputs_accept_a_list_and_store_json() -> None:
    s = JobSettings.from_api(
        {"tasks": [{"task_key": "l", "for_each_task": {"inputs": ["a", 1], "task": nb("i")}}]}
    )
    fe = s.tasks[0].for_each_task
    assert fe is not None
    assert fe.inputs == '["a",1]'


def test_git_provider_is_case_insensitive_and_written_canonically() -> None:
    s = JobSettings.from_api(
        {"git_source": {"git_url": "https://x/y", "git_provider": "GITLABENTERPRISEEDITION", "git_tag": "v1"}}
    )
    assert s.to_api()["git_source"]["git_provider"] == "gitLabEnterpriseEdition"


def test_models_are_frozen() -> None:
    s = JobSettings.from_api({"tasks": [nb("a")]})
    with pytest.raises(ValidationError):
        s.name = "other"  # type: ignore[misc]  # the point: assignment must fail at run time
    with pytest.raises(ValidationError):
        s.tasks[0].task_key = "b"  # type: ignore[misc]  # the point: assignment must fail at run time


def test_null_lists_read_as_empty() -> None:
    s = JobSettings.from_api({"tasks": None, "parameters": None, "job_clusters": None})
    assert s.tasks == ()
    assert s.parameters == ()
    assert s.job_clusters == ()


def test_create_body_with_access_control_list_loads() -> None:
    data = {
        "name": "x",
        "access_control_list": [{"user_name": "a@example.com", "permission_level": "IS_OWNER"}],
        "tasks": [nb("a")],
    }
    assert JobSettings.from_api(data).to_api() == data


def test_import_builds_no_schema() -> None:
    code = (
        "import sluice.spec.jobs as j\n"
        "assert not j.JobSettings.__pydantic_complete__\n"
        "assert not j.Task.__pydantic_complete__\n"
        "import sys\n"
        "assert 'yaml' not in sys.modules and 'sluice.spec.bundle' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------


def test_unknown_field_suggests_the_closest() -> None:
    probs = problems_of({"tasks": [nb("a"), nb("b", depend_on=[{"task_key": "a"}])]})
    assert len(probs) == 1
    p = probs[0]
    assert p.message == "unknown field 'depend_on' (did you mean 'depends_on'?)"
    assert (p.task, p.field) == ("b", "tasks[1].depend_on")


def test_unknown_nested_and_job_fields() -> None:
    got = messages(
        {"max_concurent_runs": 2, "tasks": [{"task_key": "a", "notebook_task": {"notebook_pth": "/x"}}]}
    )
    assert got == [
        "task 'a', tasks[0].notebook_task.notebook_path: missing required field 'notebook_path'",
        "task 'a', tasks[0].notebook_task.notebook_pth: unknown field 'notebook_pth' "
        "(did you mean 'notebook_path'?)",
        "max_concurent_runs: unknown field 'max_concurent_runs' (did you mean 'max_concurrent_runs'?)",
    ]


def test_unknown_field_without_a_close_match() -> None:
    assert messages({"zzz": 1}) == ["zzz: unknown field 'zzz'"]


def test_alias_field_is_suggested_by_its_api_name() -> None:
    got = messages({"tasks": [{"task_key": "d", "dbt_task": {"commands": ["dbt run"], "schemas": "x"}}]})
    assert got == ["task 'd', tasks[0].dbt_task.schemas: unknown field 'schemas' (did you mean 'schema'?)"]


def test_bad_enum_lists_allowed_values() -> None:
    (p,) = problems_of({"tasks": [nb("a", run_if="ALL_SUCCES")]})
    assert p.field == "tasks[0].run_if"
    assert p.message == (
        "invalid value 'ALL_SUCCES' (did you mean 'ALL_SUCCESS'?); allowed: ALL_SUCCESS, "
        "AT_LEAST_ONE_SUCCESS, NONE_FAILED, ALL_DONE, AT_LEAST_ONE_FAILED, ALL_FAILED"
    )


def test_bad_condition_op() -> None:
    (p,) = problems_of(
        {"tasks": [{"task_key": "c", "condition_task": {"op": "EQUALS", "left": "", "right": ""}}]}
    )
    assert p.field == "tasks[0].condition_task.op"
    assert p.message.startswith("invalid value 'EQUALS'")
    assert "allowed: EQUAL_TO, NOT_EQUAL, GREATER_THAN" in p.message


def test_a_task_needs_exactly_one_type() -> None:
    none, two = problems_of(
        {"tasks": [{"task_key": "a"}, nb("b", spark_python_task={"python_file": "x.py"})]}
    )
    assert (none.task, none.field) == ("a", "tasks[0]")
    assert none.message.startswith("a task needs exactly one task type (notebook_task, spark_python_task")
    assert none.message.endswith("; found none")
    assert (two.task, two.field) == ("b", "tasks[1]")
    assert two.message.endswith("; found 2: notebook_task, spark_python_task")


@pytest.mark.parametrize("key", ["has space", "", "x" * 101, "dot.ted", "ümlaut"])
def test_bad_task_keys(key: str) -> None:
    (p,) = problems_of({"tasks": [nb(key)]})
    assert p.message == f"task_key '{key}' must be 1-100 characters of letters, digits, '_' and '-'"
    assert p.field == "tasks[0].task_key"


@pytest.mark.parametrize("key", ["a", "A-b_9", "x" * 100])
def test_good_task_keys(key: str) -> None:
    assert JobSettings.from_api({"tasks": [nb(key)]}).tasks[0].task_key == key


@pytest.mark.parametrize("name", ["a b", "x/y", ""])
def test_bad_parameter_names(name: str) -> None:
    (p,) = problems_of({"parameters": [{"name": name, "default": ""}]})
    assert p.field == "parameters[0].name"
    assert p.message == f"job parameter name '{name}' may only contain letters, digits, '_', '.' and '-'"


def test_parameter_needs_name_and_default() -> None:
    assert messages({"parameters": [{"name": "a"}]}) == [
        "parameters[0].default: missing required field 'default'"
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"max_concurrent_runs": -1}, "max_concurrent_runs"),
        ({"max_concurrent_runs": 1001}, "max_concurrent_runs"),
        ({"timeout_seconds": -5}, "timeout_seconds"),
        ({"tasks": [nb("a", max_retries=-2)]}, "tasks[0].max_retries"),
        ({"tasks": [nb("a", timeout_seconds=-1)]}, "tasks[0].timeout_seconds"),
        ({"tasks": [nb("a", min_retry_interval_millis=-1)]}, "tasks[0].min_retry_interval_millis"),
    ],
)
def test_out_of_range_numbers(data: dict[str, Any], field: str) -> None:
    (p,) = problems_of(data)
    assert p.field == field
    assert "should be" in p.message
    assert p.message.endswith(("(got -1)", "(got -2)", "(got -5)", "(got 1001)"))


def test_boundary_numbers_are_accepted() -> None:
    s = JobSettings.from_api(
        {"max_concurrent_runs": 0, "timeout_seconds": 0, "tasks": [nb("a", max_retries=-1)]}
    )
    assert s.max_concurrent_runs == 0
    assert s.tasks[0].max_retries == -1
    assert JobSettings.from_api({"max_concurrent_runs": 1000}).max_concurrent_runs == 1000


def test_git_refs_are_mutually_exclusive() -> None:
    (p,) = problems_of(
        {"git_source": {"git_url": "u", "git_provider": "gitHub", "git_branch": "main", "git_commit": "abc"}}
    )
    assert p.field == "git_source"
    assert p.message == "give only one of git_branch, git_tag, git_commit; found git_branch, git_commit"


def test_bad_git_provider() -> None:
    (p,) = problems_of({"git_source": {"git_url": "u", "git_provider": "sourceforge"}})
    assert p.field == "git_source.git_provider"
    assert "allowed: gitHub, bitbucketCloud" in p.message


def test_trigger_needs_exactly_one_kind() -> None:
    (p,) = problems_of({"trigger": {"pause_status": "PAUSED"}})
    assert p.message == "give one of file_arrival, periodic, table_update, model, job_completion"
    (p,) = problems_of(
        {"trigger": {"periodic": {"interval": 1, "unit": "HOURS"}, "file_arrival": {"url": "/Volumes/x"}}}
    )
    assert p.message.endswith("found file_arrival, periodic")


def test_sql_task_needs_one_kind() -> None:
    (p,) = problems_of({"tasks": [{"task_key": "s", "sql_task": {"warehouse_id": "w"}}]})
    assert (p.field, p.message) == ("tasks[0].sql_task", "give one of query, file, alert, dashboard")


def test_dbt_commands_must_start_with_dbt() -> None:
    (p,) = problems_of({"tasks": [{"task_key": "d", "dbt_task": {"commands": ["dbt deps", "run"]}}]})
    assert p.message == "dbt_task.commands[1] 'run' must start with 'dbt'"


def test_type_errors_show_the_input() -> None:
    (p,) = problems_of({"tasks": [nb("a", max_retries="many")]})
    assert p.field == "tasks[0].max_retries"
    assert p.message.endswith("(got 'many')")
    assert p.message.startswith("input should be a valid integer")


def test_all_problems_are_reported_at_once() -> None:
    probs = problems_of(
        {
            "name": "x",
            "max_concurrent_runs": -1,
            "tasks": [nb("a b"), {"task_key": "c"}, nb("d", run_if="SOMETIMES")],
        }
    )
    assert [p.field for p in probs] == [
        "tasks[0].task_key",
        "tasks[1]",
        "tasks[2].run_if",
        "max_concurrent_runs",
    ]


def test_from_api_names_file_and_job() -> None:
    with pytest.raises(InvalidJobError) as info:
        JobSettings.from_api({"tasks": [{"task_key": "t"}]}, file="jobs/x.json", job="x")
    (p,) = info.value.problems
    assert (p.file, p.job, p.task) == ("jobs/x.json", "x", "t")
    assert str(info.value).startswith("jobs/x.json, job 'x', task 't', tasks[0]: a task needs exactly one")


def test_non_mapping_input() -> None:
    (p,) = problems_of([1, 2])  # type: ignore[arg-type]  # deliberately the wrong type
    assert p.field is None
    assert p.message.startswith("input should be a valid dictionary")


def test_problems_from_a_raw_validation_error() -> None:
    data = {
        "tasks": [nb("a"), {"task_key": "b", "for_each_task": {"inputs": "[]", "task": {"task_key": "i"}}}]
    }
    with pytest.raises(ValidationError) as info:
        JobSettings.model_validate(data)
    (p,) = problems_from_validation_error(info.value, data, file="f.yml", job="j")
    assert (p.file, p.job, p.task, p.field) == ("f.yml", "j", "b", "tasks[1].for_each_task.task")


def test_field_path() -> None:
    assert field_path(("tasks", 2, "depends_on", 0, "task_key")) == "tasks[2].depends_on[0].task_key"
    assert field_path(("name",)) == "name"
    assert field_path(()) == ""
