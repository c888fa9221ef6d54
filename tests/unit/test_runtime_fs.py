"""dbutils.fs and the Databricks path mapping (sluice.runtime.paths), on a real temporary SLUICE_HOME."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from sluice.runtime import dbutils
from sluice.runtime.fs import FileInfo, FsUtil
from sluice.runtime.paths import DBFS, FILE, VOLUME, PathError, VolumeNotFound, check_tree, resolve, to_local


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "volumes" / "main" / "raw" / "landing").mkdir(parents=True)
    return home


@pytest.fixture
def fs(home: Path) -> FsUtil:
    return FsUtil(home)


# -- the mapping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "local", "uri"),
    [
        ("dbfs:/tmp/x.csv", DBFS, "dbfs/tmp/x.csv", "dbfs:/tmp/x.csv"),
        ("/tmp/x.csv", DBFS, "dbfs/tmp/x.csv", "dbfs:/tmp/x.csv"),
        ("dbfs:///tmp//a/./b/../x.csv", DBFS, "dbfs/tmp/a/x.csv", "dbfs:/tmp/a/x.csv"),
        ("dbfs:/", DBFS, "dbfs", "dbfs:/"),
        ("/Volumes/main/raw/landing/a/b.csv", VOLUME, "volumes/main/raw/landing/a/b.csv",
         "dbfs:/Volumes/main/raw/landing/a/b.csv"),
        ("dbfs:/Volumes/main/raw/landing/b.csv", VOLUME, "volumes/main/raw/landing/b.csv",
         "dbfs:/Volumes/main/raw/landing/b.csv"),
        ("/Volumes/main", VOLUME, "volumes/main", "dbfs:/Volumes/main"),
        ("/Volumes", VOLUME, "volumes", "dbfs:/Volumes"),
    ],
)  # fmt: skip
def test_databricks_paths_map_under_sluice_home(
    home: Path, path: str, kind: str, local: str, uri: str
) -> None:
    resolved = resolve(path, home)
    assert resolved.kind == kind
    assert resolved.local == home / local
    assert resolved.uri == uri
    assert to_local(path, home) == home / local


def test_file_paths_are_the_local_file_system(home: Path) -> None:
    assert to_local("file:/tmp/x.csv", home) == Path("/tmp/x.csv")
    assert to_local("file:///tmp/x.csv", home) == Path("/tmp/x.csv")
    resolved = resolve("file:/tmp/../etc/hosts", home)
    assert (resolved.kind, resolved.local, resolved.uri) == (FILE, Path("/etc/hosts"), "file:/etc/hosts")


def test_home_comes_from_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HOME", str(home))
    assert to_local("dbfs:/a") == home / "dbfs" / "a"
    assert to_local("/Volumes/main/raw/landing/f") == home / "volumes/main/raw/landing/f"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("x.csv", "is relative; write an absolute path: dbfs:/x.csv"),
        ("s3://bucket/x", "scheme 's3:' is not supported"),
        ("dbfs:tmp/x", "must be absolute after its scheme"),
        ("file://host/tmp/x", "names a host"),
        ("dbfs:/../../etc/passwd", "climbs above / with '..'"),
        ("/a/../../x", "climbs above /"),
        ("", "non-empty string"),
    ],
)
def test_paths_that_cannot_map_are_refused_with_their_name(home: Path, path: str, message: str) -> None:
    with pytest.raises(PathError) as err:
        resolve(path, home)
    assert message in str(err.value)


def test_a_symlink_out_of_dbfs_is_refused(home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    (home / "dbfs").mkdir(parents=True)
    (home / "dbfs" / "link").symlink_to(outside)
    with pytest.raises(
        PathError, match=r"path 'dbfs:/link/secret.txt' leads outside dbfs:/ through a symbolic"
    ):
        resolve("dbfs:/link/secret.txt", home)
    # a link that stays inside is fine
    (home / "dbfs" / "real").mkdir()
    (home / "dbfs" / "alias").symlink_to(home / "dbfs" / "real")
    assert resolve("dbfs:/alias/f", home).local == home / "dbfs" / "alias" / "f"


def test_a_symlink_out_of_a_volume_is_refused(home: Path) -> None:
    other = home / "volumes" / "main" / "raw" / "other"
    other.mkdir()
    (home / "volumes/main/raw/landing/escape").symlink_to(other)
    with pytest.raises(PathError, match=r"leads outside dbfs:/Volumes/main/raw/landing"):
        resolve("/Volumes/main/raw/landing/escape/x", home)


def test_a_missing_volume_names_the_command_that_creates_it(home: Path) -> None:
    with pytest.raises(VolumeNotFound) as err:
        resolve("/Volumes/main/raw/nope/x.csv", home)
    assert "Volume main.raw.nope does not exist" in str(err.value)
    assert "sluice volumes create main.raw.nope" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert err.value.volume == ("main", "raw", "nope")


def test_the_catalog_can_decide_which_volumes_exist(home: Path) -> None:
    known = {("cat", "sch", "vol")}
    local = to_local("/Volumes/cat/sch/vol/f", home, volume_exists=lambda *v: v in known)
    assert local == home / "volumes/cat/sch/vol/f"
    with pytest.raises(VolumeNotFound):
        to_local("/Volumes/main/raw/landing/f", home, volume_exists=lambda *v: v in known)


# -- dbutils.fs -----------------------------------------------------------------------------------------


def test_put_head_ls_in_dbfs(fs: FsUtil, home: Path) -> None:
    before = int(time.time() * 1000) - 2000
    assert fs.put("dbfs:/tmp/greeting.txt", "héllo\nworld") is True
    assert (home / "dbfs/tmp/greeting.txt").read_text("utf-8") == "héllo\nworld"
    assert fs.head("/tmp/greeting.txt") == "héllo\nworld"
    assert fs.head("/tmp/greeting.txt", 2) == "h\ufffd"  # cut inside a character, as bytes go
    assert fs.mkdirs("dbfs:/tmp/sub/deeper") is True
    listing = fs.ls("dbfs:/tmp")
    assert [(i.path, i.name, i.size) for i in listing] == [
        ("dbfs:/tmp/greeting.txt", "greeting.txt", len("héllo\nworld".encode())),
        ("dbfs:/tmp/sub/", "sub/", 0),
    ]
    assert isinstance(listing[0], FileInfo)
    assert listing[0].modificationTime >= before
    assert listing[1].isDir()
    assert listing[0].isFile()
    assert fs.ls("/tmp/greeting.txt") == [listing[0]]


def test_ls_of_a_fresh_dbfs_root_is_empty_and_missing_paths_say_so(fs: FsUtil) -> None:
    assert fs.ls("dbfs:/") == []
    with pytest.raises(FileNotFoundError, match=r"File dbfs:/nope does not exist"):
        fs.ls("/nope")
    with pytest.raises(FileNotFoundError, match=r"File dbfs:/nope.txt does not exist"):
        fs.head("/nope.txt")


def test_put_refuses_to_overwrite_unless_asked(fs: FsUtil) -> None:
    fs.put("/a.txt", "one")
    with pytest.raises(FileExistsError, match=r"dbfs:/a.txt already exists; pass overwrite=True"):
        fs.put("/a.txt", "two")
    assert fs.head("/a.txt") == "one"
    fs.put("/a.txt", "two", overwrite=True)
    assert fs.head("/a.txt") == "two"
    with pytest.raises(TypeError, match="contents must be a string"):
        fs.put("/b.txt", b"bytes")  # type: ignore[arg-type]


def test_volumes_read_and_write_inside_an_existing_volume(fs: FsUtil, home: Path) -> None:
    fs.put("/Volumes/main/raw/landing/in/events.csv", "id\n1\n")
    assert (home / "volumes/main/raw/landing/in/events.csv").read_text() == "id\n1\n"
    assert [i.path for i in fs.ls("/Volumes/main/raw/landing")] == ["dbfs:/Volumes/main/raw/landing/in/"]
    assert [i.name for i in fs.ls("/Volumes/main/raw")] == ["landing/"]
    with pytest.raises(VolumeNotFound, match=r"sluice volumes create main\.raw\.missing"):
        fs.put("/Volumes/main/raw/missing/x.csv", "x")
    with pytest.raises(PathError, match="must be inside a volume"):
        fs.mkdirs("/Volumes/main/newschema")
    with pytest.raises(PathError, match=r"Cannot remove volume main.raw.landing itself"):
        fs.rm("/Volumes/main/raw/landing", recurse=True)


def test_cp_mv_rm_of_files_and_directories(fs: FsUtil, home: Path, tmp_path: Path) -> None:
    fs.put("/src/a.txt", "A")
    fs.put("/src/sub/b.txt", "B")
    assert fs.cp("/src/a.txt", "/dst/a-copy.txt") is True
    assert fs.head("/dst/a-copy.txt") == "A"
    fs.cp("/src/a.txt", "/dst")  # onto an existing directory: inside it
    assert fs.head("/dst/a.txt") == "A"
    with pytest.raises(IsADirectoryError, match=r"Cannot cp directory dbfs:/src without recurse=True"):
        fs.cp("/src", "/copy")
    fs.cp("/src", "/copy", recurse=True)
    assert sorted(str(p.relative_to(home / "dbfs/copy")) for p in (home / "dbfs/copy").rglob("*")) == [
        "a.txt",
        "sub",
        "sub/b.txt",
    ]
    with pytest.raises(PathError, match="into itself"):
        fs.cp("/src", "/src/sub/inner", recurse=True)
    # across file systems: local file -> volume -> local file
    local = tmp_path / "local.txt"
    local.write_text("L")
    fs.cp(f"file:{local}", "/Volumes/main/raw/landing/l.txt")
    fs.mv("/Volumes/main/raw/landing/l.txt", f"file:{tmp_path}/moved.txt")
    assert (tmp_path / "moved.txt").read_text() == "L"
    assert not (home / "volumes/main/raw/landing/l.txt").exists()
    # mv of a directory needs recurse
    with pytest.raises(IsADirectoryError, match="without recurse=True"):
        fs.mv("/copy", "/moved")
    fs.mv("/copy", "/moved", recurse=True)
    assert fs.head("/moved/sub/b.txt") == "B"
    assert not (home / "dbfs/copy").exists()
    # rm
    with pytest.raises(IsADirectoryError, match=r"non-empty directory dbfs:/moved; pass recurse=True"):
        fs.rm("/moved")
    assert fs.rm("/moved", recurse=True) is True
    assert fs.rm("/moved") is False
    fs.mkdirs("/empty")
    assert fs.rm("/empty") is True
    with pytest.raises(PathError, match=r"Cannot remove the root dbfs:/"):
        fs.rm("dbfs:/", recurse=True)
    with pytest.raises(FileNotFoundError, match=r"File dbfs:/none.txt does not exist"):
        fs.cp("/none.txt", "/x.txt")


def test_unsupported_mounts_and_help(fs: FsUtil, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NotImplementedError, match="use /Volumes/"):
        fs.mount("s3a://bucket", "/mnt/x")
    assert fs.mounts() == []
    fs.help()
    assert "put(file: String, contents: String, overwrite: boolean = false)" in capsys.readouterr().out


def test_dbutils_fs_uses_sluice_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HOME", str(home))
    dbutils.fs.put("/from-dbutils.txt", "ok", True)
    assert (home / "dbfs" / "from-dbutils.txt").read_text() == "ok"
    assert os.fspath(to_local("/from-dbutils.txt")) == os.fspath(home / "dbfs" / "from-dbutils.txt")


# -- symbolic links leading outside a root: refused before anything is copied, moved or read ----------


def _landing_with_a_leak(home: Path, tmp_path: Path) -> tuple[Path, Path]:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOP SECRET\n")
    folder = home / "volumes/main/raw/landing/batch"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.csv").write_text("a\n1\n")
    (folder / "sub" / "leak.csv").symlink_to(secret)
    return folder, secret


def test_recursive_cp_refuses_a_tree_with_a_link_leading_outside(
    fs: FsUtil, home: Path, tmp_path: Path
) -> None:
    _folder, secret = _landing_with_a_leak(home, tmp_path)
    with pytest.raises(
        PathError,
        match=re.escape(f"dbfs:/Volumes/main/raw/landing/batch/sub/leak.csv -> {secret}"),
    ):
        fs.cp("/Volumes/main/raw/landing/batch", "dbfs:/copy", recurse=True)
    assert not (home / "dbfs" / "copy").exists(), "nothing was copied"
    with pytest.raises(PathError, match="contains a symbolic link leading outside"):
        fs.cp("/Volumes/main/raw/landing/batch", "/Volumes/main/raw/landing/again", recurse=True)
    assert not (home / "volumes/main/raw/landing/again").exists()


def test_mv_refuses_a_tree_with_a_link_leading_outside(fs: FsUtil, home: Path, tmp_path: Path) -> None:
    folder, _secret = _landing_with_a_leak(home, tmp_path)
    with pytest.raises(
        PathError, match="contains a symbolic link leading outside dbfs:/Volumes/main/raw/landing"
    ):
        fs.mv("/Volumes/main/raw/landing/batch", "dbfs:/moved", recurse=True)
    assert folder.is_dir(), "the source stays where it was"
    assert not (home / "dbfs" / "moved").exists()


def test_cp_of_a_single_link_leading_outside_is_refused(fs: FsUtil, home: Path, tmp_path: Path) -> None:
    _folder, _ = _landing_with_a_leak(home, tmp_path)
    with pytest.raises(PathError, match="leads outside"):
        fs.cp("/Volumes/main/raw/landing/batch/sub/leak.csv", "dbfs:/x.csv")
    assert not (home / "dbfs" / "x.csv").exists()


def test_links_that_stay_inside_are_copied(fs: FsUtil, home: Path) -> None:
    folder = home / "volumes/main/raw/landing/batch"
    folder.mkdir(parents=True)
    (folder / "ok.csv").write_text("a\n1\n")
    (folder / "alias.csv").symlink_to(folder / "ok.csv")
    assert fs.cp("/Volumes/main/raw/landing/batch", "/Volumes/main/raw/landing/copy", recurse=True)
    assert (home / "volumes/main/raw/landing/copy/ok.csv").read_text() == "a\n1\n"


def test_check_tree_finds_links_below_a_glob(home: Path, tmp_path: Path) -> None:
    _landing_with_a_leak(home, tmp_path)
    with pytest.raises(PathError, match=r"batch/sub/leak\.csv"):
        check_tree(resolve("/Volumes/main/raw/landing/batch/*/*.csv", home))
    check_tree(resolve("file:/etc", home))  # file: paths are the machine's, no root to leave
