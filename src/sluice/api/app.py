"""The REST API of ``sluice serve``: Databricks Jobs API 2.2 (and 2.1) over the store.

``create_app`` is also the in-process test harness: give it a Store and drive it with FastAPI's
TestClient. Handlers only read and write the store; runs they create are driven by the orchestrator
(``sluice.server``), which ``on_run_created`` wakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from sluice import __version__
from sluice.api import errors, jobs, runs, scim, tokens
from sluice.api.deps import SharedStore, StoreDep, Stores, authenticate
from sluice.api.guard import DEFAULT_MAX_BODY_BYTES, RequestGuard
from sluice.store import Store
from sluice.store.workspace import workspace_id


def create_app(
    store: Store | None = None,
    *,
    stores: Stores | None = None,
    on_run_created: Callable[[], None] | None = None,
    auth: bool = True,
    allow_local_git_sources: bool = True,
    base_url: str | None = None,
    home: Path | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The API over ``store`` (shared by all requests) or ``stores`` (a connection per request thread).

    ``auth=False`` serves without tokens (tests of shapes; ``sluice serve`` with ``SLUICE_AUTH=false``, which
    adds :class:`sluice.server.local.LocalOnly`).
    ``allow_local_git_sources=False`` refuses jobs whose ``git_source.git_url`` is a local path or file://.
    ``base_url`` (the ``base_url`` setting) starts the links to run pages; without it, links use the URL
    the request came to. The Jobs UI (:mod:`sluice.web`) is served at ``/``; its catalog and compute pages
    need ``home`` (the ``home`` setting).
    A request body over ``max_body_bytes`` answers 413 (:mod:`sluice.api.guard`).
    """
    if (store is None) == (stores is None):
        raise ValueError("create_app needs exactly one of store= or stores=")
    provider: Stores = stores if stores is not None else SharedStore(store)  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            provider.close()

    app = FastAPI(
        docs_url=None,  # sluice.web serves /docs from local files (no CDN)
        title="Sluice",
        version=__version__,
        summary="Databricks Jobs API 2.2 on your own machines.",
        lifespan=lifespan,
    )
    app.state.stores = provider
    app.state.on_run_created = on_run_created
    app.state.auth = auth
    app.state.allow_local_git_sources = allow_local_git_sources
    app.state.base_url = base_url
    app.state.home = home
    errors.install(app)
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes)

    secured = [Depends(authenticate)]
    for version in ("2.2", "2.1"):
        api = APIRouter(prefix=f"/api/{version}", dependencies=secured)
        api.include_router(jobs.router)
        api.include_router(runs.router)
        app.include_router(api, include_in_schema=version == "2.2")
    app.include_router(tokens.router, prefix="/api/2.0", dependencies=secured)
    app.include_router(scim.router, prefix="/api/2.0", dependencies=secured)

    @app.get("/health", tags=["server"], summary="Liveness and store check (no token needed)")
    def health(store: StoreDep) -> dict[str, Any]:
        store.count_jobs()
        return {"status": "ok", "version": __version__}

    @app.get("/.well-known/databricks-config", tags=["server"], include_in_schema=False)
    def databricks_config(store: StoreDep) -> dict[str, Any]:
        # databricks-sdk probes this without credentials at client start-up; no OIDC here, tokens only.
        # The workspace id is not a secret (Databricks shows it in every workspace URL).
        return {"oidc_endpoint": "", "workspace_id": str(workspace_id(store))}

    from sluice import web

    web.install(app)
    return app
