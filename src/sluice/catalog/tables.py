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


#: Table features a legacy protocol (no feature lists) implies, by minimum writer version (Delta's table).
_LEGACY_WRITER_FEATURES = (
    (2, ("appendOnly", "invariants")),
    (3, ("checkConstraints",)),
    (4, ("changeDataFeed", "generatedColumns")),
    (5, ("columnMapping",)),
    (6, ("identityColumns",)),
)


def _millis(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None) if value else None


def detail(location: str) -> dict[str, Any]:
    """DESCRIBE DETAIL's row of the Delta table at ``location`` (Delta's columns, ``name`` left None)."""
    table = _table(location)
    metadata, protocol = table.metadata(), table.protocol()
    adds = table.get_add_actions(flatten=True)
    names = set(adds.schema.names)
    size = sum(int(v or 0) for v in adds.column("size_bytes").to_pylist()) if "size_bytes" in names else 0
    deletion_vectors = 0
    if "deletionVector.storageType" in names:
        deletion_vectors = sum(1 for v in adds.column("deletionVector.storageType").to_pylist() if v)
    features = set(protocol.reader_features or ()) | set(protocol.writer_features or ())
    if protocol.writer_features is None:
        for version, implied in _LEGACY_WRITER_FEATURES:
            if protocol.min_writer_version >= version:
                features.update(implied)
    last = table.history(1)
    return {
        "format": "delta",
        "id": str(metadata.id),
        "name": None,
        "description": metadata.description,
        "location": location,
        "createdAt": _millis(metadata.created_time),
        "lastModified": _millis(last[0].get("timestamp")) if last else None,
        "partitionColumns": list(metadata.partition_columns),
        "clusteringColumns": [],
        "numFiles": adds.num_rows,
        "sizeInBytes": size,
        "properties": {str(k): str(v) for k, v in (metadata.configuration or {}).items()},
        "minReaderVersion": int(protocol.min_reader_version),
        "minWriterVersion": int(protocol.min_writer_version),
        "tableFeatures": sorted(features),
        "statistics": {"numDeletionVectors": deletion_vectors},
    }
