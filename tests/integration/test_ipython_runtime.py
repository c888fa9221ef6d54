"""The runtime in a real Jupyter kernel (nbclient + ipykernel): redaction, `%load_ext sluice`, widgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from sluice.runtime.context import CONTEXT_ENV, CONTEXT_JSON_ENV
from sluice.store.secrets import KEY_ENV, SecretStore

SECRET = "tok-SECRET-42"
#: Built at run time, so the notebook's source never holds the literal value.
MAKE_SECRET = 'secret = "tok-" + "SECRET-42"'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Kernels inherit this environment: no job context, a fresh SLUICE_HOME."""
    for name in (CONTEXT_ENV, CONTEXT_JSON_ENV, "SLUICE_DATABASE_URL", KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    return home


def execute(tmp_path: Path, cells: list[str]) -> list[list[dict[str, Any]]]:
    """Run ``cells`` in a fresh python3 kernel; the outputs of each cell."""
    v4: Any = nbformat.v4  # untyped
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell(source) for source in cells]
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=90,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return [list(cell.get("outputs", [])) for cell in nb.cells]


def texts(outputs: list[dict[str, Any]]) -> str:
    """Every text a cell showed: streams, text/* representations, error fields."""
    parts: list[str] = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("display_data", "execute_result"):
            parts += [str(v) for k, v in out["data"].items() if k.startswith("text/")]
        elif out["output_type"] == "error":
            parts += [out["ename"], out["evalue"], *out["traceback"]]
    return "\n".join(parts)


def test_the_kernel_redacts_streams_displays_results_and_tracebacks(tmp_path: Path) -> None:
    outputs = execute(
        tmp_path,
        [
            "from sluice.runtime import redact\nredact.install_in_ipython(get_ipython())\n"
            f"{MAKE_SECRET}\nredact.register(secret)",
            'print("value:", secret)',
            'import sys\nsys.stderr.write("err " + secret + "\\n")',
            'from IPython.display import HTML, display\ndisplay(HTML("<b>" + secret + "</b>"))',
            "secret",
            'import subprocess\nsubprocess.run(["echo", "sub " + secret], check=True)',
            'raise ValueError("bad " + secret)',
        ],
    )
    assert SECRET not in json.dumps(outputs)
    assert "value: [REDACTED]" in texts(outputs[1])
    assert "err [REDACTED]" in texts(outputs[2])
    assert "<b>[REDACTED]</b>" in texts(outputs[3])
    assert "'[REDACTED]'" in texts(outputs[4])
    assert "sub [REDACTED]" in texts(outputs[5])
    error = outputs[6][-1]
    assert error["output_type"] == "error"
    assert error["evalue"] == "bad [REDACTED]"
    assert any("[REDACTED]" in line for line in error["traceback"])


def test_the_kernel_redacts_a_secret_written_in_pieces_and_shows_a_held_back_start_at_the_cell_end(
    tmp_path: Path,
) -> None:
    outputs = execute(
        tmp_path,
        [
            "from sluice.runtime import redact\nredact.install_in_ipython(get_ipython())\n"
            f"{MAKE_SECRET}\nredact.register(secret)",
            # two messages (the flush and the pause part them), which nbclient joins into one output
            'import sys, time\nsys.stdout.write("a:" + secret[:4]); sys.stdout.flush(); time.sleep(0.5)\n'
            'sys.stdout.write(secret[4:] + "\\n")',
            'for c in secret:\n    print(c, end="", flush=True)',
            'sys.stdout.write("b:" + secret[:4])',
            'print("c")',
        ],
    )

    def streamed(cell: list[dict[str, Any]]) -> str:
        return "".join(out["text"] for out in cell if out["output_type"] == "stream")

    assert SECRET not in json.dumps(outputs)
    assert streamed(outputs[1]) == "a:[REDACTED]\n"
    assert streamed(outputs[2]) == "[REDACTED]"
    assert streamed(outputs[3]) == "b:tok-", "a possible start of a secret is shown when its cell ends"
    assert streamed(outputs[4]) == "c\n"


def test_a_secret_read_in_a_kernel_is_redacted_without_any_set_up(tmp_path: Path, clean_env: Path) -> None:
    with SecretStore.open(None, clean_env) as store:
        store.create_scope("etl", 1)
        store.put("etl", "token", SECRET.encode(), 1)
    outputs = execute(
        tmp_path,
        [
            'from sluice.runtime import dbutils\ntoken = dbutils.secrets.get("etl", "token")\nlen(token)',
            'print("token:", token)',
        ],
    )
    assert texts(outputs[0]) == str(len(SECRET))
    assert texts(outputs[1]) == "token: [REDACTED]\n"


def test_load_ext_sluice_gives_dbutils_display_and_live_widgets(tmp_path: Path) -> None:
    outputs = execute(
        tmp_path,
        [
            "%load_ext sluice",
            'dbutils.widgets.dropdown("layer", "bronze", ["bronze", "silver", "gold"])\n'
            'dbutils.widgets.text("path", "/tmp/x", "Path")\n'
            'dbutils.widgets.multiselect("cols", "id", ["id", "name", "country"])\n'
            'dbutils.widgets.combobox("country", "BR", ["BR", "CA"])\n'
            'print(dbutils.widgets.get("layer"), dbutils.widgets.get("cols"))',
            "from sluice.ipython import control\n"
            'control("layer").value = "gold"\n'
            'control("path").value = "/data/y"\n'
            'control("cols").value = ("id", "country")\n'
            'control("country").value = "Chile"\n'
            "print(dbutils.widgets.getAll())",
            'dbutils.widgets.remove("path")\n'
            "from sluice.runtime.widgets import InputWidgetNotDefined\n"
            "try:\n"
            '    dbutils.widgets.get("path")\n'
            "except InputWidgetNotDefined as exc:\n"
            "    print(exc)",
            'print(dbutils.jobs.taskValues.get("bronze", "rows", debugValue=7))',
            'import pandas as pd\ndisplay(pd.DataFrame({"id": [1, 2], "name": ["a<b", "c"]}))',
        ],
    )
    assert outputs[0] == []
    views = [o for o in outputs[1] if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 4, outputs[1]
    assert texts(outputs[1]).strip().endswith("bronze id")
    assert texts(outputs[2]).strip() == str(
        {"layer": "gold", "path": "/data/y", "cols": "id,country", "country": "Chile"}
    )
    assert texts(outputs[3]).startswith("No input widget named path is defined")
    assert texts(outputs[4]).strip() == "7"
    table = outputs[5][0]["data"]
    assert "<table" in table["text/html"]
    assert "a&lt;b" in table["text/html"]
    assert "2 rows" in table["text/plain"]


def test_load_ext_sluice_gives_spark_on_a_server_of_its_own(tmp_path: Path) -> None:
    outputs = execute(
        tmp_path,
        [
            "%load_ext sluice",
            "print(repr(spark).startswith('<spark: a Spark Connect session, created on first use>'))",
            "import os\nos.environ.pop('SPARK_REMOTE', None)\n"
            f"os.environ['SLUICE_HOME'] = {str(tmp_path / 'home')!r}\n"
            "print(spark.sql('SELECT 40 + 2 AS answer').first()['answer'])",
        ],
    )
    assert texts(outputs[1]).strip() == "True"
    assert texts(outputs[2]).strip() == "42"


def test_load_ext_sluice_makes_databricks_imports_and_the_builder_return_its_objects(tmp_path: Path) -> None:
    outputs = execute(
        tmp_path,
        [
            "%load_ext sluice",
            "from databricks.sdk.runtime import dbutils as d, display as show, getArgument as arg\n"
            "from pyspark.dbutils import DBUtils\n"
            "print(d is dbutils, show is display, DBUtils(None) is dbutils, arg('x', 'dflt'))",
            "import os\nos.environ.pop('SPARK_REMOTE', None)\n"
            f"os.environ['SLUICE_HOME'] = {str(tmp_path / 'home')!r}\n"
            "from pyspark.sql import SparkSession\n"
            "s = SparkSession.builder.appName('x').getOrCreate()\n"
            "print(s is SparkSession.getActiveSession(), s.range(3).count())\n"
            "s.range(2).display()",
        ],
    )
    assert texts(outputs[1]).strip() == "True True True dflt"
    assert texts(outputs[2]).splitlines()[0] == "True 3"
    assert "2 rows" in texts(outputs[2])


def test_widgets_show_as_text_without_ipywidgets(tmp_path: Path) -> None:
    outputs = execute(
        tmp_path,
        [
            "import sys\nsys.modules['ipywidgets'] = None  # as if it were not installed\n%load_ext sluice",
            'dbutils.widgets.dropdown("layer", "bronze", ["bronze", "gold"])',
        ],
    )
    assert texts(outputs[1]) == "widget layer [dropdown] = 'bronze' (choices: bronze, gold)"
