"""The run driver: advances job runs from their first task to their result.

One thread, one loop. Each turn waits for task processes to exit (or the next timer), then records every
consequence in ONE store transaction — finished attempts, task values, retries, tasks skipped by run_if,
tasks about to start — and only after that commit performs the side effects (launch, kill). A crash at any
point therefore leaves the store describing what was or may have been started, never less; reconciliation
(``sluice runs reconcile``, and the start of every driver) takes it from there.

The driver never runs user code: every attempt is a process of its own (see ``sluice.executors``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import select
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sluice import dag, gitsource
from sluice.compute.manager import ComputeManager
from sluice.crashpoints import fault_point
from sluice.engine import checkout as checkouts
from sluice.engine import control, runstate, seconds, workflow_runs
from sluice.engine.clock import Clock, now_ms
from sluice.engine.identity import DriverId
from sluice.engine.plan import TaskPlan
from sluice.engine.runstate import Attempt, Outcome, RunState
from sluice.engine.tasktypes import LaunchInputs, prepare
from sluice.errors import InternalError, SluiceError
from sluice.executors import Exited, LaunchSpec
from sluice.executors.local import LaunchError, LocalExecutor
from sluice.runtime.context import (
    CONTEXT_ENV,
    CONTEXT_FILE,
    CONTEXT_JSON_ENV,
    INLINE_LIMIT,
    context_document,
    write_context,
)
from sluice.states import LifeCycleState, ResultState
from sluice.store import Store
from sluice.store.records import RunRecord

#: How often the driver looks for cancel requests made by other processes.
CANCEL_POLL_MS = 200
#: How often the driver proves it is alive.
HEARTBEAT_MS = 5_000
#: Seconds between SIGTERM and SIGKILL when a task is killed.
KILL_GRACE_S = 5.0
#: A step this long after the previous one first checks that this driver still owns its runs (another
#: host adopts runs whose heartbeat is 30 s old: a driver that was stalled must not act on them).
OWNERSHIP_CHECK_GAP_MS = 10_000

log = logging.getLogger("sluice.driver")

Listener = Callable[[RunState], None]
TimerKind = Literal["retry", "task_timeout", "job_timeout"]


@dataclass(order=True)
class _Timer:
    due: int
    seq: int
    kind: TimerKind = field(compare=False)
    run_id: int = field(compare=False)
    key: str = field(compare=False, default="")
    attempt_id: int = field(compare=False, default=0)
    iteration: int | None = field(compare=False, default=None)


#: A run's API token expires after this even if its driver died before revoking it at the run's end.
RUN_TOKEN_LIFETIME_S = 7 * 24 * 3600


class Driver:
    """Drives any number of runs to completion with at most ``parallelism`` task processes at once."""

    def __init__(  # noqa: PLR0913 - the store and executor, then keyword-only collaborators and limits
        self,
        store: Store,
        executor: LocalExecutor,
        *,
        home: Path,
        parallelism: int | None = None,
        clock: Clock = now_ms,
        listener: Listener | None = None,
        driver_id: DriverId | None = None,
        compute: ComputeManager | None = None,
        git_timeout: float = gitsource.GIT_TIMEOUT,
    ) -> None:
        self.store = store
        #: Seconds a git_source checkout may take (it runs in a process of its own, see engine.checkout).
        self.git_timeout = git_timeout
        #: Where tasks send Spark work; a run's job clusters (started by its tasks) stop when it ends.
        self.compute = compute or ComputeManager.for_store(store, home)
        self.executor = executor
        self.home = home
        self.parallelism = max(1, parallelism or os.cpu_count() or 1)
        self.clock = clock
        self.listener = listener
        self.driver_id = str(driver_id or DriverId.current())
        self.runs: dict[int, RunState] = {}
        #: The Jobs API's URL when this driver runs inside ``sluice serve`` (set by it once it listens):
        #: each run's tasks then get ``DATABRICKS_HOST`` and a token valid until the run ends.
        self.api_url: str | None = None
        self._run_tokens: dict[int, tuple[str, str]] = {}
        self._running: dict[int, tuple[RunState, Attempt]] = {}
        #: Tasks (iteration None) and for-each iterations ready to start, in order.
        self._ready: deque[tuple[RunState, str, int | None]] = deque()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._pids: dict[int, int] = {}
        self._kills: list[tuple[int, float]] = []
        self._launches: list[tuple[RunState, Attempt, LaunchSpec]] = []
        self._next_cancel_poll = 0
        self._next_heartbeat = 0
        #: QUEUED runs this driver will start when their job has a free slot, oldest first.
        self._queued: dict[int, tuple[RunRecord, Path]] = {}
        self._next_queue_poll = 0
        #: A run ended (or a queued run arrived) since the last claim: claim queued runs in this step.
        self._slot_freed = False
        self._interrupted = False
        #: Runs started by run-job tasks: child run id -> the waiting task's run and attempt.
        self.children: dict[int, tuple[RunState, Attempt]] = {}
        #: Runs started by ``dbutils.notebook.run``: child run id -> the task run that asked for it.
        self.workflow_children: dict[int, int] = {}
        self._next_child_poll = 0
        self._to_adopt: list[RunRecord] = []
        #: Runs whose git_source is being checked out: run id -> the checkout, the run, its base dir.
        self._checkouts: dict[int, tuple[checkouts.Checkout, RunRecord, Path]] = {}
        #: Checkouts that ended, to load their runs after the current step commits.
        self._checked_out: list[tuple[RunRecord, Path, Path | None, str | None, bool]] = []
        #: Runs whose driving raised during the current step: run id -> what failed.
        self._broken: dict[int, str] = {}
        self._last_step = 0

    # ------------------------------------------------------------------ adopting runs

    def adopt(self, run: RunRecord, *, base_dir: Path) -> RunState | None:
        """Take over a PENDING run, or an orphaned RUNNING one, and make it progress.

        ``base_dir`` is where relative WORKSPACE paths of the job resolve (its definition file's directory).
        A run with a ``git_source`` to check out is loaded once its checkout ends (None is returned then);
        the checkout runs in a process of its own, so the loop goes on meanwhile. An error while loading
        the run fails that run, not the caller.
        """
        if run.run_id in self._checkouts or self._start_checkout(run, base_dir):
            return None
        repo_dir = self._repo_dir(run) if run.settings.get("git_source") else None
        return self._load(run, base_dir, repo_dir, None)

    def _load(
        self,
        run: RunRecord,
        base_dir: Path,
        repo_dir: Path | None,
        checkout_error: str | None,
        *,
        canceled: bool = False,
    ) -> RunState | None:
        """Load ``run`` and make it progress; a failure fails this run only (see ``_guard``)."""
        state: RunState | None = None
        with self._guard(run.run_id):
            state = self._load_run(run, base_dir, repo_dir, checkout_error, canceled)
        if self._broken:
            with self.store.transaction():
                self._fail_broken(self.clock())
            self._flush_side_effects()
            return None
        if state is not None:
            self._notify(state)
        return state

    def _load_run(
        self,
        run: RunRecord,
        base_dir: Path,
        repo_dir: Path | None,
        checkout_error: str | None,
        canceled: bool,
    ) -> RunState | None:
        now = self.clock()
        with self.store.transaction():
            if run.settings.get("git_source"):  # its checkout took a while: is the run still ours?
                run = self.store.get_run(run.run_id)
                if run.driver != self.driver_id or LifeCycleState(run.state).is_terminal:
                    log.warning("run %s was taken over or ended during its checkout: left alone", run.run_id)
                    return None
            state = runstate.load(
                self.store,
                run,
                home=self.home,
                now=now,
                driver=self.driver_id,
                base_dir=base_dir,
                repo_dir=repo_dir,
            )
            self.runs[run.run_id] = state
            # Retries that were already waiting; those created below push their own timers.
            for key, attempt in state.attempts.items():
                if attempt.state == LifeCycleState.WAITING_FOR_RETRY:
                    self._push("retry", attempt.retry_due, state.run_id, key, attempt.task_run_id)
            if checkout_error is not None:
                self._fail_unstarted(state, checkout_error, "REPOSITORY_CHECKOUT_FAILED", now)
            elif state.start_error is not None:
                self._fail_unstarted(state, state.start_error, "INVALID_RUN_CONFIGURATION", now)
            for iteration in state.orphaned_iterations:
                runstate.kill_orphan(iteration)
                self.store.update_task_run(
                    iteration.task_run_id,
                    state=LifeCycleState.INTERNAL_ERROR.value,
                    result_state=ResultState.FAILED.value,
                    state_message="The process driving this run died while the iteration was running.",
                    end_time=now,
                )
            for attempt in state.orphaned:
                runstate.kill_orphan(attempt)
                message = "The process driving this run died while the task was running."
                self._attempt_done(
                    state, attempt, now, Outcome(ResultState.FAILED, message, message, internal=True)
                )
            if (canceled or run.cancel_requested) and not state.finished:
                self._stop_run(state, ResultState.CANCELED, now)
            for key in state.blocked_roots():
                self._decide(state, key, now)
            if state.timeout_deadline:
                self._push("job_timeout", state.timeout_deadline, state.run_id)
            self._settle(state, now)
        return state

    def adopt_queued(self, run: RunRecord, *, base_dir: Path) -> None:
        """Start ``run`` (QUEUED) as soon as its job has a free slot and it is the oldest queued run."""
        self._queued[run.run_id] = (run, base_dir)
        self._slot_freed = True

    def _claim_queued(self, now: int) -> list[tuple[RunRecord, Path]]:
        """Queued runs whose turn has come (now PENDING and ours), and forget those that ended meanwhile.

        Runs are tried oldest first; once one of a job's runs stays queued, its later runs are not tried
        (the store starts only a job's oldest queued run, so they could not start either): one claim per
        job and one read for the rest, not one claim per queued run."""
        claimed = []
        blocked: set[int] = set()  # jobs whose oldest queued run here could not start
        waiting: list[int] = []
        for run_id, (run, base_dir) in sorted(self._queued.items()):
            if run.job_id is not None and run.job_id in blocked:
                waiting.append(run_id)
                continue
            with self._guard(run_id):
                max_runs = int(run.settings.get("max_concurrent_runs", 1))
                got = self.store.claim_queued_run(
                    run_id, driver=self.driver_id, now=now, max_concurrent_runs=max_runs
                )
                if got is not None:
                    claimed.append((got, base_dir))
                    del self._queued[run_id]
                elif self.store.get_run(run_id).state != LifeCycleState.QUEUED.value:
                    del self._queued[run_id]  # canceled while queued (or its job deleted)
                elif run.job_id is not None:
                    blocked.add(run.job_id)
        if waiting:
            still = self.store.still_queued(waiting)
            for run_id in waiting:
                if run_id not in still:
                    del self._queued[run_id]  # canceled while queued (or its job deleted)
        return claimed

    @property
    def run_ids(self) -> list[int]:
        """Every run this driver drives or will start (or checks out), in id order."""
        return sorted({*self.runs, *self._queued, *self._checkouts})

    @property
    def has_work(self) -> bool:
        """Whether a run is active, queued here, or a task process still runs."""
        return self._has_work()

    def wait_time(self) -> float:
        """Seconds a caller may wait (for task exits) before the next ``step`` is due."""
        return self._wait_time()

    def forget_finished(self) -> list[int]:
        """Drop ended runs from memory (a long-lived driver calls this now and then); their ids."""
        busy = {owner.run_id for owner, _ in self._running.values()}
        done = [rid for rid, s in self.runs.items() if s.finished and rid not in busy]
        for run_id in done:
            del self.runs[run_id]
        return done

    def interrupt(self) -> None:
        """Cancel everything this driver drives (Ctrl-C, SIGTERM); safe to call from a signal handler."""
        self._interrupted = True

    def _on_interrupt(self, now: int) -> None:
        self._interrupted = False
        for checkout, run, base_dir in self._checkouts.values():
            checkout.kill()
            self._checked_out.append((run, base_dir, None, None, True))
        self._checkouts.clear()
        for state in self.runs.values():
            if not state.finished:
                self._stop_run(state, ResultState.CANCELED, now)
        for run_id in list(self._queued):
            self.store.update_run(
                run_id,
                state=LifeCycleState.TERMINATED.value,
                result_state="CANCELED",
                state_message="Run was canceled while queued.",
                end_time=now,
            )
            del self._queued[run_id]

    # ------------------------------------------------------------------ git checkouts

    def _repo_dir(self, run: RunRecord) -> Path:
        return self.home / "runs" / str(run.run_id) / "repo"

    def _start_checkout(self, run: RunRecord, base_dir: Path) -> bool:
        """Start checking out the run's git_source (once per run; a resumed run reuses its commit).

        False when there is nothing to check out. The run loads when the checkout ends (``_poll_checkouts``).
        """
        git = run.settings.get("git_source")
        if not git:
            return False
        dest = self._repo_dir(run)
        if run.git_commit and dest.is_dir():
            return False
        shutil.rmtree(dest, ignore_errors=True)  # a checkout cut short by a crash
        checkout = checkouts.start(
            run.run_id, git, commit=run.git_commit or None, dest=dest, timeout=self.git_timeout
        )
        self._checkouts[run.run_id] = (checkout, run, base_dir)
        return True

    def checkout_fds(self) -> list[int]:
        """File descriptors readable when a checkout ends (a caller waiting for events includes them)."""
        return [c.fileno() for c, _, _ in self._checkouts.values()]

    def _poll_checkouts(self, now: int) -> None:
        """Collect ended checkouts, stop overdue ones and those of canceled runs."""
        if not self._checkouts:
            return
        canceled = set()
        if now >= self._next_cancel_poll:
            canceled = self.store.cancel_requested(list(self._checkouts))
        for run_id, (checkout, run, base_dir) in list(self._checkouts.items()):
            if checkout.done:
                commit, error = checkout.result()
                if commit is not None:
                    self.store.update_run(run_id, git_commit=commit)
                    self._checked_out.append((run, base_dir, checkout.dest, None, False))
                else:
                    self._checked_out.append(
                        (run, base_dir, None, f"git_source checkout failed: {error}", False)
                    )
            elif run_id in canceled:
                checkout.kill()
                self._checked_out.append((run, base_dir, None, None, True))
            elif checkout.overdue:
                checkout.kill()
                message = f"git_source checkout failed: {checkout.timeout_message()}"
                log.warning("run %s: %s", run_id, message)
                self._checked_out.append((run, base_dir, None, message, False))
            else:
                continue
            del self._checkouts[run_id]

    def _load_checked_out(self) -> None:
        done, self._checked_out = self._checked_out, []
        for run, base_dir, repo_dir, error, canceled in done:
            self._load(run, base_dir, repo_dir, error, canceled=canceled)

    def close(self, *, kill_tasks: bool = False) -> None:
        """Stop checkouts in flight (their runs stay in the store, adopted by the next driver), and with
        ``kill_tasks`` the task processes this driver started (SIGKILL): whoever adopts the runs next
        then never starts an attempt while the one it replaces still runs."""
        for checkout, _, _ in self._checkouts.values():
            checkout.kill()
        self._checkouts.clear()
        if kill_tasks:
            for attempt_id in self._running:
                self.executor.kill(attempt_id, grace=0)

    def _run_token(self, state: RunState) -> str:
        """The run's API token (created on its first task launch), acting as the run's creator."""
        known = self._run_tokens.get(state.run_id)
        if known is not None:
            return known[0]
        from sluice.identity import local_user
        from sluice.store.tokens import create_token

        value, info = create_token(
            self.store,
            comment=f"run {state.run_id} (revoked when the run ends)",
            now=self.clock(),
            user_name=state.record.creator_user_name or local_user(),
            lifetime_seconds=RUN_TOKEN_LIFETIME_S,
        )
        self._run_tokens[state.run_id] = (value, info.token_id)
        return value

    def _revoke_run_token(self, run_id: int, now: int) -> None:
        known = self._run_tokens.pop(run_id, None)
        if known is not None:
            from sluice.errors import NotFoundError
            from sluice.store.tokens import revoke_token

            with contextlib.suppress(NotFoundError):  # someone revoked it already
                revoke_token(self.store, known[1], now=now)

    def _fail_unstarted(self, state: RunState, message: str, code: str, now: int) -> None:
        """The run cannot start (no checkout, unresolvable job parameters): no task runs."""
        for key in state.graph.order:
            if key not in state.results:
                self._finish_skipped(state, key, ResultState.UPSTREAM_FAILED, now, message=message)
        state.finish(self.store, now, internal_error=message, code=code)
        self._slot_freed = True

    def _decide(self, state: RunState, key: str, now: int) -> None:
        decision = dag.decide(state.nodes[key], state.results)
        if decision == "RUN":
            self._enqueue(state, key)
        elif decision is not None:
            self._finish_skipped(state, key, decision, now)
            self._cascade(state, key, now)

    def _enqueue(self, state: RunState, key: str, iteration: int | None = None) -> None:
        unit = key if iteration is None else f"{key}#{iteration}"
        if unit not in state.queued:
            state.queued.add(unit)
            self._ready.append((state, key, iteration))

    # ------------------------------------------------------------------ the loop

    def run_until_done(self) -> None:
        """Advance every adopted run until all of them are terminal."""
        try:
            while self._has_work():
                self.step(self._wait_time())
        finally:
            self._flush_side_effects()

    def step(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for an event, then advance every run.

        An exception while advancing one run fails that run (``_guard``); only an error outside any run's
        driving (the store gone) escapes to the caller.
        """
        if self._checkouts and timeout > 0 and not self.executor.has_events:
            fds = self.checkout_fds()
            with contextlib.suppress(InternalError):
                fds.append(self.executor.fileno())
            select.select(fds, [], [], timeout)
            timeout = 0
        exits = self.executor.poll(timeout)
        now = self.clock()
        with self.store.transaction():
            if self._last_step and now - self._last_step >= OWNERSHIP_CHECK_GAP_MS:
                self._drop_lost_runs()  # stalled for a while: another host may have adopted our runs
            self._last_step = now
            if self._interrupted:
                self._on_interrupt(now)
            self._flush_pids()
            for ex in exits:
                entry = self._running.get(ex.attempt_id)
                with self._guard(entry[0].run_id if entry else None):
                    self._on_exit(ex, now)
            self._fire_timers(now)
            self._poll_checkouts(now)
            self._poll_cancels(now)
            self._poll_children(now)
            self._start_ready(now)
            self._heartbeat(now)
            for state in list(self.runs.values()):
                if not state.finished and len(state.results) >= len(state.tasks):  # else a no-op
                    with self._guard(state.run_id):
                        self._settle(state, now)
            claimed: list[tuple[RunRecord, Path]] = []
            if self._queued and (self._slot_freed or now >= self._next_queue_poll):
                # a run ended in this step: its job's next queued run starts now, not at the next poll
                self._slot_freed = False
                self._next_queue_poll = now + CANCEL_POLL_MS
                claimed = self._claim_queued(now)
            self._fail_broken(now)
        self._flush_side_effects()
        if self._broken:  # a launch failed in a way that fails its run
            with self.store.transaction():
                self._fail_broken(self.clock())
            self._flush_side_effects()
        for run, base_dir in claimed:
            self.adopt(run, base_dir=base_dir)
        self._load_checked_out()
        self._adopt_children()

    # ------------------------------------------------------------------ one run's failure stays its own

    @contextlib.contextmanager
    def _guard(self, run_id: int | None) -> Iterator[None]:
        """Run a block that drives ``run_id``: if it raises, its writes are rolled back (a savepoint), the
        run is marked broken and fails at the end of the step (``_fail_broken``), and the others go on.
        An error of the database itself (locked, unreachable) is no run's fault and is raised on."""
        if run_id is None:
            yield
            return
        try:
            with self.store.savepoint():
                yield
        except Exception as exc:
            if self.store.unavailable(exc):
                raise  # not this run's fault: the caller retries (the server restarts its loop)
            log.exception("driving run %s failed; that run fails, the others go on", run_id)
            self._broken.setdefault(run_id, f"{type(exc).__name__}: {exc}")

    def _fail_broken(self, now: int) -> None:
        """End every run whose driving raised: INTERNAL_ERROR, its tasks stopped, its children canceled."""
        while self._broken:
            run_id, what = self._broken.popitem()
            waiting = self.children.pop(run_id, None)  # a run-job task waits for this run
            self._abandon(run_id)
            message = (
                f"Sluice failed while driving this run ({what}); the run was stopped. "
                "The server log has the details."
            )
            with self.store.savepoint():
                self.store.request_cancel(run_id)  # run-job and notebook.run children end too
                self.store.fail_run(run_id, message, now=now)
                self._revoke_run_token(run_id, now)
            self._slot_freed = True
            if waiting is not None:
                parent, attempt = waiting
                ended = f"run {run_id} ended INTERNAL_ERROR: {message}"
                with self._guard(parent.run_id):  # may break the parent in turn: the loop goes on
                    self._attempt_done(parent, attempt, now, Outcome(ResultState.FAILED, ended, ended))

    def _abandon(self, run_id: int) -> None:
        """Stop driving ``run_id`` (no store writes): kill its task processes, forget it."""
        state = self.runs.pop(run_id, None)
        if state is not None:
            state.finished = True
        self._queued.pop(run_id, None)
        entry = self._checkouts.pop(run_id, None)
        if entry is not None:
            entry[0].kill()
        for attempt_id, (owner, _) in list(self._running.items()):
            if owner.run_id == run_id:
                del self._running[attempt_id]
                self._kills.append((attempt_id, KILL_GRACE_S))
        self._ready = deque(item for item in self._ready if item[0].run_id != run_id)
        self._launches = [item for item in self._launches if item[0].run_id != run_id]
        self._checked_out = [item for item in self._checked_out if item[0].run_id != run_id]
        for child_id, (owner, _) in list(self.children.items()):
            if owner.run_id == run_id:
                del self.children[child_id]
        self.compute.release_run(run_id)

    def _drop_lost_runs(self) -> None:
        """Forget runs another driver took over (this one was presumed dead), killing their processes here:
        their new driver has failed and retried those attempts, so nothing of them may go on here."""
        active = [r for r in self.run_ids if r not in self.runs or not self.runs[r].finished]
        for run_id in self.store.runs_driven_by_others(self.driver_id, active):
            log.warning("run %s is now driven by another process: this one stops driving it", run_id)
            self._abandon(run_id)

    def _poll_children(self, now: int) -> None:
        if now >= self._next_child_poll and workflow_runs.wants_poll(self):
            self._next_child_poll = now + workflow_runs.POLL_MS
            workflow_runs.claim_children(self, now)

    def adopt_later(self, run: RunRecord) -> None:
        """Drive ``run`` (a run-job task's child) once the current step has committed."""
        self._to_adopt.append(run)

    def _adopt_children(self) -> None:
        runs, self._to_adopt = self._to_adopt, []
        for run in runs:
            base_dir = runstate.base_dir_of(self.store, run)
            if run.state == LifeCycleState.QUEUED.value:
                self.adopt_queued(run, base_dir=base_dir)
            else:
                self.adopt(run, base_dir=base_dir)

    def _has_work(self) -> bool:
        active = any(not s.finished for s in self.runs.values())
        pending = self._queued or self._to_adopt or self._checkouts or self._checked_out
        return active or bool(self._running) or bool(pending)

    def _wait_time(self) -> float:
        now = self.clock()
        due = self._next_cancel_poll
        if self._timers:
            due = min(due, self._timers[0].due)
        if self._next_child_poll > now or workflow_runs.wants_poll(self):
            due = min(due, max(self._next_child_poll, now + 1))
        if self._checkouts:
            deadline = min(c.deadline for c, _, _ in self._checkouts.values())
            due = min(due, now + int((deadline - time.monotonic()) * 1000) + 1)
        if self._can_start() or self._checked_out:
            return 0.0
        return max(0.0, min(due - now, CANCEL_POLL_MS) / 1000)

    # ------------------------------------------------------------------ starting tasks

    def _borrows_slot(self, state: RunState) -> bool:
        """Whether ``state`` is a ``dbutils.notebook.run`` child of a task this driver runs.

        Such a child runs on its parent's compute, as on Databricks: its tasks use the slot of the parent
        task (blocked in ``dbutils.notebook.run`` meanwhile) and neither need nor count against one of the
        ``parallelism`` slots; otherwise a parent holding the last slot would wait for its child forever."""
        return state.run_id in self.workflow_children

    def _slots_used(self) -> int:
        if not self.workflow_children:
            return len(self._running)
        return sum(1 for state, _ in self._running.values() if not self._borrows_slot(state))

    def _can_start(self) -> bool:
        if not self._ready:
            return False
        if self._slots_used() < self.parallelism:
            return True
        return bool(self.workflow_children) and any(self._borrows_slot(item[0]) for item in self._ready)

    def _start_ready(self, now: int) -> None:
        held: deque[tuple[RunState, str, int | None]] = deque()  # waiting for a free slot, in order
        while self._ready:
            if not self.workflow_children and len(self._running) >= self.parallelism:
                break
            state, key, iteration = item = self._ready.popleft()
            if not self._borrows_slot(state) and self._slots_used() >= self.parallelism:
                held.append(item)
                continue
            with self._guard(state.run_id):
                self._start_unit(state, key, iteration, now)
        if held:
            held.extend(self._ready)
            self._ready = held

    def _start_unit(self, state: RunState, key: str, iteration: int | None, now: int) -> None:
        if iteration is not None:
            state.queued.discard(f"{key}#{iteration}")
            control.start_iteration(self, state, key, iteration, now)
            return
        state.queued.discard(key)
        if state.finished or key in state.results or state.attempts[key].state == LifeCycleState.RUNNING:
            return
        if state.stopping is not None and not state.runs_while_stopping(key):
            self._finish_task(state, key, now, ResultState.CANCELED, state.stop_message())
            return
        self._start_attempt(state, key, now)

    def _start_attempt(self, state: RunState, key: str, now: int) -> None:
        task = state.tasks[key]
        attempt = state.attempts[key]
        if task.task_type == "condition_task":
            control.run_condition(self, state, key, attempt, now)
        elif task.task_type == "for_each_task":
            control.start_for_each(self, state, key, attempt, now)
        elif task.task_type == "run_job_task":
            control.start_run_job(self, state, key, attempt, now)
        else:
            self._launch(state, task, attempt, now)

    def _launch(self, state: RunState, task: TaskPlan, attempt: Attempt, now: int) -> None:
        """Start an attempt's process: commit RUNNING now, launch after the commit."""
        fault_point("driver.task_starting")  # test hook: an error while driving one run
        key = attempt.task_key
        attempt_dir = state.attempt_dir(attempt.task_run_id)
        state.execution_count[attempt.unit] = state.execution_count.get(attempt.unit, 0) + 1
        try:
            resolver = state.resolver(key, attempt, now)
            env = self._task_env(state, key, attempt, attempt_dir)
            prepared = prepare(task, self._inputs(state, attempt, attempt_dir, resolver, env))
        except SluiceError as exc:  # a reference that cannot resolve, parameters that cannot combine
            self._fail_before_launch(state, attempt, str(exc), now)
            return
        if prepared.spec is None:
            self._fail_before_launch(state, attempt, prepared.error or "", now)
            return
        attempt.state = LifeCycleState.RUNNING
        attempt.start_time = now
        self.store.update_task_run(
            attempt.task_run_id,
            state=LifeCycleState.RUNNING.value,
            start_time=now,
            state_message="",
            attempt_dir=str(attempt_dir),
            resolved_values=prepared.resolved_values,
        )
        timeout_s = task.timeout_seconds
        attempt.timeout_s = timeout_s
        if timeout_s > 0:
            self._push("task_timeout", now + timeout_s * 1000, state.run_id, key, attempt.task_run_id)
        if attempt.parent is not None:
            state.messages[attempt.parent] = control.foreach_progress(state, attempt.parent)
        self._running[attempt.task_run_id] = (state, attempt)
        self._launches.append((state, attempt, prepared.spec))

    def _task_env(self, state: RunState, key: str, attempt: Attempt, attempt_dir: Path) -> dict[str, str]:
        """The task process's extra environment, with its context inline when small (docs/protocol.md)."""
        env = {
            "SLUICE_TASK_RUN_ID": str(attempt.task_run_id),
            "SLUICE_JOB_RUN_ID": str(state.run_id),
            "SLUICE_HOME": str(self.home),
        }
        if self.store.url is not None:  # task-side runtime parts (dbutils.notebook.run) open the store
            env["SLUICE_DATABASE_URL"] = self.store.url
        env.update(self.compute.task_env(state.run_id, state.record.settings, key))  # SPARK_REMOTE
        if self.api_url:
            env.update({"DATABRICKS_HOST": self.api_url, "DATABRICKS_TOKEN": self._run_token(state)})
        context = state.context_for(key, attempt)
        document = context_document({**context, "attempt_dir": str(attempt_dir)})
        if len(document) <= INLINE_LIMIT:
            env[CONTEXT_JSON_ENV] = document
        else:
            write_context(attempt_dir / CONTEXT_FILE, context)
            env[CONTEXT_ENV] = str(attempt_dir / CONTEXT_FILE)
        return env

    def _inputs(
        self,
        state: RunState,
        attempt: Attempt,
        attempt_dir: Path,
        resolve: Callable[[str], str],
        env: dict[str, str],
    ) -> LaunchInputs:
        return LaunchInputs(
            attempt_id=attempt.task_run_id,
            attempt_dir=attempt_dir,
            resolve=resolve,
            base_dir=state.base_dir,
            repo_dir=state.repo_dir,
            job_parameters=state.job_parameters,
            overriding=state.record.overriding_parameters,
            env=env,
        )

    # ------------------------------------------------------------------ finishing attempts

    def _on_exit(self, ex: Exited, now: int) -> None:
        entry = self._running.pop(ex.attempt_id, None)
        if entry is None:
            return
        state, attempt = entry
        if self.workflow_children:
            workflow_runs.end_children(self, attempt.task_run_id)
        attempt_dir = state.attempt_dir(attempt.task_run_id)
        values = _read_json(attempt_dir / "task_values.json")
        if values is not None and attempt.parent is None:
            self.store.put_task_values(state.run_id, attempt.task_key, values)
            state.values[attempt.task_key] = values
        exit_value = _read_json(attempt_dir / "notebook_exit.json")  # dbutils.notebook.exit(value)
        if exit_value is not None:
            output = {
                "result": str(exit_value.get("result", "")),
                "truncated": bool(exit_value.get("truncated")),
            }
            self.store.update_task_run(attempt.task_run_id, output={"notebook_output": output})
        sql_output = _read_json(attempt_dir / "sql_output.json")  # a SQL task's last result
        if sql_output is not None:
            self.store.update_task_run(attempt.task_run_id, output={"sql_output": sql_output})
            if attempt.parent is None:
                state.outputs[attempt.task_key] = {"rows": sql_output.get("rows") or []}
        elif attempt.parent is None:
            state.outputs.pop(attempt.task_key, None)  # a rerun that wrote none has no output
        self._attempt_done(state, attempt, now, self._exit_outcome(attempt, ex, attempt_dir))

    def _exit_outcome(self, attempt: Attempt, ex: Exited, attempt_dir: Path) -> Outcome:
        code = ex.returncode
        if attempt.killed_as is not None:
            return Outcome(attempt.killed_as, attempt.kill_reason or "", exit_code=code)
        if code == 0:
            return Outcome(ResultState.SUCCESS, "", exit_code=code)
        error, trace = _read_error(attempt_dir, code)
        return Outcome(ResultState.FAILED, error, error, trace, code)

    def _attempt_done(self, state: RunState, attempt: Attempt, now: int, outcome: Outcome) -> None:
        key = attempt.task_key
        result = outcome.result
        if attempt.parent is None:
            state.messages[key] = outcome.message
            state.end_times[key] = now
        self.store.update_task_run(
            attempt.task_run_id,
            state=(LifeCycleState.INTERNAL_ERROR if outcome.internal else LifeCycleState.TERMINATED).value,
            result_state=result.value,
            state_message=outcome.message,
            end_time=now,
            error=outcome.error,
            error_trace=outcome.trace,
            exit_code=outcome.exit_code,
        )
        if state.should_retry(attempt, result, internal=outcome.internal):
            retry = state.new_retry(self.store, attempt, now)
            unit_key = retry.parent or retry.task_key  # iterations are queued under their for-each task
            self._push("retry", retry.retry_due, state.run_id, unit_key, retry.task_run_id, retry.iteration)
        elif attempt.parent is not None and attempt.iteration is not None:
            control.iteration_final(self, state, attempt.parent, attempt.iteration, result, now)
        else:
            self._task_final(state, key, result, now)
        self._notify(state)

    def _finish_task(
        self,
        state: RunState,
        key: str,
        now: int,
        result: ResultState,
        message: str,
        *,
        attempt: Attempt | None = None,
        start: int = 0,
    ) -> None:
        """End a task that never launched a process (skipped, canceled, or failed before launch)."""
        current = attempt or state.attempts[key]
        state.messages[key] = message
        state.end_times[key] = now
        life = LifeCycleState.TERMINATED if result in runstate.RAN_RESULTS else LifeCycleState.SKIPPED
        self.store.update_task_run(
            current.task_run_id,
            state=life.value,
            result_state=result.value,
            state_message=message,
            start_time=start or current.start_time,
            end_time=now,
            error=message if result is ResultState.FAILED else None,
        )
        if result is ResultState.FAILED and state.should_retry(current, result, internal=False):
            retry = state.new_retry(self.store, current, now)
            self._push("retry", retry.retry_due, state.run_id, key, retry.task_run_id)
            return
        self._task_final(state, key, result, now)

    def _fail_before_launch(self, state: RunState, attempt: Attempt, message: str, now: int) -> None:
        if attempt.parent is None:
            self._finish_task(
                state, attempt.task_key, now, ResultState.FAILED, message, attempt=attempt, start=now
            )
            return
        self.store.update_task_run(attempt.task_run_id, start_time=now)
        attempt.start_time = now
        self._attempt_done(state, attempt, now, Outcome(ResultState.FAILED, message, message))

    def _task_final(self, state: RunState, key: str, result: ResultState, now: int) -> None:
        """Record a task's final result and decide what its downstream tasks do."""
        state.results[key] = dag.DepResult(result, state.outcomes.get(key))
        self._cascade(state, key, now)

    def _cascade(self, state: RunState, key: str, now: int) -> None:
        """Decide every downstream task whose dependencies are now all finished, transitively."""
        pending = [key]
        while pending:
            done = pending.pop()
            for child in state.graph.downstream[done]:
                state.waiting[child] -= 1
                if state.waiting[child] > 0:
                    continue
                decision = dag.decide(state.nodes[child], state.results)
                if decision == "RUN":
                    self._enqueue(state, child)
                elif decision is not None:
                    self._finish_skipped(state, child, decision, now)
                    pending.append(child)

    def _finish_skipped(
        self, state: RunState, key: str, result: ResultState, now: int, *, message: str | None = None
    ) -> None:
        attempt = state.attempts[key]
        state.messages[key] = message or runstate.skip_message(result)
        state.end_times[key] = now
        self.store.update_task_run(
            attempt.task_run_id,
            state=LifeCycleState.SKIPPED.value,
            result_state=result.value,
            state_message=message or runstate.skip_message(result),
            end_time=now,
        )
        attempt.state = LifeCycleState.SKIPPED
        state.results[key] = dag.DepResult(result, None)

    # ------------------------------------------------------------------ timers, cancel, timeouts

    def _push(
        self,
        kind: TimerKind,
        due: int,
        run_id: int,
        key: str = "",
        attempt_id: int = 0,
        iteration: int | None = None,
    ) -> None:
        heapq.heappush(self._timers, _Timer(due, next(self._seq), kind, run_id, key, attempt_id, iteration))

    def _fire_timers(self, now: int) -> None:
        while self._timers and self._timers[0].due <= now:
            timer = heapq.heappop(self._timers)
            state = self.runs.get(timer.run_id)
            if state is None or state.finished:
                continue
            with self._guard(timer.run_id):
                self._fire_timer(state, timer, now)

    def _fire_timer(self, state: RunState, timer: _Timer, now: int) -> None:
        if timer.kind == "retry" and timer.iteration is not None:
            self._enqueue(state, timer.key, timer.iteration)
        elif timer.kind == "retry":
            attempt = state.attempts.get(timer.key)
            waiting = (
                attempt is not None
                and attempt.task_run_id == timer.attempt_id
                and attempt.state == LifeCycleState.WAITING_FOR_RETRY
            )
            if waiting and timer.key not in state.results:
                self._enqueue(state, timer.key)
        elif timer.kind == "task_timeout":
            self._on_task_timeout(state, timer.attempt_id)
        else:
            self._stop_run(state, ResultState.TIMEDOUT, now)

    def _on_task_timeout(self, state: RunState, attempt_id: int) -> None:
        """Kill the attempt's processes, or cancel the run a run-job attempt waits for."""
        parked = next((a for _, a in self.children.values() if a.task_run_id == attempt_id), None)
        if parked is not None and parked.killed_as is None:
            message = f"Task timed out after {seconds(parked.timeout_s)}."
            control.stop_children(self, state, attempt_id, ResultState.TIMEDOUT, message)
        entry = self._running.get(attempt_id)
        if entry is not None and entry[1].killed_as is None:
            attempt = entry[1]
            attempt.killed_as = ResultState.TIMEDOUT
            attempt.kill_reason = f"Task timed out after {seconds(attempt.timeout_s)}."
            self._kills.append((attempt_id, KILL_GRACE_S))

    def _poll_cancels(self, now: int) -> None:
        if now < self._next_cancel_poll:
            return
        self._next_cancel_poll = now + CANCEL_POLL_MS
        active = [s.run_id for s in self.runs.values() if not s.finished and s.stopping is None]
        if not active:
            return
        for run_id in self.store.cancel_requested(active):
            with self._guard(run_id):
                self._stop_run(self.runs[run_id], ResultState.CANCELED, now)

    def _stop_run(self, state: RunState, why: ResultState, now: int) -> None:
        """Cancel or time out a run: kill its processes; failure handlers still run after a cancel."""
        if state.stopping is not None:
            return
        state.stopping = why
        reason = state.stop_message()
        control.stop_children(self, state, None, why, reason)
        for attempt_id, (owner, attempt) in self._running.items():
            if owner is state and attempt.killed_as is None:
                attempt.killed_as = why
                attempt.kill_reason = reason
                self._kills.append((attempt_id, KILL_GRACE_S))
        for key, attempt in state.attempts.items():
            if attempt.state == LifeCycleState.WAITING_FOR_RETRY and key not in state.results:
                self._finish_task(state, key, now, ResultState.CANCELED, reason)
        control.stop_iterations(self, state, now)
        self._notify(state)

    def _heartbeat(self, now: int) -> None:
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + HEARTBEAT_MS
        active = [s.run_id for s in self.runs.values() if not s.finished] + list(self._checkouts)
        if active:
            self.store.heartbeat(self.driver_id, active, now)
            self._drop_lost_runs()

    # ------------------------------------------------------------------ run results

    def _settle(self, state: RunState, now: int) -> None:
        """Finish the run once every task has its result."""
        if state.finished or len(state.results) < len(state.tasks):
            return
        if any(owner is state for owner, _ in self._running.values()):
            return
        state.finish(self.store, now)
        self._slot_freed = True
        self.compute.release_run(state.run_id)
        self._revoke_run_token(state.run_id, now)
        control.child_finished(self, state, now)
        self._notify(state)

    # ------------------------------------------------------------------ side effects

    def _flush_side_effects(self) -> None:
        launches, self._launches = self._launches, []
        for state, attempt, spec in launches:
            with self._guard(state.run_id):
                self._launch_now(state, attempt, spec)
        kills, self._kills = self._kills, []
        for attempt_id, grace in kills:
            self.executor.kill(attempt_id, grace=grace)

    def _launch_now(self, state: RunState, attempt: Attempt, spec: LaunchSpec) -> None:
        try:
            self._pids[attempt.task_run_id] = self.executor.launch(spec)
        except (OSError, LaunchError) as exc:
            self._running.pop(attempt.task_run_id, None)
            with self.store.transaction():
                message = f"could not start the task process: {exc}"
                outcome = Outcome(ResultState.FAILED, message, message, internal=True)
                self._attempt_done(state, attempt, self.clock(), outcome)
        self._notify(state)

    def _flush_pids(self) -> None:
        pids, self._pids = self._pids, {}
        for attempt_id, pid in pids.items():
            if attempt_id in self._running:
                self.store.update_task_run(attempt_id, pid=pid)

    def _notify(self, state: RunState) -> None:
        if self.listener is not None:
            self.listener(state)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object a task process left in its attempt directory, or None."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_error(attempt_dir: Path, returncode: int) -> tuple[str, str | None]:
    """The error of a failed attempt: its exception, else its exit code and last words on stderr."""
    try:
        data = json.loads((attempt_dir / "error.json").read_text())
        return str(data.get("error") or "task failed"), data.get("error_trace")
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        return f"Task process was killed by signal {name} (it may have run out of memory).", None
    tail = _stderr_tail(attempt_dir)
    message = f"Task process exited with code {returncode}."
    return (f"{message} {tail}" if tail else message), None


def _stderr_tail(attempt_dir: Path) -> str:
    try:
        with open(attempt_dir / "stderr.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 2048))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1].strip() if lines else ""
