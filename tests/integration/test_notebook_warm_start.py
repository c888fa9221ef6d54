"""``LocalExecutor.expect_notebooks``: the first notebook task of a run gets a kernel started ahead.

Real zygote, real spares, real ipykernel kernels. A kernel started ahead is recognised by its command line
(``sluice.notebooks.kernel ... --sluice-wait``) and its environment (this executor's process tag); the
notebook then reports the pid of the kernel that ran it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.executors import PROCESS_TAG_ENV, Exited, LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor

NOTEBOOK = """# Databricks notebook source
import os
with open({out!r}, "w") as f:
    f.write(str(os.getpid()))
"""


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    with LocalExecutor() as ex:
        yield ex


def waiting_kernels(token: str) -> set[int]:
    """Kernels started ahead by this executor's spares, not yet given an attempt."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sluice.notebooks.kernel" not in argv or b"--sluice-wait" not in argv:
            continue
        tag = next((e for e in environ if e.startswith(f"{PROCESS_TAG_ENV}=".encode())), b"")
        if tag.decode().split("=", 1)[1].startswith(f"{token}."):
            found.add(int(entry.name))
    return found


def wait_for_kernel(token: str, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = waiting_kernels(token)
        if kernels:
            assert len(kernels) == 1, f"one kernel ahead, not {sorted(kernels)}"
            return kernels.pop()
        time.sleep(0.05)
    pytest.fail(f"no kernel was started ahead within {timeout:.0f} s")


def run(executor: LocalExecutor, tmp_path: Path, attempt_id: int, kind: TaskKind, source: str) -> Exited:
    target = tmp_path / f"task{attempt_id}.py"
    target.write_text(source)
    attempt_dir = tmp_path / f"attempt-{attempt_id}"
    executor.launch(LaunchSpec(attempt_id, kind, str(target), [], str(tmp_path), {}, str(attempt_dir)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for exited in executor.poll(0.5):
            assert exited.returncode == 0, (attempt_dir / "stderr.log").read_text()
            return exited
    pytest.fail(f"attempt {attempt_id} did not exit")


def test_a_hint_starts_a_kernel_that_the_first_notebook_task_then_runs_in(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    executor.start()
    executor.expect_notebooks()
    kernel = wait_for_kernel(executor.token)
    out = tmp_path / "kernel-pid"
    run(executor, tmp_path, 1, TaskKind.NOTEBOOK, NOTEBOOK.format(out=str(out)))
    assert int(out.read_text()) == kernel, "the first notebook task ran in the kernel started ahead"


def test_a_hint_makes_the_waiting_plain_spare_start_a_kernel(executor: LocalExecutor, tmp_path: Path) -> None:
    run(executor, tmp_path, 1, TaskKind.PYTHON_FILE, "print('plain')\n")  # a plain spare now waits
    time.sleep(0.5)
    assert waiting_kernels(executor.token) == set(), "no kernel for jobs without notebook tasks"
    executor.expect_notebooks()
    kernel = wait_for_kernel(executor.token)
    out = tmp_path / "kernel-pid"
    run(executor, tmp_path, 2, TaskKind.NOTEBOOK, NOTEBOOK.format(out=str(out)))
    assert int(out.read_text()) == kernel


def test_a_hinted_spare_given_a_plain_task_ends_its_kernel(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.start()
    executor.expect_notebooks()
    kernel = wait_for_kernel(executor.token)
    run(executor, tmp_path, 1, TaskKind.PYTHON_FILE, "print('plain after all')\n")
    deadline = time.monotonic() + 10
    while kernel in waiting_kernels(executor.token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kernel not in waiting_kernels(executor.token), "the unused kernel was ended with its spare's task"


def test_only_jobs_with_a_notebook_task_are_hinted() -> None:
    from sluice.engine.local import has_notebook_tasks

    python = {"task_key": "p", "spark_python_task": {"python_file": "x.py"}}
    notebook = {"task_key": "n", "notebook_task": {"notebook_path": "nb"}}
    nested = {"task_key": "f", "for_each_task": {"inputs": "[1]", "task": notebook}}
    assert not has_notebook_tasks({"tasks": [python]})
    assert not has_notebook_tasks({"tasks": []})
    assert has_notebook_tasks({"tasks": [python, notebook]})
    assert has_notebook_tasks({"tasks": [python, nested]})
