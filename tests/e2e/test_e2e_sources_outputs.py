"""Where code comes from (git_source) and what a run leaves behind (logs, get-output)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from e2e.helpers import Workspace, py_task, task_message, task_result, wait_for


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


#: Writes which version of itself ran into the file argv[1].
VERSIONED = """
import sys
with open(sys.argv[1], "w") as f:
    f.write("{version}")
"""


def make_repo(root: Path) -> str:
    """A repository with ``etl/step.py`` committed as "committed" and edited (uncommitted) to "work tree"."""
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "etl").mkdir()
    (root / "etl" / "step.py").write_text(VERSIONED.format(version="committed"))
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "step")
    (root / "etl" / "step.py").write_text(VERSIONED.format(version="work tree"))
    return git(root, "rev-parse", "HEAD")


def test_git_source_runs_the_committed_version(ws: Workspace) -> None:
    repo = ws.root / "repo"
    head = make_repo(repo)
    out = ws.dir / "ran.txt"
    # A decoy next to the job file: a GIT task must not resolve its path against the job's directory.
    ws.write("etl/step.py", VERSIONED.format(version="job directory"))
    task = py_task("step", "etl/step.py", params=[str(out)])
    task["spark_python_task"]["source"] = "GIT"
    git_source = {"git_url": str(repo), "git_provider": "gitHub", "git_branch": "main"}
    done = ws.run(ws.job([task], git_source=git_source))
    assert task_result(done.run.task("step")) == "SUCCESS", task_message(done.run.task("step"))
    assert out.read_text() == "committed"
    assert done.run.data["git_source"]["git_snapshot"] == {"used_commit": head}
    assert done.returncode == 0


def test_git_job_task_without_source_runs_the_workspace_file(ws: Workspace) -> None:
    repo = ws.root / "repo"
    make_repo(repo)
    out = ws.dir / "ran.txt"
    ws.write("etl/step.py", VERSIONED.format(version="job directory"))
    git_source = {"git_url": str(repo), "git_provider": "gitHub", "git_branch": "main"}
    done = ws.run(ws.job([py_task("step", "etl/step.py", params=[str(out)])], git_source=git_source))
    assert task_result(done.run.task("step")) == "SUCCESS", task_message(done.run.task("step"))
    assert out.read_text() == "job directory"


def test_git_source_with_a_missing_branch_fails_the_run_clearly(ws: Workspace) -> None:
    repo = ws.root / "repo"
    make_repo(repo)
    task = py_task("step", "etl/step.py", params=[str(ws.dir / "ran.txt")])
    task["spark_python_task"]["source"] = "GIT"
    git_source = {"git_url": str(repo), "git_provider": "gitHub", "git_branch": "no-such-branch"}
    done = ws.run(ws.job([task], git_source=git_source))
    assert done.returncode == 1
    assert done.run.result_state == "FAILED"
    assert "no-such-branch" in done.run.state_message
    assert not (ws.dir / "ran.txt").exists()


def test_a_git_url_that_is_an_option_is_refused_by_validate_and_run(ws: Workspace) -> None:
    marker = ws.root / "pwned"
    head = make_repo(ws.root / "repo")
    task = py_task("step", "etl/step.py", params=[str(ws.dir / "ran.txt")])
    task["spark_python_task"]["source"] = "GIT"
    evil = f"--upload-pack=touch {marker};#://x"
    path = ws.job([task], git_source={"git_url": evil, "git_provider": "gitHub", "git_commit": head})
    for command in ("validate", "run"):
        done = ws.cli(command, str(path))
        assert done.returncode == 2, done.stderr
        assert f"git_source.git_url: '{evil}' cannot be used: it begins with '-'" in done.stderr
    assert not marker.exists()
    assert ws.list_runs() == []


LOUD = """
import sys
print("line on stdout")
print("line on stderr", file=sys.stderr)
raise RuntimeError("boom in task")
"""


def test_logs_and_get_output_of_a_failed_task(ws: Workspace) -> None:
    ws.write("loud.py", LOUD)
    done = ws.run(ws.job([py_task("loud", "loud.py"), py_task("quiet", "ok.py")]))
    assert done.returncode == 1
    run_id = done.run.run_id
    loud = done.run.task("loud")

    logs = ws.cli("runs", "logs", str(run_id), "--task", "loud")
    assert logs.returncode == 0, logs.stderr
    assert "line on stdout" in logs.stdout
    assert "line on stderr" in logs.stdout
    assert "=== loud attempt 0" in logs.stdout
    assert "quiet" not in logs.stdout, "--task shows only that task"

    output = ws.json("runs", "get-output", str(loud["run_id"]))
    assert "RuntimeError: boom in task" in output["error"]
    assert "Traceback" in output["error_trace"]
    assert "loud.py" in output["error_trace"]
    assert "line on stdout" in output["logs"]
    assert output["metadata"]["task_key"] == "loud"
    assert output["metadata"]["state"]["result_state"] == "FAILED"

    ok_output = ws.json("runs", "get-output", str(done.run.task("quiet")["run_id"]))
    assert "error" not in ok_output
    assert ok_output["logs"] == "ok\n"


def test_get_output_of_a_multi_task_job_run_is_refused(ws: Workspace) -> None:
    done = ws.run(ws.job([py_task("a", "ok.py"), py_task("b", "ok.py")]))
    refused = ws.cli("runs", "get-output", str(done.run.run_id))
    assert refused.returncode != 0
    assert (
        "Retrieving the output of runs with multiple tasks is not supported. "
        "Please retrieve the output of each individual task run instead."
    ) in refused.stderr


def test_unknown_ids_say_they_do_not_exist(ws: Workspace) -> None:
    missing_run = ws.cli("runs", "get", "987")
    assert missing_run.returncode == 2
    assert "Run 987 does not exist." in missing_run.stderr
    missing_job = ws.cli("jobs", "get", "654")
    assert missing_job.returncode == 2
    assert "Job 654 does not exist." in missing_job.stderr


def test_jobs_commands_create_run_now_reset_delete(ws: Workspace) -> None:
    ws.write(
        "echo.py",
        """
        import sys
        with open(sys.argv[1], "a") as f:
            f.write(" ".join(sys.argv[2:]) + "\\n")
        """,
    )
    out = ws.dir / "echo.txt"
    settings = {
        "name": "api-job",
        "parameters": [{"name": "who", "default": "world"}],
        "tasks": [py_task("echo", "echo.py", params=[str(out), "hello", "{{job.parameters.who}}"])],
    }
    body = ws.write("create.json", json.dumps(settings))
    job_id = ws.json("jobs", "create", "--json", str(body))["job_id"]
    assert ws.json("jobs", "get", str(job_id))["settings"]["name"] == "api-job"

    waited = ws.cli("jobs", "run-now", str(job_id), "--param", "who=sluice", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["state"]["result_state"] == "SUCCESS"
    assert out.read_text() == "hello sluice\n"

    started = ws.json("jobs", "run-now", str(job_id))  # driven by a background process
    run_id = int(started["run_id"])

    def finished() -> str | None:
        return ws.get_run(run_id).result_state

    assert wait_for(finished, timeout=30, what=f"run {run_id} to finish") == "SUCCESS"
    assert out.read_text() == "hello sluice\nhello world\n"

    settings["name"] = "renamed"
    ws.write("reset.json", json.dumps({"job_id": job_id, "new_settings": settings}))
    assert ws.json("jobs", "reset", str(job_id), "--json", str(ws.dir / "reset.json")) == {}
    assert ws.json("jobs", "get", str(job_id))["settings"]["name"] == "renamed"

    assert ws.json("jobs", "delete", str(job_id)) == {}
    assert ws.list_jobs() == []
    assert ws.get_run(run_id).result_state == "SUCCESS", "past runs stay readable"
    assert len(ws.list_runs("--job-id", str(job_id))) == 2
