"""Conformance: the real databricks-sdk, unchanged, against a live ``sluice serve`` running real tasks."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service import jobs

from e2e.helpers import GATE, Background, Workspace, pid_alive, read_pid, wait_for
from sluice.identity import local_user

TIMEOUT = timedelta(seconds=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    ws: Workspace
    port: int
    bg: Background
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None) -> WorkspaceClient:
        return WorkspaceClient(host=self.url, token=token or self.token)


def start_server(ws: Workspace, token: str, port: int | None = None) -> Server:
    port = port or free_port()
    bg = ws.start("serve", "--port", str(port), "--grace", "5")

    def healthy() -> bool | None:
        if bg.proc.poll() is not None:
            raise AssertionError(f"sluice serve exited {bg.proc.returncode}: {bg.stderr.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200 or None
        except httpx.HTTPError:
            return None

    wait_for(healthy, timeout=30, what="sluice serve to answer /health")
    return Server(ws, port, bg, token)


@pytest.fixture
def server(ws: Workspace) -> Server:
    token = ws.json("tokens", "create", "--comment", "e2e", "--output", "json")["token_value"]
    return start_server(ws, token)


def py(key: str, script: Path, *params: str, deps: tuple[str, ...] = (), **fields: object) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=str(script), parameters=list(params)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps] or None,
        **fields,  # type: ignore[arg-type]
    )


def test_sdk_creates_runs_and_reads_a_job(server: Server) -> None:
    ws = server.ws
    script = ws.write("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n")
    w = server.client()
    created = w.jobs.create(
        name="sdk-job",
        tasks=[py("a", script, "{{job.parameters.who}}"), py("b", script, "b", deps=("a",))],
        parameters=[jobs.JobParameterDefinition(name="who", default="world")],
    )
    assert created.job_id is not None
    run = w.jobs.run_now(job_id=created.job_id, job_parameters={"who": "sdk"}).result(timeout=TIMEOUT)
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status is not None
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    by_key = {t.task_key: t for t in run.tasks or []}
    assert set(by_key) == {"a", "b"}
    output = w.jobs.get_run_output(by_key["a"].run_id)  # type: ignore[arg-type]
    assert output.logs == "hello sdk\n"
    assert output.metadata is not None
    assert output.metadata.job_run_id == run.run_id
    listed = list(w.jobs.list_runs(job_id=created.job_id))
    assert [r.run_id for r in listed] == [run.run_id]
    assert [j.job_id for j in w.jobs.list(name="SDK-JOB")] == [created.job_id]
    with pytest.raises(BadRequest, match="multiple tasks is not supported"):
        w.jobs.get_run_output(run.run_id)  # type: ignore[arg-type]


def test_sdk_current_user_workspace_id_and_creator(server: Server) -> None:
    ws = server.ws
    created = ws.json(
        "tokens", "create", "--comment", "analyst", "--user", "analyst@example.com", "--output", "json"
    )
    w = server.client(created["token_value"])
    me = w.current_user.me()
    assert me.user_name == "analyst@example.com"
    assert [e.value for e in me.emails or []] == ["analyst@example.com"]
    workspace_id = w.get_workspace_id()
    header = httpx.get(
        f"{server.url}/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {created['token_value']}"},
    ).headers["X-Databricks-Org-Id"]
    assert workspace_id == int(header)
    assert len(str(workspace_id)) == 16
    job = w.jobs.create(name="owned", tasks=[py("a", ws.write("a.py", "pass\n"))])
    assert w.jobs.get(job.job_id).creator_user_name == "analyst@example.com"  # type: ignore[arg-type]
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=TIMEOUT)  # type: ignore[arg-type]
    assert run.creator_user_name == "analyst@example.com"
    # the server's first token was created without --user: it acts as the local user who created it
    assert server.client().current_user.me().user_name == local_user()


def test_sdk_update_reset_delete_and_not_found(server: Server) -> None:
    script = server.ws.write("ok2.py", "print('ok')\n")
    w = server.client()
    job_id = w.jobs.create(name="j", tasks=[py("a", script), py("b", script, deps=("a",))]).job_id
    assert job_id is not None
    with pytest.raises(BadRequest, match="depends_on 'a' is not a task key"):
        w.jobs.update(job_id, fields_to_remove=["tasks/a"])
    w.jobs.update(
        job_id,
        new_settings=jobs.JobSettings(tasks=[py("b", script, "x"), py("c", script)]),
        fields_to_remove=["tasks/a"],
    )
    settings = w.jobs.get(job_id).settings
    assert settings is not None
    assert [t.task_key for t in settings.tasks or []] == ["b", "c"]
    w.jobs.reset(job_id, new_settings=jobs.JobSettings(name="renamed", tasks=[py("z", script)]))
    settings = w.jobs.get(job_id).settings
    assert settings is not None
    assert settings.name == "renamed"
    assert [t.task_key for t in settings.tasks or []] == ["z"]
    w.jobs.delete(job_id)
    with pytest.raises(ResourceDoesNotExist, match=f"Job {job_id} does not exist."):
        w.jobs.get(job_id)
    with pytest.raises(NotFound):
        w.jobs.get_run(987_654)
    with pytest.raises(BadRequest, match=r"Job 424242 does not exist\."):
        w.jobs.run_now(job_id=424242)
    with pytest.raises(PermissionDenied):
        list(server.client("dapi" + "1" * 64).jobs.list())


def test_sdk_cancels_a_running_task(server: Server) -> None:
    ws = server.ws
    gate = ws.write("gate.py", GATE)
    pid_file, never = ws.dir / "pid", ws.dir / "never"
    w = server.client()
    job_id = w.jobs.create(name="slow", tasks=[py("wait", gate, str(pid_file), str(never))]).job_id
    assert job_id is not None
    waiter = w.jobs.run_now(job_id=job_id)
    pid = wait_for(lambda: read_pid(pid_file), timeout=30, what="the task to start")
    run = w.jobs.cancel_run(waiter.run_id).result(timeout=TIMEOUT)
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert not pid_alive(pid), "the task process was killed"
    queued = w.jobs.run_now(job_id=job_id)
    w.jobs.cancel_all_runs(job_id=job_id)
    final = w.jobs.wait_get_run_job_terminated_or_skipped(queued.run_id, timeout=TIMEOUT)
    assert final.state is not None
    assert final.state.result_state == jobs.RunResultState.CANCELED


def test_sdk_repairs_a_failed_run(server: Server) -> None:
    ws = server.ws
    flag = ws.dir / "fixed"
    flaky = ws.write("flaky.py", f"import os\nassert os.path.exists({str(flag)!r}), 'not fixed yet'\n")
    ok = ws.write("fine.py", "print('fine')\n")
    w = server.client()
    job_id = w.jobs.create(name="repair", tasks=[py("a", ok), py("b", flaky, deps=("a",))]).job_id
    assert job_id is not None
    failed = w.jobs.run_now(job_id=job_id).result(timeout=TIMEOUT)
    assert failed.state is not None
    assert failed.state.result_state == jobs.RunResultState.FAILED
    first_b = next(t for t in failed.tasks or [] if t.task_key == "b")
    assert "not fixed yet" in (w.jobs.get_run_output(first_b.run_id).error or "")  # type: ignore[arg-type]
    flag.write_text("yes")
    repaired = w.jobs.repair_run(failed.run_id, rerun_all_failed_tasks=True).result(timeout=TIMEOUT)  # type: ignore[arg-type]
    assert repaired.state is not None
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    history = w.jobs.get_run(failed.run_id, include_history=True).repair_history or []  # type: ignore[arg-type]
    assert [h.type for h in history] == [
        jobs.RepairHistoryItemType.ORIGINAL,
        jobs.RepairHistoryItemType.REPAIR,
    ]
    with pytest.raises(BadRequest, match="latest repair ID needs to be provided"):
        w.jobs.repair_run(failed.run_id, rerun_tasks=["b"])  # type: ignore[arg-type]


def _gate_job(server: Server, *, retries: int) -> tuple[int, Path, Path]:
    ws = server.ws
    gate = ws.write("gate.py", GATE)
    pid_file, opened = ws.dir / "pid", ws.dir / "open"
    w = server.client()
    job_id = w.jobs.create(
        name="gate", tasks=[py("wait", gate, str(pid_file), str(opened), max_retries=retries)]
    ).job_id
    assert job_id is not None
    return job_id, pid_file, opened


def test_kill_9_then_restart_adopts_the_run(server: Server) -> None:
    job_id, pid_file, opened = _gate_job(server, retries=1)
    run_id = server.client().jobs.run_now(job_id=job_id).run_id
    task_pid = wait_for(lambda: read_pid(pid_file), timeout=30, what="the task to start")
    server.bg.proc.send_signal(signal.SIGKILL)
    server.bg.proc.wait(10)
    wait_for(
        lambda: not pid_alive(task_pid) or None, timeout=10, what="the orphaned task to die with its server"
    )
    pid_file.unlink()
    opened.write_text("go")
    again = start_server(server.ws, server.token)
    run = again.client().jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=TIMEOUT)
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    attempts = [t for t in run.tasks or [] if t.task_key == "wait"]
    assert [t.attempt_number for t in attempts] == [0, 1]
    assert attempts[0].state is not None
    assert attempts[0].state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    assert "died" in (attempts[0].state.state_message or "")
    active = list(again.client().jobs.list_runs(active_only=True))
    assert active == [], "nothing is left RUNNING"


def test_sigterm_drains_the_run_in_flight(server: Server) -> None:
    ws = server.ws
    script = ws.write("short.py", "import time\ntime.sleep(1.5)\nprint('done')\n")
    w = server.client()
    job_id = w.jobs.create(name="short", tasks=[py("s", script)]).job_id
    assert job_id is not None
    run_id = w.jobs.run_now(job_id=job_id).run_id
    wait_for(
        lambda: (
            (w.jobs.get_run(run_id).state or jobs.RunState()).life_cycle_state
            == jobs.RunLifeCycleState.RUNNING
            or None
        ),
        timeout=30,
        what="the run to be RUNNING",
    )
    started = time.monotonic()
    server.bg.proc.send_signal(signal.SIGTERM)
    assert server.bg.proc.wait(30) == 0
    assert time.monotonic() - started < 15
    run = ws.get_run(run_id)
    assert run.result_state == "SUCCESS", "the run in flight was drained, not killed"


def test_two_servers_on_one_store_drive_each_run_once(ws: Workspace) -> None:
    token = ws.json("tokens", "create", "--comment", "replicas", "--output", "json")["token_value"]
    one, two = start_server(ws, token), start_server(ws, token)
    log = ws.dir / "ran.log"
    script = ws.write(
        "mark.py",
        f"import os\nwith open({str(log)!r}, 'a') as f:\n"
        "    f.write(os.environ['SLUICE_JOB_RUN_ID'] + '\\n')\n",
    )
    job_id = one.client().jobs.create(name="many", tasks=[py("m", script)], max_concurrent_runs=50).job_id
    assert job_id is not None
    run_ids = [(one if i % 2 else two).client().jobs.run_now(job_id=job_id).run_id for i in range(12)]
    for run_id in run_ids:
        run = one.client().jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=TIMEOUT)
        assert run.state is not None
        assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert sorted(int(x) for x in log.read_text().split()) == sorted(run_ids), "each run ran exactly once"
    assert os.path.exists(ws.home / "sluice.db")
