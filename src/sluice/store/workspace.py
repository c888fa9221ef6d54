"""Facts of a store as a Databricks workspace (migration 0007): its workspace id."""

from __future__ import annotations

from sluice.errors import InternalError
from sluice.store import Store


def workspace_id(store: Store) -> int:
    """The store's workspace id: a 16-digit number drawn when the store was created, never changed."""
    row = store._one("SELECT value FROM workspace_info WHERE name = 'workspace_id'", {})
    if row is None:
        raise InternalError(
            "The store has no workspace id (table workspace_info): its schema is damaged; "
            "restore it from a backup."
        )
    return int(row[0])
