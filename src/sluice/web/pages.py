"""The Jobs UI's routes: login, jobs list, job page, run page, task run page, their actions and live data.

Every action is an HTML form POST answered by a redirect to the page that shows its effect; the run page's
live parts read ``…/events`` (server-sent events) and ``…/log``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from sluice.api.deps import Stores
from sluice.api.jobs import job_json, validated
from sluice.engine import submit
from sluice.engine.clock import now_ms
from sluice.engine.output import run_output
from sluice.engine.repair import latest_task_runs, repair_run
from sluice.errors import SluiceError
from sluice.notify.settings import run_page_path
from sluice.store import Store
from sluice.store.listing import jobs_page, runs_page, task_run_states
from sluice.store.records import JobRecord, RunRecord, TaskRunRecord
from sluice.triggers import periodic_anchor, trigger_words
from sluice.web import graph, views
from sluice.web.auth import (
    COOKIE,
    CsrfError,
    LoginRequired,
    Viewer,
    check_post,
    login_url,
    safe_next,
    token_problem,
    viewer,
)

STATIC = "/ui-static"
JOBS_PER_PAGE = 25
RUNS_PER_PAGE = 10
#: How often an open run page's stream looks at the run, and how long one stream lasts (it reconnects).
EVENT_POLL_S = 0.2
EVENT_STREAM_S = 60.0
LOG_CHUNK = 256 * 1024
#: Pages larger than this are sent gzipped to clients that accept it.
GZIP_OVER = 32 * 1024
#: Last path segments of the pages' data calls: without a login they answer 401, not a redirect.
DATA_CALLS = {"events", "log", "notebook", "repair", "settings"}

_env = Environment(loader=PackageLoader("sluice.web", "templates"), autoescape=select_autoescape())
_env.filters["when"] = views.when
_env.filters["mark"] = lambda css: views.MARKS.get(css, "?")


def store_of(request: Request) -> Store:
    stores: Stores = request.app.state.stores
    return stores.get()


def page(request: Request, template: str, who: Viewer, status: int = 200, **context: Any) -> Response:
    context.update(request=request, who=who, auth=request.app.state.auth, static=STATIC)
    body = _env.get_template(template).render(context).encode()
    headers = {"Cache-Control": "no-store"}
    if len(body) > GZIP_OVER and "gzip" in request.headers.get("accept-encoding", ""):
        # A job page of 1,000 tasks is ~1.5 MB of HTML, ~100 KB gzipped (pages only: the API is left as is).
        body = gzip.compress(body, compresslevel=1)  # level 1: 3x faster than 5, a little larger
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=headers)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def install(app: FastAPI) -> None:  # noqa: C901, PLR0915 - the UI's routes, one closure each
    app.mount(STATIC, StaticFiles(directory=Path(__file__).parent / "static"), name="ui-static")

    @app.exception_handler(LoginRequired)
    def _login(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and request.url.path.rsplit("/", 1)[-1] not in DATA_CALLS:
            return see_other(login_url(request))
        return JSONResponse({"error_code": "UNAUTHENTICATED", "message": exc.reason}, status_code=401)

    @app.exception_handler(CsrfError)
    def _csrf(request: Request, exc: CsrfError) -> Response:
        return HTMLResponse(f"<p>Refused: {exc}.</p>", status_code=403)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return see_other("/jobs")

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str | None = None) -> Response:
        if not request.app.state.auth:
            return see_other(safe_next(next))
        who = Viewer("", None, from_cookie=False)
        return page(request, "login.html", who, next=safe_next(next), problem="")

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/jobs",
    ) -> Response:
        who = Viewer("", None, from_cookie=False)
        check_post(request, Viewer("", "-", from_cookie=False), None)  # same origin only
        value = token.strip()
        problem = token_problem(store_of(request), value) if value else "Paste an API token."
        if problem:
            return page(request, "login.html", who, 401, next=safe_next(next), problem=problem)
        response = see_other(safe_next(next))
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        check_post(request, viewer(request, store_of(request)), csrf)
        response = see_other("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/jobs", include_in_schema=False)
    def jobs_list(
        request: Request, q: str = "", after: int | None = None, before: int | None = None
    ) -> Response:
        store = store_of(request)
        who = viewer(request, store)
        name = q.strip() or None
        jobs, more = jobs_page(store, limit=JOBS_PER_PAGE, after=after, before=before, name_contains=name)
        recent = _recent_runs(store, [j.job_id for j in jobs])
        now = now_ms()
        rows = []
        for job in jobs:
            words, next_fire, paused = trigger_words(job.settings, now, periodic_anchor(store, job))
            rows.append(
                {
                    "job": job,
                    "name": job.settings.get("name") or f"Job {job.job_id}",
                    "owner": job_json(job)["run_as_user_name"],
                    "trigger": words,
                    "next": next_fire,
                    "paused": paused,
                    "runs": [
                        (r, *views.state_of(r.state, r.result_state)) for r in recent.get(job.job_id, [])
                    ],
                }
            )
        newer = (before is not None and more) or (after is not None)
        older = (before is None and more) or before is not None
        return page(
            request,
            "jobs.html",
            who,
            rows=rows,
            q=q,
            prev_url=f"/jobs?q={q}&before={jobs[0].job_id}" if jobs and newer else None,
            next_url=f"/jobs?q={q}&after={jobs[-1].job_id}" if jobs and older else None,
        )

    @app.get("/jobs/{job_id:int}", include_in_schema=False)
    def job_page(request: Request, job_id: int, older_than: int | None = None) -> Response:
        store = store_of(request)
        who = viewer(request, store)
        job = store.get_job(job_id)
        settings = job.settings
        tasks = settings.get("tasks", [])
        runs, more = runs_page(store, limit=RUNS_PER_PAGE, job_id=job_id, older_than=older_than)
        task_runs = task_run_states(store, [r.run_id for r in runs])
        now = now_ms()
        words, next_fire, paused = trigger_words(settings, now, periodic_anchor(store, job))
        return page(
            request,
            "job.html",
            who,
            job=job,
            name=settings.get("name") or f"Job {job_id}",
            tasks=tasks,
            svg=_job_graph(job),
            trigger=words,
            next_fire=next_fire,
            paused=paused,
            parameters=settings.get("parameters", []),
            runs=[
                (r, *views.state_of(r.state, r.result_state), views.duration(r.start_time, r.end_time, now))
                for r in runs
            ],
            matrix=views.matrix_rows([str(t["task_key"]) for t in tasks], runs, task_runs, now),
            older_url=f"/jobs/{job_id}?older_than={runs[-1].run_id}" if runs and more else None,
            newest_url=f"/jobs/{job_id}" if older_than else None,
        )

    @app.get("/jobs/{job_id:int}/settings", include_in_schema=False)
    def job_settings(request: Request, job_id: int, format: str = "json") -> Response:
        """The job as jobs/get shows it, as JSON text, or its settings as bundle YAML (``format=yaml``);
        the job page loads it when its section opens."""
        store = store_of(request)
        viewer(request, store)
        job = store.get_job(job_id)
        if format == "yaml":
            text = views.bundle_yaml(job.settings, job_id)
            return Response(text, media_type="text/plain; charset=utf-8")
        if format != "json":
            return Response(f"format={format!r}: use json or yaml.", 400, media_type="text/plain")
        return Response(json.dumps(job_json(job), indent=2), media_type="application/json")

    @app.post("/jobs/{job_id:int}/run-now", include_in_schema=False)
    async def run_now(request: Request, job_id: int) -> Response:
        form = await request.form()
        return await run_in_threadpool(_run_now, request, job_id, {k: str(v) for k, v in form.items()})

    def _run_now(request: Request, job_id: int, form: dict[str, str]) -> Response:
        store = store_of(request)
        who = viewer(request, store)
        check_post(request, who, form.get("csrf"))
        job = store.get_job(job_id)
        params = {k[6:]: v for k, v in form.items() if k.startswith("param.")}
        run, _ = submit.run_now(
            store, job, now=now_ms(), job_parameters=params or None, creator=who.user_name
        )
        _wake(request)
        return see_other(run_page_path(job_id, run.run_id))

    @app.post("/jobs/{job_id:int}/pause", include_in_schema=False)
    def pause(
        request: Request, job_id: int, csrf: Annotated[str, Form()] = "", to: Annotated[str, Form()] = ""
    ) -> Response:
        store = store_of(request)
        check_post(request, viewer(request, store), csrf)
        job = store.get_job(job_id)
        settings = json.loads(json.dumps(job.settings))
        for holder in (settings.get("schedule"), settings.get("continuous"), settings.get("trigger")):
            if isinstance(holder, dict):
                holder["pause_status"] = "PAUSED" if to == "PAUSED" else "UNPAUSED"
        store.update_job(job_id, validated(settings), now=now_ms())
        return see_other(f"/jobs/{job_id}")

    def _run_view(request: Request, job_id: int | None, run_id: int) -> Response:
        store = store_of(request)
        who = viewer(request, store)
        try:
            run = store.get_run(run_id)
        except SluiceError:
            task_run = store.get_task_run(run_id)
            return _task_run_page(request, who, store, task_run)
        if job_id is not None and run.job_id != job_id:
            return see_other(run_page_path(run.job_id, run_id))
        return _run_page(request, who, store, run)

    @app.get("/jobs/{job_id:int}/runs/{run_id:int}", include_in_schema=False)
    def run_page(request: Request, job_id: int, run_id: int) -> Response:
        return _run_view(request, job_id, run_id)

    @app.get("/jobs/runs/{run_id:int}", include_in_schema=False)
    def one_time_run_page(request: Request, run_id: int) -> Response:
        return _run_view(request, None, run_id)

    for prefix in ("/jobs/{job_id:int}/runs/{run_id:int}", "/jobs/runs/{run_id:int}"):
        app.add_api_route(f"{prefix}/events", _events, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{prefix}/log", _log, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{prefix}/notebook", _notebook, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{prefix}/repair", _repair_dialog, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{prefix}/repair", _repair, methods=["POST"], include_in_schema=False)
        app.add_api_route(f"{prefix}/cancel", _cancel, methods=["POST"], include_in_schema=False)


#: SVG of recently shown job graphs, by their tasks' text: laying out a large graph costs more than this.
_GRAPHS: dict[str, Markup] = {}
GRAPH_CACHE = 64


def _job_graph(job: JobRecord) -> Markup:
    tasks = job.settings.get("tasks", [])
    key = hashlib.sha256(json.dumps(tasks, sort_keys=True).encode()).hexdigest()
    drawn = _GRAPHS.get(key)
    if drawn is None:
        drawn = graph.svg(tasks)
        if len(_GRAPHS) >= GRAPH_CACHE:
            _GRAPHS.pop(next(iter(_GRAPHS)))  # the oldest entry
        _GRAPHS[key] = drawn
    return drawn


def _wake(request: Request) -> None:
    bell: Callable[[], None] | None = request.app.state.on_run_created
    if bell is not None:
        bell()


def _recent_runs(store: Store, job_ids: list[int], per_job: int = 5) -> dict[int, list[RunRecord]]:
    out: dict[int, list[RunRecord]] = {}
    for job_id in job_ids:
        out[job_id] = list(reversed(runs_page(store, limit=per_job, job_id=job_id)[0]))
    return out


def _run_page(request: Request, who: Viewer, store: Store, run: RunRecord) -> Response:
    task_runs = store.list_task_runs(run.run_id)
    now = now_ms()
    tasks = run.settings.get("tasks", [])
    states = views.node_states(run, task_runs, now)
    css, words = views.state_of(run.state, run.result_state)
    repairs = store.list_repairs(run.run_id) if run.repair_count else []
    return page(
        request,
        "run.html",
        who,
        run=run,
        name=run.run_name,
        base=run_page_path(run.job_id, run.run_id),
        css=css,
        words=words,
        terminal=run.state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"),
        duration=views.duration(run.start_time, run.end_time, now),
        svg=graph.svg(tasks, states),
        gantt=_gantt(task_runs, now),
        task_rows=[
            (tr, *views.state_of(tr.state, tr.result_state), views.duration(tr.start_time, tr.end_time, now))
            for tr in sorted(task_runs, key=lambda t: t.run_id)
            if tr.parent_task_run_id is None
        ],
        iterations=[
            (tr, *views.state_of(tr.state, tr.result_state), views.duration(tr.start_time, tr.end_time, now))
            for tr in sorted(task_runs, key=lambda t: (t.parent_task_run_id or 0, t.iteration or 0, t.run_id))
            if tr.parent_task_run_id is not None
        ],
        repairs=[(r, *views.state_of(r.state, r.result_state)) for r in repairs],
        parameters=run.job_parameters,
        snapshot=json.dumps(views.snapshot(run, task_runs, now)),
    )


def _gantt(task_runs: list[TaskRunRecord], now: int) -> list[dict[str, Any]]:
    """Bars of the attempts timeline: left offset and width in percent of the run's span."""
    started = [tr for tr in task_runs if tr.start_time and tr.parent_task_run_id is None]
    if not started:
        return []
    first = min(tr.start_time for tr in started)
    last = max((tr.end_time or now) for tr in started)
    span = max(1, last - first)
    bars = []
    for tr in sorted(started, key=lambda t: (t.start_time, t.run_id)):
        css, words = views.state_of(tr.state, tr.result_state)
        end = tr.end_time or now
        bars.append(
            {
                "label": f"{tr.task_key} #{tr.attempt_number + 1}",
                "left": 100 * (tr.start_time - first) / span,
                "width": max(0.5, 100 * (end - tr.start_time) / span),
                "css": css,
                "text": f"{words} · {views.duration(tr.start_time, tr.end_time, now)}",
                "href": run_page_path(None, tr.run_id),
                "task_run": tr,
            }
        )
    return bars


def _task_run_page(request: Request, who: Viewer, store: Store, tr: TaskRunRecord) -> Response:
    run = store.get_run(tr.job_run_id)
    now = now_ms()
    output = run_output(store, tr.run_id)
    siblings = store.list_task_runs(run.run_id)
    iterations = [
        (t, *views.state_of(t.state, t.result_state), views.duration(t.start_time, t.end_time, now))
        for t in sorted(siblings, key=lambda t: (t.iteration or 0, t.run_id))
        if t.parent_task_run_id == tr.run_id
    ]
    attempts = sorted(
        (
            t
            for t in siblings
            if t.task_key == tr.task_key
            and t.parent_task_run_id == tr.parent_task_run_id
            and t.iteration == tr.iteration
        ),
        key=lambda t: t.run_id,
    )
    values = store.get_task_values(run.run_id).get(tr.task_key, {})
    css, words = views.state_of(tr.state, tr.result_state)
    notebook = tr.attempt_dir is not None and "notebook_task" in (output["metadata"] or {})
    return page(
        request,
        "task_run.html",
        who,
        run=run,
        tr=tr,
        base=run_page_path(run.job_id, tr.run_id),
        run_url=run_page_path(run.job_id, run.run_id),
        css=css,
        words=words,
        terminal=tr.state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"),
        duration=views.duration(tr.start_time, tr.end_time, now),
        output=output,
        attempts=[(t, run_page_path(run.job_id, t.run_id)) for t in attempts],
        values=values,
        notebook=notebook,
        sql=(output.get("sql_output") or {}),
        exit_value=(output.get("notebook_output") or {}).get("result"),
        child_run=_child_run_url(store, output),
        iterations=iterations,
    )


def _child_run_url(store: Store, output: dict[str, Any]) -> str | None:
    """The page of the run a run-job task started, if any."""
    child = (output.get("run_job_output") or {}).get("run_id")
    if not child:
        return None
    try:
        return run_page_path(store.get_run(int(child)).job_id, int(child))
    except SluiceError:
        return None


async def _events(request: Request, run_id: int, job_id: int | None = None) -> Response:
    """Server-sent events: a snapshot of the run (states, words, durations) whenever it changes."""
    store = store_of(request)
    await run_in_threadpool(viewer, request, store)
    await run_in_threadpool(store.get_run, run_id)  # 404 before streaming

    def look() -> dict[str, Any]:
        s = store_of(request)  # each thread of the pool has its own connection
        return views.snapshot(s.get_run(run_id), s.list_task_runs(run_id), now_ms())

    def stopping() -> bool:
        return bool(request.app.state.stopping)  # sluice serve sets it on SIGTERM

    async def stream() -> AsyncIterator[str]:
        last = ""
        loop = asyncio.get_running_loop()
        ends = loop.time() + EVENT_STREAM_S
        yield "retry: 500\n\n"
        while loop.time() < ends and not stopping() and not await request.is_disconnected():
            snap = await run_in_threadpool(look)
            text = json.dumps(snap)
            if text != last:
                last = text
                yield f"event: run\ndata: {text}\n\n"
            if snap["run"]["terminal"]:
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(EVENT_POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _log(
    request: Request, run_id: int, stream: str = "stdout", offset: int = 0, job_id: int | None = None
) -> Response:
    """A task run's log from byte ``offset``: ``{text, offset, done}`` for the live tail."""
    store = store_of(request)
    viewer(request, store)
    tr = store.get_task_run(run_id)
    if stream not in ("stdout", "stderr"):
        stream = "stdout"
    chunk, size = _read_from(Path(tr.attempt_dir) / f"{stream}.log" if tr.attempt_dir else None, offset)
    done = tr.state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR") and offset + len(chunk) >= size
    return JSONResponse({"text": chunk.decode(errors="replace"), "offset": offset + len(chunk), "done": done})


def _read_from(path: Path | None, offset: int) -> tuple[bytes, int]:
    """Up to LOG_CHUNK bytes of ``path`` from ``offset`` (ending on a whole UTF-8 character), and its size."""
    try:
        with open(path or "", "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(min(offset, size))
            chunk = f.read(LOG_CHUNK)
    except (FileNotFoundError, NotADirectoryError):
        return b"", 0
    if len(chunk) == LOG_CHUNK:  # a character cut at the end waits for the next read
        end = len(chunk)
        while end > len(chunk) - 4 and end > 0 and chunk[end - 1] & 0xC0 == 0x80:
            end -= 1
        if end > 0 and chunk[end - 1] >= 0xC0:
            end -= 1
        chunk = chunk[:end] if end > 0 else chunk
    return chunk, size


def _notebook(request: Request, run_id: int, job_id: int | None = None) -> Response:
    """The executed notebook's HTML, for a sandboxed iframe (scripts in it never run with our origin)."""
    from sluice.notebooks.render import ensure_html

    store = store_of(request)
    viewer(request, store)
    tr = store.get_task_run(run_id)
    path = ensure_html(tr.attempt_dir) if tr.attempt_dir else None
    page = path.read_text(errors="replace") if path else ""
    headers = {
        "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    }
    return HTMLResponse(page or "<p>No notebook output yet.</p>", headers=headers)


def _repair_dialog(request: Request, run_id: int, job_id: int | None = None) -> Response:
    """The body of the "Repair run" dialog: every task, the failed ones and their dependents ticked."""
    store = store_of(request)
    who = viewer(request, store)
    run = store.get_run(run_id)
    task_runs = store.list_task_runs(run_id)
    chosen = views.repair_preselection(run, task_runs)
    latest = latest_task_runs(task_runs)
    rows = []
    for task in run.settings.get("tasks", []):
        key = str(task["task_key"])
        tr = latest.get(key)
        css, words = views.state_of(tr.state, tr.result_state) if tr else ("pending", "Not run")
        rows.append({"key": key, "css": css, "words": words, "checked": key in chosen})
    return page(request, "repair.html", who, run=run, rows=rows, base=run_page_path(run.job_id, run_id))


async def _repair(request: Request, run_id: int, job_id: int | None = None) -> Response:
    form = await request.form()
    tasks = [str(v) for v in form.getlist("task")]
    csrf = str(form.get("csrf") or "")
    return await run_in_threadpool(_do_repair, request, run_id, tasks, csrf)


def _do_repair(request: Request, run_id: int, tasks: list[str], csrf: str) -> Response:
    store = store_of(request)
    check_post(request, viewer(request, store), csrf)
    run = store.get_run(run_id)
    repairs = store.list_repairs(run_id)
    repair_run(
        store,
        run_id,
        now=now_ms(),
        rerun_tasks=tasks,
        rerun_all_failed_tasks=not tasks,
        latest_repair_id=repairs[-1].repair_id if repairs else None,
    )
    _wake(request)
    return see_other(run_page_path(run.job_id, run_id))


def _cancel(
    request: Request, run_id: int, csrf: Annotated[str, Form()] = "", job_id: int | None = None
) -> Response:
    store = store_of(request)
    check_post(request, viewer(request, store), csrf)
    run = submit.cancel(store, run_id, now=now_ms())
    _wake(request)
    return see_other(run_page_path(run.job_id, run.run_id))
