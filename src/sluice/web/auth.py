"""Who is looking at a page: the API token from ``Authorization: Bearer`` or the session cookie.

The login page puts the token in an ``HttpOnly``, ``SameSite=Strict`` cookie. Forms carry a CSRF token
derived from the session's token and a per-process secret (HMAC-SHA256); every POST checks it, and refuses
an ``Origin`` other than the server's own. Without auth (``create_app(auth=False)``) nobody logs in and the
CSRF token derives from the process secret alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Request

from sluice.engine.clock import now_ms
from sluice.identity import local_user
from sluice.store import Store
from sluice.store.tokens import find_token

COOKIE = "sluice_session"
#: Each process signs CSRF tokens with a secret of its own (replicas: a session's forms post back to the
#: process that served them, or the user reloads the page).
_SECRET = secrets.token_bytes(32)


class LoginRequired(Exception):
    """The request has no usable token: pages redirect to the login page, data calls answer 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfError(Exception):
    """A POST without the page's CSRF token, or from another origin."""


@dataclass(frozen=True)
class Viewer:
    user_name: str
    #: The token the request carried (None without auth).
    token: str | None
    #: Whether the token came in the session cookie (only then can a cross-site request carry it).
    from_cookie: bool

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(token: str | None) -> str:
    return hmac.new(_SECRET, (token or "").encode(), hashlib.sha256).hexdigest()


def token_problem(store: Store, value: str) -> str | None:
    """Why ``value`` cannot log in, or None when it can."""
    token = find_token(store, value)
    if token is None:
        return "No such token on this server."
    if token.revoked_time:
        return f"Token {token.token_id} was revoked."
    if not token.usable(now_ms()):
        return f"Token {token.token_id} expired; create a new one with `sluice tokens create`."
    return None


def viewer(request: Request, store: Store) -> Viewer:
    """The caller, or LoginRequired."""
    if not request.app.state.auth:
        return Viewer(local_user(), None, from_cookie=False)
    header = request.headers.get("authorization", "")
    from_cookie = False
    if header.lower().startswith("bearer "):
        value = header[7:].strip()
    else:
        value = request.cookies.get(COOKIE, "")
        from_cookie = True
    if not value:
        raise LoginRequired("Log in with an API token.")
    problem = token_problem(store, value)
    if problem:
        raise LoginRequired(problem)
    info = find_token(store, value)
    return Viewer((info.user_name if info else "") or local_user(), value, from_cookie)


def check_post(request: Request, who: Viewer, sent: str | None) -> None:
    """CSRF defence for a form POST: same origin, and the page's token when the session is a cookie."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise CsrfError(f"a form from {origin} cannot act on this server")
    if who.token is not None and not who.from_cookie:
        return  # a Bearer header is never sent by the browser on its own
    if not sent or not hmac.compare_digest(sent, who.csrf):
        raise CsrfError("the form's CSRF token is missing or stale; reload the page and try again")


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/jobs"
    return target
