"""The Jobs UI at scale, against a live ``sluice serve``: prints the figures of issue 14's "Fast at scale".

Run: ``.venv/bin/python benchmarks/bench_ui.py [--tasks 1000] [--runs 100] [--jobs 10000] [--nodes 10000]``.

1. Lays out a random 10,000-node DAG (two parents per node) and renders it as SVG, in process.
2. Fills a fresh SQLite store straight through the Store: a job of 1,000 tasks (random dependencies) with
   100 finished runs of 1,000 task runs each, and 10,000 small jobs; then starts ``sluice serve`` on it.
3. Measures (one keep-alive client, Bearer token): the job page, a run page, the jobs list and a search.
4. State change -> open run page: an open ``…/events`` stream of an active run; the store changes a task
   run's state; the time until the event carrying it arrives (what the page's script applies at once).

5. In Chromium (/usr/bin/chromium, Playwright; skipped with a note where it is missing): the job page of a
   job of ``--nodes`` tasks (10,000: ten times the API's cap, stored straight through the Store) — time to
   the first painted frame of the whole page, then the graph's pan/zoom: each step (fit the whole graph,
   zoom in around a point, pan, zoom back to 1:1) timed from the call to the frame that shows it.

Targets: job page < 300 ms; layout of 10,000 nodes well under 1 s; state change -> page < 500 ms; the
10,000-node page painted in a few seconds and each pan/zoom step well under 100 ms (a frame or a few).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sluice.engine.clock import now_ms
from sluice.engine.identity import DriverId
from sluice.store import Store
from sluice.store.tokens import create_token
from sluice.web import graph
from sluice.web.layout import layout


def dag(n: int, rng: random.Random, prefix: str = "task") -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        task: dict[str, Any] = {
            "task_key": f"{prefix}_{i:05d}",
            "spark_python_task": {"python_file": "/x.py"},
        }
        if i:
            parents = {rng.randrange(max(0, i - 50), i) for _ in range(2)}
            task["depends_on"] = [{"task_key": f"{prefix}_{p:05d}"} for p in sorted(parents)]
        tasks.append(task)
    return tasks


def bench_layout(nodes: int) -> None:
    tasks = dag(nodes, random.Random(1))
    keys = [t["task_key"] for t in tasks]
    edges = [(d["task_key"], t["task_key"]) for t in tasks for d in t.get("depends_on", [])]
    started = time.perf_counter()
    layout(keys, edges)
    laid = time.perf_counter() - started
    started = time.perf_counter()
    svg = graph.svg(tasks)
    drawn = time.perf_counter() - started
    print(
        f"layout of {nodes} nodes / {len(edges)} edges: {laid * 1000:.0f} ms; "
        f"SVG (layout included): {drawn * 1000:.0f} ms, {len(svg) // 1024} KiB"
    )


CHROMIUM = "/usr/bin/chromium"

_FRAME = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())))"
_STEP = """async ([step]) => {
  const g = document.querySelector(".graph-wrap").graphView;
  const svg = document.querySelector("svg.graph");
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())));
  const t = performance.now();
  if (step === "fit") g.fit();
  if (step === "zoom in") g.zoomAt(8, 300, 200);
  if (step === "pan") g.panBy(400, 250);
  if (step === "zoom out") g.zoomAt(0.5, 300, 200);
  await frame();
  return [performance.now() - t, svg.getAttribute("viewBox")];
}"""


def bench_browser(url: str, headers: dict[str, str], job_id: int, nodes: int) -> None:
    """The job page of a ``nodes``-task job in Chromium: time to paint, then each pan/zoom step."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser: skipped (pip install -e '.[dev]' for playwright)")
        return
    if not os.access(CHROMIUM, os.X_OK):
        print(f"browser: skipped ({CHROMIUM} is missing: apt-get install -y chromium)")
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_extra_http_headers(headers)
            page.set_default_timeout(120_000)
            started = time.perf_counter()
            page.goto(f"{url}/jobs/{job_id}", wait_until="load")
            page.evaluate(_FRAME)
            painted = (time.perf_counter() - started) * 1000
            shown = page.locator("svg.graph g.node").count()
            timing = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]; }"
            )
            print(
                f"browser: job page of {shown} graph nodes: painted in {painted:7.0f} ms "
                f"(HTML received {timing[0]:.0f} ms, DOM ready {timing[1]:.0f} ms, load {timing[2]:.0f} ms)"
            )
            for step in ("fit", "zoom in", "pan", "zoom out", "fit"):
                took = []
                for _ in range(5):
                    ms, _box = page.evaluate(_STEP, [step])
                    took.append(ms)
                took.sort()
                print(
                    f"browser: {nodes}-node graph, {step:<9} to painted frame   n=5    "
                    f"p50={statistics.median(took):7.1f} ms  max={took[-1]:7.1f} ms"
                )
        finally:
            browser.close()


def fill(store: Store, tasks: int, runs: int, jobs: int) -> tuple[int, list[int]]:
    settings: dict[str, Any] = {
        "name": "big_dag",
        "tasks": dag(tasks, random.Random(2)),
        "max_concurrent_runs": 1000,
    }
    job_id = store.create_job(settings, now=now_ms()).job_id
    run_ids = []
    with store.transaction():
        for _ in range(runs):
            now = now_ms()
            run, _ = store.create_run(
                job_id=job_id,
                settings=settings,
                run_name="big_dag",
                run_type="JOB_RUN",
                trigger="ONE_TIME",
                job_parameters=[],
                overriding_parameters={},
                now=now,
                queue_enabled=True,
                max_concurrent_runs=1000,
            )
            for task in settings["tasks"]:
                tr = store.create_task_run(
                    job_run_id=run.run_id,
                    task_key=task["task_key"],
                    attempt_number=0,
                    state="TERMINATED",
                    now=now,
                )
                store.update_task_run(tr.run_id, result_state="SUCCESS", start_time=now, end_time=now + 1500)
            store.update_run(
                run.run_id, state="TERMINATED", result_state="SUCCESS", start_time=now, end_time=now + 9000
            )
            run_ids.append(run.run_id)
    small = {"name": "small", "tasks": [{"task_key": "a", "spark_python_task": {"python_file": "/a.py"}}]}
    with store.transaction():
        for i in range(jobs):
            store.create_job({**small, "name": f"report_{i:05d}"}, now=now_ms())
    return job_id, run_ids


def huge_job(store: Store, nodes: int) -> int:
    """A job of ``nodes`` tasks, stored straight through the Store (the API caps jobs at 1,000 tasks)."""
    settings = {"name": f"graph_of_{nodes}", "tasks": dag(nodes, random.Random(3), prefix="node")}
    return store.create_job(settings, now=now_ms()).job_id


def measure(name: str, count: int, request: Callable[[], httpx.Response]) -> None:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    print(f"{name:<44} n={count:<4} p50={statistics.median(times):7.1f} ms  max={times[-1]:7.1f} ms")


def live_latency(url: str, headers: dict[str, str], home: Path, samples: int) -> None:
    """Time from a task run's state change in the store to the event reaching an open run page."""
    with Store.open(None, home) as store:
        settings = {
            "name": "live",
            "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "/x.py"}}],
        }
        job_id = store.create_job(settings, now=now_ms()).job_id
        run, _ = store.create_run(
            job_id=job_id,
            settings=settings,
            run_name="live",
            run_type="JOB_RUN",
            trigger="ONE_TIME",
            job_parameters=[],
            overriding_parameters={},
            now=now_ms(),
            queue_enabled=True,
            max_concurrent_runs=1,
        )
        # Driven by this process (alive), so the server's orchestrator leaves the run alone.
        store.update_run(run.run_id, state="RUNNING", start_time=now_ms(), driver=str(DriverId.current()))
        tr = store.create_task_run(
            job_run_id=run.run_id, task_key="t", attempt_number=0, state="RUNNING", now=now_ms()
        )
        delays: list[float] = []
        changed_at: list[float] = []

        def change(state: str) -> None:
            time.sleep(0.3 + random.random() * 0.2)
            changed_at.append(time.perf_counter())
            store.update_task_run(tr.run_id, state=state)

        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            path = f"/jobs/{job_id}/runs/{run.run_id}/events"
            with http.stream("GET", path) as stream:
                lines = stream.iter_lines()
                for i in range(samples):
                    state = "PENDING" if i % 2 == 0 else "RUNNING"
                    threading.Thread(target=change, args=(state,)).start()
                    for line in lines:
                        if (
                            line.startswith("data: {")
                            and json.loads(line[6:])["tasks"]["t"]["css"] == state.lower()
                        ):
                            delays.append((time.perf_counter() - changed_at[-1]) * 1000)
                            break
        delays.sort()
        print(
            f"state change -> open run page (SSE)          n={len(delays):<4} "
            f"p50={statistics.median(delays):7.1f} ms  max={delays[-1]:7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f} on {os.cpu_count()} CPUs (figures grow with it: other processes share them)"
    )
    bench_layout(args.nodes)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-ui-") as tmp:
        home = Path(tmp)
        with Store.open(None, home) as store:
            started = time.perf_counter()
            job_id, run_ids = fill(store, args.tasks, args.runs, args.jobs)
            print(
                f"stored a {args.tasks}-task job with {args.runs} runs ({args.tasks * args.runs} task runs) "
                f"and {args.jobs} more jobs in {time.perf_counter() - started:.1f} s"
            )
            token, _ = create_token(store, comment="bench", now=now_ms(), user_name="bench")
            huge_id = huge_job(store, args.nodes)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        env = {**os.environ, "SLUICE_HOME": str(home)}
        server = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            n = args.requests
            with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                http.get(f"/jobs/{job_id}").raise_for_status()  # warm up: imports, template compilation
                measure(
                    f"job page ({args.tasks} tasks, {args.runs} runs)", n, lambda: http.get(f"/jobs/{job_id}")
                )
                older = run_ids[len(run_ids) // 2]
                measure(
                    "job page, an older page of runs",
                    n,
                    lambda: http.get(f"/jobs/{job_id}?older_than={older}"),
                )
                measure(
                    f"run page ({args.tasks} task runs)",
                    n,
                    lambda: http.get(f"/jobs/{job_id}/runs/{run_ids[-1]}"),
                )
                measure(f"jobs list ({args.jobs + 2} jobs)", n, lambda: http.get("/jobs"))
                measure("jobs list, search by part of the name", n, lambda: http.get("/jobs?q=rt_0999"))
                measure("jobs list, a late page", n, lambda: http.get(f"/jobs?after={args.jobs - 30}"))
            live_latency(url, headers, home, samples=10)
            bench_browser(url, headers, huge_id, args.nodes)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
