"""Attempt logs that keep their tail: ``stdout.log`` and ``stderr.log`` are capped per attempt.

A task printing without end must not fill the disk. Each log of an attempt keeps its last
``SLUICE_MAX_LOG_BYTES`` bytes (default :data:`DEFAULT_MAX_LOG_BYTES`, 10 MiB; ``0`` turns the cap off):
when a log grows past the cap by a quarter, its head is dropped in place and a note at the top says how
much was dropped so far (on one line)::

    [sluice: 52428800 bytes of earlier output were dropped; each log of an attempt keeps its last
    10485760 bytes (SLUICE_MAX_LOG_BYTES)]

The file is cut in place (read the tail, write note + tail at offset 0, truncate), never replaced, so the
descriptors 1 and 2 that the task and its child processes hold keep pointing at it, and what they write
with O_APPEND lands after the kept tail. The cap is enforced by the task process's own ``sys.stdout`` and
``sys.stderr`` (:class:`CappedLog` under them) as they write, and once more when the task ends; output that
child processes write straight to the descriptors is cut at those moments too. A write racing a cut from
another process may be lost: only output past the cap is at stake.
"""

from __future__ import annotations

import io
import os
import sys

from sluice.settings import DEFAULT_MAX_LOG_BYTES

MAX_LOG_BYTES_ENV = "SLUICE_MAX_LOG_BYTES"
#: The smallest cap accepted (smaller values are raised to it): a note and a few lines.
MIN_MAX_LOG_BYTES = 4096
NOTE_PREFIX = b"[sluice: "

_limit: int | None = None


def max_log_bytes() -> int:
    """The cap (0: none): ``SLUICE_MAX_LOG_BYTES``, else the settings file's ``[tasks] max_log_bytes``.

    Read once per process; the zygote reads it before forking task processes (``taskmain.preload``).
    """
    global _limit  # read once per process: the zygote's value is inherited by every task it forks
    if _limit is None:
        try:
            from sluice.settings import Settings

            _limit = Settings.from_env().max_log_bytes
        except Exception:  # an invalid settings file is reported by the control plane, not by each task
            raw = os.environ.get(MAX_LOG_BYTES_ENV, "")
            _limit = int(raw) if raw.strip().isdigit() else DEFAULT_MAX_LOG_BYTES
    return _limit


class CappedLog(io.RawIOBase):
    """A raw writer on ``fd`` (the log file ``path``, opened O_APPEND) that keeps its last ``limit`` bytes."""

    def __init__(self, fd: int, path: str, limit: int) -> None:
        super().__init__()
        self.fd = fd
        self.path = os.path.abspath(path)  # the task may change its working directory
        self.limit = max(limit, MIN_MAX_LOG_BYTES)
        #: Cut when the file passes this size (a quarter over the cap: cuts stay rare and linear).
        self.threshold = self.limit + self.limit // 4
        self.dropped = 0
        self._note_len = 0
        self._size = os.fstat(fd).st_size
        self._unchecked = 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        self._size += written
        self._unchecked += written
        # Children may write to the same file: look at its real size now and then, and when ours says so.
        if self._size > self.threshold or self._unchecked > self.limit // 8:
            self._unchecked = 0
            self._size = os.fstat(self.fd).st_size
            if self._size > self.threshold:
                try:
                    self.cut()
                except OSError:  # the log was moved or its directory removed: keep writing, uncapped
                    self.threshold = sys.maxsize
        return written

    def close(self) -> None:
        """Leave the descriptor open (it is fd 1 or 2 of the task): only mark this writer closed."""
        super().close()

    def cut(self) -> None:
        """Keep the last ``limit`` bytes (from a line start when one is near), with the note on top."""
        with open(self.path, "rb") as reader:
            size = os.fstat(reader.fileno()).st_size
            if size <= self.limit + self._note_len:
                self._size = size
                return
            start = size - self.limit
            reader.seek(start)
            tail = reader.read()
        newline = tail.find(b"\n", 0, min(len(tail), 64 * 1024))
        if 0 <= newline < len(tail) - 1:
            tail = tail[newline + 1 :]
        self.dropped += size - len(tail) - self._note_len
        note = (
            f"[sluice: {self.dropped} bytes of earlier output were dropped; each log of an attempt keeps "
            f"its last {self.limit} bytes ({MAX_LOG_BYTES_ENV})]\n"
        ).encode()
        writer = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(writer, note + tail, 0)
            os.ftruncate(writer, len(note) + len(tail))
        finally:
            os.close(writer)
        self._note_len = len(note)
        self._size = len(note) + len(tail)

    def finish(self) -> None:
        """At the end of the task: cut what is over the cap (child processes may have written it)."""
        try:
            if os.fstat(self.fd).st_size > self.limit + self._note_len:
                self.cut()
        except OSError:
            return  # a log that cannot be cut stays whole: never fail the task for it


#: The capped logs of this process, for :func:`finish`.
_logs: list[CappedLog] = []


def capped_stream(fd: int, path: str) -> io.RawIOBase:
    """The raw writer of ``fd``, the log file ``path``: capped unless the cap is 0."""
    limit = max_log_bytes()
    if limit <= 0:
        return io.FileIO(fd, "w", closefd=False)
    log = CappedLog(fd, path, limit)
    _logs.append(log)
    return log


def finish() -> None:
    """At the end of a task (its streams flushed): apply the cap once more to each capped log."""
    for log in _logs:
        log.finish()
