"""Listing the files under a file-arrival trigger's ``url``: a local path or any fsspec URL.

A listing is every file below the location, recursively, as paths relative to it (``/``-separated).
Local paths (``/data/in``, ``file:///data/in``) are walked with ``os.scandir`` and need nothing else;
other URLs (``s3://``, ``gs://``, ``memory://`` ...) go through ``fsspec`` (plus its protocol package).

Limits (documented in docs/guide/schedules.md): at most ``MAX_FILES`` files are listed (Databricks has the
same 10,000-file limit for triggers without file events); past it the listing is *truncated*: files beyond
the limit are not seen and vanished files are not forgotten. A location that does not exist lists as
empty (files fire once it appears). Listings run on the scheduler's scan threads, never in its tick.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

#: Most files a listing returns (Databricks: 10,000 files per file-arrival location without file events).
MAX_FILES = 10_000


@dataclass(frozen=True)
class Listing:
    paths: frozenset[str]
    truncated: bool
    error: str | None = None


def local_path(url: str) -> str | None:
    """The local directory of ``url``, or None when it needs fsspec (a URL with another scheme)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme == "file" else url
    if len(parsed.scheme) == 1:  # a Windows drive letter, C:\\...
        return url
    return None


def list_files(url: str, *, limit: int = MAX_FILES) -> Listing:
    """The files under ``url`` (relative paths), at most ``limit`` of them."""
    path = local_path(url)
    try:
        walker = _walk_local(path) if path is not None else _walk_fsspec(url)
        found: set[str] = set()
        for name in walker:
            if len(found) >= limit:
                return Listing(frozenset(found), truncated=True)
            found.add(name)
    except FileNotFoundError:
        return Listing(frozenset(), truncated=False)
    except (OSError, ValueError, ImportError) as exc:
        return Listing(frozenset(), truncated=True, error=f"cannot list {url}: {exc}")
    return Listing(frozenset(found), truncated=False)


def _walk_local(root: str) -> Iterator[str]:
    if not os.path.isdir(root):
        if os.path.exists(root):
            raise NotADirectoryError(f"{root} is a file, not a directory: point the trigger at its directory")
        return
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:  # removed while walking
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((rel + "/", entry.path))
            elif entry.is_file():
                yield rel


def _walk_fsspec(url: str) -> Iterator[str]:
    try:
        import fsspec  # type: ignore[import-untyped]  # no stubs; only remote URLs need it
    except ImportError as exc:
        raise ImportError(f"file-arrival URL {url} needs the fsspec package: pip install fsspec") from exc
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    if not fs.exists(root):
        return
    for directory, _dirs, files in fs.walk(root):
        base = str(directory).rstrip("/")
        rel = base[len(root) :].lstrip("/")
        for name in files:
            yield f"{rel}/{name}" if rel else str(name)


class Scanner:
    """Listings on background threads, so a slow location never stalls the scheduler's tick.

    ``inline=True`` lists in the caller's thread instead (tests that want a deterministic tick).
    """

    def __init__(self, *, inline: bool = False, workers: int = 2, limit: int = MAX_FILES) -> None:
        self.inline = inline
        self.limit = limit
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[Listing]] = {}

    def request(self, key: int, url: str) -> Listing | None:
        """Start a listing of ``url`` for ``key`` (unless one is in flight); its result once it is done."""
        if self.inline:
            return list_files(url, limit=self.limit)
        future = self._pending.get(key)
        if future is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sluice-scan")
            self._pending[key] = self._pool.submit(list_files, url, limit=self.limit)
            return None
        if not future.done():
            return None
        del self._pending[key]
        return future.result()

    def busy(self, key: int) -> bool:
        return key in self._pending and not self._pending[key].done()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the listings in flight (tests)."""
        for future in list(self._pending.values()):
            future.exception(timeout)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()
