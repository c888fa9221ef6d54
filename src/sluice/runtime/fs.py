"""``dbutils.fs``: files in DBFS, volumes and the local file system, by Databricks path.

Paths map to local directories as :mod:`sluice.runtime.paths` describes (``dbfs:/x`` and ``/x`` ->
``SLUICE_HOME/dbfs/x``, ``/Volumes/c/s/v/x`` -> ``SLUICE_HOME/volumes/c/s/v/x``, ``file:/x`` -> ``/x``).
Semantics follow Databricks (``databricks-sdk``'s ``dbutils.fs``): methods return True, ``ls`` returns
:class:`FileInfo` tuples (directories' names end with ``/``), ``put`` refuses to replace a file unless
``overwrite=True``, ``cp``/``mv``/``rm`` of a directory need ``recurse=True``, ``put`` and ``cp`` create
missing parent directories (object stores have none to create). Roots (``dbfs:/``, a volume, the
``/Volumes`` levels above volumes) cannot be written to or removed. Only the standard library is used.
"""

from __future__ import annotations

import os
import shutil
from collections import namedtuple

from sluice.runtime.paths import DBFS, VOLUME, PathError, Resolved, check_tree, home_from_env, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


# collections.namedtuple, not typing.NamedTuple: ``typing`` costs ~15 ms to import in a task process.
class FileInfo(namedtuple("FileInfo", ["path", "name", "size", "modificationTime"])):
    """One ``ls`` entry, as on Databricks: ``path`` is canonical (``dbfs:/...``, ``file:/...``)."""

    __slots__ = ()

    def isDir(self) -> bool:
        return str(self.name).endswith("/")

    def isFile(self) -> bool:
        return not self.isDir()


class MountInfo(namedtuple("MountInfo", ["mountPoint", "source", "encryptionType"])):
    __slots__ = ()


_HELP = """dbutils.fs provides utilities for working with files (Sluice maps paths to local directories).

cp(from: String, to: String, recurse: boolean = false): boolean -> Copies a file or directory
head(file: String, maxBytes: int = 65536): String -> Returns up to 'maxBytes' bytes of the file (UTF-8)
ls(dir: String): Seq -> Lists the contents of a directory
mkdirs(dir: String): boolean -> Creates the directory and any missing parents
mv(from: String, to: String, recurse: boolean = false): boolean -> Moves a file or directory
put(file: String, contents: String, overwrite: boolean = false): boolean -> Writes the string as UTF-8
rm(dir: String, recurse: boolean = false): boolean -> Removes a file or directory

Paths: dbfs:/x and /x -> SLUICE_HOME/dbfs/x; /Volumes/<catalog>/<schema>/<volume>/x ->
SLUICE_HOME/volumes/<catalog>/<schema>/<volume>/x; file:/x -> /x on this machine.
Mounts (mount, unmount, mounts, refreshMounts, updateMount) are not supported: use /Volumes paths.
"""


class FsUtil:
    """``dbutils.fs`` (Databricks' camelCase names on purpose).

    ``home`` None reads ``SLUICE_HOME`` at each call (tasks get it from the engine); ``volume_exists`` is
    passed to :func:`sluice.runtime.paths.resolve`.
    """

    def __init__(
        self, home: Path | str | None = None, volume_exists: Callable[[str, str, str], bool] | None = None
    ) -> None:
        self._home = home
        self._volume_exists = volume_exists

    def _resolve(self, path: str) -> Resolved:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"dbutils.fs: path must be a string, not {path!r}")
        home = home_from_env() if self._home is None else self._home
        resolved = resolve(path, home, volume_exists=self._volume_exists)
        if resolved.kind == DBFS and not resolved.parts:
            resolved.local.mkdir(parents=True, exist_ok=True)  # the DBFS root always exists
        return resolved

    def _writable(self, path: str, what: str) -> Resolved:
        resolved = self._resolve(path)
        if resolved.is_root:
            raise PathError(_root_message(resolved, what))
        return resolved

    # -- reading --------------------------------------------------------------------------------------

    def ls(self, dir: str) -> list[FileInfo]:
        """The entries of directory ``dir`` sorted by name (a file: itself alone)."""
        resolved = self._resolve(dir)
        local = resolved.local
        if local.is_file():
            return [_info(resolved)]
        if not local.is_dir():
            raise FileNotFoundError(f"File {resolved.uri} does not exist.")
        return [_info(resolved.child(name)) for name in sorted(os.listdir(local))]

    def head(self, file: str, maxBytes: int = 65536) -> str:
        """Up to the first ``maxBytes`` bytes of ``file``, decoded as UTF-8."""
        resolved = self._resolve(file)
        if resolved.local.is_dir():
            raise IsADirectoryError(f"Cannot head a directory: {resolved.uri}")
        if not isinstance(maxBytes, int) or maxBytes < 0:
            raise ValueError(f"maxBytes must be a non-negative integer, not {maxBytes!r}")
        try:
            with open(resolved.local, "rb") as f:
                data = f.read(maxBytes)
        except FileNotFoundError:
            raise FileNotFoundError(f"File {resolved.uri} does not exist.") from None
        return data.decode("utf-8", errors="replace")

    # -- writing --------------------------------------------------------------------------------------

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        """Write ``contents`` as UTF-8 to ``file``; an existing file only with ``overwrite=True``."""
        if not isinstance(contents, str):
            raise TypeError(f"dbutils.fs.put: contents must be a string, not {type(contents).__name__}")
        resolved = self._writable(file, "write a file at")
        local = resolved.local
        if local.is_dir():
            raise IsADirectoryError(f"Cannot write {resolved.uri}: it is a directory")
        if local.exists() and not overwrite:
            raise FileExistsError(f"File {resolved.uri} already exists; pass overwrite=True to replace it")
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(contents.encode("utf-8"))
            os.replace(tmp, local)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def mkdirs(self, dir: str) -> bool:
        """Create ``dir`` and its missing parents (no error if it exists)."""
        resolved = self._resolve(dir)
        if resolved.kind == VOLUME and resolved.volume is None:
            raise PathError(_root_message(resolved, "create a directory at"))
        if resolved.local.is_file():
            raise FileExistsError(f"Cannot create directory {resolved.uri}: a file has that name")
        resolved.local.mkdir(parents=True, exist_ok=True)
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Copy a file, or a directory's contents with ``recurse=True``; existing files are replaced."""
        source = self._resolve(from_)
        target = self._writable(to, "copy to") if not _is_dir(self._resolve(to)) else self._resolve(to)
        _copy(source, target, recurse, "cp")
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Move a file, or a directory with ``recurse=True``."""
        source = self._writable(from_, "move")
        target = self._writable(to, "move to") if not _is_dir(self._resolve(to)) else self._resolve(to)
        if source.local.is_dir() and not recurse:
            raise IsADirectoryError(f"Cannot move directory {source.uri} without recurse=True")
        if not source.local.exists():
            raise FileNotFoundError(f"File {source.uri} does not exist.")
        if source.local.is_dir():
            check_tree(source)  # moving would carry a link leading outside the root to the target
        destination = _destination(source, target)
        if source.local.is_dir() and destination.exists():
            _copy(source, target, recurse=True, verb="mv")
            shutil.rmtree(source.local)
            return True
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source.local, destination)
        return True

    def rm(self, dir: str, recurse: bool = False) -> bool:
        """Remove a file, or a directory (a non-empty one only with ``recurse=True``); False if absent."""
        resolved = self._writable(dir, "remove")
        local = resolved.local
        if local.is_symlink() or local.is_file():
            local.unlink()
            return True
        if not local.exists():
            return False
        if recurse:
            shutil.rmtree(local)
        else:
            try:
                local.rmdir()
            except OSError:
                raise IsADirectoryError(
                    f"Cannot remove non-empty directory {resolved.uri}; pass recurse=True to remove it "
                    f"and everything in it"
                ) from None
        return True

    # -- the rest -------------------------------------------------------------------------------------

    def help(self, method: str | None = None) -> None:
        """Print what ``dbutils.fs`` offers."""
        print(_HELP)

    def _unsupported(self, name: str) -> None:
        raise NotImplementedError(
            f"dbutils.fs.{name} is not supported in Sluice: mounts do not exist here; "
            f"use /Volumes/<catalog>/<schema>/<volume>/... paths instead"
        )

    def mount(self, *args: object, **kwargs: object) -> bool:
        self._unsupported("mount")
        return False

    def unmount(self, *args: object, **kwargs: object) -> bool:
        self._unsupported("unmount")
        return False

    def updateMount(self, *args: object, **kwargs: object) -> bool:
        self._unsupported("updateMount")
        return False

    def refreshMounts(self) -> bool:
        self._unsupported("refreshMounts")
        return False

    def mounts(self) -> list[MountInfo]:
        return []


def _is_dir(resolved: Resolved) -> bool:
    return resolved.local.is_dir()


def _info(resolved: Resolved) -> FileInfo:
    local = resolved.local
    st = local.stat()
    is_dir = local.is_dir()
    name = local.name + "/" if is_dir else local.name
    uri = resolved.uri + "/" if is_dir else resolved.uri
    return FileInfo(uri, name, 0 if is_dir else st.st_size, int(st.st_mtime * 1000))


def _destination(source: Resolved, target: Resolved) -> Path:
    """Copying a file onto an existing directory puts it inside (as Hadoop's FileUtil does)."""
    if target.local.is_dir() and not source.local.is_dir():
        return target.local / source.local.name
    return target.local


def _copy(source: Resolved, target: Resolved, recurse: bool, verb: str) -> None:
    local = source.local
    if local.is_dir():
        if not recurse:
            raise IsADirectoryError(f"Cannot {verb} directory {source.uri} without recurse=True")
        check_tree(source)  # a link leading outside the root is refused before anything is copied
        target_real = os.path.realpath(target.local)
        source_real = os.path.realpath(local)
        if target_real == source_real or target_real.startswith(source_real + os.sep):
            raise PathError(f"Cannot {verb} {source.uri} into itself ({target.uri})")
        shutil.copytree(local, target.local, symlinks=True, dirs_exist_ok=True)
        return
    if not local.exists():
        raise FileNotFoundError(f"File {source.uri} does not exist.")
    destination = _destination(source, target)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local, destination)


def _root_message(resolved: Resolved, what: str) -> str:
    if resolved.kind == VOLUME and resolved.volume is None:
        return (
            f"Cannot {what} {resolved.uri}: paths under /Volumes must be inside a volume, "
            f"/Volumes/<catalog>/<schema>/<volume>/..."
        )
    if resolved.kind == VOLUME:
        name = ".".join(resolved.volume or ())
        return f"Cannot {what} volume {name} itself; manage volumes with `sluice volumes` (e.g. DROP VOLUME)"
    return f"Cannot {what} the root {resolved.uri}"


#: ``dbutils.fs`` of this process.
fs = FsUtil()
