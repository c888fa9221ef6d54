"""Queue drain of a live ``sluice serve``: N queued no-op runs of one job with ``max_concurrent_runs: 1``.

Run: ``.venv/bin/python benchmarks/bench_queue.py [--n 500]``.
A fresh SQLite store in a tmp SLUICE_HOME; ``sluice serve`` starts on it as a subprocess; one job of one
no-op Python task (``max_concurrent_runs: 1``, ``queue.enabled``) is created through the API, then N
``run-now`` requests are sent back to back. The task waits while a gate file exists, so the first run holds
the job's slot until all N runs are in (N - 1 of them QUEUED); then the gate is removed and the queue
drains, every task a no-op. Prints the drain time (gate removed -> last run's end), the gap between
consecutive runs from the store's timestamps (one run's ``end_time`` -> the next run's ``start_time``, set
when the queued run is claimed; and -> its task's start): p50/p95/max, checks that the runs started one at a
time in FIFO order, and prints the machine's load average beside the figures. With ``--open`` there is no
gate: the queue drains while the runs are being submitted, which shows what a busy drain costs ``run-now``
(the API and the loop share the database's write lock); the drain is then timed from the first run-now.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sluice.engine.clock import now_ms
from sluice.store import Store
from sluice.store.records import RunRecord, TaskRunRecord
from sluice.store.tokens import create_token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} p50={statistics.median(values):7.1f} ms  p95={pct(values, 0.95):7.1f} ms  "
        f"max={max(values):7.1f} ms"
    )


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="queued runs to drain (default 500)")
    parser.add_argument("--open", action="store_true", help="no gate: drain while submitting")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-queue-") as tmp:
        runs, tasks, latencies, opened = drain(Path(tmp), args.n, gated=not args.open)
    load_after = os.getloadavg()
    report(args.n, runs, tasks, latencies, opened, (load_before[0], load_after[0]))


def drain(
    home: Path, n: int, *, gated: bool
) -> tuple[list[RunRecord], dict[int, list[TaskRunRecord]], list[float], float]:
    """Queue ``n`` runs behind the gate, open it, wait for the last run: the runs, their task runs, the
    run-now latencies (ms) and when the gate opened (epoch s)."""

    gate = home / "gate"
    if gated:
        gate.touch()
    noop = home / "noop.py"
    noop.write_text(f"import os, time\nwhile os.path.exists({str(gate)!r}):\n    time.sleep(0.01)\n")
    with Store.open(None, home) as store:
        token, _ = create_token(store, comment="bench", now=now_ms(), user_name="bench")
    port = free_port()
    env = {**os.environ, "SLUICE_HOME": str(home)}
    server = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            job = http.post(
                "/api/2.2/jobs/create",
                json={
                    "name": "drain",
                    "max_concurrent_runs": 1,
                    "queue": {"enabled": True},
                    "tasks": [{"task_key": "noop", "spark_python_task": {"python_file": str(noop)}}],
                },
            )
            job.raise_for_status()
            job_id = job.json()["job_id"]
            run_ids = []
            opened = time.time()
            latencies = []
            for _ in range(n):
                sent = time.perf_counter()
                response = http.post("/api/2.2/jobs/run-now", json={"job_id": job_id})
                latencies.append((time.perf_counter() - sent) * 1000)
                response.raise_for_status()
                run_ids.append(response.json()["run_id"])
            if gated:
                opened = time.time()
                gate.unlink()
            last = run_ids[-1]
            while True:
                state = http.get("/api/2.2/jobs/runs/get", params={"run_id": last}).json()["state"]
                if state["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                    break
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(60)
    with Store.open(None, home) as store:
        runs = [store.get_run(r) for r in sorted(run_ids)]
        tasks = {r.run_id: store.list_task_runs(r.run_id) for r in runs}
    return runs, tasks, latencies, opened


def report(
    n: int,
    runs: list[RunRecord],
    tasks: dict[int, list[TaskRunRecord]],
    latencies: list[float],
    opened: float,
    load: tuple[float, float],
) -> None:
    ok = sum(1 for r in runs if r.result_state == "SUCCESS")
    end = max(r.end_time for r in runs) / 1000
    pairs = list(itertools.pairwise(runs))
    gaps = [float(b.start_time - a.end_time) for a, b in pairs]
    task_gaps = [float(min(t.start_time for t in tasks[b.run_id]) - a.end_time) for a, b in pairs]
    durations = [float(r.end_time - r.start_time) for r in runs[1:]]
    # FIFO and one at a time: in run id order, each run starts no earlier than the previous one ended.
    # A run created PENDING (--open) has the start_time its API call read before it waited for the write
    # lock, so the check is on tasks: each run's first task starts after the previous run ended.
    overlaps = [(a.run_id, b.run_id) for (a, b), gap in zip(pairs, task_gaps, strict=True) if gap < 0]
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} before, {load[1]:.2f} after")
    print(
        f"{n} runs ({sum(1 for r in runs if r.queue_time)} queued), {ok} SUCCESS; "
        f"one at a time in FIFO order: {not overlaps}"
    )
    print(summary("run-now request", latencies))
    print(f"drain: {end - opened:.2f} s from the gate's opening (or the first run-now) to the last run's end")
    print(summary("gap end -> next start", gaps))
    print(summary("gap end -> next task start", task_gaps))
    print(summary("queued run duration", durations))
    if overlaps:
        print(f"ERROR: runs started before the previous one ended: {overlaps[:10]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
