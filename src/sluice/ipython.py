"""``%load_ext sluice``: develop in Jupyter the notebook a job will run.

Loading the extension (``load_ipython_extension``, called by IPython) puts ``dbutils`` (the same object as
``from sluice.runtime import dbutils``), ``display``, ``displayHTML`` and ``spark`` (a Spark Connect session
made on first use: ``SPARK_REMOTE``, else a Sail server of the kernel's own, with the store's catalog;
see :mod:`sluice.runtime.spark`) and ``getArgument`` in the user namespace, installs the import hooks that
make ``SparkSession.builder``, ``databricks.sdk.runtime`` and ``pyspark.dbutils`` return these objects
(:mod:`sluice.runtime.hooks`), redacts
secret values in the kernel's output (:func:`sluice.runtime.redact.install_in_ipython`), and shows every
widget ``dbutils.widgets`` creates: as an ipywidget when ``ipywidgets`` is installed (editing it changes what
``dbutils.widgets.get`` returns), else as a line of text. Outside a job ``dbutils.jobs.taskValues.get``
returns its ``debugValue``, as on Databricks' local ``dbutils``.

:func:`control` returns the ipywidget showing a widget (for tests and for code that wants to lay widgets
out itself).
"""

from __future__ import annotations

from typing import Any

from sluice.runtime.widgets import COMBOBOX, DROPDOWN, MULTISELECT, Widget, Widgets

_controls: dict[str, Any] = {}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split(",") if part)


def _show(value: Any, *, raw: bool = False) -> None:
    from IPython import display

    show: Any = display.display  # untyped in IPython
    show(value, raw=raw)


def _make_control(widget: Widget, value: str) -> Any:
    import ipywidgets  # type: ignore[import-untyped]  # optional, untyped

    description = widget.label or widget.name
    common: dict[str, Any] = {"description": description, "style": {"description_width": "initial"}}
    if widget.kind == DROPDOWN:
        options = list(widget.choices) if value in widget.choices else [*widget.choices, value]
        return ipywidgets.Dropdown(options=options, value=value, **common)
    if widget.kind == COMBOBOX:
        return ipywidgets.Combobox(options=list(widget.choices), value=value, ensure_option=False, **common)
    if widget.kind == MULTISELECT:
        chosen = tuple(v for v in _split(value) if v in widget.choices)
        return ipywidgets.SelectMultiple(options=list(widget.choices), value=chosen, **common)
    return ipywidgets.Text(value=value, **common)


class _Renderer:
    """Shows widgets of one :class:`Widgets` and writes edits back through ``set_value``."""

    def __init__(self, widgets: Widgets) -> None:
        self.widgets = widgets
        try:
            import ipywidgets  # noqa: F401 - only whether it is installed
        except ImportError:
            self.rich = False
        else:
            self.rich = True

    def created(self, widget: Widget) -> None:
        value = self.widgets.get(widget.name)
        if not self.rich:
            choices = f" (choices: {', '.join(widget.choices)})" if widget.choices else ""
            _show({"text/plain": f"widget {widget.name} [{widget.kind}] = {value!r}{choices}"}, raw=True)
            return
        self.removed(widget.name)
        control = _make_control(widget, value)
        name = widget.name

        def on_change(change: dict[str, Any]) -> None:
            new = change["new"]
            text = ",".join(new) if isinstance(new, (tuple, list)) else str(new)
            if self.widgets.widget(name) is not None:
                self.widgets.set_value(name, text)

        control.observe(on_change, names="value")
        _controls[name] = control
        _show(control)

    def removed(self, name: str) -> None:
        control = _controls.pop(name, None)
        if control is not None:
            control.close()


def control(name: str) -> Any:
    """The ipywidget showing widget ``name`` (KeyError when there is none)."""
    try:
        return _controls[name]
    except KeyError:
        raise KeyError(f"no ipywidget shows widget '{name}' (is ipywidgets installed?)") from None


def load(ipython: Any) -> None:
    """Set up ``ipython`` (a running IPython shell): see the module docstring."""
    from sluice.runtime import dbutils, hooks, redact
    from sluice.runtime.display import display, displayHTML
    from sluice.runtime.spark import spark
    from sluice.runtime.widgets import getArgument

    hooks.install()
    widgets = dbutils.widgets
    renderer = _Renderer(widgets)
    widgets.on_created = renderer.created
    widgets.on_removed = renderer.removed
    redact.install_in_ipython(ipython)
    names = {"dbutils": dbutils, "display": display, "displayHTML": displayHTML, "spark": spark}
    ipython.push({**names, "getArgument": getArgument})


def unload(ipython: Any) -> None:
    """``%unload_ext sluice``: stop showing widgets (the names stay defined)."""
    from sluice.runtime import dbutils

    widgets = dbutils.widgets
    widgets.on_created = None
    widgets.on_removed = None
    for name in list(_controls):
        _controls.pop(name).close()
