"""Which notifications a run and its task runs call for: pure functions of store records and the time.

The rules (docs/guide/notifications.md has the table):

- ``on_start``: a job run that left the queue and began (not a skipped run, not a repair); a task run whose
  process was launched (not a retry when ``alert_on_last_attempt``).
- ``on_success``: result SUCCESS or SUCCESS_WITH_FAILURES ("a job that succeeded with failures is
  considered successful" in Databricks' docs).
- ``on_failure``: life cycle INTERNAL_ERROR, result FAILED or TIMEDOUT; also CANCELED unless
  ``no_alert_for_canceled_runs``, and skipped runs (life cycle SKIPPED / MAXIMUM_CONCURRENT_RUNS_REACHED,
  for tasks UPSTREAM_FAILED) unless ``no_alert_for_skipped_runs``. A task's UPSTREAM_CANCELED is a canceled
  run. With ``alert_on_last_attempt`` a task's failure notifies only when no retry follows it.
  EXCLUDED and DISABLED tasks notify nothing.
- ``on_duration_warning_threshold_exceeded``: once per run (and per repair) or task run, when its duration
  passes the ``health`` rule ``RUN_DURATION_SECONDS GREATER_THAN n``: while it runs, or at its end if it
  ended before a scan caught it running.
- Condition tasks notify nothing. For-each iterations follow the nested task's settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sluice.states import LifeCycleState, ResultState
from sluice.store.records import RunRecord, TaskRunRecord


class Event(StrEnum):
    ON_START = "on_start"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ON_DURATION_WARNING = "on_duration_warning_threshold_exceeded"


Outcome = Literal["success", "failure", "canceled", "skipped"]

_OUTCOMES: dict[str, Outcome] = {
    ResultState.SUCCESS: "success",
    ResultState.SUCCESS_WITH_FAILURES: "success",
    ResultState.FAILED: "failure",
    ResultState.TIMEDOUT: "failure",
    ResultState.CANCELED: "canceled",
    ResultState.UPSTREAM_CANCELED: "canceled",
    ResultState.MAXIMUM_CONCURRENT_RUNS_REACHED: "skipped",
    ResultState.UPSTREAM_FAILED: "skipped",
}


def outcome_of(state: str, result_state: str | None) -> Outcome | None:
    """What a terminal run's result means for notifications; None for "nothing to say" (or not terminal)."""
    if state == LifeCycleState.INTERNAL_ERROR:
        return "failure"
    if state == LifeCycleState.SKIPPED:
        return "skipped"
    if state != LifeCycleState.TERMINATED or result_state is None:
        return None
    return _OUTCOMES.get(result_state)


@dataclass(frozen=True)
class Recipients:
    emails: tuple[str, ...] = ()
    #: Notification destination ids.
    webhooks: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.emails or self.webhooks)


@dataclass(frozen=True)
class Notice:
    """One event of one job run or task run, with who hears of it."""

    #: ``job:<run id>:<repair count>`` or ``task:<task run id>``: with event and destination, the outbox key.
    subject: str
    event: Event
    facts: dict[str, Any]
    recipients: Recipients


def recipients_for(holder: Mapping[str, Any], event: Event, outcome: Outcome | None = None) -> Recipients:
    """Who ``holder`` (JobSettings or Task settings, as JSON) notifies of ``event`` with ``outcome``."""
    emails_conf = holder.get("email_notifications") or {}
    hooks_conf = holder.get("webhook_notifications") or {}
    settings = holder.get("notification_settings") or {}
    emails = tuple(emails_conf.get(event.value) or ())
    webhooks = tuple(str(w["id"]) for w in hooks_conf.get(event.value) or () if w.get("id"))
    if event is Event.ON_FAILURE and outcome == "canceled" and settings.get("no_alert_for_canceled_runs"):
        return Recipients()
    if event is Event.ON_FAILURE and outcome == "skipped":
        if settings.get("no_alert_for_skipped_runs"):
            return Recipients()
        if emails_conf.get("no_alert_for_skipped_runs"):  # the deprecated flag silences email only
            emails = ()
    return Recipients(emails, webhooks)


def duration_threshold_s(holder: Mapping[str, Any]) -> int | None:
    """The ``RUN_DURATION_SECONDS GREATER_THAN n`` health rule's n, or None."""
    for rule in (holder.get("health") or {}).get("rules") or ():
        if rule.get("metric") == "RUN_DURATION_SECONDS" and rule.get("op") == "GREATER_THAN":
            return int(rule["value"])
    return None


def _terminal_event(outcome: Outcome | None) -> Event | None:
    if outcome is None:
        return None
    return Event.ON_SUCCESS if outcome == "success" else Event.ON_FAILURE


def _duration_ms(start: int, end: int) -> int:
    return max(0, end - start) if start and end else 0


def run_facts(run: RunRecord, event: Event, *, now: int) -> dict[str, Any]:
    end = run.end_time
    return {
        "event": event.value,
        "level": "job",
        "job_id": run.job_id,
        "job_name": str(run.settings.get("name") or run.run_name),
        "run_id": run.run_id,
        "run_name": run.run_name,
        "life_cycle_state": run.state,
        "result_state": run.result_state,
        "message": run.state_message,
        "start_time": run.start_time,
        "end_time": end,
        "duration_ms": _duration_ms(
            run.start_time, end or (now if event is Event.ON_DURATION_WARNING else 0)
        ),
    }


def task_facts(run: RunRecord, tr: TaskRunRecord, event: Event, *, now: int) -> dict[str, Any]:
    facts = run_facts(run, event, now=now)
    end = tr.end_time or (now if event is Event.ON_DURATION_WARNING else 0)
    facts.update(
        level="task",
        task_key=tr.task_key,
        task_run_id=tr.run_id,
        attempt_number=tr.attempt_number,
        life_cycle_state=tr.state,
        result_state=tr.result_state,
        message=tr.state_message or tr.error or "",
        start_time=tr.start_time,
        end_time=tr.end_time,
        duration_ms=_duration_ms(tr.start_time, end),
    )
    if tr.iteration is not None:
        facts["iteration"] = tr.iteration
    return facts


def job_notices(run: RunRecord, *, now: int, repair_start: Callable[[], int]) -> list[Notice]:
    """The job-level notices of ``run`` as it is now (each is recorded once; re-deriving is harmless)."""
    settings = run.settings
    subject = f"job:{run.run_id}:{run.repair_count}"
    out: list[Notice] = []

    def add(event: Event, outcome: Outcome | None = None) -> None:
        recipients = recipients_for(settings, event, outcome)
        if recipients:
            out.append(Notice(subject, event, run_facts(run, event, now=now), recipients))

    started = run.start_time > 0 and run.state not in (LifeCycleState.QUEUED, LifeCycleState.SKIPPED)
    if started and run.repair_count == 0:
        add(Event.ON_START)
    outcome = outcome_of(run.state, run.result_state)
    event = _terminal_event(outcome)
    if event is not None:
        add(event, outcome)
    threshold = duration_threshold_s(settings)
    if threshold is not None and started:
        base = max(run.start_time, repair_start() if run.repair_count else 0)
        if (run.end_time or now) - base > threshold * 1000:
            facts = run_facts(run, Event.ON_DURATION_WARNING, now=now)
            facts.update(threshold_seconds=threshold, duration_ms=(run.end_time or now) - base)
            recipients = recipients_for(settings, Event.ON_DURATION_WARNING)
            if recipients:
                out.append(Notice(subject, Event.ON_DURATION_WARNING, facts, recipients))
    return out


def _task_settings(run: RunRecord, tr: TaskRunRecord) -> Mapping[str, Any] | None:
    """The settings of the task a task run runs (a for-each iteration: the nested task)."""
    for task in run.settings.get("tasks") or ():
        if task.get("task_key") == tr.task_key and tr.parent_task_run_id is None:
            return task  # type: ignore[no-any-return]
        nested = (task.get("for_each_task") or {}).get("task") or {}
        if tr.parent_task_run_id is not None and nested.get("task_key") == tr.task_key:
            return nested
    return None


def task_notices(
    run: RunRecord, task_runs: Sequence[TaskRunRecord], *, now: int, retried: set[int]
) -> list[Notice]:
    """The task-level notices of ``task_runs``; ``retried`` holds the ids of attempts that a retry follows."""
    out: list[Notice] = []
    for tr in task_runs:
        task = _task_settings(run, tr)
        if task is None or "condition_task" in task:
            continue
        out.extend(_one_task(run, tr, task, now=now, retried=tr.run_id in retried))
    return out


def _one_task(
    run: RunRecord, tr: TaskRunRecord, task: Mapping[str, Any], *, now: int, retried: bool
) -> list[Notice]:
    last_only = bool((task.get("notification_settings") or {}).get("alert_on_last_attempt"))
    subject = f"task:{tr.run_id}"
    out: list[Notice] = []

    def add(event: Event, outcome: Outcome | None = None, **extra: Any) -> None:
        recipients = recipients_for(task, event, outcome)
        if recipients:
            facts = task_facts(run, tr, event, now=now)
            facts.update(extra)
            out.append(Notice(subject, event, facts, recipients))

    if tr.start_time > 0 and not (last_only and tr.attempt_number > 0):
        add(Event.ON_START)
    outcome = outcome_of(tr.state, tr.result_state)
    event = _terminal_event(outcome)
    if event is not None and not (
        event is Event.ON_FAILURE and outcome == "failure" and last_only and retried
    ):
        add(event, outcome)
    threshold = duration_threshold_s(task)
    if threshold is not None and tr.start_time > 0:
        running = tr.state == LifeCycleState.RUNNING
        elapsed = (now if running else tr.end_time) - tr.start_time
        if (running or tr.end_time) and elapsed > threshold * 1000:
            add(Event.ON_DURATION_WARNING, threshold_seconds=threshold, duration_ms=elapsed)
    return out
