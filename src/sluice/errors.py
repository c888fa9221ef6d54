"""One tree of errors: ``SluiceError`` is "you asked for something wrong", ``InternalError`` "Sluice broke".

Every message names the thing and, where there is one, the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SluiceError(Exception):
    """Base of every error Sluice raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, and what is wrong."""

    message: str
    file: str | None = None
    job: str | None = None
    task: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.job:
            where.append(f"job '{self.job}'")
        if self.task:
            where.append(f"task '{self.task}'")
        if self.field:
            where.append(self.field)
        prefix = ": ".join([", ".join(where)]) if where else ""
        return f"{prefix}: {self.message}" if prefix else self.message


class InvalidJobError(SluiceError):
    """A job definition failed validation; nothing was run or written. CLI exit code 2."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFoundError(SluiceError):
    """A job, run or task run id that does not exist (the Jobs API answers 400 INVALID_PARAMETER_VALUE)."""


class ConflictError(SluiceError):
    """A request that conflicts with the current state (a stale repair id, repairing an active run ...)."""


class InvalidRequestError(SluiceError):
    """A request with a bad value (an unknown parameter, a value too large ...)."""


class InternalError(Exception):
    """Sluice itself broke: not the user's input and not the user's code."""
