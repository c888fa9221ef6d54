"""Task types the driver runs itself, without a process of their own: conditions, for-each, run-job.

Functions over the driver (``d``): they record results through its store and hand work back to its queue.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sluice.engine.foreach import SUCCEEDED, ForEachState, parse_inputs
from sluice.engine.runstate import Attempt, Outcome, RunState
from sluice.errors import SluiceError
from sluice.states import LifeCycleState, ResultState

if TYPE_CHECKING:
    from sluice.engine.driver import Driver
    from sluice.engine.plan import TaskPlan
    from sluice.store.records import JobRecord, TaskRunRecord


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
    kept = _kept_iterations(d, state, key, attempt, inputs)
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
        old = kept.get(index)
        if old is not None:  # succeeded in the for-each task's previous run (a repair): not run again
            d.store.update_task_run(
                run_id,
                state=LifeCycleState.TERMINATED.value,
                result_state=old.result_state,
                start_time=old.start_time,
                end_time=old.end_time,
                state_message=f"kept: succeeded in task run {old.run_id}",
            )
            fe.attempts[index].state = LifeCycleState.TERMINATED
            fe.results[index] = ResultState.SUCCESS
    state.messages[key] = foreach_progress(state, key)
    if not inputs:
        foreach_done(d, state, key, now)
    while (first := fe.take_next()) is not None:
        d._enqueue(state, key, first)


def _kept_iterations(
    d: Driver, state: RunState, key: str, attempt: Attempt, inputs: list[Any]
) -> dict[int, TaskRunRecord]:
    """Iterations that succeeded in this for-each task's previous task run, with the same input."""
    rows = d.store.list_task_runs(state.run_id)
    previous = [
        tr
        for tr in rows
        if tr.task_key == key
        and tr.parent_task_run_id is None
        and tr.run_id < attempt.task_run_id
        and "for_each_task" in tr.resolved_values
    ]
    if not previous:
        return {}
    prev = max(previous, key=lambda tr: tr.run_id)
    old_inputs = json.loads(prev.resolved_values["for_each_task"]["inputs"])
    latest: dict[int, TaskRunRecord] = {}
    for tr in rows:
        newer = tr.iteration is not None and (
            tr.iteration not in latest or tr.run_id > latest[tr.iteration].run_id
        )
        if tr.parent_task_run_id == prev.run_id and tr.iteration is not None and newer:
            latest[tr.iteration] = tr
    return {
        i: tr
        for i, tr in latest.items()
        if tr.result_state == ResultState.SUCCESS.value
        and i < min(len(inputs), len(old_inputs))
        and old_inputs[i] == inputs[i]
    }


def start_iteration(d: Driver, state: RunState, key: str, index: int, now: int) -> None:
    fe = state.foreach[key]
    attempt = fe.attempts[index]
    if index in fe.results or attempt.state == LifeCycleState.RUNNING:
        return
    if state.stopping is not None:
        d._attempt_done(state, attempt, now, Outcome(ResultState.CANCELED, state.stop_message()))
        return
    if fe.nested.task_type == "run_job_task":
        start_run_job(d, state, key, attempt, now, fe.nested)
    else:
        d._launch(state, fe.nested, attempt, now)


def iteration_final(d: Driver, state: RunState, key: str, index: int, result: ResultState, now: int) -> None:
    fe = state.foreach[key]
    fe.results[index] = result
    fe.active -= 1
    if state.stopping is not None:  # iterations not started yet end with the run
        for pending in range(fe.next_index, len(fe.inputs)):
            if pending in fe.results:  # kept from an earlier run of the for-each task
                continue
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


# ---------------------------------------------------------------------- run-job tasks

#: How a child run's result becomes its run-job task's result.
_CHILD_RESULT = {
    ResultState.SUCCESS: ResultState.SUCCESS,
    ResultState.SUCCESS_WITH_FAILURES: ResultState.SUCCESS,
    ResultState.CANCELED: ResultState.CANCELED,
}


def _pushed_down(state: RunState, job: JobRecord) -> dict[str, str]:
    """The parent run's job parameters that ``job`` defines: pushed down to the run-job task, over its own.

    Databricks pushes job parameters down to every task taking key/value parameters, Run Job included, and
    a job parameter wins over a task parameter of the same key. Those the child job does not define are
    left out (the child could not take them)."""
    from sluice.engine.plan import JobPlan

    defined = {name for name, _ in JobPlan.of(job.settings).parameters}
    return {k: v for k, v in state.job_parameters.items() if k in defined}


def start_run_job(
    d: Driver, state: RunState, key: str, attempt: Attempt, now: int, task: TaskPlan | None = None
) -> None:
    """Start a run of another job (trigger RUN_JOB_TASK) and wait for it; its result becomes the task's.

    ``task`` is the for-each's nested task when ``attempt`` is one of its iterations.
    """
    from sluice.engine.submit import run_now
    from sluice.states import TriggerType

    plan = task or state.tasks[key]
    payload = plan.payload
    state.execution_count[attempt.unit] = state.execution_count.get(attempt.unit, 0) + 1
    resolve = state.resolver(attempt.task_key, attempt, now)
    try:
        params = {k: resolve(str(v)) for k, v in (payload.get("job_parameters") or {}).items()}
        job = d.store.get_job(int(payload["job_id"]))
        params.update(_pushed_down(state, job))
        child, _ = run_now(
            d.store,
            job,
            now=now,
            job_parameters=params,
            trigger=TriggerType.RUN_JOB_TASK,
            driver=d.driver_id,
            trigger_info={"run_id": attempt.task_run_id},
            parent_run_id=state.run_id,
        )
    except SluiceError as exc:
        message = f"run_job_task: {exc}"
        if attempt.parent is not None:
            d._attempt_done(state, attempt, now, Outcome(ResultState.FAILED, message, message))
        else:
            d._finish_task(state, key, now, ResultState.FAILED, message, attempt=attempt, start=now)
        return
    attempt.state, attempt.start_time = LifeCycleState.RUNNING, now
    d.store.update_task_run(
        attempt.task_run_id,
        state=LifeCycleState.RUNNING.value,
        start_time=now,
        state_message=f"waiting for run {child.run_id} of {_job_label(job.job_id, child.run_name)}",
        output={"run_job_output": {"run_id": child.run_id}},
        resolved_values={"run_job_task": {"job_id": job.job_id, "job_parameters": params}},
    )
    if attempt.parent is None:
        state.messages[key] = f"run {child.run_id} of {_job_label(job.job_id, child.run_name)}"
    if child.state == LifeCycleState.SKIPPED.value:
        label = _job_label(job.job_id, child.run_name)
        message = f"run {child.run_id} of {label} was skipped: {child.state_message}"
        d._attempt_done(state, attempt, now, Outcome(ResultState.FAILED, message, message))
        return
    d.children[child.run_id] = (state, attempt)
    timeout = plan.timeout_seconds
    attempt.timeout_s = timeout
    if timeout > 0:
        d._push("task_timeout", now + timeout * 1000, state.run_id, key, attempt.task_run_id)
    d.adopt_later(child)


def _job_label(job_id: int | None, name: str) -> str:
    """``job 'nightly-etl' (id 7)``: the job as its name says, with the id the API uses."""
    return f"job '{name}' (id {job_id})" if name else f"job {job_id}"


def child_finished(d: Driver, child: RunState, now: int) -> None:
    """A run started by a run-job task ended: end that task with the child's result."""
    parent = d.children.pop(child.run_id, None)
    if parent is None:
        return
    state, attempt = parent
    result = child.result or ResultState.FAILED
    if attempt.killed_as is not None:
        outcome = Outcome(attempt.killed_as, attempt.kill_reason or "")
    elif result in _CHILD_RESULT:
        outcome = Outcome(_CHILD_RESULT[result], "")
    else:
        label = _job_label(child.record.job_id, child.record.run_name)
        message = f"run {child.run_id} of {label} ended {result.value}"
        outcome = Outcome(ResultState.FAILED, message, message)
    d._attempt_done(state, attempt, now, outcome)


def stop_children(
    d: Driver, parent: RunState, attempt_id: int | None, why: ResultState, message: str
) -> None:
    """Cancel the child runs of ``parent`` (of one run-job attempt when ``attempt_id`` is given)."""
    for child_id, (owner, attempt) in list(d.children.items()):
        if owner is not parent or (attempt_id is not None and attempt.task_run_id != attempt_id):
            continue
        attempt.killed_as, attempt.kill_reason = why, message
        d.store.request_cancel(child_id)


def stop_iterations(d: Driver, state: RunState, now: int) -> None:
    """A canceled or timed-out run ends its iterations that wait for a retry (running ones are killed)."""
    for fe in list(state.foreach.values()):
        for attempt in list(fe.attempts.values()):
            if attempt.state == LifeCycleState.WAITING_FOR_RETRY and attempt.iteration not in fe.results:
                d._attempt_done(state, attempt, now, Outcome(ResultState.CANCELED, state.stop_message()))
