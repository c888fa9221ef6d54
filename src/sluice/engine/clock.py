"""The one place the engine reads the wall clock; everything else takes ``now`` as an argument."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def now_ms() -> int:
    """Epoch milliseconds, the Jobs API's unit of time."""
    return time.time_ns() // 1_000_000
