"""Secret redaction: a secret value a task prints shows as ``[REDACTED]`` (Databricks does the same).

API (all process-wide, thread-safe):

- :func:`register` ``(value)``: redact ``value`` from now on. ``dbutils.secrets.get``/``getBytes`` call it
  for every value they return, and the first registration installs the right hook by itself: in an
  IPython kernel :func:`install_in_ipython`, anywhere else :func:`install_streams`.
- :func:`redact` ``(text) -> str``: ``text`` with every registered value replaced by :data:`REPLACEMENT`
  (longest values first; also their ``repr`` and JSON-escaped forms, so a secret inside a printed dict or
  JSON document is caught too).
- :func:`install_streams` ``()``: wrap ``sys.stdout`` and ``sys.stderr`` of this process (and the logging
  handlers already writing to them) so every Python-level write is redacted. In a task process fd 1 and 2
  are the attempt's ``stdout.log``/``stderr.log``, so the logs are redacted.
- :func:`install_in_ipython` ``(shell)``: redact what an IPython kernel sends to its front end: stream
  output (``print``, and output of subprocesses the kernel forwards), ``display_data``/``execute_result``
  text and JSON representations (``text/plain``, ``text/html``, ...; images are left alone), and error
  tracebacks (``error`` and ``execute_reply``). It hooks the kernel's session (the one place every such
  message goes through), so the executed notebook, its HTML rendering and the logs built from them are
  redacted. Without a kernel (terminal IPython) it installs the stream wrappers. The notebook kernel's
  set-up calls ``install_in_ipython(get_ipython())``; ``%load_ext sluice`` does too.

This is best-effort literal matching, as on Databricks: printing a secret one character at a time, or
transformed (reversed, base64 ...), or writing bytes to ``sys.stdout.buffer`` or straight to fd 1, is not
caught. Empty and whitespace-only values are never registered (they would redact everything).
Only the standard library is imported: task processes import this module.
"""

from __future__ import annotations

import json
import re
import sys
import threading

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO

REPLACEMENT = "[REDACTED]"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_streams_installed = False
_hooked_sessions: set[int] = set()
_ipython_installed = False

#: Kernel messages whose content can show a value to the user.
_DISPLAY_TYPES = frozenset({"display_data", "update_display_data", "execute_result"})


def _forms(value: str) -> set[str]:
    """``value`` and how it looks inside a printed ``repr`` or a JSON string."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {f for f in forms if f.strip()}


def register(value: str | bytes) -> None:
    """Redact ``value`` (bytes: its UTF-8 text, if it is text) from all output of this process from now on."""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return  # not text: it cannot appear in text output as such
    if not isinstance(value, str) or not value.strip():
        return
    global _pattern  # process-wide registry: every output path of the process consults it
    with _lock:
        new = _forms(value) - _values
        if not new:
            return
        _values.update(new)
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
    _auto_install()


def registered() -> int:
    """How many literal forms are redacted (for tests and diagnostics; never the values)."""
    return len(_values)


def redact(text: str) -> str:
    """``text`` with every registered value replaced by ``[REDACTED]``."""
    pattern = _pattern
    if pattern is None or not isinstance(text, str):
        return text
    return pattern.sub(REPLACEMENT, text)


# -- plain processes: sys.stdout / sys.stderr ----------------------------------------------------------


class RedactingStream:
    """A text stream that redacts what is written to it, then passes it on; everything else is delegated."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return f"<RedactingStream of {self._stream!r}>"


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


def install_in_ipython(shell: Any) -> None:
    """Redact what ``shell`` (``get_ipython()``) shows: see the module docstring. Idempotent."""
    global _ipython_installed  # once per process (per session object)
    kernel = getattr(shell, "kernel", None)
    if kernel is None:  # terminal IPython: output goes through sys.stdout
        install_streams()
        return
    with _lock:
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
