"""``sluice serve``: the REST API (uvicorn) and the orchestrator thread in one process.

Signals: the first SIGTERM or SIGINT stops accepting requests and new runs, finishes the requests in
progress, then drains runs in flight for the grace period; a second one ends the drain at once. Runs still
active at exit stay in the store and are adopted by the next ``sluice serve`` (or any replica).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import uvicorn

from sluice import crashpoints
from sluice.api.app import create_app
from sluice.api.deps import ThreadStores
from sluice.errors import SluiceError
from sluice.server import local
from sluice.server.crash_executor import armed_executor
from sluice.server.orchestrator import Orchestrator
from sluice.server.services import Service, TokenJanitor
from sluice.settings import Settings
from sluice.store import Store

log = logging.getLogger("sluice.server")


#: Extra services to run in every ``sluice serve``: callables that build one from the settings and the
#: orchestrator's store (the scheduler and the notifier register themselves here).
def _notifier(settings: Settings, store: Store) -> Service:
    from sluice.notify import Notifier, NotifySettings

    return Notifier(store, NotifySettings.of(settings))


def _scheduler(settings: Settings, store: Store) -> Service:
    from sluice.scheduler import CatalogTableVersions, Scheduler

    return Scheduler(
        store,
        table_versions=CatalogTableVersions(settings.database_url, settings.home),
        file_locations=lambda url: local_location(url, settings.home),
    )


def local_location(url: str, home: Path) -> str:
    """A file-arrival URL as the scheduler lists it: Databricks paths (``/Volumes/...``, ``dbfs:/...``) map
    to their directories under ``home``; other URLs (local paths, fsspec URLs) are used as they are."""
    if url.startswith(("/Volumes/", "dbfs:/")):
        from sluice.runtime.paths import to_local

        return str(to_local(url, home))
    return url


SERVICE_FACTORIES: list[Callable[[Settings, Store], Service]] = [_scheduler, _notifier]


class _Server(uvicorn.Server):
    """uvicorn, with the banner printed once the port is bound and signals left to ``serve``."""

    def __init__(self, config: uvicorn.Config, banner: Callable[[str], None]) -> None:
        super().__init__(config)
        self._banner = banner

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # serve() owns SIGTERM/SIGINT: they stop the orchestrator too

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._banner(f"http://{host}:{port}")


def task_api_url(url: str) -> str:
    """The URL task processes on this machine use: a wildcard bind address becomes the loopback one."""
    wildcards = (("//0.0.0.0:", "//127.0.0.1:"), ("//:::", "//[::1]:"), ("//[::]:", "//[::1]:"))
    for wildcard, loopback in wildcards:
        url = url.replace(wildcard, loopback)
    return url


def banner(url: str) -> None:
    sys.stdout.write(
        f"Sluice is serving the Jobs UI at {url}/jobs  (API docs: {url}/docs, health: {url}/health)\n"
        "Create a token:   sluice tokens create --comment my-laptop\n"
        f"Use it:           DATABRICKS_HOST={url} DATABRICKS_TOKEN=dapi... python -c "
        "'from databricks.sdk import WorkspaceClient; print(list(WorkspaceClient().jobs.list()))'\n"
    )
    sys.stdout.flush()


def banner_without_auth(url: str) -> None:
    sys.stdout.write(
        f"Sluice is serving the Jobs UI at {url}/jobs  (API docs: {url}/docs, health: {url}/health)\n"
        "Auth is off (local use): no login, no token; anyone on this machine acts as you.\n"
    )
    sys.stdout.flush()


def serve(settings: Settings, *, grace_s: float = 20.0, log_level: str = "info") -> None:
    """Serve until a signal stops it."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    crashpoints.check()
    if not settings.auth and (why := local.refusal(settings.server_host)):
        raise SluiceError(why)
    store = Store.open(settings.database_url, settings.home)
    services: list[Service] = [TokenJanitor(store)]
    services += [make(settings, store) for make in SERVICE_FACTORIES]
    orchestrator = Orchestrator(
        store,
        home=settings.home,
        parallelism=settings.parallelism,
        services=services,
        grace_s=grace_s,
        git_timeout=settings.git_timeout,
        executor=armed_executor(),  # None (the default executor) unless a test armed a crash point
    )
    app = create_app(
        stores=ThreadStores(settings.database_url, settings.home),
        on_run_created=orchestrator.wake,
        allow_local_git_sources=settings.allow_local_git_sources,
        base_url=settings.base_url,
        home=settings.home,
        max_body_bytes=settings.max_request_body_bytes,
        auth=settings.auth,
    )
    if not settings.auth:
        app.add_middleware(local.LocalOnly)
    config = uvicorn.Config(
        app,
        host=settings.server_host,
        port=settings.server_port,
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="on",
    )

    def listening(url: str) -> None:
        (banner if settings.auth else banner_without_auth)(url)
        orchestrator.driver.api_url = task_api_url(url)  # tasks call this server with a token of their run

    server = _Server(config, listening)
    hits: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        hits.append(signum)
        server.should_exit = True
        app.state.stopping = True  # open event streams of the Jobs UI end, so they do not hold the exit
        orchestrator.stop()
        if len(hits) > 1:
            server.force_exit = True
            orchestrator.grace_s = 0.0

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    orchestrator.start()
    try:
        server.run()
    finally:
        orchestrator.stop()
        orchestrator.join(orchestrator.grace_s + 10)
        orchestrator.close()
        store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
