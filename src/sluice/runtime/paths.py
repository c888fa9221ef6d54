"""Databricks paths to local paths: one mapping for ``dbutils.fs``, ``spark`` reads/writes and the catalog.

======================================================  ===================================================
path as user code writes it                             local path
======================================================  ===================================================
``file:/tmp/x.csv`` (also ``file:///tmp/x.csv``)        ``/tmp/x.csv`` (the machine's own file system)
``dbfs:/tmp/x.csv``, ``/tmp/x.csv``                     ``SLUICE_HOME/dbfs/tmp/x.csv``
``/Volumes/main/raw/landing/x.csv``,                    ``SLUICE_HOME/volumes/main/raw/landing/x.csv``
``dbfs:/Volumes/main/raw/landing/x.csv``
======================================================  ===================================================

Rules (:func:`resolve`, :func:`to_local`; both raise :class:`PathError`, a ``ValueError``, naming the path):

- ``.`` and ``..`` are resolved lexically; a path may not climb above ``/`` of its file system, and a
  DBFS or volume path may not leave its root (``SLUICE_HOME/dbfs``, or its volume's directory) through
  ``..`` or a symbolic link pointing outside. ``file:`` paths are the machine's: no root.
- Relative paths (``x.csv``) are refused: write ``dbfs:/x.csv``, ``/Volumes/...`` or ``file:/...``.
- A volume is ``/Volumes/<catalog>/<schema>/<volume>``. A path inside one that does not exist raises
  :class:`VolumeNotFound` (Databricks requires ``CREATE VOLUME`` first; create it with
  ``sluice volumes create <catalog>.<schema>.<volume>``). Whether a volume exists is decided by the
  ``volume_exists`` callable (default: its directory exists under ``SLUICE_HOME/volumes``), so the catalog
  can answer instead. ``/Volumes``, ``/Volumes/<catalog>`` and ``/Volumes/<catalog>/<schema>`` resolve
  (for listing) but :attr:`Resolved.volume` is None there, and nothing may be written at that level.

``SLUICE_HOME`` comes from the environment (the engine sets it for every task) or defaults to
``~/.sluice``: :func:`home_from_env`. Only the standard library is imported: task processes import this.
"""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Callable

FILE = "file"
DBFS = "dbfs"
VOLUME = "volume"
DBFS_DIR = "dbfs"
VOLUMES_DIR = "volumes"


class PathError(ValueError):
    """A path Sluice cannot map: relative, unknown scheme, or leaving its root."""


class VolumeNotFound(PathError, FileNotFoundError):
    """A ``/Volumes/<catalog>/<schema>/<volume>/...`` path whose volume does not exist."""

    def __init__(self, path: str, volume: tuple[str, str, str]) -> None:
        self.volume = volume
        name = ".".join(volume)
        super().__init__(
            f"Volume {name} does not exist (path '{path}'); create it first with "
            f"`sluice volumes create {name}` (on Databricks: CREATE VOLUME {name})"
        )


class Resolved:
    """A mapped path: its kind, its canonical Databricks form and its local path."""

    __slots__ = ("kind", "local", "parts", "path", "root", "volume")

    def __init__(
        self,
        path: str,
        kind: str,
        parts: tuple[str, ...],
        local: Path,
        root: Path,
        volume: tuple[str, str, str] | None,
    ) -> None:
        #: The path as given.
        self.path = path
        #: :data:`FILE`, :data:`DBFS` or :data:`VOLUME` (anything under ``/Volumes``).
        self.kind = kind
        #: The normalised components after the root (``("tmp", "x.csv")``; volumes: after ``Volumes``).
        self.parts = parts
        self.local = local
        #: The directory the path may not leave: ``/``, ``SLUICE_HOME/dbfs``, the volume's directory (or
        #: ``SLUICE_HOME/volumes`` above volume level).
        self.root = root
        #: ``(catalog, schema, volume)`` for a path inside (or at) a volume, else None.
        self.volume = volume

    @property
    def uri(self) -> str:
        """The canonical form: ``file:/...``, ``dbfs:/...`` or ``dbfs:/Volumes/...`` (what ``ls`` shows)."""
        return uri_of(self.kind, self.parts)

    @property
    def uri_root(self) -> str:
        """The root this path may not leave, in canonical form."""
        if self.volume is not None:
            return uri_of(VOLUME, self.volume)
        return uri_of(self.kind, ())

    @property
    def is_root(self) -> bool:
        """True for a root one may not write or remove: ``/``, ``dbfs:/``, ``/Volumes`` levels, a volume."""
        if self.kind == VOLUME:
            return len(self.parts) <= 3
        return not self.parts

    def child(self, name: str) -> Resolved:
        """The entry ``name`` of this directory (same root, same volume)."""
        parts = (*self.parts, name)
        volume, root = self.volume, self.root
        if self.kind == VOLUME and volume is None and len(parts) >= 3:
            volume, root = (parts[0], parts[1], parts[2]), self.local / name
        return Resolved(self.path, self.kind, parts, self.local / name, root, volume)

    def __repr__(self) -> str:
        return f"Resolved({self.uri!r} -> {str(self.local)!r})"


def uri_of(kind: str, parts: tuple[str, ...]) -> str:
    tail = "/".join(parts)
    if kind == FILE:
        return f"file:/{tail}"
    if kind == VOLUME:
        return f"dbfs:/Volumes/{tail}" if tail else "dbfs:/Volumes"
    return f"dbfs:/{tail}"


def home_from_env() -> Path:
    """``SLUICE_HOME`` (set by the engine in task processes) or ``~/.sluice``."""
    return Path(os.environ.get("SLUICE_HOME") or Path.home() / ".sluice").expanduser()


def _split(path: str) -> tuple[str, str]:
    """``(kind, absolute path)`` of a Databricks path; PathError for what is not one."""
    if path.startswith("file:"):
        rest = path[5:]
        if rest.startswith("//") and not rest.startswith("///"):
            raise PathError(f"path '{path}' names a host; write file:/<absolute path> (e.g. file:/tmp/x.csv)")
        kind = FILE
    elif path.startswith("dbfs:"):
        rest, kind = path[5:], DBFS
    elif path.startswith("/"):
        rest, kind = path, DBFS
    else:
        scheme, sep, _ = path.partition(":")
        if sep and len(scheme) > 1 and scheme[0].isalpha() and scheme.replace("+", "").isalnum():
            raise PathError(
                f"path '{path}': scheme '{scheme}:' is not supported by Sluice; "
                f"use dbfs:/..., /Volumes/<catalog>/<schema>/<volume>/... or file:/..."
            )
        raise PathError(
            f"path '{path}' is relative; write an absolute path: dbfs:/{path}, "
            f"/Volumes/<catalog>/<schema>/<volume>/{path} or file:/<absolute path>"
        )
    if not rest.startswith("/"):
        raise PathError(f"path '{path}' must be absolute after its scheme (e.g. dbfs:/tmp/x.csv)")
    return kind, rest


def _normalise(path: str, rest: str) -> tuple[str, ...]:
    parts: list[str] = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathError(f"path '{path}' climbs above / with '..'")
            parts.pop()
            continue
        if "\0" in part:
            raise PathError(f"path {path!r} contains a NUL character")
        parts.append(part)
    return tuple(parts)


def resolve(
    path: str | os.PathLike[str],
    home: Path | str | None = None,
    *,
    volume_exists: Callable[[str, str, str], bool] | None = None,
) -> Resolved:
    """Map ``path`` (see the module docstring); ``home`` None means :func:`home_from_env`."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise PathError(f"path must be a non-empty string, not {path!r}")
    base = home_from_env() if home is None else Path(home)
    kind, rest = _split(text)
    parts = _normalise(text, rest)
    volume: tuple[str, str, str] | None = None
    if kind == FILE:
        root = Path("/")
    elif parts[:1] == ("Volumes",):
        kind, parts = VOLUME, parts[1:]
        root = base / VOLUMES_DIR
        if len(parts) >= 3:
            volume = (parts[0], parts[1], parts[2])
            root = root.joinpath(*volume)
    else:
        root = base / DBFS_DIR
    local = root.joinpath(*parts[3:]) if volume is not None else root.joinpath(*parts)
    if kind == FILE:
        local = Path("/").joinpath(*parts)
    resolved = Resolved(text, kind, parts, local, root, volume)
    if kind != FILE:
        _check_inside(resolved)
    if volume is not None:
        exists = volume_exists(*volume) if volume_exists is not None else root.is_dir()
        if not exists:
            raise VolumeNotFound(text, volume)
    return resolved


def _check_inside(resolved: Resolved) -> None:
    """A symbolic link on the way may not lead out of the root."""
    root = os.path.realpath(resolved.root)
    real = os.path.realpath(resolved.local)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise PathError(
            f"path '{resolved.path}' leads outside {resolved.uri_root} through a symbolic link "
            f"({resolved.local} -> {real}); Sluice keeps DBFS and volume paths inside their root"
        )


def check_tree(resolved: Resolved) -> None:
    """No symbolic link in the directory tree at a DBFS or volume path leads outside its root.

    For a directory (or a glob pattern: the deepest existing directory above it), every symbolic link in
    the tree is resolved; one leading outside raises :class:`PathError` naming the link, its target and
    the root. Used before Spark reads a directory and before ``dbutils.fs`` copies or moves one: those
    would follow the link (Spark) or carry it elsewhere (``cp``/``mv``). ``file:`` paths have no root.
    """
    if resolved.kind == FILE:
        return
    top = resolved.local
    if any(ch in str(top) for ch in "*?[{"):
        while top != resolved.root and (any(ch in top.name for ch in "*?[{") or not top.is_dir()):
            top = top.parent
    if top.is_symlink() or not top.is_dir():
        return  # a file (or a link to one) was checked by resolve()
    root = os.path.realpath(resolved.root)
    inside = root.rstrip(os.sep) + os.sep
    for folder, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            entry = os.path.join(folder, name)
            if not os.path.islink(entry):
                continue
            real = os.path.realpath(entry)
            if real != root and not real.startswith(inside):
                shown = resolved.uri_root.rstrip("/") + "/" + os.path.relpath(entry, resolved.root)
                raise PathError(
                    f"path '{resolved.path}' contains a symbolic link leading outside {resolved.uri_root}: "
                    f"{shown} -> {real}; Sluice keeps DBFS and volume paths inside their root, so remove "
                    f"the link or copy the file into the volume"
                )


def to_local(
    path: str | os.PathLike[str],
    home: Path | str | None = None,
    *,
    volume_exists: Callable[[str, str, str], bool] | None = None,
) -> Path:
    """The local path of a Databricks path (see the module docstring); PathError when it has none."""
    return resolve(path, home, volume_exists=volume_exists).local
