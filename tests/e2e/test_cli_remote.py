"""Remote mode: the ``sluice jobs``/``runs`` commands against a live ``sluice serve``, as the user runs them.

The CLI runs with a SLUICE_HOME of its own (empty), so anything it did locally instead of on the server
would find no job and no run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import CLI, COMMAND_TIMEOUT, GATE, Workspace, pid_alive, read_pid, wait_for
from e2e.test_api_sdk import Server, free_port, start_server


@pytest.fixture
def server(ws: Workspace) -> Server:
    token = ws.json("tokens", "create", "--comment", "cli", "--output", "json")["token_value"]
    return start_server(ws, token)


class Remote:
    """The CLI in remote mode: its own empty SLUICE_HOME, the server in SLUICE_HOST/SLUICE_TOKEN."""

    def __init__(self, server: Server, **env: str) -> None:
        ws = server.ws
        self.ws = ws
        self.env = {
            **ws.env,
            "SLUICE_HOME": str(ws.root / "client-home"),
            "SLUICE_HOST": server.url,
            "SLUICE_TOKEN": server.token,
            **env,
        }
        self.env = {k: v for k, v in self.env.items() if v != ""}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            env=self.env,
            cwd=self.ws.dir,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def json(self, *args: str) -> Any:
        done = self.cli(*args)
        assert done.returncode == 0, f"sluice {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout)


def _job_file(ws: Workspace, name: str, tasks: list[dict[str, Any]], **settings: Any) -> Path:
    path = ws.dir / f"{name}.json"
    path.write_text(json.dumps({"name": name, "tasks": tasks, **settings}))
    return path


def _py(key: str, script: Path, *params: str, **fields: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "spark_python_task": {"python_file": str(script), "parameters": list(params)},
        **fields,
    }


def test_remote_create_run_and_inspect(server: Server) -> None:
    ws = server.ws
    hello = ws.write("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n")
    job_file = _job_file(
        ws,
        "remote-hello",
        [_py("a", hello, "{{job.parameters.who}}"), _py("b", hello, "b", depends_on=[{"task_key": "a"}])],
        parameters=[{"name": "who", "default": "world"}],
    )
    cli = Remote(server)
    job_id = cli.json("jobs", "create", "--json", str(job_file))["job_id"]
    assert cli.json("jobs", "get", str(job_id))["settings"]["name"] == "remote-hello"
    listed = cli.json("jobs", "list", "--output", "json")["jobs"]
    assert [(j["job_id"], len(j["settings"]["tasks"])) for j in listed] == [(job_id, 2)]
    table = cli.cli("jobs", "list")
    assert table.returncode == 0
    assert "remote-hello" in table.stdout
    assert ws.json("jobs", "get", str(job_id))["settings"]["name"] == "remote-hello", "created on the server"
    assert cli.cli("jobs", "graph", str(job_id)).stdout == "a\n└── b\n"
    assert ws.cli("jobs", "graph", str(job_id), "--format", "mermaid").stdout.endswith("t0 --> t1\n")  # local
    assert not (ws.root / "client-home" / "sluice.db").exists(), "the CLI never opened a local store"

    done = cli.cli("jobs", "run-now", str(job_id), "--wait", "-p", "who=remote", "--output", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["state"]["result_state"] == "SUCCESS"
    tasks = {t["task_key"]: t for t in run["tasks"]}
    assert cli.json("runs", "get-output", str(tasks["a"]["run_id"]))["logs"] == "hello remote\n"
    assert cli.json("runs", "get", str(run["run_id"]))["run_id"] == run["run_id"]
    runs = cli.json("runs", "list", "--job-id", str(job_id), "--output", "json")["runs"]
    assert [r["run_id"] for r in runs] == [run["run_id"]]
    assert "tasks" not in runs[0]
    shown = cli.cli("runs", "get", str(run["run_id"]), "--output", "table")
    assert shown.returncode == 0
    assert f"run {run['run_id']}: SUCCESS" in shown.stdout
    refused = cli.cli("runs", "get-output", str(run["run_id"]))
    assert refused.returncode == 2
    assert "multiple tasks is not supported" in refused.stderr

    started = cli.json("jobs", "run-now", str(job_id))
    assert set(started) == {"run_id", "number_in_job"}
    wait_for(
        lambda: ws.get_run(int(started["run_id"])).result_state == "SUCCESS" or None,
        timeout=60,
        what="the server to drive the run started without --wait",
    )


def test_remote_cancel_repair_pause_and_delete(server: Server) -> None:
    ws = server.ws
    gate = ws.write("gate.py", GATE)
    pid_file, never = ws.dir / "pid", ws.dir / "never"
    cli = Remote(server)
    slow = cli.json(
        "jobs", "create", "--json", str(_job_file(ws, "slow", [_py("w", gate, str(pid_file), str(never))]))
    )
    run_id = cli.json("jobs", "run-now", str(slow["job_id"]))["run_id"]
    pid = wait_for(lambda: read_pid(pid_file), timeout=30, what="the task to start")
    assert [r["run_id"] for r in cli.json("runs", "list", "--active-only", "--output", "json")["runs"]] == [
        run_id
    ]
    assert cli.json("runs", "cancel", str(run_id), "--wait") == {}
    assert cli.json("runs", "get", str(run_id))["state"]["result_state"] == "CANCELED"
    assert not pid_alive(pid), "the task process was killed"

    flag = ws.dir / "fixed"
    flaky = ws.write("flaky.py", f"import os\nassert os.path.exists({str(flag)!r}), 'not fixed yet'\n")
    job = cli.json("jobs", "create", "--json", str(_job_file(ws, "flaky", [_py("f", flaky)])))
    failed = cli.cli("jobs", "run-now", str(job["job_id"]), "--wait", "--output", "json")
    assert failed.returncode == 1
    failed_run = json.loads(failed.stdout)
    assert failed_run["state"]["result_state"] == "FAILED"
    output = cli.json("runs", "get-output", str(failed_run["tasks"][0]["run_id"]))
    assert "not fixed yet" in output["error"]
    flag.write_text("yes")
    repaired = cli.cli(
        "runs", "repair", str(failed_run["run_id"]), "--all-failed", "--wait", "--output", "json"
    )
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["state"]["result_state"] == "SUCCESS"

    scheduled = _job_file(
        ws,
        "nightly",
        [_py("n", flaky)],
        schedule={"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
    )
    nightly = cli.json("jobs", "create", "--json", str(scheduled))["job_id"]
    assert cli.json("jobs", "pause", str(nightly))["settings"] == ["schedule"]
    assert ws.json("jobs", "get", str(nightly))["settings"]["schedule"]["pause_status"] == "PAUSED"
    reset = ws.write(
        "reset.json", json.dumps({"new_settings": {"name": "renamed", "tasks": [_py("z", flaky)]}})
    )
    assert cli.json("jobs", "reset", str(nightly), "--json", str(reset)) == {}
    assert ws.json("jobs", "get", str(nightly))["settings"]["name"] == "renamed"
    assert cli.json("jobs", "delete", str(nightly)) == {}
    gone = cli.cli("jobs", "get", str(nightly))
    assert gone.returncode == 2
    assert f"Job {nightly} does not exist." in gone.stderr


def test_remote_errors_name_the_problem(server: Server) -> None:
    ws = server.ws
    cli = Remote(server)
    missing = cli.cli("jobs", "run-now", "424242")
    assert missing.returncode == 2
    assert "Job 424242 does not exist." in missing.stderr
    invalid = cli.cli(
        "jobs",
        "create",
        "--json",
        str(_job_file(ws, "bad", [_py("a", ws.dir / "ok.py", depends_on=[{"task_key": "x"}])])),
    )
    assert invalid.returncode == 2
    assert "depends_on 'x' is not a task key" in invalid.stderr

    bad_token = Remote(server, SLUICE_TOKEN="dapi" + "1" * 64).cli("jobs", "list")
    assert bad_token.returncode == 3
    assert f"the server at {server.url} refused the token from SLUICE_HOST" in bad_token.stderr
    assert "sluice tokens create" in bad_token.stderr
    no_token = Remote(server, SLUICE_TOKEN="").cli("runs", "list")
    assert no_token.returncode == 3
    assert "set SLUICE_TOKEN" in no_token.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    down = Remote(server, SLUICE_HOST=nowhere).cli("runs", "get", "1")
    assert down.returncode == 3
    assert f"cannot reach the Sluice server at {nowhere}" in down.stderr
    schemeless = Remote(server, SLUICE_HOST="127.0.0.1:8080").cli("jobs", "list")
    assert schemeless.returncode == 2
    assert "write it as http://127.0.0.1:8080" in schemeless.stderr
    local_only = cli.cli("runs", "logs", "1")
    assert local_only.returncode == 2
    assert "`sluice runs logs` works on the local store only, and SLUICE_HOST is set" in local_only.stderr


def test_remote_profile_from_databrickscfg(server: Server, tmp_path: Path) -> None:
    ws = server.ws
    home = tmp_path / "user"
    home.mkdir()
    (home / ".databrickscfg").write_text(
        "[DEFAULT]\nhost = https://example.invalid\ntoken = dapi-real-databricks\n\n"
        f"[sluice-test]\nhost = {server.url}/\ntoken = {server.token}\n"
    )
    job_file = _job_file(ws, "via-profile", [_py("a", ws.dir / "ok.py")])
    by_flag = Remote(server, HOME=str(home), SLUICE_HOST="", SLUICE_TOKEN="")
    job_id = by_flag.json("jobs", "create", "--json", str(job_file), "--profile", "sluice-test")["job_id"]
    assert ws.json("jobs", "get", str(job_id))["settings"]["name"] == "via-profile"
    by_env = Remote(server, HOME=str(home), SLUICE_HOST="", SLUICE_TOKEN="", SLUICE_PROFILE="sluice-test")
    done = by_env.cli("jobs", "run-now", str(job_id), "--wait", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"]["result_state"] == "SUCCESS"
    assert [j["job_id"] for j in by_env.json("jobs", "list", "--output", "json")["jobs"]] == [job_id]

    unknown = by_flag.cli("jobs", "list", "--profile", "nope")
    assert unknown.returncode == 2
    assert "has no profile [nope] (its profiles: DEFAULT, sluice-test)" in unknown.stderr
    no_file = Remote(server, HOME=str(tmp_path), SLUICE_HOST="", SLUICE_TOKEN="").cli(
        "jobs", "list", "--profile", "x"
    )
    assert no_file.returncode == 2
    assert f"{tmp_path / '.databrickscfg'} does not exist" in no_file.stderr
    databricks_env = Remote(
        server,
        HOME=str(home),
        SLUICE_HOST="",
        SLUICE_TOKEN="",
        DATABRICKS_HOST=server.url,
        DATABRICKS_TOKEN=server.token,
    )
    local = databricks_env.json("jobs", "list", "--output", "json")
    assert local == {}, "without a profile or SLUICE_HOST the CLI works on its (empty) local store"


def test_remote_export_of_a_notebook_run(server: Server) -> None:
    ws = server.ws
    shutil.copytree(Path(__file__).resolve().parents[1] / "notebooks", ws.dir / "notebooks")
    task = {"task_key": "f", "notebook_task": {"notebook_path": str(ws.dir / "notebooks" / "fails")}}
    py_task = _py("p", ws.dir / "ok.py")
    cli = Remote(server)
    job_id = cli.json("jobs", "create", "--json", str(_job_file(ws, "nb", [task, py_task])))["job_id"]
    failed = cli.cli("jobs", "run-now", str(job_id), "--wait", "--output", "json")
    assert failed.returncode == 1, failed.stderr
    tasks = {t["task_key"]: t for t in json.loads(failed.stdout)["tasks"]}
    target = ws.root / "export.html"
    exported = cli.cli("runs", "export", str(tasks["f"]["run_id"]), "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "before the failure" in html
    refused = cli.cli("runs", "export", str(tasks["p"]["run_id"]))
    assert refused.returncode == 2
    assert "has no executed notebook to export on the server" in refused.stderr
    job_run = json.loads(failed.stdout)["run_id"]
    by_task = cli.cli("runs", "export", str(job_run), "--task", "f")  # a job run id with --task
    assert by_task.returncode == 0, by_task.stderr
    assert by_task.stdout == html
    unknown = cli.cli("runs", "export", str(job_run), "--task", "nope")
    assert unknown.returncode == 2
    assert f"job run {job_run} has no task 'nope'; its tasks: f, p" in unknown.stderr


def test_remote_wait_cancels_the_run_on_ctrl_c(server: Server) -> None:
    ws = server.ws
    gate = ws.write("gate.py", GATE)
    pid_file, never = ws.dir / "pid", ws.dir / "never"
    cli = Remote(server)
    job_id = cli.json(
        "jobs", "create", "--json", str(_job_file(ws, "g", [_py("w", gate, str(pid_file), str(never))]))
    )["job_id"]
    waiting = subprocess.Popen(
        [*CLI, "jobs", "run-now", str(job_id), "--wait", "--output", "json"],
        env=cli.env,
        cwd=ws.dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        pid = wait_for(lambda: read_pid(pid_file), timeout=30, what="the task to start")
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 1, err
    assert "Canceling run" in err
    assert json.loads(out)["state"]["result_state"] == "CANCELED"
    assert not pid_alive(pid)
