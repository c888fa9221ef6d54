"""python_wheel_task through the CLI: an entry point of an installed package, positional or named params."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from e2e.helpers import Workspace, task_message, task_result

MAIN = b"""
import sys

def main():
    print("argv", sys.argv[1:])
    if "--fail=yes" in sys.argv:
        raise RuntimeError("the wheel task failed on purpose")
"""


def install_wheel(root: Path) -> Path:
    """A minimal wheel (distribution etl-tools, entry point etl), pip-installed into a target directory."""
    info = "etl_tools-1.0.dist-info"
    files = {
        "etl_tools/__init__.py": MAIN,
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: etl-tools\nVersion: 1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": b"[console_scripts]\netl = etl_tools:main\n",
    }
    records = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*records, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = root / "etl_tools-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return site


def test_wheel_tasks_with_positional_and_named_parameters(ws: Workspace, tmp_path: Path) -> None:
    ws.env["PYTHONPATH"] = str(install_wheel(tmp_path))  # as if installed where Sluice runs
    tasks = [
        {
            "task_key": "positional",
            "python_wheel_task": {
                "package_name": "etl-tools",
                "entry_point": "etl",
                "parameters": ["a", "{{job.run_id}}"],
            },
        },
        {
            "task_key": "named",
            "python_wheel_task": {
                "package_name": "etl-tools",
                "entry_point": "etl",
                "named_parameters": {"day": "mon"},
            },
        },
        {
            "task_key": "failing",
            "python_wheel_task": {
                "package_name": "etl-tools",
                "entry_point": "etl",
                "named_parameters": {"fail": "yes"},
            },
        },
    ]
    done = ws.run(ws.job(tasks, parameters=[{"name": "env", "default": "dev"}]))
    run = done.run
    assert task_result(run.task("positional")) == "SUCCESS"
    assert task_result(run.task("named")) == "SUCCESS"
    assert task_result(run.task("failing")) == "FAILED"
    assert "the wheel task failed on purpose" in task_message(run.task("failing"))
    logs = ws.cli("runs", "logs", str(run.run_id)).stdout
    assert f"argv ['a', '{run.run_id}']" in logs  # positional: no job parameters pushed down
    assert "argv ['--day=mon', '--env=dev']" in logs  # named: job parameters pushed down
    named = run.task("named")["resolved_values"]["python_wheel_task"]["named_parameters"]
    assert named == {"day": "mon", "env": "dev"}
