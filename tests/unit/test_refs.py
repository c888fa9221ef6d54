"""Dynamic value references: parsing, validation messages, resolution and value formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.refs import (
    TIME_ARGS,
    RefContext,
    ReferenceResolutionError,
    RefScope,
    TaskRefInfo,
    check_references,
    find_references,
    format_time,
    format_value,
    referenced_tasks,
    resolve,
)

# Saturday 2024-05-04 06:07:08.009 UTC
START_MS = int(datetime(2024, 5, 4, 6, 7, 8, 9000, tzinfo=UTC).timestamp() * 1000)
# Monday 2024-05-06 00:00:00 UTC, a cron fire time
TRIGGER_MS = int(datetime(2024, 5, 6, tzinfo=UTC).timestamp() * 1000)

SCOPE = RefScope(frozenset({"ingest", "clean", "my-task"}), frozenset({"env", "my-param"}))


def ctx(**overrides: Any) -> RefContext:
    base: dict[str, Any] = {
        "job_id": 11,
        "job_name": "nightly",
        "run_id": 222,
        "start_time_ms": START_MS,
        "task_key": "report",
        "task_run_id": 333,
        "repair_count": 1,
        "trigger_type": "PERIODIC",
        "trigger_time_ms": TRIGGER_MS,
        "job_parameters": {"env": "prod", "my-param": "x y"},
        "execution_count": 2,
        "retry_count": 1,
        "notebook_path": "/Repos/etl/report",
        "workspace_id": "42",
        "workspace_url": "http://localhost:8080",
        "tasks": {
            "ingest": TaskRefInfo(
                run_id=444,
                result_state="SUCCESS",
                execution_count=1,
                values={
                    "count": 12,
                    "ratio": 0.5,
                    "ok": True,
                    "no": False,
                    "name": "abc",
                    "items": [1, "two", {"x": None}],
                    "obj": {"a": 1, "b": [True]},
                    "nothing": None,
                    "my key": "spaced",
                    "uni": ["é"],
                },
            ),
            "clean": TaskRefInfo(run_id=555, result_state="FAILED", error_code="RUN_EXECUTION_ERROR"),
            "sql": TaskRefInfo(run_id=666, output={"rows": [{"n": 3, "label": "a"}, {"n": 4, "label": "b"}]}),
            "my-task": TaskRefInfo(run_id=777, values={"v": "dash"}),
        },
    }
    base.update(overrides)
    return RefContext(**base)


# ---------------------------------------------------------------------------------------------- parsing


def test_find_references_paths_spans_and_back_quotes() -> None:
    text = "a {{job.run_id}} b {{ job.parameters.`my-param` }} {{tasks.`my-task`.values.v}}"
    refs = find_references(text)
    assert [r.path for r in refs] == [
        ("job", "run_id"),
        ("job", "parameters", "my-param"),
        ("tasks", "my-task", "values", "v"),
    ]
    assert text[refs[0].start : refs[0].end] == "{{job.run_id}}"
    assert refs[1].text == "{{ job.parameters.`my-param` }}"


@pytest.mark.parametrize(
    "text", ["no braces", "{job.id}", "{{job.id}", "{{ job .id }}", "{{job..id}}", "{{}}", "{{job-id}}"]
)
def test_malformed_references_are_not_references(text: str) -> None:
    assert find_references(text) == []
    assert check_references(text, SCOPE) == []
    assert resolve(text, ctx()) == text


def test_referenced_tasks() -> None:
    assert referenced_tasks("{{tasks.a.values.x}} {{tasks.`b-c`.run_id}} {{job.id}}") == {"a", "b-c"}


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "text",
    [
        "{{job.id}}",
        "{{job.name}}",
        "{{job.run_id}}",
        "{{job.repair_count}}",
        "{{job.trigger.type}}",
        "{{job.trigger.file_arrival.location}}",
        "{{job.trigger.table_update.updated_tables}}",
        "{{job.trigger.table_update.`cat.sch.t`.version}}",
        "{{job.parameters.env}}",
        "{{job.parameters.`my-param`}}",
        "{{task.name}}",
        "{{task.run_id}}",
        "{{task.execution_count}}",
        "{{task.notebook_path}}",
        "{{tasks.ingest.run_id}}",
        "{{tasks.ingest.result_state}}",
        "{{tasks.ingest.execution_count}}",
        "{{tasks.ingest.error_code}}",
        "{{tasks.ingest.values.anything}}",
        "{{tasks.`my-task`.values.`a b`}}",
        "{{tasks.clean.output.rows}}",
        "{{tasks.clean.output.first_row}}",
        "{{tasks.clean.output.first_row.col}}",
        "{{workspace.id}}",
        "{{workspace.url}}",
        *(f"{{{{job.start_time.{a}}}}}" for a in TIME_ARGS),
        *(f"{{{{job.trigger.time.{a}}}}}" for a in TIME_ARGS),
        *(f"{{{{backfill.{a}}}}}" for a in TIME_ARGS),
        "{{job_id}} {{run_id}} {{parent_run_id}} {{start_date}} {{start_time}}",
        "{{task_retry_count}} {{task_key}}",
        "{{ds}} {{foo.bar}} {{secrets.scope.key}}",  # unknown namespaces: literal text, no error
    ],
)
def test_valid_references_have_no_messages(text: str) -> None:
    assert check_references(text, SCOPE) == []


def test_unknown_job_field_lists_what_job_has() -> None:
    (msg,) = check_references("{{job.notebook_url}}", SCOPE)
    assert msg.startswith("unknown reference {{job.notebook_url}}: job has id, name, run_id")


def test_unknown_task_is_named_with_suggestion() -> None:
    (msg,) = check_references("x {{tasks.ingets.values.n}}", SCOPE)
    assert "no task 'ingets'" in msg
    assert "did you mean 'ingest'" in msg


def test_unknown_job_parameter_lists_defined_ones() -> None:
    (msg,) = check_references("{{job.parameters.evn}}", SCOPE)
    assert "no parameter 'evn'" in msg
    assert "did you mean 'env'" in msg
    assert "defined parameters: env, my-param" in msg


def test_unknown_parameter_when_none_defined() -> None:
    (msg,) = check_references("{{job.parameters.x}}", RefScope(frozenset(), frozenset()))
    assert "defined parameters: none" in msg


def test_input_only_inside_for_each() -> None:
    (msg,) = check_references("{{input}}", SCOPE)
    assert "for_each_task" in msg
    inside = RefScope(SCOPE.task_keys, SCOPE.parameter_names, in_for_each=True)
    assert check_references("{{input}} {{input.id}} {{ input.`a-b` }}", inside) == []
    assert check_references("{{input.a.b}}", inside) != []


@pytest.mark.parametrize(
    "text",
    [
        "{{job}}",
        "{{job.start_time}}",
        "{{job.start_time.weekday}}",
        "{{job.trigger.time.iso}}",
        "{{job.trigger.kind}}",
        "{{job.parameters}}",
        "{{job.parameters.env.x}}",
        "{{task.key}}",
        "{{tasks}}",
        "{{tasks.ingest}}",
        "{{tasks.ingest.values}}",
        "{{tasks.ingest.values.a.b}}",
        "{{tasks.ingest.output}}",
        "{{tasks.ingest.output.first_row.a.b}}",
        "{{tasks.ingest.status}}",
        "{{workspace.name}}",
        "{{backfill.start}}",
    ],
)
def test_invalid_references_in_known_namespaces(text: str) -> None:
    (msg,) = check_references(text, SCOPE)
    assert text in msg


def test_several_messages_in_one_text() -> None:
    msgs = check_references("{{job.x}}-{{task.y}}-{{ok.z}}-{{workspace.q}}", SCOPE)
    assert len(msgs) == 3


# ---------------------------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("job_{{job.run_id}}", "job_222"),
        ("{{job.id}}/{{job.name}}/{{job.repair_count}}", "11/nightly/1"),
        ("{{job.trigger.type}}", "periodic"),
        ("{{job.parameters.env}}", "prod"),
        ("{{ job.parameters.`my-param` }}", "x y"),
        ("{{task.name}}:{{task.run_id}}:{{task.execution_count}}", "report:333:2"),
        ("{{task.notebook_path}}", "/Repos/etl/report"),
        ("{{workspace.id}} {{workspace.url}}", "42 http://localhost:8080"),
        ("{{tasks.ingest.run_id}} {{tasks.ingest.result_state}}", "444 SUCCESS"),
        ("{{tasks.ingest.execution_count}}", "1"),
        ("{{tasks.clean.error_code}}|{{tasks.ingest.error_code}}", "RUN_EXECUTION_ERROR|"),
        ("{{tasks.ingest.values.count}}", "12"),
        ("{{tasks.ingest.values.ratio}}", "0.5"),
        ("{{tasks.ingest.values.ok}}/{{tasks.ingest.values.no}}", "true/false"),
        ("{{tasks.ingest.values.name}}", "abc"),
        ("{{tasks.ingest.values.items}}", '[1,"two",{"x":null}]'),
        ("{{tasks.ingest.values.obj}}", '{"a":1,"b":[true]}'),
        ("{{tasks.ingest.values.nothing}}", "null"),
        ("{{tasks.ingest.values.`my key`}}", "spaced"),
        ("{{tasks.ingest.values.uni}}", '["é"]'),
        ("{{tasks.`my-task`.values.v}}", "dash"),
        ("{{tasks.sql.output.rows}}", '[{"n":3,"label":"a"},{"n":4,"label":"b"}]'),
        ("{{tasks.sql.output.first_row}}", '{"n":3,"label":"a"}'),
        ("{{tasks.sql.output.first_row.label}}={{tasks.sql.output.first_row.n}}", "a=3"),
        ("{{job_id}} {{run_id}} {{parent_run_id}} {{task_key}} {{task_retry_count}}", "11 333 222 report 1"),
        ("{{start_date}} {{start_time}}", f"2024-05-04 {START_MS}"),
        ("{{job.start_time.iso_date}}", "2024-05-04"),
        ("{{job.start_time.iso_datetime}}", "2024-05-04T06:07:08.009Z"),
        ("{{job.trigger.time.iso_datetime}}", "2024-05-06T00:00:00Z"),
        ("{{job.start_time.is_weekday}}/{{job.trigger.time.is_weekday}}", "false/true"),
        ("{{job.start_time.iso_weekday}}/{{job.trigger.time.iso_weekday}}", "6/1"),
        (
            "{{job.start_time.year}}-{{job.start_time.month}}-{{job.start_time.day}} "
            "{{job.start_time.hour}}:{{job.start_time.minute}}:{{job.start_time.second}}",
            "2024-5-4 6:7:8",
        ),
        ("{{job.start_time.timestamp_ms}}", str(START_MS)),
        ("{{backfill.iso_date}}", "2024-05-06"),
        ("{{ds}} {{foo.bar}} {{ job.id }}", "{{ds}} {{foo.bar}} 11"),
        ("{{{{job.id}}}}", "{{11}}"),
        # Databricks resolves secret references only in cluster spark_conf / spark_env_vars: literal here
        ("pw={{secrets/etl/password}}", "pw={{secrets/etl/password}}"),
    ],
)
def test_resolve(text: str, want: str) -> None:
    assert resolve(text, ctx()) == want


def test_trigger_time_defaults_to_start_time_and_file_arrival_location() -> None:
    c = ctx(trigger_time_ms=None, trigger_type="FILE_ARRIVAL", file_arrival_location="s3://b/in/")
    assert resolve("{{job.trigger.time.timestamp_ms}}", c) == str(START_MS)
    assert (
        resolve("{{job.trigger.type}} {{job.trigger.file_arrival.location}}", c) == "file_arrival s3://b/in/"
    )
    assert resolve("[{{job.trigger.file_arrival.location}}]", ctx()) == "[]"


def test_backfill_time_when_set() -> None:
    c = ctx(backfill_time_ms=int(datetime(2023, 12, 31, 23, tzinfo=UTC).timestamp() * 1000))
    assert resolve("{{backfill.iso_date}} {{backfill.hour}}", c) == "2023-12-31 23"


def test_legacy_start_uses_task_start_when_known() -> None:
    c = ctx(task_start_time_ms=TRIGGER_MS)
    assert resolve("{{start_date}} {{start_time}}", c) == f"2024-05-06 {TRIGGER_MS}"


def test_table_update_trigger() -> None:
    c = ctx(table_updates={"main.s.t": (7, 1700000000000), "main.s.a": (1, 5)})
    assert resolve("{{job.trigger.table_update.updated_tables}}", c) == '["main.s.a","main.s.t"]'
    assert resolve("{{job.trigger.table_update.`main.s.t`.version}}", c) == "7"
    assert resolve("{{job.trigger.table_update.`main.s.t`.commit_timestamp}}", c) == "1700000000000"
    with pytest.raises(ReferenceResolutionError, match="not updated"):
        resolve("{{job.trigger.table_update.`x`.version}}", c)


@pytest.mark.parametrize(
    ("inp", "text", "want"),
    [
        ("a", "{{input}}", "a"),
        (3, "{{input}}", "3"),
        (True, "{{input}}", "true"),
        ([1, 2], "{{input}}", "[1,2]"),
        ({"id": 5, "name": "n", "tags": ["x"]}, "{{input}}", '{"id":5,"name":"n","tags":["x"]}'),
        ({"id": 5, "name": "n", "tags": ["x"]}, "{{input.id}}-{{ input.name }}-{{input.tags}}", '5-n-["x"]'),
        ({"a-b": 1}, "{{input.`a-b`}}", "1"),
    ],
)
def test_resolve_input(inp: object, text: str, want: str) -> None:
    assert resolve(text, ctx(input=inp, has_input=True)) == want


@pytest.mark.parametrize(
    ("text", "overrides", "match"),
    [
        ("{{tasks.ingest.values.missing}}", {}, r"\{\{tasks.ingest.values.missing\}\}.*did not set"),
        ("{{tasks.later.values.x}}", {}, r"\{\{tasks.later.values.x\}\}.*has not finished"),
        ("{{tasks.ingest.output.rows}}", {}, "no SQL output"),
        ("{{tasks.ingest.output.first_row}}", {}, "no output rows"),
        ("{{tasks.sql.output.first_row.zzz}}", {}, "no column 'zzz'"),
        ("{{job.parameters.nope}}", {}, "no job parameter 'nope'"),
        ("{{job.nope}}", {}, r"cannot resolve \{\{job.nope\}\}"),
        ("{{task.nope}}", {}, r"\{\{task.nope\}\}"),
        ("{{input}}", {}, "for_each_task"),
        ("{{input.zzz}}", {"input": {"a": 1}, "has_input": True}, "no field 'zzz'"),
        ("{{input.a}}", {"input": [1], "has_input": True}, "no field 'a'"),
    ],
)
def test_resolution_errors_name_the_reference(text: str, overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ReferenceResolutionError, match=match):
        resolve(text, ctx(**overrides))


def test_resolution_is_single_pass() -> None:
    c = ctx(job_parameters={"env": "{{job.id}}"})
    assert resolve("{{job.parameters.env}}", c) == "{{job.id}}"


def test_fast_path_returns_the_same_object() -> None:
    text = "plain text " * 10
    assert resolve(text, ctx()) is text


# ---------------------------------------------------------------------------------------------- formatting


def test_format_value() -> None:
    assert format_value("s") == "s"
    assert format_value(1.5) == "1.5"
    assert format_value(10**20) == "100000000000000000000"
    assert format_value({"k": [1, None]}) == '{"k":[1,null]}'


@given(st.integers(min_value=0, max_value=4102444800000))
def test_format_time_agrees_with_datetime(ms: int) -> None:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    assert format_time(ms, "iso_date") == dt.date().isoformat()
    assert format_time(ms, "timestamp_ms") == str(ms)
    assert format_time(ms, "iso_weekday") == str(dt.isoweekday())
    assert format_time(ms, "is_weekday") == ("true" if dt.weekday() < 5 else "false")
    assert datetime.fromisoformat(format_time(ms, "iso_datetime")) == dt
    parts = [int(format_time(ms, a)) for a in ("year", "month", "day", "hour", "minute", "second")]
    assert parts == [dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second]


def test_format_time_rejects_unknown_argument() -> None:
    with pytest.raises(ReferenceResolutionError, match="unknown time argument"):
        format_time(0, "week")


@given(st.text(alphabet=st.characters(exclude_characters="{")))
def test_text_without_braces_is_unchanged(text: str) -> None:
    assert resolve(text, ctx()) == text
    assert check_references(text, SCOPE) == []


@given(
    st.lists(
        st.sampled_from(["{{job.id}}", "{{ds}}", "x", "{", "}}", "{{task.name}}", "{{a.b.c}}", " "]),
        max_size=8,
    )
)
def test_resolve_only_replaces_known_references(parts: list[str]) -> None:
    text = "".join(parts)
    out = resolve(text, ctx())
    expected = text.replace("{{job.id}}", "11").replace("{{task.name}}", "report")
    assert out == expected


def test_table_update_trigger_info_resolves_its_references() -> None:
    from sluice.engine.runstate import table_updates

    info = {
        "table_update": {
            "updated_tables": ["main.sales.orders"],
            "tables": {"main.sales.orders": {"version": 7, "commit_timestamp": 1_700_000_000_000}},
        }
    }
    updates = table_updates(info)
    assert updates == {"main.sales.orders": (7, 1_700_000_000_000)}
    assert table_updates({}) == {}
    context = ctx(trigger_type="TABLE", table_updates=updates)
    assert resolve("{{job.trigger.table_update.updated_tables}}", context) == '["main.sales.orders"]'
    assert resolve("{{job.trigger.table_update.`main.sales.orders`.version}}", context) == "7"
