"""The Jobs UI's catalog and compute pages over a real store, a real Delta table and a real volume."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
from api_harness import serving
from deltalake import write_deltalake

from sluice.api.app import create_app
from sluice.engine.clock import now_ms
from sluice.store import Store
from sluice.store.catalog import CatalogStore
from sluice.store.tokens import create_token


def test_catalog_schema_table_volume_and_compute_pages(tmp_path: Path) -> None:
    store = Store.open(None, tmp_path)
    token, _ = create_token(store, comment="ui", now=now_ms(), user_name="alice")
    catalog = CatalogStore.of(store, tmp_path)
    now = now_ms()
    catalog.create_catalog("workspace", now)
    catalog.create_schema("workspace", "gold", now)
    location = catalog.table_location("workspace", "gold", "daily_revenue")
    rows = pa.table({"day": [f"2019-10-{i % 31 + 1:02d}" for i in range(200)], "revenue": list(range(200))})
    write_deltalake(str(location), rows)
    write_deltalake(str(location), rows.slice(0, 5), mode="append")
    catalog.put_table("workspace", "gold", "daily_revenue", location=str(location), now=now)
    record, _ = catalog.create_volume("workspace", "gold", "exports", now)
    folder = Path(record.location) / "2019" / "oct"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text("day,revenue\n2019-10-01,5\n")
    app = create_app(store, home=tmp_path)
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            client.post("/login", data={"token": token})
            assert 'href="/catalog/workspace/gold"' in client.get("/catalog").text
            schema = client.get("/catalog/workspace/gold").text
            assert 'href="/catalog/workspace/gold/daily_revenue"' in schema
            assert 'href="/catalog/workspace/gold/volumes/exports"' in schema
            table = client.get("/catalog/workspace/gold/daily_revenue").text
            assert "<td>revenue</td><td><code>long</code></td>" in table
            sample = table[table.index('id="sample"') :]
            assert (
                sample[: sample.index("</table>")].count("<tr>") == 1 + 100
            )  # header and the first 100 rows
            assert re.search(r"<td>1</td><td>[^<]*</td><td>WRITE</td>", table)  # the append, version 1
            top = client.get("/catalog/workspace/gold/volumes/exports").text
            assert 'href="?path=2019">2019/</a>' in top
            deep = client.get("/catalog/workspace/gold/volumes/exports", params={"path": "2019/oct"}).text
            assert "part-0.csv" in deep
            assert "/Volumes/workspace/gold/exports/2019/oct" in deep
            outside = client.get("/catalog/workspace/gold/volumes/exports", params={"path": "../../.."})
            assert outside.status_code in (400, 404)
            compute = client.get("/compute").text
            assert "No cluster is running" in compute
            assert "Sluice keeps no record of a stopped cluster" in compute  # not an unexplained list
            bad = client.post("/compute/start", data={"name": "no good!", "csrf": _csrf(compute)})
            assert "cluster name &#39;no good!&#39; is not valid" in bad.text
            missing = client.post("/compute/ghost/stop", data={"csrf": _csrf(compute)})
            assert "no cluster named &#39;ghost&#39; is running" in missing.text
    finally:
        store.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)
