"""Which notifications runs and task runs call for, and how messages render (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sluice.notify import render
from sluice.notify.events import Event, Notice, job_notices, outcome_of, task_notices
from sluice.notify.settings import NotifySettings, run_page_url
from sluice.store.records import RunRecord, TaskRunRecord

ALL_EVENTS = ("on_start", "on_success", "on_failure", "on_duration_warning_threshold_exceeded")


def everyone(**extra: Any) -> dict[str, Any]:
    """Email ``a@x`` and webhook ``d1`` on every event, plus ``extra`` settings."""
    return {
        "email_notifications": {e: ["a@x"] for e in ALL_EVENTS},
        "webhook_notifications": {e: [{"id": "d1"}] for e in ALL_EVENTS},
        **extra,
    }


def run(
    settings: dict[str, Any], *, state: str = "RUNNING", result: str | None = None, **fields: Any
) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": 7,
        "job_id": 3,
        "run_name": "etl",
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "state": state,
        "result_state": result,
        "state_message": "",
        "termination_code": None,
        "termination_type": None,
        "queue_reason": None,
        "settings": {"name": "etl", **settings},
        "job_parameters": [],
        "overriding_parameters": {},
        "start_time": 1_000_000,
        "end_time": 0 if state in ("RUNNING", "PENDING", "QUEUED") else 1_003_000,
        "queue_time": 0,
        "created_time": 1_000_000,
    }
    values.update(fields)
    return RunRecord(**values)


def task_run(
    key: str = "t", *, state: str = "RUNNING", result: str | None = None, **fields: Any
) -> TaskRunRecord:
    values: dict[str, Any] = {
        "run_id": 100,
        "job_run_id": 7,
        "task_key": key,
        "attempt_number": 0,
        "state": state,
        "result_state": result,
        "state_message": "",
        "start_time": 1_000_500,
        "end_time": 0 if state == "RUNNING" else 1_002_000,
        "created_time": 1_000_000,
    }
    values.update(fields)
    return TaskRunRecord(**values)


def events_of(notices: list[Notice]) -> list[str]:
    return [n.event.value for n in notices]


@pytest.mark.parametrize(
    ("state", "result", "outcome"),
    [
        ("TERMINATED", "SUCCESS", "success"),
        ("TERMINATED", "SUCCESS_WITH_FAILURES", "success"),
        ("TERMINATED", "FAILED", "failure"),
        ("TERMINATED", "TIMEDOUT", "failure"),
        ("INTERNAL_ERROR", "FAILED", "failure"),
        ("TERMINATED", "CANCELED", "canceled"),
        ("TERMINATED", "UPSTREAM_CANCELED", "canceled"),
        ("SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "skipped"),
        ("TERMINATED", "UPSTREAM_FAILED", "skipped"),
        ("TERMINATED", "EXCLUDED", None),
        ("TERMINATED", "DISABLED", None),
        ("RUNNING", None, None),
    ],
)
def test_outcome_of_results(state: str, result: str | None, outcome: str | None) -> None:
    assert outcome_of(state, result) == outcome


def test_job_start_and_end_notices() -> None:
    assert events_of(job_notices(run(everyone()), now=1_000_100, repair_start=lambda: 0)) == ["on_start"]
    ended = run(everyone(), state="TERMINATED", result="SUCCESS_WITH_FAILURES")
    assert events_of(job_notices(ended, now=1_003_000, repair_start=lambda: 0)) == ["on_start", "on_success"]
    failed = job_notices(
        run(everyone(), state="TERMINATED", result="TIMEDOUT"), now=0, repair_start=lambda: 0
    )
    assert events_of(failed) == ["on_start", "on_failure"]
    assert failed[1].recipients.emails == ("a@x",)
    assert failed[1].recipients.webhooks == ("d1",)
    assert failed[1].subject == "job:7:0"


def test_queued_and_skipped_runs_do_not_start() -> None:
    assert job_notices(run(everyone(), state="QUEUED", start_time=0), now=5, repair_start=lambda: 0) == []
    skipped = run(everyone(), state="SKIPPED", result="MAXIMUM_CONCURRENT_RUNS_REACHED")
    assert events_of(job_notices(skipped, now=5, repair_start=lambda: 0)) == ["on_failure"]


@pytest.mark.parametrize(
    ("flags", "emails", "webhooks"),
    [
        ({}, ("a@x",), ("d1",)),
        ({"notification_settings": {"no_alert_for_skipped_runs": True}}, (), ()),
        # The deprecated flag inside email_notifications silences email only.
        ({"deprecated": True}, (), ("d1",)),
    ],
)
def test_skipped_run_suppression(
    flags: dict[str, Any], emails: tuple[str, ...], webhooks: tuple[str, ...]
) -> None:
    settings = everyone()
    if flags.pop("deprecated", False):
        settings["email_notifications"]["no_alert_for_skipped_runs"] = True
    settings.update(flags)
    skipped = run(settings, state="SKIPPED", result="MAXIMUM_CONCURRENT_RUNS_REACHED")
    notices = job_notices(skipped, now=5, repair_start=lambda: 0)
    got = [(n.recipients.emails, n.recipients.webhooks) for n in notices if n.event is Event.ON_FAILURE]
    assert got == ([(emails, webhooks)] if emails or webhooks else [])


def test_canceled_run_suppression() -> None:
    canceled = run(everyone(), state="TERMINATED", result="CANCELED")
    assert "on_failure" in events_of(job_notices(canceled, now=5, repair_start=lambda: 0))
    muted = replace(
        canceled,
        settings={**canceled.settings, "notification_settings": {"no_alert_for_canceled_runs": True}},
    )
    assert events_of(job_notices(muted, now=5, repair_start=lambda: 0)) == ["on_start"]


def test_job_duration_warning_once_past_the_threshold() -> None:
    health = {"health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 10}]}}
    going = run(everyone(**health))
    assert events_of(job_notices(going, now=1_010_000, repair_start=lambda: 0)) == ["on_start"]
    late = job_notices(going, now=1_010_001, repair_start=lambda: 0)
    assert events_of(late) == ["on_start", "on_duration_warning_threshold_exceeded"]
    assert late[1].facts["threshold_seconds"] == 10
    assert late[1].facts["duration_ms"] == 10_001
    # A repair measures from the repair's start, under its own key.
    repaired = replace(going, repair_count=1)
    assert events_of(job_notices(repaired, now=1_050_000, repair_start=lambda: 1_045_000)) == []
    warned = job_notices(repaired, now=1_056_000, repair_start=lambda: 1_045_000)
    assert events_of(warned) == ["on_duration_warning_threshold_exceeded"]
    assert warned[0].subject == "job:7:1"
    no_rule = run(everyone())
    assert events_of(job_notices(no_rule, now=9_999_999, repair_start=lambda: 0)) == ["on_start"]


def test_task_notices_follow_the_task_settings() -> None:
    settings = {"tasks": [{"task_key": "t", **everyone()}, {"task_key": "quiet"}]}
    r = run(settings)
    failed = task_run(state="TERMINATED", result="FAILED", state_message="ValueError: bad row")
    notices = task_notices(r, [failed, task_run("quiet", run_id=101)], now=5, retried=set())
    assert events_of(notices) == ["on_start", "on_failure"]
    assert notices[1].subject == "task:100"
    assert notices[1].facts["message"] == "ValueError: bad row"
    assert notices[1].facts["task_key"] == "t"


def test_alert_on_last_attempt() -> None:
    task = {"task_key": "t", **everyone(notification_settings={"alert_on_last_attempt": True})}
    r = run({"tasks": [task]})
    first = task_run(state="TERMINATED", result="FAILED")
    retry = task_run(
        state="TERMINATED", result="FAILED", run_id=101, attempt_number=1, original_attempt_run_id=100
    )
    notices = task_notices(r, [first, retry], now=5, retried={100})
    assert [(n.subject, n.event.value) for n in notices] == [
        ("task:100", "on_start"),  # no on_start for the retry, no on_failure for the retried attempt
        ("task:101", "on_failure"),
    ]
    plain = run({"tasks": [{"task_key": "t", **everyone()}]})
    assert len(task_notices(plain, [first, retry], now=5, retried={100})) == 4


def test_condition_tasks_notify_nothing_and_iterations_use_the_nested_task() -> None:
    nested = {"task_key": "each", **everyone()}
    settings = {
        "tasks": [
            {"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}, **everyone()},
            {"task_key": "loop", "for_each_task": {"inputs": "[1,2]", "task": nested}},
        ]
    }
    r = run(settings)
    condition = task_run("c", state="TERMINATED", result="SUCCESS")
    iteration = task_run("each", run_id=102, parent_task_run_id=101, iteration=1)
    notices = task_notices(r, [condition, iteration], now=5, retried=set())
    assert [(n.subject, n.event.value, n.facts.get("iteration")) for n in notices] == [
        ("task:102", "on_start", 1)
    ]


def test_task_duration_warning_while_running() -> None:
    health = {"health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 2}]}}
    r = run({"tasks": [{"task_key": "t", **everyone(**health)}]})
    assert events_of(task_notices(r, [task_run()], now=1_002_500, retried=set())) == ["on_start"]
    warned = task_notices(r, [task_run()], now=1_002_501, retried=set())
    assert events_of(warned) == ["on_start", "on_duration_warning_threshold_exceeded"]


FACTS: dict[str, Any] = {
    "event": "on_failure",
    "level": "task",
    "job_id": 3,
    "job_name": "nightly <etl>",
    "run_id": 7,
    "run_name": "nightly",
    "task_key": "silver",
    "task_run_id": 100,
    "attempt_number": 2,
    "life_cycle_state": "TERMINATED",
    "result_state": "FAILED",
    "message": "ValueError: bad <row> 7",
    "start_time": 1_700_000_000_000,
    "end_time": 1_700_000_125_000,
    "duration_ms": 125_000,
}


def test_email_rendering_names_job_run_task_result_error_duration_and_link() -> None:
    base = "https://sluice.example.com"
    assert (
        render.subject(FACTS) == "[Sluice] Failed: task 'silver' of job 'nightly <etl>' run 7 ended: FAILED"
    )
    text = render.email_text(FACTS, base)
    for expected in (
        "Job:      nightly <etl> (job 3)",
        "Run:      7 (nightly)",
        "Task:     silver (task run 100, attempt 2)",
        "Result:   FAILED",
        "Message:  ValueError: bad <row> 7",
        "Started:  2023-11-14 22:13:20 UTC",
        "Duration: 2 min 05 s",
        "Link:     https://sluice.example.com/jobs/3/runs/7",
    ):
        assert expected in text, text
    html = render.email_html(FACTS, base)
    assert "bad &lt;row&gt; 7" in html
    assert "<row>" not in html
    assert '<a href="https://sluice.example.com/jobs/3/runs/7">' in html
    assert "Link:     sluice runs get 7" in render.email_text(FACTS, None)


def test_webhook_payloads() -> None:
    slack = render.slack_payload(FACTS, None)
    assert slack["text"].startswith("[Sluice] Failed: task 'silver'")
    assert "bad &lt;row&gt; 7" in str(slack["blocks"])
    generic = render.webhook_payload(FACTS, "http://h", notification_id="task:100:on_failure:webhook:d1")
    assert generic["event_type"] == "jobs.on_failure"
    assert generic["task"] == {"task_key": "silver", "task_run_id": 100, "attempt_number": 2}
    assert generic["run"]["run_page_url"] == "http://h/jobs/3/runs/7"
    assert generic["state"]["result_state"] == "FAILED"
    assert generic["duration_ms"] == 125_000


def test_settings_from_env() -> None:
    s = NotifySettings.from_env(
        {"SLUICE_SMTP_HOST": "mail", "SLUICE_SMTP_TLS": "STARTTLS", "SLUICE_BASE_URL": "http://x/"}
    )
    assert (s.smtp_host, s.smtp_port, s.smtp_tls, s.base_url) == ("mail", 587, "starttls", "http://x")
    assert NotifySettings.from_env({"SLUICE_SMTP_TLS": "ssl"}).smtp_port == 465
    with pytest.raises(Exception, match="SLUICE_SMTP_TLS='tls' is not one of none, starttls, ssl"):
        NotifySettings.from_env({"SLUICE_SMTP_TLS": "tls"})
    assert run_page_url(None, 1, 2) is None
    assert run_page_url("http://x", None, 2) == "http://x/jobs/runs/2"  # a one-time run: no job
    assert [NotifySettings(backoff_base_ms=100, backoff_max_ms=500).backoff_ms(n) for n in (1, 2, 3, 4)] == [
        100,
        200,
        400,
        500,
    ]
