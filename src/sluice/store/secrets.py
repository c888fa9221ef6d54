"""Secret scopes and encrypted secret values in the store (``dbutils.secrets``, ``sluice secrets``).

Values are encrypted with AES-256-GCM before they reach the database; the key never does
(docs/adr/0006-secrets-at-rest.md). The key is, in this order:

- ``SLUICE_SECRETS_KEY``: 32 random bytes, URL-safe base64 (``sluice secrets`` prints how to make one);
- ``SLUICE_HOME/secrets.key``: the same text in a file of mode 0600, created by the first ``put``.

Each value is stored as base64 of ``nonce (12 bytes) + ciphertext``, authenticated with its scope and key
name as associated data (a value copied to another name does not decrypt), with the fingerprint of the key
that encrypted it (``key_id``) so that a wrong key is named as such. Task processes read secrets through
:class:`SecretStore` too, over the same DB-API connection the store uses (``sluice.store.db``).

Names follow Databricks: letters, digits, ``-``, ``_``, ``.``, at most 128 characters; a value is at most
128 KiB; a scope holds at most 1000 secrets.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sluice.errors import ConflictError, InvalidRequestError, NotFoundError, SluiceError
from sluice.store import db as _db

KEY_ENV = "SLUICE_SECRETS_KEY"
KEY_FILE = "secrets.key"
MAX_VALUE_BYTES = 128 * 1024
MAX_SECRETS_PER_SCOPE = 1000
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_NONCE = 12


class SecretsKeyError(SluiceError):
    """The encryption key is missing, malformed, exposed, or not the one the values were encrypted with."""


@dataclass(frozen=True)
class ScopeRecord:
    name: str
    created_time: int


@dataclass(frozen=True)
class SecretRecord:
    key: str
    last_updated_timestamp: int


def check_name(what: str, name: object) -> str:
    """A valid scope or key name, or InvalidRequestError saying what a valid one looks like."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            f"{what} name {name!r} is invalid: use letters, digits, '-', '_' and '.', at most 128 characters"
        )
    return name


def new_key_text() -> str:
    """A fresh key as ``SLUICE_SECRETS_KEY`` or ``secrets.key`` hold it."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


class SecretsKey:
    """The AES-256 key, where it came from, and its fingerprint."""

    __slots__ = ("_aead", "key_id", "material", "source")

    def __init__(self, material: bytes, source: str) -> None:
        self.material = material
        self.source = source
        self.key_id = hashlib.sha256(material).hexdigest()[:16]
        self._aead: object | None = None

    def _cipher(self) -> object:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # ~60 ms: only when used

            self._aead = AESGCM(self.material)
        return self._aead

    def encrypt(self, scope: str, key: str, value: bytes) -> str:
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._cipher().encrypt(nonce, value, _aad(scope, key))  # type: ignore[attr-defined]
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, scope: str, key: str, stored: str, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise SecretsKeyError(
                f"Secret {scope}/{key} was encrypted with key {key_id}, but the key in use "
                f"({self.source}) is {self.key_id}: set {KEY_ENV} or SLUICE_HOME/{KEY_FILE} to the key the "
                f"secrets were written with, or put the secret again"
            )
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(stored)
        try:
            value: bytes = self._cipher().decrypt(raw[:_NONCE], raw[_NONCE:], _aad(scope, key))  # type: ignore[attr-defined]
        except InvalidTag:
            raise SecretsKeyError(
                f"Secret {scope}/{key} does not decrypt with key {self.key_id}: the stored value was "
                f"altered or moved; put the secret again"
            ) from None
        return value


def _aad(scope: str, key: str) -> bytes:
    return f"{scope}\0{key}".encode()


def _decode_key(text: str, source: str) -> SecretsKey:
    try:
        material = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        material = b""
    if len(material) != 32:
        raise SecretsKeyError(
            f"{source} does not hold a secrets key (32 bytes, URL-safe base64); make one with "
            f'`python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`'
        )
    return SecretsKey(material, source)


def load_key(home: Path, *, create: bool = False) -> SecretsKey:
    """The key from ``SLUICE_SECRETS_KEY`` or ``home/secrets.key`` (made, mode 0600, when ``create``)."""
    text = os.environ.get(KEY_ENV)
    if text:
        return _decode_key(text, KEY_ENV)
    path = home / KEY_FILE
    if create and not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(new_key_text() + "\n")
    try:
        mode = path.stat().st_mode
        text = path.read_text("ascii")
    except FileNotFoundError:
        raise SecretsKeyError(
            f"No secrets key: {path} does not exist and {KEY_ENV} is not set; secrets are encrypted with "
            f"that key (`sluice secrets put-secret` creates the file)"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsKeyError(
            f"{path} is accessible by other users (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )
    return _decode_key(text, str(path))


class SecretStore:
    """Scopes and secrets in the store's database. ``home`` locates ``secrets.key``."""

    def __init__(self, database: _db.Database, home: Path) -> None:
        self._db = database
        self.home = home
        self._key: SecretsKey | None = None

    @classmethod
    def open(cls, url: str | None, home: Path) -> SecretStore:
        """Open the store's database (``url`` None: SQLite in ``home``), as ``Store.open`` does."""
        return cls(_db.connect(url, home), home)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SecretStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key(self, *, create: bool = False) -> SecretsKey:
        if self._key is None:
            self._key = load_key(self.home, create=create)
        return self._key

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.begin()
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    # -- scopes ---------------------------------------------------------------------------------------

    def create_scope(self, scope: str, now: int) -> None:
        check_name("Scope", scope)
        try:
            self._db.execute(
                "INSERT INTO secret_scopes (name, created_time) VALUES (:name, :now)",
                {"name": scope, "now": now},
            )
        except self._db.integrity_errors:
            raise ConflictError(f"Scope {scope} already exists") from None

    def delete_scope(self, scope: str) -> None:
        with self._transaction():
            self._require_scope(scope)
            self._db.execute("DELETE FROM secrets WHERE scope = :scope", {"scope": scope})
            self._db.execute("DELETE FROM secret_scopes WHERE name = :scope", {"scope": scope})

    def list_scopes(self) -> list[ScopeRecord]:
        rows = self._db.execute("SELECT name, created_time FROM secret_scopes ORDER BY name", {}).fetchall()
        return [ScopeRecord(str(r[0]), int(r[1])) for r in rows]

    def _require_scope(self, scope: str) -> None:
        row = self._db.execute("SELECT 1 FROM secret_scopes WHERE name = :scope", {"scope": scope}).fetchone()
        if row is None:
            raise NotFoundError(
                f"Scope {scope} does not exist; create it with `sluice secrets create-scope {scope}`"
            )

    # -- secrets --------------------------------------------------------------------------------------

    def put(self, scope: str, key: str, value: bytes, now: int) -> None:
        """Create or replace secret ``key`` of ``scope`` (the scope must exist)."""
        check_name("Secret key", key)
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidRequestError(
                f"Secret {scope}/{key} is {len(value):,} bytes; "
                f"the limit is {MAX_VALUE_BYTES:,} bytes (128 KiB)"
            )
        box = self.key(create=True)
        sealed = box.encrypt(scope, key, value)
        with self._transaction():
            self._require_scope(scope)
            count = self._db.execute(
                "SELECT COUNT(*) FROM secrets WHERE scope = :scope AND key <> :key",
                {"scope": scope, "key": key},
            ).fetchone()[0]
            if count >= MAX_SECRETS_PER_SCOPE:
                raise InvalidRequestError(
                    f"Scope {scope} already holds {MAX_SECRETS_PER_SCOPE} secrets, the most a scope may hold"
                )
            self._db.execute(
                "INSERT INTO secrets (scope, key, value, key_id, last_updated_timestamp) "
                "VALUES (:scope, :key, :value, :key_id, :now) "
                "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, key_id = excluded.key_id, "
                "last_updated_timestamp = excluded.last_updated_timestamp",
                {"scope": scope, "key": key, "value": sealed, "key_id": box.key_id, "now": now},
            )

    def get(self, scope: str, key: str) -> bytes:
        """The decrypted value; NotFoundError naming the scope or the key."""
        row = self._db.execute(
            "SELECT value, key_id FROM secrets WHERE scope = :scope AND key = :key",
            {"scope": scope, "key": key},
        ).fetchone()
        if row is None:
            self._require_scope(scope)
            raise NotFoundError(
                f"Secret does not exist with scope: {scope} and key: {key}; "
                f"put it with `sluice secrets put-secret {scope} {key}`"
            )
        return self.key().decrypt(scope, key, str(row[0]), str(row[1]))

    def list_secrets(self, scope: str) -> list[SecretRecord]:
        self._require_scope(scope)
        rows = self._db.execute(
            "SELECT key, last_updated_timestamp FROM secrets WHERE scope = :scope ORDER BY key",
            {"scope": scope},
        ).fetchall()
        return [SecretRecord(str(r[0]), int(r[1])) for r in rows]

    def delete_secret(self, scope: str, key: str) -> None:
        with self._transaction():
            self._require_scope(scope)
            cursor = self._db.execute(
                "DELETE FROM secrets WHERE scope = :scope AND key = :key", {"scope": scope, "key": key}
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Secret does not exist with scope: {scope} and key: {key}")
