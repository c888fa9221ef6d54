"""Fixtures of the end-to-end tests: a fresh workspace (SLUICE_HOME, cache, job directory) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.helpers import Workspace

#: Task scripts most tests share; tests write their own for anything special.
OK_SCRIPT = "print('ok')\n"
FAIL_SCRIPT = "raise ValueError('bad input row 7')\n"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with ``ok.py`` (succeeds) and ``fail.py`` (raises ValueError) next to its job files."""
    workspace = Workspace(tmp_path)
    workspace.write("ok.py", OK_SCRIPT)
    workspace.write("fail.py", FAIL_SCRIPT)
    try:
        yield workspace
    finally:
        workspace.close()
