"""Throughput of ``sluice example-data ecommerce``: rows/s and MB/s writing a CSV to a temporary directory.

Run: ``.venv/bin/python benchmarks/bench_example_data.py [--rows 1000000] [--month Oct] [--repeat 3]``.
The first run builds the product catalogue (about 0.2 s, cached in the process afterwards); later runs
with the same seed show the steady-state rate. The best run is reported as well.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sluice.examples.ecommerce import write_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month", default="Oct")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            started = time.perf_counter()
            path = write_csv(Path(tmp), args.month, args.rows, seed=1)
            elapsed = time.perf_counter() - started
            size = path.stat().st_size
            results.append(elapsed)
            label = "cold (builds the catalogue)" if attempt == 0 else "warm"
            print(
                f"run {attempt + 1} {label}: {args.rows:,} rows, {size / 1e6:,.1f} MB in {elapsed:.3f} s "
                f"= {args.rows / elapsed:,.0f} rows/s, {size / 1e6 / elapsed:,.1f} MB/s"
            )
    best = min(results)
    print(f"best: {args.rows / best:,.0f} rows/s, {size / 1e6 / best:,.1f} MB/s")


if __name__ == "__main__":
    main()
