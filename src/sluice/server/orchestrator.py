"""The orchestrator of ``sluice serve``: one thread that owns a Driver and a LocalExecutor.

Each turn of its loop it

1. waits for a task process to exit, the driver's next timer, or the bell (``wake``: the API created,
   repaired or canceled a run) — whichever comes first;
2. ticks the registered services (about once a second);
3. claims runs no live driver owns — runs the API created (PENDING or QUEUED, no driver), runs whose
   driver died — with the store's compare-and-set (``take_over_run``), so of several replicas exactly one
   drives each run; on the bell at once, otherwise every ``SCAN_INTERVAL_MS``;
4. steps the driver (which commits every transition before launching or killing anything).

Stopping (SIGTERM, SIGINT): no new runs are claimed; runs in flight are driven on for ``grace_s`` seconds
(drain); whatever is still running then is left in the store, and the next orchestrator (after a restart,
or a replica) adopts it as an orphan: its interrupted attempts fail and retry by policy.

Nothing one run does stops the loop: an error while driving a run fails that run (``Driver._guard``), a
git checkout runs in a process of its own (``sluice.engine.checkout``). An error outside any run (the
database gone) restarts the loop at once — a fresh driver that adopts every run this one drove, as after
a crash — and again, with a growing pause, for as long as it persists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sluice.crashpoints import crash_point, fault_point
from sluice.engine.clock import Clock, now_ms
from sluice.engine.driver import HEARTBEAT_MS
from sluice.engine.identity import driver_alive
from sluice.engine.local import LocalRunner
from sluice.errors import InternalError
from sluice.executors.local import LocalExecutor
from sluice.server.services import SERVICE_INTERVAL_MS, Service
from sluice.store import Store

log = logging.getLogger("sluice.server")

#: How often the store is scanned for runs nobody drives when nothing rang the bell.
SCAN_INTERVAL_MS = 1_000
#: How often ended runs are dropped from the driver's memory.
FORGET_INTERVAL_MS = 10_000
#: The longest pause between restarts of a loop that keeps failing (the first restart is at once).
MAX_RESTART_PAUSE_S = 30.0


class Bell:
    """A wake-up call another thread can ring; a file descriptor, so it is waited on with the executor's."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def ring(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe already means "wake up"
            os.write(self._write, b"!")

    def fileno(self) -> int:
        return self._read

    def drain(self) -> bool:
        """Whether the bell rang since the last drain."""
        rang = False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                rang = True
        return rang

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Orchestrator:
    """Drives every run that the API (or anyone) left without a live driver, and ticks services."""

    def __init__(
        self,
        store: Store,
        *,
        home: Path,
        parallelism: int,
        services: Iterable[Service] = (),
        executor: LocalExecutor | None = None,
        clock: Clock = now_ms,
        grace_s: float = 20.0,
        git_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.grace_s = grace_s
        self.runner = LocalRunner(
            store, home=home, parallelism=parallelism, executor=executor, git_timeout=git_timeout
        )
        self.driver = self.runner.driver
        self.driver_id = str(self.runner.driver_id)
        self.services: list[Service] = list(services)
        self.bell = Bell()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_scan = 0
        self._next_services = 0
        self._next_heartbeat = 0
        self._next_forget = 0
        #: Runs this orchestrator claimed, for tests and the log.
        self.claimed: list[int] = []
        #: How many times the loop failed and was restarted.
        self.restarts = 0

    # -- control from other threads -------------------------------------------------------------------

    def register(self, service: Service) -> None:
        """Tick ``service`` from now on (call before ``start``, or from the orchestrator thread)."""
        self.services.append(service)

    def wake(self) -> None:
        """Claim new runs now (the API calls this after creating, repairing or canceling a run)."""
        self.bell.ring()

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="sluice-orchestrator", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop claiming runs; drain for ``grace_s`` seconds, then end (safe in a signal handler)."""
        self._stopping.set()
        self.bell.ring()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end (after ``stop``); whether it did."""
        return self._stopped.wait(timeout)

    def close(self) -> None:
        """Kill what still runs (its runs stay in the store for adoption) and release the executor."""
        self.runner.close()
        self.bell.close()
        for service in self.services:
            close = getattr(service, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # one service failing to stop must not keep the others running
                    log.exception("service %s failed to close", service.name)

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until stopped and drained (the thread's body); restart the loop whenever it fails."""
        stop_at: float | None = None
        failures = 0
        try:
            while True:
                if self._stopping.is_set():
                    if stop_at is None:
                        stop_at = time.monotonic()
                        self._log_drain()
                    if not self.driver.has_work or time.monotonic() >= stop_at + self.grace_s:
                        break
                try:
                    self.turn(max_wait=0.2)
                    failures = 0
                except Exception:
                    failures += 1
                    self._restart(failures)
        except BaseException:
            log.exception("the orchestrator loop stopped; runs it drove will be adopted after a restart")
            raise
        finally:
            self._stopped.set()
        left = [r for r in self.driver.run_ids if not self._finished(r)]
        if left:
            log.warning("stopping with runs %s still active: they are adopted when Sluice starts again", left)

    def _restart(self, failures: int) -> None:
        """The loop failed outside any run: start a fresh driver that adopts this one's runs."""
        pause = 0.0 if failures == 1 else min(MAX_RESTART_PAUSE_S, 2.0 ** (failures - 2))
        log.exception(
            "the orchestrator loop failed (%d in a row); restarting it%s and adopting the runs it drove",
            failures,
            f" in {pause:.0f} s" if pause else " now",
        )
        api_url = self.driver.api_url  # the new driver's tasks call the same server
        while not (pause and self._stopping.wait(pause)):
            self.restarts += 1
            try:
                adopted = self.runner.restart_driver()
            except Exception:  # the runs stay ours in the store: only a restart that adopts them ends this
                log.exception("restarting the orchestrator loop failed; trying again")
                pause = min(MAX_RESTART_PAUSE_S, max(1.0, pause * 2))
                continue
            finally:
                self.driver = self.runner.driver
                self.driver.api_url = api_url
            log.warning("orchestrator loop restarted; adopted runs %s", adopted)
            return

    def turn(self, *, max_wait: float = 0.2) -> None:
        """One turn of the loop (tests call it directly)."""
        self._wait(min(max_wait, self.driver.wait_time(), self._until_due()))
        rang = self.bell.drain()
        now = self.clock()
        if now >= self._next_services:
            self._next_services = now + SERVICE_INTERVAL_MS
            self._tick_services(now)
            rang = True  # a service may have created runs
        if (rang or now >= self._next_scan) and not self._stopping.is_set():
            self._next_scan = now + SCAN_INTERVAL_MS
            self.claim_orphans(now)
        self.driver.step(0)
        if self.driver.has_work:
            fault_point("orchestrator.turn")  # test hook: an error outside any run, while runs are driven
        self._housekeeping(now)

    def _until_due(self) -> float:
        now = self.clock()
        return max(0.0, (min(self._next_scan, self._next_services) - now) / 1000)

    def _wait(self, timeout: float) -> None:
        if timeout <= 0 or self.runner.executor.has_events:
            return
        fds: list[int] = [self.bell.fileno(), *self.driver.checkout_fds()]
        with contextlib.suppress(InternalError):
            fds.append(self.runner.executor.fileno())
        select.select(fds, [], [], timeout)

    def claim_orphans(self, now: int) -> list[int]:
        """Take over every active run no live driver owns (compare-and-set per run); their ids."""
        got = []
        for run in self.store.active_runs():
            if run.driver == self.driver_id or driver_alive(
                run.driver, heartbeat_time=run.heartbeat_time, now=now
            ):
                continue
            if self.store.take_over_run(
                run.run_id, expected_driver=run.driver, driver=self.driver_id, now=now
            ):
                crash_point("orchestrator.run_claimed")  # test hook: claimed, no task started
                self._submit(run.run_id, now)
                got.append(run.run_id)
        if got:
            log.info("claimed runs %s", got)
            self.claimed.extend(got)
        return got

    def _submit(self, run_id: int, now: int) -> None:
        """Hand a claimed run to the driver; a run that cannot even be handed over fails alone."""
        try:
            self.runner.submit(self.store.get_run(run_id))
        except Exception as exc:
            if self.store.unavailable(exc):
                raise
            log.exception("starting run %s failed; that run fails, the others go on", run_id)
            what = f"{type(exc).__name__}: {exc}"
            message = f"Sluice failed while starting this run ({what}). The server log has the details."
            self.store.fail_run(run_id, message, now=now)

    def _tick_services(self, now: int) -> None:
        for service in self.services:
            try:
                service.tick(now)
            except Exception:
                log.exception("service %s failed its tick; it is called again next time", service.name)

    def _housekeeping(self, now: int) -> None:
        if now >= self._next_heartbeat:
            # QUEUED runs this driver will start are not heartbeated by the driver: prove we are alive.
            self._next_heartbeat = now + HEARTBEAT_MS
            self.store.heartbeat(self.driver_id, self.driver.run_ids, now)
        if now >= self._next_forget:
            self._next_forget = now + FORGET_INTERVAL_MS
            self.driver.forget_finished()

    def _finished(self, run_id: int) -> bool:
        state = self.driver.runs.get(run_id)
        return state is not None and state.finished

    def _log_drain(self) -> None:
        active = [r for r in self.driver.run_ids if not self._finished(r)]
        if active:
            log.info("stopping: draining runs %s for up to %.0f s", active, self.grace_s)


def run_in_thread(orchestrator: Orchestrator) -> Callable[[], None]:
    """Start ``orchestrator``'s loop; returns the function that stops, drains and closes it."""
    orchestrator.start()

    def shutdown() -> None:
        orchestrator.stop()
        orchestrator.join(orchestrator.grace_s + 10)
        orchestrator.close()

    return shutdown
