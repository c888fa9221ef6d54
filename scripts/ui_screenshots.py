"""Take the screenshots of docs/guide/ui.md: a real ``sluice serve`` on a fresh home, real runs, Chromium.

Run: ``.venv/bin/python scripts/ui_screenshots.py [--out docs/guide/ui]`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scripts(root: Path) -> dict[str, str]:
    files = {
        "step.py": "import sys, time\ntime.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.5)\n"
        "print('processed', *sys.argv[2:])\n",
        "funnel.py": "import sys, time\ntime.sleep(0.8)\nif sys.argv[1] == 'true':\n"
        "    raise ValueError('funnel: 12 purchases have no matching view event (session 41d7)')\n"
        "print('funnel ok')\n",
    }
    out = {}
    for name, text in files.items():
        (root / name).write_text(text)
        out[name] = str(root / name)
    return out


def _medallion(s: dict[str, str]) -> dict[str, Any]:
    def py(key: str, script: str, *params: str, deps: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
        task: dict[str, Any] = {
            "task_key": key,
            "spark_python_task": {"python_file": s[script], "parameters": list(params)},
        }
        if deps:
            task["depends_on"] = [{"task_key": d} for d in deps]
        task.update(more)
        return task

    return {
        "name": "ecommerce_medallion",
        "parameters": [{"name": "month", "default": "Oct"}, {"name": "fail_funnel", "default": "false"}],
        "schedule": {"quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "UTC"},
        "tasks": [
            py("ingest_bronze", "step.py", "1.0", "bronze"),
            py("clean_silver", "step.py", "0.8", "silver", deps=("ingest_bronze",)),
            {
                "task_key": "quality_gate",
                "depends_on": [{"task_key": "clean_silver"}],
                "condition_task": {"op": "NOT_EQUAL", "left": "{{job.parameters.month}}", "right": ""},
            },
            py("gold_daily_revenue", "step.py", "0.6", "revenue", deps=())
            | {"depends_on": [{"task_key": "quality_gate", "outcome": "true"}]},
            py("gold_funnel", "funnel.py", "{{job.parameters.fail_funnel}}")
            | {"depends_on": [{"task_key": "quality_gate", "outcome": "true"}]},
            py("gold_top_brands", "step.py", "0.5", "brands")
            | {"depends_on": [{"task_key": "quality_gate", "outcome": "true"}]},
            py("quarantine", "step.py", "0.2", "quarantine")
            | {"depends_on": [{"task_key": "quality_gate", "outcome": "false"}]},
            {
                "task_key": "publish",
                "depends_on": [
                    {"task_key": "gold_daily_revenue"},
                    {"task_key": "gold_funnel"},
                    {"task_key": "gold_top_brands"},
                ],
                "spark_python_task": {"python_file": s["step.py"], "parameters": ["0.3", "publish"]},
            },
        ],
    }


def _catalog(home: Path) -> None:
    """A gold table and a landing volume, as the ecommerce example leaves them."""
    import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
    from deltalake import write_deltalake

    from sluice.engine.clock import now_ms
    from sluice.store import Store
    from sluice.store.catalog import CatalogStore

    with Store.open(None, home) as store:
        catalog, now = CatalogStore.of(store, home), now_ms()
        catalog.create_catalog("workspace", now)
        catalog.create_schema("workspace", "gold", now)
        location = catalog.table_location("workspace", "gold", "daily_revenue")
        days = [f"2019-10-{d:02d}" for d in range(1, 32)]
        table = pa.table(
            {
                "event_date": days,
                "purchases": [1200 + 37 * d % 400 for d in range(31)],
                "revenue": [round(310_000 + 9_137.5 * (d % 7), 2) for d in range(31)],
            }
        )
        write_deltalake(str(location), table)
        write_deltalake(str(location), table.slice(0, 3), mode="overwrite")
        write_deltalake(str(location), table, mode="overwrite")
        catalog.put_table("workspace", "gold", "daily_revenue", location=str(location), now=now)
        record, _ = catalog.create_volume("workspace", "gold", "exports", now)
        Path(record.location).mkdir(parents=True, exist_ok=True)
        (Path(record.location) / "daily_revenue.csv").write_text("event_date,revenue\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/guide/ui")
    out = Path(parser.parse_args().out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="sluice-shots-"))
    env = {**os.environ, "SLUICE_HOME": str(home), "SLUICE_CACHE_DIR": "off"}
    sluice = [sys.executable, "-m", "sluice.cli.main"]
    token = subprocess.run(
        [*sluice, "tokens", "create", "--comment", "screenshots", "--output", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    import json

    value = json.loads(token)["token_value"]
    _catalog(home)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*sluice, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        api = httpx.Client(
            base_url=f"{url}/api/2.2", headers={"Authorization": f"Bearer {value}"}, timeout=30
        )
        scripts = _scripts(home)
        job_id = api.post("/jobs/create", json=_medallion(scripts)).json()["job_id"]
        api.post(
            "/jobs/create",
            json={
                "name": "orders_hourly_export",
                "trigger": {"pause_status": "PAUSED", "periodic": {"interval": 1, "unit": "HOURS"}},
                "tasks": [
                    {
                        "task_key": "export",
                        "spark_python_task": {"python_file": scripts["step.py"], "parameters": ["0.1"]},
                    }
                ],
            },
        )
        api.post(
            "/jobs/create",
            json={
                "name": "clickstream_landing_watch",
                "trigger": {"file_arrival": {"url": "/Volumes/workspace/ecommerce/landing"}},
                "tasks": [
                    {
                        "task_key": "load",
                        "spark_python_task": {"python_file": scripts["step.py"], "parameters": ["0.1"]},
                    }
                ],
            },
        )
        runs = []
        for month, fail in (("Oct", "false"), ("Nov", "false"), ("Nov", "true")):
            runs.append(
                api.post(
                    "/jobs/run-now",
                    json={"job_id": job_id, "job_parameters": {"month": month, "fail_funnel": fail}},
                ).json()["run_id"]
            )
            while (
                api.get("/jobs/runs/get", params={"run_id": runs[-1]}).json()["state"]["life_cycle_state"]
                != "TERMINATED"
            ):
                time.sleep(0.3)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"{url}/jobs")
            page.screenshot(path=str(out / "login.png"))
            page.fill("#token", value)
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{url}/jobs")
            page.screenshot(path=str(out / "jobs.png"))
            page.goto(f"{url}/jobs/{job_id}")
            page.screenshot(path=str(out / "job.png"), full_page=True)
            page.click("#run-with-params")
            page.screenshot(path=str(out / "run-with-parameters.png"))
            page.goto(f"{url}/jobs/{job_id}/runs/{runs[-1]}")
            page.screenshot(path=str(out / "run.png"), full_page=True)
            page.click("#repair-button")
            page.wait_for_selector("dialog#repair-dialog[open]")
            page.screenshot(path=str(out / "repair.png"))
            page.goto(f"{url}/jobs/{job_id}/runs/{runs[-1]}")
            page.click('svg.graph g.node[data-task="gold_funnel"] a')
            page.wait_for_selector("#log-stderr:has-text('Traceback')")
            page.screenshot(path=str(out / "task-run.png"), full_page=True)
            page.goto(f"{url}/catalog/workspace/gold/daily_revenue")
            page.screenshot(path=str(out / "table.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
