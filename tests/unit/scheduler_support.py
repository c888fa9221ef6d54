"""Shared helpers of the scheduler tests: stores on SQLite and PostgreSQL, jobs, time in zones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sluice.store import Store
from sluice.store.testing import postgres_schema, require_postgres

TASKS = [{"task_key": "a", "spark_python_task": {"python_file": "ok.py"}}]


def job_settings(**extra: Any) -> dict[str, Any]:
    return {"name": "scheduled", "max_concurrent_runs": 1000, "tasks": TASKS, **extra}


def cron_job(expr: str, tz: str = "UTC", paused: bool = False, **extra: Any) -> dict[str, Any]:
    schedule = {"quartz_cron_expression": expr, "timezone_id": tz}
    if paused:
        schedule["pause_status"] = "PAUSED"
    return job_settings(schedule=schedule, **extra)


def ms(text: str, tz: str = "UTC", fold: int = 0) -> int:
    """Epoch ms of a wall-clock time ``YYYY-MM-DD HH:MM:SS`` in ``tz``."""
    wall = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz), fold=fold)
    return int(wall.timestamp() * 1000)


def wall(epoch_ms: int, tz: str) -> str:
    """``HH:MM:SS+HH:MM`` of an instant in ``tz``."""
    return datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S%z")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens a Store on this test's own database; each call is a new connection to the same data."""
    opened: list[Store] = []

    def opener(url: str | None) -> Callable[[], Store]:
        def open_one() -> Store:
            store = Store.open(url, tmp_path)
            opened.append(store)
            return store

        return open_one

    try:
        if request.param == "sqlite":
            yield opener(None)
        else:
            with postgres_schema(require_postgres()) as url:
                yield opener(url)
                for store in opened:
                    store.close()
    finally:
        for store in opened:
            store.close()
