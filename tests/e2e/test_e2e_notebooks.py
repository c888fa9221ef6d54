"""notebook_task through ``sluice run``: real Jupyter kernels running the notebooks of ``tests/notebooks``.

Covers the seed's practice notebook (widgets and parameters), its try/except/exit template, task values
between notebooks, failures with error and trace, kernel death, timeouts that leave no kernel behind,
retries, the magics, SQL-language and ``.ipynb`` notebooks, ``%pip`` from a local wheel, and the outputs
every attempt keeps (``notebook.ipynb``, ``notebook.html``, ``runs export``, ``runs get-output``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Workspace, pid_alive, read_pid, task_message, task_result, wait_for

CORPUS = Path(__file__).resolve().parents[1] / "notebooks"
#: Whether this installation has the compute engine (``spark`` and ``%sql`` then really run).
COMPUTE = importlib.util.find_spec("sluice.runtime.spark") is not None


def nb_task(key: str, path: str, *, deps: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """A notebook_task for ``notebooks/<path>`` (no extension, as Databricks paths are written)."""
    params = fields.pop("params", None)
    notebook: dict[str, Any] = {"notebook_path": f"notebooks/{path}"}
    if params is not None:
        notebook["base_parameters"] = params
    task: dict[str, Any] = {"task_key": key, "notebook_task": notebook, **fields}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


@pytest.fixture
def nbws(ws: Workspace) -> Workspace:
    shutil.copytree(CORPUS, ws.dir / "notebooks")
    return ws


def logs(ws: Workspace, run_id: int, task: str, stream: str = "stdout") -> str:
    """One stream of a task's latest attempt as ``sluice runs logs`` prints it."""
    done = ws.cli("runs", "logs", str(run_id), "--task", task)
    assert done.returncode == 0, done.stderr
    lines: list[str] = []
    inside = False
    for line in done.stdout.splitlines():
        if line.startswith(("--- ", "=== ")):
            inside = line == f"--- {stream} ---"
            lines = [] if inside else lines  # the latest attempt's section wins
        elif inside:
            lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def attempt_dir(ws: Workspace, task_run_id: int) -> Path:
    out = ws.json("runs", "get-output", str(task_run_id))
    assert "logs" not in out, "notebook tasks have no logs in get-output (Databricks)"
    runs = ws.get_run(int(out["metadata"]["job_run_id"]))
    del runs
    found = list(ws.home.rglob(f"*/{task_run_id}/notebook.ipynb")) or list(
        ws.home.rglob(f"*{task_run_id}*/notebook.ipynb")
    )
    assert found, f"no notebook.ipynb for task run {task_run_id} under {ws.home}"
    return found[0].parent


# ------------------------------------------------------------------------------------ the seed's practice


def test_seed_practice_with_layer_silver_prints_the_seeds_three_lines(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("practice", "practice", params={"layer": "silver"})]))
    assert done.returncode == 0, done.stderr
    assert logs(nbws, done.run.run_id, "practice") == "workspace.silver.ecommerce_cleaned\nsilver\nOct\n"
    resolved = done.run.task("practice")["resolved_values"]
    assert resolved == {"notebook_task": {"base_parameters": {"layer": "silver"}}}


def test_seed_practice_without_parameters_prints_the_defaults(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("practice", "practice")]))
    assert done.run.results() == {"practice": "SUCCESS"}
    assert logs(nbws, done.run.run_id, "practice") == "workspace.silver.ecommerce_cleaned\nbronze\nOct\n"


def test_job_parameters_are_pushed_down_and_win_over_base_parameters(nbws: Workspace) -> None:
    job = nbws.job(
        [nb_task("practice", "practice", params={"layer": "silver", "month": "Nov"})],
        parameters=[{"name": "layer", "default": "bronze"}],
    )
    done = nbws.run(job, "--param", "layer=gold")
    assert done.run.results() == {"practice": "SUCCESS"}
    assert logs(nbws, done.run.run_id, "practice") == "workspace.silver.ecommerce_cleaned\ngold\nNov\n"


def test_the_try_except_exit_template_succeeds_with_its_message_as_exit_value(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("t", "try_except_exit")]))
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"t": "SUCCESS"}
    message, shown = logs(nbws, done.run.run_id, "t").splitlines()
    assert message.startswith("Task failed: "), message  # whatever spark said (no table, no engine)
    assert shown == f"Notebook exited: {message}", "the cell shows the exit as Databricks does"
    output = nbws.json("runs", "get-output", str(done.run.task("t")["run_id"]))
    assert output["notebook_output"] == {"result": message, "truncated": False}


def test_task_values_set_in_one_notebook_are_read_downstream(nbws: Workspace) -> None:
    tasks = [
        nb_task("bronze", "workflows/set_values"),
        nb_task("silver", "workflows/get_values", deps=("bronze",)),
    ]
    done = nbws.run(nbws.job(tasks))
    assert done.run.results() == {"bronze": "SUCCESS", "silver": "SUCCESS"}
    assert logs(nbws, done.run.run_id, "silver") == (
        "workspace.bronze.events: 1000 rows (fallback)\nNotebook exited: 1000\n"
    )
    output = nbws.json("runs", "get-output", str(done.run.task("silver")["run_id"]))
    assert output["notebook_output"] == {"result": "1000", "truncated": False}
    bronze = nbws.json("runs", "get-output", str(done.run.task("bronze")["run_id"]))
    assert bronze["notebook_output"] == {}, "a notebook that does not exit has an empty notebook_output"


# -------------------------------------------------------------------------------------------- failures


def test_a_failing_cell_fails_the_task_with_error_trace_and_keeps_the_notebook(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("f", "fails")]))
    assert done.returncode == 1
    task = done.run.task("f")
    assert task_result(task) == "FAILED"
    assert task_message(task) == "ValueError: boom"
    output = nbws.json("runs", "get-output", str(task["run_id"]))
    assert output["error"] == "ValueError: boom"
    trace = output["error_trace"]
    assert "validate(0)" in trace
    assert trace.rstrip().endswith("ValueError: boom")
    assert "\x1b[" not in trace
    assert logs(nbws, done.run.run_id, "f") == "before the failure\n"
    assert "ValueError: boom" in logs(nbws, done.run.run_id, "f", "stderr")
    folder = attempt_dir(nbws, task["run_id"])
    nb = json.loads((folder / "notebook.ipynb").read_text())
    failed = [c for c in nb["cells"] if "sluice-failed" in c["metadata"].get("tags", [])]
    assert len(failed) == 1
    assert "validate(0)" in "".join(failed[0]["source"])
    assert [o["ename"] for o in failed[0]["outputs"] if o["output_type"] == "error"] == ["ValueError"]
    assert nb["cells"][-1]["outputs"] == [], "cells after the failure do not run"
    assert not (folder / "notebook.html").exists(), "rendered on first export"
    exported = nbws.cli("runs", "export", str(task["run_id"]))
    assert exported.returncode == 0, exported.stderr
    html = (folder / "notebook.html").read_text()
    assert html == exported.stdout, "the rendering is kept for the next export"
    assert "before the failure" in html
    assert "boom" in html


def test_runs_export_writes_the_html_of_a_notebook_run(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("f", "fails")]))
    task_run = str(done.run.task("f")["run_id"])
    target = nbws.root / "export.html"
    exported = nbws.cli("runs", "export", task_run, "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "before the failure" in html
    assert "ValueError" in html
    to_stdout = nbws.cli("runs", "export", task_run)
    assert to_stdout.returncode == 0
    assert to_stdout.stdout == html


def test_runs_export_refuses_a_task_that_is_not_a_notebook(nbws: Workspace) -> None:
    job = nbws.job([{"task_key": "py", "spark_python_task": {"python_file": "ok.py"}}])
    done = nbws.run(job)
    refused = nbws.cli("runs", "export", str(done.run.task("py")["run_id"]))
    assert refused.returncode != 0
    assert "is not a notebook task" in refused.stderr


@pytest.mark.parametrize(
    ("notebook", "how"),
    [("kernel_killed", "killed by signal SIGKILL"), ("kernel_exits", "exited with code 3")],
)
def test_a_kernel_that_dies_fails_the_task_saying_how(nbws: Workspace, notebook: str, how: str) -> None:
    done = nbws.run(nbws.job([nb_task("k", notebook)]))
    task = done.run.task("k")
    assert task_result(task) == "FAILED"
    message = task_message(task)
    assert "kernel died" in message, message
    assert how in message, message
    assert nbws.processes() == [], "no kernel outlives its attempt"


def test_a_timed_out_notebook_leaves_no_kernel_process(nbws: Workspace) -> None:
    pid_file = nbws.root / "kernel.pid"
    # The timeout leaves room for a cold kernel on a busy machine (its first cell came after 3 s once).
    task = nb_task("slow", "sleeps", params={"pid_file": str(pid_file)}, timeout_seconds=8)
    done = nbws.run(nbws.job([task]))
    assert task_result(done.run.task("slow")) == "TIMEDOUT"
    kernel_pid = read_pid(pid_file)
    assert kernel_pid is not None, "the kernel started and ran the cell"
    wait_for(lambda: not pid_alive(kernel_pid), timeout=10, what=f"kernel {kernel_pid} to be gone")
    assert nbws.processes() == []
    folder = attempt_dir(nbws, done.run.task("slow")["run_id"])
    nb = json.loads((folder / "notebook.ipynb").read_text())
    assert "sleeping" in json.dumps(nb["cells"][0]["outputs"]), "the notebook is kept as far as it ran"


def test_a_failed_notebook_is_retried_with_references_resolved(nbws: Workspace) -> None:
    task = nb_task("flaky", "flaky", params={"execution": "{{task.execution_count}}"}, max_retries=1)
    done = nbws.run(nbws.job([task]))
    attempts = done.run.attempts("flaky")
    assert [task_result(a) for a in attempts] == ["FAILED", "SUCCESS"]
    assert task_message(attempts[0]) == "RuntimeError: execution 1 fails"
    assert logs(nbws, done.run.run_id, "flaky") == "succeeded on execution 2\n"


def test_a_missing_notebook_is_refused_naming_the_task_and_what_was_tried(nbws: Workspace) -> None:
    done = nbws.cli("run", str(nbws.job([nb_task("m", "no_such_notebook")])))
    assert done.returncode == 2  # refused by validation, before anything runs
    assert "task 'm'" in done.stderr
    assert "no_such_notebook" in done.stderr
    assert "not found" in done.stderr
    assert ".ipynb" in done.stderr
    assert nbws.list_runs() == []


# -------------------------------------------------------------------------------------------- magics


def test_every_python_side_magic_runs(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("m", "all_magics")]))
    assert done.run.results() == {"m": "SUCCESS"}, done.run.data
    assert logs(nbws, done.run.run_id, "m") == (
        "cwd is the notebook folder: notebooks\n"
        "helper loaded with hello world\n"
        "hello world, magics hello world, magics\n"
        "nested says 42\n"
        "a %python cell\n"
        "bash 42\n"
        "to stderr\n"
        "notebook folder is the working directory\n"
        "one-line sh\n"
        "done\n"
    )


def _cell_text(ipynb: Path, title: str) -> str:
    """The text/plain outputs of the cell titled ``title`` in an executed ``notebook.ipynb``."""
    nb = json.loads(ipynb.read_text())
    for cell in nb["cells"]:
        meta: dict[str, Any] = next((v for k, v in cell["metadata"].items() if k.endswith("+cell")), {})
        if meta.get("title") == title:
            return "".join(
                "".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
                for o in cell.get("outputs", [])
            )
    raise AssertionError(f"no cell titled {title!r} in {ipynb}")


@pytest.mark.parametrize(
    ("notebook", "local"),
    [
        ("fs_dbfs", ("dbfs", "fs-magic")),
        ("fs_volume", ("volumes", "workspace", "fs", "files", "fs-magic")),
    ],
)
def test_fs_magic_mkdirs_put_head_ls_cp_and_rm_on_dbfs_and_volumes(
    nbws: Workspace, notebook: str, local: tuple[str, ...]
) -> None:
    if notebook == "fs_volume":
        made = nbws.cli("volumes", "create", "workspace.fs.files")
        assert made.returncode == 0, made.stderr
    done = nbws.run(nbws.job([nb_task("f", notebook)]))
    assert done.run.results() == {"f": "SUCCESS"}, done.run.data
    assert logs(nbws, done.run.run_id, "f") == (
        "hello again from %fs put\n"  # %fs head, after put -f overwrote the file
        "listed ['deeper/', 'hello.txt']\n"  # directories end with /, as on Databricks
        "after rm ['copy.txt']\n"
    )
    folder = nbws.home.joinpath(*local)
    assert (folder / "copy.txt").read_text() == "hello again from %fs put"
    assert not (folder / "in").exists(), "%fs rm -r removed the directory and what it held"
    listing = _cell_text(attempt_dir(nbws, done.run.task("f")["run_id"]) / "notebook.ipynb", "List")
    assert "hello.txt" in listing, listing
    assert "deeper" in listing, listing


def test_a_fs_magic_on_a_missing_file_fails_the_cell_naming_the_path(nbws: Workspace) -> None:
    (nbws.dir / "notebooks" / "fs_missing.py").write_text(
        "# Databricks notebook source\n# MAGIC %fs head dbfs:/no/such/file.txt\n"
    )
    done = nbws.run(nbws.job([nb_task("f", "fs_missing")]))
    assert task_result(done.run.task("f")) == "FAILED"
    assert "no/such/file.txt" in task_message(done.run.task("f"))


@pytest.mark.skipif(not COMPUTE, reason="%sql needs the compute engine")
def test_legacy_dollar_brace_parameters_in_sql_work_with_a_deprecation_note(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("q", "sql_legacy", params={"n": "41"})]))
    assert done.run.results() == {"q": "SUCCESS"}, done.run.data
    ipynb = attempt_dir(nbws, done.run.task("q")["run_id"]) / "notebook.ipynb"
    assert "43" in _cell_text(ipynb, "Legacy"), "the last statement's result is displayed: 41 + 2"
    assert "42" in _cell_text(ipynb, "Marker")
    notes = [line for line in logs(nbws, done.run.run_id, "q", "stderr").splitlines() if "deprecated" in line]
    assert notes == [
        "sluice: deprecated: ${n} in the %sql of cell 2 ('Legacy') is legacy text substitution; use the "
        "parameter marker :n instead (it is bound as a value, not pasted into the SQL)"
    ], "one note per parameter, naming it and the :name form"


def test_a_sql_notebook_runs_its_python_cells_and_names_the_sql_cell_without_compute(
    nbws: Workspace,
) -> None:
    done = nbws.run(nbws.job([nb_task("q", "sql_notebook")]))
    message = task_message(done.run.task("q"))
    assert task_result(done.run.task("q")) == "FAILED"
    if COMPUTE:  # the query ran through spark.sql: the table does not exist
        assert "events" in message, message
    else:
        assert "cell 3 ('Count') is a %sql cell" in message, message
        assert "compute engine" in message, message
    assert logs(nbws, done.run.run_id, "q") == "python inside a SQL notebook\n"


def test_a_scala_cell_fails_clearly(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("s", "scala_cell")]))
    message = task_message(done.run.task("s"))
    assert message.startswith("UnsupportedLanguage: cell 2 is a %scala cell"), message


def test_an_ipynb_notebook_runs_with_widgets_and_magics(nbws: Workspace) -> None:
    done = nbws.run(nbws.job([nb_task("j", "jupyter_notebook", params={"name": "sluice"})]))
    assert done.run.results() == {"j": "SUCCESS"}
    assert logs(nbws, done.run.run_id, "j") == "hello from bash\nhello, sluice\n"
    folder = attempt_dir(nbws, done.run.task("j")["run_id"])
    nb = json.loads((folder / "notebook.ipynb").read_text())
    result = nb["cells"][-1]["outputs"][-1]
    assert result["output_type"] == "execute_result"
    assert "".join(result["data"]["text/plain"]) == "'SLUICE'"


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel of package ``sluice_tiny_pkg`` (no network, no build backend needed)."""
    name, version = "sluice_tiny_pkg", "0.1"
    files = {
        f"{name}/__init__.py": b"VALUE = 'installed by %pip'\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_name = f"{name}-{version}.dist-info/RECORD"
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}")
    lines.append(f"{record_name},,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(record_name, "\n".join(lines) + "\n")
    return wheel


def test_pip_installs_into_the_runs_own_directory(nbws: Workspace) -> None:
    wheel = _tiny_wheel(nbws.root)
    nbws.write(
        "notebooks/pip_install.py",
        f"""
        # Databricks notebook source
        # MAGIC %pip install --no-index "{wheel}"

        # COMMAND ----------

        import sluice_tiny_pkg
        print(sluice_tiny_pkg.VALUE)
        print(sluice_tiny_pkg.__file__)
        """,
    )
    done = nbws.run(nbws.job([nb_task("p", "pip_install")]))
    assert done.run.results() == {"p": "SUCCESS"}, done.run.data
    printed = logs(nbws, done.run.run_id, "p").splitlines()
    assert "installed by %pip" in printed
    installed_at = Path(printed[-1])
    folder = attempt_dir(nbws, done.run.task("p")["run_id"])
    assert installed_at.is_relative_to(folder / "python")
    assert importlib.util.find_spec("sluice_tiny_pkg") is None, "Sluice's own environment is untouched"
