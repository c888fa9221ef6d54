"""The Jobs UI over the in-process app: auth (login, cookie, Bearer, CSRF), pages, links, offline /docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_harness import serving

from sluice.api.app import create_app
from sluice.engine.clock import now_ms
from sluice.store import Store
from sluice.store.tokens import create_token

JOB = {
    "name": "Nightly sales",
    "parameters": [{"name": "month", "default": "Oct"}],
    "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC"},
    "tasks": [
        {"task_key": "ingest", "spark_python_task": {"python_file": "/x.py"}},
        {
            "task_key": "check",
            "depends_on": [{"task_key": "ingest"}],
            "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
        },
        {
            "task_key": "gold",
            "depends_on": [{"task_key": "check", "outcome": "true"}],
            "spark_python_task": {"python_file": "/x.py"},
        },
        {
            "task_key": "months",
            "for_each_task": {
                "inputs": "[1,2]",
                "task": {"task_key": "months_iteration", "spark_python_task": {"python_file": "/x.py"}},
            },
        },
    ],
}


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    store = Store.open(None, tmp_path)
    token, _ = create_token(store, comment="ui", now=now_ms(), user_name="alice")
    try:
        app = create_app(store, base_url="https://sluice.example.com")
        with serving(app) as url, httpx.Client(base_url=url, follow_redirects=True, timeout=30) as client:
            yield client, token
    finally:
        store.close()


def _job(client: httpx.Client, token: str, **settings: object) -> int:
    body = {**JOB, **settings}
    r = client.post("/api/2.2/jobs/create", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return int(r.json()["job_id"])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def test_pages_redirect_to_login_and_data_calls_answer_401(ui: tuple[httpx.Client, str]) -> None:
    client, _ = ui
    r = client.get("/jobs/7?older_than=3", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fjobs%2F7%3Folder_than%3D3"
    assert client.get("/", follow_redirects=False).headers["location"] == "/jobs"
    assert client.get("/jobs/7/runs/9/events").status_code == 401
    page = client.get("/login").text
    assert "sluice tokens create" in page


def test_login_sets_an_httponly_strict_cookie_and_refuses_bad_tokens(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    bad = client.post("/login", data={"token": "dapi-nope", "next": "/jobs"})
    assert bad.status_code == 401
    assert "No such token" in bad.text
    r = client.post("/login", data={"token": token, "next": "//evil.example/x"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/jobs"  # never off-site
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert client.get("/jobs").status_code == 200


def test_bearer_header_is_enough_and_forms_need_the_csrf_token(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    job_id = _job(client, token)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/jobs/{job_id}", headers=bearer).status_code == 200
    client.post("/login", data={"token": token})
    page = client.get(f"/jobs/{job_id}").text
    refused = client.post(f"/jobs/{job_id}/run-now", data={"csrf": "0" * 64}, follow_redirects=False)
    assert refused.status_code == 403
    other_site = client.post(
        f"/jobs/{job_id}/run-now",
        data={"csrf": _csrf(page)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert other_site.status_code == 403
    ran = client.post(
        f"/jobs/{job_id}/run-now", data={"csrf": _csrf(page), "param.month": "Nov"}, follow_redirects=False
    )
    assert ran.status_code == 303
    run_url = ran.headers["location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    assert run_url == f"/jobs/{job_id}/runs/{run_id}"
    got = client.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=bearer).json()
    assert got["run_page_url"] == f"https://sluice.example.com/jobs/{job_id}/runs/{run_id}"
    assert got["job_parameters"][0]["value"] == "Nov"
    assert "month=Nov" in client.get(run_url).text


def test_job_page_shows_graph_trigger_and_settings(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    job_id = _job(client, token)
    client.post("/login", data={"token": token})
    page = client.get(f"/jobs/{job_id}").text
    assert '<g class="node" data-task="gold">' in page
    assert '<text class="edge-label"' in page
    assert ">true</text>" in page  # the condition outcome on the check -> gold edge
    assert ">for each</text>" in page
    assert ">if/else</text>" in page
    assert "Cron 0 0 2 * * ? (UTC)" in page
    settings = client.get(f"/jobs/{job_id}/settings").json()  # loaded when the Settings section opens
    assert settings["settings"]["tasks"][2]["depends_on"] == [{"task_key": "check", "outcome": "true"}]
    assert settings["creator_user_name"] == "alice"
    assert 'name="param.month" value="Oct"' in page
    paused = client.post(
        f"/jobs/{job_id}/pause", data={"csrf": _csrf(page), "to": "PAUSED"}, follow_redirects=False
    )
    assert paused.status_code == 303
    assert "Resume</button>" in client.get(f"/jobs/{job_id}").text
    extra = {
        "task_key": "extra",
        "depends_on": [{"task_key": "gold"}],
        "spark_python_task": {"python_file": "/x.py"},
    }
    updated = client.post(
        "/api/2.2/jobs/update",
        json={"job_id": job_id, "new_settings": {"tasks": [extra]}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert updated.status_code == 200, updated.text
    assert 'data-task="extra"' in client.get(f"/jobs/{job_id}").text  # the graph follows the job


def test_jobs_list_searches_by_part_of_the_name_and_pages(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    for i in range(30):
        _job(client, token, name=f"report_{i:02d}", schedule=None)
    _job(client, token, name="100%_special", schedule=None)
    client.post("/login", data={"token": token})
    first = client.get("/jobs").text
    assert "report_00" in first
    assert "report_29" not in first
    more = re.search(r'href="(/jobs\?q=&amp;after=\d+)"', first)
    assert more
    second = client.get(more.group(1).replace("&amp;", "&")).text
    assert "report_29" in second
    found = client.get("/jobs", params={"q": "ORT_1"}).text
    assert found.count('class="muted">#') == 10
    assert "100%_special" in client.get("/jobs", params={"q": "0%_"}).text
    assert "100%_special" not in client.get("/jobs", params={"q": "0%x"}).text


def test_docs_are_served_without_any_external_request(ui: tuple[httpx.Client, str]) -> None:
    client, _ = ui
    page = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "openapi.json" in page


def test_auth_off_needs_no_login(tmp_path: Path) -> None:
    store = Store.open(None, tmp_path)
    try:
        app = create_app(store, auth=False)
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/jobs").status_code == 200
            assert client.get("/login", follow_redirects=False).headers["location"] == "/jobs"
    finally:
        store.close()


def test_runs_matrix_run_page_and_task_run_pages_show_what_the_store_holds(tmp_path: Path) -> None:
    store = Store.open(None, tmp_path)
    token, _ = create_token(store, comment="ui", now=now_ms(), user_name="alice")
    settings = {
        "name": "shapes",
        "tasks": [
            {"task_key": "ingest", "spark_python_task": {"python_file": "/x.py"}},
            {
                "task_key": "report",
                "depends_on": [{"task_key": "ingest"}],
                "sql_task": {"file": {"path": "/q.sql"}},
            },
            {"task_key": "nb", "notebook_task": {"notebook_path": "/n"}},
            {
                "task_key": "months",
                "for_each_task": {
                    "inputs": "[1,2]",
                    "task": {"task_key": "m", "notebook_task": {"notebook_path": "/n"}},
                },
            },
            {"task_key": "child", "run_job_task": {"job_id": 99}},
        ],
    }
    job_id = store.create_job(settings, now=now_ms()).job_id
    now = now_ms()
    run, _ = store.create_run(
        job_id=job_id,
        settings=settings,
        run_name="shapes",
        run_type="JOB_RUN",
        trigger="ONE_TIME",
        job_parameters=[],
        overriding_parameters={},
        now=now,
        queue_enabled=True,
        max_concurrent_runs=1,
    )

    def task_run(key: str, result: str, attempt: int = 0, **fields: object) -> int:
        tr = store.create_task_run(
            job_run_id=run.run_id, task_key=key, attempt_number=attempt, state="TERMINATED", now=now
        )
        store.update_task_run(tr.run_id, result_state=result, start_time=now, end_time=now + 1200, **fields)
        return tr.run_id

    first = task_run(
        "ingest", "FAILED", error="ValueError: bad row 7", error_trace="Traceback ...\nValueError: bad row 7"
    )
    logs = tmp_path / "ingest-attempt"
    logs.mkdir()
    (logs / "stdout.log").write_text("héllo\nrow 7 is bad\n")
    retry = task_run("ingest", "SUCCESS", attempt=1, original_attempt_run_id=first, attempt_dir=str(logs))
    store.put_task_values(run.run_id, "ingest", {"rows": 1234})
    report = task_run(
        "report",
        "SUCCESS",
        output={
            "sql_output": {
                "columns": [{"name": "brand", "type": "string"}],
                "rows": [{"brand": "acme<b>"}],
                "truncated": False,
            }
        },
    )
    nb_dir = tmp_path / "nb-attempt"
    nb_dir.mkdir()
    (nb_dir / "notebook.html").write_text(
        "<html><body><p>executed cell 1</p><script>alert(1)</script></body></html>"
    )
    notebook = task_run(
        "nb", "SUCCESS", attempt_dir=str(nb_dir), output={"notebook_output": {"result": "42 rows"}}
    )
    months = task_run("months", "SUCCESS")
    other = store.create_job({"name": "child job", "tasks": []}, now=now).job_id
    child_run, _ = store.create_run(
        job_id=other, settings={"name": "child job", "tasks": []}, run_name="child job", run_type="JOB_RUN",
        trigger="ONE_TIME", job_parameters=[], overriding_parameters={}, now=now, queue_enabled=True,
        max_concurrent_runs=1,
    )  # fmt: skip
    runs_child = task_run("child", "SUCCESS", output={"run_job_output": {"run_id": child_run.run_id}})
    for i in range(2):
        it = store.create_task_run(
            job_run_id=run.run_id,
            task_key="m",
            attempt_number=0,
            state="TERMINATED",
            now=now,
            parent_task_run_id=months,
            iteration=i,
        )
        store.update_task_run(it.run_id, result_state="SUCCESS", start_time=now, end_time=now + 10)
    store.update_run(
        run.run_id, state="TERMINATED", result_state="SUCCESS", start_time=now, end_time=now + 5000
    )

    app = create_app(store)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with serving(app) as url, httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            job_page = client.get(f"/jobs/{job_id}").text
            assert f'<a class="cell state-succeeded" href="/jobs/{job_id}/runs/{retry}">' in job_page
            assert ">run job</text>" in job_page
            run_page = client.get(f"/jobs/{job_id}/runs/{run.run_id}").text
            assert "For-each iterations" in run_page
            assert run_page.count("<td>1</td><td>1</td>") + run_page.count("<td>0</td><td>1</td>") == 2
            assert "ingest #2" in run_page  # the retry has its own bar in the timeline
            failed = client.get(f"/jobs/{job_id}/runs/{first}").text
            assert "ValueError: bad row 7" in failed
            assert f'<option value="/jobs/{job_id}/runs/{retry}">#2' in failed  # the attempt selector
            assert "1234" in client.get(f"/jobs/{job_id}/runs/{retry}").text  # task values
            tail = client.get(f"/jobs/{job_id}/runs/{retry}/log", params={"stream": "stdout"}).json()
            assert tail == {"text": "héllo\nrow 7 is bad\n", "offset": 20, "done": True}
            rest = client.get(
                f"/jobs/{job_id}/runs/{retry}/log", params={"stream": "stdout", "offset": 7}
            ).json()
            assert rest["text"] == "row 7 is bad\n"
            none = client.get(f"/jobs/{job_id}/runs/{retry}/log", params={"stream": "stderr"}).json()
            assert none == {"text": "", "offset": 0, "done": True}
            sql = client.get(f"/jobs/{job_id}/runs/{report}").text
            assert "<td>acme&lt;b&gt;</td>" in sql
            nb = client.get(f"/jobs/{job_id}/runs/{notebook}").text
            assert f'<iframe class="notebook" sandbox src="/jobs/{job_id}/runs/{notebook}/notebook"' in nb
            assert "42 rows" in nb
            for_each = client.get(f"/jobs/{job_id}/runs/{months}").text
            assert for_each.count(">m [") == 2  # its iterations, each linked
            parent = client.get(f"/jobs/{job_id}/runs/{runs_child}").text
            assert f'<a href="/jobs/{other}/runs/{child_run.run_id}" id="child-run">' in parent
            frame = client.get(f"/jobs/{job_id}/runs/{notebook}/notebook")
            assert "executed cell 1" in frame.text
            assert frame.headers["content-security-policy"].startswith("sandbox")
            got = client.get("/api/2.2/jobs/runs/get", params={"run_id": run.run_id}).json()
            by_id = {t["run_id"]: t["run_page_url"] for t in got["tasks"]}
            assert by_id[first] == f"{url}/jobs/{job_id}/runs/{first}"
    finally:
        store.close()


def test_cancel_from_the_run_page_ends_a_queued_run(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    job_id = _job(client, token, max_concurrent_runs=1, queue={"enabled": True}, schedule=None)
    client.post("/login", data={"token": token})
    page = client.get(f"/jobs/{job_id}").text
    first = client.post(f"/jobs/{job_id}/run-now", data={"csrf": _csrf(page)}, follow_redirects=False)
    second = client.post(f"/jobs/{job_id}/run-now", data={"csrf": _csrf(page)}, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    queued = second.headers["location"]
    run_page = client.get(queued).text
    assert 'id="run-state">Queued</span>' in run_page
    done = client.post(f"{queued}/cancel", data={"csrf": _csrf(run_page)}, follow_redirects=False)
    assert done.headers["location"] == queued
    assert 'id="run-state">Canceled</span>' in client.get(queued).text
    refused = client.post(f"{queued}/cancel", data={}, follow_redirects=False)
    assert refused.status_code == 403


def test_a_one_time_run_has_its_page_at_jobs_runs(ui: tuple[httpx.Client, str]) -> None:
    client, token = ui
    bearer = {"Authorization": f"Bearer {token}"}
    body = {"run_name": "ad hoc", "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "/x.py"}}]}
    run_id = client.post("/api/2.2/jobs/runs/submit", json=body, headers=bearer).json()["run_id"]
    got = client.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=bearer).json()
    assert got["run_page_url"] == f"https://sluice.example.com/jobs/runs/{run_id}"
    page = client.get(f"/jobs/runs/{run_id}", headers=bearer)
    assert page.status_code == 200
    assert "ad hoc (one-time run)" in page.text
    assert f'data-events="/jobs/runs/{run_id}/events"' in page.text


def test_jobs_list_shows_the_periodic_next_fire_the_scheduler_will_use(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sluice.scheduler import Scheduler

    store = Store.open(None, tmp_path)
    one_task = [{"task_key": "main", "spark_python_task": {"python_file": "/x.py"}}]
    try:
        every_2h = {
            "name": "every two hours",
            "tasks": one_task,
            "trigger": {"periodic": {"interval": 2, "unit": "HOURS"}},
        }
        job_id = store.create_job(every_2h, now=now_ms()).job_id
        files = {
            "name": "on files",
            "tasks": one_task,
            "trigger": {"file_arrival": {"url": "/Volumes/main/raw/landing/"}},
        }
        store.create_job(files, now=now_ms())
        seen = now_ms() - 90 * 60_000  # the scheduler saw the trigger 90 minutes ago
        scheduler = Scheduler(store, clock=lambda: seen, scan_inline=True)
        try:
            scheduler.step(seen)
        finally:
            scheduler.close()
        expected = datetime.fromtimestamp((seen + 2 * 3_600_000) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        app = create_app(store, auth=False)
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            listing = client.get("/jobs").text
            assert f"Next: {expected}" in listing
            assert "When new files arrive in /Volumes/main/raw/landing/" in listing
            assert f"next {expected}" in client.get(f"/jobs/{job_id}").text
    finally:
        store.close()


def test_job_settings_as_bundle_yaml_load_back_as_the_same_job(
    ui: tuple[httpx.Client, str], tmp_path: Path
) -> None:
    from sluice.spec.bundle import load_raw_jobs

    client, token = ui
    job_id = _job(client, token)
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get(f"/jobs/{job_id}", headers=headers).text
    assert f'data-format="/jobs/{job_id}/settings?format=yaml"' in page
    assert "YAML (bundle resource)" in page
    text = client.get(f"/jobs/{job_id}/settings", params={"format": "yaml"}, headers=headers).text
    assert "\nresources:\n  jobs:\n    nightly_sales:\n      name: Nightly sales\n" in text
    bundle = tmp_path / "bundle" / "databricks.yml"
    bundle.parent.mkdir()
    bundle.write_text("bundle:\n  name: pasted\n" + text)
    (loaded,) = load_raw_jobs(bundle)
    stored = client.get("/api/2.2/jobs/get", params={"job_id": job_id}, headers=headers).json()["settings"]
    assert loaded.key == "nightly_sales"
    assert loaded.data == stored
    bad = client.get(f"/jobs/{job_id}/settings", params={"format": "toml"}, headers=headers)
    assert bad.status_code == 400
    assert "json or yaml" in bad.text
