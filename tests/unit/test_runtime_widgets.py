"""dbutils.widgets in and outside a job (in-process; the context comes from the environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from sluice.runtime import dbutils
from sluice.runtime.context import CONTEXT_ENV, CONTEXT_JSON_ENV, write_context
from sluice.runtime.widgets import (
    InputWidgetNotDefined,
    InvalidWidgetDefinition,
    Widget,
    WidgetError,
    Widgets,
)


@pytest.fixture
def outside_job(monkeypatch: pytest.MonkeyPatch) -> Widgets:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.delenv(CONTEXT_JSON_ENV, raising=False)
    return Widgets()


def job_context(tmp_path: Path, parameters: dict[str, Any]) -> Path:
    path = tmp_path / "attempt" / "context.json"
    write_context(
        path, {"job_id": 1, "job_run_id": 2, "task_key": "nb", "task_run_id": 3, "parameters": parameters}
    )
    return path


@pytest.fixture
def in_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Widgets:
    """Widgets of a task whose job passed layer=silver (a dropdown choice) and env=prod (no widget)."""
    path = job_context(tmp_path, {"layer": "silver", "env": "prod", "limit": 10, "flag": True})
    monkeypatch.delenv(CONTEXT_JSON_ENV, raising=False)
    monkeypatch.setenv(CONTEXT_ENV, str(path))
    return Widgets()


# -- outside a job: values are the defaults -----------------------------------------------------------


def test_every_kind_of_widget_reads_its_default(outside_job: Widgets) -> None:
    w = outside_job
    w.text("source_path", "workspace.silver.ecommerce_cleaned", "Source")
    w.dropdown("layer", "bronze", ["bronze", "silver", "gold"])
    w.combobox("country", "BR", ["BR", "CA"], label="Country")
    w.multiselect("columns", "id", ["id", "country", "name"])
    assert w.get("source_path") == "workspace.silver.ecommerce_cleaned"
    assert w.get("layer") == "bronze"
    assert w.get("country") == "BR"
    assert w.get("columns") == "id"
    assert w.getAll() == {
        "source_path": "workspace.silver.ecommerce_cleaned",
        "layer": "bronze",
        "country": "BR",
        "columns": "id",
    }
    assert w.widget("layer") is not None
    layer = w.widget("layer")
    assert layer is not None
    assert (layer.kind, layer.default, layer.choices, layer.label) == (
        "dropdown",
        "bronze",
        ("bronze", "silver", "gold"),
        None,
    )
    assert w.widget("nope") is None


def test_keyword_arguments_use_databricks_names(outside_job: Widgets) -> None:
    outside_job.text(name="a", defaultValue="1", label="A")
    outside_job.dropdown(name="b", defaultValue="x", choices=["x", "y"], label="B")
    outside_job.combobox(name="c", defaultValue="free text", choices=["x"], label="C")
    outside_job.multiselect(name="d", defaultValue="y", choices=["x", "y"], label="D")
    assert outside_job.getAll() == {"a": "1", "b": "x", "c": "free text", "d": "y"}


def test_get_of_an_undefined_widget_raises_input_widget_not_defined(outside_job: Widgets) -> None:
    with pytest.raises(InputWidgetNotDefined) as info:
        outside_job.get("debug")
    assert str(info.value).startswith("No input widget named debug is defined")  # Databricks' text
    assert "dbutils.widgets.text('debug'" in str(info.value)  # and the fix
    assert info.value.name == "debug"
    assert isinstance(info.value, WidgetError)
    assert isinstance(info.value, LookupError)
    assert type(info.value).__name__ == "InputWidgetNotDefined"


def test_remove_and_remove_all(outside_job: Widgets) -> None:
    w = outside_job
    w.text("a", "1")
    w.text("b", "2")
    w.remove("a")
    with pytest.raises(InputWidgetNotDefined, match="No input widget named a is defined"):
        w.get("a")
    with pytest.raises(InputWidgetNotDefined, match="No input widget named a is defined"):
        w.remove("a")  # removing twice is an error, as on Databricks
    assert w.getAll() == {"b": "2"}
    w.removeAll()
    assert w.getAll() == {}
    assert w.widget("b") is None
    w.removeAll()  # nothing to remove is fine


def test_recreating_a_widget_keeps_its_value_until_it_is_removed(outside_job: Widgets) -> None:
    w = outside_job
    w.text("root", "potato")
    w.text("root", "yam")
    assert w.get("root") == "potato"  # Databricks: creation only sets the value of a new widget
    w.remove("root")
    w.text("root", "yam")
    assert w.get("root") == "yam"


def test_dropdown_default_must_be_a_choice(outside_job: Widgets) -> None:
    with pytest.raises(InvalidWidgetDefinition) as info:
        outside_job.dropdown("layer", "platinum", ["bronze", "silver", "gold"])
    assert str(info.value) == (
        "Default value 'platinum' of dropdown widget 'layer' is not among its choices "
        "('bronze', 'silver', 'gold'); pass one of them as defaultValue"
    )
    assert isinstance(info.value, ValueError)
    with pytest.raises(InputWidgetNotDefined):
        outside_job.get("layer")  # nothing was created
    with pytest.raises(InvalidWidgetDefinition, match=r"not among its choices \(none\)"):
        outside_job.dropdown("empty", "", [])


def test_multiselect_default_must_be_among_the_choices(outside_job: Widgets) -> None:
    with pytest.raises(InvalidWidgetDefinition, match="Default value 'zip' of multiselect widget 'cols'"):
        outside_job.multiselect("cols", "zip", ["id", "name"])
    outside_job.multiselect("cols", "id,name", ["id", "name"])  # the value is comma-joined
    assert outside_job.get("cols") == "id,name"
    with pytest.raises(InvalidWidgetDefinition, match="Default value 'id,zip'"):
        outside_job.multiselect("other", "id,zip", ["id", "name"])


def test_combobox_takes_any_default(outside_job: Widgets) -> None:
    outside_job.combobox("country", "NZ", ["BR", "CA"])
    assert outside_job.get("country") == "NZ"


def test_widget_arguments_are_checked(outside_job: Widgets) -> None:
    w = outside_job
    with pytest.raises(TypeError, match="widget name must be a non-empty string, not ''"):
        w.text("", "x")
    with pytest.raises(TypeError, match="widget name must be a non-empty string, not 3"):
        w.text(3, "x")  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(TypeError, match="widget 'a': defaultValue must be a string, not None"):
        w.text("a", None)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(TypeError, match="widget 'a': choices must be a list of strings, not the string 'xy'"):
        w.dropdown("a", "x", "xy")
    with pytest.raises(TypeError, match="widget 'a': label must be a string or None, not 5"):
        w.text("a", "x", 5)  # type: ignore[arg-type]  # a wrong type on purpose
    w.dropdown("n", 1, [1, 2])  # type: ignore[arg-type, list-item]  # numbers become text
    assert w.get("n") == "1"
    assert w.widget("n") is not None
    assert repr(w.widget("n")) == "Widget(dropdown 'n', default='1', choices=['1', '2'])"


def test_a_widget_definition_is_immutable() -> None:
    widget = Widget("a", "text", "x", (), None)
    with pytest.raises(AttributeError, match=r"Widget.default is read-only"):
        widget.default = "y"
    assert repr(widget) == "Widget(text 'a', default='x')"


def test_get_argument_is_deprecated_and_warns_once(outside_job: Widgets) -> None:
    outside_job.text("a", "1")
    with pytest.warns(DeprecationWarning, match=r"getArgument is deprecated: use dbutils.widgets.get"):
        assert outside_job.getArgument("a") == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        assert outside_job.getArgument("missing") is None
        assert outside_job.getArgument("missing", "fallback") == "fallback"
        assert outside_job.getArgument(name="a", defaultValue="fallback") == "1"


def test_set_value_is_the_interactive_hook(outside_job: Widgets) -> None:
    created: list[Widget] = []

    class Shown(Widgets):
        def _created(self, widget: Widget) -> None:
            created.append(widget)

    w = Shown(parameters={})
    w.text("a", "1")
    w.set_value("a", "2")
    assert w.get("a") == "2"
    w.text("a", "1")  # re-running the cell keeps what the user typed
    assert w.get("a") == "2"
    assert [x.name for x in created] == ["a", "a"]
    with pytest.raises(InputWidgetNotDefined, match="No input widget named b is defined"):
        w.set_value("b", "x")


def test_front_end_hooks_see_creations_and_removals(outside_job: Widgets) -> None:
    events: list[str] = []
    w = outside_job
    w.on_created = lambda widget: events.append(f"+{widget.name}:{widget.kind}")
    w.on_removed = lambda name: events.append(f"-{name}")
    w.text("a", "1")
    w.dropdown("b", "x", ["x", "y"])
    w.remove("a")
    w.multiselect("c", "p", ["p", "q"])
    w.removeAll()
    assert events == ["+a:text", "+b:dropdown", "-a", "+c:multiselect", "-b", "-c"]


def test_set_value_keeps_dropdowns_and_multiselects_within_their_choices(outside_job: Widgets) -> None:
    w = outside_job
    w.dropdown("layer", "bronze", ["bronze", "gold"])
    w.multiselect("cols", "id", ["id", "name", "zip"])
    w.combobox("country", "BR", ["BR", "CA"])
    w.set_value("layer", "gold")
    w.set_value("cols", "id,zip")
    w.set_value("country", "Chile")  # a combobox takes any text
    assert (w.get("layer"), w.get("cols"), w.get("country")) == ("gold", "id,zip", "Chile")
    with pytest.raises(
        ValueError, match=r"dropdown widget 'layer' has no choice 'silver' \(its choices: 'bronze', 'gold'\)"
    ):
        w.set_value("layer", "silver")
    with pytest.raises(ValueError, match=r"multiselect widget 'cols' has no choice 'nope'"):
        w.set_value("cols", "id,nope")
    assert w.get("layer") == "gold"


def test_help_lists_the_methods(outside_job: Widgets, capsys: pytest.CaptureFixture[str]) -> None:
    outside_job.help()
    out = capsys.readouterr().out
    for method in (
        "combobox(",
        "dropdown(",
        "get(",
        "getAll(",
        "getArgument(",
        "multiselect(",
        "remove(",
        "text(",
    ):
        assert method in out


# -- in a job: the job-passed values win ---------------------------------------------------------------


def test_job_values_override_defaults(in_job: Widgets) -> None:
    w = in_job
    w.text("source_path", "workspace.silver.ecommerce_cleaned")
    w.dropdown("layer", "bronze", ["bronze", "silver", "gold"])
    w.dropdown("month", "Oct", ["Oct", "Nov"])
    assert (w.get("source_path"), w.get("layer"), w.get("month")) == (
        "workspace.silver.ecommerce_cleaned",
        "silver",
        "Oct",
    )


def test_a_job_value_is_there_before_and_after_its_widget(in_job: Widgets) -> None:
    w = in_job
    assert w.get("layer") == "silver"  # no widget needed to read a passed value
    w.text("layer", "bronze")  # creation only sets the default
    assert w.get("layer") == "silver"
    w.remove("layer")
    assert w.get("layer") == "silver"  # job parameters are immutable during the run
    w.remove("env")  # a passed value counts as defined
    assert w.get("env") == "prod"


def test_job_values_are_text_and_listed_by_get_all(in_job: Widgets) -> None:
    in_job.text("mine", "x")
    assert in_job.getAll() == {"mine": "x", "layer": "silver", "env": "prod", "limit": "10", "flag": "true"}
    assert in_job.passed == {"layer": "silver", "env": "prod", "limit": "10", "flag": "true"}
    with pytest.raises(InputWidgetNotDefined, match="No input widget named other is defined"):
        in_job.get("other")


def test_set_value_does_not_override_a_job_value(in_job: Widgets) -> None:
    in_job.text("layer", "bronze")
    in_job.set_value("layer", "gold")
    assert in_job.get("layer") == "silver"


def test_a_job_value_outside_the_choices_is_used_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = job_context(tmp_path, {"layer": "platinum", "cols": "id,zip,name", "country": "NZ"})
    monkeypatch.setenv(CONTEXT_ENV, str(path))
    w = Widgets()
    w.dropdown("layer", "bronze", ["bronze", "silver", "gold"])
    w.multiselect("cols", "id", ["id", "name"])
    w.combobox("country", "BR", ["BR", "CA"])  # free text: no warning
    assert (w.get("layer"), w.get("cols"), w.get("country")) == ("platinum", "id,zip,name", "NZ")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "sluice: warning: dropdown widget 'layer' got value 'platinum' from the job, but 'platinum' is not "
        "among its choices ('bronze', 'silver', 'gold'); using it as passed",
        "sluice: warning: multiselect widget 'cols' got value 'id,zip,name' from the job, but 'zip' is not "
        "among its choices ('id', 'name'); using it as passed",
    ]


def test_explicit_parameters_skip_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONTEXT_ENV, str(job_context(tmp_path, {"a": "from context"})))
    w = Widgets(parameters={"a": "given"})
    assert w.get("a") == "given"


# -- dbutils and real processes -------------------------------------------------------------------------


def test_dbutils_has_widgets_and_notebook() -> None:
    assert isinstance(dbutils.widgets, Widgets)
    assert type(dbutils.notebook).__name__ == "NotebookUtil"
    with pytest.raises(AttributeError, match=r"available: jobs, fs, notebook, secrets, widgets"):
        _ = dbutils.nope


SEED_CELLS = """
from sluice.runtime import dbutils

# Add widgets for parameters
dbutils.widgets.text("source_path", "workspace.silver.ecommerce_cleaned")
dbutils.widgets.dropdown("layer", "bronze", ["bronze","silver","gold"])
dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])

# Use parameters
source = dbutils.widgets.get("source_path")
layer = dbutils.widgets.get("layer")
month = dbutils.widgets.get("month")

print(source)
print(layer)
print(month)
"""


def run_script(tmp_path: Path, source: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "cells.py"
    script.write_text(textwrap.dedent(source))
    clean = {k: v for k, v in os.environ.items() if k not in (CONTEXT_ENV, CONTEXT_JSON_ENV)}
    return subprocess.run(
        [sys.executable, str(script)], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_the_seed_practice_cells_in_a_job(tmp_path: Path) -> None:
    path = job_context(tmp_path, {"layer": "silver"})
    done = run_script(tmp_path, SEED_CELLS, {CONTEXT_ENV: str(path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["workspace.silver.ecommerce_cleaned", "silver", "Oct"]
    assert done.stderr == ""


def test_the_seed_practice_cells_outside_a_job(tmp_path: Path) -> None:
    done = run_script(tmp_path, SEED_CELLS, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["workspace.silver.ecommerce_cleaned", "bronze", "Oct"]


def test_importing_widgets_and_notebook_is_cheap() -> None:
    code = (
        "import sys; before = set(sys.modules); "
        "from sluice.runtime import dbutils; dbutils.widgets; dbutils.notebook; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert {"sluice.runtime.widgets", "sluice.runtime.notebook"} <= loaded
    heavy = {"typing", "dataclasses", "inspect", "sluice.errors", "subprocess"}
    assert loaded & heavy == set()
