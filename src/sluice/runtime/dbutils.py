"""``dbutils`` for task processes and development: ``from sluice.runtime import dbutils``.

The module itself is the ``dbutils`` object: ``dbutils.jobs.taskValues.get(...)``. Parts other than
``jobs`` are loaded on first use from :data:`PARTS` (``name -> "module:attribute"``), so importing
``dbutils`` stays cheap and a part that is not installed fails only when used, with a clear message.
"""

from __future__ import annotations

import importlib

from sluice.runtime.task_values import JobsUtil

TYPE_CHECKING = False  # typing is not imported at run time: this module is on every task's path
if TYPE_CHECKING:
    from typing import Any

jobs = JobsUtil()

#: Lazily loaded parts of dbutils: attribute name -> "module:attribute" (the attribute is the object).
PARTS: dict[str, str] = {
    "fs": "sluice.runtime.fs:fs",
    "notebook": "sluice.runtime.notebook:notebook",
    "secrets": "sluice.runtime.secrets:secrets",
    "widgets": "sluice.runtime.widgets:widgets",
}


def __getattr__(name: str) -> Any:
    target = PARTS.get(name)
    if target is None:
        raise AttributeError(
            f"dbutils.{name} is not available in Sluice (available: {', '.join(['jobs', *sorted(PARTS)])})"
        )
    module_name, _, attribute = target.partition(":")
    part = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = part
    return part
