"""The notifier against real receivers: SMTP (plain and STARTTLS), Slack-style and generic webhooks, refused
connections, retries with backoff, permanent failures, and a notifier killed between record and send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import wait_for
from e2e.notify_servers import http_receiver, refused_url, smtp_server
from sluice.engine.clock import now_ms
from sluice.errors import InvalidJobError
from sluice.notify import Notifier, NotifySettings, validate_destinations
from sluice.notify.destinations import create as create_destination
from sluice.store import Store
from sluice.store import notifications as outbox
from sluice.store.testing import postgres_schema, require_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'sluice.db'}"
    else:
        with postgres_schema(require_postgres()) as url:
            yield url


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    with Store.open(store_url, tmp_path) as s:
        yield s


def fast(**fields: Any) -> NotifySettings:
    """Settings for tests: inline delivery, short timeouts and backoff."""
    values: dict[str, Any] = {"workers": 0, "timeout_s": 5.0, "backoff_base_ms": 20, "max_attempts": 3}
    values.update(fields)
    return NotifySettings(**values)


def ended_run(store: Store, settings: dict[str, Any], *, result: str = "FAILED", message: str = "") -> int:
    """A job and a run of it that just ended with ``result`` (what a driver leaves in the store)."""
    now = now_ms()
    job = store.create_job(settings, now=now - 5000)
    run, _ = store.create_run(
        job_id=job.job_id,
        settings=settings,
        run_name=settings["name"],
        run_type="JOB_RUN",
        trigger="ONE_TIME",
        job_parameters=[],
        overriding_parameters={},
        now=now - 4000,
        queue_enabled=False,
        max_concurrent_runs=1,
    )
    store.update_run(
        run.run_id, state="TERMINATED", result_state=result, state_message=message, end_time=now - 1500
    )
    return run.run_id


def test_email_goes_out_over_smtp_with_text_and_html(store: Store) -> None:
    settings = {
        "name": "nightly <etl>",
        "email_notifications": {"on_failure": ["ops@example.com", "b@x.org"]},
    }
    with smtp_server() as smtp:
        run_id = ended_run(store, settings, message="1 of 2 tasks failed: silver")
        notifier = Notifier(
            store, fast(smtp_host="127.0.0.1", smtp_port=smtp.port, base_url="http://sluice.test:8080")
        )
        assert notifier.flush(10) == 0
        notifier.close()
        mails = sorted(smtp.mails, key=lambda m: m.recipients)
    assert [m.recipients for m in mails] == [["b@x.org"], ["ops@example.com"]]
    mail = mails[1]
    assert mail.subject == f"[Sluice] Failed: job 'nightly <etl>' run {run_id} ended: FAILED"
    text = mail.part("text/plain")
    assert "1 of 2 tasks failed: silver" in text
    assert "Duration: 2.5 s" in text
    link = f"http://sluice.test:8080/jobs/{store.get_run(run_id).job_id}/runs/{run_id}"
    assert link in text
    html = mail.part("text/html")
    assert "nightly &lt;etl&gt;" in html
    assert f'href="{link}"' in html
    assert mail.message["X-Sluice-Event"] == "on_failure"
    notes = outbox.list_notifications(store, job_run_id=run_id)
    assert {n.state for n in notes} == {"SENT"}
    assert [n.attempts for n in notes] == [1, 1]
    attempts = outbox.list_attempts(store, notes[0].notification_key)
    assert [(a.attempt_number, a.ok, a.error) for a in attempts] == [(1, True, None)]


def test_email_over_starttls_with_a_self_signed_certificate(store: Store, tmp_path: Path) -> None:
    settings = {"name": "tls", "email_notifications": {"on_success": ["a@example.com"]}}
    with smtp_server(starttls_dir=tmp_path) as smtp:
        ended_run(store, settings, result="SUCCESS")
        plain = Notifier(store, fast(smtp_host="127.0.0.1", smtp_port=smtp.port, max_attempts=1))
        plain.flush(10)
        assert smtp.mails == [], "the server requires STARTTLS: a plain session cannot deliver"
        note = outbox.list_notifications(store)[0]
        assert note.state == "FAILED"
        assert "530" in (note.last_error or ""), note.last_error
        ended_run(store, {**settings, "name": "tls2"}, result="SUCCESS")
        tls = fast(
            smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_tls="starttls", smtp_ca_file=str(smtp.cert_file)
        )
        Notifier(store, tls).flush(10)
        assert [m.subject for m in smtp.mails] == [m.subject for m in smtp.mails if "'tls2'" in m.subject]
        assert len(smtp.mails) == 1


def test_slack_and_generic_webhooks_get_their_payloads(store: Store) -> None:
    with http_receiver() as hooks:
        slack = create_destination(store, type="slack", url=hooks.url("/slack"), name="ops", now=now_ms())
        generic = create_destination(
            store, type="webhook", url=hooks.url("/generic"), name=None, now=now_ms()
        )
        settings = {
            "name": "etl",
            "webhook_notifications": {
                "on_failure": [{"id": slack.destination_id}, {"id": generic.destination_id}]
            },
        }
        run_id = ended_run(store, settings, message="boom")
        Notifier(store, fast()).flush(10)
    (slack_request,) = hooks.to("/slack")
    assert slack_request.body["text"] == f"[Sluice] Failed: job 'etl' run {run_id} ended: FAILED"
    assert any("boom" in str(b) for b in slack_request.body["blocks"])
    (generic_request,) = hooks.to("/generic")
    body = generic_request.body
    assert body["event_type"] == "jobs.on_failure"
    assert body["run"]["run_id"] == run_id
    assert body["job"]["name"] == "etl"
    assert body["state"] == {
        "life_cycle_state": "TERMINATED",
        "result_state": "FAILED",
        "state_message": "boom",
    }
    assert generic_request.headers["Idempotency-Key"] == body["notification_id"]


def test_refused_connections_are_retried_with_backoff_then_failed(store: Store) -> None:
    dest = create_destination(store, type="webhook", url=refused_url(), name="down", now=now_ms())
    run_id = ended_run(
        store, {"name": "etl", "webhook_notifications": {"on_failure": [{"id": dest.destination_id}]}}
    )
    notifier = Notifier(store, fast(max_attempts=3, backoff_base_ms=100))
    started = time.monotonic()
    assert notifier.flush(10) == 0
    elapsed = time.monotonic() - started
    (note,) = outbox.list_notifications(store, job_run_id=run_id)
    assert note.state == "FAILED"
    assert note.attempts == 3
    attempts = outbox.list_attempts(store, note.notification_key)
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert all(not a.ok and "refused" in (a.error or "").lower() for a in attempts), attempts
    # Backoff: 100 ms after the first failure, 200 ms after the second.
    assert attempts[1].start_time - attempts[0].end_time >= 100
    assert attempts[2].start_time - attempts[1].end_time >= 200
    assert elapsed >= 0.3


def test_a_4xx_answer_is_permanent_and_a_5xx_is_retried(store: Store) -> None:
    with http_receiver() as hooks:
        hooks.statuses.update({"/gone": 404, "/busy": 503})
        gone = create_destination(store, type="webhook", url=hooks.url("/gone"), name=None, now=now_ms())
        busy = create_destination(store, type="webhook", url=hooks.url("/busy"), name=None, now=now_ms())
        ids = [{"id": gone.destination_id}, {"id": busy.destination_id}]
        ended_run(store, {"name": "etl", "webhook_notifications": {"on_failure": ids}})
        Notifier(store, fast(max_attempts=3)).flush(10)
    assert len(hooks.to("/gone")) == 1
    assert len(hooks.to("/busy")) == 3
    states = {n.destination: (n.state, n.attempts) for n in outbox.list_notifications(store)}
    assert states == {gone.destination_id: ("FAILED", 1), busy.destination_id: ("FAILED", 3)}


def test_workers_keep_tick_fast_while_a_destination_hangs(store: Store) -> None:
    with http_receiver() as hooks:
        hooks.hold.set()
        dest = create_destination(store, type="webhook", url=hooks.url("/slow"), name=None, now=now_ms())
        ended_run(
            store, {"name": "etl", "webhook_notifications": {"on_failure": [{"id": dest.destination_id}]}}
        )
        notifier = Notifier(store, fast(workers=2, timeout_s=20))
        started = time.monotonic()
        result = notifier.tick(now_ms())
        tick_s = time.monotonic() - started
        wait_for(lambda: hooks.to("/slow") or None, timeout=10, what="the webhook request")
        assert notifier.busy()
        hooks.release.set()
        assert notifier.flush(10) == 0
        notifier.close()
    assert result.recorded == 1
    assert result.dispatched == 1
    assert tick_s < 1.0, f"tick waited on the network ({tick_s:.2f} s)"
    assert outbox.list_notifications(store)[0].state == "SENT"


def test_missing_smtp_host_fails_naming_the_setting(store: Store) -> None:
    ended_run(store, {"name": "etl", "email_notifications": {"on_failure": ["a@example.com"]}})
    Notifier(store, fast()).flush(5)
    (note,) = outbox.list_notifications(store)
    assert note.state == "FAILED"
    assert note.attempts == 1
    assert "SLUICE_SMTP_HOST" in (note.last_error or "")


def test_deleted_destination_fails_naming_it(store: Store) -> None:
    dest = create_destination(store, type="slack", url="http://127.0.0.1:9/x", name=None, now=now_ms())
    ended_run(store, {"name": "etl", "webhook_notifications": {"on_failure": [{"id": dest.destination_id}]}})
    outbox.delete_destination(store, dest.destination_id)
    Notifier(store, fast()).flush(5)
    (note,) = outbox.list_notifications(store)
    assert note.state == "FAILED"
    assert dest.destination_id in (note.last_error or "")


def test_validate_destinations_names_unknown_ids_and_too_many(store: Store) -> None:
    known = create_destination(store, type="slack", url="https://hooks.example/x", name=None, now=now_ms())
    validate_destinations(store, {"webhook_notifications": {"on_start": [{"id": known.destination_id}]}})
    settings = {
        "webhook_notifications": {"on_failure": [{"id": "nope"}]},
        "tasks": [
            {"task_key": "t", "webhook_notifications": {"on_success": [{"id": known.destination_id}] * 4}}
        ],
    }
    with pytest.raises(InvalidJobError) as caught:
        validate_destinations(store, settings, file="job.yml", job="etl")
    messages = [str(p) for p in caught.value.problems]
    assert any("webhook_notifications.on_failure" in m and "'nope' does not exist" in m for m in messages)
    assert any("task 't'" in m and "at most 3 per event" in m for m in messages), messages


# ------------------------------------------------------------------------------------------------ crashes

CHILD = """
import os, signal, sys
from sluice.engine.clock import now_ms
from sluice.notify import Notifier, NotifySettings
from sluice.store import Store

url, home, mode = sys.argv[1], sys.argv[2], sys.argv[3]
store = Store.open(url, home)
notifier = Notifier(store, NotifySettings(workers=0, timeout_s=30))
if mode == "record":
    notifier.record(now_ms())       # committed to the outbox ...
else:
    notifier.tick(now_ms())         # ... claimed and being sent when the kill comes
os.kill(os.getpid(), signal.SIGKILL)
"""


def _child(tmp_path: Path, url: str, mode: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    return subprocess.Popen([sys.executable, str(script), url, str(tmp_path), mode])


def test_killed_after_recording_sends_once_after_restart(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    with http_receiver() as hooks:
        dest = create_destination(store, type="webhook", url=hooks.url("/h"), name=None, now=now_ms())
        run_id = ended_run(
            store, {"name": "etl", "webhook_notifications": {"on_failure": [{"id": dest.destination_id}]}}
        )
        child = _child(tmp_path, store_url, "record")
        assert child.wait(60) == -signal.SIGKILL
        (note,) = outbox.list_notifications(store, job_run_id=run_id)
        assert (note.state, note.attempts) == ("PENDING", 0)
        assert hooks.requests == []
        Notifier(store, fast()).flush(10)
    assert len(hooks.to("/h")) == 1
    assert outbox.list_notifications(store)[0].state == "SENT"


def test_killed_while_sending_resends_at_most_once_more(store: Store, store_url: str, tmp_path: Path) -> None:
    with http_receiver() as hooks:
        hooks.hold.set()
        dest = create_destination(store, type="webhook", url=hooks.url("/h"), name=None, now=now_ms())
        ended_run(
            store, {"name": "etl", "webhook_notifications": {"on_failure": [{"id": dest.destination_id}]}}
        )
        child = _child(tmp_path, store_url, "send")
        try:
            wait_for(lambda: hooks.to("/h") or None, timeout=30, what="the child's webhook request")
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(30)
        hooks.hold.clear()
        (note,) = outbox.list_notifications(store)
        assert (note.state, note.attempts) == ("PENDING", 1), "the claim was committed before sending"
        # Within its lease nobody else sends it...
        assert Notifier(store, fast()).tick(now_ms()).dispatched == 0
        # ... after the lease (the clock moved on) the next notifier does, once.
        later = Notifier(store, fast(), clock=lambda: now_ms() + 10 * 60_000)
        later.flush(10)
    first, second = hooks.to("/h")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    (note,) = outbox.list_notifications(store)
    assert (note.state, note.attempts) == ("SENT", 2)
    attempts = outbox.list_attempts(store, note.notification_key)
    assert [(a.attempt_number, a.ok) for a in attempts] == [(2, True)], "the killed attempt left no outcome"
