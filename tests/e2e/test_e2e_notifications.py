"""Notifications of real runs: the driver runs real task processes while ``notifying`` (what ``sluice run``
wires in) records and delivers to a real SMTP server and a real HTTP receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Workspace, py_task, wait_for
from e2e.notify_servers import HttpReceiver, SmtpServer, http_receiver, refused_url, smtp_server
from sluice.engine.clock import now_ms
from sluice.engine.driver import Driver
from sluice.engine.submit import run_now
from sluice.executors.local import LocalExecutor
from sluice.notify import NotifySettings, notifying
from sluice.notify.destinations import create as create_destination
from sluice.store import Store
from sluice.store import notifications as outbox
from sluice.store.records import RunRecord

SCRIPTS = {
    "ok.py": "print('ok')\n",
    "fail.py": "raise ValueError('bad input row 7')\n",
    "sleep.py": "import sys, time\ntime.sleep(float(sys.argv[1]))\n",
}


class Bench:
    """A store, an executor, receivers, and a way to run a job with notifications on."""

    def __init__(self, root: Path, executor: LocalExecutor, smtp: SmtpServer, hooks: HttpReceiver) -> None:
        self.root = root
        self.executor = executor
        self.smtp = smtp
        self.hooks = hooks
        self.store = Store.open(f"sqlite:///{root / 'home' / 'sluice.db'}", root / "home")
        for name, text in SCRIPTS.items():
            (root / name).write_text(text)
        self.settings = NotifySettings(
            smtp_host="127.0.0.1", smtp_port=smtp.port, timeout_s=5, backoff_base_ms=50, max_attempts=3
        )

    def hook(self, path: str, type: str = "webhook") -> str:
        return create_destination(
            self.store, type=type, url=self.hooks.url(path), name=None, now=now_ms()
        ).destination_id

    def run(self, settings: dict[str, Any], *, during: Any = None) -> RunRecord:
        job = self.store.create_job({"name": "etl", **settings}, now=now_ms())
        run, _ = run_now(self.store, job, now=now_ms())
        driver = Driver(self.store, self.executor, home=self.root / "home", parallelism=2)
        with notifying(self.store, self.settings, interval_s=0.1, flush_timeout_s=15):
            driver.adopt(run, base_dir=self.root)
            if during is not None:
                threading.Thread(target=during, args=(run.run_id,), daemon=True).start()
            driver.run_until_done()
        return self.store.get_run(run.run_id)

    def mails_to(self, address: str) -> list[str]:
        return [m.subject for m in self.smtp.mails if address in m.recipients]


@pytest.fixture(scope="module")
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture
def bench(tmp_path: Path, executor: LocalExecutor) -> Iterator[Bench]:
    with smtp_server() as smtp, http_receiver() as hooks:
        b = Bench(tmp_path, executor, smtp, hooks)
        try:
            yield b
        finally:
            b.store.close()


def test_job_and_task_events_of_a_failing_run(bench: Bench) -> None:
    slack = bench.hook("/slack", "slack")
    generic = bench.hook("/generic")
    settings = {
        "email_notifications": {"on_start": ["ops@x"], "on_failure": ["ops@x"], "on_success": ["ops@x"]},
        "webhook_notifications": {"on_failure": [{"id": generic}]},
        "tasks": [
            py_task("good", "ok.py", email_notifications={"on_success": ["dev@x"]}),
            py_task("bad", "fail.py", webhook_notifications={"on_failure": [{"id": slack}]}),
        ],
    }
    run = bench.run(settings)
    assert run.result_state == "FAILED"
    assert sorted(bench.mails_to("ops@x")) == [
        f"[Sluice] Failed: job 'etl' run {run.run_id} ended: FAILED",
        f"[Sluice] Started: job 'etl' run {run.run_id} started",
    ]
    assert bench.mails_to("dev@x") == [
        f"[Sluice] Succeeded: task 'good' of job 'etl' run {run.run_id} ended: SUCCESS"
    ]
    (slack_msg,) = bench.hooks.to("/slack")
    assert slack_msg.body["text"].startswith("[Sluice] Failed: task 'bad'")
    assert "ValueError: bad input row 7" in str(slack_msg.body["blocks"])
    (job_hook,) = bench.hooks.to("/generic")
    assert job_hook.body["event_type"] == "jobs.on_failure"
    assert job_hook.body["run"]["run_id"] == run.run_id
    assert "1 of 2 tasks failed: bad" in job_hook.body["state"]["state_message"]
    failure_mail = next(m for m in bench.smtp.mails if "Failed" in m.subject)
    assert "Duration:" in failure_mail.part("text/plain")


def test_alert_on_last_attempt_notifies_the_final_failure_only(bench: Bench) -> None:
    watch = {"on_start": ["last@x"], "on_failure": ["last@x"]}
    every = {"on_start": ["every@x"], "on_failure": ["every@x"]}
    settings = {
        "tasks": [
            py_task("a", "fail.py", max_retries=2, email_notifications=watch,
                    notification_settings={"alert_on_last_attempt": True}),
            py_task("b", "fail.py", max_retries=2, email_notifications=every),
        ]
    }  # fmt: skip
    run = bench.run(settings)
    assert run.result_state == "FAILED"
    last = bench.mails_to("last@x")
    assert sorted(s.split(":")[0] for s in last) == ["[Sluice] Failed", "[Sluice] Started"], last
    attempts = {
        tr.attempt_number: tr.run_id for tr in bench.store.list_task_runs(run.run_id) if tr.task_key == "a"
    }
    failed = next(
        n
        for n in outbox.list_notifications(bench.store)
        if n.destination == "last@x" and n.event == "on_failure"
    )
    assert failed.task_run_id == attempts[2], "the failure of the last attempt is the one notified"
    every_mails = bench.mails_to("every@x")
    assert sum("Failed" in s for s in every_mails) == 3
    assert sum("Started" in s for s in every_mails) == 3


def test_duration_warning_arrives_while_the_task_still_runs(bench: Bench) -> None:
    health: dict[str, Any] = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 1}]}
    warn_hook = {"on_duration_warning_threshold_exceeded": [{"id": bench.hook("/slow")}]}
    sleepy = py_task("sleepy", "sleep.py", params=["3.5"], health=health, webhook_notifications=warn_hook)
    settings = {
        "health": health,
        "email_notifications": {"on_duration_warning_threshold_exceeded": ["slow@x"]},
        "tasks": [sleepy],
    }
    run = bench.run(settings)
    assert run.result_state == "SUCCESS"
    (mail,) = [m for m in bench.smtp.mails if "slow@x" in m.recipients]
    assert "has run longer than 1 s" in mail.subject
    (hook,) = bench.hooks.to("/slow")
    assert hook.body["task"]["task_key"] == "sleepy"
    assert hook.body["health"]["value"] == 1
    task_end = bench.store.list_task_runs(run.run_id)[0].end_time / 1000
    assert mail.received < task_end - 1.0, "the job warning came while the task was still running"
    assert hook.received < task_end - 1.0, "the task warning came while it was still running"
    assert hook.body["state"]["life_cycle_state"] == "RUNNING"


def test_canceled_runs_are_muted_by_no_alert_for_canceled_runs(bench: Bench) -> None:
    def cancel_when_running(run_id: int) -> None:
        wait_for(
            lambda: any(tr.state == "RUNNING" for tr in bench.store.list_task_runs(run_id)) or None,
            timeout=30,
            what="the task to run",
        )
        bench.store.request_cancel(run_id)

    tasks = [py_task("sleepy", "sleep.py", params=["30"])]
    loud = bench.run(
        {"email_notifications": {"on_failure": ["loud@x"]}, "tasks": tasks}, during=cancel_when_running
    )
    muted = bench.run(
        {
            "email_notifications": {"on_failure": ["muted@x"]},
            "notification_settings": {"no_alert_for_canceled_runs": True},
            "tasks": tasks,
        },
        during=cancel_when_running,
    )
    assert loud.result_state == muted.result_state == "CANCELED"
    assert bench.mails_to("loud@x") == [f"[Sluice] Failed: job 'etl' run {loud.run_id} ended: CANCELED"]
    assert bench.mails_to("muted@x") == []


def test_skipped_runs_are_muted_by_no_alert_for_skipped_runs(bench: Bench) -> None:
    def skipped_run(settings: dict[str, Any]) -> RunRecord:
        job = bench.store.create_job({"name": "etl", "max_concurrent_runs": 0, **settings}, now=now_ms())
        run, _ = run_now(bench.store, job, now=now_ms())
        assert run.state == "SKIPPED"
        return run

    with notifying(bench.store, bench.settings, interval_s=0.1):
        loud = skipped_run({"email_notifications": {"on_failure": ["loud@x"]}})
        skipped_run(
            {
                "email_notifications": {"on_failure": ["muted@x"]},
                "notification_settings": {"no_alert_for_skipped_runs": True},
            }
        )
    expected = f"[Sluice] Failed: job 'etl' run {loud.run_id} ended: MAXIMUM_CONCURRENT_RUNS_REACHED"
    assert bench.mails_to("loud@x") == [expected]
    assert bench.mails_to("muted@x") == []


def test_a_refusing_destination_never_fails_the_run(bench: Bench) -> None:
    down = create_destination(bench.store, type="webhook", url=refused_url(), name="down", now=now_ms())
    settings = {
        "webhook_notifications": {
            "on_start": [{"id": down.destination_id}],
            "on_success": [{"id": down.destination_id}],
        },
        "email_notifications": {"on_success": ["ok@x"]},
        "tasks": [py_task("good", "ok.py")],
    }
    run = bench.run(settings)
    assert run.result_state == "SUCCESS"
    assert len(bench.mails_to("ok@x")) == 1
    notes = [
        n for n in outbox.list_notifications(bench.store, job_run_id=run.run_id) if n.channel == "webhook"
    ]
    assert sorted(n.event for n in notes) == ["on_start", "on_success"]
    for note in notes:
        assert (note.state, note.attempts) == ("FAILED", 3)
        attempts = outbox.list_attempts(bench.store, note.notification_key)
        assert [a.ok for a in attempts] == [False, False, False]
        assert "refused" in (attempts[-1].error or "").lower()


def test_destinations_cli(ws: Workspace) -> None:
    done = ws.cli(
        "destinations", "create", "--type", "slack", "--url", "https://hooks.example.com/T0/B0/secret"
    )
    assert done.returncode == 0, done.stderr
    dest_id = done.stdout.strip()
    listed = ws.json("destinations", "list", "--output", "json")["results"]
    assert [(d["id"], d["destination_type"], d["url"]) for d in listed] == [
        (dest_id, "slack", "https://hooks.example.com/...")
    ]
    bad = ws.cli("destinations", "create", "--type", "teams", "--url", "https://x")
    assert bad.returncode == 2
    assert "destination type 'teams' is not supported; use one of: slack, webhook" in bad.stderr
    assert ws.cli("destinations", "delete", dest_id).returncode == 0
    missing = ws.cli("destinations", "delete", dest_id)
    assert missing.returncode == 2
    assert f"Notification destination '{dest_id}' does not exist" in missing.stderr
