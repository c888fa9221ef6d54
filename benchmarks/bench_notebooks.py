"""Notebook tasks: start-to-first-cell latency, and a chain of 20 small notebook tasks through ``sluice run``.

Run: ``.venv/bin/python benchmarks/bench_notebooks.py [--n 10] [--chain 20]``. Prints:

- for ``--n`` notebook tasks launched one after another through the LocalExecutor (fork server), ``--gap``
  seconds apart: the latency from ``launch()`` to the first cell running in the kernel (the cell records
  ``time.time()``), and from ``launch()`` to the task's exit (kernel stopped, ``notebook.ipynb``
  written): p50, p95, mean, min, max; for all tasks, then for the first one (its kernel starts cold: no
  notebook task ran before in this executor) and for the others (their kernel was started ahead);
- with ``--leads``: the first notebook task of a fresh executor told ``expect_notebooks()`` that many
  seconds before its launch (0 = no time to prepare; "none" = not told, the cold start): launch -> first
  cell, ``--reps`` times each;
- ``sluice run`` on a job of one notebook task (``--reps`` times): task start (its ``start_time``) -> first
  cell, and command start -> first cell;
- the wall time of ``sluice run`` on a job of ``--chain`` notebook tasks, each depending on the previous
  one, and the time per task.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sluice.executors import Exited, LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor

GAP = 0.0
FIRST_CELL = """# Databricks notebook source
import time
with open({stamp!r}, "w") as f:
    f.write(repr(time.time()))

# COMMAND ----------

# MAGIC %md
# MAGIC A second cell, not run.

# COMMAND ----------

print("ok")
"""


def _notebook_spec(root: Path, attempt_id: int, stamp: Path) -> LaunchSpec:
    notebook = root / f"nb{attempt_id}.py"
    notebook.write_text(FIRST_CELL.format(stamp=str(stamp)))
    attempt_dir = str(root / "attempts" / str(attempt_id))
    return LaunchSpec(attempt_id, TaskKind.NOTEBOOK, str(notebook), [], str(root), {}, attempt_dir)


def first_task_after_hint(root: Path, lead: float | None) -> float:
    """Launch -> first cell of the first notebook task of a new executor, hinted ``lead`` s before."""
    stamp = root / "stamp-hint"
    with LocalExecutor() as executor:
        executor.start()
        executor.poll(0.3)  # the zygote is up, as it is in ``sluice run`` by the time a job is loaded
        if lead is not None:
            executor.expect_notebooks()
            time.sleep(lead)
        spec = _notebook_spec(root, 1, stamp)
        started_wall = time.time()
        executor.launch(spec)
        exits: list[Exited] = []
        while not exits:
            exits = executor.poll(10.0)
        assert exits[0].returncode == 0, exits
    return float(stamp.read_text()) - started_wall


def sluice_run_first_cell(root: Path) -> tuple[float, float]:
    """``sluice run`` of one notebook task: (task start -> first cell, command start -> first cell)."""
    stamp = root / "stamp-run"
    (root / "one.py").write_text(FIRST_CELL.format(stamp=str(stamp)))
    (root / "one.yml").write_text(
        "name: one\ntasks:\n  - task_key: t\n    notebook_task: {notebook_path: one}\n"
    )
    env = {**os.environ, "SLUICE_HOME": str(root / "home")}
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "run", str(root / "one.yml"), "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cell = float(stamp.read_text())
    task_start = json.loads(done.stdout)["tasks"][0]["start_time"] / 1000
    return cell - task_start, cell - started


def first_cell_latencies(root: Path, n: int) -> tuple[list[float], list[float]]:
    """Launch ``n`` notebook tasks serially; (launch -> first cell, launch -> exit) in seconds."""
    first: list[float] = []
    total: list[float] = []
    with LocalExecutor() as executor:
        executor.start()
        for attempt_id in range(1, n + 1):
            stamp = root / f"stamp-{attempt_id}"
            notebook = root / f"nb{attempt_id}.py"
            notebook.write_text(FIRST_CELL.format(stamp=str(stamp)))
            spec = LaunchSpec(
                attempt_id,
                TaskKind.NOTEBOOK,
                str(notebook),
                [],
                str(root),
                {},
                str(root / "attempts" / str(attempt_id)),
            )
            time.sleep(GAP)
            started_wall, started = time.time(), time.perf_counter()
            executor.launch(spec)
            exits: list[Exited] = []
            while not exits:
                exits = executor.poll(10.0)
            ended = time.perf_counter()
            assert exits[0].returncode == 0, exits
            first.append(float(stamp.read_text()) - started_wall)
            total.append(ended - started)
    return first, total


def chain(root: Path, length: int) -> float:
    """Wall seconds of ``sluice run`` on a chain of ``length`` notebook tasks."""
    (root / "cell.py").write_text(
        "# Databricks notebook source\n"
        'dbutils.widgets.text("n", "0")\n'
        'print("task", dbutils.widgets.get("n"))\n'
    )
    lines = ["name: chain", "tasks:"]
    for i in range(length):
        lines += [
            f"  - task_key: t{i}",
            f"    notebook_task: {{notebook_path: cell, base_parameters: {{n: '{i}'}}}}",
        ]
        if i:
            lines.append(f"    depends_on: [{{task_key: t{i - 1}}}]")
    (root / "job.yml").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "SLUICE_HOME": str(root / "home")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "run", str(root / "job.yml"), "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return elapsed


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


def show(name: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(
        f"{name:34s} p50 {statistics.median(ms):6.0f} ms  p95 {percentile(ms, 95):6.0f} ms  "
        f"mean {statistics.mean(ms):6.0f} ms  min {min(ms):6.0f} ms  max {max(ms):6.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10, help="notebook tasks for the latency figures")
    parser.add_argument("--chain", type=int, default=20, help="length of the chain run through sluice run")
    parser.add_argument(
        "--gap", type=float, default=0.0, help="seconds between one task's exit and the next launch"
    )
    parser.add_argument(
        "--leads", default="", help="comma-separated seconds of warning before a first task ('none': cold)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of --leads and of --run-one")
    parser.add_argument("--run-one", action="store_true", help="time sluice run of one notebook task")
    args = parser.parse_args()
    global GAP
    GAP = args.gap
    with tempfile.TemporaryDirectory(prefix="sluice-bench-nb-") as tmp:
        root = Path(tmp)
        first, total = first_cell_latencies(root, args.n) if args.n else ([], [])
        if first:
            print(f"notebook tasks launched serially: {args.n} (fork server, one kernel each, gap {GAP} s)")
            show("launch -> first cell", first)
            show("launch -> exit (outputs written)", total)
        if len(first) > 1:
            cold = f"first cell {first[0] * 1000:.0f} ms, exit {total[0] * 1000:.0f} ms"
            print(f"{'first task (cold kernel)':34s} {cold}")
            show("next tasks: launch -> first cell", first[1:])
            show("next tasks: launch -> exit", total[1:])
        for lead in (x.strip() for x in args.leads.split(",") if x.strip()):
            value = None if lead == "none" else float(lead)
            show(
                f"first task, hint {lead} s before",
                [first_task_after_hint(root, value) for _ in range(args.reps)],
            )
        if args.run_one:
            pairs = [sluice_run_first_cell(root) for _ in range(args.reps)]
            show("sluice run: task start -> cell", [p[0] for p in pairs])
            show("sluice run: command -> cell", [p[1] for p in pairs])
        if args.chain:
            elapsed = chain(root, args.chain)
            print(
                f"sluice run, chain of {args.chain} notebook tasks: {elapsed:.2f} s wall, "
                f"{elapsed / args.chain * 1000:.0f} ms per task"
            )


if __name__ == "__main__":
    main()
