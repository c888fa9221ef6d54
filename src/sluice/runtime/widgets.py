"""``dbutils.widgets``: a notebook's named string inputs, with the values a job passes in.

Every value is a string. In a job (a task process with a context) the task's ``parameters`` (job
parameters pushed down, ``base_parameters``, ``notebook_params``: the engine merges them) are the values:
they win over a widget's default, also when the widget is created after, and a parameter with no widget
is still readable with :meth:`Widgets.get`. Job-passed values are immutable for the run. Outside a job a
widget's value is its default (what ``databricks-sdk``'s local ``dbutils`` does), and
:meth:`Widgets.set_value` is the hook an interactive front end (ipywidgets) uses to change it.

Creating a widget that already exists keeps its current value (Databricks: creation only sets the value
when the widget is new); ``remove`` then create gives the new default.

Errors follow Databricks: reading or removing an undefined widget raises :class:`InputWidgetNotDefined`,
whose message starts ``No input widget named <name> is defined`` (user code matches on that text).
Only the standard library is imported here, and only when used.
"""

from __future__ import annotations

import sys

from sluice.runtime.context import current_context

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

TEXT = "text"
DROPDOWN = "dropdown"
COMBOBOX = "combobox"
MULTISELECT = "multiselect"


_HELP = """dbutils.widgets: input widgets; in a job, the job's and task's parameters are their values.

combobox(name, defaultValue, choices, label=None) -> a text input with suggested choices
dropdown(name, defaultValue, choices, label=None) -> one of choices (defaultValue must be one)
get(name): str -> the widget's current value (or the job parameter of that name)
getAll(): dict -> every current value
getArgument(name, defaultValue=None) -> deprecated: get, with a default instead of an error
multiselect(name, defaultValue, choices, label=None) -> some of choices, comma-joined
remove(name), removeAll() -> remove widgets
text(name, defaultValue, label=None) -> a free-text input
"""


class WidgetError(Exception):
    """Base of the errors ``dbutils.widgets`` raises."""


class InputWidgetNotDefined(WidgetError, LookupError):
    """``get``/``remove`` of a name that is neither a widget nor a value passed by the job."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"No input widget named {name} is defined; create it first, e.g. "
            f"dbutils.widgets.text({name!r}, '<default>'), or pass '{name}' as a job or task parameter"
        )


class InvalidWidgetDefinition(WidgetError, ValueError):
    """A widget definition that cannot be created (a default outside a dropdown's choices ...)."""


class Widget:
    """One widget's definition (not its value): immutable."""

    __slots__ = ("choices", "default", "kind", "label", "name")

    def __init__(
        self, name: str, kind: str, default: str, choices: tuple[str, ...], label: str | None
    ) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.choices = choices
        self.label = label

    def __setattr__(self, key: str, value: object) -> None:
        if hasattr(self, key):
            raise AttributeError(f"Widget.{key} is read-only")
        object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        extra = f", choices={list(self.choices)!r}" if self.kind != TEXT else ""
        return f"Widget({self.kind} {self.name!r}, default={self.default!r}{extra})"

    def outside_choices(self, value: str) -> list[str]:
        """The parts of ``value`` a dropdown or multiselect does not offer (``[]`` for text and combobox)."""
        if self.kind == DROPDOWN:
            return [] if value in self.choices else [value]
        if self.kind == MULTISELECT:
            return [part for part in _split(value) if part not in self.choices]
        return []


class Widgets:
    """``dbutils.widgets`` for one process (Databricks' camelCase names on purpose).

    ``parameters`` are the job-passed values; None (the default) reads them from the task context on first
    use (none outside a job). Subclasses (interactive front ends) override :meth:`_created` or call
    :meth:`set_value`.
    """

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        self._passed: dict[str, str] | None = None if parameters is None else _as_text_map(parameters)
        self._widgets: dict[str, Widget] = {}
        self._values: dict[str, str] = {}
        self._warned_get_argument = False
        #: Front-end hooks (``%load_ext sluice`` sets them to show ipywidgets): called with the new
        #: :class:`Widget` after each creation, and with the name after each removal.
        self.on_created: Callable[[Widget], None] | None = None
        self.on_removed: Callable[[str], None] | None = None

    # -- creation -------------------------------------------------------------------------------------

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        """A free-text widget."""
        self._create(name, TEXT, defaultValue, (), label)

    def dropdown(
        self, name: str, defaultValue: str, choices: Iterable[str], label: str | None = None
    ) -> None:
        """A widget whose value is one of ``choices``; ``defaultValue`` must be one of them."""
        self._create(name, DROPDOWN, defaultValue, _choices(name, choices), label)

    def combobox(
        self, name: str, defaultValue: str, choices: Iterable[str], label: str | None = None
    ) -> None:
        """A widget offering ``choices`` that also accepts any text."""
        self._create(name, COMBOBOX, defaultValue, _choices(name, choices), label)

    def multiselect(
        self, name: str, defaultValue: str, choices: Iterable[str], label: str | None = None
    ) -> None:
        """A widget whose value is some of ``choices``, comma-joined; ``defaultValue`` must be among them."""
        self._create(name, MULTISELECT, defaultValue, _choices(name, choices), label)

    # -- reading --------------------------------------------------------------------------------------

    def get(self, name: str) -> str:
        """The current value of widget ``name`` (the job-passed value when there is one)."""
        passed = self.passed
        if name in passed:
            return passed[name]
        try:
            return self._values[name]
        except KeyError:
            raise InputWidgetNotDefined(name) from None

    def getAll(self) -> dict[str, str]:
        """Every current value: the widgets', then the job-passed ones (which win)."""
        return {**self._values, **self.passed}

    def getArgument(self, name: str, defaultValue: str | None = None) -> str | None:
        """Deprecated: :meth:`get`, but ``defaultValue`` instead of an error for an undefined name."""
        if not self._warned_get_argument:
            self._warned_get_argument = True
            import warnings

            warnings.warn(
                "dbutils.widgets.getArgument is deprecated: use dbutils.widgets.get (and create the widget "
                "with a default) instead",
                DeprecationWarning,
                stacklevel=2,
            )
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return defaultValue

    # -- removal --------------------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        """Remove widget ``name``; a job-passed value stays readable (job parameters are immutable)."""
        if name not in self._widgets and name not in self.passed:
            raise InputWidgetNotDefined(name)
        if self._widgets.pop(name, None) is not None:
            self._removed(name)
        self._values.pop(name, None)

    def removeAll(self) -> None:
        """Remove every widget (job-passed values stay readable)."""
        names = list(self._widgets)
        self._widgets.clear()
        self._values.clear()
        for name in names:
            self._removed(name)

    def help(self, method: str | None = None) -> None:
        """Print what ``dbutils.widgets`` offers."""
        print(_HELP)

    # -- hooks for front ends and the runtime ---------------------------------------------------------

    @property
    def passed(self) -> Mapping[str, str]:
        """The values the job passed in (``{}`` outside a job), read from the task context once."""
        if self._passed is None:
            context = current_context()
            self._passed = {} if context is None else _as_text_map(context.parameters)
        return self._passed

    def widget(self, name: str) -> Widget | None:
        """The definition of widget ``name``, or None."""
        return self._widgets.get(name)

    def set_value(self, name: str, value: str) -> None:
        """Set a defined widget's value, as a user editing it interactively would (not a job value).

        A dropdown or multiselect takes only its choices (a UI offers nothing else): ValueError otherwise.
        """
        widget = self._widgets.get(name)
        if widget is None:
            raise InputWidgetNotDefined(name)
        text = _text(name, "value", value)
        outside = widget.outside_choices(text)
        if outside:
            raise ValueError(
                f"{widget.kind} widget '{name}' has no choice {_listing(outside)} "
                f"(its choices: {_listing(widget.choices)})"
            )
        self._values[name] = text

    def _created(self, widget: Widget) -> None:
        """Called after a widget is created or re-created: calls :attr:`on_created` (a front end's hook)."""
        if self.on_created is not None:
            self.on_created(widget)

    def _removed(self, name: str) -> None:
        """Called after a widget is removed: calls :attr:`on_removed`."""
        if self.on_removed is not None:
            self.on_removed(name)

    # -- internals ------------------------------------------------------------------------------------

    def _create(
        self, name: object, kind: str, default: object, choices: tuple[str, ...], label: object
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"widget name must be a non-empty string, not {name!r}")
        text = _text(name, "defaultValue", default)
        if label is not None and not isinstance(label, str):
            raise TypeError(f"widget '{name}': label must be a string or None, not {label!r}")
        widget = Widget(name, kind, text, choices, label)
        if widget.outside_choices(text):
            raise InvalidWidgetDefinition(
                f"Default value '{text}' of {kind} widget '{name}' is not among its choices "
                f"({_listing(choices)}); pass one of them as defaultValue"
            )
        passed = self.passed.get(name)
        if passed is not None:
            _warn_outside_choices(widget, passed)
        self._widgets[name] = widget
        self._values.setdefault(name, text)  # an existing widget keeps its value, as on Databricks
        self._created(widget)


def _warn_outside_choices(widget: Widget, value: str) -> None:
    """A job may pass any string; a value a dropdown does not offer is used, with a line in the task log."""
    outside = widget.outside_choices(value)
    if outside:
        sys.stderr.write(
            f"sluice: warning: {widget.kind} widget '{widget.name}' got value '{value}' from the job, "
            f"but {_listing(outside)} is not among its choices ({_listing(widget.choices)}); "
            f"using it as passed\n"
        )


def _text(name: str, what: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bytes, dict, list, tuple, set)):
        raise TypeError(f"widget '{name}': {what} must be a string, not {value!r}")
    return str(value)  # numbers and the like: widget values are text


def _choices(name: str, choices: Iterable[str]) -> tuple[str, ...]:
    if isinstance(choices, str):
        raise TypeError(f"widget '{name}': choices must be a list of strings, not the string {choices!r}")
    return tuple(_text(name, "each choice", c) for c in choices)


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part] if value else []


def _listing(items: Iterable[str]) -> str:
    return ", ".join(f"'{i}'" for i in items) or "none"


def _as_text_map(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Job parameters as widget values: strings as they are, anything else as JSON text."""
    import json

    return {
        str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in parameters.items()
    }


#: ``dbutils.widgets`` of this process.
widgets = Widgets()


def getArgument(name: str, defaultValue: str | None = None) -> str | None:
    """The notebook global ``getArgument(name, default)``: ``dbutils.widgets.getArgument`` (deprecated there
    too): the widget's or job-passed value, else ``defaultValue``."""
    return widgets.getArgument(name, defaultValue)
