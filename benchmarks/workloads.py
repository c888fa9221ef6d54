"""The benchmark workloads as Sluice job files (W1, W2 of ../shared/bench/peers, and a 1,000-task fan-out).

Every task is the peers' no-op: ``noop_task.py <i>`` calls ``peer_common.noop(i)``, which appends one mark
line to ``$PEER_MARKS`` so a harness can check that each task ran exactly once.
"""

from __future__ import annotations

import compileall
import json
from pathlib import Path

import sluice

HERE = Path(__file__).resolve().parent
NOOP = HERE / "workloads" / "noop_task.py"

#: name -> number of task bodies that run (F1: iterations of one for-each task)
#: W3 is 1 -> 998 -> 1: 1,000 tasks, the most a job may have (Databricks' limit, sluice validate's too).
WORKLOADS = {"W1": 40, "W2": 202, "W3": 1000, "F1": 1000}


def _task(i: int, deps: list[int]) -> dict[str, object]:
    task: dict[str, object] = {
        "task_key": f"t{i}",
        "spark_python_task": {"python_file": str(NOOP), "parameters": [str(i)]},
    }
    if deps:
        task["depends_on"] = [{"task_key": f"t{d}"} for d in deps]
    return task


def job(name: str) -> dict[str, object]:
    """A Jobs API JobSettings document for workload ``name``."""
    if name == "W1":
        tasks = [_task(i, [i - 1] if i else []) for i in range(40)]
    elif name in ("W2", "W3"):
        fan = 200 if name == "W2" else 998
        tasks = [_task(0, [])]
        tasks += [_task(i, [0]) for i in range(1, fan + 1)]
        tasks.append(_task(fan + 1, list(range(1, fan + 1))))
    elif name == "F1":  # a for-each of 1,000 no-op iterations at concurrency 8
        run_noop = {"python_file": str(NOOP), "parameters": ["{{input}}"]}
        nested = {"task_key": "each", "spark_python_task": run_noop}
        foreach = {"inputs": json.dumps(list(range(1000))), "concurrency": 8, "task": nested}
        tasks = [{"task_key": "loop", "for_each_task": foreach}]
    else:
        raise SystemExit(f"unknown workload {name}; choose from {', '.join(WORKLOADS)}")
    return {"name": f"bench-{name}", "max_concurrent_runs": 1, "tasks": tasks}


def write(name: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sluice_{name.lower()}.json"
    path.write_text(json.dumps(job(name), indent=1))
    return path


def ensure_compiled() -> None:
    """Compile Sluice's modules as a regular (non-editable) install does, so no run pays for compiling.

    An editable install compiles on first import, except where PYTHONDONTWRITEBYTECODE is set (as here,
    and in the peers' harness): then every start would recompile every module.
    """
    compileall.compile_dir(str(Path(sluice.__file__).parent), quiet=1)
