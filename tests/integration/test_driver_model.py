"""The driver against a model: random DAGs, real task processes, the same answer as a plain evaluation.

Hypothesis draws jobs of up to 7 tasks with random dependencies, run_if rules, disabled tasks and tasks
that succeed, fail, or fail once and succeed on their retry. The driver runs them for real (one zygote,
real processes, a SQLite store); the model evaluates the same job in topological order with
``dag.decide`` and ``dag.job_result``. Everything the driver does incrementally (cascades, retries,
skips, the job result from the leaves) must land on the model's answer, and nothing may be left
unfinished.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice import dag
from sluice.engine.clock import now_ms
from sluice.engine.driver import Driver
from sluice.engine.submit import run_now
from sluice.executors.local import LocalExecutor
from sluice.states import ResultState, RunIf
from sluice.store import Store

SCRIPT = """
import sys
behaviour, count = sys.argv[1], int(sys.argv[2])
if behaviour == "fail" or (behaviour == "flaky" and count == 1):
    raise SystemExit(f"{behaviour} on execution {count}")
"""


@dataclass(frozen=True)
class TaskSpec:
    key: str
    #: (parent, outcome): outcome "true"/"false" only for condition parents.
    deps: tuple[tuple[str, str | None], ...]
    run_if: RunIf
    disabled: bool
    behaviour: str  # ok | fail | flaky | true | false (a condition task and its outcome)


@st.composite
def jobs(draw: st.DrawFn) -> list[TaskSpec]:
    n = draw(st.integers(min_value=1, max_value=7))
    tasks: list[TaskSpec] = []
    for i in range(n):
        earlier = {t.key: t for t in tasks}
        parents = draw(st.lists(st.sampled_from(sorted(earlier)), max_size=2, unique=True)) if earlier else []
        deps = tuple(
            (
                p,
                draw(st.sampled_from(["true", "false"]))
                if earlier[p].behaviour in ("true", "false")
                else None,
            )
            for p in parents
        )
        tasks.append(
            TaskSpec(
                key=f"t{i}",
                deps=deps,
                run_if=draw(st.sampled_from(list(RunIf))),
                disabled=draw(st.integers(0, 9)) == 0,
                behaviour=draw(st.sampled_from(["ok", "ok", "fail", "flaky", "true", "false"])),
            )
        )
    return tasks


def settings_of(tasks: list[TaskSpec], script: Path) -> dict[str, Any]:
    out = []
    for t in tasks:
        task: dict[str, Any] = {"task_key": t.key, "run_if": t.run_if.value}
        if t.behaviour in ("true", "false"):
            right = "yes" if t.behaviour == "true" else "no"
            task["condition_task"] = {"op": "EQUAL_TO", "left": "yes", "right": right}
        else:
            params = [t.behaviour, "{{task.execution_count}}"]
            task["spark_python_task"] = {"python_file": str(script), "parameters": params}
        if t.deps:
            task["depends_on"] = [{"task_key": d, **({"outcome": o} if o else {})} for d, o in t.deps]
        if t.disabled:
            task["disabled"] = True
        if t.behaviour == "flaky":
            task["max_retries"] = 1
        out.append(task)
    return {"name": "model", "max_concurrent_runs": 100, "tasks": out}


def model(tasks: list[TaskSpec]) -> tuple[dict[str, ResultState], ResultState]:
    """Each task's final result and the job's, by plain evaluation in topological order."""
    nodes = [dag.Node(t.key, tuple(dag.Dep(d, o) for d, o in t.deps), t.run_if, t.disabled) for t in tasks]
    graph = dag.Graph.build(nodes)
    results: dict[str, dag.DepResult] = {}
    behaviour = {t.key: t.behaviour for t in tasks}
    for key in graph.order:
        decision = dag.decide(graph.nodes[key], results)
        assert decision is not None  # every dependency already has a result in topological order
        outcome = None
        if decision == "RUN":
            decision = ResultState.FAILED if behaviour[key] == "fail" else ResultState.SUCCESS
            outcome = behaviour[key] if behaviour[key] in ("true", "false") else None
        results[key] = dag.DepResult(decision, outcome)
    final = {k: r.result for k, r in results.items()}
    return final, dag.job_result(graph, final)


@pytest.fixture(scope="module")
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tasks=jobs())
def test_the_driver_agrees_with_the_model(
    tasks: list[TaskSpec], executor: LocalExecutor, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("model")
    script = home / "task.py"
    script.write_text(SCRIPT)
    with Store.open(None, home) as store:
        job = store.create_job(settings_of(tasks, script), now=now_ms())
        run, _ = run_now(store, job, now=now_ms())
        driver = Driver(store, executor, home=home, parallelism=2)
        driver.adopt(run, base_dir=home)
        driver.run_until_done()

        expected, expected_job = model(tasks)
        task_runs = store.list_task_runs(run.run_id)
        latest = {tr.task_key: tr for tr in sorted(task_runs, key=lambda tr: tr.run_id)}
        assert {k: tr.result_state for k, tr in latest.items()} == {k: v.value for k, v in expected.items()}
        assert all(tr.state in ("TERMINATED", "SKIPPED") for tr in task_runs)
        final = store.get_run(run.run_id)
        assert (final.state, final.result_state) == ("TERMINATED", expected_job.value)
        for t in tasks:  # a flaky task that ran took exactly one retry; nothing else retried
            attempts = [tr for tr in task_runs if tr.task_key == t.key]
            ran = expected[t.key] is ResultState.SUCCESS and t.behaviour == "flaky"
            assert len(attempts) == (2 if ran else 1), (
                t,
                [(a.attempt_number, a.result_state) for a in attempts],
            )
