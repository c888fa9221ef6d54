"""What every request passes before a handler sees it, and what answers when a handler fails anyway.

:class:`RequestGuard` is the outermost layer of the API below Starlette's own error middleware:

- a request body over ``max_body_bytes`` (Content-Length or counted, so chunked bodies too) answers 413
  ``REQUEST_TOO_LARGE`` naming the limit and the setting; the body is read and dropped (up to a bound) so
  the client reads the answer instead of a reset connection;
- a JSON body that does not parse answers 400 ``MALFORMED_REQUEST``; one that parses but holds what no
  Jobs API field can take (integers outside 64 bits, NaN or infinite numbers, strings with NUL characters
  or lone surrogates, more than :data:`MAX_DEPTH` levels of nesting) answers 400
  ``INVALID_PARAMETER_VALUE`` naming the field; so does a query string with a NUL character. Nothing of
  that reaches the store, whose databases refuse such values with errors of their own;
- an exception no handler answers (a bug) is logged with its traceback under a random reference id, and
  the client gets 500 ``INTERNAL_ERROR`` "Internal error; reference id <id>" with nothing of the exception
  in it, on a connection that stays open.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from sluice.api.errors import INVALID_PARAMETER_VALUE, MALFORMED_REQUEST
from sluice.settings import DEFAULT_MAX_REQUEST_BODY_BYTES

log = logging.getLogger("sluice.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The default limit of a request body: 10 MiB (the ``max_request_body_bytes`` setting).
DEFAULT_MAX_BODY_BYTES = DEFAULT_MAX_REQUEST_BODY_BYTES
#: Bytes of an over-limit body read and dropped before answering 413, so the client can read the answer;
#: past this the connection is closed instead.
DRAIN_BYTES = 64 * 1024 * 1024
#: The deepest nesting of arrays and objects a JSON body may have (Jobs API documents nest about 8 deep).
MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
INTERNAL_ERROR = "INTERNAL_ERROR"


class BadInput(Exception):
    """A request the guard refuses: HTTP 400 with ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RequestGuard:
    """ASGI middleware: body limit, JSON and query sanity, and the last-resort 500 (module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await self._read_body(headers, receive, send)
        if body is None:  # answered 413
            return
        try:
            check_query(scope.get("query_string", b""))
            if body and _is_json(headers.get("content-type")):
                check_json(body)
        except BadInput as bad:
            await send_error(send, 400, bad.code, bad.message)
            return
        await self._call_app(scope, body, receive, send)

    async def _read_body(self, headers: dict[str, str], receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a 413 has been answered for a body over the limit."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            if "100-continue" in headers.get("expect", "").lower():
                await self._too_large(send)  # the client has not sent the body: nothing to drain
                return None
            await _drain(receive, int(declared))
            await self._too_large(send)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)  # the app will see the disconnect on its own receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_BYTES)
                await self._too_large(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        limit = self.max_body_bytes
        await send_error(
            send,
            413,
            REQUEST_TOO_LARGE,
            f"The request body is larger than the server's limit of {limit} bytes ({_mib(limit)}); "
            "send a smaller request, or raise SLUICE_MAX_REQUEST_BODY_BYTES "
            "([server] max_request_body_bytes) on the server.",
            close=True,
        )

    async def _call_app(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as exc:
            reference = secrets.token_hex(6)
            log.error(
                "%s %s failed (reference id %s)",
                scope.get("method"),
                scope.get("path"),
                reference,
                exc_info=exc,
            )
            if started:
                raise  # half an answer is out: only closing the connection can tell the client
            await send_error(send, 500, INTERNAL_ERROR, f"Internal error; reference id {reference}")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.4g} MiB"


async def _drain(receive: Receive, at_most: int) -> None:
    """Read and drop up to ``at_most`` more bytes of the body (then stop: the connection is closed)."""
    dropped = 0
    while dropped <= at_most:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def send_error(send: Send, status: int, code: str, message: str, *, close: bool = False) -> None:
    payload = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses the body as JSON: no content type, ``application/json`` or ``+json``."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_json(body: bytes) -> None:
    """Parse ``body``; BadInput when it is not JSON or holds a value no field of the API can take."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BadInput(MALFORMED_REQUEST, f"Malformed JSON request body: {exc.msg} at {where}.") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadInput(MALFORMED_REQUEST, f"Malformed JSON request body: {reason}.") from None
    check_values(doc)


def check_values(doc: Any) -> None:
    """BadInput naming the first field whose value no Jobs API field can hold (module docstring)."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where = path or "the request body"
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise BadInput(
                    INVALID_PARAMETER_VALUE, f"{where} nests arrays and objects more than {MAX_DEPTH} deep."
                )
            for key, item in value.items():
                _check_text(key, f"{where} (a field name)")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise BadInput(
                    INVALID_PARAMETER_VALUE, f"{where} nests arrays and objects more than {MAX_DEPTH} deep."
                )
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise BadInput(
                    INVALID_PARAMETER_VALUE,
                    f"{where}: {_short(value)} is out of range; integers of the Jobs API are 64-bit "
                    f"({INT64_MIN} to {INT64_MAX}).",
                )
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadInput(INVALID_PARAMETER_VALUE, f"{where}: the number is too large.")


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise BadInput(INVALID_PARAMETER_VALUE, f"{where} contains a NUL character (\\u0000); remove it.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            INVALID_PARAMETER_VALUE,
            f"{where} contains a lone UTF-16 surrogate, which is not a character; send valid Unicode.",
        ) from None


def check_query(query_string: bytes) -> None:
    """BadInput when a query parameter holds a NUL character (no parameter of the API can)."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        _check_text(name, "a query parameter name")
        _check_text(value, f"query parameter {name}")
