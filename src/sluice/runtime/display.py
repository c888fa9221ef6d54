"""``display(x)``: Databricks' notebook display, for Sluice notebooks and scripts.

- A Spark DataFrame (anything with ``limit`` and ``toPandas``, PySpark Connect included: PySpark is never
  imported here) or a pandas DataFrame (anything with ``to_html`` and ``head``) shows as an HTML table of
  its first :data:`MAX_ROWS` rows (Databricks' notebook result limit is 10,000 rows), with a text/plain
  rendering next to it for front ends and logs that show text. Only that many rows are fetched.
- Anything else goes to IPython's ``display`` in a kernel (HTML objects, figures, widgets ...).
- Outside IPython (a ``spark_python_task``) the text rendering is printed to stdout.

IPython is imported only when it is already loaded (a kernel is running), so importing this module, and
calling it in a plain task process, needs nothing but the standard library (and pandas for DataFrames).
"""

from __future__ import annotations

import html
import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from typing import Any

#: Rows shown of a DataFrame (Databricks' notebook results show the first 10,000 rows).
MAX_ROWS = 10_000


def _is_spark_dataframe(value: object) -> bool:
    return callable(getattr(value, "limit", None)) and callable(getattr(value, "toPandas", None))


def _is_pandas_dataframe(value: object) -> bool:
    return (
        callable(getattr(value, "to_html", None))
        and callable(getattr(value, "head", None))
        and hasattr(value, "columns")
    )


def table_bundle(frame: Any, *, limit: int = MAX_ROWS) -> dict[str, str]:
    """``{"text/html": ..., "text/plain": ...}`` of a Spark or pandas DataFrame's first ``limit`` rows."""
    if _is_spark_dataframe(frame):
        frame = frame.limit(limit + 1).toPandas()
    if not _is_pandas_dataframe(frame):
        raise TypeError(f"not a DataFrame: {type(frame).__name__}")
    truncated = len(frame) > limit
    shown = frame.head(limit)
    table = shown.to_html(index=False, border=0, classes="sluice-table", max_rows=None, max_cols=None)
    plain = shown.to_string(index=False, max_rows=None, max_cols=None)
    rows = f"{len(shown):,} row{'s' if len(shown) != 1 else ''}"
    note = f"Showing the first {limit:,} rows." if truncated else rows
    footer = f'<p class="sluice-note">{html.escape(note)}</p>'
    return {
        "text/html": f'<div class="sluice-display">{table}{footer}</div>',
        "text/plain": f"{plain}\n{note}",
    }


def _ipython_display() -> Any:
    """IPython's ``display`` when an IPython shell is running in this process, else None."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None or get() is None:
        return None
    from IPython.display import display as ipython_display

    return ipython_display


def display(value: Any, *args: Any, limit: int = MAX_ROWS, **kwargs: Any) -> None:
    """Show ``value``: DataFrames as tables, anything else through IPython (or ``print`` without it)."""
    show = _ipython_display()
    if _is_spark_dataframe(value) or _is_pandas_dataframe(value):
        bundle = table_bundle(value, limit=limit)
        if show is not None:
            show(bundle, raw=True)
        else:
            print(bundle["text/plain"])
        return
    if show is not None:
        show(value, *args, **kwargs)
    else:
        print(value, *args)


def displayHTML(content: str) -> None:
    """Databricks' ``displayHTML``: render ``content`` as HTML (printed as text outside a kernel)."""
    show = _ipython_display()
    if show is not None:
        show({"text/html": content, "text/plain": content}, raw=True)
    else:
        print(content)
