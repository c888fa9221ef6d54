"""The ecommerce example's medallion job on generated data, beside DuckDB computing the same gold tables.

For each size, one month of events is generated into the landing volume of a fresh SLUICE_HOME, then:

- ``sluice run examples/ecommerce --job ecommerce_medallion`` runs bronze -> silver -> quality -> gold in
  notebook tasks on an embedded Sail server (the engine of ``--engine``: ``sail``, or ``spark`` for Apache
  Spark's JVM server when the full pyspark package is installed); wall time, each task's duration, and the
  peak resident memory of all of the run's processes together (control plane, kernels, the Spark server),
  sampled every 0.2 s;
- DuckDB, the floor: the same cleaning and the same three gold aggregates straight from the CSV, in one
  process (``duckdb`` must be installed: ``pip install duckdb``); wall time and its peak RSS.

usage: python benchmarks/bench_ecommerce.py [--rows 1000000 10000000] [--engine sail]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecommerce"
CLI = [sys.executable, "-m", "sluice.cli.main"]

DUCKDB_GOLD = """
CREATE TABLE silver AS
SELECT DISTINCT event_time, event_type, product_id, category_id, category_code, brand, price, user_id,
       user_session
FROM read_csv('{csv}', header = true, timestampformat = '%Y-%m-%d %H:%M:%S UTC')
WHERE price > 0;
CREATE TABLE daily AS
SELECT CAST(event_time AS DATE) AS event_date, count(*) AS purchases, count(DISTINCT user_id) AS buyers,
       round(sum(price), 2) AS revenue
FROM silver WHERE event_type = 'purchase' GROUP BY 1 ORDER BY 1;
CREATE TABLE funnel AS
SELECT event_type AS step, count(DISTINCT user_id) AS users FROM silver GROUP BY 1;
CREATE TABLE top_brands AS
SELECT brand, round(sum(price), 2) AS revenue, count(*) AS purchases
FROM silver WHERE event_type = 'purchase' AND brand IS NOT NULL
GROUP BY 1 ORDER BY revenue DESC, brand LIMIT 10;
"""


class TreeMemory:
    """Peak of the summed RSS of every process whose environment holds ``marker`` (sampled)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/environ", "rb") as f:
                        if self.marker not in f.read():
                            continue
                    with open(f"/proc/{entry}/statm") as f:
                        total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                except OSError:
                    continue
            self.peak = max(self.peak, total)


def sluice(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SLUICE_HOME": str(home), **(env or {})}
    return subprocess.run([*CLI, *args], env=full, capture_output=True, text=True, check=False)


def run_sluice(rows: int, engine: str, root: Path) -> dict[str, Any]:
    home = root / f"home-{rows}-{engine}"
    sluice(home, "volumes", "create", "workspace.ecommerce.landing")
    landing = home / "volumes" / "workspace" / "ecommerce" / "landing"
    made = sluice(
        home, "example-data", "ecommerce", "--month", "Oct", "--rows", str(rows), "--out", str(landing)
    )
    if made.returncode:
        raise SystemExit(made.stderr)
    with TreeMemory(f"SLUICE_HOME={home}") as memory:
        started = time.perf_counter()
        done = sluice(
            home,
            "run",
            str(EXAMPLE),
            "--job",
            "ecommerce_medallion",
            "--output",
            "json",
            env={"SLUICE_COMPUTE_ENGINE": engine},
        )
        wall = time.perf_counter() - started
    if done.returncode:
        return {"engine": engine, "rows": rows, "status": "failed", "error": done.stderr[-400:]}
    run = json.loads(done.stdout)
    tasks = {
        t["task_key"]: round((t.get("execution_duration") or 0) / 1000, 2)
        for t in run["tasks"]
        if t.get("execution_duration")
    }
    return {
        "engine": engine,
        "rows": rows,
        "status": run["state"].get("result_state"),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(memory.peak / 1e6),
        "tasks_s": tasks,
        "csv": str(landing / "2019-Oct.csv"),
    }


def run_duckdb(csv: str) -> dict[str, Any]:
    script = (
        "import duckdb, resource, time, sys\n"
        "t = time.perf_counter()\n"
        "con = duckdb.connect()\n"
        "con.execute('SET enable_progress_bar = false')\n"
        f"con.execute({DUCKDB_GOLD.format(csv=csv)!r})\n"
        "n = con.execute('SELECT count(*) FROM silver').fetchone()[0]\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    if done.returncode:
        return {"engine": "duckdb", "status": "unavailable", "error": done.stderr.strip().splitlines()[-1]}
    wall, rss_kb, silver = done.stdout.strip().splitlines()[-1].split()
    return {
        "engine": "duckdb",
        "wall_s": round(float(wall), 2),
        "peak_rss_mb": round(int(rss_kb) / 1e3),
        "silver_rows": int(silver),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engine", nargs="+", default=["sail"], choices=["sail", "spark"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-ecommerce-") as tmp:
        for rows in args.rows:
            csv = None
            for engine in args.engine:
                result = run_sluice(rows, engine, Path(tmp))
                csv = result.pop("csv", csv)
                print(json.dumps(result), flush=True)
            if csv is not None:
                print(json.dumps({"rows": rows, **run_duckdb(csv)}), flush=True)
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB)")


if __name__ == "__main__":
    main()
