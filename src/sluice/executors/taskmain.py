"""What runs inside a task process, right after the zygote forked it.

The zygote already made the child its own session and process group, set ``PR_SET_PDEATHSIG``, restored
Python's default signal handlers and closed its own descriptors. This module then does what a fresh
``python script.py`` would have done, and reports the outcome the way ``docs/protocol.md`` describes:

- stdin is ``/dev/null`` (the zygote's); fd 1 and 2 go to ``<attempt_dir>/stdout.log`` and
  ``stderr.log`` (line buffered, so everything printed is in the file even if the process is killed);
- ``python_file``: the file runs as ``__main__`` with its directory first on ``sys.path``;
  ``python_wheel``: the entry point of the distribution, else ``package.entry_point()``;
  ``notebook``: :mod:`sluice.notebooks.runner` runs the notebook in a Jupyter kernel (its own process,
  carrying the attempt's process tag) and returns the status;
- exit status: 0, ``SystemExit`` semantics, or 1 after an uncaught exception, whose traceback goes to
  stderr and whose summary goes to ``<attempt_dir>/error.json``;
- at the end: non-daemon threads are joined, ``atexit`` handlers run, files left open are closed, and
  the process leaves with ``os._exit`` (the zygote's state is never finalised in the child).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import gc
import io
import json
import os
import signal
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn, cast

from sluice.executors import PROCESS_TAG_ENV, TAG_WIDTH, caplog
from sluice.runtime import hooks

ERROR_FILE = "error.json"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
ATTEMPT_DIR_ENV = "SLUICE_ATTEMPT_DIR"
_KEYBOARD_INTERRUPT = -int(signal.SIGINT)
#: The C base of every file object (``_io._IOBase``); cheaper to test against than the ABC ``io.IOBase``.
_IOBASE: type = io.FileIO.__mro__[-2]


class TaskSetupError(Exception):
    """The task could not start (missing file, unknown entry point ...): reported without a traceback."""


def preload() -> None:
    """Imports the zygote does once so that a failing task does not pay for them."""
    import linecache  # noqa: F401 - warmed for tracebacks in children
    import traceback  # noqa: F401 - warmed for tracebacks in children

    caplog.max_log_bytes()  # read the log cap once here: every task forked from now on inherits it


def warm_up() -> None:
    """In a spare child, before it gets a task: walk the start-up path once on throw-away objects.

    Its copy-on-write page faults (reference counts of the types and functions involved) then happen
    while the spare waits, not while a launch does.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        stream = _text_stream(null)
        stream.write("warm\n")
        stream.flush()
        del stream
    finally:
        os.close(null)
    module = types.ModuleType("__warm_up__")
    exec(compile("pass", "<warm-up>", "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - constant code
    os.path.abspath(os.path.join(os.getcwd(), "x"))
    gc.get_objects()


def warm_up_for_notebooks() -> None:
    """:func:`warm_up`, then start a kernel that waits for this spare's task (the executor runs notebooks)."""
    warm_up()
    try:
        from sluice.notebooks import runner

        runner.prestart()
    except Exception as exc:  # a task without a kernel started ahead starts its own
        _write_stderr(f"sluice: could not start a notebook kernel ahead of time: {exc!r}\n")


def _discard_prestarted_kernel() -> None:
    """A spare that started a kernel ahead of time got another kind of task: end that kernel."""
    runner = sys.modules.get("sluice.notebooks.runner")
    if runner is not None:
        runner.discard_prestarted()


def run(request: Mapping[str, Any], token: str) -> NoReturn:
    """Run one task in this (forked) process and exit with its status; never returns."""
    code = 1
    try:
        code = _run(request, token)
    except BaseException as exc:  # our own failure: say so on whatever stderr we have
        message = f"sluice: the task process failed to start the task: {exc!r}"
        _write_stderr(message + "\n")
        _write_error(os.path.abspath(str(request.get("dir", "."))), message, "")
    _exit(code)


_leader_pid = 0


def _run(request: Mapping[str, Any], token: str) -> int:
    global _leader_pid  # set once, in the task's main process, before user code runs
    _leader_pid = os.getpid()
    attempt_dir = os.path.abspath(str(request["dir"]))
    atexit._clear()  # the zygote's handlers are not the task's
    _redirect_stdio(attempt_dir)
    os.environ.update({str(k): str(v) for k, v in request.get("env", {}).items()})
    os.environ[PROCESS_TAG_ENV] = f"{token}.{str(request['id']).zfill(TAG_WIDTH)}"
    os.environ[ATTEMPT_DIR_ENV] = attempt_dir
    hooks.install()  # SparkSession.builder, databricks.sdk.runtime and pyspark.dbutils find the run's objects
    extra_path = request.get("env", {}).get("PYTHONPATH", "")
    kind = str(request["kind"])
    if kind != "notebook":
        _discard_prestarted_kernel()
    target = str(request["target"])
    argv = [str(a) for a in request.get("argv", [])]
    try:
        _chdir(str(request["cwd"]))
        if kind == "python_file":
            runner = _file_runner(target, argv, extra_path)
        elif kind == "python_wheel":
            runner = _wheel_runner(target, argv, extra_path)
        elif kind == "notebook":
            runner = _notebook_runner(target, attempt_dir, extra_path)
        elif kind == "sql":
            runner = _sql_runner(target, attempt_dir, extra_path)
        else:
            raise TaskSetupError(
                f"unknown task kind {kind!r} (expected 'python_file', 'python_wheel', 'notebook' or 'sql')"
            )
    except (TaskSetupError, OSError) as exc:
        message = str(exc) if isinstance(exc, TaskSetupError) else f"{type(exc).__name__}: {exc}"
        _write_stderr(message + "\n")
        _write_error(attempt_dir, message, "")
        return 1
    return _call_user_code(runner, attempt_dir)


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        raise TaskSetupError(f"working directory '{cwd}' does not exist") from None
    except NotADirectoryError:
        raise TaskSetupError(f"working directory '{cwd}' is not a directory") from None


def _redirect_stdio(attempt_dir: str) -> None:
    """fd 1 and 2 to the attempt's log files (stdin is already /dev/null: the zygote's is)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    for fd, name in ((1, STDOUT_FILE), (2, STDERR_FILE)):
        path = os.path.join(attempt_dir, name)
        try:
            log = os.open(path, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(attempt_dir, exist_ok=True)
            log = os.open(path, flags, 0o644)
        os.dup2(log, fd)
        os.close(log)
    sys.stdout = _text_stream(1, os.path.join(attempt_dir, STDOUT_FILE))
    sys.stderr = _text_stream(2, os.path.join(attempt_dir, STDERR_FILE))
    setattr(sys, "__stdout__", sys.stdout)  # noqa: B010 - typeshed marks it Final; code restores from it
    setattr(sys, "__stderr__", sys.stderr)  # noqa: B010 - same


def _text_stream(fd: int, log: str | None = None) -> io.TextIOWrapper:
    """Line-buffered UTF-8 text on ``fd``: one write per line, nothing lost but a half-printed line.

    ``log``: the path of the log file ``fd`` writes, which keeps its tail (:mod:`sluice.executors.caplog`).
    """
    raw = io.FileIO(fd, "w", closefd=False) if log is None else caplog.capped_stream(fd, log)
    return io.TextIOWrapper(
        io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


def _prepend_pythonpath(first: str | None, extra_path: str) -> None:
    """``sys.path[0]`` becomes the script's directory (or goes away), then ``PYTHONPATH`` entries follow.

    A forked interpreter has already read ``PYTHONPATH``; a task's own ``PYTHONPATH`` is applied here.
    """
    entries = [p for p in extra_path.split(os.pathsep) if p]
    if sys.path:
        del sys.path[0]  # the zygote's entry (its working directory)
    head = ([first] if first is not None else []) + [os.path.abspath(p) for p in entries]
    sys.path[0:0] = head


def _file_runner(target: str, argv: Sequence[str], extra_path: str) -> Callable[[], object]:
    path = os.path.abspath(target)
    try:
        with io.open_code(path) as f:
            source = f.read()
    except FileNotFoundError:
        raise TaskSetupError(f"python file '{target}' does not exist (looked at {path})") from None
    except IsADirectoryError:
        raise TaskSetupError(f"python file '{target}' is a directory, not a Python file") from None
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=path,
        __cached__=None,
        __builtins__=builtins,
        __loader__=SourceFileLoader("__main__", path),
        __package__=None,
        __spec__=None,
    )
    sys.modules["__main__"] = main
    _prepend_pythonpath(os.path.dirname(path), extra_path)
    sys.argv = [path, *argv]

    def run_file() -> object:
        code = compile(source, path, "exec", dont_inherit=True)  # a SyntaxError is the task's error
        exec(code, main.__dict__)  # noqa: S102 - running the user's script is this module's job
        return None

    return run_file


def _wheel_runner(target: str, argv: Sequence[str], extra_path: str) -> Callable[[], object]:
    package, _, entry_point = target.partition(":")
    if not package or not entry_point:
        raise TaskSetupError(f"python wheel target {target!r} must be 'package_name:entry_point'")
    _prepend_pythonpath(None, extra_path)
    sys.argv = [package, *argv]
    main = types.ModuleType("__main__")  # as under a console script: not the zygote's module
    # A console script's __main__ has a __file__ (bin/<entry point>); PySpark's Connect client, among
    # others, treats a __main__ with neither __spec__ nor __file__ as a doctest run and exits.
    script = os.path.join(os.path.dirname(sys.executable), entry_point)
    main.__dict__.update(__builtins__=builtins, __spec__=None, __package__=None, __file__=script)
    sys.modules["__main__"] = main

    def run_entry_point() -> object:
        return _find_entry_point(package, entry_point)()  # importing the package is the task's code

    return run_entry_point


def _path_runner(
    what: str, target: str, extra_path: str, run: Callable[[str], object]
) -> Callable[[], object]:
    """A task that runs the file ``target`` through ``run`` (notebooks, SQL files), its folder on the path."""
    path = os.path.abspath(target)
    if not os.path.isfile(path):
        raise TaskSetupError(f"{what} '{target}' does not exist (looked at {path})")
    _prepend_pythonpath(os.path.dirname(path), extra_path)
    sys.argv = [path]
    return lambda: run(path)


def _notebook_runner(target: str, attempt_dir: str, extra_path: str) -> Callable[[], object]:
    """A notebook task: :func:`sluice.notebooks.runner.run` runs it in a Jupyter kernel, returns a status."""

    def run_notebook(path: str) -> object:
        from sluice.notebooks import runner

        try:
            return runner.run(path, attempt_dir)
        except runner.NotebookSetupError as exc:
            raise TaskSetupError(str(exc)) from None

    return _path_runner("notebook", target, extra_path, run_notebook)


def _sql_runner(target: str, attempt_dir: str, extra_path: str) -> Callable[[], object]:
    """A SQL task: :func:`sluice.sqltask.run` runs the file's statements through ``spark``."""

    def run_sql(path: str) -> object:
        from sluice import sqltask

        try:
            return sqltask.run(path, attempt_dir)
        except sqltask.SqlTaskError as exc:
            raise TaskSetupError(str(exc)) from None

    return _path_runner("SQL file", target, extra_path, run_sql)


def _find_entry_point(package: str, name: str) -> Callable[[], object]:
    """The ``name`` entry point of distribution ``package`` (console_scripts first), else ``package.name``."""
    import importlib
    import importlib.metadata as metadata

    try:
        found = [ep for ep in metadata.distribution(package).entry_points if ep.name == name]
    except metadata.PackageNotFoundError:
        found = []
    if found:
        found.sort(key=lambda ep: ep.group != "console_scripts")
        loaded: Callable[[], object] = found[0].load()
        return loaded
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise TaskSetupError(
            f"python wheel task: package '{package}' is not installed: no distribution and no module "
            f"'{module_name}' on sys.path (install the wheel into the task's environment)"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise TaskSetupError(
            f"python wheel task: package '{package}' has no entry point '{name}': not among the "
            f"distribution's entry points, and module '{module_name}' has no function '{name}'"
        )
    return function  # type: ignore[no-any-return]  # getattr of a module is Any; callable() checked it


def _call_user_code(runner: Callable[[], object], attempt_dir: str) -> int:
    try:
        result = runner()
    except TaskSetupError as exc:
        _write_stderr(f"{exc}\n")
        _write_error(attempt_dir, str(exc), "")
        return 1
    except SystemExit as exc:
        return _system_exit_code(exc.code)
    except KeyboardInterrupt as exc:
        _report_exception(exc, attempt_dir)
        return _KEYBOARD_INTERRUPT
    except BaseException as exc:
        _report_exception(exc, attempt_dir)
        return 1
    # A wheel entry point's int result is its exit status (console-script semantics); anything else is 0.
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _system_exit_code(code: object) -> int:
    """``sys.exit`` semantics: None -> 0, int -> itself (mod 256 by the OS), anything else -> printed, 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    _write_stderr(f"{code}\n")
    return 1


def _report_exception(exc: BaseException, attempt_dir: str) -> None:
    import traceback

    tb = exc.__traceback__
    here = __file__
    while tb is not None and tb.tb_frame.f_code.co_filename == here:
        tb = tb.tb_next  # drop our own frames: the trace starts in the user's code, as with `python x.py`
    trace = "".join(traceback.format_exception(type(exc), exc, tb))
    _write_stderr(trace)
    if os.getpid() == _leader_pid:  # a process the task forked, ending the same way, only prints
        _write_error(attempt_dir, _summary(exc), trace)


def _summary(exc: BaseException) -> str:
    """``ValueError: boom`` (module-qualified outside builtins and __main__, like Python's last line)."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        name = f"{cls.__module__}.{name}"
    text = str(exc)
    return f"{name}: {text}" if text else name


def _write_error(attempt_dir: str, error: str, trace: str) -> None:
    redaction = sys.modules.get("sluice.runtime.redact")  # loaded once the task read a secret
    if redaction is not None:  # the error becomes the run's state_message and get-output's error
        error, trace = redaction.redact(error), redaction.redact(trace)
    try:
        with open(os.path.join(attempt_dir, ERROR_FILE), "w", encoding="utf-8") as f:
            json.dump({"error": error, "error_trace": trace}, f)
    except OSError as exc:
        _write_stderr(f"sluice: could not write {ERROR_FILE}: {exc}\n")


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        os.write(2, text.encode("utf-8", "backslashreplace"))


def _exit(code: int) -> NoReturn:
    """Finish like an interpreter would (threads, atexit, flush), then leave without finalising."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # private, as the interpreter's own exit uses it: joins non-daemon threads
        atexit._run_exitfuncs()
        _release_redacted_streams()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        caplog.finish()
        _close_open_files()
    except BaseException as exc:  # an exit path must exit
        _write_stderr(f"sluice: error while the task process was exiting: {exc!r}\n")
    if code == _KEYBOARD_INTERRUPT:  # die by SIGINT, as Python does after an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)


def _release_redacted_streams() -> None:
    """Text the stream redactor held back (a possible start of a secret) is written now, redacted."""
    redaction = sys.modules.get("sluice.runtime.redact")  # loaded once the task read a secret
    if redaction is not None:
        redaction.finish()
        redaction.drain_fds()


def _close_open_files() -> None:
    """Close the file objects the task left open, outer layers first, as interpreter shutdown would.

    Only objects created after fork are visited (the zygote froze its own), so this is cheap. Closing
    flushes buffers and finishes formats that write a trailer on close (gzip, zip ...).
    """
    keep = {id(sys.stdout), id(sys.stderr), id(sys.stdin)}
    files = [
        cast(io.IOBase, obj) for obj in gc.get_objects() if isinstance(obj, _IOBASE) and id(obj) not in keep
    ]
    for layer in (io.TextIOBase, io.BufferedIOBase, _IOBASE):
        for obj in files:
            if isinstance(obj, layer):
                # A file that cannot be closed at exit is the task's problem, not a reason not to exit.
                with contextlib.suppress(Exception):
                    obj.close()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
