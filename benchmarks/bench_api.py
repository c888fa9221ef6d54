"""Latency of ``runs/get`` and ``runs/list`` of a live ``sluice serve`` over 10,000 stored runs.

Run: ``.venv/bin/python benchmarks/bench_api.py [--runs 10000] [--requests 1000]``.
The runs (two task runs each, spread over 20 jobs, finished) are written straight into a fresh SQLite
store; then ``sluice serve`` starts on it as a subprocess and one keep-alive HTTP client measures
sequential requests (with a bearer token, as real clients send). Prints p50/p99/max per request kind.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from sluice.engine.clock import now_ms
from sluice.store import Store
from sluice.store.tokens import create_token

JOBS = 20


def fill(store: Store, n: int) -> list[int]:
    """``n`` finished runs with two task runs each; their ids."""
    settings = {
        "name": "bench",
        "tasks": [
            {"task_key": "a", "spark_python_task": {"python_file": "/a.py"}},
            {
                "task_key": "b",
                "depends_on": [{"task_key": "a"}],
                "spark_python_task": {"python_file": "/b.py"},
            },
        ],
        "max_concurrent_runs": 1000,
    }
    job_ids = [store.create_job(settings, now=now_ms()).job_id for _ in range(JOBS)]
    ids = []
    with store.transaction():
        for i in range(n):
            now = now_ms()
            run, _ = store.create_run(
                job_id=job_ids[i % JOBS],
                settings=settings,
                run_name="bench",
                run_type="JOB_RUN",
                trigger="ONE_TIME",
                job_parameters=[],
                overriding_parameters={},
                now=now,
                queue_enabled=True,
                max_concurrent_runs=1000,
            )
            for key in ("a", "b"):
                store.create_task_run(
                    job_run_id=run.run_id, task_key=key, attempt_number=0, state="TERMINATED", now=now
                )
            store.update_run(run.run_id, state="TERMINATED", result_state="SUCCESS", end_time=now + 1000)
            ids.append(run.run_id)
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(name: str, count: int, request: Callable[[int], httpx.Response]) -> None:
    times = []
    for i in range(count):
        started = time.perf_counter()
        response = request(i)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"{name:<34} n={count:<5} p50={statistics.median(times):6.2f} ms  p99={p99:6.2f} ms  "
        f"max={times[-1]:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-api-") as tmp:
        home = Path(tmp)
        with Store.open(None, home) as store:
            started = time.perf_counter()
            ids = fill(store, args.runs)
            print(
                f"stored {len(ids)} runs ({2 * len(ids)} task runs) in {time.perf_counter() - started:.1f} s"
            )
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
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            rng = random.Random(7)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers) as http:
                run_bench(http, ids, rng, args.requests)
        finally:
            server.terminate()
            server.wait(30)


def run_bench(http: httpx.Client, ids: list[int], rng: random.Random, n: int) -> None:
    measure(
        "runs/get (random run)",
        n,
        lambda _: http.get("/api/2.2/jobs/runs/get", params={"run_id": rng.choice(ids)}),
    )
    measure(
        "runs/list (first page, 25)", n, lambda _: http.get("/api/2.2/jobs/runs/list", params={"limit": 25})
    )
    measure(
        "runs/list (job_id, 25)",
        n,
        lambda i: http.get("/api/2.2/jobs/runs/list", params={"limit": 25, "job_id": 1 + i % JOBS}),
    )
    measure(
        "runs/list (expand_tasks, 25)",
        n,
        lambda _: http.get("/api/2.2/jobs/runs/list", params={"limit": 25, "expand_tasks": True}),
    )
    pages = 0
    token = None
    started = time.perf_counter()
    while True:
        params: dict[str, object] = {"limit": 25, **({"page_token": token} if token else {})}
        page = http.get("/api/2.2/jobs/runs/list", params=params).json()  # type: ignore[arg-type]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    elapsed = time.perf_counter() - started
    print(f"paged through all runs: {pages} pages in {elapsed:.2f} s ({elapsed / pages * 1000:.2f} ms/page)")


if __name__ == "__main__":
    main()
