"""The store: jobs, runs, task runs, task values and repair history in SQLite or PostgreSQL.

``from sluice.store import Store`` loads the store lazily, so importing ``sluice.store.records`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.store.store import Store

__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from sluice.store.store import Store  # lazy: see the module docstring

        return Store
    raise AttributeError(f"module 'sluice.store' has no attribute '{name}'")
