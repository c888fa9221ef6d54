"""The orchestrator in-process: it claims runs left without a driver, ticks services, survives bad ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.engine.clock import now_ms
from sluice.engine.submit import run_now
from sluice.server.orchestrator import Orchestrator
from sluice.server.services import Service, TokenJanitor
from sluice.store import Store
from sluice.store.tokens import create_token, list_tokens, revoke_token


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.ticks: list[int] = []

    def tick(self, now_ms: int) -> None:
        self.ticks.append(now_ms)


class Broken:
    name = "broken"

    def tick(self, now_ms: int) -> None:
        raise RuntimeError("boom")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(None, tmp_path) as s:
        yield s


def test_runs_without_a_driver_are_claimed_and_run(store: Store, tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("print('ran')\n")
    settings = {"name": "j", "tasks": [{"task_key": "t", "spark_python_task": {"python_file": str(script)}}]}
    job = store.create_job(settings, now=now_ms())
    counting = Counting()
    services: list[Service] = [Broken(), counting]
    orchestrator = Orchestrator(store, home=tmp_path, parallelism=2, services=services)
    try:
        run, _ = run_now(store, job, now=now_ms())
        assert run.driver is None
        assert run.state == "PENDING"
        orchestrator.wake()
        deadline = time.monotonic() + 30
        while store.get_run(run.run_id).state != "TERMINATED" and time.monotonic() < deadline:
            orchestrator.turn()
        assert store.get_run(run.run_id).result_state == "SUCCESS"
        assert orchestrator.claimed == [run.run_id]
        assert counting.ticks, "services are ticked, and a failing one does not stop the others"
        assert orchestrator.claim_orphans(now_ms()) == [], "a run is claimed once"
        assert orchestrator.driver.forget_finished() == [run.run_id]
    finally:
        orchestrator.close()


def test_stop_ends_the_loop_thread(store: Store, tmp_path: Path) -> None:
    orchestrator = Orchestrator(store, home=tmp_path, parallelism=1, grace_s=1)
    orchestrator.start()
    orchestrator.stop()
    assert orchestrator.join(10)
    orchestrator.close()


def test_token_janitor_deletes_long_dead_tokens(store: Store) -> None:
    day = 86_400_000
    _, old = create_token(store, comment="old", now=0, user_name="ops", lifetime_seconds=1)
    _, revoked = create_token(store, comment="revoked", now=0, user_name="ops")
    revoke_token(store, revoked.token_id, now=40 * day)
    _, live = create_token(store, comment="live", now=0, user_name="ops")
    janitor = TokenJanitor(store, keep_days=30)
    janitor.tick(50 * day)
    assert janitor.purged == 1
    assert {t.token_id for t in list_tokens(store, include_revoked=True)} == {revoked.token_id, live.token_id}
    assert old.token_id
    janitor.tick(60 * day)
    assert janitor.purged == 1, "a token revoked less than 30 days before is kept"
    janitor.tick(71 * day + 3_600_000)
    assert {t.token_id for t in list_tokens(store, include_revoked=True)} == {live.token_id}


def test_a_run_another_host_took_over_is_dropped_and_its_task_killed(store: Store, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "sleepy.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    settings = {"name": "j", "tasks": [{"task_key": "t", "spark_python_task": {"python_file": str(script)}}]}
    job = store.create_job(settings, now=now_ms())
    orchestrator = Orchestrator(store, home=tmp_path, parallelism=2)
    try:
        run, _ = run_now(store, job, now=now_ms())
        orchestrator.wake()
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the task never started"
            orchestrator.turn()
        pid = int(pid_file.read_text())
        # A replica on another host presumed this driver dead and adopted the run.
        assert store.take_over_run(
            run.run_id, expected_driver=orchestrator.driver_id, driver="elsewhere:1:1", now=now_ms()
        )
        deadline = time.monotonic() + 30
        while run.run_id in orchestrator.driver.run_ids or Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, "the run was not dropped, or its task not killed"
            orchestrator.turn()
        after = store.get_run(run.run_id)
        assert after.driver == "elsewhere:1:1", "the run is left to its new driver"
        assert [tr.state for tr in store.list_task_runs(run.run_id)] == ["RUNNING"], "and not written to"
    finally:
        orchestrator.close()
