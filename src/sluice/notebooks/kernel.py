"""The kernel a notebook task runs in: ipykernel's IPKernelApp, prepared for a Databricks notebook.

Started by the runner as ``<sys.executable> -m sluice.notebooks.kernel -f <connection file>`` (ADR 0005).
Before the kernel answers its first request, :func:`prepare_shell` gives the user namespace what a
Databricks notebook has: ``dbutils``, ``display``, ``spark`` and the cell magics of
:mod:`sluice.notebooks.magics`. The kernel's own start-up skips what a batch run never uses: the debugger
(``debugpy`` costs ~0.2 s to import) and the on-disk input history.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

#: ``spark`` comes from this module when it exists (the compute engine's runtime part).
SPARK_MODULE = "sluice.runtime.spark"
#: ``display`` comes from this module when it exists, else IPython's.
DISPLAY_MODULE = "sluice.runtime.display"


class SparkUnavailableError(RuntimeError):
    """``spark`` was used in a Sluice without the compute engine."""


class _NoSpark:
    """The ``spark`` name when no compute engine is installed: any use raises a clear error."""

    sluice_unavailable = True
    sluice_reason = (
        f"the compute engine is not available in this Sluice installation ({SPARK_MODULE} cannot be "
        "imported); install Sluice with its compute engine to use spark and %sql"
    )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise SparkUnavailableError(f"spark.{name} needs the compute engine: {self.sluice_reason}")

    def __repr__(self) -> str:
        return "<spark: not available (no compute engine)>"


class _LazySpark:
    """``spark`` created on first use from :data:`SPARK_MODULE` (tasks that never touch it never pay)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self._namespace = namespace

    def _session(self) -> Any:
        import importlib

        module = importlib.import_module(SPARK_MODULE)
        factory = getattr(module, "get_spark", None)
        session = factory() if callable(factory) else module.spark
        if self._namespace.get("spark") is self:
            self._namespace["spark"] = session
        return session

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._session(), name)

    def __repr__(self) -> str:
        return "<spark: created on first use>"


def _module_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _display_functions() -> dict[str, Any]:
    """``display`` (and ``displayHTML``) from the runtime when it has them, else IPython's ``display``."""
    if _module_exists(DISPLAY_MODULE):
        module = importlib.import_module(DISPLAY_MODULE)
        names = ("display", "displayHTML")
        return {name: getattr(module, name) for name in names if hasattr(module, name)}
    ipython_display: Any = importlib.import_module("IPython.display")
    return {"display": ipython_display.display}


def prepare_shell(shell: InteractiveShell) -> None:
    """Give ``shell`` the notebook names and magics; run before the first cell."""
    from sluice.notebooks import magics
    from sluice.runtime import dbutils, hooks
    from sluice.runtime.widgets import getArgument

    hooks.install()  # SparkSession.builder, databricks.sdk.runtime, pyspark.dbutils: the notebook's objects
    namespace = shell.user_ns
    namespace["dbutils"] = dbutils
    namespace["getArgument"] = getArgument
    namespace.update(_display_functions())
    namespace["spark"] = _LazySpark(namespace) if _module_exists(SPARK_MODULE) else _NoSpark()
    magics.register(shell)
    _show_notebook_exit_plainly(shell)
    notebook = os.environ.get(magics.NOTEBOOK_PATH_ENV)
    if notebook:
        folder = os.path.dirname(os.path.abspath(notebook))
        if folder not in sys.path:
            sys.path.insert(0, folder)  # Databricks: modules next to the notebook are importable


def _show_notebook_exit_plainly(shell: InteractiveShell) -> None:
    """``dbutils.notebook.exit`` shows ``Notebook exited: <value>`` instead of a SystemExit traceback."""
    from sluice.runtime.notebook import NotebookExit

    warnings.filterwarnings("ignore", message="To exit: use 'exit', 'quit', or Ctrl-D.")
    original = shell.showtraceback

    def showtraceback(*args: Any, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, NotebookExit):
            print(f"Notebook exited: {exc.value}")
            return
        original(*args, **kwargs)

    shell.showtraceback = showtraceback  # type: ignore[method-assign]  # this kernel's own shell


def main(argv: list[str] | None = None) -> None:
    """Start the kernel (``-f CONNECTION_FILE``), prepared for a Databricks notebook.

    With ``--sluice-wait`` (a kernel started ahead of its task, ADR 0005) the kernel initialises, then
    waits for its attempt on stdin (:func:`join_attempt`) before it prepares the namespace and serves.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    wait = WAIT_FLAG in args
    if wait:
        args.remove(WAIT_FLAG)
    blocked = "debugpy" not in sys.modules
    if blocked:
        sys.modules["debugpy"] = None  # type: ignore[assignment]  # makes `import debugpy` fail: no debugger
    kernelapp: Any = importlib.import_module("ipykernel.kernelapp")
    app = kernelapp.IPKernelApp.instance()
    app.initialize([*args, "--HistoryManager.enabled=False"])
    if blocked:
        del sys.modules["debugpy"]  # user code may import it
    if wait:
        for name in _PREIMPORTED:  # what prepare_shell needs; none of it reads the environment on import
            if _module_exists(name):
                importlib.import_module(name)
        join_attempt(app.shell)
    prepare_shell(app.shell)
    app.start()


#: Argument of a kernel started ahead of its task: it waits for its attempt on stdin.
WAIT_FLAG = "--sluice-wait"
_PREIMPORTED = ("sluice.runtime.dbutils", "sluice.notebooks.magics", DISPLAY_MODULE, "IPython.display")


def join_attempt(shell: InteractiveShell) -> None:
    """In a kernel started ahead of time: become the attempt's kernel, as if started by its task.

    Reads one JSON document from stdin (until EOF; nothing means the kernel is not needed: exit) with
    ``env`` (the task's environment, applied over ours), ``cwd`` and ``attempt_dir``. Then: the environment
    (``PYTHONPATH`` entries go on ``sys.path`` too), the process tag in ``/proc/<pid>/environ`` (so the
    executor's sweep finds the kernel), the working directory, and the kernel's own stdout/stderr (what
    ipykernel keeps of fd 1 and 2: its logs) to the attempt's ``stdout.log``/``stderr.log``.
    """
    with open(0, "rb", closefd=False) as stdin:
        data = stdin.read()
    if not data.strip():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    attempt: dict[str, Any] = json.loads(data)
    env: dict[str, str] = attempt["env"]
    before = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ.update(env)
    os.chdir(attempt["cwd"])
    added = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in before]
    at = 1 if sys.path and sys.path[0] == "" else 0  # after the kernel's "" (the working directory)
    sys.path[at:at] = [os.path.abspath(p) for p in added if os.path.abspath(p) not in sys.path]
    shell.user_ns["_dh"] = [os.getcwd()]
    _mark_process_tag(env)
    _redirect_kernel_logs(str(attempt["attempt_dir"]))


def _mark_process_tag(env: dict[str, str]) -> None:
    """Write the attempt's tag over the placeholder our initial environment block carries (the sweep
    reads ``/proc/<pid>/environ``, which ``os.environ`` does not change)."""
    from sluice.executors import PROCESS_TAG_ENV

    tag = env.get(PROCESS_TAG_ENV, "")
    token, _, attempt = tag.rpartition(".")
    if token and attempt.isdigit():
        from sluice.executors.zygote import mark_process_tag

        mark_process_tag(token, int(attempt))


def _redirect_kernel_logs(attempt_dir: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    for stream, name in ((sys.stdout, "stdout.log"), (sys.stderr, "stderr.log")):
        fd = getattr(stream, "_original_stdstream_copy", None)  # ipykernel's copy of fd 1 / 2
        target = fd if isinstance(fd, int) else (1 if name == "stdout.log" else 2)
        try:
            log = os.open(os.path.join(attempt_dir, name), flags, 0o644)
        except OSError:
            continue
        os.dup2(log, target)
        os.close(log)


if __name__ == "__main__":
    main()
