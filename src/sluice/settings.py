"""Where Sluice keeps its state and how it runs, from the environment (read when asked, never at import).

| variable              | default          | meaning                                               |
|-----------------------|------------------|-------------------------------------------------------|
| SLUICE_HOME           | ~/.sluice        | database, run directories (logs, outputs), checkouts  |
| SLUICE_DATABASE_URL   | sqlite in HOME   | ``postgresql://user@host:5432/db`` for PostgreSQL      |
| SLUICE_PARALLELISM    | CPU count        | task processes running at once, per driver            |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sluice.errors import SluiceError


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    parallelism: int

    @staticmethod
    def from_env() -> Settings:
        home = Path(os.environ.get("SLUICE_HOME") or Path.home() / ".sluice").expanduser()
        raw = os.environ.get("SLUICE_PARALLELISM", "")
        try:
            parallelism = int(raw) if raw else (os.cpu_count() or 1)
        except ValueError:
            raise SluiceError(f"SLUICE_PARALLELISM={raw!r} is not a whole number; set it to e.g. 4") from None
        if parallelism < 1:
            raise SluiceError(f"SLUICE_PARALLELISM={raw!r} must be at least 1")
        return Settings(
            home=home, database_url=os.environ.get("SLUICE_DATABASE_URL") or None, parallelism=parallelism
        )
