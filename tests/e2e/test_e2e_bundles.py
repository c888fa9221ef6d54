"""Bundles through the CLI: targets, variables, includes, and deploys that never duplicate a job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Workspace

BUNDLE = """
bundle:
  name: shop
include:
  - resources/*.yml
variables:
  greeting:
    description: what the job says
    default: hello
targets:
  dev:
    default: true
  prod:
    variables:
      greeting: bonjour
"""

GREET_JOB = """
resources:
  jobs:
    greet:
      name: greet-${bundle.target}
      tasks:
        - task_key: say
          spark_python_task:
            python_file: ../src/say.py
            parameters: ["${var.greeting}", "{{job.run_id}}"]
"""

SAY = """
import os, sys
with open(os.path.join(os.path.dirname(__file__), "said.txt"), "a") as f:
    f.write(sys.argv[1] + "\\n")
"""


def make_bundle(ws: Workspace) -> Path:
    ws.write("shop/databricks.yml", BUNDLE)
    ws.write("shop/resources/greet.job.yml", GREET_JOB)
    ws.write("shop/src/say.py", SAY)
    return ws.dir / "shop"


def said(bundle: Path) -> list[str]:
    return (bundle / "src" / "said.txt").read_text().splitlines()


def test_default_target_and_variable_default(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    done = ws.run(bundle)
    assert done.returncode == 0, done.run.state_message
    assert done.run.data["run_name"] == "greet-dev"
    assert said(bundle) == ["hello"]
    params = done.run.task("say")["resolved_values"]["spark_python_task"]["parameters"]
    assert params == ["hello", str(done.run.run_id)], "{{...}} passes through bundle interpolation"


def test_target_selects_its_variables(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    done = ws.run(bundle / "databricks.yml", "--target", "prod")
    assert done.returncode == 0
    assert done.run.data["run_name"] == "greet-prod"
    assert said(bundle) == ["bonjour"]


def test_var_overrides_default_and_target(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    assert ws.run(bundle, "--var", "greeting=hola").returncode == 0
    assert ws.run(bundle, "--target", "prod", "--var", "greeting=ciao").returncode == 0
    assert said(bundle) == ["hola", "ciao"]


def test_unknown_target_is_invalid_input(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    done = ws.cli("run", str(bundle), "--target", "staging")
    assert done.returncode == 2
    assert "staging" in done.stderr
    assert ws.list_runs() == []


def test_deploy_twice_is_one_job_and_run_reuses_it(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    first = ws.json("deploy", str(bundle), "--output", "json")
    second = ws.json("deploy", str(bundle), "--output", "json")
    assert [d["key"] for d in first] == ["greet"]
    assert (first[0]["created"], second[0]["created"], second[0]["changed"]) == (True, False, False)
    job_id = first[0]["job_id"]
    assert second[0]["job_id"] == job_id
    jobs = ws.list_jobs()
    assert [j["job_id"] for j in jobs] == [job_id]
    assert jobs[0]["settings"]["name"] == "greet-dev"

    done = ws.run(bundle)
    assert done.run.job_id == job_id
    assert len(ws.list_jobs()) == 1

    ws.write("shop/databricks.yml", BUNDLE.replace("default: hello", "default: hi"))
    third = ws.json("deploy", str(bundle), "--output", "json")
    assert (third[0]["job_id"], third[0]["created"], third[0]["changed"]) == (job_id, False, True)
    assert len(ws.list_jobs()) == 1


def test_several_jobs_need_job_key(ws: Workspace) -> None:
    bundle = make_bundle(ws)
    ws.write("shop/resources/other.job.yml", GREET_JOB.replace("greet:", "other:"))
    refused = ws.cli("run", str(bundle))
    assert refused.returncode == 2
    assert "--job" in refused.stderr
    assert "greet" in refused.stderr
    assert "other" in refused.stderr
    done = ws.run(bundle, "--job", "other")
    assert done.returncode == 0
    assert [t["task_key"] for t in done.run.tasks] == ["say"]


@pytest.mark.parametrize("wrap", ["settings", "create_body", "get_response"])
def test_jobs_api_json_file_runs(ws: Workspace, wrap: str) -> None:
    settings: dict[str, Any] = {
        "name": "from-json",
        "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "ok.py"}}],
    }
    documents: dict[str, dict[str, Any]] = {
        "settings": settings,
        "create_body": {**settings, "access_control_list": []},
        "get_response": {"job_id": 77, "created_time": 1, "settings": settings},
    }
    path = ws.write("job.json", json.dumps(documents[wrap]))
    done = ws.run(path)
    assert done.returncode == 0, done.run.state_message
    assert done.run.data["run_name"] == "from-json"
    assert done.run.results() == {"a": "SUCCESS"}


# A bundle as public Databricks repositories write them: an anchor-only top-level key, a typo'd field, the
# repository's branch in a tag, and a job that names another job's id in a parameter.
REALISTIC = """
bundle:
  name: sales

x-defaults: &retries
  max_retries: 1
  min_retry_interval_millis: 0

resources:
  jobs:
    report:
      tasks:
        - task_key: write
          spark_python_task:
            python_file: ./src/write.py
            parameters: ["{{job.id}}"]
    nightly:
      name: nightly-${bundle.target}
      tags:
        git_branch: ${bundle.git.branch}
      parameters:
        - {name: report_job, default: "report job ${resources.jobs.report.id}"}
        - {name: own_id, default: "${resources.jobs.nightly.id}"}
      tasks:
        - task_key: ingest
          <<: *retries
          timeout_second: 60
          spark_python_task:
            python_file: ./src/write.py
            parameters: ["{{job.parameters.report_job}}"]
"""

WRITE = """
import os, sys
with open(os.path.join(os.path.dirname(__file__), "written.txt"), "a") as f:
    f.write(sys.argv[1] + "\\n")
"""


def realistic(ws: Workspace) -> Path:
    import subprocess

    ws.write("sales/databricks.yml", REALISTIC)
    ws.write("sales/src/write.py", WRITE)
    bundle = ws.dir / "sales"
    subprocess.run(["git", "init", "-q", "-b", "feature/x"], cwd=bundle, check=True)
    return bundle


def test_realistic_bundle_warns_and_runs_with_its_git_branch_and_job_ids(ws: Workspace) -> None:
    bundle = realistic(ws)
    checked = ws.cli("validate", str(bundle))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "report: OK (1 task)\nnightly: OK (1 task)\n"
    warning = "unknown field: timeout_second (did you mean 'timeout_seconds'?); ignored"
    assert checked.stderr.count("Warning: ") == 1, checked.stderr
    assert "job 'nightly', task 'ingest', tasks[0].timeout_second: " + warning in checked.stderr
    assert "x-defaults" not in checked.stderr  # an anchor-only key is not worth a warning, as in the CLI

    done = ws.run(bundle, "--job", "nightly")
    assert done.returncode == 0, done.run.state_message
    assert warning in done.stderr
    jobs = {j["settings"]["name"]: j for j in ws.list_jobs()}
    report_id = jobs["report"]["job_id"]
    nightly = jobs["nightly-default"]["settings"]  # no targets: the target is "default"
    assert nightly["tags"] == {"git_branch": "feature/x"}
    assert nightly["parameters"] == [
        {"name": "report_job", "default": f"report job {report_id}"},
        {"name": "own_id", "default": str(jobs["nightly-default"]["job_id"])},  # a job may name its own id
    ]
    assert nightly["tasks"][0]["max_retries"] == 1
    assert "timeout_second" not in nightly["tasks"][0]
    assert (bundle / "src" / "written.txt").read_text() == f"report job {report_id}\n"


def test_missing_python_file_is_refused_by_validate_naming_the_task(ws: Workspace) -> None:
    bundle = realistic(ws)
    (bundle / "src" / "write.py").rename(bundle / "src" / "writer.py")
    for command in ("validate", "deploy"):
        refused = ws.cli(command, str(bundle))
        assert refused.returncode == 2
        for text in ("job 'report', task 'write'", "job 'nightly', task 'ingest'", "src/write.py' not found"):
            assert text in refused.stderr, refused.stderr
    assert ws.list_jobs() == []
