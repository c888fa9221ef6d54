"""`sluice run` never pays for the server: no FastAPI, uvicorn, httpx or TOML parser in its imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER_ONLY = ("fastapi", "starlette", "uvicorn", "httpx", "anyio", "tomllib", "sluice.api", "sluice.server")


def test_sluice_run_imports_nothing_of_the_server(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("print('hi')\n")
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"name": "j", "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "t.py"}}]})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_HOME=str(tmp_path / "home"), SLUICE_CACHE_DIR=str(tmp_path / "cache"))
    argv = [sys.executable, "-X", "importtime", "-m", "sluice.cli.main", "run", str(job), "--output", "json"]
    subprocess.run(argv, env=env, capture_output=True, check=True)  # cold: migrates, validates, caches
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["state"]["result_state"] == "SUCCESS"
    imported = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "sluice.settings" in imported
    assert not [m for m in imported if m.startswith(SERVER_ONLY)]
