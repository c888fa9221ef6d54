"""``sluice serve`` without auth (``SLUICE_AUTH=false``, ``[server] auth = false``): local use only.

Without tokens, whoever reaches the port acts as the server's user. So auth may be off only when the server
listens on a loopback address (:func:`refusal` names the fix otherwise), and :class:`LocalOnly` answers
403 to what a web page elsewhere could send to such a server through the user's browser:

- a request whose ``Host`` is not a loopback name (DNS rebinding: ``evil.example`` resolved to 127.0.0.1);
- a POST, PUT, PATCH or DELETE whose ``Origin`` is another site's (or ``null``): a cross-site form or
  ``fetch`` to the API, which needs no token here.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, ``[::1]`` brackets allowed) is this machine's loopback."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(host: str) -> str | None:
    """Why auth cannot be off when listening on ``host``, or None when it can."""
    if is_loopback(host):
        return None
    return (
        f"Auth is off (SLUICE_AUTH=false, [server] auth = false or --no-auth) but the server would listen "
        f"on {host}, which other machines can reach: without tokens anyone there could run code as you. "
        "Listen on a loopback address (--host 127.0.0.1) or turn auth on and log in with a token "
        "(sluice tokens create --comment browser)."
    )


def _host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``127.0.0.1:8080``, ``[::1]:8080``, ``localhost``)."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class LocalOnly:
    """ASGI middleware of a server without auth: only this machine's own pages and clients get through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.problem(scope)
            if problem is not None:
                body = json.dumps({"error_code": "PERMISSION_DENIED", "message": problem}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def problem(scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not is_loopback(_host_name(host)):
            return (
                f"This server runs without auth (SLUICE_AUTH=false) and answers only requests addressed to "
                f"this machine (127.0.0.1, localhost or [::1]), not to {host or 'no Host'}; "
                "to serve other names, turn auth on."
            )
        origin = headers.get("origin")
        unsafe = scope.get("method", "GET") not in _SAFE_METHODS
        if unsafe and origin is not None and (origin == "null" or urlsplit(origin).netloc != host):
            return (
                f"This server runs without auth (SLUICE_AUTH=false) and refuses a {scope.get('method')} "
                f"sent by a page of {origin}: only its own pages and non-browser clients may change it."
            )
        return None
