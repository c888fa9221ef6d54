"""The Jobs UI in a real Chromium against a real ``sluice serve``: the seed's Job UI steps end to end.

Log in with a token, run a job from its page with other parameters, watch a task fail live on the run page
(server-sent events, no reload), open the failed task's output, fix the cause, repair the run from the
dialog, see it succeed. Playwright drives the system Chromium (/usr/bin/chromium; never
``playwright install``). Skipped only where Chromium cannot run, and never under CI=true (there it fails).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from e2e.helpers import Workspace
from e2e.test_api_sdk import Server, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 60_000


def require_chromium() -> Any:
    """Playwright's sync API; fail under CI=true, skip elsewhere, when Chromium cannot run here."""
    reason = None
    try:
        from playwright import sync_api
    except ImportError as exc:
        reason = f"the playwright package is missing ({exc}); pip install -e '.[dev]'"
    if reason is None and not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does it as root)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_api


@pytest.fixture
def browser_page(ws: Workspace) -> Iterator[Any]:
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        executable = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


@pytest.fixture
def server(ws: Workspace) -> Server:
    token = ws.json("tokens", "create", "--comment", "browser", "--output", "json")["token_value"]
    return start_server(ws, token)


def _create_job(server: Server, flag: str) -> int:
    ws = server.ws
    check = ws.write(
        "check.py",
        "import os, sys, time\n"
        "print('checking', sys.argv[1], flush=True)\n"
        "time.sleep(4)\n"
        "if not os.path.exists(sys.argv[1]):\n"
        "    raise RuntimeError(f'flag file {sys.argv[1]} is missing')\n"
        "print('quality ok')\n",
    )
    body = {
        "name": "browser-demo",
        "parameters": [{"name": "month", "default": "Oct"}],
        "tasks": [
            {"task_key": "prepare", "spark_python_task": {"python_file": str(ws.dir / "ok.py")}},
            {
                "task_key": "quality_check",
                "depends_on": [{"task_key": "prepare"}],
                "spark_python_task": {"python_file": str(check), "parameters": [flag]},
            },
            {
                "task_key": "publish",
                "depends_on": [{"task_key": "quality_check"}],
                "spark_python_task": {"python_file": str(ws.dir / "ok.py")},
            },
        ],
    }
    r = httpx.post(
        f"{server.url}/api/2.2/jobs/create",
        json=body,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["job_id"])


def test_run_watch_fail_open_output_repair_succeed(server: Server, browser_page: Any) -> None:
    page = browser_page
    flag = server.ws.dir / "quality.flag"
    job_id = _create_job(server, str(flag))
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))

    # Log in: a page without a session goes to the login page, which takes a token.
    page.goto(f"{server.url}/")
    assert "/login" in page.url
    page.fill("#token", server.token)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{server.url}/jobs")

    # The jobs list links the job; its page draws the graph and runs it.
    page.click("a:has-text('browser-demo')")
    page.wait_for_url(f"{server.url}/jobs/{job_id}")
    assert page.locator("svg.graph g.node").count() == 3
    page.click("#run-with-params")  # the form of the job's parameters, filled with their defaults
    page.wait_for_selector("dialog#params-dialog[open]")
    assert page.input_value('input[name="param.month"]') == "Oct"
    page.fill('input[name="param.month"]', "Nov")
    page.click("dialog#params-dialog button:has-text('Run')")
    page.wait_for_url(f"**/jobs/{job_id}/runs/*")
    run_url = page.url
    assert "month=Nov" in page.locator("dl.facts").inner_text()

    # While the check runs, its page tails its log live.
    page.wait_for_selector('svg.graph g.node.state-running[data-task="quality_check"] a')
    page.click('svg.graph g.node[data-task="quality_check"] a')
    page.wait_for_selector("#log:has-text('checking')")
    assert page.locator("#task-state").inner_text() == "Running"
    page.goto(run_url)
    page.evaluate("window.__notReloaded = true")

    # The failure arrives live: the node turns failed, the dependent upstream-failed, without a reload.
    page.wait_for_selector('svg.graph g.node.state-failed[data-task="quality_check"]')
    page.wait_for_selector('svg.graph g.node.state-upstream[data-task="publish"]')
    page.wait_for_selector("#run-state:has-text('Failed')")
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator('g.node[data-task="quality_check"] text.status').text_content().startswith("Failed")

    # The failed task's output: its error and trace, and its log.
    page.click('svg.graph g.node[data-task="quality_check"] a')
    page.wait_for_selector("#task-error")
    assert "is missing" in page.locator("#task-error").inner_text()
    page.wait_for_selector("#log:has-text('checking')")

    # Fix the cause, then repair from the dialog: the failed task and its dependent are preselected.
    flag.write_text("ok")
    page.goto(run_url)
    page.click("#repair-button")
    page.wait_for_selector("dialog#repair-dialog[open]")
    checked = page.eval_on_selector_all(
        "#repair-form input[name=task]", "els => els.filter(e => e.checked).map(e => e.value)"
    )
    assert sorted(checked) == ["publish", "quality_check"]
    page.click("#repair-form button:has-text('Repair run')")
    page.wait_for_url(run_url)
    page.wait_for_selector("#run-state:has-text('Succeeded')")
    page.wait_for_selector('svg.graph g.node.state-succeeded[data-task="publish"]')
    page.reload()
    assert page.locator("h2:has-text('Repair history')").count() == 1
    assert outside == [], f"requests left the host: {outside}"


def test_graph_pans_and_zooms_and_settings_show_as_json_or_bundle_yaml(
    server: Server, browser_page: Any
) -> None:
    page = browser_page
    job_id = _create_job(server, str(server.ws.dir / "unused.flag"))
    page.set_extra_http_headers({"Authorization": f"Bearer {server.token}"})
    page.set_viewport_size({"width": 900, "height": 800})
    page.goto(f"{server.url}/jobs/{job_id}")
    wrap = page.locator(".graph-wrap")
    page.wait_for_selector(".graph-tools:has-text('3 tasks')")

    def scale() -> float:
        return float(wrap.get_attribute("data-scale") or "nan")

    def transform() -> str:
        return str(page.eval_on_selector("svg.graph", "s => s.style.transform"))

    fitted = scale()
    assert 0 < fitted <= 1
    page.click(".graph-tools button[aria-label='Zoom in']")
    page.wait_for_function(f"document.querySelector('.graph-wrap').dataset.scale > {fitted}")
    zoomed = scale()
    assert zoomed == pytest.approx(fitted * 1.25, rel=0.01)

    # Ctrl + wheel zooms around the pointer; a drag pans; the graph's links still work after.
    box = wrap.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_function(f"document.querySelector('.graph-wrap').dataset.scale > {zoomed}")
    before = transform()
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 300, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, middle + 5, steps=5)
    page.mouse.up()
    page.wait_for_function(f"document.querySelector('svg.graph').style.transform !== {before!r}")
    assert page.url.endswith(f"/jobs/{job_id}")  # the drag was no click on a node
    wrap.focus()
    page.keyboard.press("0")  # the keyboard's Fit
    page.wait_for_function(f"document.querySelector('.graph-wrap').dataset.scale == {fitted:.3f}")

    # Settings: JSON (as jobs/get) by default; the toggle shows the bundle YAML resource.
    page.click("#settings summary")
    page.wait_for_selector("#settings-json:has-text('\"job_id\"')")
    page.click("#settings button:has-text('YAML')")
    page.wait_for_selector("#settings-json:has-text('resources:')")
    text = page.locator("#settings-json").inner_text()
    assert "  jobs:\n    browser_demo:\n      name: browser-demo\n" in text
    assert page.get_attribute("#settings button:has-text('YAML')", "aria-pressed") == "true"
    assert page.get_attribute("#settings button:has-text('JSON')", "aria-pressed") == "false"
