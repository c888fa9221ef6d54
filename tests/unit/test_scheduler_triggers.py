"""Continuous, file-arrival and table-update triggers on a real store, with real files and Delta logs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scheduler_support import job_settings, ms, open_store

from sluice.scheduler import CatalogTableVersions, DeltaLogVersions, Scheduler
from sluice.scheduler.file_arrival import list_files
from sluice.scheduler.table_update import newest_version
from sluice.store import Store
from sluice.store.catalog import CatalogStore
from sluice.store.testing import postgres_schema, require_postgres

__all__ = ["open_store"]

T0 = ms("2025-06-02 12:00:00")
S = 1000


def runs_of(store: Store, job_id: int) -> list[tuple[int, str, dict[str, object]]]:
    runs = sorted(store.list_runs(job_id=job_id, limit=1000), key=lambda r: r.run_id)
    return [(r.created_time, r.trigger, r.trigger_info) for r in runs]


def end_run(store: Store, job_id: int, result: str, end: int) -> None:
    """What the orchestrator does when a run ends: mark the job's active run terminal."""
    (run,) = store.list_runs(job_id=job_id, active_only=True)
    store.update_run(run.run_id, state="TERMINATED", result_state=result, end_time=end)


# --- continuous -----------------------------------------------------------------------------------


def test_continuous_keeps_one_run_and_backs_off_on_failures(open_store: Callable[[], Store]) -> None:
    store = open_store()
    job = store.create_job(job_settings(continuous={"pause_status": "UNPAUSED"}), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)
    scheduler.tick(T0 + 5 * S)
    assert [(t, trig) for t, trig, _ in runs_of(store, job.job_id)] == [(T0, "CONTINUOUS")]
    end_run(store, job.job_id, "SUCCESS", T0 + 60 * S)
    scheduler.tick(T0 + 61 * S)  # ended well: the next one starts at once
    end_run(store, job.job_id, "FAILED", T0 + 62 * S)
    starts = [T0, T0 + 61 * S]
    failure_end = T0 + 62 * S
    for delay in (10, 20, 40):  # first, second, third failure in a row: 10 s, 20 s, 40 s
        scheduler.tick(failure_end + delay * S - 1)
        assert len(runs_of(store, job.job_id)) == len(starts)
        scheduler.tick(failure_end + delay * S)
        starts.append(failure_end + delay * S)
        failure_end = failure_end + delay * S + 3 * S
        end_run(store, job.job_id, "FAILED", failure_end)
    assert [t for t, _, _ in runs_of(store, job.job_id)] == starts
    assert runs_of(store, job.job_id)[-1][2] == {"failures_before": 3}
    # A restarted scheduler keeps the count: 4 failures in a row now, so 80 s.
    other = Scheduler(open_store())
    other.tick(failure_end + 79 * S)
    assert len(runs_of(store, job.job_id)) == len(starts)
    other.tick(failure_end + 80 * S)
    assert len(runs_of(store, job.job_id)) == len(starts) + 1


def test_continuous_waits_for_a_manual_run_and_pause_stops_it(open_store: Callable[[], Store]) -> None:
    from sluice.engine.submit import run_now

    store = open_store()
    job = store.create_job(job_settings(continuous={"pause_status": "PAUSED"}), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)
    assert runs_of(store, job.job_id) == []
    run_now(store, job, now=T0 + S)  # a manual run is active: the continuous job must not add a second
    job = store.update_job(job.job_id, job_settings(continuous={"pause_status": "UNPAUSED"}), now=T0 + 2 * S)
    scheduler.tick(T0 + 3 * S)
    assert [trig for _, trig, _ in runs_of(store, job.job_id)] == ["ONE_TIME"]
    end_run(store, job.job_id, "SUCCESS", T0 + 4 * S)
    scheduler.tick(T0 + 5 * S)
    assert [trig for _, trig, _ in runs_of(store, job.job_id)] == ["ONE_TIME", "CONTINUOUS"]


# --- file arrival ---------------------------------------------------------------------------------


def file_job(url: Path, **timers: int) -> dict[str, object]:
    return job_settings(trigger={"file_arrival": {"url": str(url), **timers}})


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_only_new_files_fire_after_the_debounce(open_store: Callable[[], Store], tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write(landing / "old.csv")
    store = open_store()
    job = store.create_job(
        file_job(landing, wait_after_last_change_seconds=60, min_time_between_triggers_seconds=300), now=T0
    )
    scheduler = Scheduler(store, scan_inline=True, poll_ms=0)
    scheduler.tick(T0)  # files present when the trigger is first seen never fire
    scheduler.tick(T0 + 120 * S)
    assert runs_of(store, job.job_id) == []
    write(landing / "2025" / "06" / "a.csv")  # recursive
    scheduler.tick(T0 + 130 * S)
    write(landing / "b.csv")  # a second new file restarts the 60 s wait
    scheduler.tick(T0 + 170 * S)
    scheduler.tick(T0 + 229 * S)
    assert runs_of(store, job.job_id) == []
    scheduler.tick(T0 + 230 * S)
    assert runs_of(store, job.job_id) == [
        (T0 + 230 * S, "FILE_ARRIVAL", {"file_arrival_location": str(landing)})
    ]
    # Overwriting (new content, a newer mtime) is not a new file.
    write(landing / "old.csv", "changed")
    os.utime(landing / "old.csv", (T0 / 1000 + 400, T0 / 1000 + 400))
    scheduler.tick(T0 + 400 * S)
    scheduler.tick(T0 + 900 * S)
    assert len(runs_of(store, job.job_id)) == 1
    # A new file soon after the run waits for min_time_between_triggers (300 s after the run).
    write(landing / "c.csv")
    scheduler.tick(T0 + 910 * S)
    scheduler.tick(T0 + 975 * S)
    assert len(runs_of(store, job.job_id)) == 2


def test_new_file_with_an_old_mtime_still_fires(open_store: Callable[[], Store], tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    store = open_store()
    job = store.create_job(file_job(landing), now=T0)
    scheduler = Scheduler(store, scan_inline=True, poll_ms=0)
    scheduler.tick(T0)
    write(landing / "copied.csv")
    os.utime(landing / "copied.csv", (1_000_000, 1_000_000))  # `cp -p` of a file from 1970
    scheduler.tick(T0 + S)
    assert [trig for _, trig, _ in runs_of(store, job.job_id)] == ["FILE_ARRIVAL"]


def test_scans_on_background_threads_and_polls_at_the_interval(
    open_store: Callable[[], Store], tmp_path: Path
) -> None:
    landing = tmp_path / "in"
    store = open_store()
    job = store.create_job(file_job(landing), now=T0)  # the directory does not exist yet
    scheduler = Scheduler(store, poll_ms=5_000)
    try:
        scheduler.tick(T0)  # starts the first listing; the baseline is taken when it is done
        scheduler.scanner.wait(10)
        scheduler.tick(T0 + S)
        write(landing / "first.csv")
        scheduler.tick(T0 + 2 * S)  # within the poll interval: no listing
        scheduler.scanner.wait(10)
        scheduler.tick(T0 + 3 * S)
        assert runs_of(store, job.job_id) == []
        scheduler.tick(T0 + 7 * S)  # poll due: a listing starts
        scheduler.scanner.wait(10)
        scheduler.tick(T0 + 8 * S)  # its result arrives: a new file, no debounce set
        assert [t for t, _, _ in runs_of(store, job.job_id)] == [T0 + 8 * S]
    finally:
        scheduler.close()


def test_list_files_limits_and_errors(tmp_path: Path) -> None:
    for i in range(5):
        write(tmp_path / "d" / f"f{i}")
    write(tmp_path / "d" / "sub" / "g")
    listing = list_files(str(tmp_path / "d"))
    assert listing.paths == {"f0", "f1", "f2", "f3", "f4", "sub/g"}
    assert not listing.truncated
    assert list_files(f"file://{tmp_path / 'd'}").paths == listing.paths
    assert list_files(str(tmp_path / "d"), limit=3).truncated
    assert list_files(str(tmp_path / "missing")).paths == frozenset()
    bad = list_files(str(tmp_path / "d" / "f0"))
    assert bad.error is not None
    assert "is a file, not a directory" in bad.error


def test_list_files_through_fsspec_memory_filesystem() -> None:
    import fsspec  # type: ignore[import-untyped]  # no stubs

    fs = fsspec.filesystem("memory")
    fs.pipe({"/h4-landing/a.csv": b"1", "/h4-landing/x/b.csv": b"2"})
    try:
        assert list_files("memory://h4-landing").paths == {"a.csv", "x/b.csv"}
    finally:
        fs.rm("/h4-landing", recursive=True)


# --- table update ---------------------------------------------------------------------------------


def commit(table: Path, version: int, timestamp: int) -> None:
    """Write Delta commit ``version`` (a JSON-lines file with commitInfo) of the table directory."""
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    actions = [
        {"commitInfo": {"timestamp": timestamp, "operation": "WRITE"}},
        {"add": {"path": f"p{version}"}},
    ]
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    return {name: tmp_path / "wh" / name.replace(".", "/") for name in ("main.s.orders", "main.s.customers")}


def table_job(condition: str, **timers: int) -> dict[str, object]:
    body = {"table_names": ["main.s.orders", "main.s.customers"], "condition": condition, **timers}
    return job_settings(trigger={"table_update": body})


def test_newest_version_reads_the_delta_log(tmp_path: Path) -> None:
    assert newest_version(str(tmp_path / "nothing")) is None
    commit(tmp_path / "t", 0, 1)
    commit(tmp_path / "t", 1, 2)
    commit(tmp_path / "t", 12, 3)
    (tmp_path / "t" / "_delta_log" / "00000000000000000010.checkpoint.parquet").write_bytes(b"")
    (tmp_path / "t" / "_delta_log" / "_last_checkpoint").write_text("{}")
    assert newest_version(str(tmp_path / "t")) == 12


def test_any_updated_fires_on_a_commit_after_first_sight(
    open_store: Callable[[], Store], tables: dict[str, Path]
) -> None:
    commit(tables["main.s.orders"], 0, T0 - 99)
    store = open_store()
    job = store.create_job(table_job("ANY_UPDATED", wait_after_last_change_seconds=30), now=T0)
    versions = DeltaLogVersions(lambda name: str(tables[name]) if name in tables else None)
    scheduler = Scheduler(store, table_versions=versions, poll_ms=0)
    scheduler.tick(T0)  # version 0 existed before: no run
    scheduler.tick(T0 + 60 * S)
    assert runs_of(store, job.job_id) == []
    commit(tables["main.s.orders"], 1, T0 + 61 * S)
    scheduler.tick(T0 + 62 * S)
    scheduler.tick(T0 + 91 * S)
    assert runs_of(store, job.job_id) == []
    scheduler.tick(T0 + 92 * S)
    expected_info = {
        "table_update": {
            "updated_tables": ["main.s.orders"],
            "tables": {"main.s.orders": {"version": 1, "commit_timestamp": T0 + 61 * S}},
        }
    }
    assert runs_of(store, job.job_id) == [(T0 + 92 * S, "TABLE", expected_info)]
    scheduler.tick(T0 + 200 * S)
    assert len(runs_of(store, job.job_id)) == 1


def test_all_updated_waits_for_every_table(open_store: Callable[[], Store], tables: dict[str, Path]) -> None:
    store = open_store()
    job = store.create_job(table_job("ALL_UPDATED"), now=T0)
    versions = DeltaLogVersions(lambda name: str(tables[name]))
    scheduler = Scheduler(store, table_versions=versions, poll_ms=0)
    scheduler.tick(T0)  # neither table exists yet
    commit(tables["main.s.orders"], 0, T0)
    scheduler.tick(T0 + S)
    commit(tables["main.s.orders"], 1, T0)
    scheduler.tick(T0 + 2 * S)
    assert runs_of(store, job.job_id) == []
    commit(tables["main.s.customers"], 0, T0)
    scheduler.tick(T0 + 3 * S)
    (run,) = runs_of(store, job.job_id)
    assert run[2]["table_update"]["updated_tables"] == ["main.s.customers", "main.s.orders"]  # type: ignore[index]
    commit(tables["main.s.orders"], 2, T0)
    scheduler.tick(T0 + 4 * S)
    assert len(runs_of(store, job.job_id)) == 1  # customers has not changed since the run


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        with postgres_schema(require_postgres()) as url:
            yield url


def test_catalog_table_versions_resolve_names_in_the_store_owned_catalog(
    tmp_path: Path, database_url: str | None
) -> None:
    with CatalogStore.open(database_url, tmp_path) as catalog:
        catalog.create_catalog("main", T0)
        catalog.put_table("main", "s", "orders", location=str(tmp_path / "ext" / "orders"), now=T0)
        managed = catalog.table_location("workspace", "default", "events")
        catalog.put_table("workspace", "default", "events", location=str(managed), now=T0)
    commit(tmp_path / "ext" / "orders", 0, T0)
    commit(tmp_path / "ext" / "orders", 1, T0 + S)
    versions = CatalogTableVersions(database_url, tmp_path)
    try:
        assert versions("main.s.orders") == versions("MAIN.S.`orders`") == 1
        assert versions.commit_timestamp("main.s.orders", 1) == T0 + S
        assert versions("events") is None  # in the catalog, nothing committed yet
        commit(managed, 0, T0)
        assert versions("events") == versions("default.events") == versions("workspace.default.events") == 0
        assert versions("main.s.nothing") is None  # not in the catalog (yet)
    finally:
        versions.close()
    versions.close()  # closing twice is fine


def test_table_update_without_a_catalog_waits_and_says_so(
    open_store: Callable[[], Store], caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store()
    store.create_job(table_job("ANY_UPDATED"), now=T0)
    scheduler = Scheduler(store)
    scheduler.tick(T0)
    scheduler.tick(T0 + S)
    assert [r.getMessage() for r in caplog.records if "no catalog" in r.getMessage()] != []
