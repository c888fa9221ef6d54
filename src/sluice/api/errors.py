"""Databricks error bodies, in one place: ``{"error_code": "...", "message": "..."}`` with its HTTP status.

Every Sluice error a handler lets escape is mapped here, so handlers raise the engine's own exceptions:

- NotFoundError (unknown job or run): 400 INVALID_PARAMETER_VALUE, Databricks' quirk ("Job N does not
  exist." - the SDK turns that message into its NotFound error);
- InvalidJobError, InvalidRequestError and any other SluiceError: 400 INVALID_PARAMETER_VALUE;
- ConflictError (repairing an active run, deleting one): 400 INVALID_STATE;
- ApiError: its own status and code (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 RESOURCE_DOES_NOT_EXIST);
- request shape errors (a field of the wrong type, a missing one): 400 INVALID_PARAMETER_VALUE naming it;
- an unknown path: 404 ENDPOINT_NOT_FOUND; anything else: 500 INTERNAL_ERROR, logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.errors import ConflictError, InvalidJobError, SluiceError

log = logging.getLogger("sluice.api")

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
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


def body_of(exc: BaseException) -> tuple[int, str, str]:
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
    if isinstance(exc, SluiceError):
        return 400, INVALID_PARAMETER_VALUE, str(exc)
    return 500, "INTERNAL_ERROR", f"Sluice failed to answer this request: {type(exc).__name__}: {exc}"


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "request body"


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with a Databricks error body."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status, code, message = body_of(exc)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(status, code, message)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            where = _location(tuple(err.get("loc", ())))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(400, INVALID_PARAMETER_VALUE, "Invalid request: " + "; ".join(problems))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"No API found for '{request.method} {request.url.path}'."
            return error_response(404, "ENDPOINT_NOT_FOUND", message)
        code = "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(SluiceError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
