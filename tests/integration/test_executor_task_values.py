"""Task values across real task processes, through context files, as the engine passes them."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.executors import Exited, LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor
from sluice.runtime.context import CONTEXT_ENV, CONTEXT_FILE, write_context
from sluice.runtime.task_values import read_values


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    with LocalExecutor() as ex:
        yield ex


def run_task(
    executor: LocalExecutor,
    tmp_path: Path,
    *,
    attempt_id: int,
    task_key: str,
    source: str,
    upstream: dict[str, dict[str, Any]],
) -> tuple[Exited, Path]:
    """What the engine does: write the context, launch with SLUICE_TASK_CONTEXT, wait for the exit."""
    attempt_dir = tmp_path / f"{task_key}-{attempt_id}"
    context = attempt_dir / CONTEXT_FILE
    write_context(
        context,
        {
            "job_id": 1,
            "job_run_id": 10,
            "task_key": task_key,
            "task_run_id": 100 + attempt_id,
            "attempt_number": 0,
            "parameters": {"env": "test"},
            "task_values": upstream,
        },
    )
    script = tmp_path / f"{task_key}.py"
    script.write_text(textwrap.dedent(source))
    executor.launch(
        LaunchSpec(
            attempt_id,
            TaskKind.PYTHON_FILE,
            str(script),
            [],
            str(tmp_path),
            {CONTEXT_ENV: str(context)},
            str(attempt_dir),
        )
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for exited in executor.poll(0.5):
            assert exited.attempt_id == attempt_id
            return exited, attempt_dir
    pytest.fail(f"task {task_key} did not exit")


def test_values_flow_from_one_task_to_the_next(executor: LocalExecutor, tmp_path: Path) -> None:
    producer, producer_dir = run_task(
        executor,
        tmp_path,
        attempt_id=1,
        task_key="bronze",
        upstream={},
        source="""
            from sluice.runtime import dbutils
            dbutils.jobs.taskValues.set("rows", 1000)
            dbutils.jobs.taskValues.set("tables", ["a", "b"])
            dbutils.jobs.taskValues.set("rows", 1001)  # the last value wins
            print(dbutils.jobs.taskValues.get("bronze", "rows"))  # a task reads back its own values
        """,
    )
    assert producer.returncode == 0, (producer_dir / "stderr.log").read_text()
    values = read_values(str(producer_dir))
    assert values == {"rows": 1001, "tables": ["a", "b"]}
    assert (producer_dir / "stdout.log").read_text() == "1001\n"

    consumer, consumer_dir = run_task(
        executor,
        tmp_path,
        attempt_id=2,
        task_key="silver",
        upstream={"bronze": values},
        source="""
            from sluice.runtime import dbutils
            tv = dbutils.jobs.taskValues
            print(tv.get(taskKey="bronze", key="rows", default=0, debugValue=-1))
            print(tv.get("bronze", "tables"))
            print(tv.get("bronze", "missing", default="fallback"))
            try:
                tv.get("bronze", "missing")
            except ValueError as exc:
                print("ValueError:", exc)
        """,
    )
    assert consumer.returncode == 0, (consumer_dir / "stderr.log").read_text()
    lines = (consumer_dir / "stdout.log").read_text().splitlines()
    assert lines[:3] == ["1001", "['a', 'b']", "fallback"]
    assert lines[3].startswith("ValueError: task 'bronze' did not set a task value 'missing'")
    assert not (consumer_dir / "task_values.json").exists()


def test_too_large_value_fails_the_task_but_earlier_values_are_kept(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    exited, attempt_dir = run_task(
        executor,
        tmp_path,
        attempt_id=1,
        task_key="big",
        upstream={},
        source="""
            from sluice.runtime import dbutils
            dbutils.jobs.taskValues.set("small", "ok")
            dbutils.jobs.taskValues.set("large", "x" * (48 * 1024))
        """,
    )
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == (
        "ValueError: task value 'large' is 49,154 bytes as JSON; the limit is 49,152 bytes (48 KiB). "
        "Store large data in a table or a volume file and pass its name instead."
    )
    assert read_values(str(attempt_dir)) == {"small": "ok"}


def test_a_value_set_before_a_crash_is_kept(executor: LocalExecutor, tmp_path: Path) -> None:
    exited, attempt_dir = run_task(
        executor,
        tmp_path,
        attempt_id=1,
        task_key="crashy",
        upstream={},
        source="""
            import os
            from sluice.runtime import dbutils
            dbutils.jobs.taskValues.set("progress", {"done": 3})
            os.kill(os.getpid(), 9)
        """,
    )
    assert exited.returncode == -9
    assert read_values(str(attempt_dir)) == {"progress": {"done": 3}}
