"""Imported as ``dbruntime`` in Sluice task processes and notebook kernels (:mod:`sluice.runtime.hooks`).

``databricks.sdk.runtime`` (the real ``databricks-sdk``, unchanged) imports
``dbruntime.UserNamespaceInitializer`` to tell whether it runs on a Databricks cluster, and then takes
``dbutils``, ``spark``, ``display``, ``displayHTML``, ``getArgument``, ``sql``, ``table`` and ``udf`` from
``UserNamespaceInitializer.getOrCreate().get_namespace_globals()``. Here that is the notebook's own
namespace in a kernel that has ``dbutils`` (``%load_ext sluice`` or a notebook task), else Sluice's
runtime objects (``spark`` is created on first use). ``WorkspaceClient().dbutils`` then is Sluice's too.
``sc`` and ``sqlContext`` are not provided: Spark Connect has neither.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from typing import Any


def _sql(sqlQuery: str, *args: Any, **kwargs: Any) -> Any:
    from sluice.runtime.spark import get_spark

    return get_spark().sql(sqlQuery, *args, **kwargs)


def _table(tableName: str) -> Any:
    from sluice.runtime.spark import get_spark

    return get_spark().table(tableName)


def _udf(*args: Any, **kwargs: Any) -> Any:
    from pyspark.sql.functions import udf

    return udf(*args, **kwargs)


def _runtime_globals() -> dict[str, Any]:
    from sluice.runtime import dbutils
    from sluice.runtime.display import display, displayHTML
    from sluice.runtime.spark import spark
    from sluice.runtime.widgets import getArgument

    return {
        "dbutils": dbutils,
        "spark": spark,
        "display": display,
        "displayHTML": displayHTML,
        "getArgument": getArgument,
        "sql": _sql,
        "table": _table,
        "udf": _udf,
    }


class UserNamespaceInitializer:
    """What ``databricks.sdk.runtime`` asks for: the notebook's global names."""

    _instance: UserNamespaceInitializer | None = None

    @classmethod
    def getOrCreate(cls) -> UserNamespaceInitializer:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def get_namespace_globals(self) -> dict[str, Any]:
        names = _runtime_globals()
        try:
            from IPython import get_ipython
        except ImportError:
            return names
        shell = get_ipython()
        user_ns: dict[str, Any] = getattr(shell, "user_ns", None) or {}
        if "dbutils" not in user_ns:
            return names
        return {**names, **{k: user_ns[k] for k in names if k in user_ns}}
