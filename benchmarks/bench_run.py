"""Wall time of ``sluice run`` on the peers' workloads: W1 (40-task chain), W2 (1->200->1), W3 (1->998->1),
and F1, a for-each task of 1,000 no-op iterations at concurrency 8 (run it with --parallelism 8).

Every task is its own process (no-op Python file); parallelism 2; every state change is a durable SQLite
commit. Each repetition runs the real CLI in a fresh SLUICE_HOME copied from a migrated template (as the
peers' harness gives every run a fresh copy of an initialised state directory). Prints one JSON line per
workload with the median of --reps runs, split like ../shared/bench/peers/RESULTS.md:

  wall_s     launch of ``sluice run`` -> it exited (start-up and teardown included)
  startup_s  launch -> first task body starts
  exec_s     first task body starts -> last task body ends
  tail_s     last task body ends -> the command exited
  exec_per_task_ms = exec_s / tasks

usage: python benchmarks/bench_run.py [W1 W2 W3] [--reps 5] [--parallelism 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads


def sluice_command() -> list[str]:
    exe = Path(sys.executable).with_name("sluice")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sluice.cli.main"]


def make_template(root: Path) -> Path:
    """A SLUICE_HOME whose database is already created and migrated."""
    home = root / "template"
    env = {**os.environ, "SLUICE_HOME": str(home)}
    subprocess.run(
        [*sluice_command(), "jobs", "list", "--output", "json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return home


def read_marks(path: Path) -> list[tuple[int, float, float, int]]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            i, start, end, pid = line.split()
            rows.append((int(i), float(start), float(end), int(pid)))
    return rows


def run_once(
    job_file: Path, template: Path, root: Path, rep: int, parallelism: int, tasks: int
) -> dict[str, Any]:
    home = root / f"run-{job_file.stem}-{rep}"
    shutil.copytree(template, home)
    marks = home / "marks.txt"
    env = {**os.environ, "SLUICE_HOME": str(home), "PEER_MARKS": str(marks)}
    argv = [*sluice_command(), "run", str(job_file), "--output", "json", "--parallelism", str(parallelism)]
    t_launch = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    t_end = time.time()
    rows = read_marks(marks)
    indices = sorted(r[0] for r in rows)
    result = (
        json.loads(proc.stdout)["state"].get("result_state") if proc.returncode == 0 else proc.stderr[-500:]
    )
    out: dict[str, Any] = {
        "wall_s": wall,
        "rc": proc.returncode,
        "result": result,
        "tasks_ok": indices == list(range(tasks)),
        "task_processes": len({r[3] for r in rows}),
    }
    if rows:
        first, last = min(r[1] for r in rows), max(r[2] for r in rows)
        out.update(startup_s=first - t_launch, exec_s=last - first, tail_s=t_end - last)
    return out


def summarize(name: str, tasks: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = all(r["rc"] == 0 and r["tasks_ok"] for r in runs)
    rec: dict[str, Any] = {
        "tool": "sluice",
        "mode": "local",
        "workload": name,
        "tasks": tasks,
        "reps": len(runs),
        "status": "ok" if ok else "failed",
    }
    if not ok:
        rec["error"] = next(r for r in runs if r["rc"] != 0 or not r["tasks_ok"])
        return rec
    for key in ("wall_s", "startup_s", "exec_s", "tail_s"):
        rec[key] = round(statistics.median(r[key] for r in runs), 3)
    rec["wall_min_s"] = round(min(r["wall_s"] for r in runs), 3)
    rec["wall_max_s"] = round(max(r["wall_s"] for r in runs), 3)
    rec["per_task_ms"] = round(rec["wall_s"] / tasks * 1000, 2)
    rec["exec_per_task_ms"] = round(rec["exec_s"] / tasks * 1000, 2)
    rec["task_processes"] = max(r["task_processes"] for r in runs)
    rec["tasks_per_s"] = round(tasks / rec["exec_s"], 1)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", default=["W1", "W2", "W3"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--parallelism", type=int, default=2)
    args = ap.parse_args()
    workloads.ensure_compiled()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        root = Path(tmp)
        template = make_template(root)
        for name in args.workloads:
            tasks = workloads.WORKLOADS[name]
            job_file = workloads.write(name, root / "jobs")
            runs = []
            for rep in range(args.warmup + args.reps):
                time.sleep(0.5)
                r = run_once(job_file, template, root, rep, args.parallelism, tasks)
                if rep >= args.warmup:
                    runs.append(r)
            print(json.dumps(summarize(name, tasks, runs)), flush=True)


if __name__ == "__main__":
    main()
