"""The in-memory picture of one job run that the driver advances, rebuilt from the store on adoption.

Loading works the same for a fresh run (every task BLOCKED) and for an orphaned one (some tasks finished,
some attempts left RUNNING by a driver that died): the store is the truth, this is its cache.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice import dag
from sluice.engine import seconds
from sluice.engine.plan import JobPlan, TaskPlan
from sluice.errors import SluiceError
from sluice.states import LifeCycleState, ResultState, RunIf
from sluice.store import Store
from sluice.store.records import RunRecord, TaskRunRecord

if TYPE_CHECKING:
    from sluice import refs
    from sluice.engine.foreach import ForEachState

#: Results of tasks that got as far as running (or trying to): their life cycle ends TERMINATED.
RAN_RESULTS = frozenset({ResultState.SUCCESS, ResultState.FAILED, ResultState.TIMEDOUT, ResultState.CANCELED})

#: run_if rules that still run after a cancel, to clean up or alert (Databricks: "failure handling").
FAILURE_HANDLERS = frozenset({RunIf.ALL_DONE, RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED})

_SKIP_MESSAGES = {
    ResultState.UPSTREAM_FAILED: "An upstream task failed.",
    ResultState.UPSTREAM_CANCELED: "An upstream task was canceled.",
    ResultState.EXCLUDED: "Excluded: its run_if rule or condition branch did not select it; "
    "it counts as succeeded downstream.",
    ResultState.DISABLED: "The task is disabled.",
}


def skip_message(result: ResultState) -> str:
    return _SKIP_MESSAGES.get(result, "")


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended."""

    result: ResultState
    message: str
    error: str | None = None
    trace: str | None = None
    exit_code: int | None = None
    #: The platform failed (the task process could not start, its driver died): INTERNAL_ERROR.
    internal: bool = False


@dataclass
class Attempt:
    """The latest attempt of a task in this run."""

    task_key: str
    task_run_id: int
    attempt_number: int
    state: LifeCycleState
    start_time: int = 0
    original_attempt_run_id: int | None = None
    retry_due: int = 0
    pid: int | None = None
    #: Set when the driver kills it: the result it gets (TIMEDOUT, CANCELED) and the message why.
    killed_as: ResultState | None = None
    kill_reason: str | None = None
    timeout_s: int = 0
    #: For-each iterations: the for-each task's key and this iteration's index.
    parent: str | None = None
    iteration: int | None = None

    @staticmethod
    def of(tr: TaskRunRecord, parent: str | None = None) -> Attempt:
        return Attempt(
            task_key=tr.task_key,
            task_run_id=tr.run_id,
            attempt_number=tr.attempt_number,
            state=LifeCycleState(tr.state),
            start_time=tr.start_time,
            original_attempt_run_id=tr.original_attempt_run_id,
            pid=tr.pid,
            parent=parent,
            iteration=tr.iteration,
        )

    @property
    def unit(self) -> str:
        """What retries and execution counts are kept per: the task, or the iteration."""
        return self.task_key if self.parent is None else f"{self.parent}#{self.iteration}"


@dataclass
class RunState:
    record: RunRecord
    plan: JobPlan
    tasks: dict[str, TaskPlan]
    nodes: dict[str, dag.Node]
    graph: dag.Graph
    waiting: dict[str, int]
    attempts: dict[str, Attempt]
    run_dir: Path
    base_dir: Path
    job_parameters: dict[str, str]
    repo_dir: Path | None = None
    results: dict[str, dag.DepResult] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: SQL output of finished tasks (``{"rows": [...]}``), for ``{{tasks.<key>.output...}}``.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    execution_count: dict[str, int] = field(default_factory=dict)
    stopping: ResultState | None = None
    finished: bool = False
    result: ResultState | None = None
    timeout_seconds: int = 0
    timeout_deadline: int = 0
    #: Attempts left RUNNING by a dead driver, found on load; the driver fails them (INTERNAL_ERROR).
    orphaned: list[Attempt] = field(default_factory=list)
    #: Last message and end time of each task, for progress displays.
    messages: dict[str, str] = field(default_factory=dict)
    end_times: dict[str, int] = field(default_factory=dict)
    #: Why the run cannot start at all (its job parameters do not resolve ...), None if it can.
    start_error: str | None = None
    #: Unfinished for-each iterations found on load; they end with their for-each task's orphaned attempt.
    orphaned_iterations: list[Attempt] = field(default_factory=list)
    #: Running for-each tasks, by key.
    foreach: dict[str, ForEachState] = field(default_factory=dict)
    #: Tasks in the driver's ready queue (so none is queued twice).
    queued: set[str] = field(default_factory=set)

    @property
    def run_id(self) -> int:
        return self.record.run_id

    def attempt_dir(self, task_run_id: int) -> Path:
        return self.run_dir / str(task_run_id)

    # ------------------------------------------------------------------ decisions

    def blocked_roots(self) -> list[str]:
        """Tasks not yet decided whose dependencies are all finished (in topological order)."""
        return [
            key
            for key in self.graph.order
            if key not in self.results
            and self.waiting[key] == 0
            and self.attempts[key].state == LifeCycleState.BLOCKED
        ]

    def task_of(self, attempt: Attempt) -> TaskPlan:
        """The task an attempt runs: the job's task, or a for-each task's nested task."""
        if attempt.parent is not None:
            return self.foreach[attempt.parent].nested
        return self.tasks[attempt.task_key]

    def should_retry(self, attempt: Attempt, result: ResultState, *, internal: bool) -> bool:
        if self.stopping is not None:
            return False
        task = self.task_of(attempt)
        if task.task_type == "condition_task":
            return False
        if result is ResultState.TIMEDOUT and not task.retry_on_timeout:
            return False
        if not internal and result not in (ResultState.FAILED, ResultState.TIMEDOUT):
            return False
        max_retries = task.max_retries
        return max_retries == -1 or attempt.attempt_number < max_retries

    def new_retry(self, store: Store, failed: Attempt, now: int) -> Attempt:
        """The next attempt of a failed task (or iteration), WAITING_FOR_RETRY until its interval passed."""
        task = self.task_of(failed)
        started = failed.start_time or now
        original = failed.original_attempt_run_id or failed.task_run_id
        parent_run = self.foreach[failed.parent].task_run_id if failed.parent is not None else None
        tr = store.create_task_run(
            job_run_id=self.run_id,
            task_key=failed.task_key,
            attempt_number=failed.attempt_number + 1,
            state=LifeCycleState.WAITING_FOR_RETRY.value,
            now=now,
            original_attempt_run_id=original,
            parent_task_run_id=parent_run,
            iteration=failed.iteration,
        )
        attempt = Attempt.of(tr, failed.parent)
        attempt.retry_due = started + task.min_retry_interval_millis
        if failed.parent is not None and failed.iteration is not None:
            self.foreach[failed.parent].attempts[failed.iteration] = attempt
        else:
            self.attempts[failed.task_key] = attempt
        return attempt

    def runs_while_stopping(self, key: str) -> bool:
        """After a cancel, failure-handling tasks still run; after a timeout nothing new starts."""
        return self.stopping is ResultState.CANCELED and self.nodes[key].run_if in FAILURE_HANDLERS

    def stop_message(self) -> str:
        if self.stopping is ResultState.TIMEDOUT:
            return f"Run timed out after {seconds(self.timeout_seconds)}."
        return "Run was canceled."

    # ------------------------------------------------------------------ references and context

    def resolver(self, key: str, attempt: Attempt, now: int) -> Callable[[str], str]:
        """Resolves ``{{...}}`` in this attempt's parameters; refs is imported only when one appears."""
        context: list[refs.RefContext] = []

        def resolve(text: str) -> str:
            if "{{" not in text:
                return text
            from sluice import refs

            if not context:
                context.append(self._ref_context(key, attempt, now))
            return refs.resolve(text, context[0])

        return resolve

    def _ref_context(self, key: str, attempt: Attempt, now: int) -> refs.RefContext:
        from sluice import refs

        infos = {
            k: refs.TaskRefInfo(
                run_id=self.attempts[k].task_run_id,
                result_state=res.result.value,
                execution_count=self.execution_count.get(k, 0),
                error_code=None,
                values=self.values.get(k, {}),
                output=self.outputs.get(k, {}),
            )
            for k, res in self.results.items()
        }
        rec = self.record
        return refs.RefContext(
            job_id=rec.job_id or 0,
            job_name=self.plan.name,
            run_id=rec.run_id,
            repair_count=rec.repair_count,
            start_time_ms=rec.start_time or now,
            trigger_type=rec.trigger,
            trigger_time_ms=rec.trigger_info.get("scheduled_time"),
            file_arrival_location=rec.trigger_info.get("file_arrival_location"),
            table_updates=table_updates(rec.trigger_info),
            job_parameters=self.job_parameters,
            task_key=key,
            task_run_id=attempt.task_run_id,
            execution_count=self.execution_count.get(attempt.unit, 1),
            retry_count=attempt.attempt_number,
            task_start_time_ms=now,
            notebook_path=None,
            tasks=infos,
            **self._input_of(attempt),
        )

    def _input_of(self, attempt: Attempt) -> dict[str, Any]:
        if attempt.parent is None or attempt.iteration is None:
            return {}
        return {"input": self.foreach[attempt.parent].inputs[attempt.iteration], "has_input": True}

    def context_for(self, key: str, attempt: Attempt) -> dict[str, Any]:
        """What the task process learns through its context file (see docs/protocol.md)."""
        return {
            "job_id": self.record.job_id,
            "job_run_id": self.run_id,
            "task_key": key,
            "task_run_id": attempt.task_run_id,
            "user_name": self.record.creator_user_name,
            "job_name": self.record.run_name,
            "attempt_number": attempt.attempt_number,
            "parameters": self.job_parameters,
            # Every finished task, with {} when it set nothing: get() then says "no such key", not "no task".
            "task_values": {k: self.values.get(k, {}) for k in self.results},
        }

    # ------------------------------------------------------------------ the run's end

    def finish(
        self, store: Store, now: int, *, internal_error: str | None = None, code: str | None = None
    ) -> None:
        if internal_error is not None:
            result = ResultState.FAILED
        elif self.stopping is not None:
            result = self.stopping
        else:
            result = dag.job_result(self.graph, {k: r.result for k, r in self.results.items()})
        message = internal_error or self._result_message(result)
        store.update_run(
            self.run_id,
            state=(LifeCycleState.INTERNAL_ERROR if internal_error else LifeCycleState.TERMINATED).value,
            result_state=result.value,
            state_message=message,
            termination_code=code,
            end_time=now,
            driver=None,
        )
        if self.record.repair_count:
            from sluice.engine.repair import finish_repair

            state = (LifeCycleState.INTERNAL_ERROR if internal_error else LifeCycleState.TERMINATED).value
            finish_repair(store, self.run_id, now=now, state=state, result_state=result.value)
        self.finished = True
        self.result = result

    def _result_message(self, result: ResultState) -> str:
        if result in (ResultState.CANCELED, ResultState.TIMEDOUT):
            return self.stop_message()
        failed = [
            k for k, r in self.results.items() if r.result in (ResultState.FAILED, ResultState.TIMEDOUT)
        ]
        if not failed:
            return ""
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        return f"{len(failed)} of {len(self.tasks)} tasks failed: {shown}"


# ---------------------------------------------------------------------- loading


def load(
    store: Store,
    run: RunRecord,
    *,
    home: Path,
    now: int,
    driver: str,
    base_dir: Path,
    repo_dir: Path | None = None,
) -> RunState:
    """Build the run's state from the store, creating its task rows on first adoption."""
    plan = JobPlan.of(run.settings)
    existing = store.list_task_runs(run.run_id)
    wanted = set(run.only_tasks) if run.only_tasks else None
    if existing:  # a resumed or repaired run: its tasks are those it has task runs for
        present = {tr.task_key for tr in existing}
        wanted = present if wanted is None else wanted & present
    tasks = {k: t for k, t in plan.tasks.items() if wanted is None or k in wanted}
    graph = plan.graph(wanted)
    nodes = dict(graph.nodes)
    start_error = None
    if not existing:
        try:
            run = _resolve_job_parameters(store, run, plan, now)
        except SluiceError as exc:
            start_error = f"job parameters cannot be resolved: {exc}"
        existing = [
            store.create_task_run(
                job_run_id=run.run_id,
                task_key=key,
                attempt_number=0,
                state=LifeCycleState.BLOCKED.value,
                now=now,
            )
            for key in tasks
        ]
    store.update_run(
        run.run_id,
        state=LifeCycleState.RUNNING.value,
        driver=driver,
        start_time=run.start_time or now,
        heartbeat_time=now,
    )
    timeout = plan.timeout_seconds
    state = RunState(
        record=run,
        plan=plan,
        tasks=tasks,
        nodes=nodes,
        graph=graph,
        waiting={},
        attempts={},
        run_dir=home / "runs" / str(run.run_id),
        base_dir=base_dir,
        job_parameters={p["name"]: str(p.get("value", p.get("default", ""))) for p in run.job_parameters},
        repo_dir=repo_dir,
        timeout_seconds=timeout,
        timeout_deadline=(run.start_time or now) + timeout * 1000 if timeout > 0 else 0,
        values=store.get_task_values(run.run_id),
    )
    state.start_error = start_error
    _restore_attempts(state, existing)
    state.waiting = {
        key: len({d.task_key for d in node.deps} - state.results.keys()) for key, node in nodes.items()
    }
    return state


def _restore_attempts(state: RunState, task_runs: list[TaskRunRecord]) -> None:
    latest: dict[str, TaskRunRecord] = {}
    for tr in task_runs:
        if tr.parent_task_run_id is not None:
            if not LifeCycleState(tr.state).is_terminal:
                state.orphaned_iterations.append(Attempt.of(tr))
            continue
        if tr.task_key not in state.tasks:
            continue
        state.execution_count[tr.task_key] = state.execution_count.get(tr.task_key, 0) + (
            1 if tr.start_time else 0
        )
        if tr.task_key not in latest or tr.run_id > latest[tr.task_key].run_id:
            latest[tr.task_key] = tr
    for key, tr in latest.items():
        attempt = Attempt.of(tr)
        state.attempts[key] = attempt
        life = attempt.state
        if life.is_terminal and tr.result_state is not None:
            state.results[key] = dag.DepResult(ResultState(tr.result_state), tr.outcome)
            sql_output = tr.output.get("sql_output")
            if isinstance(sql_output, dict):
                state.outputs[key] = {"rows": sql_output.get("rows") or []}
            if tr.outcome is not None:
                state.outcomes[key] = tr.outcome
        elif life in (LifeCycleState.RUNNING, LifeCycleState.PENDING, LifeCycleState.TERMINATING):
            state.orphaned.append(attempt)
        elif life == LifeCycleState.WAITING_FOR_RETRY:
            failed = [t for t in task_runs if t.task_key == key and t.attempt_number == tr.attempt_number - 1]
            interval = state.tasks[key].min_retry_interval_millis
            attempt.retry_due = (failed[-1].start_time if failed else 0) + interval


def kill_orphan(attempt: Attempt, *, wait_s: float = 5.0) -> None:
    """Kill whatever an orphaned attempt left running: every process carrying its marker; wait (up to
    ``wait_s``) until they are gone, so that its retry never runs beside it."""
    marker = f"SLUICE_TASK_RUN_ID={attempt.task_run_id}".encode()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    os.kill(int(entry), signal.SIGKILL)
                    killed.append(int(entry))
        except OSError:
            continue
    deadline = time.monotonic() + wait_s
    while killed and time.monotonic() < deadline:
        killed = [pid for pid in killed if _running(pid)]
        if killed:
            time.sleep(0.005)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _resolve_job_parameters(store: Store, run: RunRecord, plan: JobPlan, now: int) -> RunRecord:
    """Resolve references in job parameter values once, as the run starts; they are immutable after."""
    if not any("{{" in str(p.get("value", "")) for p in run.job_parameters):
        return run
    from dataclasses import replace

    from sluice import refs

    context = refs.RefContext(
        job_id=run.job_id or 0,
        job_name=plan.name,
        run_id=run.run_id,
        start_time_ms=run.start_time or now,
        task_key="",
        task_run_id=0,
        trigger_type=run.trigger,
        trigger_time_ms=run.trigger_info.get("scheduled_time"),
        file_arrival_location=run.trigger_info.get("file_arrival_location"),
        table_updates=table_updates(run.trigger_info),
    )
    resolved = [{**p, "value": refs.resolve(str(p.get("value", "")), context)} for p in run.job_parameters]
    store.update_run(run.run_id, job_parameters=resolved)
    return replace(run, job_parameters=resolved)


def table_updates(trigger_info: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{table: (version, commit ms)}`` of a table-update run, for ``{{job.trigger.table_update...}}``."""
    tables = (trigger_info.get("table_update") or {}).get("tables") or {}
    return {
        name: (int(t["version"]), int(t.get("commit_timestamp") or 0))
        for name, t in tables.items()
        if t.get("version") is not None
    }


def base_dir_of(store: Store, run: RunRecord) -> Path:
    """Where relative WORKSPACE paths of a run's job resolve: the directory of its definition file."""
    if run.job_id is not None:
        try:
            source = store.get_job(run.job_id).source_path
        except SluiceError:  # the job was deleted: fall back to the working directory
            source = None
        if source:
            return Path(source).parent
    elif run.parent_run_id is not None:  # a dbutils.notebook.run child: its parent's (and so its root)
        try:
            return base_dir_of(store, store.get_run(run.parent_run_id))
        except SluiceError:
            pass
    return Path.cwd()
