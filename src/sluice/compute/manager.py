"""Where a run's tasks send their Spark work: job clusters, all-purpose clusters, remote servers.

Before launching a task that may use ``spark`` (notebook, SQL and Spark Python tasks) the engine asks
:meth:`ComputeManager.task_env` for the task's environment. A job cluster is not started here: the task
gets its coordinates, and the run's first task that really uses ``spark`` starts it, shared by the run's
other tasks (:mod:`sluice.compute.jobcluster`); so runs whose tasks never touch Spark never start one.
:meth:`release_run` stops a finished run's job clusters; :meth:`close` stops every server started here.

What a task names decides where it runs (see :func:`compute_target`):

- ``existing_cluster_id: NAME`` -> the all-purpose cluster ``NAME`` (``sluice clusters start NAME``), or an
  ``sc://host:port`` URL used as it is (a remote Spark Connect server);
- ``job_cluster_key: KEY`` -> the run's job cluster ``KEY``; its ``new_cluster.spark_conf`` may choose the
  engine with ``sluice.compute.engine: sail|spark`` or a remote with ``sluice.compute.remote: sc://...``;
- nothing -> the run's default job cluster (serverless on Databricks), or ``SPARK_REMOTE`` of the control
  plane's environment when it is set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.compute import jobcluster

if TYPE_CHECKING:
    from sluice.compute.server import Server

#: Task types whose processes may use ``spark`` and so learn where it runs.
SPARK_TASK_TYPES = frozenset({"notebook_task", "sql_task", "spark_python_task"})
#: The ``spark_conf`` keys of a job cluster that choose its engine or a remote server.
ENGINE_CONF = "sluice.compute.engine"
REMOTE_CONF = "sluice.compute.remote"
DEFAULT_KEY = "__default__"
REMOTE_ENV = "SPARK_REMOTE"


def tasks_by_key(settings: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A job's tasks by key, for-each nested tasks included."""
    found: dict[str, Mapping[str, Any]] = {}
    for task in settings.get("tasks") or ():
        found[str(task.get("task_key"))] = task
        nested = (task.get("for_each_task") or {}).get("task")
        if nested:
            found.setdefault(str(nested.get("task_key")), nested)
    return found


def find_task(settings: Mapping[str, Any], task_key: str) -> Mapping[str, Any] | None:
    """The task ``task_key`` of a job's settings (for-each nested tasks included)."""
    return tasks_by_key(settings).get(task_key)


def compute_target(settings: Mapping[str, Any], task: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(kind, name, engine or url)`` for a task: kind ``cluster`` (all-purpose), ``remote`` or ``job``."""
    existing = task.get("existing_cluster_id")
    if existing:
        text = str(existing)
        return ("remote", text, text) if text.startswith("sc://") else ("cluster", text, "")
    key = str(task.get("job_cluster_key") or DEFAULT_KEY)
    for cluster in settings.get("job_clusters") or ():
        if cluster.get("job_cluster_key") == key:
            conf = (cluster.get("new_cluster") or {}).get("spark_conf") or {}
            remote = conf.get(REMOTE_CONF)
            if remote:
                return "remote", key, str(remote)
            return "job", key, str(conf.get(ENGINE_CONF) or default_engine())
    return "job", key, default_engine()


def default_engine() -> str:
    """``SLUICE_COMPUTE_ENGINE`` (``sail`` or ``spark``), default ``sail``."""
    return os.environ.get("SLUICE_COMPUTE_ENGINE") or "sail"


class ComputeManager:
    """The compute of the runs one process drives. Thread-safe."""

    def __init__(self, home: Path, *, catalog_env: Callable[[], dict[str, str]] | None = None) -> None:
        self.home = home
        self._servers: dict[tuple[int, str], Server] = {}
        self._lock = threading.Lock()
        self._catalog_env = catalog_env
        #: Tasks by key of the runs seen (a launch does not scan the job), and runs whose job clusters
        #: their tasks may have started.
        self._tasks: dict[int, tuple[Mapping[str, Any], dict[str, Mapping[str, Any]]]] = {}
        self._owner: tuple[int, int] | None = None

    @classmethod
    def for_store(cls, store: Any, home: Path) -> ComputeManager:
        """A manager whose Sail servers know the catalogs of ``store`` (a ``sluice.store.Store``)."""

        def catalog_env() -> dict[str, str]:
            from sluice.catalog.session import sail_env
            from sluice.store.catalog import CatalogStore

            return sail_env(CatalogStore(store._db, home).list_catalogs())

        return cls(home, catalog_env=catalog_env)

    def endpoint_for(self, run_id: int, cluster_key: str = DEFAULT_KEY, *, engine: str | None = None) -> str:
        """The ``sc://`` endpoint of a server for the run's ``cluster_key`` owned by this manager, started
        on first use (tests and tools; the engine's tasks start their job clusters themselves)."""
        from sluice.compute.server import start_server

        with self._lock:
            server = self._servers.get((run_id, cluster_key))
            if server is not None and server.info.alive():
                return server.endpoint
            env = self._catalog_env() if self._catalog_env is not None else {}
            server = start_server(
                self.home, engine=engine or default_engine(), name=f"run-{run_id}/{cluster_key}", env=env
            )
            self._servers[(run_id, cluster_key)] = server
            return server.endpoint

    def task_env(self, run_id: int, settings: Mapping[str, Any], task_key: str) -> dict[str, str]:
        """The environment that tells a task where its Spark work goes; ``{}`` for tasks without Spark.

        ``SPARK_REMOTE`` for all-purpose clusters and remote servers (and for default-cluster tasks when
        the control plane's environment sets it); else the coordinates of the run's job cluster, which
        the first ``spark`` use of one of the run's tasks starts (:mod:`sluice.compute.jobcluster`).
        ComputeError (a SluiceError: the task fails before it starts) for a cluster that is not running.
        """
        with self._lock:
            seen = self._tasks.get(run_id)
            if seen is None or seen[0] is not settings:  # a repair runs with the job's new settings
                seen = self._tasks[run_id] = (settings, tasks_by_key(settings))
            tasks = seen[1]
            if self._owner is None:
                self._owner = jobcluster.own_identity()
            owner = self._owner
        task = tasks.get(task_key)
        if task is None or not SPARK_TASK_TYPES.intersection(task):
            return {}
        kind, name, value = compute_target(settings, task)
        if kind == "remote":
            if not value.startswith("sc://"):
                from sluice.compute.server import ComputeError

                raise ComputeError(
                    f"{REMOTE_CONF} '{value}' of job cluster '{name}' is not an sc://host:port URL"
                )
            return {REMOTE_ENV: value}
        if kind == "cluster":
            from sluice.compute.clusters import cluster_endpoint

            return {REMOTE_ENV: cluster_endpoint(self.home, name)}
        if name == DEFAULT_KEY and os.environ.get(REMOTE_ENV):
            return {REMOTE_ENV: os.environ[REMOTE_ENV]}
        return jobcluster.task_env(self.home, run_id, name, value, owner)

    def servers_of(self, run_id: int) -> Sequence[Server]:
        with self._lock:
            return [s for (rid, _), s in self._servers.items() if rid == run_id]

    def release_run(self, run_id: int) -> None:
        """Stop the servers of run ``run_id`` (no-op when it has none)."""
        with self._lock:
            keys = [k for k in self._servers if k[0] == run_id]
            servers = [self._servers.pop(k) for k in keys]
            seen = self._tasks.pop(run_id, None) is not None
        for server in servers:
            server.stop()
        if seen:
            jobcluster.release(self.home, run_id)

    def close(self) -> None:
        """Stop every server this manager started and the job clusters of the runs it saw."""
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            runs = list(self._tasks)
            self._tasks.clear()
        for server in servers:
            server.stop()
        for run_id in runs:
            jobcluster.release(self.home, run_id)

    def __enter__(self) -> ComputeManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
