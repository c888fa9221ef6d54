"""The engine on PostgreSQL: one run through every state machine, against a throwaway schema.

The store's contract suite already runs on both backends; this proves the CLI and the driver do too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from e2e.helpers import Workspace, py_task, task_result
from sluice.store.testing import postgres_schema, require_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ws(ws: Workspace) -> Iterator[Workspace]:
    with postgres_schema(require_postgres()) as url:
        ws.env["SLUICE_DATABASE_URL"] = url
        yield ws


def test_retry_condition_for_each_and_repair_on_postgresql(pg_ws: Workspace) -> None:
    ws = pg_ws
    ws.write("flaky.py", "import sys\nif sys.argv[1] == '1':\n    raise RuntimeError('first try fails')\n")
    ws.write("rate.py", "from sluice.runtime import dbutils\ndbutils.jobs.taskValues.set('rate', 0.2)\n")
    ws.write(
        "each.py",
        "import os, sys\nif sys.argv[1] == 'b' and not os.path.exists('fixed'):\n    raise SystemExit(3)\n",
    )
    tasks = [
        py_task("flaky", "flaky.py", params=["{{task.execution_count}}"], max_retries=1),
        py_task("rate", "rate.py", deps=["flaky"]),
        {
            "task_key": "high",
            "depends_on": [{"task_key": "rate"}],
            "condition_task": {"op": "GREATER_THAN", "left": "{{tasks.rate.values.rate}}", "right": "0.05"},
        },
        {
            "task_key": "loop",
            "depends_on": [{"task_key": "high", "outcome": "true"}],
            "for_each_task": {
                "inputs": json.dumps(["a", "b", "c"]),
                "concurrency": 2,
                "task": py_task("each", "each.py", params=["{{input}}"]),
            },
        },
        py_task("low", "ok.py", depends_on=[{"task_key": "high", "outcome": "false"}]),
    ]
    done = ws.run(ws.job(tasks))
    run = done.run
    assert done.returncode == 1, done.stderr
    assert [task_result(a) for a in run.attempts("flaky")] == ["FAILED", "SUCCESS"]
    assert run.task("high")["condition_task"]["outcome"] == "true"
    assert task_result(run.task("low")) == "EXCLUDED"
    assert task_result(run.task("loop")) == "FAILED"

    (ws.dir / "fixed").write_text("")
    repaired = ws.cli("runs", "repair", str(run.run_id), "--all-failed", "--wait", "--output", "json")
    assert repaired.returncode == 0, repaired.stderr
    after = json.loads(repaired.stdout)
    assert after["state"]["result_state"] == "SUCCESS"
    assert [h["type"] for h in after["repair_history"]] == ["ORIGINAL", "REPAIR"]
    assert ws.json("runs", "list", "--output", "json")["runs"][0]["run_id"] == run.run_id
