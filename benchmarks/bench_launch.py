"""Launch latency of no-op Python tasks through the LocalExecutor (fork server).

Run: ``.venv/bin/python benchmarks/bench_launch.py [--n 300]``. Prints, for a serial chain (one task at
a time, each launched when the previous one exited) and for two tasks in flight at a time: launches
per second and the latency from ``launch()`` to its ``Exited`` (mean, median, p95). Every attempt gets
a fresh attempt directory, as in a real run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sluice.executors import LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor


class Bench:
    def __init__(self, executor: LocalExecutor, root: Path) -> None:
        self.executor = executor
        self.root = root
        self.script = root / "noop.py"
        self.script.write_text("pass\n")
        self.next_id = 1

    def launch(self) -> tuple[int, float]:
        attempt_id = self.next_id
        self.next_id += 1
        started = time.perf_counter()
        self.executor.launch(
            LaunchSpec(
                attempt_id,
                TaskKind.PYTHON_FILE,
                str(self.script),
                [],
                str(self.root),
                {},
                str(self.root / "attempts" / str(attempt_id)),
            )
        )
        return attempt_id, started

    def run(self, n: int, in_flight: int) -> tuple[float, list[float]]:
        """Launch ``n`` tasks keeping ``in_flight`` running; return (wall seconds, latencies)."""
        pending: dict[int, float] = {}
        latencies: list[float] = []
        begin = time.perf_counter()
        launched = 0
        while len(latencies) < n:
            while launched < n and len(pending) < in_flight:
                attempt_id, started = self.launch()
                pending[attempt_id] = started
                launched += 1
            for exited in self.executor.poll(5.0):
                assert exited.returncode == 0, exited
                latencies.append(time.perf_counter() - pending.pop(exited.attempt_id))
        return time.perf_counter() - begin, latencies


def report(label: str, wall: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"{label:<22} {len(ms) / wall:8.0f} launches/s   latency ms: mean {statistics.fmean(ms):5.2f}"
        f"  median {statistics.median(ms):5.2f}  p95 {p95:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="launches per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        t0 = time.perf_counter()
        with LocalExecutor() as executor:
            bench = Bench(executor, Path(tmp))
            bench.run(1, 1)
            print(f"zygote start + first launch: {(time.perf_counter() - t0) * 1000:.1f} ms")
            bench.run(20, 1)  # warm-up
            report("serial (1 in flight)", *bench.run(args.n, 1))
            report("parallel (2 in flight)", *bench.run(args.n, 2))
            wall, _ = bench.run(40, 1)
            print(f"40-task chain: {wall * 1000:.0f} ms total, {wall * 1000 / 40:.2f} ms per task")


if __name__ == "__main__":
    main()
