"""``spark`` in task processes and notebooks: a Spark Connect session, created on first use.

:func:`get_spark` connects to ``SPARK_REMOTE`` (an all-purpose cluster or a remote server), else to the
run's job cluster, which the first task of the run to use ``spark`` starts (``sluice.compute.jobcluster``);
outside a job it starts a Sail server owned by this process. On first creation the session is prepared
for Databricks code:

- the store's catalog is registered (``sluice.catalog.session``): ``spark.table("workspace.silver.t")``
  finds a table written by an earlier task, run or server;
- ``df.write.saveAsTable(name)`` without a path writes the table's deterministic location
  (``SLUICE_HOME/warehouse/<catalog>/<schema>/<table>``, Delta unless a format is given) and records the
  table in the store; with ``.option("path", p)`` the table is EXTERNAL at ``p``;
- ``spark.read``/``df.write.save`` of ``/Volumes/<c>/<s>/<v>/...`` and ``dbfs:/...`` paths use their local
  directories (``sluice.runtime.paths``); other absolute paths are the machine's own;
- ``spark.sql`` answers what Sail does not parse (``CREATE VOLUME``, ``DESCRIBE HISTORY`` ...) from the
  store and the file system (``sluice.catalog.sql``).

User code that builds its own session gets this one: :func:`patch_session_module` (installed by
:mod:`sluice.runtime.hooks` in task processes and kernels) makes ``SparkSession.builder...getOrCreate()``
and ``SparkSession.getActiveSession()`` return :func:`get_spark`'s session.

``import sluice.runtime.spark`` imports only the standard library; PySpark (~0.5 s) loads on first use.
"""

from __future__ import annotations

import atexit
import os
import threading

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from typing import Any

    from sluice.store.catalog import CatalogStore

REMOTE_ENV = "SPARK_REMOTE"
#: Set in pyspark's environment: its classic ``SparkSession`` classmethods then dispatch to Spark Connect.
CONNECT_MODE_ENV = "SPARK_CONNECT_MODE_ENABLED"
_lock = threading.RLock()
_session: Any = None
_catalog: CatalogStore | None = None
_owned_server: Any = None


def catalog_store() -> CatalogStore:
    """The store's catalog, opened once per process from ``SLUICE_HOME`` / ``SLUICE_DATABASE_URL``."""
    global _catalog  # a per-process connection, opened on first use
    with _lock:
        if _catalog is None:
            from sluice.settings import Settings
            from sluice.store.catalog import CatalogStore

            settings = Settings.from_env()
            _catalog = CatalogStore.open(settings.database_url, settings.home)
        return _catalog


def _endpoint() -> str:
    """``SPARK_REMOTE``; else the run's job cluster (started now if no task of the run did); else, outside a
    job, a Sail server owned by this process (stopped when it exits)."""
    global _owned_server  # one server per process outside jobs
    remote = os.environ.get(REMOTE_ENV)
    if remote:
        return remote
    from sluice.catalog.session import sail_env
    from sluice.compute import jobcluster

    catalog = catalog_store()
    if os.environ.get(jobcluster.DIR_ENV):
        return jobcluster.endpoint(os.environ, catalog.home, lambda: sail_env(catalog.list_catalogs()))
    if _owned_server is None:
        from sluice.compute.server import start_server

        _owned_server = start_server(catalog.home, env=sail_env(catalog.list_catalogs()), name="local")
        atexit.register(_owned_server.stop)
    return str(_owned_server.endpoint)


def endpoint() -> str:
    """The ``sc://`` endpoint this process's ``spark`` talks to (starting the job cluster if needed)."""
    with _lock:
        return _endpoint()


def get_spark() -> Any:
    """The process's Spark Connect session (created, prepared and cached on first call)."""
    global _session  # the process's one session, like Databricks' ``spark``
    with _lock:
        if _session is not None and not _session.is_stopped:
            return _session
        from pyspark.sql.connect.session import SparkSession

        from sluice.catalog import patches
        from sluice.catalog.session import register

        endpoint = _endpoint()
        os.environ[CONNECT_MODE_ENV] = "1"  # classic SparkSession classmethods then dispatch to Connect's
        # create(), not getOrCreate(): the patched getOrCreate/getActiveSession would come back here
        session = SparkSession.builder.remote(endpoint).create()
        patches.install(catalog_store)
        register(session, catalog_store())
        _session = session
        return session


def _apply_builder_options(session: Any, options: dict[str, str]) -> None:
    """What ``.appName(...)``/``.config(...)`` asked for, set on ``session`` as PySpark does for an
    existing session (static and unknown settings are ignored silently)."""
    from pyspark.sql.connect.session import SparkSession

    builder = SparkSession.builder
    builder.config(map={k: v for k, v in options.items() if k not in ("spark.remote", "spark.master")})
    builder._apply_options(session)


def patch_session_module(module: Any) -> None:
    """Make ``module``'s ``SparkSession.builder.getOrCreate()`` (and Connect's ``getActiveSession``) return
    :func:`get_spark`'s session; a builder with its own ``.remote(...)`` keeps PySpark's behaviour.

    ``module`` is ``pyspark.sql.session`` (the class user code imports) or ``pyspark.sql.connect.session``;
    called by :mod:`sluice.runtime.hooks` right after it is imported, once per module.
    """
    cls: Any = getattr(module, "SparkSession", None)
    builder_cls = getattr(cls, "Builder", None)
    if builder_cls is None or getattr(builder_cls, "_sluice_patched", False):
        return
    original_get_or_create = builder_cls.getOrCreate

    def getOrCreate(self: Any) -> Any:
        options = dict(self._options)
        if "spark.remote" in options or getattr(self, "_channel_builder", None) is not None:
            return original_get_or_create(self)
        session = get_spark()
        _apply_builder_options(session, options)
        return session

    getOrCreate.__doc__ = original_get_or_create.__doc__
    builder_cls.getOrCreate = getOrCreate
    builder_cls._sluice_patched = True
    if module.__name__ == "pyspark.sql.connect.session":
        original_active = cls.__dict__["getActiveSession"].__func__

        def getActiveSession(klass: Any) -> Any:
            found = original_active(klass)
            return found if found is not None else get_spark()

        getActiveSession.__doc__ = original_active.__doc__
        cls.getActiveSession = classmethod(getActiveSession)
    else:
        os.environ[CONNECT_MODE_ENV] = "1"  # classic classmethods dispatch to the (patched) Connect ones


def reset() -> None:
    """Forget the cached session (tests, or after the server went away)."""
    global _session  # see get_spark
    with _lock:
        if _session is not None:
            _session.stop()
        _session = None


class _LazySpark:
    """``spark`` that becomes :func:`get_spark` on first attribute use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(get_spark(), name)

    def __repr__(self) -> str:
        return (
            "<spark: a Spark Connect session, created on first use>" if _session is None else repr(_session)
        )


spark: Any = _LazySpark()

__all__ = ["endpoint", "get_spark", "patch_session_module", "reset", "spark"]
