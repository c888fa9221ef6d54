"""One run never stalls or stops ``sluice serve``: a hanging git remote, a job deleted under its runs,
an error while driving one run, an error in the orchestrator's loop itself.

Real parts throughout: ``sluice serve`` processes on one store, real git against a TCP server that accepts
and never answers, the real databricks-sdk. A second server in a UTS namespace of its own (``unshare``)
stands for a replica on another host, which judges the first one's liveness by its heartbeats only.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from e2e import helpers
from e2e.helpers import GATE, Workspace, wait_for
from e2e.test_api_sdk import Server, py, start_server
from sluice.store import Store
from sluice.store.records import RunRecord
from sluice.store.testing import postgres_schema, require_postgres

TIMEOUT = timedelta(seconds=90)
#: The hung checkout's limit: longer than the 30 s after which another host presumes a silent server dead.
GIT_TIMEOUT_S = 40
#: Runs a command as if on another host: a UTS namespace with its own host name.
OTHER_HOST = (
    "unshare",
    "--uts",
    "--user",
    "--map-root-user",
    "sh",
    "-c",
    'hostname sluice-replica && exec "$@"',
    "sh",
)


class HangingRemote:
    """A TCP server that accepts every connection and never answers: a git remote that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/team/repo.git"

    def _accept(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                self.conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def remote() -> Iterator[HangingRemote]:
    hanging = HangingRemote()
    try:
        yield hanging
    finally:
        hanging.close()


@pytest.fixture
def token(ws: Workspace) -> str:
    return str(ws.json("tokens", "create", "--comment", "resilience", "--output", "json")["token_value"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_token(request: pytest.FixtureRequest, ws: Workspace) -> Iterator[str]:
    """A token of a store on SQLite, or on a throwaway PostgreSQL schema (savepoints on both)."""
    if request.param == "sqlite":
        yield str(ws.json("tokens", "create", "--comment", "resilience", "--output", "json")["token_value"])
        return
    with postgres_schema(require_postgres()) as url:
        ws.env["SLUICE_DATABASE_URL"] = url
        try:
            yield str(
                ws.json("tokens", "create", "--comment", "resilience", "--output", "json")["token_value"]
            )
        finally:
            ws.close()  # the servers hold connections to the schema about to be dropped


def serve_with(ws: Workspace, token: str, **env: str) -> Server:
    before = ws.env
    ws.env = {**before, **env}
    try:
        return start_server(ws, token)
    finally:
        ws.env = before


def serve_on_other_host(ws: Workspace, token: str, monkeypatch: pytest.MonkeyPatch) -> Server | None:
    """A second server whose host name differs (None where unshare --uts --user is not allowed)."""
    if subprocess.run([*OTHER_HOST, "true"], capture_output=True, check=False).returncode != 0:
        return None
    with monkeypatch.context() as patch:
        patch.setattr(helpers, "CLI", (*OTHER_HOST, *helpers.CLI))
        return start_server(ws, token)


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def stored_run(ws: Workspace, run_id: int) -> RunRecord:
    store = Store.open(None, ws.home)
    try:
        return store.get_run(run_id)
    finally:
        store.close()


def ended(server: Server, run_id: int | None) -> jobs.Run:
    """The run once it ended (INTERNAL_ERROR included, which the SDK's waiter raises on)."""
    assert run_id is not None
    w = server.client()

    def done() -> jobs.Run | None:
        run = w.jobs.get_run(run_id)
        life = run.state.life_cycle_state if run.state else None
        return (
            run
            if life
            in (
                jobs.RunLifeCycleState.TERMINATED,
                jobs.RunLifeCycleState.SKIPPED,
                jobs.RunLifeCycleState.INTERNAL_ERROR,
            )
            else None
        )

    return wait_for(done, timeout=TIMEOUT.total_seconds(), what=f"run {run_id} to end", interval=0.2)


def gated(ws: Workspace, name: str) -> tuple[jobs.Task, Path, Path]:
    """A task that writes its pid to a file, then waits until the gate file exists."""
    script = ws.write("gate.py", GATE)
    pid_file, gate = ws.dir / f"{name}.pid", ws.dir / f"{name}.open"
    return py("wait", script, str(pid_file), str(gate)), pid_file, gate


def result_of(run: jobs.Run) -> tuple[str | None, str | None]:
    assert run.state is not None
    life = run.state.life_cycle_state.value if run.state.life_cycle_state else None
    result = run.state.result_state.value if run.state.result_state else None
    return life, result


# ------------------------------------------------------------------------------------ a hanging git remote


def test_a_hanging_git_remote_fails_only_its_run(
    ws: Workspace, token: str, remote: HangingRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = serve_with(ws, token, SLUICE_GIT_TIMEOUT=str(GIT_TIMEOUT_S))
    w = one.client()
    step = ws.write("step.py", "print('never runs')\n")
    hung_job = w.jobs.create(
        name="hung",
        tasks=[
            jobs.Task(
                task_key="step",
                spark_python_task=jobs.SparkPythonTask(python_file=step.name, source=jobs.Source.GIT),
            )
        ],
        git_source=jobs.GitSource(
            git_url=remote.url, git_provider=jobs.GitProvider.GIT_HUB, git_branch="main"
        ),
    ).job_id
    task, pid_file, gate = gated(ws, "busy")
    busy_job = w.jobs.create(name="busy", tasks=[task]).job_id
    assert hung_job is not None
    assert busy_job is not None

    busy = w.jobs.run_now(job_id=busy_job).run_id
    wait_for(lambda: helpers.read_pid(pid_file), timeout=60, what="the busy task to start")
    hung = w.jobs.run_now(job_id=hung_job).run_id
    wait_for(lambda: bool(remote.conns), timeout=60, what="git to connect to the hanging remote")
    claimed = stored_run(ws, hung)
    assert claimed.driver is not None, one.bg.stderr.read_text()
    # A replica on another host, on the same store: it adopts runs whose heartbeat is 30 s old.
    replica = serve_on_other_host(ws, token, monkeypatch)

    # The server goes on while git hangs: heartbeats, the busy run's end, a new run, the API.
    def beat() -> bool:
        run = stored_run(ws, hung)
        assert run.end_time == 0, f"the hung run ended before its heartbeat was seen: {run.state_message}"
        return run.heartbeat_time > claimed.heartbeat_time

    wait_for(beat, timeout=GIT_TIMEOUT_S / 2, what="a heartbeat of the run whose checkout hangs")
    gate.write_text("")
    assert result_of(ended(one, busy)) == ("TERMINATED", "SUCCESS")
    quick_job = w.jobs.create(name="quick", tasks=[py("ok", ws.dir / "ok.py")]).job_id
    assert quick_job is not None
    assert result_of(ended(one, w.jobs.run_now(job_id=quick_job).run_id)) == ("TERMINATED", "SUCCESS")
    assert stored_run(ws, hung).end_time == 0, "all of that happened while the checkout still hung"

    run = ended(one, hung)
    assert result_of(run) == ("INTERNAL_ERROR", "FAILED")
    assert run.status is not None
    assert run.status.termination_details is not None
    assert run.status.termination_details.code == jobs.TerminationCodeCode.REPOSITORY_CHECKOUT_FAILED
    message = run.state.state_message if run.state else ""
    assert remote.url in (message or "")
    assert f"within {GIT_TIMEOUT_S} s" in (message or "")
    assert stored_run(ws, hung).driver is None
    # Nobody adopted anything: the busy run's one attempt ran once, and its run and the hung one stayed
    # with the server that claimed them.
    busy_run = w.jobs.get_run(busy)
    assert [t.attempt_number for t in busy_run.tasks or []] == [0]
    if replica is not None:
        taken = {
            int(n)
            for ids in re.findall(r"claimed runs \[([\d, ]+)\]", replica.bg.stderr.read_text())
            for n in ids.split(",")
        }
        assert not taken & {hung, busy}, "the replica adopted a run of the live server"
    assert not (ws.home / "runs" / str(hung) / "repo").exists(), "the half-written checkout is removed"
    wait_for(lambda: not processes_naming(remote.url), timeout=30, what="git's processes to end")


def test_sluice_run_stops_a_hanging_checkout_at_the_configured_timeout(
    ws: Workspace, remote: HangingRemote
) -> None:
    task = {"task_key": "step", "spark_python_task": {"python_file": "step.py", "source": "GIT"}}
    git_source = {"git_url": remote.url, "git_provider": "gitHub", "git_tag": "v1"}
    ws.env = {**ws.env, "SLUICE_GIT_TIMEOUT": "2"}
    done = ws.run(ws.job([task], git_source=git_source))
    assert done.returncode == 1
    assert done.run.result_state == "FAILED"
    assert f"could not check out tag 'v1' of {remote.url} within 2 s" in done.run.state_message
    assert remote.conns, "git reached the remote"


def test_canceling_a_run_stops_its_hanging_checkout(ws: Workspace, token: str, remote: HangingRemote) -> None:
    server = serve_with(ws, token)  # the default limit, 300 s: the cancel must not wait for it
    w = server.client()
    job_id = w.jobs.create(
        name="hung",
        tasks=[py("step", ws.dir / "ok.py")],
        git_source=jobs.GitSource(git_url=remote.url, git_provider=jobs.GitProvider.GIT_HUB, git_tag="v1"),
    ).job_id
    assert job_id is not None
    run_id = w.jobs.run_now(job_id=job_id).run_id
    wait_for(lambda: bool(remote.conns), timeout=60, what="git to connect to the hanging remote")
    w.jobs.cancel_run(run_id=run_id)
    assert result_of(ended(server, run_id)) == ("TERMINATED", "CANCELED")
    wait_for(lambda: not processes_naming(remote.url), timeout=30, what="git's processes to end")
    assert not (ws.home / "runs" / str(run_id) / "repo").exists()


# ------------------------------------------------------------------------ a job deleted under its runs


def test_deleting_a_job_with_a_running_and_a_queued_run_ends_both(ws: Workspace, store_token: str) -> None:
    server = serve_with(ws, store_token)
    w = server.client()
    task, pid_file, _gate = gated(ws, "held")
    job_id = w.jobs.create(
        name="doomed", tasks=[task], max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True)
    ).job_id
    assert job_id is not None
    running = w.jobs.run_now(job_id=job_id).run_id
    wait_for(lambda: helpers.read_pid(pid_file), timeout=60, what="the first run's task to start")
    queued = w.jobs.run_now(job_id=job_id).run_id
    first = w.jobs.get_run(queued)
    assert first.state is not None
    assert first.state.life_cycle_state == jobs.RunLifeCycleState.QUEUED

    w.jobs.delete(job_id=job_id)

    assert result_of(ended(server, queued)) == ("TERMINATED", "CANCELED")
    assert "deleted" in (w.jobs.get_run(queued).state.state_message or "")  # type: ignore[union-attr]
    assert result_of(ended(server, running)) == ("TERMINATED", "CANCELED")
    other = w.jobs.create(name="after", tasks=[py("ok", ws.dir / "ok.py")]).job_id
    assert other is not None
    assert result_of(ended(server, w.jobs.run_now(job_id=other).run_id)) == ("TERMINATED", "SUCCESS")
    log = server.bg.stderr.read_text()
    assert "orchestrator loop failed" not in log, log


# ------------------------------------------------------------------------------------ errors while driving


def _marker_job(server: Server, name: str) -> int:
    job_id = server.client().jobs.create(name=name, tasks=[py("ok", server.ws.dir / "ok.py")]).job_id
    assert job_id is not None
    return job_id


def test_an_error_while_driving_one_run_fails_that_run_only(ws: Workspace, store_token: str) -> None:
    server = serve_with(ws, store_token, SLUICE_FAULT_AT="driver.task_starting")
    w = server.client()
    faulty = w.jobs.run_now(job_id=_marker_job(server, "faulty")).run_id
    run = ended(server, faulty)
    assert result_of(run) == ("INTERNAL_ERROR", "FAILED")
    message = run.state.state_message if run.state else ""
    assert "Sluice failed while driving this run (InjectedFault" in (message or "")
    assert all(
        t.state and t.state.life_cycle_state != jobs.RunLifeCycleState.RUNNING for t in run.tasks or []
    )
    healthy = w.jobs.run_now(job_id=_marker_job(server, "healthy")).run_id
    assert result_of(ended(server, healthy)) == ("TERMINATED", "SUCCESS")
    log = server.bg.stderr.read_text()
    assert f"driving run {faulty} failed" in log
    assert "orchestrator loop failed" not in log


def test_a_run_job_task_whose_child_run_fails_to_drive_fails_too(ws: Workspace, token: str) -> None:
    server = serve_with(ws, token, SLUICE_FAULT_AT="driver.task_starting")
    w = server.client()
    child_job = _marker_job(server, "child")
    parent_job = w.jobs.create(
        name="parent", tasks=[jobs.Task(task_key="call", run_job_task=jobs.RunJobTask(job_id=child_job))]
    ).job_id
    assert parent_job is not None
    parent = ended(server, w.jobs.run_now(job_id=parent_job).run_id)
    assert result_of(parent) == ("TERMINATED", "FAILED")
    (call,) = parent.tasks or []
    assert call.state is not None
    assert "ended INTERNAL_ERROR: Sluice failed while driving this run" in (call.state.state_message or "")


def test_an_error_in_the_loop_restarts_it_and_adopts_its_runs(ws: Workspace, token: str) -> None:
    server = serve_with(ws, token, SLUICE_FAULT_AT="orchestrator.turn")
    w = server.client()
    retried = py("ok", ws.dir / "ok.py", max_retries=1, min_retry_interval_millis=0)
    job_id = w.jobs.create(name="survivor", tasks=[retried]).job_id
    assert job_id is not None
    run_id = w.jobs.run_now(job_id=job_id).run_id
    run = ended(server, run_id)
    assert result_of(run) == ("TERMINATED", "SUCCESS")
    # The attempt running when the loop failed was stopped and retried, as after a crash.
    attempts = [(t.attempt_number, t.state.life_cycle_state) for t in run.tasks or [] if t.state]
    assert attempts == [(0, jobs.RunLifeCycleState.INTERNAL_ERROR), (1, jobs.RunLifeCycleState.TERMINATED)]
    log = server.bg.stderr.read_text()
    assert "the orchestrator loop failed (1 in a row); restarting it now" in log
    assert f"orchestrator loop restarted; adopted runs [{run_id}]" in log
    after = w.jobs.run_now(job_id=_marker_job(server, "after")).run_id
    assert result_of(ended(server, after)) == ("TERMINATED", "SUCCESS")
