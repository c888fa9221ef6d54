"""``jobs run-now --wait`` and ``runs repair --wait`` show a live table of the tasks on a terminal, locally
and against a server (stderr is a pseudo-terminal here, as in a shell); the summary still goes to stdout."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from e2e.helpers import CLI, Workspace
from e2e.test_api_sdk import start_server

SLOW = "import time\nprint('step', flush=True)\ntime.sleep(2)\n"


def _on_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: exit code, stdout, and what the terminal showed."""
    master, slave = pty.openpty()
    with subprocess.Popen(
        [*CLI, *args],
        env={**env, "COLUMNS": "120"},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    ) as proc:
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        out = proc.stdout.read().decode() if proc.stdout else ""
        return proc.wait(60), out, shown.decode(errors="replace")


def _job(ws: Workspace) -> Path:
    slow = ws.write("slow.py", SLOW)
    path = ws.dir / "live.json"
    path.write_text(
        json.dumps(
            {
                "name": "live",
                "tasks": [{"task_key": "crunch", "spark_python_task": {"python_file": str(slow)}}],
            }
        )
    )
    return path


def test_local_run_now_wait_draws_the_tasks_live(ws: Workspace) -> None:
    job_id = ws.json("jobs", "create", "--json", str(_job(ws)))["job_id"]
    code, out, shown = _on_terminal(["jobs", "run-now", str(job_id), "--wait"], ws.env, ws.dir)
    assert code == 0, out + shown
    assert "crunch" in shown
    assert "RUNNING" in shown  # drawn while the task ran
    assert json.loads(out)["state"]["result_state"] == "SUCCESS"  # the result on stdout, as JSON by default


def test_remote_run_now_and_repair_wait_draw_the_tasks_live(ws: Workspace) -> None:
    token = ws.json("tokens", "create", "--comment", "live", "--output", "json")["token_value"]
    server = start_server(ws, token)
    env = {
        **ws.env,
        "SLUICE_HOME": str(ws.root / "client-home"),
        "SLUICE_HOST": server.url,
        "SLUICE_TOKEN": token,
    }
    job_id = json.loads(
        subprocess.run(
            [*CLI, "jobs", "create", "--json", str(_job(ws))],
            env=env,
            cwd=ws.dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["job_id"]
    code, out, shown = _on_terminal(["jobs", "run-now", str(job_id), "--wait"], env, ws.dir)
    assert code == 0, out + shown
    assert "RUNNING" in shown
    assert "crunch" in shown
    run_id = json.loads(out)["run_id"]
    code, out, shown = _on_terminal(
        ["runs", "repair", str(run_id), "--task", "crunch", "--wait"], env, ws.dir
    )
    assert code == 0, out + shown
    assert "RUNNING" in shown
