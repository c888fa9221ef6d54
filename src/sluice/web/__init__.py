"""The Jobs UI of ``sluice serve`` (docs/adr/0011-jobs-ui.md): server-rendered pages under ``/jobs``, live
run pages by server-sent events, and ``/docs`` served without a CDN.

It reads and writes only through the store's and the engine's public functions, as the REST API does.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Serve the UI (pages, static files, offline API docs) from ``app``."""
    from sluice.web import catalog, docs, pages

    app.state.stopping = False  # sluice serve sets it on SIGTERM: the run pages' event streams end

    pages.install(app)
    catalog.install(app)
    docs.install(app)
