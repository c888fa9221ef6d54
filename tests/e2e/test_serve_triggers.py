"""File-arrival and table-update triggers fire under a live ``sluice serve``.

The server is started as a process, jobs with the triggers are created through its Jobs API, a file
arrives in a volume and a new version of a catalog Delta table is committed (with ``deltalake``, as any
writer outside Sluice would), and runs with the right trigger start and succeed. The scheduler of
``sluice serve`` used to have no catalog: a table-update trigger never fired.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs; the test writes Delta commits with it
from deltalake import write_deltalake

from e2e.helpers import Workspace, wait_for
from e2e.test_api_sdk import start_server
from sluice.engine.clock import now_ms
from sluice.runtime.paths import to_local
from sluice.store import Store
from sluice.store.catalog import CatalogStore
from sluice.store.scheduler import TriggerRow, get_trigger

LANDING = "/Volumes/workspace/default/landing/"
TABLE = "workspace.default.orders"
#: Writes its arguments as a JSON list into the file named by the first one.
RECORD = "import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n"
#: The scheduler lists and reads every 5 s and ticks every second; a run then takes a few seconds.
TIMEOUT = 60.0


def orders(*ids: int) -> pa.Table:
    return pa.table({"order_id": pa.array(ids, pa.int64())})


def trigger_row(ws: Workspace, job_id: int, kind: str) -> TriggerRow | None:
    with Store.open(None, ws.home) as store:
        return get_trigger(store, job_id, kind)


def triggered_run(http: httpx.Client, job_id: int) -> dict[str, Any] | None:
    runs = http.get("/jobs/runs/list", params={"job_id": job_id}).json().get("runs", [])
    ended = [r for r in runs if r["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")]
    return ended[0] if ended else None


def test_file_arrival_and_table_update_trigger_runs_under_serve(ws: Workspace) -> None:
    script = ws.write("record.py", RECORD)
    arrived_out, updated_out = ws.root / "arrived.json", ws.root / "updated.json"
    assert ws.cli("volumes", "create", "workspace.default.landing").returncode == 0
    landing = to_local(LANDING, ws.home)
    (landing / "old.csv").write_text("present before the trigger: never fires\n")

    # a Delta table in the store-owned catalog, at version 0 before the trigger exists
    with CatalogStore.open(None, ws.home) as catalog:
        location = catalog.table_location("workspace", "default", "orders")
        write_deltalake(str(location), orders(1, 2))
        catalog.put_table("workspace", "default", "orders", location=str(location), now=now_ms())

    token = ws.json("tokens", "create", "--comment", "e2e", "--output", "json")["token_value"]
    server = start_server(ws, token)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{server.url}/api/2.2", headers=headers, timeout=30) as http:

        def create(name: str, trigger: dict[str, Any], out: Path, *params: str) -> int:
            task = {
                "task_key": "record",
                "spark_python_task": {"python_file": str(script), "parameters": [str(out), *params]},
            }
            body = {"name": name, "trigger": trigger, "tasks": [task]}
            created = http.post("/jobs/create", json=body)
            assert created.status_code == 200, created.text
            return int(created.json()["job_id"])

        arrival_job = create(
            "on-arrival",
            {"file_arrival": {"url": LANDING}},
            arrived_out,
            "{{job.trigger.type}}",
            "{{job.trigger.file_arrival.location}}",
        )
        table_job = create(
            "on-update",
            {"table_update": {"table_names": [TABLE], "condition": "ANY_UPDATED"}},
            updated_out,
            "{{job.trigger.type}}",
            "{{job.trigger.table_update.updated_tables}}",
        )

        # the scheduler took its baselines: the files present, and the table's version read from the catalog
        wait_for(
            lambda: trigger_row(ws, arrival_job, "file_arrival"),
            timeout=TIMEOUT,
            what="the scheduler to list the landing volume",
            interval=0.2,
        )
        baseline = wait_for(
            lambda: trigger_row(ws, table_job, "table_update"),
            timeout=TIMEOUT,
            what=f"the scheduler to read {TABLE}'s version from the catalog (is the catalog wired in?)",
            interval=0.2,
        )
        assert baseline.state["tables"]["base"] == {TABLE: 0}

        (landing / "orders-2026-12-06.csv").write_text("order_id\n3\n")
        write_deltalake(str(location), orders(3), mode="append")

        arrival = wait_for(
            lambda: triggered_run(http, arrival_job),
            timeout=TIMEOUT,
            what="the file-arrival run",
            interval=0.2,
        )
        update = wait_for(
            lambda: triggered_run(http, table_job), timeout=TIMEOUT, what="the table-update run", interval=0.2
        )

    assert arrival["trigger"] == "FILE_ARRIVAL"
    assert arrival["state"]["result_state"] == "SUCCESS", arrival["state"]
    assert arrival["trigger_info"] == {"file_arrival_location": LANDING}
    assert json.loads(arrived_out.read_text()) == ["file_arrival", LANDING]

    assert update["trigger"] == "TABLE"
    assert update["state"]["result_state"] == "SUCCESS", update["state"]
    info = update["trigger_info"]["table_update"]
    assert info["updated_tables"] == [TABLE]
    assert info["tables"][TABLE]["version"] == 1
    assert json.loads(updated_out.read_text()) == ["table", json.dumps([TABLE])]
