"""Sluice beside Luigi, Dagster, Prefect and Airflow, in the peers' own harness.

``../shared/bench/peers/bench.py`` measures every tool the same way (fresh state per run, one warm-up, the
median of 3, marks written by each task body). This script loads that harness unchanged and teaches it one
more tool, ``sluice``, whose single mode ``local`` is ``sluice run`` of the same two workloads as Jobs API
JSON (``benchmarks/workloads.py``): one forked process per task, parallelism 2, every state change a
durable SQLite commit. Each run gets a fresh copy of a migrated SLUICE_HOME, as the peers get fresh copies
of their initialised metadata databases.

usage:
  python benchmarks/peers.py sluice W1            # Sluice alone (no peer set-up needed)
  python benchmarks/peers.py luigi W2             # a peer (after ../shared/bench/peers/setup.sh luigi)
  python benchmarks/peers.py compare              # Sluice and Luigi (set up here if missing), W1 and W2
Results: JSON lines on stdout; every run appended to benchmarks/results/peers.jsonl.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
HARNESS = Path(os.environ.get("PEER_HARNESS", HERE.parent.parent / "shared" / "bench" / "peers"))
os.environ.setdefault("PEER_RESULTS", str(HERE / "results" / "peers.jsonl"))

sys.path.insert(0, str(HERE))
import workloads  # noqa: E402 - benchmarks/ is not a package


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_bench", HARNESS / "bench.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no peer harness at {HARNESS}; set PEER_HARNESS to shared/bench/peers")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sluice_executable() -> str:
    exe = Path(sys.executable).with_name("sluice")
    if not exe.exists():
        raise SystemExit(f"no sluice next to {sys.executable}: install Sluice into this environment first")
    return str(exe)


def add_sluice(bench: Any) -> None:
    """Register the ``sluice`` tool in the harness: its mode, description, version and commands."""
    bench.MODES["sluice"] = ["local"]
    bench.PKG["sluice"] = "sluice"
    bench.MODE_DESC[("sluice", "local")] = (
        "sluice run <job.json> --parallelism 2: validated job cached, one process per task forked from a "
        "warm zygote, every state change a durable SQLite commit (WAL, synchronous=FULL)"
    )
    state = Path(bench.STATE)
    peer_prepare, peer_version = bench.prepare, bench.tool_version

    migrated: list[Path] = []

    def template() -> Path:
        """The migrated SLUICE_HOME every run copies; brought to this Sluice's schema once per process, so
        a template left by an older Sluice is not migrated again inside every measured run."""
        home = state / "sluice-home"
        if not migrated:
            env = {**os.environ, "SLUICE_HOME": str(home)}
            subprocess.run(
                [sluice_executable(), "jobs", "list", "--output", "json"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            migrated.append(home)
        return home

    def prepare(tool: str, mode: str, wl: str, run_dir: str) -> tuple[list[str], dict[str, str], str]:
        if tool != "sluice":
            result: tuple[list[str], dict[str, str], str] = peer_prepare(tool, mode, wl, run_dir)
            return result
        env = bench.base_env(run_dir)
        home = Path(run_dir) / "sluice_home"
        shutil.copytree(template(), home)
        env["SLUICE_HOME"] = str(home)
        job = workloads.write(wl, state / "sluice-jobs")
        argv = [sluice_executable(), "run", str(job), "--output", "json", "--parallelism", "2"]
        return argv, env, run_dir

    def tool_version(tool: str) -> str:
        if tool == "sluice":
            import sluice

            return sluice.__version__
        version: str = peer_version(tool)
        return version

    bench.prepare = prepare
    bench.tool_version = tool_version


def compare(bench: Any) -> None:
    """Sluice and the fastest peer (Luigi, process per task) on W1 and W2, then the table."""
    venv = Path(bench.VENVS) / "luigi" / "bin" / "python"
    if not venv.exists():
        subprocess.run([str(HARNESS / "setup.sh"), "luigi"], check=True)
    summary = HERE / "results" / "peers-summary.jsonl"
    summary.parent.mkdir(parents=True, exist_ok=True)
    for tool, mode in (("sluice", "local"), ("luigi", "local_workers2")):
        for wl in ("W1", "W2"):
            out = subprocess.run(
                [sys.executable, __file__, tool, wl, mode], check=True, capture_output=True, text=True
            )
            sys.stdout.write(out.stdout)
            with summary.open("a") as f:
                f.write(out.stdout)
    subprocess.run([sys.executable, str(HARNESS / "make_table.py"), str(summary)], check=True)


def main() -> None:
    workloads.ensure_compiled()
    bench = load_harness()
    add_sluice(bench)
    Path(os.environ["PEER_RESULTS"]).parent.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["compare"]:
        compare(bench)
        return
    bench.main()


if __name__ == "__main__":
    main()
