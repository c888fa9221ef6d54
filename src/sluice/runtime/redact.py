"""Secret redaction: a secret value a task prints shows as ``[REDACTED]`` (Databricks does the same).

API (all process-wide, thread-safe):

- :func:`register` ``(value)``: redact ``value`` from now on. ``dbutils.secrets.get``/``getBytes`` call it
  for every value they return, and the first registration installs the right hook by itself: in an
  IPython kernel :func:`install_in_ipython`, anywhere else :func:`install_streams`.
- :func:`redact` ``(text) -> str``: ``text`` with every registered value replaced by :data:`REPLACEMENT`
  (longest values first; also their ``repr``, JSON-escaped, HTML-escaped and printed-bytes forms, and the
  value stripped of surrounding whitespace). Idempotent. :func:`redact_value` does the same inside a
  JSON-like value (task values).
- :class:`StreamRedactor`: redaction of text written in pieces: a possible start of a secret at the end
  of a piece is held back until the next piece tells (or the stream ends).
- :func:`install_streams` ``()``: wrap ``sys.stdout`` and ``sys.stderr`` of this process (and the logging
  handlers already writing to them) so every Python-level write is redacted, pieces included; in a task's
  main process also fd 1 and 2 (:func:`install_fd_redaction`: pipes a thread redacts into the attempt's
  ``stdout.log``/``stderr.log``). :func:`finish` and :func:`drain_fds` end them at exit.
- :func:`install_in_ipython` ``(shell)``: redact what an IPython kernel sends to its front end: stream
  output (``print``, and output of subprocesses the kernel forwards), ``display_data``/``execute_result``
  text and JSON representations (``text/plain``, ``text/html``, ...; images are left alone), and error
  tracebacks (``error`` and ``execute_reply``). It hooks the kernel's session (the one place every such
  message goes through), so the executed notebook, its HTML rendering and the logs built from them are
  redacted; and the kernel's streams (pieces held back until the cell ends) and ipykernel's raw copy of
  fd output to the logs. Without a kernel (terminal IPython) it installs the stream wrappers. The first
  ``dbutils.secrets`` call in a kernel installs it; ``%load_ext sluice`` does too.

This is literal matching, as on Databricks: a transformed secret (reversed, base64, one character per
line ...) is not caught. Every value with a non-blank character is redacted, however short; empty and
whitespace-only values are never registered (they would redact every blank).
Only the standard library is imported: task processes import this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import weakref

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO

REPLACEMENT = "[REDACTED]"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
#: Snapshot for the stream redactors: (the forms, longest first; their first characters; the longest length).
_prefixes: tuple[tuple[str, ...], frozenset[str], int] = ((), frozenset(), 0)
_streams_installed = False
_hooked_sessions: set[int] = set()
_ipython_installed = False

#: Kernel messages whose content can show a value to the user.
_DISPLAY_TYPES = frozenset({"display_data", "update_display_data", "execute_result"})


def _escaped(value: str) -> set[str]:
    """``value`` and how it looks inside a printed ``repr``, a JSON string or HTML text."""
    import html  # only once a secret is read: its entity table is not free to import

    forms = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
    }
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate has no bytes form
        forms.add(repr(value.encode("utf-8"))[2:-1])  # printed bytes (getBytes): b'...'
    return forms


def _forms(value: str) -> set[str]:
    """Every literal form of ``value`` that is redacted (see :func:`register`)."""
    forms = _escaped(value)
    stripped = value.strip()
    if stripped != value:  # a value put from a file often ends with a newline that code strips
        forms |= _escaped(stripped)
    return {f for f in forms if f.strip()}


def register(value: str | bytes) -> None:
    """Redact ``value`` (bytes: its UTF-8 text, if it is text) from all output of this process from now on.

    Any value with a non-blank character counts, however short: a one-character secret replaces that
    character everywhere (Databricks redacts every value too). Also redacted: the value without leading and
    trailing whitespace, and its ``repr``, JSON, HTML-escaped and printed-bytes forms.
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return  # not text: it cannot appear in text output as such
    if not isinstance(value, str) or not value.strip():
        return
    global _pattern, _prefixes  # process-wide registry: every output path of the process consults it
    with _lock:
        new = _forms(value) - _values
        if not new:
            return
        _values.update(new)
        ordered = sorted(_values, key=len, reverse=True)
        # The replacement is an alternative too (at its length's place), so redacting twice changes nothing.
        alternatives = sorted([*ordered, REPLACEMENT], key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))
        # A stream also holds back a possible start of the replacement: text redacted in one process and cut
        # by a pipe on its way through another is not redacted a second time (a one-character secret).
        held = sorted([*ordered, REPLACEMENT], key=len, reverse=True)
        _prefixes = (tuple(held), frozenset(v[0] for v in held), len(held[0]))
    _auto_install()


def registered() -> int:
    """How many literal forms are redacted (for tests and diagnostics; never the values)."""
    return len(_values)


def redact(text: str) -> str:
    """``text`` with every registered value replaced by ``[REDACTED]`` (idempotent)."""
    pattern = _pattern
    if pattern is None or not isinstance(text, str):
        return text
    return pattern.sub(REPLACEMENT, text)


def redact_value(value: Any) -> Any:
    """A JSON-like value with every string (keys too) redacted; a number whose text holds a secret becomes
    the redacted text. Used for what a task hands on: task values and the like."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        text = json.dumps(value)
        shown = redact(text)
        return value if shown == text else shown
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    return value


def _held_back(text: str, start: int) -> int:
    """The first index ``>= start`` from which ``text`` could still become a secret with more text (its tail
    is a proper prefix of a form), else ``len(text)``."""
    forms, firsts, longest = _prefixes
    end = len(text)
    for i in range(max(start, end - longest + 1), end):
        if text[i] not in firsts:
            continue
        tail = text[i:]
        for form in forms:
            if len(form) > len(tail) and form.startswith(tail):
                return i
    return end


def _split(text: str) -> tuple[str, str]:
    """``text`` cut into what can be shown now (redacted) and what must wait for the next write."""
    pattern = _pattern
    if pattern is None:
        return text, ""
    out: list[str] = []
    pos = 0
    while True:
        hold = _held_back(text, pos)
        found = pattern.search(text, pos)
        if found is None or found.start() >= hold:
            out.append(text[pos:hold])
            return "".join(out), text[hold:]
        # A whole form that starts before any possible partial one: no longer form can start there.
        out.append(text[pos : found.start()])
        out.append(REPLACEMENT)
        pos = found.end()


class StreamRedactor:
    """Redaction of a stream written in pieces: a secret split across writes is still caught.

    :meth:`feed` returns what may be shown now; text that could be the start of a secret is held back
    until the next piece tells, or until :meth:`close` (end of the stream, of a notebook cell, of the
    process) shows it as it is then (redacted).
    """

    def __init__(self) -> None:
        self._pending = ""
        self._lock = threading.RLock()  # reentrant: a signal handler may print during a write
        _redactors.add(self)

    def feed(self, text: str) -> str:
        with self._lock:
            shown, self._pending = _split(self._pending + text)
            return shown

    def close(self) -> str:
        with self._lock:
            rest, self._pending = self._pending, ""
        return redact(rest)

    @property
    def pending(self) -> bool:
        return bool(self._pending)


_redactors: weakref.WeakSet[StreamRedactor] = weakref.WeakSet()


def _reset_locks_in_child() -> None:
    """A fork may happen while another thread writes: the child gets fresh locks, not a held one."""
    for redactor in list(_redactors):
        redactor._lock = threading.RLock()


os.register_at_fork(after_in_child=_reset_locks_in_child)


# -- plain processes: sys.stdout / sys.stderr ----------------------------------------------------------


class RedactingStream:
    """A text stream that redacts what is written to it, then passes it on; everything else is delegated.

    A possible start of a secret at the end of a write is held back until the next write (a secret written
    in pieces is still caught); :func:`finish` (process exit) or :meth:`close` writes what is held.
    ``flush`` does not: ``print(c, end="", flush=True)`` one character at a time must not give a secret away.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._redactor = StreamRedactor()

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        shown = self._redactor.feed(text)
        if shown:
            self._stream.write(shown)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def release(self) -> None:
        """Write what is held back (redacted) and flush."""
        rest = self._redactor.close()
        if rest:
            self._stream.write(rest)
        self._stream.flush()

    def close(self) -> None:
        self.release()
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return f"<RedactingStream of {self._stream!r}>"


def finish() -> None:
    """At the end of the process: every redacting stream writes what it holds back. Idempotent."""
    streams = [getattr(sys, name, None) for name in ("stdout", "stderr", "__stdout__", "__stderr__")]
    for stream in {id(s): s for s in streams if isinstance(s, RedactingStream)}.values():
        with contextlib.suppress(OSError, ValueError):
            stream.release()


def install_streams() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` (and logging handlers on them): writes are redacted. Idempotent."""
    global _streams_installed  # once per process
    with _lock:
        if _streams_installed:
            return
        _streams_installed = True
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, RedactingStream):
            continue
        wrapper = RedactingStream(stream)
        setattr(sys, name, wrapper)
        if getattr(sys, f"__{name}__", None) is stream:
            setattr(sys, f"__{name}__", wrapper)  # code that restores sys.stdout from sys.__stdout__
        _rewire_logging(stream, wrapper)
    import atexit

    atexit.register(finish)
    if _task_main_process():
        install_fd_redaction()


def _rewire_logging(old: object, new: RedactingStream) -> None:
    """Point logging handlers created before the install (``logging.basicConfig`` ...) at the wrapper."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    loggers: list[Any] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


# -- file descriptors 1 and 2 of a task process ------------------------------------------------------


class _Pump:
    """Copies what comes through the pipe ``read_end`` to ``target``, redacted (bytes that are not UTF-8 pass
    through unchanged), in a thread of its own, until every writer has closed the pipe.

    :meth:`drain` tells when everything written to the pipe so far is in ``target``: it writes a marker
    into the pipe (after all earlier writes, pipes being FIFO) and waits until the thread has copied up to
    it; the marker itself is dropped.
    """

    def __init__(self, read_end: int, target: int, name: str) -> None:
        self.read_end = read_end
        self.target = target
        self.marker: bytes | None = None  # set by drain()
        self.drained = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        redactor = StreamRedactor()
        carry = b""
        while True:
            try:
                data = os.read(self.read_end, 65536)
            except OSError:
                data = b""
            end = not data
            chunk, carry = (carry, b"") if end else self._take_marker(carry + data)
            text = redactor.feed(decoder.decode(chunk, final=end))
            if end:
                text += redactor.close()
            if text:
                _write_all(self.target, text.encode("utf-8", "surrogateescape"))
            if end:
                with contextlib.suppress(OSError):
                    os.close(self.read_end)
                return

    def _take_marker(self, data: bytes) -> tuple[bytes, bytes]:
        """``data`` without the marker (finding it sets :attr:`drained`), and a tail that may start one."""
        marker = self.marker
        if marker is None:
            return data, b""
        found = data.find(marker)
        if found >= 0:
            self.drained.set()
            return data[:found] + data[found + len(marker) :], b""
        for size in range(min(len(marker) - 1, len(data)), 0, -1):
            if marker.startswith(data[-size:]):
                return data[:-size], data[-size:]
        return data, b""

    def drain(self, fd: int, timeout: float) -> None:
        """Wait until what was written to ``fd`` (this pipe's write end) so far is in the log. Only in the
        process whose thread reads the pipe (a forked child has the object, not the thread)."""
        import time

        if not self.thread.is_alive():
            return
        self.marker = marker = b"\0sluice-drained-" + os.urandom(8).hex().encode() + b"\0"
        _write_all(fd, marker)
        deadline = time.monotonic() + timeout
        while not self.drained.wait(0.05) and self.thread.is_alive() and time.monotonic() < deadline:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError:
            return  # the log is gone (disk full ...): the task goes on, as with a direct write


_fd_pumps: list[tuple[int, _Pump]] = []
#: How long a task process waits at exit for its fd 1/2 output to be in the logs (the pump works meanwhile;
#: only a log that cannot be written makes it wait this long).
DRAIN_SECONDS = 30.0
#: Then how long it waits for children that still hold the pipes to close them.
LINGER_SECONDS = 0.2


def _task_main_process() -> bool:
    """Whether this is the main process of a task (``sluice.executors.taskmain`` runs it)."""
    taskmain = sys.modules.get("sluice.executors.taskmain")
    return taskmain is not None and getattr(taskmain, "_leader_pid", 0) == os.getpid()


def install_fd_redaction() -> None:
    """In a task's main process: fd 1 and 2 (the attempt's ``stdout.log``/``stderr.log``) become pipes that a
    thread of this process reads, redacts and writes on to the logs. So what bypasses ``sys.stdout`` is
    redacted too: ``sys.stdout.buffer``, ``os.write(1, ...)``, C extensions, and subprocesses started from
    now on (they inherit the pipes). :func:`drain_fds` ends it at exit. Idempotent."""
    if _fd_pumps:
        return
    for fd in (1, 2):
        try:
            target = os.dup(fd)
            read_end, write_end = os.pipe()
        except OSError:
            continue
        os.set_inheritable(target, False)
        os.dup2(write_end, fd)  # inheritable: children write into the pipe too
        os.close(write_end)
        _fd_pumps.append((fd, _Pump(read_end, target, f"sluice-redact-fd{fd}")))


def drain_fds() -> None:
    """At the end of a task's main process: wait until everything this process wrote to fd 1/2 is in the
    logs, then close its ends of the pipes (children still holding them get :data:`LINGER_SECONDS`)."""
    import time

    if not _fd_pumps:
        return
    finish()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    for fd, pump in _fd_pumps:
        pump.drain(fd, DRAIN_SECONDS)
    null = os.open(os.devnull, os.O_WRONLY)
    for fd, _ in _fd_pumps:
        os.dup2(null, fd)
    os.close(null)
    deadline = time.monotonic() + LINGER_SECONDS
    for _, pump in _fd_pumps:
        pump.thread.join(max(0.0, deadline - time.monotonic()))
    _fd_pumps.clear()


# -- IPython kernels -----------------------------------------------------------------------------------


def _redact_data(data: Any) -> Any:
    """A mime bundle: text and JSON representations redacted, binary ones (base64 images) untouched."""
    if not isinstance(data, dict):
        return data
    out = {}
    for mime, value in data.items():
        textual = isinstance(mime, str) and (mime.startswith("text/") or "json" in mime)
        out[mime] = _redact_deep(value) if textual else value
    return out


def _redact_deep(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_deep(v) for k, v in value.items()}
    return value


def redact_message_content(msg_type: str, content: Any) -> Any:
    """The content of a Jupyter message as it may be shown: a redacted copy (the same object if unchanged)."""
    if _pattern is None or not isinstance(content, dict):
        return content
    if msg_type == "stream":
        return {**content, "text": redact(content.get("text", ""))}
    if msg_type in _DISPLAY_TYPES:
        return {**content, "data": _redact_data(content.get("data"))}
    if msg_type == "error" or (msg_type == "execute_reply" and content.get("status") == "error"):
        changed = {k: _redact_deep(content[k]) for k in ("ename", "evalue", "traceback") if k in content}
        return {**content, **changed}
    if msg_type in ("comm_open", "comm_msg"):  # widget state: nbclient keeps it in the notebook's metadata
        return {**content, "data": _redact_deep(content.get("data"))}
    return content


def _hook_session(session: Any) -> None:
    if session is None or id(session) in _hooked_sessions:
        return
    _hooked_sessions.add(id(session))
    original = session.send

    def send(stream: Any, msg_or_type: Any, content: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(msg_or_type, dict):  # a message built beforehand: its content is inside it
            msg_type = msg_or_type.get("header", {}).get("msg_type") or msg_or_type.get("msg_type", "")
            msg_or_type = {
                **msg_or_type,
                "content": redact_message_content(msg_type, msg_or_type.get("content")),
            }
        elif isinstance(msg_or_type, str):
            content = redact_message_content(msg_or_type, content)
        return original(stream, msg_or_type, content, *args, **kwargs)

    session.send = send


def _hook_kernel_stream(stream: Any) -> None:
    """An ipykernel ``OutStream`` (the kernel's ``sys.stdout``/``sys.stderr``): its ``write`` holds back a
    possible start of a secret, as :class:`RedactingStream` does; what the kernel forwards from fd 1 and 2
    (subprocesses, C code) passes through ``write`` too. IPython sets ``write`` anew around every cell (it
    records output for its history), so the wrapper is put back at the start of each cell
    (:func:`_wrap_kernel_streams`); the stream keeps one redactor."""
    if stream is None or not hasattr(stream, "session"):
        return
    if getattr(stream, "_sluice_redactor", None) is None:
        stream._sluice_redactor = StreamRedactor()
        _redact_echo(stream)
    if getattr(stream.write, "_sluice_release", None) is not None:
        return
    redactor: StreamRedactor = stream._sluice_redactor
    original = stream.write

    def write(text: str) -> int | None:
        if not isinstance(text, str):
            return original(text)  # OutStream raises its own TypeError
        shown = redactor.feed(text)
        if shown:
            original(shown)
        return len(text)

    def release() -> None:
        rest = redactor.close()
        if rest:
            original(rest)

    write._sluice_release = release  # type: ignore[attr-defined]  # found on the stream's write
    stream.write = write


def _wrap_kernel_streams(*_: Any) -> None:
    """Start of a cell (``pre_run_cell``): the kernel's streams redact, holding back across writes."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a cell must run even if its output cannot be wrapped
            _hook_kernel_stream(stream)


def _redact_echo(stream: Any) -> None:
    """ipykernel copies what reaches fd 1/2 (subprocess output ...) as raw bytes to the stream's
    ``_original_stdstream_copy``, which is the attempt's log (and what ``fileno()`` answers): put a redacting
    pipe in between."""
    target = getattr(stream, "_original_stdstream_copy", None)
    if not isinstance(target, int):
        return

    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)
    stream._original_stdstream_copy = write_end
    _Pump(read_end, target, "sluice-redact-echo")


def release_kernel_streams() -> None:
    """End of a cell: the kernel's streams show what they held back (the cell's output is complete)."""
    for stream in (sys.stdout, sys.stderr):
        release = getattr(getattr(stream, "write", None), "_sluice_release", None)
        if release is not None:
            with contextlib.suppress(Exception):  # output of a cell must not fail the next one
                release()


def install_in_ipython(shell: Any) -> None:
    """Redact what ``shell`` (``get_ipython()``) shows: see the module docstring. Idempotent."""
    global _ipython_installed  # once per process (per session object)
    kernel = getattr(shell, "kernel", None)
    if kernel is None:  # terminal IPython: output goes through sys.stdout
        install_streams()
        return
    with _lock:
        first = not _ipython_installed
        _ipython_installed = True
        sessions = [
            getattr(kernel, "session", None),
            getattr(getattr(shell, "display_pub", None), "session", None),
            getattr(getattr(shell, "displayhook", None), "session", None),
            getattr(sys.stdout, "session", None),
            getattr(sys.stderr, "session", None),
        ]
        for session in sessions:
            _hook_session(session)
    _wrap_kernel_streams()
    if first:
        events = getattr(shell, "events", None)
        if events is not None:
            events.register("pre_run_cell", _wrap_kernel_streams)
            events.register("post_execute", release_kernel_streams)


def _kernel_shell() -> Any:
    """The running IPython kernel's shell, or None (only looks: never imports IPython)."""
    if "ipykernel" not in sys.modules:
        return None
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


def _auto_install() -> None:
    if _ipython_installed:
        return
    shell = _kernel_shell()
    if shell is not None:
        install_in_ipython(shell)
    else:
        install_streams()
