"""``/docs``: Swagger UI over ``/openapi.json``, its files served from the ``swagger-ui-bundle`` package.

FastAPI's default page loads Swagger UI from a CDN and is blank offline; here every file comes from the
installed package in site-packages (nothing is copied into this repository) under ``/docs/assets/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def swagger_dir() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no type information

    return Path(swagger_ui_bundle.swagger_ui_path)


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_dir()), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
