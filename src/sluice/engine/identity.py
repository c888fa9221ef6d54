"""Who drives a run: ``host:pid:starttime``, and whether that process is still alive.

The process start time (clock ticks since boot, from /proc) guards against pid reuse: a recycled pid has
another start time, so a dead driver is never mistaken for a live one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

#: A driver on another host is presumed dead when its heartbeat is older than this.
HEARTBEAT_STALE_MS = 30_000


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = data.rsplit(b")", 1)[1].split()
    return int(fields[19])


@dataclass(frozen=True)
class DriverId:
    host: str
    pid: int
    start_ticks: int

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start_ticks}"

    @staticmethod
    def parse(text: str) -> DriverId | None:
        parts = text.rsplit(":", 2)
        if len(parts) != 3:
            return None
        try:
            return DriverId(parts[0], int(parts[1]), int(parts[2]))
        except ValueError:
            return None

    @staticmethod
    def current() -> DriverId:
        pid = os.getpid()
        return DriverId(socket.gethostname(), pid, process_start_ticks(pid) or 0)


def driver_alive(driver: str | None, *, heartbeat_time: int, now: int) -> bool:
    """Whether the process named by ``driver`` still drives its run."""
    if not driver:
        return False
    ident = DriverId.parse(driver)
    if ident is None:
        return False
    if ident.host != socket.gethostname():
        return now - heartbeat_time < HEARTBEAT_STALE_MS
    return process_start_ticks(ident.pid) == ident.start_ticks
