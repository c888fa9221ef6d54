"""The Jobs UI's catalog and compute pages: catalogs, schemas, tables (columns, history, first rows),
volumes (files), and the all-purpose clusters with start and stop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response

from sluice.errors import NotFoundError, SluiceError
from sluice.store.catalog import CatalogStore
from sluice.web.auth import check_post, viewer
from sluice.web.pages import page, see_other, store_of

ROWS = 100
HISTORY = 25
FILES = 500


def _home(request: Request) -> Path:
    home: Path | None = request.app.state.home
    if home is None:
        raise NotFoundError(
            "This server was started without a home directory: it has no catalog or clusters."
        )
    return home


def _catalog(request: Request) -> CatalogStore:
    return CatalogStore.of(store_of(request), _home(request))


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if seconds else ""


def install(app: FastAPI) -> None:  # noqa: C901 - the catalog's and compute's routes, one closure each
    @app.get("/catalog", include_in_schema=False)
    def catalogs(request: Request) -> Response:
        who = viewer(request, store_of(request))
        catalog = _catalog(request)
        schemas = catalog.list_schemas()
        tree = {name: [s for s in schemas if s.catalog_name == name] for name in catalog.list_catalogs()}
        return page(request, "catalog.html", who, tree=tree)

    @app.get("/catalog/{catalog_name}/{schema_name}", include_in_schema=False)
    def schema(request: Request, catalog_name: str, schema_name: str) -> Response:
        who = viewer(request, store_of(request))
        catalog = _catalog(request)
        if not catalog.schema_exists(catalog_name, schema_name):
            raise NotFoundError(f"Schema {catalog_name}.{schema_name} does not exist.")
        return page(
            request,
            "schema.html",
            who,
            catalog_name=catalog_name,
            schema_name=schema_name,
            tables=catalog.list_tables(catalog_name, schema_name),
            volumes=catalog.list_volumes(catalog_name, schema_name),
        )

    @app.get("/catalog/{catalog_name}/{schema_name}/{table_name}", include_in_schema=False)
    def table(request: Request, catalog_name: str, schema_name: str, table_name: str) -> Response:
        from sluice.catalog import tables

        who = viewer(request, store_of(request))
        record = _catalog(request).get_table(catalog_name, schema_name, table_name)
        if record is None:
            raise NotFoundError(f"Table {catalog_name}.{schema_name}.{table_name} does not exist.")
        context: dict[str, Any] = {"table": record, "problem": ""}
        try:
            context["columns"] = tables.columns(record.location)
            context["history"] = tables.history(record.location, limit=HISTORY)
            context["names"], context["rows"] = tables.first_rows(record.location, ROWS)
        except Exception as exc:
            context.update(columns=[], history=[], names=[], rows=[])
            context["problem"] = f"The table's files at {record.location} cannot be read: {exc}"
        return page(request, "table.html", who, **context)

    @app.get("/catalog/{catalog_name}/{schema_name}/volumes/{volume_name}", include_in_schema=False)
    def volume(
        request: Request, catalog_name: str, schema_name: str, volume_name: str, path: str = ""
    ) -> Response:
        who = viewer(request, store_of(request))
        record = _catalog(request).get_volume(catalog_name, schema_name, volume_name)
        if record is None:
            raise NotFoundError(f"Volume {catalog_name}.{schema_name}.{volume_name} does not exist.")
        root = Path(record.location).resolve()
        folder = (root / path.strip("/")).resolve()
        if not folder.is_relative_to(root) or not folder.is_dir():
            raise NotFoundError(f"No folder '{path}' in volume {record.full_name}.")
        entries = []
        for child in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))[:FILES]:
            stat = child.stat()
            entries.append(
                {
                    "name": child.name,
                    "dir": child.is_dir(),
                    "path": str(child.relative_to(root)),
                    "size": "" if child.is_dir() else f"{stat.st_size:,} B",
                    "modified": _stamp(stat.st_mtime),
                }
            )
        relative = str(folder.relative_to(root)) if folder != root else ""
        shown = f"/Volumes/{catalog_name}/{schema_name}/{volume_name}/{relative}".rstrip("/")
        return page(
            request, "volume.html", who, volume=record, entries=entries, shown=shown, relative=relative
        )

    @app.get("/compute", include_in_schema=False)
    def compute(request: Request, problem: str = "") -> Response:
        from sluice.compute.clusters import cluster_name, list_clusters

        who = viewer(request, store_of(request))
        clusters = [
            {
                "name": cluster_name(i),
                "engine": i.engine,
                "endpoint": i.endpoint,
                "pid": i.pid,
                "started": _stamp(i.started),
            }
            for i in list_clusters(_home(request))
        ]
        return page(request, "compute.html", who, clusters=clusters, problem=problem)

    @app.post("/compute/start", include_in_schema=False)
    def start(
        request: Request, name: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
    ) -> Response:
        from sluice.compute.clusters import start_cluster

        store = store_of(request)
        check_post(request, viewer(request, store), csrf)
        try:
            start_cluster(_home(request), name.strip())
        except SluiceError as exc:
            return compute(request, problem=str(exc))
        return see_other("/compute")

    @app.post("/compute/{name}/stop", include_in_schema=False)
    def stop(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
        from sluice.compute.clusters import stop_cluster

        store = store_of(request)
        check_post(request, viewer(request, store), csrf)
        try:
            stop_cluster(_home(request), name)
        except SluiceError as exc:
            return compute(request, problem=str(exc))
        return see_other("/compute")
