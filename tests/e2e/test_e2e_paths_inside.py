"""Paths stay inside: ``%run`` and ``dbutils.notebook.run`` open notebooks only inside the job's root.

The root is the job's base directory (the bundle root, or the job file's directory) or, for a task from
git, the checkout (docs/guide/notebooks.md). Before, ``%run /etc/passwd`` was followed and its first line
echoed in the error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.helpers import Workspace, task_message, task_result

HEADER = "# Databricks notebook source\n"


def notebook(*cells: str) -> str:
    return HEADER + "\n# COMMAND ----------\n".join(cells)


def nb_task(key: str, path: str) -> dict[str, object]:
    return {"task_key": key, "notebook_task": {"notebook_path": path}}


@pytest.fixture
def outside(ws: Workspace) -> Path:
    """A valid notebook outside the job's root (the job file is in ws.dir)."""
    folder = ws.root / "outside"
    folder.mkdir()
    (folder / "secret.py").write_text(notebook("print('OUTSIDE RAN')\n"))
    return folder / "secret.py"


def run_one(ws: Workspace, body: str) -> dict[str, object]:
    ws.write("nb/main.py", notebook(body))
    done = ws.run(ws.job([nb_task("main", "nb/main")]))
    return done.run.task("main")


def test_run_magic_of_an_absolute_path_outside_the_root_is_refused(ws: Workspace) -> None:
    task = run_one(ws, "# MAGIC %run /etc/passwd\n")
    assert task_result(task) == "FAILED"
    message = task_message(task)
    assert "'/etc/passwd'" in message, message
    assert f"outside the workspace root {ws.dir.resolve()}" in message, message
    assert "root:" not in message, "a line of /etc/passwd leaked into the error"


def test_run_magic_climbing_out_with_dotdot_is_refused(ws: Workspace, outside: Path) -> None:
    task = run_one(ws, "# MAGIC %run ../../outside/secret\n")
    assert task_result(task) == "FAILED"
    message = task_message(task)
    assert "'../../outside/secret'" in message, message
    assert "outside the workspace root" in message, message
    assert "OUTSIDE RAN" not in message


def test_run_magic_through_a_symlink_leading_outside_is_refused(ws: Workspace, outside: Path) -> None:
    (ws.dir / "nb").mkdir(parents=True)
    (ws.dir / "nb" / "link.py").symlink_to(outside)
    task = run_one(ws, "# MAGIC %run ./link\n")
    assert task_result(task) == "FAILED"
    message = task_message(task)
    assert "'./link'" in message, message
    assert f"{outside.resolve()}, outside the workspace root" in message, message


def test_run_magic_inside_the_root_still_works(ws: Workspace) -> None:
    ws.write("lib/helpers.py", notebook("GREETING = 'hello from lib'\n"))
    (ws.dir / "nb").mkdir(parents=True)
    (ws.dir / "nb" / "alias.py").symlink_to(ws.dir / "lib" / "helpers.py")  # a link that stays inside
    ws.write(
        "nb/main.py",
        notebook(
            "# MAGIC %run ../lib/helpers\n",
            "# MAGIC %run ./alias\n",
            "dbutils.notebook.exit(GREETING)\n",
        ),
    )
    done = ws.run(ws.job([nb_task("main", "nb/main")]))
    assert task_result(done.run.task("main")) == "SUCCESS", task_message(done.run.task("main"))


def test_notebook_run_outside_the_root_is_refused(ws: Workspace, outside: Path) -> None:
    task = run_one(ws, f"dbutils.notebook.run({str(outside)!r}, 60)\n")
    assert task_result(task) == "FAILED"
    message = task_message(task)
    assert f"'{outside}'" in message, message
    assert "outside the workspace root" in message, message


SPARK_READ = """
import sys
from sluice.runtime.spark import spark
rows = spark.read.csv(sys.argv[1], header=True).collect()
print("ROWS", sorted(r["a"] for r in rows))
"""


def test_spark_refuses_a_volume_directory_with_a_link_leading_outside(ws: Workspace) -> None:
    pytest.importorskip("pysail")
    created = ws.cli("volumes", "create", "workspace.raw.landing")
    assert created.returncode == 0, created.stderr
    volume = ws.home / "volumes" / "workspace" / "raw" / "landing"
    secret = ws.root / "secret.csv"
    secret.write_text("a\nTOP-SECRET\n")
    (volume / "clean").mkdir()
    (volume / "clean" / "part-1.csv").write_text("a\n1\n")
    (volume / "clean" / "alias.csv").symlink_to(volume / "clean" / "part-1.csv")  # stays inside: fine
    (volume / "leaky").mkdir()
    (volume / "leaky" / "part-1.csv").write_text("a\n2\n")
    (volume / "leaky" / "part-2.csv").symlink_to(secret)
    ws.write("read.py", SPARK_READ)
    tasks = [
        py_task_dict("clean", "/Volumes/workspace/raw/landing/clean"),
        py_task_dict("leaky", "/Volumes/workspace/raw/landing/leaky"),
    ]
    done = ws.run(ws.job(tasks), timeout=240)
    clean, leaky = done.run.task("clean"), done.run.task("leaky")
    assert task_result(clean) == "SUCCESS", task_message(clean)
    assert task_result(leaky) == "FAILED"
    message = task_message(leaky)
    assert f"dbfs:/Volumes/workspace/raw/landing/leaky/part-2.csv -> {secret}" in message, message
    assert "TOP-SECRET" not in message
    logs = ws.cli("runs", "logs", str(done.run.run_id), "--task", "leaky").stdout
    assert "TOP-SECRET" not in logs


def py_task_dict(key: str, path: str) -> dict[str, object]:
    return {"task_key": key, "spark_python_task": {"python_file": "read.py", "parameters": [path]}}


def test_a_notebook_run_child_has_its_parents_root(ws: Workspace) -> None:
    """The child run of ``dbutils.notebook.run`` keeps the parent job's root, not the driver's directory."""
    ws.write("secret.py", notebook("print('OUTSIDE RAN')\n"))  # in the driver's cwd, outside the job's root
    ws.write("proj/lib/helpers.py", notebook("GREETING = 'hello'\n"))
    ws.write("proj/nb/child.py", notebook("# MAGIC %run ../lib/helpers\n", "# MAGIC %run ../../secret\n"))
    ws.write("proj/nb/main.py", notebook("dbutils.notebook.exit(dbutils.notebook.run('./child', 120))\n"))
    done = ws.run(ws.job([nb_task("main", "nb/main")], file="proj/job.yml"))
    main = done.run.task("main")
    assert task_result(main) == "FAILED"
    message = task_message(main)
    assert "'../../secret'" in message, message
    assert f"outside the workspace root {(ws.dir / 'proj').resolve()}" in message, message
