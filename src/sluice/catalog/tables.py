"""Delta tables read outside Spark (``deltalake``): columns and history, for the CLI and DESCRIBE HISTORY."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def _table(location: str) -> Any:
    try:
        from deltalake import DeltaTable
    except ImportError:
        from sluice.errors import SluiceError

        raise SluiceError(
            "reading a Delta table's history needs the 'deltalake' package: pip install deltalake"
        ) from None
    return DeltaTable(location)


def history(location: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, newest first: version, timestamp (UTC), operation and its parameters (JSON)."""
    rows = []
    for commit in _table(location).history(limit):
        millis = commit.get("timestamp")
        rows.append(
            {
                "version": int(commit.get("version", 0)),
                "timestamp": datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)
                if millis
                else None,
                "operation": str(commit.get("operation", "")),
                "operationParameters": json.dumps(commit.get("operationParameters") or {}, sort_keys=True),
            }
        )
    return rows


def columns(location: str) -> list[tuple[str, str, bool]]:
    """``(name, type, nullable)`` of each column of the table's current schema."""
    schema = _table(location).schema()
    return [(f.name, _type_name(f.type), bool(f.nullable)) for f in schema.fields]


def _type_name(data_type: Any) -> str:
    kind = getattr(data_type, "type", None)
    return str(kind) if isinstance(kind, str) else str(data_type)


def version(location: str) -> int:
    return int(_table(location).version())


def first_rows(location: str, limit: int = 100) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and the first ``limit`` rows of the table's current version (for the Jobs UI)."""
    dataset = _table(location).to_pyarrow_dataset()
    rows = dataset.head(limit)
    return list(rows.schema.names), rows.to_pylist()
