"""What the Jobs UI shows: states in words, the repair dialog's preselection, triggers in words."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sluice.store.records import RunRecord, TaskRunRecord
from sluice.triggers import trigger_words
from sluice.web.views import downstream, repair_preselection, state_of

TASKS: list[dict[str, Any]] = [
    {"task_key": "ingest"},
    {"task_key": "clean", "depends_on": [{"task_key": "ingest"}]},
    {"task_key": "gold", "depends_on": [{"task_key": "clean"}]},
    {"task_key": "audit", "depends_on": [{"task_key": "ingest"}]},
    {"task_key": "report", "depends_on": [{"task_key": "gold"}, {"task_key": "audit"}]},
]


def _run() -> RunRecord:
    return RunRecord(
        run_id=1, job_id=1, run_name="r", run_type="JOB_RUN", trigger="ONE_TIME", state="TERMINATED",
        result_state="FAILED", state_message="", termination_code=None, termination_type=None,
        queue_reason=None, settings={"tasks": TASKS}, job_parameters=[], overriding_parameters={},
        start_time=1, end_time=2, queue_time=0, created_time=1,
    )  # fmt: skip


def _tr(run_id: int, key: str, result: str, attempt: int = 0) -> TaskRunRecord:
    return TaskRunRecord(
        run_id=run_id, job_run_id=1, task_key=key, attempt_number=attempt, state="TERMINATED",
        result_state=result, state_message="", start_time=1, end_time=2, created_time=1,
    )  # fmt: skip


def test_every_state_has_words_not_only_a_colour() -> None:
    assert state_of("RUNNING", None) == ("running", "Running")
    assert state_of("TERMINATED", "UPSTREAM_FAILED") == ("upstream", "Upstream failed")
    assert state_of("TERMINATED", "TIMEDOUT") == ("failed", "Timed out")
    assert state_of("SKIPPED", None) == ("skipped", "Skipped")


def test_repair_preselects_failed_tasks_and_their_dependents() -> None:
    runs = [
        _tr(2, "ingest", "SUCCESS"),
        _tr(3, "clean", "FAILED"),
        _tr(4, "audit", "SUCCESS"),
        _tr(5, "gold", "UPSTREAM_FAILED"),
        _tr(6, "report", "UPSTREAM_FAILED"),
    ]
    assert repair_preselection(_run(), runs) == {"clean", "gold", "report"}
    # A retry that succeeded is the latest attempt: nothing to repair there.
    fixed = [*runs[:1], replace(runs[1], result_state="FAILED"), _tr(9, "clean", "SUCCESS", attempt=1)]
    assert repair_preselection(_run(), fixed) == set()
    assert downstream(TASKS, {"audit"}) == {"audit", "report"}


def test_triggers_in_words_with_the_next_fire_time() -> None:
    now = 1_780_000_000_000  # 2026-05-28T20:26:40Z
    words, next_fire, paused = trigger_words(
        {"schedule": {"quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "UTC"}}, now
    )
    assert (words, next_fire, paused) == ("Cron 0 30 2 * * ? (UTC)", "2026-05-29 02:30 UTC", False)
    paused_words = trigger_words(
        {"trigger": {"pause_status": "PAUSED", "periodic": {"interval": 4, "unit": "HOURS"}}}, now
    )
    assert paused_words == ("Every 4 hours", "", True)
    assert trigger_words({}, now) == ("Manual", "", None)


def test_log_chunks_never_split_a_character(tmp_path: Path) -> None:
    from sluice.web.pages import LOG_CHUNK, _read_from

    log = tmp_path / "stdout.log"
    log.write_bytes(b"a" * (LOG_CHUNK - 1) + "é!".encode())
    first, size = _read_from(log, 0)
    assert (len(first), size) == (LOG_CHUNK - 1, LOG_CHUNK + 2)
    second, _ = _read_from(log, len(first))
    assert second.decode() == "é!"
    assert _read_from(tmp_path / "missing.log", 0) == (b"", 0)


def test_periodic_triggers_have_a_next_fire_time_from_the_schedulers_anchor() -> None:
    now = 1_780_000_000_000  # 2026-05-28T20:26:40Z
    every_4h = {"trigger": {"periodic": {"interval": 4, "unit": "HOURS"}}}
    anchor = now - 3 * 3_600_000 - 1_800_000  # seen 3.5 h ago: next slot in 30 min
    assert trigger_words(every_4h, now, anchor) == ("Every 4 hours", "2026-05-28 20:56 UTC", False)
    # Not seen by a scheduler yet: its first slot is one interval after it is.
    assert trigger_words(every_4h, now) == ("Every 4 hours", "2026-05-29 00:26 UTC", False)
    assert trigger_words({"trigger": {"periodic": {"interval": 1, "unit": "DAYS"}}}, now)[0] == "Every day"


def test_event_triggers_are_described_in_words() -> None:
    now = 1_780_000_000_000
    files = {
        "trigger": {
            "file_arrival": {
                "url": "/Volumes/main/raw/landing/",
                "min_time_between_triggers_seconds": 300,
                "wait_after_last_change_seconds": 90,
            }
        }
    }
    assert trigger_words(files, now) == (
        "When new files arrive in /Volumes/main/raw/landing/ "
        "(once nothing has changed for 90 s, at most once every 5 min)",
        "",
        False,
    )
    tables = {
        "trigger": {"table_update": {"table_names": ["main.a.x", "main.a.y"], "condition": "ALL_UPDATED"}}
    }
    assert trigger_words(tables, now)[0] == "When all of the tables main.a.x, main.a.y have been updated"
    tables["trigger"]["table_update"]["condition"] = "ANY_UPDATED"
    assert trigger_words(tables, now)[0] == "When any of the tables main.a.x, main.a.y is updated"
    one = {"trigger": {"pause_status": "PAUSED", "table_update": {"table_names": ["main.a.x"]}}}
    assert trigger_words(one, now) == ("When table main.a.x is updated", "", True)
    continuous = {"continuous": {"pause_status": "UNPAUSED"}}
    assert trigger_words(continuous, now) == (
        "Continuous: a new run starts as soon as the last one ends",
        "",
        False,
    )


def test_an_unknown_periodic_anchor_gives_no_guess_when_asked_not_to() -> None:
    every_4h = {"trigger": {"periodic": {"interval": 4, "unit": "HOURS"}}}
    assert trigger_words(every_4h, 1_780_000_000_000, None, estimate=False) == ("Every 4 hours", "", False)
