"""ACID through real Sail: a task SIGKILLed in the middle of a Delta write never leaves a torn table.

A Python task (launched by the real executor, in its own process group) overwrites a table of 1,000 rows
with a large DataFrame computed on the server; once the write has started (its first new data file shows up
in the table's directory) the task is SIGKILLed. Delta commits by writing one log entry after every data
file is in place, so whatever the server does next, a reader sees the previous version or the complete new
one:

- the previous version stays readable (``VERSION AS OF 0`` with its 1,000 rows);
- no committed version holds part of the new data: each version in the log reads as 1,000 or N rows;
- when the job cluster dies too (its run was killed), no new version is committed at all.

Note: a Spark Connect server does not abort an operation because its client died: killing only the task may
still let the server finish and commit the write (atomically), observed in about half of the trials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from sluice.catalog.session import sail_env
from sluice.compute.server import Server, start_server
from sluice.executors import Exited, LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor
from sluice.store.catalog import CatalogStore

OLD_ROWS = 1000
NEW_ROWS = 30_000_000

#: argv: rows, "table" NAME | "path" PATH. Writes the DataFrame (computed on the server) with mode overwrite.
WRITER = """
import sys
from sluice.runtime.spark import spark
rows, how, where = int(sys.argv[1]), sys.argv[2], sys.argv[3]
df = spark.range(0, rows, 1, 8).selectExpr("id", "concat('row-', id) AS s", "id * 2 AS d")
writer = df.write.mode("overwrite")
if how == "table":
    writer.saveAsTable(where)
else:
    writer.format("delta").save(where)
print("written", flush=True)
"""

#: argv: SQL name of the table. Prints the row count now, at version 0, and the history's versions.
READER = """
import json, sys
from sluice.runtime.spark import spark
name = sys.argv[1]
out = {
    "now": spark.sql(f"SELECT count(*) AS n FROM {name}").collect()[0].n,
    "v0": spark.sql(f"SELECT count(*) AS n FROM {name} VERSION AS OF 0").collect()[0].n,
}
print(json.dumps(out))
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    home = tmp_path / "home"
    with CatalogStore.open(None, home) as catalog:
        env = sail_env(catalog.list_catalogs())
    srv = start_server(home, env=env, name="acid")
    try:
        yield srv, home
    finally:
        srv.stop()


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    ex.start()
    yield ex
    ex.close(grace=0.2)


def _env(home: Path, endpoint: str) -> dict[str, str]:
    env = {**os.environ, "SLUICE_HOME": str(home), "SPARK_REMOTE": endpoint}
    env.pop("SLUICE_DATABASE_URL", None)
    return env


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _python(script: Path, env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _seed_and_kill_writer(
    tmp_path: Path, home: Path, srv: Server, executor: LocalExecutor, how: str, where: str, data_dir: Path
) -> int:
    """Version 0 of OLD_ROWS rows; then a task overwriting with NEW_ROWS, SIGKILLed once its write started."""
    env = _env(home, srv.endpoint)
    writer = _script(tmp_path, "writer.py", WRITER)
    _python(writer, env, str(OLD_ROWS), how, where)
    before = set(os.listdir(data_dir))
    executor.launch(
        LaunchSpec(
            attempt_id=1,
            kind=TaskKind.PYTHON_FILE,
            target=str(writer),
            argv=[str(NEW_ROWS), how, where],
            cwd=str(tmp_path),
            env={"SLUICE_HOME": str(home), "SPARK_REMOTE": srv.endpoint},
            attempt_dir=str(tmp_path / "attempt"),
        )
    )
    deadline = time.monotonic() + 180
    while not set(os.listdir(data_dir)) - before:  # a new data file (or its staging file): the write runs
        assert executor.poll(0.02) == [], (tmp_path / "attempt" / "stderr.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the write never started"
    committed_at_kill = len(_versions(data_dir))
    executor.kill(1, grace=0)
    exited = _wait_exit(executor)
    assert exited.returncode == -signal.SIGKILL
    assert not (tmp_path / "attempt" / "stdout.log").read_text().count("written")
    return committed_at_kill


def _wait_exit(executor: LocalExecutor) -> Exited:
    for _ in range(100):
        found = executor.poll(0.1)
        if found:
            return found[0]
    raise AssertionError("the killed task never exited")


def _versions(data_dir: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (data_dir / "_delta_log").glob("*.json"))


def _wait_quiet(data_dir: Path, quiet: float = 4.0, limit: float = 120.0) -> None:
    """Until the directory has not changed for ``quiet`` seconds: the server finished or dropped the write."""
    start = last_change = time.monotonic()
    seen = sorted(os.listdir(data_dir))
    while time.monotonic() - last_change < quiet and time.monotonic() - start < limit:
        time.sleep(0.25)
        now = sorted(os.listdir(data_dir))
        if now != seen:
            seen, last_change = now, time.monotonic()


def _check_no_torn_version(data_dir: Path) -> list[int]:
    """Every committed version reads as the old or the complete new data; the versions found."""
    versions = _versions(data_dir)
    assert versions[0] == 0
    assert len(versions) <= 2, versions
    for version in versions:
        count = DeltaTable(str(data_dir), version=version).to_pyarrow_dataset().count_rows()
        assert count in (OLD_ROWS, NEW_ROWS), f"version {version} holds {count} rows: a torn write"
    assert DeltaTable(str(data_dir), version=0).to_pyarrow_dataset().count_rows() == OLD_ROWS
    return versions


def _read(tmp_path: Path, home: Path, srv: Server, name: str) -> dict[str, int]:
    import json

    reader = _script(tmp_path, "reader.py", READER)
    result: dict[str, int] = json.loads(_python(reader, _env(home, srv.endpoint), name).splitlines()[-1])
    return result


@pytest.mark.parametrize("how", ["table", "path"])
def test_killed_write_leaves_the_previous_version_readable(
    tmp_path: Path, server: tuple[Server, Path], executor: LocalExecutor, how: str
) -> None:
    srv, home = server
    _python(_script(tmp_path, "schema.py", SCHEMA), _env(home, srv.endpoint))
    if how == "table":
        where, name = "workspace.acid.t", "workspace.acid.t"
        data_dir = home / "warehouse" / "workspace" / "acid" / "t"
    else:
        data_dir = home / "volumes" / "workspace" / "acid" / "files" / "t"
        where, name = "/Volumes/workspace/acid/files/t", f"delta.`{data_dir}`"
    committed = _seed_and_kill_writer(tmp_path, home, srv, executor, how, where, data_dir)
    assert committed == 1, "the task was killed before its write could commit"
    read = _read(tmp_path, home, srv, name)  # while the server may still be writing
    assert read["v0"] == OLD_ROWS
    assert read["now"] in (OLD_ROWS, NEW_ROWS)
    _wait_quiet(data_dir)
    versions = _check_no_torn_version(data_dir)
    read = _read(tmp_path, home, srv, name)
    assert read["v0"] == OLD_ROWS
    assert read["now"] == (OLD_ROWS if versions == [0] else NEW_ROWS)


def test_killed_write_with_its_cluster_commits_nothing(
    tmp_path: Path, server: tuple[Server, Path], executor: LocalExecutor
) -> None:
    srv, home = server
    _python(_script(tmp_path, "schema.py", SCHEMA), _env(home, srv.endpoint))
    data_dir = home / "warehouse" / "workspace" / "acid" / "t"
    assert _seed_and_kill_writer(tmp_path, home, srv, executor, "table", "workspace.acid.t", data_dir) == 1
    os.killpg(srv.info.pid, signal.SIGKILL)  # the run's job cluster dies with its driver (sluice run killed)
    _wait_quiet(data_dir, quiet=2.0)
    assert _check_no_torn_version(data_dir) == [0], "a write whose task and server died was committed"
    with CatalogStore.open(None, home) as catalog:
        env = sail_env(catalog.list_catalogs())
    again = start_server(home, env=env, name="acid-again")
    try:
        assert _read(tmp_path, home, again, "workspace.acid.t") == {"now": OLD_ROWS, "v0": OLD_ROWS}
    finally:
        again.stop()


SCHEMA = """
from sluice.runtime.spark import spark
spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.acid")
spark.sql("CREATE VOLUME IF NOT EXISTS workspace.acid.files")
"""
