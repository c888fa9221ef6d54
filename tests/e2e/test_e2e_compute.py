"""Spark tasks through `sluice run`: a job cluster per run shared by its tasks, tables kept in the catalog.

The CSV rows are from the public "eCommerce behavior data from multi category store" dataset (REES46
Marketing Platform, https://rees46.com; Kaggle mkechinov/ecommerce-behavior-data-from-multi-category-store),
see shared/data/ecommerce/SOURCES.md beside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from e2e.helpers import Workspace, py_task, task_message

#: The real rows, in the shared folder beside the checkout (tests/unit/test_example_data.py reads them too).
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "ecommerce" / "2019-Oct-head-4999.csv"

BRONZE = """
import os, sys
from sluice.runtime.spark import endpoint, spark
assert "SPARK_REMOTE" not in os.environ  # the job cluster starts on first use
df = spark.read.csv("/Volumes/workspace/ecommerce/ecommerce_data/2019-Oct.csv", header=True, inferSchema=True)
df.write.mode("overwrite").saveAsTable("workspace.bronze.events")
open(sys.argv[1], "w").write(endpoint())
"""

SILVER = """
import os, sys
from pyspark.sql import functions as F
from sluice.runtime.spark import endpoint, spark
events = spark.table("workspace.bronze.events")
cleaned = events.filter(F.col("price") > 0).withColumn("brand", F.coalesce(F.col("brand"), F.lit("unknown")))
cleaned.write.mode("overwrite").saveAsTable("workspace.silver.ecommerce_cleaned")
open(sys.argv[1], "w").write(endpoint())
"""

READ = """
import json, sys
from sluice.runtime.spark import spark
count = spark.table("workspace.silver.ecommerce_cleaned").count()
open(sys.argv[1], "w").write(json.dumps({"count": count}))
"""


def _servers_left(home: Path) -> list[int]:
    """Pids of processes whose working directory is a server directory under ``home``."""
    work = str(home / "compute" / "work")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(work):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_spark_tasks_share_a_job_cluster_and_tables_outlive_it(ws: Workspace) -> None:
    created = ws.cli("volumes", "create", "workspace.ecommerce.ecommerce_data")
    assert created.returncode == 0, created.stderr
    if not SAMPLE.exists():
        pytest.skip(f"the real REES46 sample {SAMPLE.name} is not available: this test reads it")
    shutil.copy(
        SAMPLE,
        ws.home / "volumes" / "workspace" / "ecommerce" / "ecommerce_data" / "2019-Oct.csv",
    )
    ws.write("bronze.py", BRONZE)
    ws.write("silver.py", SILVER)
    ws.write("read.py", READ)
    a, b, c = (str(ws.dir / n) for n in ("a.txt", "b.txt", "c.json"))
    tasks = [
        py_task("bronze", "bronze.py", params=[a]),
        py_task("silver", "silver.py", params=[b], deps=["bronze"]),
    ]
    done = ws.run(ws.job(tasks, file="medallion.yml"), timeout=240)
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    endpoint = Path(a).read_text()
    assert endpoint.startswith("sc://127.0.0.1:")
    assert Path(b).read_text() == endpoint, "the run's tasks share one job cluster"
    assert _servers_left(ws.home) == [], "the job cluster stops with its run"

    done = ws.run(ws.job([py_task("read", "read.py", params=[c])], file="reader.yml"), timeout=240)
    assert done.run.result_state == "SUCCESS", [task_message(t) for t in done.run.tasks]
    assert json.loads(Path(c).read_text()) == {"count": 4999 - 5}  # 5 rows have price 0.00 (SOURCES.md)
    assert _servers_left(ws.home) == []

    listed = ws.json("catalog", "list", "workspace.silver", "--output", "json")
    assert [i["name"] for i in listed["items"]] == ["workspace.silver.ecommerce_cleaned"]
    described = ws.json("catalog", "describe", "workspace.silver.ecommerce_cleaned", "--output", "json")
    assert [h["version"] for h in described["history"]] == [0]
    assert {col["name"] for col in described["columns"]} >= {"event_time", "price", "brand"}
