"""Table versions for table-update triggers, and the pure decision of which updates fire.

The scheduler asks an injected ``table_versions(name) -> int | None`` for each table's current version
(None: the table does not exist yet). :class:`DeltaLogVersions` maps a table name to its Delta directory
with a resolver and reads the newest commit file ``_delta_log/NNNNNNNNNNNNNNNNNNNN.json`` there, without
Spark and without ``deltalake``; :class:`CatalogTableVersions` is the one ``sluice serve`` gives its
scheduler: the resolver is the store-owned catalog.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.scheduler.file_arrival import local_path

if TYPE_CHECKING:
    from sluice.store.catalog import CatalogStore

TableVersions = Callable[[str], int | None]

_COMMIT = re.compile(r"(\d{20})\.json")


def newest_version(location: str) -> int | None:
    """The newest committed version of the Delta table at ``location`` (None: no ``_delta_log`` commit).

    Local directories are listed with ``os.scandir``; other URLs with fsspec.
    """
    path = local_path(location)
    if path is not None:
        log = os.path.join(path, "_delta_log")
        try:
            names = [entry.name for entry in os.scandir(log)]
        except (FileNotFoundError, NotADirectoryError):
            return None
    else:
        import fsspec  # type: ignore[import-untyped]  # no stubs; only remote tables need it

        fs, root = fsspec.core.url_to_fs(location)
        log = root.rstrip("/") + "/_delta_log"
        if not fs.exists(log):
            return None
        names = [str(name).rsplit("/", 1)[-1] for name in fs.ls(log, detail=False)]
    versions = [int(m[1]) for name in names if (m := _COMMIT.fullmatch(name))]
    return max(versions) if versions else None


def commit_timestamp(location: str, version: int) -> int | None:
    """``commitInfo.timestamp`` (epoch ms) of a local table's commit ``version``, None if unknown."""
    path = local_path(location)
    if path is None:
        return None
    try:
        with open(os.path.join(path, "_delta_log", f"{version:020d}.json"), encoding="utf-8") as lines:
            for line in lines:
                action = json.loads(line) if line.strip() else {}
                info = action.get("commitInfo") if isinstance(action, dict) else None
                if isinstance(info, dict) and isinstance(info.get("timestamp"), int):
                    return int(info["timestamp"])
    except (OSError, ValueError):
        return None
    return None


class DeltaLogVersions:
    """``table_versions`` from Delta logs: ``resolve(name)`` gives the table's directory (None: unknown)."""

    def __init__(self, resolve: Callable[[str], str | None]) -> None:
        self._resolve = resolve

    def __call__(self, name: str) -> int | None:
        location = self._resolve(name)
        return None if location is None else newest_version(location)

    def commit_timestamp(self, name: str, version: int) -> int | None:
        location = self._resolve(name)
        return None if location is None else commit_timestamp(location, version)


class CatalogTableVersions(DeltaLogVersions):
    """Table versions of the store-owned catalog: ``catalog.schema.table`` (one or two parts take the
    current ``workspace.default``, as in SQL) resolves to the location the catalog records for it (None:
    no such table yet). The catalog is read over a connection of its own (the scheduler's thread alone
    uses it), opened on first use; ``close()`` closes it."""

    def __init__(self, database_url: str | None, home: Path) -> None:
        super().__init__(self._location)
        self.database_url = database_url
        self.home = home
        self._catalog: CatalogStore | None = None

    def _location(self, name: str) -> str | None:
        from sluice.store.catalog import CatalogStore, split_name

        catalog, schema, table = split_name(name)
        if self._catalog is None:
            self._catalog = CatalogStore.open(self.database_url, self.home)
        record = self._catalog.get_table(catalog, schema, table)
        return None if record is None else record.location

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None


@dataclass(frozen=True)
class TableState:
    """``base``: versions the last run saw (or those when the trigger was first seen); ``seen``: the
    versions seen at the last poll (a difference restarts the debounce wait)."""

    base: Mapping[str, int | None]
    seen: Mapping[str, int | None]

    def to_json(self) -> dict[str, dict[str, int | None]]:
        return {"base": dict(self.base), "seen": dict(self.seen)}

    @staticmethod
    def from_json(data: Mapping[str, Mapping[str, int | None]]) -> TableState:
        return TableState(dict(data.get("base", {})), dict(data.get("seen", {})))


def updated_tables(base: Mapping[str, int | None], current: Mapping[str, int | None]) -> list[str]:
    """Tables whose version differs from ``base`` (a table created since counts; a vanished one not)."""
    return sorted(
        name for name, version in current.items() if version is not None and version != base.get(name)
    )


def condition_met(condition: str, names: Sequence[str], updated: Sequence[str]) -> bool:
    """ANY_UPDATED: at least one table updated; ALL_UPDATED: every table updated since the last run."""
    if condition == "ALL_UPDATED":
        return bool(names) and set(names) <= set(updated)
    return bool(updated)
