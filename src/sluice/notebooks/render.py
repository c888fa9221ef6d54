"""``notebook.html``: the HTML rendering of an attempt's executed notebook, made when first asked for.

A notebook task writes ``notebook.ipynb`` (its cells with their stored outputs) into its attempt directory;
rendering it with nbconvert costs ~1 s the first time in a process (imports, templates), so the task does
not do it (ADR 0005). ``sluice runs export`` and the server's ``runs/export`` call :func:`ensure_html`,
which renders once and keeps ``notebook.html`` next to the notebook for the next export. Rendering shows
stored outputs; it runs no code of the notebook.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import Any

NOTEBOOK_FILE = "notebook.ipynb"
HTML_FILE = "notebook.html"

_lock = threading.Lock()
_exporter: Any = None


def ensure_html(attempt_dir: str | os.PathLike[str]) -> Path | None:
    """``<attempt_dir>/notebook.html``, rendered from ``notebook.ipynb`` unless already up to date.

    None when the attempt has no executed notebook. Written atomically (a concurrent reader sees the old
    file or the new one); a failed rendering raises (the notebook file stays as it is).
    """
    folder = Path(attempt_dir)
    source, html = folder / NOTEBOOK_FILE, folder / HTML_FILE
    try:
        source_mtime = source.stat().st_mtime_ns
    except OSError:
        return html if html.is_file() else None
    try:
        if html.stat().st_mtime_ns >= source_mtime:
            return html
    except OSError:
        pass
    text = render(source)
    tmp = html.with_name(f".{HTML_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, html)
    return html


def render(notebook_file: Path) -> str:
    """nbconvert's HTML (JupyterLab template) of the notebook file, outputs as stored."""
    global _exporter
    nbformat: Any = importlib.import_module("nbformat")
    nb = nbformat.read(str(notebook_file), as_version=4)
    with _lock:  # one exporter per process (its first use compiles templates); not thread-safe
        if _exporter is None:
            nbconvert: Any = importlib.import_module("nbconvert")
            _exporter = nbconvert.HTMLExporter(template_name="lab")
        body, _ = _exporter.from_notebook_node(nb)
    return str(body)
