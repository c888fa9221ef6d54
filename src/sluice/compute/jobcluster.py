"""Job clusters started by the first task of a run that uses ``spark``, shared by the run's other tasks.

The driver never starts a server itself: a task that may use Spark (notebook, SQL, Spark Python) gets the
coordinates of its run's job cluster in its environment (:func:`task_env`), and only when its code first
touches ``spark`` does ``sluice.runtime.spark`` call :func:`endpoint`. Under a lock file per (run, job
cluster key) the first caller starts the server and records it; later callers, in any task of the run,
find it running and connect. So a run whose tasks never use ``spark`` never pays for a server, and the
tasks that do share one ("job cluster").

The server outlives the task that started it but not the run: the driver stops the run's servers when the
run ends (:func:`release`), and each server watches the driver's process and exits when it is gone
(``kill -9`` of the control plane included); ``sweep`` at the next start forgets what is left.

Layout: ``SLUICE_HOME/compute/runs/<run id>/<job cluster key>.{lock,json}`` (the JSON is the server's
``ServerInfo``). Only the standard library is imported until a server must start.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.compute.server import ServerInfo

DIR_ENV = "SLUICE_JOB_CLUSTER_DIR"
KEY_ENV = "SLUICE_JOB_CLUSTER_KEY"
ENGINE_ENV = "SLUICE_JOB_CLUSTER_ENGINE"
#: ``<pid>:<start ticks>`` of the driver: the server dies with it.
OWNER_ENV = "SLUICE_JOB_CLUSTER_OWNER"


def run_dir(home: Path, run_id: int) -> Path:
    return home / "compute" / "runs" / str(run_id)


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "_"


def task_env(home: Path, run_id: int, key: str, engine: str, owner: tuple[int, int]) -> dict[str, str]:
    """What a task needs to find (or start) its run's job cluster ``key``."""
    return {
        DIR_ENV: str(run_dir(home, run_id)),
        KEY_ENV: key,
        ENGINE_ENV: engine,
        OWNER_ENV: f"{owner[0]}:{owner[1]}",
    }


def endpoint(env: Mapping[str, str], home: Path, catalog_env: Callable[[], dict[str, str]]) -> str:
    """The ``sc://`` endpoint of the job cluster ``env`` names, started now if no task of the run did."""
    from sluice.compute.server import start_server

    directory = Path(env[DIR_ENV])
    key = env[KEY_ENV]
    pid, _, ticks = env[OWNER_ENV].partition(":")
    directory.mkdir(parents=True, exist_ok=True)
    name = _file_name(key)
    state = directory / f"{name}.json"
    with open(directory / f"{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        info = _read(state)
        if info is not None and info.alive():
            return info.endpoint
        server = start_server(
            home,
            engine=env.get(ENGINE_ENV) or "sail",
            name=f"run-{directory.name}/{key}",
            env=catalog_env(),
            watch=(int(pid), int(ticks)),
        )
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(server.info)))
        tmp.replace(state)
        return server.endpoint


def _read(path: Path) -> ServerInfo | None:
    from sluice.compute.server import ServerInfo

    try:
        return ServerInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def release(home: Path, run_id: int) -> int:
    """Stop the job clusters of run ``run_id`` and forget them; how many were running."""
    from sluice.compute.server import Server

    directory = run_dir(home, run_id)
    if not directory.is_dir():
        return 0
    stopped = 0
    for state in directory.glob("*.json"):
        info = _read(state)
        if info is not None and info.alive():
            Server(info, home).stop()
            stopped += 1
    shutil.rmtree(directory, ignore_errors=True)
    return stopped


def own_identity() -> tuple[int, int]:
    """``(pid, start ticks)`` of this process, for :func:`task_env`'s ``owner``."""
    from sluice.compute.server import process_start_ticks

    pid = os.getpid()
    return pid, process_start_ticks(pid) or 0
