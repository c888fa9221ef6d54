"""Whole-job validation: every rule with the exact shape of its message, all problems at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import InvalidJobError, Problem
from sluice.spec.bundle import LoadedJob
from sluice.spec.jobs import JobSettings
from sluice.spec.validate import load_and_validate, validate, validate_settings

FIXTURES = Path(__file__).parent / "spec_fixtures"


@pytest.fixture(autouse=True)
def no_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BUNDLE_VAR_"):
            monkeypatch.delenv(name)


def nb(key: str, *deps: str, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"/Shared/{key}"}, **extra}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


def cond(key: str, *deps: str, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "condition_task": {"op": "EQUAL_TO", "left": "a", "right": "a"}}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return {**task, **extra}


def check(data: dict[str, Any]) -> list[Problem]:
    return validate(LoadedJob("etl", JobSettings.from_api(data), Path("/jobs/etl.yml"), None, None))


def one(data: dict[str, Any]) -> Problem:
    (p,) = check(data)
    return p


def test_the_fixtures_are_valid() -> None:
    for target in ("dev", "prod"):
        assert len(load_and_validate(FIXTURES / "ecommerce_bundle", target=target)) == 2
    # A real Databricks job: valid but for its spark_jar_task, which Sluice refuses at validation.
    with pytest.raises(InvalidJobError) as info:
        load_and_validate(FIXTURES / "databricks_job.json")
    assert [(p.task, p.field) for p in info.value.problems] == [("legacy_jar", "tasks[9].spark_jar_task")]
    assert len(load_and_validate(FIXTURES / "single_job.yml")) == 1


def test_valid_job_has_no_problems() -> None:
    assert check({"tasks": [nb("bronze"), nb("silver", "bronze"), nb("gold", "silver", "bronze")]}) == []


# --------------------------------------------------------------------------------------------------------
# Task graph
# --------------------------------------------------------------------------------------------------------


def test_duplicate_task_keys() -> None:
    p = one({"tasks": [nb("a"), nb("b"), nb("a")]})
    assert str(p) == (
        "/jobs/etl.yml, job 'etl', task 'a', tasks[2].task_key: "
        "task key 'a' is already used by tasks[0]; task keys must be unique"
    )


def test_unknown_dependency_suggests_the_closest_key() -> None:
    p = one({"tasks": [nb("bronze"), nb("silver", "bronz")]})
    assert (p.file, p.job, p.task, p.field) == (
        "/jobs/etl.yml",
        "etl",
        "silver",
        "tasks[1].depends_on[0].task_key",
    )
    assert p.message == "depends_on 'bronz' is not a task key (did you mean 'bronze'?)"
    assert str(p) == (
        "/jobs/etl.yml, job 'etl', task 'silver', tasks[1].depends_on[0].task_key: "
        "depends_on 'bronz' is not a task key (did you mean 'bronze'?)"
    )


def test_unknown_dependency_without_a_close_key() -> None:
    assert one({"tasks": [nb("a", "zzz")]}).message == "depends_on 'zzz' is not a task key"


def test_self_dependency() -> None:
    p = one({"tasks": [nb("a", "a")]})
    assert (p.task, p.field, p.message) == (
        "a",
        "tasks[0].depends_on[0].task_key",
        "task 'a' depends on itself",
    )


def test_repeated_dependency() -> None:
    p = one({"tasks": [nb("a"), nb("b", "a", "a")]})
    assert (p.field, p.message) == ("tasks[1].depends_on[1].task_key", "depends_on names 'a' more than once")


def test_cycle_is_printed() -> None:
    p = one({"tasks": [nb("a", "c"), nb("b", "a"), nb("c", "b"), nb("d", "a")]})
    assert p.field == "tasks"
    assert p.message == "tasks depend on each other in a cycle: a -> c -> b -> a (each depends on the next)"


def test_two_task_cycle() -> None:
    p = one({"tasks": [nb("a", "b"), nb("b", "a")]})
    assert p.message.startswith("tasks depend on each other in a cycle: a -> b -> a")


def test_outcome_needs_a_condition_parent() -> None:
    tasks = [nb("a"), nb("b", depends_on=[{"task_key": "a", "outcome": "true"}])]
    p = one({"tasks": tasks})
    assert (p.task, p.field) == ("b", "tasks[1].depends_on[0].outcome")
    assert p.message == "outcome 'true' is only for dependencies on a condition_task; 'a' is a notebook_task"


def test_outcome_values() -> None:
    tasks = [cond("check"), nb("b", depends_on=[{"task_key": "check", "outcome": "True"}])]
    assert one({"tasks": tasks}).message == 'outcome must be "true" or "false", not \'True\''
    ok = [cond("check"), nb("t", depends_on=[{"task_key": "check", "outcome": "true"}])]
    ok.append(nb("f", depends_on=[{"task_key": "check", "outcome": "false"}]))
    assert check({"tasks": ok}) == []


# --------------------------------------------------------------------------------------------------------
# Task rules
# --------------------------------------------------------------------------------------------------------


def test_nested_for_each() -> None:
    inner = {"task_key": "inner", "for_each_task": {"inputs": "[1]", "task": nb("leaf")}}
    p = one({"tasks": [{"task_key": "outer", "for_each_task": {"inputs": "[1, 2]", "task": inner}}]})
    assert (p.task, p.field) == ("outer", "tasks[0].for_each_task.task.for_each_task")
    assert p.message == "the task of a for_each_task cannot itself be a for_each_task"


@pytest.mark.parametrize(
    ("inputs", "ok"),
    [
        ("[1, 2]", True),
        ('[{"a": 1}]', True),
        ("{{tasks.a.values.list}}", True),
        ("{{job.parameters.items}}", True),
        ('{"a": 1}', False),
        ("a,b,c", False),
        ("[" + ",".join(["1"] * 6000) + "]", False),
    ],
)
def test_for_each_inputs(inputs: str, ok: bool) -> None:
    task = {"task_key": "loop", "for_each_task": {"inputs": inputs, "task": nb("i")}}
    probs = check({"parameters": [{"name": "items", "default": "[]"}], "tasks": [nb("a"), task]})
    if ok:
        assert probs == []
    else:
        (p,) = probs
        assert p.field == "tasks[1].for_each_task.inputs"
        assert p.message in (
            "inputs must be a JSON array or a reference such as {{tasks.<key>.values.<name>}}",
            "inline inputs are limited to 10,000 characters; pass a larger array as a task value reference",
        )


def test_condition_task_cannot_retry_or_notify() -> None:
    task = cond(
        "c",
        max_retries=2,
        retry_on_timeout=True,
        email_notifications={"on_failure": ["a@example.com"]},
        webhook_notifications={"on_failure": [{"id": "x"}]},
        notification_settings={"alert_on_last_attempt": True},
    )
    assert [(p.field, p.message) for p in check({"tasks": [task]})] == [
        ("tasks[0].max_retries", "a condition_task cannot retry; remove max_retries"),
        ("tasks[0].retry_on_timeout", "a condition_task cannot retry; remove retry_on_timeout"),
        (
            "tasks[0].email_notifications",
            "a condition_task sends no notifications; remove email_notifications",
        ),
        (
            "tasks[0].webhook_notifications",
            "a condition_task sends no notifications; remove webhook_notifications",
        ),
        (
            "tasks[0].notification_settings",
            "a condition_task sends no notifications; remove notification_settings",
        ),
    ]
    assert check({"tasks": [cond("c", max_retries=0)]}) == []


def test_wheel_task_takes_one_kind_of_parameters() -> None:
    wheel = {"package_name": "p", "entry_point": "main", "parameters": ["a"], "named_parameters": {"k": "v"}}
    p = one({"tasks": [{"task_key": "w", "python_wheel_task": wheel}]})
    assert (p.field, p.message) == (
        "tasks[0].python_wheel_task",
        "python_wheel_task takes parameters or named_parameters, not both",
    )


def test_rules_apply_to_the_task_inside_for_each() -> None:
    wheel = {"package_name": "p", "entry_point": "m", "parameters": [], "named_parameters": {}}
    inner = {"task_key": "w", "python_wheel_task": wheel}
    p = one({"tasks": [{"task_key": "loop", "for_each_task": {"inputs": "[1]", "task": inner}}]})
    assert (p.task, p.field) == ("loop", "tasks[0].for_each_task.task.python_wheel_task")


def test_compute_keys_must_be_defined() -> None:
    data = {
        "job_clusters": [{"job_cluster_key": "etl_cluster", "new_cluster": {}}],
        "environments": [{"environment_key": "default"}],
        "tasks": [nb("a", job_cluster_key="etl_clster"), nb("b", environment_key="defualt")],
    }
    assert [(p.task, p.field, p.message) for p in check(data)] == [
        (
            "a",
            "tasks[0].job_cluster_key",
            "job_cluster_key 'etl_clster' is not defined in job_clusters (did you mean 'etl_cluster'?)",
        ),
        (
            "b",
            "tasks[1].environment_key",
            "environment_key 'defualt' is not defined in environments (did you mean 'default'?)",
        ),
    ]


def test_at_most_one_compute() -> None:
    p = one({"tasks": [nb("a", existing_cluster_id="c-1", new_cluster={"num_workers": 1})]})
    assert (p.field, p.message) == (
        "tasks[0]",
        "give at most one of existing_cluster_id, new_cluster, job_cluster_key, environment_key; "
        "found existing_cluster_id, new_cluster",
    )


# --------------------------------------------------------------------------------------------------------
# Job settings
# --------------------------------------------------------------------------------------------------------


def test_duplicate_parameter_names() -> None:
    p = one({"parameters": [{"name": "day", "default": "1"}, {"name": "day", "default": "2"}]})
    assert (p.field, p.message) == (
        "parameters[1].name",
        "job parameter 'day' is already defined by parameters[0]",
    )


def test_one_kind_of_trigger() -> None:
    data = {
        "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
        "continuous": {"pause_status": "UNPAUSED"},
    }
    p = one(data)
    assert (p.field, p.message) == (
        None,
        "a job takes one of schedule, trigger and continuous; found schedule, continuous",
    )


# --------------------------------------------------------------------------------------------------------
# {{...}} references
# --------------------------------------------------------------------------------------------------------


def test_references_in_known_namespaces_are_checked() -> None:
    data = {
        "parameters": [{"name": "day", "default": "{{job.start_time.iso_dat}}"}],
        "tasks": [
            nb("a", notebook_task={"notebook_path": "/a", "base_parameters": {"x": "{{job.foo}}"}}),
            {
                "task_key": "b",
                "depends_on": [{"task_key": "a"}],
                "spark_python_task": {
                    "python_file": "/b.py",
                    "parameters": ["{{tasks.missing.values.x}}", "{{job.parameters.nope}}", "{{foo.bar}}"],
                },
            },
            cond(
                "c",
                "b",
                condition_task={"op": "EQUAL_TO", "left": "{{input}}", "right": "{{tasks.a.values.n}}"},
            ),
        ],
    }
    got = [(p.task, p.field, p.message) for p in check(data)]
    assert [g[:2] for g in got] == [
        (None, "parameters[0].default"),
        ("a", "tasks[0].notebook_task.base_parameters.x"),
        ("b", "tasks[1].spark_python_task.parameters[0]"),
        ("b", "tasks[1].spark_python_task.parameters[1]"),
        ("c", "tasks[2].condition_task.left"),
    ]
    messages = [g[2] for g in got]
    assert messages[0].startswith("unknown reference {{job.start_time.iso_dat}}: time arguments are")
    assert messages[1].startswith("unknown reference {{job.foo}}: job has id, name, run_id")
    assert messages[2] == "unknown reference {{tasks.missing.values.x}}: the job has no task 'missing'"
    assert messages[3] == (
        "unknown reference {{job.parameters.nope}}: the job defines no parameter 'nope'; "
        "defined parameters: day"
    )
    assert messages[4] == "{{input}} is only available in the task of a for_each_task"


def test_input_is_allowed_inside_for_each_only() -> None:
    inner = nb("i", notebook_task={"notebook_path": "/i", "base_parameters": {"t": "{{input.table}}"}})
    loop: dict[str, Any] = {
        "task_key": "loop",
        "for_each_task": {"inputs": '[{"table": "x"}]', "task": inner},
    }
    assert check({"tasks": [loop]}) == []
    loop["for_each_task"]["inputs"] = "{{input}}"  # the inputs themselves are outside the loop
    assert one({"tasks": [loop]}).field == "tasks[0].for_each_task.inputs"


def test_description_is_not_checked_for_references() -> None:
    assert check({"tasks": [nb("a", description="reads {{job.whatever}}")]}) == []


# --------------------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------------------


def test_load_and_validate_reports_every_job_and_kind_of_problem(tmp_path: Path) -> None:
    for name in ("b", "s", "a"):
        (tmp_path / f"{name}.py").write_text("# Databricks notebook source\n")
    (tmp_path / "databricks.yml").write_text(
        "bundle: {name: b}\n"
        "resources:\n"
        "  jobs:\n"
        "    broken:\n"
        "      tasks: [{task_key: a}]\n"
        "    wrong:\n"
        "      tasks:\n"
        "        - {task_key: bronze, notebook_task: {notebook_path: ./b}}\n"
        "        - {task_key: silver, depends_on: [{task_key: bronz}], notebook_task: {notebook_path: ./s}}\n"
        "        - {task_key: silver, notebook_task: {notebook_path: ./s}}\n"
        "    fine:\n"
        "      tasks: [{task_key: a, notebook_task: {notebook_path: ./a}}]\n"
    )
    with pytest.raises(InvalidJobError) as info:
        load_and_validate(tmp_path)
    got = [(p.job, p.task, p.field) for p in info.value.problems]
    assert got == [
        ("broken", "a", "tasks[0]"),
        ("wrong", "silver", "tasks[2].task_key"),
        ("wrong", "silver", "tasks[1].depends_on[0].task_key"),
    ]
    text = str(info.value)
    assert "depends_on 'bronz' is not a task key (did you mean 'bronze'?)" in text
    assert len(text.splitlines()) == 3


def test_load_and_validate_passes_options_through(tmp_path: Path) -> None:
    (tmp_path / "databricks.yml").write_text(
        "bundle: {name: b}\nvariables: {nb: {}}\n"
        "resources: {jobs: {a: {tasks: [{task_key: t, notebook_task: {notebook_path: '${var.nb}'}}]}, "
        "b: {tasks: []}}}\n"
    )
    (tmp_path / "x.ipynb").write_text("{}")
    (job,) = load_and_validate(tmp_path, variables={"nb": f"{tmp_path}/x"}, job_key="a")
    assert job.settings.tasks[0].notebook_task is not None
    assert job.settings.tasks[0].notebook_task.notebook_path == f"{tmp_path}/x"


def test_validate_settings_without_a_file() -> None:
    settings = JobSettings.from_api({"tasks": [nb("a", "b")]})
    (p,) = validate_settings(settings)
    assert str(p) == "task 'a', tasks[0].depends_on[0].task_key: depends_on 'b' is not a task key"


def test_rich_job_from_json_is_valid_and_checked() -> None:
    data = json.loads((FIXTURES / "databricks_job.json").read_text())["settings"]
    data["tasks"] = [t for t in data["tasks"] if "spark_jar_task" not in t]  # refused: see the fixture test
    assert validate_settings(JobSettings.from_api(data)) == []
    data["tasks"][3]["depends_on"][0]["task_key"] = "rows_okk"
    (p,) = validate_settings(JobSettings.from_api(data))
    assert p.message == "depends_on 'rows_okk' is not a task key (did you mean 'rows_ok'?)"


def git_job(**git: str) -> dict[str, Any]:
    return {"tasks": [nb("a")], "git_source": {"git_provider": "gitHub", **git}}


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/x/y",
        "http://git.internal/x.git",
        "ssh://git@github.com:22/x/y.git",
        "git@github.com:x/y.git",
        "file:///srv/repos/y",
        "/srv/repos/y",
        "../y",
    ],
)
def test_git_urls_sluice_checks_out(url: str) -> None:
    assert check(git_job(git_url=url, git_branch="main")) == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("--upload-pack=touch pwned", "it begins with '-', which git would read as an option"),
        ("-oProxyCommand=x:y", "it begins with '-'"),
        ("ext::sh -c touch% pwned", "it is not a repository URL Sluice checks out from"),
        ("git://github.com/x/y", "it is not a repository URL Sluice checks out from"),
        ("ssh://-oProxyCommand=touch%20x/y", "it is not a repository URL Sluice checks out from"),
        ("https://h/x\ny", "it contains control characters"),
    ],
)
def test_git_urls_that_are_refused_name_the_field(url: str, why: str) -> None:
    p = one(git_job(git_url=url, git_branch="main"))
    assert p.field == "git_source.git_url"
    assert p.message.startswith(f"'{url}' cannot be used: {why}")
    assert "give https://, http://, ssh://, git@host:path, file:// or a local path" in p.message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("git_branch", "--upload-pack=touch pwned", "is not a valid branch name: it must not begin with '-'"),
        ("git_tag", "-v1", "is not a valid tag name: it must not begin with '-'"),
        ("git_branch", "a b", "is not a valid branch name: it contains spaces or control characters"),
        ("git_commit", "--orphan", "is not a commit sha: give the commit's hexadecimal sha"),
        ("git_commit", "HEAD~1", "is not a commit sha"),
    ],
)
def test_revisions_that_git_could_read_as_options_are_refused(field: str, value: str, message: str) -> None:
    p = one(git_job(git_url="https://github.com/x/y", **{field: value}))
    assert p.field == f"git_source.{field}"
    assert p.message.startswith(f"'{value}' {message}")


def test_local_git_sources_only_where_allowed() -> None:
    for url in ("/srv/repos/y", "file:///srv/repos/y", "repo"):
        settings = JobSettings.from_api(git_job(git_url=url))
        assert validate_settings(settings) == []
        (p,) = validate_settings(settings, allow_local_git=False)
        assert p.field == "git_source.git_url"
        assert "is a local repository and this server does not allow local git sources" in p.message
        assert "SLUICE_ALLOW_LOCAL_GIT_SOURCES=true" in p.message
    remote = JobSettings.from_api(git_job(git_url="git@github.com:x/y.git"))
    assert validate_settings(remote, allow_local_git=False) == []


# --------------------------------------------------------------------------------------------------------
# Task files exist; task types that need a JVM are refused
# --------------------------------------------------------------------------------------------------------

FILES_BUNDLE = """
bundle:
  name: churn
variables:
  env: {default: dev}
resources:
  jobs:
    churn_model:
      name: churn-${var.env}
      tasks:
        - task_key: features
          notebook_task: {notebook_path: ./notebooks/features, source: WORKSPACE}
        - task_key: train
          depends_on: [{task_key: features}]
          spark_python_task: {python_file: ./src/train.py}
        - task_key: score
          depends_on: [{task_key: train}]
          for_each_task:
            inputs: '["eu", "us"]'
            task:
              task_key: score_region
              sql_task: {file: {path: ./sql/score.sql, source: WORKSPACE}, warehouse_id: w}
        - task_key: remote
          spark_python_task: {python_file: "dbfs:/FileStore/jobs/remote.py"}
        - task_key: from_git
          notebook_task: {notebook_path: notebooks/publish, source: GIT}
      git_source: {git_url: "https://github.com/acme/churn.git", git_provider: gitHub, git_branch: main}
"""


def files_bundle(root: Path) -> Path:
    (root / "databricks.yml").write_text(FILES_BUNDLE)
    for name, text in {
        "notebooks/features.ipynb": "{}",
        "src/train.py": "print('train')\n",
        "sql/score.sql": "SELECT 1;\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_task_files_that_exist_validate(tmp_path: Path) -> None:
    # features resolves to features.ipynb (Databricks paths leave out the extension); a dbfs: file and a
    # GIT notebook are the run's business.
    (job,) = load_and_validate(files_bundle(tmp_path))
    assert len(job.settings.tasks) == 5


def test_each_missing_task_file_is_named_with_its_task(tmp_path: Path) -> None:
    files_bundle(tmp_path)
    for name in ("notebooks/features.ipynb", "src/train.py", "sql/score.sql"):
        (tmp_path / name).unlink()
    with pytest.raises(InvalidJobError) as info:
        load_and_validate(tmp_path)
    root = tmp_path.absolute()
    assert [(p.task, p.field, p.message) for p in info.value.problems] == [
        (
            "features",
            "tasks[0].notebook_task.notebook_path",
            f"notebook '{root}/notebooks/features' not found: no file {root}/notebooks/features "
            "(nor with .py, .sql, .scala, .r, .ipynb)",
        ),
        (
            "train",
            "tasks[1].spark_python_task.python_file",
            f"python_file '{root}/src/train.py' not found: no file {root}/src/train.py",
        ),
        (
            "score_region",
            "tasks[2].for_each_task.task.sql_task.file.path",
            f"SQL file '{root}/sql/score.sql' not found: no file {root}/sql/score.sql",
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "body", "words"),
    [
        (
            "spark_jar_task",
            {"main_class_name": "com.acme.Cleanup", "parameters": ["--days", "7"]},
            ["JVM", "Spark Connect", "spark_python_task"],
        ),
        (
            "spark_submit_task",
            {"parameters": ["--class", "com.acme.Main", "dbfs:/jars/app.jar"]},
            ["spark-submit", "Spark Connect", "spark_python_task"],
        ),
    ],
)
def test_jvm_task_types_are_refused_at_validation(kind: str, body: dict[str, Any], words: list[str]) -> None:
    for task in ({"task_key": "legacy", kind: body}, {"task_key": "legacy", "for_each_task": {
        "inputs": "[1]", "task": {"task_key": "inner", kind: body}
    }}):  # fmt: skip
        (p,) = check({"tasks": [task]})
        assert p.task == "legacy"
        assert p.field in (f"tasks[0].{kind}", f"tasks[0].for_each_task.task.{kind}")
        assert p.message.startswith(f"{kind} ")
        for word in words:
            assert word in p.message
