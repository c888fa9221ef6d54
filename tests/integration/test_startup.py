"""ADR 0003: a warm ``sluice run`` imports none of the heavy modules its budget excludes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("pydantic", "sqlalchemy", "alembic", "yaml", "rich")


def test_warm_run_imports_no_heavy_module(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("print('hi')\n")
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"name": "j", "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "t.py"}}]})
    )
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home"), "SLUICE_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-X", "importtime", "-m", "sluice.cli.main", "run", str(job), "--output", "json"]
    subprocess.run(argv, env=env, capture_output=True, check=True)  # cold: migrates, validates, caches
    warm = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert json.loads(warm.stdout)["state"]["result_state"] == "SUCCESS"
    imported = {
        line.split("|")[-1].strip() for line in warm.stderr.splitlines() if line.startswith("import time:")
    }
    assert not [m for m in imported if m.split(".")[0] in HEAVY]
