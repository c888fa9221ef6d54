"""The ecommerce example (examples/ecommerce) end to end on generated data, checked independently.

Both months are generated into the landing volume, the backfill job runs the medallion job once per month
(for-each over run-job tasks), and the gold tables must equal what plain Python computes from the same CSV
files (tests/e2e/ecommerce_expected.py). A second test lowers the reject-rate limit so that the condition
task routes the run to quarantine instead of gold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.ecommerce_expected import gold
from e2e.helpers import Workspace, py_task, task_message

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecommerce"
ROWS = "4000"

READ_GOLD = """
import json, sys
from sluice.runtime.spark import spark

daily = {
    str(r["event_date"]): [r["purchases"], r["buyers"], r["revenue"]]
    for r in spark.table("workspace.gold.daily_revenue").collect()
}
funnel = {r["step"]: r["users"] for r in spark.table("workspace.gold.funnel").collect()}
brands = [
    [r["brand"], r["revenue"], r["purchases"]]
    for r in spark.table("workspace.gold.top_brands").orderBy("revenue", ascending=False).collect()
]
open(sys.argv[1], "w").write(json.dumps({"daily": daily, "funnel": funnel, "top_brands": brands}))
"""


@pytest.fixture
def landing(ws: Workspace) -> Path:
    """The landing volume with generated October and November files."""
    created = ws.cli("volumes", "create", "workspace.ecommerce.landing")
    assert created.returncode == 0, created.stderr
    directory = ws.home / "volumes" / "workspace" / "ecommerce" / "landing"
    for month, seed in (("Oct", "1"), ("Nov", "2")):
        made = ws.cli(
            "example-data",
            "ecommerce",
            "--month",
            month,
            "--rows",
            ROWS,
            "--seed",
            seed,
            "--out",
            str(directory),
        )
        assert made.returncode == 0, made.stderr
    return directory


def test_the_backfill_publishes_gold_equal_to_an_independent_computation(
    ws: Workspace, landing: Path
) -> None:
    done = ws.run(EXAMPLE, "--job", "ecommerce_backfill", timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    children = [r for r in ws.list_runs() if r["trigger"] == "RUN_JOB_TASK"]
    assert len(children) == 2
    expected = gold([landing / "2019-Oct.csv", landing / "2019-Nov.csv"])
    for child in children:
        run = ws.get_run(child["run_id"])
        assert run.results()["quarantine"] == "EXCLUDED"
        assert run.results()["gold_aggregates"] == "SUCCESS"
    last = ws.get_run(max(c["run_id"] for c in children))
    output = ws.json("runs", "get-output", str(last.task("gold_aggregates")["run_id"]))
    assert json.loads(output["notebook_output"]["result"]) == expected.summary()

    ws.write("read_gold.py", READ_GOLD)
    target = ws.dir / "gold.json"
    read = ws.run(
        ws.job([py_task("read", "read_gold.py", params=[str(target)])], file="read.yml"), timeout=300
    )
    assert read.run.result_state == "SUCCESS", [task_message(t) for t in read.run.tasks]
    published = json.loads(target.read_text())
    assert {day: tuple(v) for day, v in published["daily"].items()} == expected.daily
    assert published["funnel"] == expected.funnel
    assert [tuple(b) for b in published["top_brands"]] == expected.top_brands


def test_a_reject_rate_over_the_limit_quarantines_the_month(ws: Workspace, landing: Path) -> None:
    done = ws.run(
        EXAMPLE,
        "--job",
        "ecommerce_medallion",
        "--var",
        "max_reject_rate=0.0001",
        "-p",
        "month=Nov",
        timeout=600,
    )
    assert done.run.result_state == "FAILED"
    results = done.run.results()
    assert results["reject_gate"] == "SUCCESS"
    assert results["gold_aggregates"] == "EXCLUDED"
    assert results["quarantine"] == "FAILED"
    message = task_message(done.run.task("quarantine"))
    assert "is above the limit; rejected rows kept in workspace.quarantine.events_nov" in message
    expected = gold([landing / "2019-Nov.csv"])
    logs = ws.cli("runs", "logs", str(done.run.run_id), "--task", "quality_check").stdout
    assert f"bronze {expected.bronze_rows}, silver {expected.silver_rows}," in logs, logs
