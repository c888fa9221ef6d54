"""Databricks error bodies, in one place: ``{"error_code": "...", "message": "..."}`` with its HTTP status.

Every Sluice error a handler lets escape is mapped here, so handlers raise the engine's own exceptions:

- NotFoundError (unknown job or run): 400 INVALID_PARAMETER_VALUE, Databricks' quirk ("Job N does not
  exist." - the SDK turns that message into its NotFound error);
- InvalidJobError, InvalidRequestError and any other SluiceError: 400 INVALID_PARAMETER_VALUE;
- ConflictError (repairing an active run, deleting one): 400 INVALID_STATE;
- ApiError: its own status and code (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 RESOURCE_DOES_NOT_EXIST);
- request shape errors (a field of the wrong type, a missing one): 400 INVALID_PARAMETER_VALUE naming it;
  a body that is not JSON: 400 MALFORMED_REQUEST;
- an unknown path: 404 ENDPOINT_NOT_FOUND; a method the path does not take: 405 METHOD_NOT_ALLOWED.

What no handler answers (a bug) is answered by :mod:`sluice.api.guard`: 500 INTERNAL_ERROR with only a
reference id, the traceback in the server log under that id. The guard also answers bodies over the size
limit (413) and JSON values no field can hold (400) before any handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.errors import ConflictError, InvalidJobError, SluiceError

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
MALFORMED_REQUEST = "MALFORMED_REQUEST"
INVALID_STATE = "INVALID_STATE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"


class ApiError(Exception):
    """An error answered as is: HTTP ``status`` with ``{"error_code": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, INVALID_PARAMETER_VALUE, message)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, headers=dict(headers or {})
    )


def body_of(exc: ApiError | SluiceError) -> tuple[int, str, str]:
    """The status, error code and message that answer ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message
    if isinstance(exc, InvalidJobError):
        return (
            400,
            INVALID_PARAMETER_VALUE,
            "Invalid job settings: " + "; ".join(str(p) for p in exc.problems),
        )
    if isinstance(exc, ConflictError):
        return 400, INVALID_STATE, str(exc)
    return 400, INVALID_PARAMETER_VALUE, str(exc)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "request body"


#: The error body every status below 200 or above 399 carries, in the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
}
#: What each error status means, for the OpenAPI document.
ERROR_STATUSES = {
    "400": "INVALID_PARAMETER_VALUE: a field of the wrong type or out of range, invalid job settings, an "
    'unknown job or run ("Job 7 does not exist."); INVALID_STATE: the run is in the wrong state; '
    "MALFORMED_REQUEST: the body is not JSON.",
    "401": "UNAUTHENTICATED: no token was sent.",
    "403": "PERMISSION_DENIED: the token is unknown, revoked or expired.",
    "404": "RESOURCE_DOES_NOT_EXIST: nothing has that id.",
    "413": "REQUEST_TOO_LARGE: the body is over the server's limit (10 MiB unless configured).",
    "500": "INTERNAL_ERROR: a bug in Sluice; the message carries a reference id the server log explains.",
}


def _document_errors(schema: dict[str, Any]) -> None:
    """Every operation answers 400, 413 and 500 (and 401, 403 when it needs a token) with the error body;
    FastAPI's 422 is never answered (validation errors are 400), so it goes."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = {"400", "413", "500"} | ({"401", "403"} if operation.get("security") else set())
            for code in sorted(codes | {c for c in responses if c in ERROR_STATUSES}):
                entry = responses.setdefault(code, {})
                entry.setdefault("description", ERROR_STATUSES[code])
                entry["content"] = ref


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with a Databricks error body, and say so in its OpenAPI document."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from sluice.api.jobs import document_settings  # jobs imports this module

            doc = base_openapi()  # base_openapi caches its document in app.openapi_schema
            _document_errors(doc)
            document_settings(doc)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError | SluiceError)
        status, code, message = body_of(exc)
        return error_response(status, code, message)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                message = "Malformed JSON request body: it does not parse."
                return error_response(400, MALFORMED_REQUEST, message)
            where = _location(tuple(err.get("loc", ())))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(400, INVALID_PARAMETER_VALUE, "Invalid request: " + "; ".join(problems))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"No API found for '{request.method} {request.url.path}'."
            return error_response(404, "ENDPOINT_NOT_FOUND", message)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
            return error_response(405, "METHOD_NOT_ALLOWED", message, headers=exc.headers)
        if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
            return error_response(400, MALFORMED_REQUEST, f"Malformed request body: {exc.detail}")
        code = "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(SluiceError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
