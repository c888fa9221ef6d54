"""python_wheel tasks: a real wheel, built here and pip-installed into a target directory (no network)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.executors import Exited, LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor

CLI = """
import sys

def main():
    print("argv", sys.argv)
    if "--fail" in sys.argv:
        raise RuntimeError("wheel task failed")
    if "--code" in sys.argv:
        return 3
    return None
"""

INIT = """
def run():
    import sys
    print("fallback", sys.argv)
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path) -> Path:
    """A minimal, valid wheel of distribution ``my-pkg`` with package ``my_pkg``."""
    dist_info = "my_pkg-1.0.dist-info"
    files = {
        "my_pkg/__init__.py": INIT.encode(),
        "my_pkg/cli.py": CLI.encode(),
        "my_pkg/broken.py": b"raise RuntimeError('broken at import')\n",
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\nName: my-pkg\nVersion: 1.0\n",
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sluice-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (
            b"[console_scripts]\nmytool = my_pkg.cli:main\nbroken = my_pkg.broken:main\n"
        ),
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / "my_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "my_pkg" / "cli.py").exists()
    return target


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    with LocalExecutor() as ex:
        yield ex


def run_wheel(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path, target: str, params: list[str]
) -> tuple[Exited, Path]:
    attempt_dir = tmp_path / "attempt"
    executor.launch(
        LaunchSpec(
            attempt_id=1,
            kind=TaskKind.PYTHON_WHEEL,
            target=target,
            argv=params,
            cwd=str(tmp_path),
            env={"PYTHONPATH": str(site_dir)},
            attempt_dir=str(attempt_dir),
        )
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for exited in executor.poll(0.5):
            return exited, attempt_dir
    pytest.fail("the wheel task did not exit")


def test_console_script_entry_point_gets_package_name_as_argv0(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path
) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "my-pkg:mytool", ["--x=1", "y"])
    assert exited.returncode == 0, (attempt_dir / "stderr.log").read_text()
    assert (attempt_dir / "stdout.log").read_text() == "argv ['my-pkg', '--x=1', 'y']\n"


def test_entry_point_int_result_is_the_exit_status(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path
) -> None:
    exited, _ = run_wheel(executor, tmp_path, site_dir, "my-pkg:mytool", ["--code"])
    assert exited.returncode == 3


def test_entry_point_exception_is_reported(executor: LocalExecutor, tmp_path: Path, site_dir: Path) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "my-pkg:mytool", ["--fail"])
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == "RuntimeError: wheel task failed"
    assert "my_pkg/cli.py" in error["error_trace"]


def test_falls_back_to_a_function_of_the_package(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path
) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "my_pkg:run", ["p"])
    assert exited.returncode == 0, (attempt_dir / "stderr.log").read_text()
    assert (attempt_dir / "stdout.log").read_text() == "fallback ['my_pkg', 'p']\n"


def test_unknown_entry_point_is_a_clear_failure(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path
) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "my-pkg:nope", [])
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == (
        "python wheel task: package 'my-pkg' has no entry point 'nope': not among the distribution's "
        "entry points, and module 'my_pkg' has no function 'nope'"
    )


def test_missing_package_is_a_clear_failure(executor: LocalExecutor, tmp_path: Path, site_dir: Path) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "not_installed_pkg:main", [])
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"].startswith("python wheel task: package 'not_installed_pkg' is not installed")


def test_an_entry_point_failing_at_import_is_the_task_s_error(
    executor: LocalExecutor, tmp_path: Path, site_dir: Path
) -> None:
    exited, attempt_dir = run_wheel(executor, tmp_path, site_dir, "my-pkg:broken", [])
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == "RuntimeError: broken at import"
    assert "my_pkg/broken.py" in error["error_trace"]
