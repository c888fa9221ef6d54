"""``dbutils.secrets``: read the secrets ``sluice secrets`` stored, encrypted, in the store.

``get(scope, key)`` / ``getBytes(scope, key)`` return a value; ``list(scope)`` -> ``[SecretMetadata(key)]``;
``listScopes()`` -> ``[SecretScope(name)]``. The store is the one of ``SLUICE_DATABASE_URL`` (PostgreSQL)
or SQLite in ``SLUICE_HOME`` (the engine sets ``SLUICE_HOME`` for every task and tasks inherit the control
plane's environment), and the key is ``SLUICE_SECRETS_KEY`` or ``SLUICE_HOME/secrets.key``
(:mod:`sluice.store.secrets`). The database is opened on first use, not at import.

Every value read is registered with :mod:`sluice.runtime.redact`, so printing it shows ``[REDACTED]`` in
the task's log and a notebook's outputs (best effort, literal matching, as on Databricks).
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple

from sluice.runtime import redact

_List = list  # SecretsUtil.list shadows the builtin inside the class body

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from sluice.store.secrets import SecretStore


class SecretScope(namedtuple("SecretScope", ["name"])):
    """One scope, as ``dbutils.secrets.listScopes()`` returns it."""

    __slots__ = ()

    def getName(self) -> str:
        return str(self.name)


class SecretMetadata(namedtuple("SecretMetadata", ["key"])):
    """One secret's metadata (never its value), as ``dbutils.secrets.list(scope)`` returns it."""

    __slots__ = ()


_HELP = """dbutils.secrets provides utilities for leveraging secrets within notebooks.

get(scope: String, key: String): String -> Gets the string representation of a secret value
getBytes(scope: String, key: String): byte[] -> Gets the bytes representation of a secret value
list(scope: String): Seq -> Lists secret metadata for secrets within a scope
listScopes: Seq -> Lists secret scopes

Manage secrets with `sluice secrets` (create-scope, put-secret, list-secrets, delete-secret ...).
Printed secret values show as [REDACTED].
"""


class SecretsUtil:
    """``dbutils.secrets`` (Databricks' camelCase names on purpose)."""

    def __init__(self) -> None:
        self._store: SecretStore | None = None
        self._lock = threading.Lock()

    def _open(self) -> SecretStore:
        with self._lock:
            if self._store is None:
                from sluice.runtime.paths import home_from_env
                from sluice.store.secrets import SecretStore

                self._store = SecretStore.open(os.environ.get("SLUICE_DATABASE_URL") or None, home_from_env())
            return self._store

    def getBytes(self, scope: str, key: str) -> bytes:
        """The value of secret ``key`` in ``scope``, as bytes."""
        store = self._open()
        with self._lock:
            value = store.get(_name("scope", scope), _name("key", key))
        redact.register(value)
        return value

    def get(self, scope: str, key: str) -> str:
        """The value of secret ``key`` in ``scope``, as text (UTF-8)."""
        value = self.getBytes(scope, key)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"Secret {scope}/{key} holds bytes that are not UTF-8 text; read it with "
                f"dbutils.secrets.getBytes({scope!r}, {key!r})"
            ) from None

    def list(self, scope: str) -> list[SecretMetadata]:
        """The keys of ``scope`` (not their values)."""
        store = self._open()
        with self._lock:
            return [SecretMetadata(s.key) for s in store.list_secrets(_name("scope", scope))]

    def listScopes(self) -> _List[SecretScope]:
        """Every scope."""
        store = self._open()
        with self._lock:
            return [SecretScope(s.name) for s in store.list_scopes()]

    def help(self, method: str | None = None) -> None:
        print(_HELP)

    def close(self) -> None:
        """Close the database connection (reopened on next use)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _name(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"dbutils.secrets: {what} must be a string, not {value!r}")
    return value


#: ``dbutils.secrets`` of this process.
secrets = SecretsUtil()


def _forget_connection_in_child() -> None:
    """A forked child must not share its parent's database connection: it opens its own on first use."""
    secrets._store = None
    secrets._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_connection_in_child)
