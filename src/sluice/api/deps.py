"""What handlers need: a store connection for their thread, the caller's token, the orchestrator's bell."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluice.api.errors import ApiError
from sluice.engine.clock import now_ms
from sluice.identity import local_user
from sluice.store import Store
from sluice.store.tokens import TokenInfo, find_token


class Stores(Protocol):
    """Hands each request thread a Store; closes them all at shutdown."""

    def get(self) -> Store: ...

    def close(self) -> None: ...


class SharedStore:
    """One Store for every thread (they take turns on its lock): tests and ``sqlite:///:memory:``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self) -> Store:
        return self.store

    def close(self) -> None:
        """The store belongs to the caller, who closes it."""


class ThreadStores:
    """A connection per request thread, so reads of one request never wait for another's."""

    def __init__(self, url: str | None, home: Path) -> None:
        self.url = url
        self.home = home
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open(self.url, self.home)
            with self._lock:
                self._all.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            store.close()


def _store(request: Request) -> Store:
    stores: Stores = request.app.state.stores
    return stores.get()


StoreDep = Annotated[Store, Depends(_store)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A Sluice API token: `sluice tokens create --comment NAME` prints one (dapi...).",
)

UNAUTHENTICATED = (
    "Credential was not sent or was of an unsupported type for this API. "
    "Send 'Authorization: Bearer <token>'; create a token with `sluice tokens create --comment NAME`."
)


def authenticate(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo | None:
    """The caller's token; 401 without one, 403 for an unknown, revoked or expired one."""
    if not request.app.state.auth:
        return None
    if credentials is None:
        raise ApiError(401, "UNAUTHENTICATED", UNAUTHENTICATED)
    token = find_token(store, credentials.credentials)
    now = now_ms()
    if token is None:
        raise ApiError(403, "PERMISSION_DENIED", "Invalid access token: no such token on this server.")
    if token.revoked_time:
        raise ApiError(403, "PERMISSION_DENIED", f"Invalid access token: token {token.token_id} was revoked.")
    if not token.usable(now):
        raise ApiError(
            403,
            "PERMISSION_DENIED",
            f"Invalid access token: token {token.token_id} expired; "
            "create a new one with `sluice tokens create`.",
        )
    return token


def _caller(token: Annotated[TokenInfo | None, Depends(authenticate)]) -> str:
    """The user the request acts as: its token's user; the local user without tokens (``auth=False``) or
    for a token created before Sluice recorded users."""
    if token is not None and token.user_name:
        return token.user_name
    return local_user()


#: The user name of the caller (see :mod:`sluice.identity`).
CallerDep = Annotated[str, Depends(_caller)]


def run_created(request: Request) -> None:
    """Tell the orchestrator (if there is one in this process) that a run waits for a driver."""
    bell: Callable[[], None] | None = request.app.state.on_run_created
    if bell is not None:
        bell()
