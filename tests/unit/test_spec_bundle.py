"""Loading jobs: bundles (include, targets, variables, presets), Jobs API JSON, single-job YAML, paths."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import InvalidJobError, Problem
from sluice.spec.bundle import LoadedJob, load_jobs
from sluice.states import PauseStatus

FIXTURES = Path(__file__).parent / "spec_fixtures"
BUNDLE = FIXTURES / "ecommerce_bundle"


@pytest.fixture(autouse=True)
def local_user(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``${workspace.current_user.userName}`` is the local login name."""
    tmp_path_factory.getbasetemp()  # named after the real user, before the login name changes
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "alice.smith@example.com")
    for name in list(os.environ):
        if name.startswith("BUNDLE_VAR_"):
            monkeypatch.delenv(name)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def by_key(jobs: list[LoadedJob]) -> dict[str, LoadedJob]:
    return {j.key: j for j in jobs}


def load_problems(path: Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(InvalidJobError) as info:
        load_jobs(path, **kwargs)
    return info.value.problems


def only_message(path: Path, **kwargs: Any) -> str:
    (p,) = load_problems(path, **kwargs)
    return p.message


SIMPLE = """
bundle:
  name: demo
variables:
  who:
    default: world
resources:
  jobs:
    hello:
      name: hello ${var.who}
      tasks:
        - task_key: a
          notebook_task:
            notebook_path: /Shared/hello
            base_parameters: {who: "${var.who}"}
"""


# --------------------------------------------------------------------------------------------------------
# The example bundle
# --------------------------------------------------------------------------------------------------------


def test_example_bundle_dev_target_is_the_default() -> None:
    jobs = by_key(load_jobs(BUNDLE))
    assert list(jobs) == ["vacuum", "medallion"]
    med = jobs["medallion"]
    assert (med.bundle_name, med.target, med.bundle_key) == ("ecommerce", "dev", "ecommerce/medallion")
    assert med.source_file == BUNDLE.absolute() / "resources" / "medallion.job.yml"
    s = med.settings
    assert s.name == "[dev alice_smith] ecommerce-medallion-dev"
    assert s.tags == {"team": "data", "dev": "alice_smith"}
    assert s.max_concurrent_runs == 4
    assert s.schedule is not None
    assert s.schedule.pause_status is PauseStatus.PAUSED
    assert [(p.name, p.default) for p in s.parameters] == [
        ("catalog", "workspace"),
        ("run_date", "{{job.trigger.time.iso_date}}"),
    ]
    assert s.email_notifications is not None
    assert s.email_notifications.on_failure == ("dev-team@example.com",)
    assert s.job_clusters[0].new_cluster == {
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 1,
    }
    gold = s.task("gold").sql_task
    assert gold is not None
    assert gold.warehouse_id == "dev-warehouse"
    assert gold.parameters == {"catalog": "{{job.parameters.catalog}}"}
    vacuum = jobs["vacuum"].settings
    assert vacuum.name == "[dev alice_smith] vacuum-workspace"
    assert vacuum.trigger is not None
    assert vacuum.trigger.pause_status is PauseStatus.PAUSED


def test_example_bundle_paths_resolve_relative_to_the_file_naming_them() -> None:
    src = BUNDLE.absolute() / "src"
    s = by_key(load_jobs(BUNDLE, target="prod"))["medallion"].settings
    bronze = s.task("bronze").notebook_task
    assert bronze is not None
    assert bronze.notebook_path == str(src / "bronze.py")
    report = s.task("report").spark_python_task
    assert report is not None
    assert report.python_file == str(src / "report.py")
    gold = s.task("gold").sql_task
    assert gold is not None
    assert gold.file is not None
    assert gold.file.path == str(src / "gold.sql")
    # publish is added by the prod target in databricks.yml: relative to the bundle root, not resources/.
    publish = s.task("publish").notebook_task
    assert publish is not None
    assert publish.notebook_path == str(src / "publish.py")
    fe = by_key(load_jobs(BUNDLE, target="prod"))["vacuum"].settings.task("vacuum_each").for_each_task
    assert fe is not None
    assert fe.task.notebook_task is not None
    assert fe.task.notebook_task.notebook_path == str(src / "vacuum.py")


def test_example_bundle_prod_target_merges_overrides() -> None:
    jobs = by_key(load_jobs(BUNDLE, target="prod"))
    s = jobs["medallion"].settings
    assert s.name == "ecommerce-medallion-prod"
    assert s.max_concurrent_runs == 2
    assert s.tags == {"team": "data"}
    assert s.schedule is not None
    assert s.schedule.pause_status is None
    assert s.task_keys == ("bronze", "silver", "quality_gate", "gold", "report", "alert_empty", "publish")
    gold = s.task("gold")
    assert gold.timeout_seconds == 7200
    assert gold.sql_task is not None  # merged, not replaced
    assert gold.depends_on[0].outcome == "true"
    assert s.parameters[0].default == "prod"
    assert s.run_as is not None
    assert s.run_as.service_principal_name == "9f0e8a3c-4b1d-4e5f-8a7b-etl"
    assert jobs["vacuum"].settings.run_as == s.run_as
    assert jobs["vacuum"].settings.name == "vacuum-prod"


def test_example_bundle_directory_and_file_are_the_same() -> None:
    assert load_jobs(BUNDLE) == load_jobs(BUNDLE / "databricks.yml")


def test_job_key_selects_one_job() -> None:
    (job,) = load_jobs(BUNDLE, job_key="vacuum")
    assert job.key == "vacuum"
    assert (
        only_message(BUNDLE, job_key="medalion")
        == "no job 'medalion' in bundle 'ecommerce'; jobs: vacuum, medallion"
    )


# --------------------------------------------------------------------------------------------------------
# Variables
# --------------------------------------------------------------------------------------------------------


def test_variable_default(tmp_path: Path) -> None:
    (job,) = load_jobs(write(tmp_path, {"databricks.yml": SIMPLE}))
    assert job.settings.name == "hello world"
    assert job.target == "default"  # no targets: the CLI's implicit "default" target


def test_var_beats_env_beats_target_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SIMPLE + "targets:\n  t:\n    variables:\n      who: target\n"
    write(tmp_path, {"databricks.yml": text})
    assert load_jobs(tmp_path)[0].settings.name == "hello target"
    monkeypatch.setenv("BUNDLE_VAR_who", "env")
    assert load_jobs(tmp_path)[0].settings.name == "hello env"
    assert load_jobs(tmp_path, variables={"who": "cli"})[0].settings.name == "hello cli"


def test_missing_required_variable(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE.replace("    default: world\n", "    description: who\n")})
    probs = load_problems(tmp_path)
    assert len(probs) == 2  # the name and the base parameter both use it
    p = probs[0]
    assert p.message == (
        "cannot resolve ${var.who}: no value assigned to required variable 'who'; "
        "assign it with --var who=<value>, the BUNDLE_VAR_who environment variable, or a default"
    )
    assert (p.job, p.field) == ("hello", "resources.jobs.hello.name")
    assert p.file == str(tmp_path.absolute() / "databricks.yml")


def test_lookup_variable_needs_a_value(tmp_path: Path) -> None:
    text = SIMPLE.replace("    default: world\n", "    lookup: {warehouse: Shared WH}\n")
    write(tmp_path, {"databricks.yml": text})
    assert "uses a lookup, which Sluice cannot resolve" in load_problems(tmp_path)[0].message
    assert load_jobs(tmp_path, variables={"who": "wh-1"})[0].settings.name == "hello wh-1"


def test_unused_unresolvable_variables_are_not_errors(tmp_path: Path) -> None:
    text = SIMPLE.replace("variables:\n", "variables:\n  unused:\n    lookup: {warehouse: X}\n")
    assert load_jobs(write(tmp_path, {"databricks.yml": text}))[0].settings.name == "hello world"


def test_unknown_cli_variable(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE})
    assert only_message(tmp_path, variables={"whoo": "x"}) == (
        "--var 'whoo': the bundle defines no variable 'whoo' (did you mean 'who'?)"
    )


def test_target_assigns_undefined_variable(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE + "targets:\n  t:\n    variables:\n      wh0: x\n"})
    assert only_message(tmp_path) == "variable 'wh0' is assigned but not defined (did you mean 'who'?)"


def test_complex_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = """
    bundle: {name: demo}
    variables:
      cluster:
        type: complex
        default: {spark_version: "15.4", num_workers: 2, spark_conf: {a: b}}
      workers: {default: 3}
    targets:
      big:
        variables:
          cluster:
            default: {spark_version: "16.0", num_workers: 8}
    resources:
      jobs:
        j:
          max_concurrent_runs: ${var.workers}
          job_clusters:
            - job_cluster_key: c
              new_cluster: ${var.cluster}
          tasks:
            - task_key: a
              job_cluster_key: c
              spark_python_task:
                python_file: /x.py
                parameters: ["${var.cluster.spark_version}", "${var.cluster.num_workers}"]
    """
    write(tmp_path, {"databricks.yml": text})
    (job,) = load_jobs(tmp_path)
    s = job.settings
    assert s.max_concurrent_runs == 3  # a whole-string reference keeps the value's type
    assert s.job_clusters[0].new_cluster == {"spark_version": "16.0", "num_workers": 8}
    task = s.tasks[0].spark_python_task
    assert task is not None
    assert task.parameters == ("16.0", "8")
    probs = load_problems(tmp_path, variables={"cluster": "x"})
    assert [p.field for p in probs] == [
        "resources.jobs.j.job_clusters[0].new_cluster",
        "resources.jobs.j.tasks[0].spark_python_task.parameters[0]",
        "resources.jobs.j.tasks[0].spark_python_task.parameters[1]",
    ]
    assert probs[0].message == (
        "cannot resolve ${var.cluster}: variable 'cluster' is complex and cannot be set with --var"
    )
    monkeypatch.setenv("BUNDLE_VAR_cluster", "{}")
    assert (
        "cannot be set with the environment variable BUNDLE_VAR_cluster" in load_problems(tmp_path)[0].message
    )


def test_complex_value_needs_type_complex(tmp_path: Path) -> None:
    text = SIMPLE.replace("    default: world\n", "    default: {a: 1}\n")
    write(tmp_path, {"databricks.yml": text})
    assert (
        "variable 'who' has a complex value; declare it with type: complex"
        in load_problems(tmp_path)[0].message
    )


def test_complex_variable_inside_a_string_is_an_error(tmp_path: Path) -> None:
    text = SIMPLE.replace("    default: world\n", "    type: complex\n    default: {a: 1}\n")
    write(tmp_path, {"databricks.yml": text})
    assert load_problems(tmp_path)[0].message == (
        "cannot resolve ${var.who}: a complex value cannot be part of a string"
    )


def test_variables_refer_to_variables_and_bundle_fields(tmp_path: Path) -> None:
    text = """
    bundle: {name: shop}
    variables:
      schema: {default: "${bundle.name}_${bundle.target}"}
      table: {default: "${var.schema}.events"}
    targets:
      qa: {default: true}
      prod: {}
    resources:
      jobs:
        j:
          name: ${var.table} by ${workspace.current_user.userName} (${workspace.current_user.short_name})
          tasks:
            - task_key: a
              notebook_task:
                notebook_path: ${workspace.file_path}/nb
                base_parameters: {literal: "{{job.parameters.x}} and {{ tasks.a.values.b }}"}
    """
    write(tmp_path, {"databricks.yml": text})
    (job,) = load_jobs(tmp_path)
    assert job.settings.name == "shop_qa.events by alice.smith@example.com (alice_smith)"
    nb = job.settings.tasks[0].notebook_task
    assert nb is not None
    assert nb.notebook_path == f"{tmp_path.absolute()}/nb"
    assert nb.base_parameters == {"literal": "{{job.parameters.x}} and {{ tasks.a.values.b }}"}


def test_variable_cycle(tmp_path: Path) -> None:
    text = SIMPLE.replace(
        "    default: world\n", "    default: ${var.other}\n  other:\n    default: ${var.who}\n"
    )
    write(tmp_path, {"databricks.yml": text})
    msg = load_problems(tmp_path)[0].message
    assert msg.startswith("cannot resolve ${var.who} -> ${var.other} -> ${var.who}: ")
    assert msg.endswith("variables refer to each other in a cycle: who -> other -> who")


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("${foo.bar}", "unknown reference; Sluice resolves ${var.<name>}"),
        ("${var.nope}", "the bundle defines no variable 'nope'"),
        ("${resources.jobs.other.id}", "Sluice resolves ${resources.jobs.<key>.id} of this bundle's jobs"),
        ("${workspace.host}", "unknown reference"),
    ],
)
def test_unresolvable_reference_names_it(tmp_path: Path, ref: str, why: str) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE.replace("/Shared/hello", f"/Shared/{ref}")})
    (p,) = load_problems(tmp_path)
    assert p.message.startswith(f"cannot resolve {ref}: {why}")
    assert p.field == "resources.jobs.hello.tasks[0].notebook_task.notebook_path"


def test_double_braces_pass_through_untouched(tmp_path: Path) -> None:
    text = SIMPLE.replace("hello ${var.who}", "'{{job.name}} ${var.who} {{tasks.a.values.x}}'")
    (job,) = load_jobs(write(tmp_path, {"databricks.yml": text}))
    assert job.settings.name == "{{job.name}} world {{tasks.a.values.x}}"


# --------------------------------------------------------------------------------------------------------
# Targets, include, presets
# --------------------------------------------------------------------------------------------------------


def targets_bundle(tmp_path: Path, targets: str) -> Path:
    return write(
        tmp_path, {"databricks.yml": SIMPLE + "targets:\n" + textwrap.indent(textwrap.dedent(targets), "  ")}
    )


def test_single_target_is_selected(tmp_path: Path) -> None:
    targets_bundle(tmp_path, "only: {}\n")
    assert load_jobs(tmp_path)[0].target == "only"


def test_several_targets_without_default(tmp_path: Path) -> None:
    targets_bundle(tmp_path, "a: {}\nb: {}\n")
    assert only_message(tmp_path) == "please specify a target (--target); targets: a, b"


def test_several_default_targets(tmp_path: Path) -> None:
    targets_bundle(tmp_path, "a: {default: true}\nb: {default: true}\n")
    assert only_message(tmp_path) == "multiple targets are marked as default (a, b)"


def test_unknown_target(tmp_path: Path) -> None:
    targets_bundle(tmp_path, "dev: {default: true}\nprod: {}\n")
    assert only_message(tmp_path, target="stage") == "unknown target 'stage'; targets: dev, prod"


def test_bad_mode(tmp_path: Path) -> None:
    targets_bundle(tmp_path, "dev: {mode: debug}\n")
    (p,) = load_problems(tmp_path)
    assert (p.message, p.field) == ("mode must be development or production, not 'debug'", "targets.dev.mode")


def test_unknown_keys_suggest_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE.replace("resources:", "resource:")})
    assert [p.message for p in load_problems(tmp_path)] == [
        "unknown field: resource (did you mean 'resources'?); ignored, as the Databricks CLI does",
        "the bundle defines no job",
    ]
    targets_bundle(tmp_path, "dev: {modes: development}\n")
    assert only_message(tmp_path) == "unknown targets.dev key 'modes' (did you mean 'mode'?)"


def test_bundle_needs_a_name(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": SIMPLE.replace("  name: demo\n", "  git: {}\n")})
    assert only_message(tmp_path) == "the bundle needs a name: bundle: {name: <name>}"


DEV_BUNDLE = """
bundle: {name: demo}
targets:
  dev:
    mode: development
presets: PRESETS
resources:
  jobs:
    sched:
      max_concurrent_runs: 1
      tags: {dev: mine}
      schedule: {quartz_cron_expression: "0 0 * * * ?", timezone_id: UTC, pause_status: UNPAUSED}
      tasks: [{task_key: a, notebook_task: {notebook_path: /a}}]
    cont:
      name: always
      continuous: {}
      tasks: [{task_key: a, notebook_task: {notebook_path: /a}}]
"""


def test_development_mode_presets_follow_the_cli(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": DEV_BUNDLE.replace("PRESETS", "{}")})
    jobs = by_key(load_jobs(tmp_path))
    sched, cont = jobs["sched"].settings, jobs["cont"].settings
    assert sched.name == "[dev alice_smith] sched"  # a bundle job without a name is named by its key
    assert cont.name == "[dev alice_smith] always"
    # Like apply_presets.go: values the job sets itself are kept.
    assert sched.max_concurrent_runs == 1
    assert sched.tags == {"dev": "mine"}
    assert sched.schedule is not None
    assert sched.schedule.pause_status is PauseStatus.UNPAUSED
    assert cont.max_concurrent_runs == 4
    assert cont.tags == {"dev": "alice_smith"}
    assert cont.continuous is not None
    assert cont.continuous.pause_status is PauseStatus.PAUSED


def test_explicit_presets_override_development_defaults(tmp_path: Path) -> None:
    presets = "{name_prefix: '[${bundle.target}] ', jobs_max_concurrent_runs: 7, tags: {owner: me}}"
    write(tmp_path, {"databricks.yml": DEV_BUNDLE.replace("PRESETS", presets)})
    cont = by_key(load_jobs(tmp_path))["cont"].settings
    assert cont.name == "[dev] always"
    assert cont.max_concurrent_runs == 7
    assert cont.tags == {"dev": "alice_smith", "owner": "me"}


def test_bad_trigger_pause_status_preset(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": DEV_BUNDLE.replace("PRESETS", "{trigger_pause_status: STOPPED}")})
    assert only_message(tmp_path) == "trigger_pause_status must be PAUSED or UNPAUSED, not 'STOPPED'"


def test_include_globs_and_target_merge_by_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "databricks.yml": """
            bundle: {name: demo}
            include: ["resources/**/*.yml"]
            targets:
              prod:
                resources:
                  jobs:
                    etl:
                      parameters: [{name: env, default: prod}, {name: extra, default: x}]
                      job_clusters: [{job_cluster_key: c, new_cluster: {num_workers: 8}}]
                      tasks:
                        - task_key: load
                          depends_on: [{task_key: extract}]
                          max_retries: 5
            """,
            "resources/etl.yml": """
            resources:
              jobs:
                etl:
                  parameters: [{name: env, default: dev}]
                  job_clusters: [{job_cluster_key: c, new_cluster: {spark_version: "15.4", num_workers: 1}}]
                  tasks:
                    - task_key: extract
                      notebook_task: {notebook_path: /e}
                    - task_key: load
                      notebook_task: {notebook_path: /l}
            """,
            "resources/nested/other.yml": """
            resources:
              jobs:
                other:
                  tasks: [{task_key: a, notebook_task: {notebook_path: /a}}]
            """,
        },
    )
    assert [j.key for j in load_jobs(tmp_path)] == ["etl", "other"]
    etl = by_key(load_jobs(tmp_path, target="prod"))["etl"].settings
    assert [(p.name, p.default) for p in etl.parameters] == [("env", "prod"), ("extra", "x")]
    assert etl.job_clusters[0].new_cluster == {"spark_version": "15.4", "num_workers": 8}
    load = etl.task("load")
    assert load.max_retries == 5
    assert load.dependency_keys == ("extract",)
    assert load.notebook_task is not None


def test_same_job_in_two_files(tmp_path: Path) -> None:
    job = "resources:\n  jobs:\n    etl:\n      tasks: []\n"
    write(
        tmp_path,
        {
            "databricks.yml": "bundle: {name: d}\ninclude: [a.yml, b.yml]\n",
            "a.yml": job,
            "b.yml": job,
        },
    )
    (p,) = load_problems(tmp_path)
    assert p.message == f"job 'etl' is also defined in {tmp_path.absolute() / 'a.yml'}"
    assert p.file == str(tmp_path.absolute() / "b.yml")


def test_include_of_a_missing_file(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": "bundle: {name: d}\ninclude: [resources/jobs.yml, 'none/*.yml']\n"})
    assert only_message(tmp_path) == "include 'resources/jobs.yml' matches no file"


def test_include_in_an_included_file(tmp_path: Path) -> None:
    write(
        tmp_path, {"databricks.yml": "bundle: {name: d}\ninclude: [a.yml]\n", "a.yml": "include: [b.yml]\n"}
    )
    assert only_message(tmp_path) == "include is only allowed in the bundle's root file"


def test_bundle_without_jobs(tmp_path: Path) -> None:
    assert load_jobs(write(tmp_path, {"databricks.yaml": "bundle: {name: empty}\n"})) == []


# --------------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------------


def test_path_resolution_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "databricks.yml": "bundle: {name: p}\ninclude: [jobs/*.yml]\n",
            "jobs/paths.yml": """
            resources:
              jobs:
                local:
                  tasks:
                    - {task_key: rel, notebook_task: {notebook_path: ../nb/a}}
                    - {task_key: abs, notebook_task: {notebook_path: /Workspace/Shared/a}}
                    - {task_key: dbfs, spark_python_task: {python_file: "dbfs:/scripts/a.py"}}
                    - {task_key: s3, spark_python_task: {python_file: "s3://bucket/a.py"}}
                    - {task_key: vol, spark_python_task: {python_file: /Volumes/c/s/v/a.py}}
                    - {task_key: ref, notebook_task: {notebook_path: "{{job.parameters.nb}}"}}
                    - {task_key: sql, sql_task: {file: {path: q.sql}}}
                    - {task_key: dbt, dbt_task: {commands: [dbt run], project_directory: ../dbt}}
                git:
                  git_source: {git_url: .., git_provider: gitHub, git_branch: main}
                  tasks:
                    - {task_key: nb_git, notebook_task: {notebook_path: nb/a}}
                    - {task_key: nb_ws, notebook_task: {notebook_path: nb/a, source: WORKSPACE}}
                    - {task_key: py_default, spark_python_task: {python_file: a.py}}
                    - {task_key: py_git, spark_python_task: {python_file: a.py, source: GIT}}
                    - {task_key: sql_git, sql_task: {file: {path: q.sql}}}
                    - {task_key: dbt_git, dbt_task: {commands: [dbt run], project_directory: dbt}}
                remote:
                  git_source: {git_url: "https://github.com/x/y", git_provider: gitHub}
                  tasks: [{task_key: a, notebook_task: {notebook_path: nb/a}}]
                scp:
                  git_source: {git_url: "git@github.com:x/y.git", git_provider: gitHub}
                  tasks: [{task_key: a, notebook_task: {notebook_path: nb/a}}]
            """,
        },
    )
    root = tmp_path.absolute()
    jobs = by_key(load_jobs(tmp_path))
    local = jobs["local"].settings.to_api()["tasks"]
    assert local[0]["notebook_task"]["notebook_path"] == str(root / "nb" / "a")
    assert local[1]["notebook_task"]["notebook_path"] == "/Workspace/Shared/a"
    assert local[2]["spark_python_task"]["python_file"] == "dbfs:/scripts/a.py"
    assert local[3]["spark_python_task"]["python_file"] == "s3://bucket/a.py"
    assert local[4]["spark_python_task"]["python_file"] == "/Volumes/c/s/v/a.py"
    assert local[5]["notebook_task"]["notebook_path"] == "{{job.parameters.nb}}"
    assert local[6]["sql_task"]["file"]["path"] == str(root / "jobs" / "q.sql")
    assert local[7]["dbt_task"]["project_directory"] == str(root / "dbt")
    git = jobs["git"].settings
    assert git.to_api()["git_source"]["git_url"] == str(root)
    tasks = git.to_api()["tasks"]
    assert tasks[0]["notebook_task"]["notebook_path"] == "nb/a"  # no source + git_source => GIT
    assert tasks[1]["notebook_task"]["notebook_path"] == str(root / "jobs" / "nb" / "a")
    # spark_python_task: no source means WORKSPACE, even with git_source.
    assert tasks[2]["spark_python_task"]["python_file"] == str(root / "jobs" / "a.py")
    assert tasks[3]["spark_python_task"]["python_file"] == "a.py"
    assert tasks[4]["sql_task"]["file"]["path"] == "q.sql"
    assert tasks[5]["dbt_task"]["project_directory"] == "dbt"
    assert jobs["remote"].settings.to_api()["git_source"]["git_url"] == "https://github.com/x/y"
    assert jobs["scp"].settings.to_api()["git_source"]["git_url"] == "git@github.com:x/y.git"


# --------------------------------------------------------------------------------------------------------
# JSON and single-job YAML files
# --------------------------------------------------------------------------------------------------------


def test_jobs_get_response(tmp_path: Path) -> None:
    path = tmp_path / "nightly.json"
    shutil.copy(FIXTURES / "databricks_job.json", path)
    (job,) = load_jobs(path)
    assert (job.key, job.bundle_name, job.target, job.bundle_key) == ("nightly", None, None, None)
    assert job.source_file == path.absolute()
    expected = json.loads(path.read_text())["settings"]
    assert job.settings.to_api() == expected  # GIT notebook paths and dbfs:/ paths stay as they are


@pytest.mark.parametrize("wrapper", [None, "settings", "new_settings"])
def test_json_shapes(tmp_path: Path, wrapper: str | None) -> None:
    settings = {"name": "n", "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "s/a.py"}}]}
    body = {wrapper: settings, "job_id": 5} if wrapper else settings
    path = tmp_path / "sub" / "job.json"
    path.parent.mkdir()
    path.write_text(json.dumps(body))
    (job,) = load_jobs(path)
    task = job.settings.tasks[0].spark_python_task
    assert task is not None
    assert task.python_file == str(path.parent.absolute() / "s" / "a.py")


def test_json_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "x",\n  "tasks": [\n}\n')
    (p,) = load_problems(path)
    assert p.file == str(path.absolute())
    assert p.message == "line 4, column 1: invalid JSON: Expecting value"


def test_json_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    assert only_message(path) == "expected a JSON object at the top level, found list"


def test_single_job_yaml() -> None:
    (job,) = load_jobs(FIXTURES / "single_job.yml")
    assert job.key == "single_job"
    out = job.settings.to_api()
    # YAML 1.2 scalars, as the Databricks CLI reads them: dates and "yes" stay strings.
    assert out["parameters"] == [
        {"name": "day", "default": "2024-01-31"},
        {"name": "verbose", "default": "yes"},
    ]
    extract = out["tasks"][0]["spark_python_task"]
    assert extract["python_file"] == str(FIXTURES.absolute() / "scripts" / "extract.py")
    assert extract["parameters"] == ["--day", "{{job.parameters.day}}", "--limit", "100"]
    render = out["tasks"][1]["notebook_task"]
    assert render["notebook_path"] == str(FIXTURES.absolute() / "notebooks" / "render")
    assert render["base_parameters"] == {"fast": "true", "ratio": "0.5"}


def test_single_file_job_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"etl.yaml": "tasks: []\n"}) / "etl.yaml"
    assert load_jobs(path, job_key="etl")[0].key == "etl"
    assert only_message(path, job_key="other") == "no job 'other' in this file; its job is 'etl'"


def test_target_and_vars_only_for_bundles(tmp_path: Path) -> None:
    path = write(tmp_path, {"etl.yaml": "tasks: []\n"}) / "etl.yaml"
    assert only_message(path, target="dev") == "--target and --var apply to bundles (databricks.yml) only"
    assert (
        only_message(path, variables={"a": "b"})
        == "--target and --var apply to bundles (databricks.yml) only"
    )


def test_bundle_key_in_any_yaml_file_makes_it_a_bundle(tmp_path: Path) -> None:
    path = write(tmp_path, {"bundle.yml": SIMPLE}) / "bundle.yml"
    assert load_jobs(path)[0].bundle_name == "demo"


def test_resource_file_points_to_its_bundle() -> None:
    message = only_message(BUNDLE / "resources" / "medallion.job.yml")
    assert (
        message
        == f"this is a bundle resource file; load the bundle instead: {BUNDLE.absolute() / 'databricks.yml'}"
    )


def test_model_errors_name_file_job_task_and_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "databricks.yml": "bundle: {name: d}\ninclude: [jobs.yml]\n",
            "jobs.yml": """
            resources:
              jobs:
                etl:
                  tasks:
                    - task_key: a
                      notebook_task: {notebook_path: /a}
                      run_if: SOMETIMES
                bad:
                  max_concurrent_runs: lots
            """,
        },
    )
    probs = load_problems(tmp_path)
    assert [str(p) for p in probs] == [
        f"{tmp_path.absolute() / 'jobs.yml'}, job 'etl', task 'a', tasks[0].run_if: "
        "invalid value 'SOMETIMES'; allowed: ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED, ALL_DONE, "
        "AT_LEAST_ONE_FAILED, ALL_FAILED",
        f"{tmp_path.absolute() / 'jobs.yml'}, job 'bad', max_concurrent_runs: "
        "input should be a valid integer, unable to parse string as an integer (got 'lots')",
    ]


# --------------------------------------------------------------------------------------------------------
# YAML errors and file kinds
# --------------------------------------------------------------------------------------------------------


def test_yaml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"databricks.yml": "bundle:\n  name: x\nresources:\n  jobs:\n    a: [1, 2\n    b: 3\n"})
    (p,) = load_problems(tmp_path)
    assert p.file == str(tmp_path.absolute() / "databricks.yml")
    assert p.message == (
        "line 6, column 6: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence"
    )


def test_yaml_error_in_an_included_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "databricks.yml": "bundle: {name: x}\ninclude: [r.yml]\n",
            "r.yml": "resources:\n  jobs:\n    a:\n      name: x\n     tasks: []\n",
        },
    )
    (p,) = load_problems(tmp_path)
    assert p.file == str(tmp_path.absolute() / "r.yml")
    assert (
        p.message == "line 5, column 6: invalid YAML: did not find expected key while parsing a block mapping"
    )


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, {"job.yml": "name: a\ntasks: []\nname: b\n"}) / "job.yml"
    assert (
        only_message(path) == "line 3, column 1: invalid YAML: found duplicate key 'name' (first on line 1)"
    )


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    text = """
    tasks:
      - &base {task_key: a, max_retries: 2, notebook_task: {notebook_path: /a}}
      - <<: *base
        task_key: b
    """
    path = write(tmp_path, {"job.yml": text}) / "job.yml"
    (job,) = load_jobs(path)
    assert job.settings.task("b").max_retries == 2


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, {"job.yml": "- a\n- b\n"}) / "job.yml"
    assert only_message(path) == "expected a mapping at the top level, found list"


def test_unknown_file_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, {"job.toml": "x = 1\n"}) / "job.toml"
    assert only_message(path) == "unknown file type: expected databricks.yml, a .json job or a .yml/.yaml job"
    assert only_message(tmp_path / "missing.yml") == "no such file"
    (tmp_path / "empty").mkdir()
    assert only_message(tmp_path / "empty") == "no databricks.yml or databricks.yaml in this directory"


def test_yaml_numbers_follow_yaml_1_2(tmp_path: Path) -> None:
    text = """
    parameters:
      - {name: a, default: 1:30}
      - {name: b, default: 0x1F}
      - {name: c, default: 1e3}
      - {name: d, default: on}
      - {name: e, default: 012}
    """
    path = write(tmp_path, {"job.yml": text}) / "job.yml"
    (job,) = load_jobs(path)
    assert [p.default for p in job.settings.parameters] == ["1:30", "31", "1000.0", "on", "012"]


# --------------------------------------------------------------------------------------------------------
# A bundle as public Databricks repositories write them: anchors, unknown fields, ${bundle.git.*}
# --------------------------------------------------------------------------------------------------------

REALISTIC = """
bundle:
  name: sales_etl

# Reusable blocks, as many public bundles keep them: keys that only hold anchors.
x-cluster: &default_cluster
  spark_version: 15.4.x-scala2.12
  node_type_id: i3.xlarge
  num_workers: 2

definitions:
  notifications: &notify
    on_failure: [data-team@example.com]
  retries: &retries
    max_retries: 2
    min_retry_interval_millis: 60000

variables:
  catalog:
    description: catalog to write to
    default: dev_sales

resources:
  jobs:
    nightly_sales:
      name: nightly-sales-${bundle.target}
      email_notifications: *notify
      max_concurent_runs: 1
      tags:
        git_branch: ${bundle.git.branch}
        git_commit: ${bundle.git.commit}
        repo: ${bundle.git.origin_url}
        owner: ${workspace.current_user.userName}
      parameters:
        - {name: catalog, default: "${var.catalog}"}
        - {name: root, default: "${workspace.root_path}"}
        - {name: files, default: "${workspace.file_path}/src"}
        - {name: report_job, default: "${resources.jobs.weekly_report.id}"}
      job_clusters:
        - job_cluster_key: main
          new_cluster: *default_cluster
      tasks:
        - task_key: ingest
          job_cluster_key: main
          <<: *retries
          notebook_task:
            notebook_path: ./src/ingest
          depend_on: []
        - task_key: report
          depends_on: [{task_key: ingest}]
          job_cluster_key: main
          spark_python_task:
            python_file: ./src/report.py
    weekly_report:
      tasks:
        - task_key: summary
          sql_task:
            file: {path: ./sql/summary.sql}
            warehouse_id: abc

targets:
  dev:
    default: true
    mode: development
  prod:
    workspace:
      root_path: /Workspace/Shared/.bundle/${bundle.name}
"""


def realistic(root: Path) -> Path:
    return write(
        root,
        {
            "databricks.yml": REALISTIC,
            "src/ingest.py": "# Databricks notebook source\nprint('ingest')\n",
            "src/report.py": "print('report')\n",
            "sql/summary.sql": "SELECT 1;\n",
        },
    )


def git(repo: Path, *args: str) -> str:
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com"}
    env.update(GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@example.com")
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_anchor_only_top_level_keys_are_accepted_and_unknown_fields_warn(tmp_path: Path) -> None:
    jobs = by_key(load_jobs(realistic(tmp_path)))
    nightly = jobs["nightly_sales"]
    # The anchors were used, and the keys holding them dropped without a word, as the Databricks CLI does.
    assert nightly.settings.job_clusters[0].new_cluster == {
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 2,
    }
    assert nightly.settings.task("ingest").max_retries == 2
    assert nightly.settings.email_notifications is not None
    # Unknown job and task fields: a warning each, naming the field, and the job loads without them.
    assert [(w.task, w.field, w.message) for w in nightly.warnings] == [
        (
            "ingest",
            "tasks[0].depend_on",
            "unknown field: depend_on (did you mean 'depends_on'?); ignored, as the Databricks CLI does",
        ),
        (
            None,
            "max_concurent_runs",
            "unknown field: max_concurent_runs (did you mean 'max_concurrent_runs'?); "
            "ignored, as the Databricks CLI does",
        ),
    ]
    assert jobs["weekly_report"].warnings == ()


def test_an_unknown_top_level_key_that_is_not_an_anchor_warns(tmp_path: Path) -> None:
    realistic(tmp_path)
    text = (tmp_path / "databricks.yml").read_text()
    (tmp_path / "databricks.yml").write_text(text + "permisions:\n  - {level: CAN_VIEW, group_name: users}\n")
    nightly = by_key(load_jobs(tmp_path))["nightly_sales"]
    assert str(nightly.warnings[0]) == (
        f"{tmp_path.absolute() / 'databricks.yml'}: unknown field: permisions (did you mean 'permissions'?); "
        "ignored, as the Databricks CLI does"
    )


def test_a_json_job_file_keeps_refusing_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(
        json.dumps({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}], "x": 1})
    )
    assert only_message(path) == "unknown field 'x'"


def test_bundle_git_values_come_from_the_repository(tmp_path: Path) -> None:
    realistic(tmp_path)
    git(tmp_path, "init", "-q", "-b", "release/2.1")
    git(tmp_path, "remote", "add", "origin", "https://bot:s3cret@github.com/acme/sales-etl.git")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "first")
    commit = git(tmp_path, "rev-parse", "HEAD")
    tags = by_key(load_jobs(tmp_path))["nightly_sales"].settings.tags
    assert tags is not None
    assert (tags["git_branch"], tags["git_commit"]) == ("release/2.1", commit)
    assert tags["repo"] == "https://github.com/acme/sales-etl.git"  # credentials removed, as the CLI does
    assert tags["owner"] == "alice.smith@example.com"


def test_bundle_git_values_are_empty_outside_a_repository_and_configured_ones_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above counts
    bundle = tmp_path / "not-a-repo"
    bundle.mkdir()
    realistic(bundle)
    tags = by_key(load_jobs(bundle))["nightly_sales"].settings.tags
    assert tags is not None
    assert (tags["git_branch"], tags["git_commit"], tags["repo"]) == ("", "", "")
    text = (bundle / "databricks.yml").read_text()
    text = text.replace("  name: sales_etl\n", "  name: sales_etl\n  git:\n    branch: main\n", 1)
    (bundle / "databricks.yml").write_text(text)
    tags = by_key(load_jobs(bundle))["nightly_sales"].settings.tags
    assert tags is not None
    assert tags["git_branch"] == "main"


def test_workspace_paths_and_job_ids(tmp_path: Path) -> None:
    realistic(tmp_path)
    params = {p.name: p.default for p in by_key(load_jobs(tmp_path))["nightly_sales"].settings.parameters}
    assert params == {
        "catalog": "dev_sales",
        # The Databricks CLI's default root, ~ expanded to the user's workspace folder (a name, not a path
        # Sluice reads); the files are the bundle's own directory, where Sluice reads notebooks from.
        "root": "/Workspace/Users/alice.smith@example.com/.bundle/sales_etl/dev",
        "files": f"{tmp_path.absolute()}/src",
        # Replaced by the job id when the bundle is deployed (sluice.engine.local).
        "report_job": "${resources.jobs.weekly_report.id}",
    }
    prod = by_key(load_jobs(tmp_path, target="prod"))["nightly_sales"].settings.parameters
    assert prod[1].default == "/Workspace/Shared/.bundle/sales_etl"
