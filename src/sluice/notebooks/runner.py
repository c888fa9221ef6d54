"""A notebook task inside its task process: the notebook runs in a real Jupyter kernel through nbclient.

``sluice.executors.taskmain`` calls :func:`run` for ``TaskKind.NOTEBOOK`` (docs/protocol.md). Steps:

1. parse the notebook (Databricks source format or ``.ipynb``) and check its ``%run`` cells;
2. start the kernel (:mod:`sluice.notebooks.kernel`, with ``sys.executable``) at once, and import the
   client side while it boots (both cores work; ADR 0005);
3. run the code cells in order; markdown cells are not run. Every output goes into the notebook, and its
   text (stdout, stderr, tracebacks) into the attempt's ``stdout.log`` / ``stderr.log`` as it arrives;
4. stop at the first error (exit status 1, ``error.json`` = ``{"error": "ValueError: boom", "error_trace":
   ...}``), at ``dbutils.notebook.exit`` (status 0: the task succeeds; the value is already in
   ``notebook_exit.json``), or when the kernel dies (status 1, "the kernel died ... signal/exit code");
5. always (also on failure and on SIGTERM from a timeout or a cancel): kill the kernel (every output is
   in by then) and write ``notebook.ipynb`` (executed, the failing cell tagged ``sluice-failed``) into the
   attempt directory. Its HTML rendering, ``notebook.html``, is made when first asked for
   (:mod:`sluice.notebooks.render`), not on the task's time.

A spare task process of the zygote starts a kernel ahead of time (:func:`prestart`) once the executor has
run notebook tasks or was told they are coming (``LocalExecutor.expect_notebooks``); :func:`run` then
hands that kernel its attempt instead of starting one (ADR 0005).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.notebooks import kernel as kernel_module
from sluice.notebooks import magics
from sluice.notebooks.source import Cell, CellKind, Notebook, check_run_cells, read_notebook, to_ipynb
from sluice.runtime.context import write_json_atomic

if TYPE_CHECKING:
    from nbclient import NotebookClient
    from nbformat import NotebookNode

NOTEBOOK_FILE = "notebook.ipynb"
ERROR_FILE = "error.json"
#: Tag of the cell that failed, in ``notebook.ipynb`` (nbconvert's HTML gives it the class ``celltag_...``).
FAILED_TAG = "sluice-failed"
#: Seconds a kernel may take to answer its first request before the task fails.
KERNEL_START_TIMEOUT = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class NotebookSetupError(Exception):
    """The notebook cannot start (unreadable file, misplaced ``%run`` ...): reported without a traceback."""


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


def cell_label(cell: Cell) -> str:
    """How messages name a cell: ``cell 3`` or ``cell 3 ('Load data')`` (1-based, as Databricks shows)."""
    return f"cell {cell.index + 1}" + (f" ({cell.title!r})" if cell.title else "")


def code_to_send(cell: Cell, language: str) -> str:
    """What the kernel receives for a code cell: default cells of a SQL notebook become ``%sql`` cells."""
    from sluice.notebooks.source import cell_text

    text = cell_text(cell)
    if cell.magic is None and language != "python":
        return f"%{language}\n{text}"
    return text


def run(path: str, attempt_dir: str) -> int:
    """Run the notebook at ``path``; return the task's exit status (0 also after ``notebook.exit``)."""
    kernel = _take_prestarted(path, attempt_dir)
    if kernel is None:  # none waiting (the first notebook task of this executor): start one now
        tmp = tempfile.mkdtemp(prefix="sluice-kernel-")
        connection_file = _write_connection_file(tmp)
        process = _launch_kernel(path, connection_file, os.path.join(tmp, "cells.json"))  # boots meanwhile
        kernel = _Kernel(process, tmp, connection_file)
    try:
        notebook = read_notebook(Path(path))
        check_run_cells(notebook.cells)
    except Exception as exc:  # NotebookSourceError: the file's own problem, said plainly
        kernel.discard()
        raise NotebookSetupError(f"notebook {path}: {exc}") from None
    labels = [
        cell_label(c)
        for c in notebook.cells
        if c.kind is not CellKind.MARKDOWN and code_to_send(c, notebook.language).strip()
    ]
    write_json_atomic(os.path.join(kernel.tmp, "cells.json"), labels)
    execution = _Execution(notebook, Path(attempt_dir), kernel.tmp, kernel.process, kernel.connection_file)
    code = asyncio.run(execution.main())
    if execution.terminated_by is not None:  # timeout or cancel: die by that signal, as a killed task does
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(execution.terminated_by, signal.SIG_DFL)
        os.kill(os.getpid(), execution.terminated_by)
    return code


class _Kernel:
    """A kernel process of this task process, with its private folder (connection file, sockets)."""

    def __init__(self, process: subprocess.Popen[bytes], tmp: str, connection_file: str) -> None:
        self.process = process
        self.tmp = tmp
        self.connection_file = connection_file

    def discard(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


#: The kernel this (spare) task process started ahead of its task, waiting for it (:func:`prestart`).
_prestarted: _Kernel | None = None


def preload() -> None:
    """Import the client side (and warm nbformat's validator) in the zygote, for its next task processes.

    Importing creates no ZeroMQ context or event loop: nothing here must cross a fork.
    """
    for name in ("jupyter_client.asynchronous.client", "nbclient", "nbclient.exceptions", "nbformat"):
        importlib.import_module(name)
    nbformat: Any = importlib.import_module("nbformat")
    nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    global _tee_class
    if _tee_class is None:
        _tee_class = _make_tee_client()


def _kernel_env(path: str, labels_file: str) -> dict[str, str]:
    env = dict(os.environ)
    env[magics.NOTEBOOK_PATH_ENV] = os.path.abspath(path)
    env[magics.CELL_LABELS_ENV] = labels_file
    env["JPY_PARENT_PID"] = str(os.getpid())  # ipykernel: exit if this process goes away
    return env


def _launch_kernel(path: str, connection_file: str, labels_file: str) -> subprocess.Popen[bytes]:
    """Start the kernel process now. It is our child, in the attempt's process group: killing the
    attempt kills it too."""
    env = _kernel_env(path, labels_file)
    return subprocess.Popen(_kernel_argv(connection_file), env=env, cwd=os.getcwd(), stdin=subprocess.DEVNULL)


def prestart() -> None:
    """In a spare task process, before it has a task: start a kernel that initialises and then waits.

    Called by the zygote's spares once the executor ran or expects notebooks (ADR 0005). The kernel is this
    process's child in its process group, like a kernel started by the task: should the spare get another
    kind of task, :func:`discard_prestarted` ends it; should the spare be killed, its group goes with it.
    """
    global _prestarted
    if _prestarted is not None:
        return
    tmp = tempfile.mkdtemp(prefix="sluice-kernel-")
    connection_file = _write_connection_file(tmp)
    env = dict(os.environ)
    env["JPY_PARENT_PID"] = str(os.getpid())
    process = subprocess.Popen(
        [*_kernel_argv(connection_file), kernel_module.WAIT_FLAG],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _prestarted = _Kernel(process, tmp, connection_file)
    if _tee_class is None:  # forked before the zygote imported the client side: import it as the kernel boots
        preload()


def discard_prestarted() -> None:
    """The spare got a task that is not a notebook: end the kernel it started ahead of time."""
    global _prestarted
    kernel, _prestarted = _prestarted, None
    if kernel is not None:
        kernel.discard()


def _take_prestarted(path: str, attempt_dir: str) -> _Kernel | None:
    """The kernel started ahead of time, given this attempt (environment, working directory, logs)."""
    global _prestarted
    kernel, _prestarted = _prestarted, None
    if kernel is None:
        return None
    env = _kernel_env(path, os.path.join(kernel.tmp, "cells.json"))
    message = {"env": env, "cwd": os.getcwd(), "attempt_dir": attempt_dir}
    stdin = kernel.process.stdin
    try:
        if stdin is None or kernel.process.poll() is not None:
            raise OSError("the kernel started ahead of time is gone")
        with stdin:
            stdin.write(json.dumps(message).encode())
    except OSError:
        kernel.discard()
        return None
    return kernel


class _Execution:
    """One run of one notebook: its kernel, its cells, its outcome and its output files."""

    def __init__(
        self,
        notebook: Notebook,
        attempt_dir: Path,
        tmp: str,
        process: subprocess.Popen[bytes],
        connection_file: str,
    ) -> None:
        self.notebook = notebook
        self.attempt_dir = attempt_dir
        self.cells = [c for c in notebook.cells if c.kind is not CellKind.MARKDOWN]
        self.terminated_by: int | None = None
        self.nb: NotebookNode | None = None
        self.process: subprocess.Popen[bytes] | None = process
        self.connection_file: str | None = connection_file
        self.client: NotebookClient | None = None
        self.tmp = tmp
        self._main_task: asyncio.Task[Any] | None = None

    # -- the whole run --------------------------------------------------------------------------------

    async def main(self) -> int:
        self._main_task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        code = 1
        try:
            await self._start_kernel()
            code = await self._run_cells()
        except asyncio.CancelledError:
            _write_stderr(f"sluice: notebook stopped by signal {self.terminated_by}\n")
        except NotebookKernelError as exc:
            self._fail(str(exc), "")
        finally:
            await self._stop_kernel()
            self._write_outputs()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    def _on_signal(self, signum: int) -> None:
        if self.terminated_by is None:
            self.terminated_by = signum
            if self._main_task is not None:
                self._main_task.cancel()

    # -- the kernel -----------------------------------------------------------------------------------

    async def _start_kernel(self) -> None:
        assert self.process is not None
        assert self.connection_file is not None
        connection_file = self.connection_file
        # While the kernel boots, the client side is imported and the notebook built (the other core).
        nbformat: Any = importlib.import_module("nbformat")
        self.nb = nbformat.from_dict(to_ipynb(self.notebook))
        kc = _make_kernel_client(connection_file, self.process)
        self.client = _TeeClient(self.nb, timeout=None, startup_timeout=KERNEL_START_TIMEOUT)
        self.client.kc = kc
        kc.start_channels()
        try:
            await _wait_for_ready(kc, KERNEL_START_TIMEOUT)
        except RuntimeError as exc:
            raise NotebookKernelError(f"the notebook's kernel did not start: {exc}{self._death()}") from None
        kc.allow_stdin = False

    def _death(self) -> str:
        """``: it was killed by signal SIGKILL`` or ``: it exited with code 3`` once the kernel is gone."""
        process = self.process
        code = process.poll() if process is not None else None
        if code is None:
            return ""
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (it may have run out of memory)" if -code == signal.SIGKILL else ""
            return f": it was killed by signal {name}{hint}"
        return f": it exited with code {code}"

    async def _stop_kernel(self) -> None:
        """Kill the kernel: every output is in already (nbclient waits for each cell's outputs to end), and
        a polite shutdown would cost ~0.1-0.3 s per task (ADR 0005)."""
        process, client = self.process, self.client
        if process is None:
            return
        try:
            if process.poll() is None:
                process.kill()
        finally:
            if client is not None and client.kc is not None:
                client.kc.stop_channels()
            process.wait()

    # -- cells ----------------------------------------------------------------------------------------

    async def _run_cells(self) -> int:
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        assert self.nb is not None
        assert self.client is not None
        for index, (cell, node) in enumerate(zip(self.notebook.cells, self.nb.cells, strict=True)):
            if cell.kind is CellKind.MARKDOWN:
                continue
            original = node.source
            node.source = code_to_send(cell, self.notebook.language)
            try:
                await self.client.async_execute_cell(node, index)
            except CellExecutionError as exc:
                if exc.ename == "NotebookExit":
                    _mark(node, "exited")
                    return 0
                _mark(node, "failed")
                self._fail(f"{exc.ename}: {exc.evalue}", _error_trace(node))
                return 1
            except DeadKernelError:
                if self.terminated_by is not None:
                    raise asyncio.CancelledError from None
                _mark(node, "failed")
                message = f"The notebook's kernel died while running {cell_label(cell)}{self._death()}."
                _write_stderr(message + "\n")
                self._fail(message, "")
                return 1
            finally:
                node.source = original
        return 0

    # -- outputs --------------------------------------------------------------------------------------

    def _fail(self, error: str, trace: str) -> None:
        try:
            write_json_atomic(self.attempt_dir / ERROR_FILE, {"error": error, "error_trace": trace})
        except OSError as exc:
            _write_stderr(f"sluice: could not write {ERROR_FILE}: {exc}\n")

    def _write_outputs(self) -> None:
        if self.nb is None:
            return
        nbformat: Any = importlib.import_module("nbformat")
        path = self.attempt_dir / NOTEBOOK_FILE
        tmp = path.with_name(path.name + ".tmp")
        try:
            nbformat.write(self.nb, str(tmp))
            os.replace(tmp, path)  # notebook.html is rendered from it when asked for (render.py)
        except Exception as exc:  # outputs are a record; their failure must not change the task's result
            _write_stderr(f"sluice: could not write the executed notebook: {exc!r}\n")


class NotebookKernelError(Exception):
    """The kernel could not start."""


def _mark(node: NotebookNode, status: str) -> None:
    node.metadata.setdefault("sluice", {})["status"] = status
    if status == "failed":
        tags = list(node.metadata.get("tags", []))
        node.metadata["tags"] = [*tags, FAILED_TAG]


def _error_trace(node: NotebookNode) -> str:
    for output in reversed(node.get("outputs", [])):
        if output.get("output_type") == "error":
            return strip_ansi("\n".join(output.get("traceback", [])))
    return ""


def _write_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------ nbclient side


def _make_tee_client() -> type:
    from nbclient import NotebookClient

    class TeeClient(NotebookClient):
        """nbclient's client that also copies each text output to the task's stdout/stderr as it comes."""

        def output(
            self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int
        ) -> Any:
            _tee(msg)
            return super().output(outs, msg, display_id, cell_index)

    return TeeClient


def _TeeClient(nb: NotebookNode, **kwargs: Any) -> NotebookClient:
    global _tee_class
    if _tee_class is None:
        _tee_class = _make_tee_client()
    client: NotebookClient = _tee_class(nb, **kwargs)
    return client


_tee_class: type | None = None


def _tee(msg: dict[str, Any]) -> None:
    kind, content = msg.get("msg_type"), msg.get("content", {})
    if kind == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(content.get("text", ""))
        stream.flush()
    elif kind == "error":
        _write_stderr(strip_ansi("\n".join(content.get("traceback", []))) + "\n")


async def _wait_for_ready(kc: Any, timeout: float) -> None:
    """Until the kernel answers ``kernel_info`` on its shell channel *and* we see its iopub messages.

    jupyter_client's ``wait_for_ready`` then waits for 0.2 s of iopub silence on every start; seeing the
    request's own ``idle`` status proves the subscription is live (no output of the first cell is lost),
    without the wait. A request sent while the kernel still boots is answered once it listens (ZeroMQ queues
    it), but its ``idle`` status may be published before our subscription reaches the kernel: then the
    status is gone for good, so after the shell reply we give iopub only :data:`_IDLE_WAIT` before asking
    again, twice as long on each retry (up to :data:`_LIVENESS_CHECK`: a loaded machine may be slow to deliver
    a status that is coming). Replies to repeated requests are ignored later (nbclient matches message ids).
    """
    from queue import Empty

    deadline = time.monotonic() + timeout
    idle_wait = _IDLE_WAIT
    while True:
        msg_id = kc.kernel_info()
        if await _reply_and_idle(kc, msg_id, deadline, idle_wait):
            return
        idle_wait = min(2 * idle_wait, _LIVENESS_CHECK)
        if not await kc.is_alive():
            raise RuntimeError("the kernel died before it answered")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"no answer in {timeout:.0f} s")
        with contextlib.suppress(Empty):
            while True:  # late replies of the attempt that timed out
                await kc.get_shell_msg(timeout=0)


#: How long iopub first gets to show a request's ``idle`` status once its shell reply is in, before asking
#: again (doubled on each retry).
_IDLE_WAIT = 0.05
#: How long to wait for a shell reply before checking that the kernel process still lives.
_LIVENESS_CHECK = 1.0


async def _reply_and_idle(kc: Any, msg_id: str, deadline: float, idle_wait: float) -> bool:
    """The shell reply to ``msg_id`` (waiting up to :data:`_LIVENESS_CHECK`), then its iopub ``idle``
    status (waiting up to ``idle_wait``): True when both came."""
    from queue import Empty

    steps = ((True, kc.get_shell_msg, _LIVENESS_CHECK), (False, kc.get_iopub_msg, idle_wait))
    for shell, get, wait in steps:
        end = min(deadline, time.monotonic() + wait)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = await get(timeout=left)
            except Empty:
                return False
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if shell or msg["content"].get("execution_state") == "idle":
                break
    return True


def _kernel_argv(connection_file: str) -> list[str]:
    """The kernel's command: this interpreter (never a ``python`` found on PATH), Sluice's kernel module."""
    return [sys.executable, "-m", "sluice.notebooks.kernel", "-f", connection_file]


def _write_connection_file(folder: str) -> str:
    """A Jupyter connection file for a kernel on Unix sockets in ``folder`` (no TCP port, no port race)."""
    path = os.path.join(folder, "kernel.json")
    info = {
        "transport": "ipc",
        "ip": os.path.join(folder, "k"),
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "sluice",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    return path


def _make_kernel_client(connection_file: str, process: subprocess.Popen[bytes]) -> Any:
    """jupyter_client's async client, told whether the kernel lives by its process (death seen at once)."""
    from jupyter_client.asynchronous.client import AsyncKernelClient

    class ProcessKernelClient(AsyncKernelClient):
        async def _async_is_alive(self) -> bool:
            return process.poll() is None

        is_alive = _async_is_alive

    client = ProcessKernelClient(connection_file=connection_file)
    client.load_connection_file()
    return client
