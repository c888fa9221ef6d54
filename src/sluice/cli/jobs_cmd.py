"""``sluice jobs ...``: the Jobs API's job endpoints on the local store."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from sluice.cli import remote
from sluice.cli.common import (
    EXIT_INVALID,
    Output,
    errors_to_exit_codes,
    fail,
    load_settings,
    open_store,
    parse_pairs,
    print_json,
    print_table,
)

app = typer.Typer(help="Create, inspect, change, delete and run jobs.", no_args_is_help=True)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]
JobIdArg = Annotated[int, typer.Argument(help="The job's id.")]
ProfileOpt = remote.ProfileOpt


def _job_json(job: Any) -> dict[str, Any]:
    """A job as local mode prints it, from a store record or from a server's Job object."""
    if isinstance(job, dict):
        return {k: job.get(k, "" if k == "creator_user_name" else None) for k in _JOB_FIELDS} | {
            "settings": job.get("settings", {})
        }
    return {
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "created_time": job.created_time,
        "settings": job.settings,
    }


_JOB_FIELDS = ("job_id", "creator_user_name", "created_time")


def _body_from_file(path: Path, *, reset: bool) -> dict[str, Any]:
    """A JobSettings document from a JSON file: plain settings, a jobs/create body or a jobs/reset body."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{path}: cannot read JSON: {exc}", EXIT_INVALID)
    if not isinstance(data, dict):
        fail(f"{path}: expected a JSON object", EXIT_INVALID)
    if reset and "new_settings" in data:
        data = data["new_settings"]
    return {k: v for k, v in data.items() if k not in ("job_id", "access_control_list")}


def _settings_from_file(path: Path, *, reset: bool) -> dict[str, Any]:
    """The file's settings, validated here (local mode; a server validates what it is sent)."""
    from pydantic import ValidationError

    from sluice.errors import InvalidJobError, Problem
    from sluice.spec.jobs import JobSettings

    data = _body_from_file(path, reset=reset)
    try:
        settings = JobSettings.from_api(data)
    except ValidationError as exc:
        raise InvalidJobError(
            [Problem(str(e["msg"]), file=str(path), field=".".join(map(str, e["loc"]))) for e in exc.errors()]
        ) from None
    return _validated(settings, path)


def _validated(settings: Any, path: Path) -> dict[str, Any]:
    from sluice.errors import InvalidJobError
    from sluice.spec.bundle import LoadedJob
    from sluice.spec.validate import validate

    loaded = LoadedJob(key=path.stem, settings=settings, source_file=path, bundle_name=None, target=None)
    problems = validate(loaded)
    if problems:
        raise InvalidJobError(problems)
    result: dict[str, Any] = settings.to_api()
    return result


@app.command("list")
def list_jobs(
    name: Annotated[
        str | None, typer.Option(help="Only jobs with exactly this name (case-insensitive).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
) -> None:
    """List jobs."""
    sources: dict[int, str] = {}
    #: Periodic triggers' origins as the local scheduler keeps them (a server's are not in its API).
    anchors: dict[int, int | None] | None = None
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            docs = [_job_json(j) for j in client.list_jobs(name=name, limit=limit)]
        else:
            store = open_store(load_settings())
            try:
                from sluice.triggers import periodic_anchor

                jobs = store.list_jobs(name=name, limit=limit)
                anchors = {j.job_id: periodic_anchor(store, j) for j in jobs}
            finally:
                store.close()
            docs = [_job_json(j) for j in jobs]
            sources = {j.job_id: j.source_path or "" for j in jobs}
    if output is Output.json:
        print_json({"jobs": docs} if docs else {})
        return
    from sluice.engine.clock import now_ms
    from sluice.triggers import trigger_words

    now = now_ms()
    rows = []
    for d in docs:
        anchor = anchors.get(d["job_id"]) if anchors is not None else None
        words, next_fire, paused = trigger_words(d["settings"], now, anchor, estimate=anchors is not None)
        rows.append(
            (
                d["job_id"],
                d["settings"].get("name", ""),
                len(d["settings"].get("tasks", [])),
                f"{words} (paused)" if paused else words,
                next_fire,
                sources.get(d["job_id"], ""),
            )
        )
    print_table(
        ["job_id", "name", "tasks", "trigger", "next run", "source"],
        rows,
        whole=["name", "trigger", "next run"],
    )


@app.command("get")
def get_job(job_id: JobIdArg, profile: ProfileOpt = None) -> None:
    """Print a job (Jobs API shape)."""
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            print_json(_job_json(client.get_job(job_id)))
            return
        store = open_store(load_settings())
        try:
            job = store.get_job(job_id)
        finally:
            store.close()
    print_json(_job_json(job))


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


@app.command("graph")
def graph(
    job_id: JobIdArg,
    fmt: Annotated[
        GraphFormat,
        typer.Option("--format", "-f", help="text (an indented tree, default), dot (Graphviz) or mermaid."),
    ] = GraphFormat.text,
    profile: ProfileOpt = None,
) -> None:
    """Print a job's task graph: dependencies, condition outcomes, for-each and run-job tasks marked.

    `sluice jobs graph 3 --format dot | dot -Tsvg > job.svg` draws it with Graphviz.
    """
    from sluice import taskgraph

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            settings = client.get_job(job_id).get("settings", {})
        else:
            store = open_store(load_settings())
            try:
                settings = store.get_job(job_id).settings
            finally:
                store.close()
    tasks = settings.get("tasks", [])
    if fmt is GraphFormat.dot:
        typer.echo(taskgraph.dot(tasks, str(settings.get("name") or f"job {job_id}")))
    elif fmt is GraphFormat.mermaid:
        typer.echo(taskgraph.mermaid(tasks))
    else:
        typer.echo(taskgraph.text_tree(tasks))


@app.command("create")
def create_job(
    json_file: Annotated[Path, typer.Option("--json", help="A jobs/create body (JSON file).")],
    profile: ProfileOpt = None,
) -> None:
    """Create a job from a Jobs API JSON body; prints {"job_id": N}."""
    from sluice.engine.clock import now_ms
    from sluice.identity import local_user

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            print_json({"job_id": client.create_job(_body_from_file(json_file, reset=False))})
            return
        settings = _settings_from_file(json_file, reset=False)
        store = open_store(load_settings())
        try:
            job = store.create_job(
                settings, now=now_ms(), source_path=str(json_file.resolve()), creator=local_user()
            )
        finally:
            store.close()
    print_json({"job_id": job.job_id})


@app.command("reset")
def reset_job(
    job_id: JobIdArg,
    json_file: Annotated[
        Path, typer.Option("--json", help="New settings, or a jobs/reset body (JSON file).")
    ],
    profile: ProfileOpt = None,
) -> None:
    """Replace all of a job's settings."""
    from sluice.engine.clock import now_ms

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            client.reset_job(job_id, _body_from_file(json_file, reset=True))
        else:
            settings = _settings_from_file(json_file, reset=True)
            store = open_store(load_settings())
            try:
                store.get_job(job_id)
                store.update_job(job_id, settings, now=now_ms(), source_path=str(json_file.resolve()))
            finally:
                store.close()
    print_json({})


@app.command("delete")
def delete_job(job_id: JobIdArg, profile: ProfileOpt = None) -> None:
    """Delete a job: its queued and running runs are canceled; its past runs stay readable."""
    from sluice.engine.clock import now_ms

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            client.get_job(job_id)  # "Job N does not exist." as in local mode (jobs/delete says nothing)
            client.delete_job(job_id)
        else:
            store = open_store(load_settings())
            try:
                store.get_job(job_id)
                store.delete_job(job_id, now=now_ms())
            finally:
                store.close()
    print_json({})


@app.command("run-now")
def run_now(
    job_id: JobIdArg,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Job parameter name=value.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run only this task; '+key' adds its upstream tasks, 'key+' its downstream."
        ),
    ] = None,
    idempotency_token: Annotated[
        str | None,
        typer.Option(
            "--idempotency-token", help="A second run-now with the same token returns the same run."
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Drive the run here (remote: wait for the server) and print its result."),
    ] = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="json (default) or table.")] = Output.json,
    profile: ProfileOpt = None,
) -> None:
    """Start a run of a job. Without --wait a background process drives it and the run id is printed.

    In remote mode the server drives the run; --wait polls it until it ends (Ctrl-C cancels it).
    """
    from sluice.cli.runs_cmd import drive_in_background, wait_and_report, wait_remote
    from sluice.engine.clock import now_ms
    from sluice.engine.submit import run_now as submit
    from sluice.identity import local_user

    if idempotency_token is not None and not 0 < len(idempotency_token) <= 64:
        fail("--idempotency-token must be 1 to 64 characters", EXIT_INVALID)
    params = parse_pairs(param or [], "--param")
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            started = client.run_now(
                job_id, job_parameters=params or None, only=only or None, idempotency_token=idempotency_token
            )
            if not wait:
                print_json(started)
                return
            raise typer.Exit(wait_remote(client, int(started["run_id"]), output))
        settings = load_settings()
        store = open_store(settings)
        try:
            job = store.get_job(job_id)
            run, _ = submit(
                store,
                job,
                now=now_ms(),
                job_parameters=params,
                only=only or None,
                idempotency_token=idempotency_token,
                creator=local_user(),
            )
        finally:
            store.close()
    if not wait:
        drive_in_background()
        print_json({"run_id": run.run_id, "number_in_job": run.run_id})
        return
    raise typer.Exit(wait_and_report(run.run_id, output))


# --- scheduling: pause, resume, next-runs (the scheduler's commands) ---------------------------------

_TRIGGER_HOLDERS = ("schedule", "trigger", "continuous")


def _pause_holders(job_id: int, settings: dict[str, Any], status: str) -> list[str]:
    """Set ``pause_status`` in every trigger holder of ``settings`` (changed in place); their names."""
    from sluice.errors import InvalidRequestError

    holders = [h for h in _TRIGGER_HOLDERS if isinstance(settings.get(h), dict)]
    if not holders:
        raise InvalidRequestError(
            f"Job {job_id} has no schedule, trigger or continuous setting to pause or resume: "
            "add one with `sluice jobs reset`."
        )
    for holder in holders:
        settings[holder]["pause_status"] = status
    return holders


def _set_pause(job_id: int, status: str, profile: str | None) -> None:
    import copy

    from sluice.engine.clock import now_ms

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            settings = client.get_job(job_id)["settings"]
            holders = _pause_holders(job_id, settings, status)
            client.update_job(job_id, {h: settings[h] for h in holders})
        else:
            store = open_store(load_settings())
            try:
                settings = copy.deepcopy(store.get_job(job_id).settings)
                holders = _pause_holders(job_id, settings, status)
                store.update_job(job_id, settings, now=now_ms())
            finally:
                store.close()
    print_json({"job_id": job_id, "pause_status": status, "settings": holders})


@app.command("pause")
def pause_job(job_id: JobIdArg, profile: ProfileOpt = None) -> None:
    """Pause a job's schedule, trigger or continuous run: runs in progress go on, no new ones start."""
    _set_pause(job_id, "PAUSED", profile)


@app.command("resume")
def resume_job(job_id: JobIdArg, profile: ProfileOpt = None) -> None:
    """Unpause a job's schedule, trigger or continuous run; missed times are not replayed."""
    _set_pause(job_id, "UNPAUSED", profile)


def _next_times(store: Any, job: Any, n: int, now: int) -> tuple[str, list[int]]:
    """The zone id and the next ``n`` fire times (epoch ms) of a job's schedule or periodic trigger."""
    from sluice.errors import InvalidRequestError
    from sluice.scheduler import slots
    from sluice.scheduler.loop import watched
    from sluice.store import scheduler as rows

    settings = job.settings
    if isinstance(settings.get("schedule"), dict):
        schedule = settings["schedule"]
        spec = slots.CronSpec.of(str(schedule["quartz_cron_expression"]), str(schedule["timezone_id"]))
        return str(schedule["timezone_id"]), slots.next_fire_times(spec, 0, now, n)
    periodic = (settings.get("trigger") or {}).get("periodic")
    if isinstance(periodic, dict):
        period = slots.PeriodicSpec.of(int(periodic["interval"]), str(periodic["unit"]))
        row = rows.get_trigger(store, job.job_id, "periodic")
        current = watched(job)
        same = row is not None and current is not None and row.config == current.config
        anchor = int(row.state["anchor"]) if row is not None and same and "anchor" in row.state else now
        return "UTC", slots.next_fire_times(period, anchor, max(now, anchor), n)
    kinds = [k for k in ("trigger", "continuous") if settings.get(k)]
    what = f"a {kinds[0]} setting that starts runs on events" if kinds else "no schedule"
    raise InvalidRequestError(
        f"Job {job.job_id} has {what}: only schedules and periodic triggers have fire times."
    )


@app.command("next-runs")
def next_runs(
    job_id: JobIdArg,
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=1000, help="How many times.")] = 5,
    output: OutputOpt = Output.table,
) -> None:
    """The next fire times of a job's schedule (in its time zone, with the UTC instant and offset).

    Local store only (it reads the scheduler's state).
    """
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from sluice.engine.clock import now_ms

    with errors_to_exit_codes():
        remote.local_only("jobs next-runs")
        store = open_store(load_settings())
        try:
            job = store.get_job(job_id)
            zone_id, times = _next_times(store, job, count, now_ms())
        finally:
            store.close()
        holder = job.settings.get("schedule") or job.settings.get("trigger") or {}
        paused = holder.get("pause_status") == "PAUSED"
    zone = ZoneInfo(zone_id)
    rows_out = []
    for epoch in times:
        local = datetime.fromtimestamp(epoch / 1000, zone)
        offset = local.strftime("%z")
        rows_out.append(
            {
                "time": local.strftime("%Y-%m-%d %H:%M:%S"),
                "timezone_id": zone_id,
                "utc_offset": f"{offset[:3]}:{offset[3:]}",
                "zone": local.tzname() or "",
                "utc": datetime.fromtimestamp(epoch / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "epoch_ms": epoch,
            }
        )
    if output is Output.json:
        print_json({"job_id": job_id, "paused": paused, "next_runs": rows_out})
        return
    if paused:
        typer.echo(f"Job {job_id} is PAUSED: these times fire only after `sluice jobs resume {job_id}`.")
    print_table(
        ["time", "zone", "utc_offset", "utc"],
        [(r["time"], r["zone"], r["utc_offset"], r["utc"]) for r in rows_out],
    )
