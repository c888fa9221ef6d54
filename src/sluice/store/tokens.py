"""API tokens of ``sluice serve``: created with a random value shown once, kept as its SHA-256.

A token value is ``dapi`` plus 32 random bytes in hex (the shape of a Databricks personal access token),
so a plain SHA-256 is a safe digest: there is nothing to brute-force. Times are epoch milliseconds;
``expiry_time`` is -1 for a token that never expires. Each token acts as one user (``user_name``, see
:mod:`sluice.identity`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sluice.errors import InvalidRequestError, NotFoundError
from sluice.store import Store

TOKEN_PREFIX = "dapi"  # noqa: S105 - the public prefix of every token, not a secret
NEVER = -1

_COLUMNS = "token_id, comment, creation_time, expiry_time, revoked_time, user_name"


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    comment: str
    creation_time: int
    expiry_time: int
    revoked_time: int = 0
    #: The user the token acts as; '' for tokens created before Sluice kept it (they act as the local user).
    user_name: str = ""

    def json(self) -> dict[str, Any]:
        """The Token API's ``token_info`` shape."""
        return {
            "token_id": self.token_id,
            "creation_time": self.creation_time,
            "expiry_time": self.expiry_time,
            "comment": self.comment,
        }

    def usable(self, now: int) -> bool:
        return not self.revoked_time and (self.expiry_time == NEVER or now < self.expiry_time)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create_token(
    store: Store, *, comment: str, now: int, user_name: str, lifetime_seconds: int | None = None
) -> tuple[str, TokenInfo]:
    """A new token acting as ``user_name``: its value (shown once, never stored) and its info."""
    if not user_name.strip():
        raise InvalidRequestError("a token needs a user name to act as; pass --user NAME.")
    if lifetime_seconds is not None and lifetime_seconds <= 0:
        raise InvalidRequestError(
            f"lifetime_seconds must be positive, got {lifetime_seconds}; "
            "omit it for a token that never expires."
        )
    value = TOKEN_PREFIX + secrets.token_hex(32)
    info = TokenInfo(
        token_id=secrets.token_hex(16),
        comment=comment,
        creation_time=now,
        expiry_time=NEVER if lifetime_seconds is None else now + lifetime_seconds * 1000,
        user_name=user_name.strip(),
    )
    store._write(
        "INSERT INTO api_tokens (token_id, token_hash, comment, creation_time, expiry_time, revoked_time, "
        "user_name) VALUES (:token_id, :token_hash, :comment, :creation_time, :expiry_time, 0, :user_name)",
        {**info.json(), "token_hash": digest(value), "user_name": info.user_name},
    )
    return value, info


def find_token(store: Store, value: str) -> TokenInfo | None:
    """The token whose value is ``value`` (revoked and expired ones included), or None."""
    row = store._one(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = :h",  # noqa: S608 - constant columns
        {"h": digest(value)},
    )
    return None if row is None else TokenInfo(*row)


def list_tokens(store: Store, *, include_revoked: bool = False) -> list[TokenInfo]:
    where = "" if include_revoked else " WHERE revoked_time = 0"
    rows = store._all(f"SELECT {_COLUMNS} FROM api_tokens{where} ORDER BY creation_time, token_id", {})  # noqa: S608 - constant columns
    return [TokenInfo(*row) for row in rows]


def revoke_token(store: Store, token_id: str, *, now: int) -> None:
    """Revoke the token: requests bearing it are refused from now on."""
    changed = store._write(
        "UPDATE api_tokens SET revoked_time = :now WHERE token_id = :token_id AND revoked_time = 0",
        {"now": now, "token_id": token_id},
    )
    if not changed:
        raise NotFoundError(
            f"Token {token_id} does not exist (or was revoked already); see `sluice tokens list`."
        )


def purge_tokens(store: Store, *, before: int) -> int:
    """Delete tokens revoked or expired before ``before``; how many were deleted."""
    return store._write(
        "DELETE FROM api_tokens WHERE (revoked_time > 0 AND revoked_time < :before) "
        "OR (expiry_time <> -1 AND expiry_time < :before)",
        {"before": before},
    )
