"""Messages from an event's facts: email (subject, plain text, HTML), Slack and generic webhook payloads.

Pure functions of the facts recorded in the outbox (``sluice.notify.events``) and the base URL.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from sluice.notify.settings import run_page_url

_EVENT_TITLES = {
    "on_start": "Started",
    "on_success": "Succeeded",
    "on_failure": "Failed",
    "on_duration_warning_threshold_exceeded": "Running long",
}


def _time(ms: int) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_text(ms: int) -> str:
    """``950 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def headline(facts: dict[str, Any]) -> str:
    """One line: what happened to which job, task and run."""
    event = facts["event"]
    what = f"job '{facts['job_name']}' run {facts['run_id']}"
    if facts.get("level") == "task":
        iteration = f" iteration {facts['iteration']}" if facts.get("iteration") is not None else ""
        what = f"task '{facts['task_key']}'{iteration} of {what}"
    if event == "on_duration_warning_threshold_exceeded":
        return f"{what} has run longer than {facts.get('threshold_seconds')} s"
    if event == "on_start":
        return f"{what} started"
    result = facts.get("result_state") or facts.get("life_cycle_state")
    return f"{what} ended: {result}"


def subject(facts: dict[str, Any]) -> str:
    return f"[Sluice] {_EVENT_TITLES.get(facts['event'], facts['event'])}: {headline(facts)}"


def detail_rows(facts: dict[str, Any], base_url: str | None) -> list[tuple[str, str]]:
    """The (label, value) lines every message shows, empty values left out."""
    job = (
        f"{facts['job_name']} (job {facts['job_id']})"
        if facts.get("job_id") is not None
        else facts["job_name"]
    )
    rows = [("Job", job), ("Run", f"{facts['run_id']} ({facts.get('run_name') or ''})".replace(" ()", ""))]
    if facts.get("level") == "task":
        task = (
            f"{facts['task_key']} (task run {facts['task_run_id']}, attempt {facts.get('attempt_number', 0)})"
        )
        rows.append(("Task", task))
    state = facts.get("result_state") or facts.get("life_cycle_state") or ""
    rows += [
        ("Event", str(facts["event"])),
        ("Result" if facts.get("result_state") else "State", str(state)),
        ("Message", str(facts.get("message") or "")),
        ("Started", _time(int(facts.get("start_time") or 0))),
        ("Ended", _time(int(facts.get("end_time") or 0))),
        ("Duration", duration_text(int(facts["duration_ms"])) if facts.get("duration_ms") else ""),
    ]
    if facts.get("threshold_seconds") is not None:
        rows.append(("Threshold", f"{facts['threshold_seconds']} s (health rule RUN_DURATION_SECONDS)"))
    link = run_page_url(base_url, facts.get("job_id"), int(facts["run_id"]))
    rows.append(("Link", link or f"sluice runs get {facts['run_id']}"))
    return [(label, value) for label, value in rows if value]


def email_text(facts: dict[str, Any], base_url: str | None) -> str:
    lines = [headline(facts), ""]
    width = max(len(label) for label, _ in detail_rows(facts, base_url))
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in detail_rows(facts, base_url)]
    return "\n".join(lines) + "\n"


def email_html(facts: dict[str, Any], base_url: str | None) -> str:
    cells = []
    for label, value in detail_rows(facts, base_url):
        shown = html.escape(value)
        if label == "Link" and value.startswith(("http://", "https://")):
            shown = f'<a href="{html.escape(value, quote=True)}">{shown}</a>'
        elif label == "Message":
            shown = f'<pre style="white-space: pre-wrap; margin: 0">{shown}</pre>'
        cells.append(
            f'<tr><th style="text-align: left; padding-right: 1em; vertical-align: top">'
            f"{html.escape(label)}</th><td>{shown}</td></tr>"
        )
    return (
        "<!DOCTYPE html><html><body>"
        f"<p><strong>{html.escape(headline(facts))}</strong></p>"
        f"<table>{''.join(cells)}</table>"
        "</body></html>"
    )


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(facts: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the fallback and notification line) plus blocks."""
    rows = detail_rows(facts, base_url)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value[:500])}"}
        for label, value in rows
        if label not in ("Message", "Link")
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(subject(facts))}*"}},
        {"type": "section", "fields": fields[:10]},
    ]
    message = str(facts.get("message") or "")
    if message:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_slack_escape(message[:2900])}```"}}
        )
    link = run_page_url(base_url, facts.get("job_id"), int(facts["run_id"]))
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the run>"}]})
    return {"text": subject(facts), "blocks": blocks}


def webhook_payload(facts: dict[str, Any], base_url: str | None, *, notification_id: str) -> dict[str, Any]:
    """The generic webhook body: Databricks' shape (``event_type``, ``run``, ``job``, ``task``) plus the
    result, message, times and link. ``notification_id`` is the same on every re-send (deduplicate on it)."""
    payload: dict[str, Any] = {
        "event_type": f"jobs.{facts['event']}",
        "notification_id": notification_id,
        "job": {"job_id": facts.get("job_id"), "name": facts["job_name"]},
        "run": {
            "run_id": facts["run_id"],
            "run_name": facts.get("run_name"),
            "run_page_url": run_page_url(base_url, facts.get("job_id"), int(facts["run_id"])),
        },
        # The state and times of what the event is about: the task run for task events, else the job run.
        "state": {
            "life_cycle_state": facts.get("life_cycle_state"),
            "result_state": facts.get("result_state"),
            "state_message": facts.get("message") or "",
        },
        "start_time": facts.get("start_time") or 0,
        "end_time": facts.get("end_time") or 0,
        "duration_ms": facts.get("duration_ms") or 0,
        "text": subject(facts),
    }
    if facts.get("level") == "task":
        payload["task"] = {
            "task_key": facts["task_key"],
            "task_run_id": facts["task_run_id"],
            "attempt_number": facts.get("attempt_number", 0),
        }
        if facts.get("iteration") is not None:
            payload["task"]["iteration"] = facts["iteration"]
    if facts.get("threshold_seconds") is not None:
        payload["health"] = {
            "metric": "RUN_DURATION_SECONDS",
            "op": "GREATER_THAN",
            "value": facts["threshold_seconds"],
        }
    return payload
