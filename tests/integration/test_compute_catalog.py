"""The store-owned catalog through real Sail servers: task scripts that write and read tables by name.

The CSV rows are the first 4,999 rows of the public "eCommerce behavior data from multi category store"
dataset (REES46 Marketing Platform, https://rees46.com; Kaggle
mkechinov/ecommerce-behavior-data-from-multi-category-store), as described in
/work/shared/data/ecommerce/SOURCES.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice.catalog.session import sail_env
from sluice.compute.server import start_server
from sluice.store.catalog import CatalogStore

DATA = Path(__file__).resolve().parents[2] / "examples" / "ecommerce" / "2019-Oct-head-4999.csv"
SHARED = Path("/work/shared/data/ecommerce/2019-Oct-head-4999.csv")

WRITER = """
import json, sys
from pyspark.sql import functions as F
from sluice.runtime.spark import spark

spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.ecommerce")
spark.sql("CREATE VOLUME IF NOT EXISTS workspace.ecommerce.ecommerce_data")
spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.silver")
df = spark.read.csv("/Volumes/workspace/ecommerce/ecommerce_data/2019-Oct.csv", header=True, inferSchema=True)
df.write.mode("overwrite").saveAsTable("workspace.silver.t")                 # version 0: 4999 rows
df.filter(F.col("event_type") == "purchase").write.mode("overwrite").saveAsTable("workspace.silver.t")  # 1
df.limit(10).write.mode("append").saveAsTable("silver.t")                    # 2: two-part name
spark.sql(
    "CREATE OR REPLACE TABLE workspace.silver.by_type AS "
    "SELECT event_type, count(*) AS n FROM workspace.silver.t GROUP BY event_type"
)
history = [r.version for r in spark.sql("DESCRIBE HISTORY workspace.silver.t").collect()]
types = {f.name: f.dataType.simpleString() for f in spark.table("workspace.silver.t").schema.fields}
print(json.dumps({"count": spark.table("workspace.silver.t").count(), "history": history, "types": types}))
"""

READER = """
import json
from sluice.runtime.spark import get_spark

spark = get_spark()
out = {
    "count": spark.table("workspace.silver.t").count(),
    "v0": spark.sql("SELECT count(*) AS n FROM workspace.silver.t VERSION AS OF 0").collect()[0].n,
    "by_type": {r.event_type: r.n for r in spark.table("workspace.silver.by_type").collect()},
}
spark.sql("DROP TABLE workspace.silver.by_type")
out["after_drop"] = sorted(r.tableName for r in spark.sql("SHOW TABLES IN workspace.silver").collect())
print(json.dumps(out))
"""


def _run(script: Path, home: Path, endpoint: str) -> dict[str, object]:
    env = {**os.environ, "SLUICE_HOME": str(home), "SPARK_REMOTE": endpoint}
    env.pop("SLUICE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_tables_persist_across_processes_and_servers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = DATA if DATA.exists() else SHARED
    volume = home / "volumes" / "workspace" / "ecommerce" / "ecommerce_data"
    volume.mkdir(parents=True)
    shutil.copy(source, volume / "2019-Oct.csv")
    writer, reader = tmp_path / "writer.py", tmp_path / "reader.py"
    writer.write_text(textwrap.dedent(WRITER))
    reader.write_text(textwrap.dedent(READER))
    with CatalogStore.open(None, home) as catalog:
        env = sail_env(catalog.list_catalogs())

    first = start_server(home, env=env)
    try:
        wrote = _run(writer, home, first.endpoint)
    finally:
        first.stop()
    assert wrote["count"] == 54 + 10  # the 54 purchases, then 10 rows appended
    assert wrote["history"] == [2, 1, 0]
    types = wrote["types"]
    assert isinstance(types, dict)
    assert types["event_time"].startswith("timestamp")  # inferSchema on "2019-10-01 00:00:00 UTC"
    assert types["price"] == "double"
    assert types["user_id"] == "bigint"

    with CatalogStore.open(None, home) as catalog:
        tables = {t.full_name: t for t in catalog.list_tables()}
        assert set(tables) == {"workspace.silver.t", "workspace.silver.by_type"}
        assert tables["workspace.silver.t"].location == str(home / "warehouse" / "workspace" / "silver" / "t")
        assert catalog.get_volume("workspace", "ecommerce", "ecommerce_data") is not None

    second = start_server(home, env=env)  # a new server: its memory catalog starts empty
    try:
        read = _run(reader, home, second.endpoint)
    finally:
        second.stop()
    assert read["count"] == 64
    assert read["v0"] == 4999
    by_type = read["by_type"]
    assert isinstance(by_type, dict)
    assert sum(by_type.values()) == 64
    assert read["after_drop"] == ["t"]
    assert not (home / "warehouse" / "workspace" / "silver" / "by_type").exists()
    with CatalogStore.open(None, home) as catalog:
        assert [t.full_name for t in catalog.list_tables()] == ["workspace.silver.t"]


@pytest.mark.parametrize("statement", ["CREATE VOLUME workspace.nope.v"])
def test_create_volume_needs_its_schema(tmp_path: Path, statement: str) -> None:
    with CatalogStore.open(None, tmp_path) as catalog:
        env = sail_env(catalog.list_catalogs())
    script = tmp_path / "s.py"
    script.write_text(
        "from sluice.runtime.spark import spark\n"
        "try:\n"
        f"    spark.sql({statement!r})\n"
        "except Exception as exc:\n"
        "    import json; print(json.dumps({'error': str(exc)}))\n"
    )
    server = start_server(tmp_path, env=env)
    try:
        out = _run(script, tmp_path, server.endpoint)
    finally:
        server.stop()
    assert "schema 'workspace.nope' does not exist" in str(out["error"])
