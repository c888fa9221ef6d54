"""What the pages show, computed from store records (no HTTP here): states in words, triggers in words,
durations, the runs matrix, the repair preselection, the live snapshot of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from markupsafe import Markup, escape

from sluice.engine.repair import latest_task_runs
from sluice.notify.settings import run_page_path
from sluice.store.records import RunRecord, TaskRunRecord
from sluice.web.graph import NodeState

_ACTIVE = {
    "QUEUED": ("queued", "Queued"),
    "PENDING": ("pending", "Pending"),
    "BLOCKED": ("pending", "Blocked"),
    "WAITING_FOR_RETRY": ("pending", "Waiting for retry"),
    "RUNNING": ("running", "Running"),
    "TERMINATING": ("running", "Terminating"),
}
_RESULT = {
    "SUCCESS": ("succeeded", "Succeeded"),
    "SUCCESS_WITH_FAILURES": ("warning", "Succeeded with failures"),
    "FAILED": ("failed", "Failed"),
    "TIMEDOUT": ("failed", "Timed out"),
    "CANCELED": ("canceled", "Canceled"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("skipped", "Skipped (concurrency)"),
    "EXCLUDED": ("skipped", "Excluded"),
    "UPSTREAM_FAILED": ("upstream", "Upstream failed"),
    "UPSTREAM_CANCELED": ("upstream", "Upstream canceled"),
    "DISABLED": ("skipped", "Disabled"),
}
#: A mark per css state for the jobs list's squares (beside the words in tooltip and screen-reader text).
MARKS = {
    "succeeded": "✓",
    "failed": "✕",
    "running": "▶",
    "pending": "…",
    "queued": "…",
    "skipped": "\u2013",  # an en dash
    "canceled": "⊘",
    "upstream": "↑",
    "warning": "!",
}
#: Results a repair re-runs by default (with every task downstream of them).
REPAIRABLE = {
    "FAILED",
    "TIMEDOUT",
    "CANCELED",
    "UPSTREAM_FAILED",
    "UPSTREAM_CANCELED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED",
}


def state_of(state: str, result_state: str | None) -> tuple[str, str]:
    """``(css, words)`` for a life cycle state and result: the text label goes wherever the colour does."""
    if state in _ACTIVE:
        return _ACTIVE[state]
    if result_state in _RESULT:
        return _RESULT[result_state or ""]
    if state == "SKIPPED":
        return "skipped", "Skipped"
    if state == "INTERNAL_ERROR":
        return "failed", "Internal error"
    return "pending", state.title()


def duration(start: int, end: int, now: int) -> str:
    """``1h 2m``, ``3m 4s``, ``15s``, ``0.8s``: from start to end (or now while running); '' before it
    starts."""
    if not start:
        return ""
    ms = max(0, (end or now) - start)
    if ms < 10_000:
        return f"{ms / 1000:.1f}s"
    seconds = ms // 1000
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds}s"


def when(ms: int | None) -> str:
    """A time as ``2026-12-06 20:41:07 UTC``; '' for none."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Attempt(Protocol):
    """What the pages read of a task run (a TaskRunRecord or the store's narrower TaskRunState)."""

    @property
    def run_id(self) -> int: ...
    @property
    def task_key(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def result_state(self) -> str | None: ...
    @property
    def start_time(self) -> int: ...
    @property
    def end_time(self) -> int: ...
    @property
    def parent_task_run_id(self) -> int | None: ...


def node_states(run: RunRecord, task_runs: Sequence[TaskRunRecord], now: int) -> dict[str, NodeState]:
    """Each task's look in ``run``: state colour, words and duration, a link to its task run page."""
    out: dict[str, NodeState] = {}
    for key, tr in latest_task_runs(task_runs).items():
        css, words = state_of(tr.state, tr.result_state)
        took = duration(tr.start_time, tr.end_time, now)
        out[key] = NodeState(
            css, f"{words} · {took}" if took else words, run_page_path(run.job_id, tr.run_id)
        )
    return out


def snapshot(run: RunRecord, task_runs: Sequence[TaskRunRecord], now: int) -> dict[str, Any]:
    """What the run page's script applies on each server-sent event."""
    css, words = state_of(run.state, run.result_state)
    return {
        "run": {
            "css": css,
            "text": words,
            "message": run.state_message,
            "terminal": run.state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"),
            "duration": duration(run.start_time, run.end_time, now),
        },
        "tasks": {
            k: {"css": s.css, "text": s.text, "href": s.href}
            for k, s in node_states(run, task_runs, now).items()
        },
    }


def downstream(tasks: Sequence[Mapping[str, Any]], roots: set[str]) -> set[str]:
    """``roots`` and every task that depends on one of them, directly or not."""
    children: dict[str, list[str]] = {}
    for task in tasks:
        for dep in task.get("depends_on") or ():
            children.setdefault(str(dep.get("task_key")), []).append(str(task["task_key"]))
    seen = set(roots)
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def repair_preselection(run: RunRecord, task_runs: Sequence[TaskRunRecord]) -> set[str]:
    """The tasks the repair dialog ticks: failed (or never run) tasks and everything downstream of them."""
    tasks = run.settings.get("tasks", [])
    latest = latest_task_runs(task_runs)
    failed = {
        str(t["task_key"])
        for t in tasks
        if t["task_key"] in latest and (latest[t["task_key"]].result_state or "") in REPAIRABLE
    }
    return downstream(tasks, failed)


def matrix_rows(
    keys: Sequence[str], runs: Sequence[RunRecord], task_runs: Mapping[int, Sequence[Attempt]], now: int
) -> Markup:
    """The body rows of the runs matrix (task key x run): one linked cell per task's latest attempt, with
    its state in words and its duration. Built as one string: 1,000 tasks x 10 runs are 10,000 cells."""
    cells: dict[str, list[str]] = {k: ["<td></td>"] * len(runs) for k in keys}
    for column, run in enumerate(runs):
        for key, tr in latest_task_runs(task_runs.get(run.run_id, ())).items():
            if key in cells:
                css, words = state_of(tr.state, tr.result_state)
                took = duration(tr.start_time, tr.end_time, now)
                href = run_page_path(run.job_id, tr.run_id)
                cells[key][column] = (
                    f'<td><a class="cell state-{css}" href="{href}">'
                    f"{MARKS.get(css, '?')} {words}<span>{took}</span></a></td>"
                )
    rows = [f'<tr><th scope="row">{escape(k)}</th>{"".join(cells[k])}</tr>' for k in keys]
    return Markup("\n".join(rows))  # noqa: S704 - keys are escaped; the rest are our own words and numbers


def bundle_key(name: str, job_id: int) -> str:
    """A ``resources.jobs`` key for a job: its name in snake case (``Nightly sales`` -> ``nightly_sales``)."""
    key = "".join(c if c.isascii() and c.isalnum() else "_" for c in name.lower())
    key = "_".join(part for part in key.split("_") if part)
    return key if key and key[0].isalpha() else f"job_{job_id}"


def bundle_yaml(settings: Mapping[str, Any], job_id: int) -> str:
    """The job's settings as bundle YAML (``resources.jobs.<key>``) to paste into a ``databricks.yml``."""
    import yaml

    name = str(settings.get("name") or f"Job {job_id}")
    body = {"resources": {"jobs": {bundle_key(name, job_id): dict(settings)}}}
    header = f"# Job {job_id} as a bundle resource: paste under the resources of a databricks.yml.\n"
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
