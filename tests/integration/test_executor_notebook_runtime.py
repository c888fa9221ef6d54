"""dbutils.widgets and dbutils.notebook.exit in real task processes, as the engine launches them."""

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
from sluice.runtime.notebook import NOTEBOOK_EXIT_FILE


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    with LocalExecutor() as ex:
        yield ex


def run_task(
    executor: LocalExecutor, tmp_path: Path, attempt_id: int, source: str, parameters: dict[str, Any]
) -> tuple[Exited, Path]:
    attempt_dir = tmp_path / f"attempt-{attempt_id}"
    context = attempt_dir / CONTEXT_FILE
    write_context(
        context,
        {
            "job_id": 1,
            "job_run_id": 10,
            "task_key": "nb",
            "task_run_id": attempt_id,
            "parameters": parameters,
        },
    )
    script = tmp_path / f"task{attempt_id}.py"
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
            return exited, attempt_dir
    pytest.fail("the task did not exit")


def test_the_seed_practice_cells(executor: LocalExecutor, tmp_path: Path) -> None:
    exited, attempt_dir = run_task(
        executor,
        tmp_path,
        1,
        """
        from sluice.runtime import dbutils
        dbutils.widgets.text("source_path", "workspace.silver.ecommerce_cleaned")
        dbutils.widgets.dropdown("layer", "bronze", ["bronze","silver","gold"])
        dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])
        source = dbutils.widgets.get("source_path")
        layer = dbutils.widgets.get("layer")
        month = dbutils.widgets.get("month")
        print(source)
        print(layer)
        print(month)
        """,
        {"layer": "silver"},
    )
    assert exited.returncode == 0, (attempt_dir / "stderr.log").read_text()
    assert (attempt_dir / "stdout.log").read_text() == "workspace.silver.ecommerce_cleaned\nsilver\nOct\n"


def test_exit_succeeds_the_task_and_stops_it(executor: LocalExecutor, tmp_path: Path) -> None:
    exited, attempt_dir = run_task(
        executor,
        tmp_path,
        2,
        """
        from sluice.runtime import dbutils
        print("before")
        try:
            dbutils.notebook.exit("early")
        except Exception:
            print("swallowed")
        print("after")
        """,
        {},
    )
    assert exited.returncode == 0, (attempt_dir / "stderr.log").read_text()
    assert (attempt_dir / "stdout.log").read_text() == "before\n"
    assert json.loads((attempt_dir / NOTEBOOK_EXIT_FILE).read_text()) == {
        "result": "early",
        "truncated": False,
    }
    assert not (attempt_dir / "error.json").exists()
