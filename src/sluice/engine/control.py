"""Task types the driver runs itself, without a process of their own: conditions, for-each, run-job.

Functions over the driver (``d``): they record results through its store and hand work back to its queue.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sluice.engine.foreach import SUCCEEDED, ForEachState, parse_inputs
from sluice.engine.runstate import Attempt, Outcome, RunState
from sluice.errors import SluiceError
from sluice.states import LifeCycleState, ResultState

if TYPE_CHECKING:
    from sluice.engine.driver import Driver


def run_condition(d: Driver, state: RunState, key: str, attempt: Attempt, now: int) -> None:
    """Evaluate a condition task here: no process, no retries; its outcome routes its dependents."""
    from sluice.conditions import evaluate
    from sluice.states import ConditionOp

    state.execution_count[key] = state.execution_count.get(key, 0) + 1
    payload = state.tasks[key].payload
    resolve = state.resolver(key, attempt, now)
    try:
        left, right = resolve(str(payload.get("left", ""))), resolve(str(payload.get("right", "")))
        outcome = "true" if evaluate(ConditionOp(payload["op"]), left, right) else "false"
    except SluiceError as exc:
        d._finish_task(state, key, now, ResultState.FAILED, str(exc), attempt=attempt, start=now)
        return
    state.outcomes[key] = outcome
    state.messages[key] = f"outcome: {outcome}"
    state.end_times[key] = now
    attempt.start_time = now
    d.store.update_task_run(
        attempt.task_run_id,
        state=LifeCycleState.TERMINATED.value,
        result_state=ResultState.SUCCESS.value,
        state_message="",
        start_time=now,
        end_time=now,
        outcome=outcome,
        resolved_values={"condition_task": {"left": left, "right": right}},
    )
    d._task_final(state, key, ResultState.SUCCESS, now)
    d._notify(state)


def start_for_each(d: Driver, state: RunState, key: str, attempt: Attempt, now: int) -> None:
    """Resolve the inputs, create one task run per iteration, start as many as the concurrency allows."""
    payload = state.tasks[key].payload
    state.execution_count[key] = state.execution_count.get(key, 0) + 1
    raw = str(payload.get("inputs", "[]"))
    try:
        inputs = parse_inputs(raw, state.resolver(key, attempt, now)(raw))
    except SluiceError as exc:
        d._finish_task(state, key, now, ResultState.FAILED, str(exc), attempt=attempt, start=now)
        return
    fe = ForEachState.of(key, attempt.task_run_id, payload, inputs)
    state.foreach[key] = fe
    attempt.state, attempt.start_time = LifeCycleState.RUNNING, now
    d.store.update_task_run(
        attempt.task_run_id,
        state=LifeCycleState.RUNNING.value,
        start_time=now,
        resolved_values={"for_each_task": {"inputs": json.dumps(inputs)}},
    )
    ids = d.store.allocate_run_ids(len(inputs)) if inputs else range(0)
    for index, run_id in enumerate(ids):
        tr = d.store.create_task_run(
            run_id=run_id,
            job_run_id=state.run_id,
            task_key=fe.nested.key,
            attempt_number=0,
            state=LifeCycleState.BLOCKED.value,
            now=now,
            parent_task_run_id=attempt.task_run_id,
            iteration=index,
        )
        fe.attempts[index] = Attempt.of(tr, key)
    state.messages[key] = foreach_progress(state, key)
    if not inputs:
        foreach_done(d, state, key, now)
    while (first := fe.take_next()) is not None:
        d._enqueue(state, key, first)


def start_iteration(d: Driver, state: RunState, key: str, index: int, now: int) -> None:
    fe = state.foreach[key]
    attempt = fe.attempts[index]
    if index in fe.results or attempt.state == LifeCycleState.RUNNING:
        return
    if state.stopping is not None:
        d._attempt_done(state, attempt, now, Outcome(ResultState.CANCELED, state.stop_message()))
        return
    d._launch(state, fe.nested, attempt, now)


def iteration_final(d: Driver, state: RunState, key: str, index: int, result: ResultState, now: int) -> None:
    fe = state.foreach[key]
    fe.results[index] = result
    fe.active -= 1
    if state.stopping is not None:  # iterations not started yet end with the run
        for pending in range(fe.next_index, len(fe.inputs)):
            d.store.update_task_run(
                fe.attempts[pending].task_run_id,
                state=LifeCycleState.SKIPPED.value,
                result_state=ResultState.CANCELED.value,
                end_time=now,
                state_message=state.stop_message(),
            )
            fe.results[pending] = ResultState.CANCELED
        fe.next_index = len(fe.inputs)
    while (nxt := fe.take_next()) is not None:
        d._enqueue(state, key, nxt)
    state.messages[key] = foreach_progress(state, key)
    if fe.done:
        foreach_done(d, state, key, now)


def foreach_done(d: Driver, state: RunState, key: str, now: int) -> None:
    result, message = state.foreach[key].result()
    attempt = state.attempts[key]
    d.store.update_task_run(
        attempt.task_run_id,
        state=LifeCycleState.TERMINATED.value,
        result_state=result.value,
        state_message=message,
        end_time=now,
        error=message or None,
    )
    state.messages[key] = message or foreach_progress(state, key)
    state.end_times[key] = now
    d._task_final(state, key, result, now)


def foreach_progress(state: RunState, key: str) -> str:
    fe = state.foreach[key]
    ok = sum(1 for r in fe.results.values() if r in SUCCEEDED)
    return f"{len(fe.results)}/{len(fe.inputs)} iterations done, {ok} succeeded, {fe.active} active"
