"""Import hooks that let Databricks code find its runtime without importing anything from Sluice.

:func:`install` runs in every task process (``sluice.executors.taskmain``), in notebook kernels
(``sluice.notebooks.kernel``) and where ``%load_ext sluice`` is loaded. It puts one finder first on
``sys.meta_path`` that:

- after ``pyspark.sql.session`` / ``pyspark.sql.connect.session`` is imported, patches its builder so that
  ``SparkSession.builder[.appName(..).config(..)].getOrCreate()`` and ``SparkSession.getActiveSession()``
  return the run's session (:func:`sluice.runtime.spark.patch_session_module`); a builder that names its
  own ``.remote(...)`` is left alone;
- provides ``dbruntime`` (what ``databricks.sdk.runtime`` looks for on a Databricks cluster, so
  ``from databricks.sdk.runtime import dbutils, spark, display`` returns Sluice's objects) and
  ``pyspark.dbutils`` (``DBUtils(spark)``), which ``pyspark-client`` does not have. Both are Sluice
  modules served under those names (:data:`SHIMS`); the installed packages stay unchanged.

Nothing is imported until user code imports one of these names, so a task that never touches Spark
never pays. Only the standard library is imported here.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_file_location

TYPE_CHECKING = False  # typing is not imported at run time: this module is on every task's path
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: Module name -> the file of this package that is imported under that name.
SHIMS = {
    "dbruntime": os.path.join(_HERE, "dbruntime.py"),
    "pyspark.dbutils": os.path.join(_HERE, "pyspark_dbutils.py"),
}
#: Module name -> what to call with the module right after it is executed.
PATCHED = ("pyspark.sql.session", "pyspark.sql.connect.session")


def _patch(module: ModuleType) -> None:
    from sluice.runtime.spark import patch_session_module

    patch_session_module(module)


class _PatchingLoader:
    """Runs the real loader, then :func:`_patch` on the module."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class SluiceFinder:
    """The ``sys.meta_path`` finder described in the module docstring."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        shim = SHIMS.get(fullname)
        if shim is not None:
            return spec_from_file_location(fullname, shim)
        if fullname not in PATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, SluiceFinder):
                continue
            find: Callable[..., ModuleSpec | None] | None = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]  # duck-typed loader
                return spec
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent); patch what is already imported."""
    if not any(isinstance(f, SluiceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SluiceFinder())
    for name in PATCHED:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)
