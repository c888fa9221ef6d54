"""How task processes run and end: exit codes, signals, missing files, working directory, parallelism."""

from __future__ import annotations

import json

import pytest

from e2e.helpers import Workspace, py_task, task_message, task_result
from sluice.identity import local_user


def test_process_outcomes_and_their_messages(ws: Workspace) -> None:
    ws.write("exit3.py", "import sys\nsys.exit(3)\n")
    ws.write("exit_text.py", "import sys\nsys.exit('fatal: no input files')\n")
    ws.write("exit0.py", "import sys\nsys.exit(0)\n")
    ws.write("selfkill.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    tasks = [
        py_task("exit3", "exit3.py"),
        py_task("exit_text", "exit_text.py"),
        py_task("exit0", "exit0.py"),
        py_task("selfkill", "selfkill.py"),
    ]
    done = ws.run(ws.job(tasks))
    run = done.run
    assert run.data["creator_user_name"] == local_user()  # who typed `sluice run`
    assert run.results() == {
        "exit3": "FAILED",
        "exit_text": "FAILED",
        "exit0": "SUCCESS",
        "selfkill": "FAILED",
    }
    assert "exited with code 3" in task_message(run.task("exit3"))
    assert "fatal: no input files" in task_message(run.task("exit_text"))
    assert "SIGKILL" in task_message(run.task("selfkill"))
    assert run.result_state == "FAILED"
    for key in ("exit3", "exit_text", "selfkill"):
        assert key in run.state_message, "the run's message names its failed tasks"
    # A script that does not exist is refused by validation, naming the task, before anything runs.
    refused = ws.cli("run", str(ws.job([*tasks, py_task("missing", "does_not_exist.py")], file="more.yml")))
    assert refused.returncode == 2
    assert "task 'missing'" in refused.stderr
    assert "does_not_exist.py' not found" in refused.stderr


def test_relative_python_file_runs_in_its_directory_with_its_argv(ws: Workspace) -> None:
    ws.write(
        "pkg/where.py",
        """
        import json, os, sys
        import helper  # a module next to the script is importable
        with open(sys.argv[1], "w") as f:
            json.dump({"cwd": os.getcwd(), "argv": sys.argv[2:], "helper": helper.VALUE}, f)
        """,
    )
    ws.write("pkg/helper.py", "VALUE = 'imported'\n")
    out = ws.dir / "where.json"
    params = [str(out), "plain", "with space", "ünïcödé ✓", ""]
    refused = ws.cli(
        "run", str(ws.job([py_task("where", "pkg/where.py", params=params)], file="jobs/job.yml"))
    )
    assert refused.returncode == 2, "python_file resolves against the job file"
    assert "jobs/pkg/where.py' not found" in refused.stderr

    done = ws.run(ws.job([py_task("where", "../pkg/where.py", params=params)], file="jobs/job.yml"))
    assert task_result(done.run.task("where")) == "SUCCESS", task_message(done.run.task("where"))
    got = json.loads(out.read_text())
    assert got == {"cwd": str(ws.dir / "pkg"), "argv": params[1:], "helper": "imported"}


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]


@pytest.mark.slow
def test_parallelism_bounds_concurrent_task_processes(ws: Workspace) -> None:
    ws.write("nap.py", "import time\ntime.sleep(0.6)\n")
    job = ws.job([py_task("a", "nap.py"), py_task("b", "nap.py")])

    together = ws.run(job, "--parallelism", "2").run
    assert _overlaps(together.task("a"), together.task("b")), "independent tasks run at the same time"

    one_at_a_time = ws.run(job, "--parallelism", "1").run
    assert not _overlaps(one_at_a_time.task("a"), one_at_a_time.task("b"))

    ws.env["SLUICE_PARALLELISM"] = "1"
    from_env = ws.run(job).run
    assert not _overlaps(from_env.task("a"), from_env.task("b")), "SLUICE_PARALLELISM is honoured"


def test_table_output_is_the_default(ws: Workspace) -> None:
    ws.env["COLUMNS"] = "200"  # no wrapping in the table
    done = ws.cli("run", str(ws.job([py_task("good", "ok.py"), py_task("bad", "fail.py")])))
    assert done.returncode == 1
    assert "run 1: FAILED" in done.stdout
    for text in ("good", "bad", "SUCCESS", "ValueError: bad input row 7"):
        assert text in done.stdout, f"{text!r} missing from:\n{done.stdout}"
