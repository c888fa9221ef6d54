"""Imported as ``pyspark.dbutils`` in Sluice task processes and notebook kernels
(:mod:`sluice.runtime.hooks`): ``from pyspark.dbutils import DBUtils; dbutils = DBUtils(spark)`` returns
Sluice's ``dbutils``, as it returns the cluster's on Databricks. ``pyspark-client`` has no such module; the
installed ``pyspark`` package is not changed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from typing import Any


class DBUtils:
    """``DBUtils(spark)``: the process's ``dbutils`` (the session argument is accepted and not used)."""

    def __new__(cls, spark: Any = None) -> Any:
        from sluice.runtime import dbutils

        return dbutils


__all__ = ["DBUtils"]
