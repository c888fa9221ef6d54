"""``sluice runs ...``: inspect, follow, cancel and reconcile runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli import remote
from sluice.cli.common import (
    EXIT_INVALID,
    Output,
    errors_to_exit_codes,
    exit_code_for,
    fail,
    load_settings,
    open_store,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from sluice.store import Store
    from sluice.store.records import TaskRunRecord

app = typer.Typer(help="Inspect, follow, cancel and reconcile runs.", no_args_is_help=True)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]
RunIdArg = Annotated[int, typer.Argument(help="A job run id.")]
ProfileOpt = remote.ProfileOpt


def drive_in_background() -> None:
    """Start a detached ``sluice runs reconcile`` that drives every run nobody drives, then exits."""
    subprocess.Popen(
        [sys.executable, "-m", "sluice.cli.main", "runs", "reconcile", "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ),
    )


def wait_and_report(run_id: int, output: Output) -> int:
    """Drive ``run_id`` here (it must be PENDING or QUEUED and undriven) and print its result."""
    from contextlib import nullcontext

    from sluice.cli.main import _report, interruptible
    from sluice.cli.progress import LiveProgress
    from sluice.engine.clock import now_ms
    from sluice.engine.identity import driver_alive
    from sluice.engine.local import LocalRunner

    settings = load_settings()
    store = open_store(settings)
    # A live table of the tasks on a terminal (stderr: it goes away at the end, stdout keeps the result).
    listener = LiveProgress() if sys.stderr.isatty() else None
    try:
        with LocalRunner(
            store,
            home=settings.home,
            parallelism=settings.parallelism,
            listener=listener,
            git_timeout=settings.git_timeout,
        ) as runner:
            run = store.get_run(run_id)
            # A live driver (a background `sluice` that claimed the run first) keeps it: taking it over
            # would fail its running attempts as orphans. Then this command only waits for the result.
            now = now_ms()
            if not driver_alive(
                run.driver, heartbeat_time=run.heartbeat_time, now=now
            ) and store.take_over_run(
                run_id, expected_driver=run.driver, driver=str(runner.driver_id), now=now
            ):
                with interruptible(runner.driver), listener or nullcontext():
                    runner.drive([store.get_run(run_id)])
        _wait_terminal(store, run_id)
        return _report(store, run_id, output)
    finally:
        store.close()


def _wait_terminal(store: Store, run_id: int) -> None:
    from sluice.states import LifeCycleState

    while not LifeCycleState(store.get_run(run_id).state).is_terminal:
        time.sleep(0.2)


def wait_remote(client: remote.Client, run_id: int, output: Output) -> int:
    """Remote mode: poll the server until ``run_id`` ends (the first Ctrl-C cancels it), print it."""

    def cancel() -> None:
        typer.echo(f"Canceling run {run_id} on the server (interrupt again to stop waiting).", err=True)
        client.cancel_run(run_id)

    if not sys.stderr.isatty():
        return print_run(client.wait(run_id, on_interrupt=cancel), output)
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(stderr=True), transient=True, refresh_per_second=4) as live:

        def show(doc: dict[str, Any]) -> None:
            live.update(_live_table(doc))

        done = client.wait(run_id, on_interrupt=cancel, on_poll=show)
    return print_run(done, output)


def _task_rows(doc: dict[str, Any], now: int | None = None) -> list[tuple[Any, ...]]:
    """``(task, task run id, attempt, result, duration, message)`` of each attempt in a Run document, in
    task order; with ``now``, a running attempt's duration so far."""
    first: dict[str, int] = {}
    for entry in doc.get("tasks", []):
        first.setdefault(entry["task_key"], len(first))
    rows = []
    for t in sorted(
        doc.get("tasks", []), key=lambda t: (first[t["task_key"]], t["attempt_number"], t["run_id"])
    ):
        outcome = (t.get("condition_task") or {}).get("outcome")
        message = t["state"].get("state_message") or (f"outcome: {outcome}" if outcome else "")
        start, end = t.get("start_time") or 0, t.get("end_time") or now or 0
        rows.append(
            (
                t["task_key"],
                t["run_id"],
                t["attempt_number"],
                t["state"].get("result_state") or t["state"]["life_cycle_state"],
                f"{(end - start) / 1000:.2f}s" if start and end else "",
                message[:100],
            )
        )
    return rows


def _live_table(doc: dict[str, Any]) -> Any:
    """The run's tasks as a rich Table, redrawn at each poll of a remote run."""
    from rich.table import Table

    from sluice.engine.clock import now_ms

    state = doc["state"]
    table = Table(title=f"run {doc['run_id']}: {state['life_cycle_state']}", title_justify="left")
    for column in ("task", "task_run_id", "attempt", "state", "duration", "message"):
        table.add_column(column)
    for row in _task_rows(doc, now_ms()):
        table.add_row(*(str(v) for v in row))
    return table


def print_run(doc: dict[str, Any], output: Output) -> int:
    """Print a Run document (a server's ``runs/get``) as json or as the task table; its exit code."""
    state = doc["state"]
    if output is Output.json:
        print_json(doc)
        return exit_code_for(state.get("result_state"))
    rows = _task_rows(doc)
    result = state.get("result_state") or state["life_cycle_state"]
    print_table(
        ["task", "task_run_id", "attempt", "result", "duration", "message"],
        rows,
        title=f"run {doc['run_id']}: {result}",
    )
    if state.get("state_message"):
        typer.echo(state["state_message"])
    typer.echo(
        "Logs: sluice runs get-output TASK_RUN_ID (on the local store also: "
        f"sluice runs logs {doc['run_id']} --task TASK)"
    )
    return exit_code_for(state.get("result_state"))


@app.command("list")
def list_runs(
    job_id: Annotated[int | None, typer.Option("--job-id", help="Only runs of this job.")] = None,
    active_only: Annotated[bool, typer.Option("--active-only", help="Only runs not yet finished.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 25,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
) -> None:
    """List runs, newest first."""
    from sluice.engine.view import run_json

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            docs = client.list_runs(job_id=job_id, active_only=active_only, limit=limit)
        else:
            store = open_store(load_settings())
            try:
                runs = store.list_runs(job_id=job_id, active_only=active_only, limit=limit)
            finally:
                store.close()
            docs = [{k: v for k, v in run_json(r, []).items() if k != "tasks"} for r in runs]
    if output is Output.json:
        print_json({"runs": docs} if docs else {})
        return
    from datetime import UTC, datetime

    from sluice.engine.clock import now_ms

    now = now_ms()

    def started(ms: int | None) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else ""

    def took(start: int | None, end: int | None) -> str:  # a running run: so far
        return f"{((end or now) - start) / 1000:.1f}s" if start else ""

    columns = ["run_id", "job_id", "name", "trigger", "state", "result", "started (UTC)", "duration"]
    print_table(
        columns,
        [
            (
                d["run_id"],
                d.get("job_id"),
                d.get("run_name"),
                d.get("trigger"),
                d["state"]["life_cycle_state"],
                d["state"].get("result_state") or "",
                started(d.get("start_time")),
                took(d.get("start_time"), d.get("end_time")),
            )
            for d in docs
        ],
        whole=columns,  # on a narrow terminal cells wrap: nothing is cut
    )


@app.command("get")
def get_run(
    run_id: RunIdArg,
    output: Annotated[Output, typer.Option("--output", "-o")] = Output.json,
    profile: ProfileOpt = None,
) -> None:
    """Print a run with one task entry per attempt (Jobs API shape).

    Given the task run id of a for-each task, prints that task with its ``iterations``.
    """
    from sluice.cli.main import _report
    from sluice.engine.view import for_each_run_json
    from sluice.errors import NotFoundError

    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            doc = client.get_run(run_id)
            if "iterations" in doc:
                print_json(doc)
            else:
                print_run(doc, output)
            return
        store = open_store(load_settings())
        try:
            try:
                store.get_run(run_id)
            except NotFoundError:
                task_run = store.get_task_run(run_id)
                job_run = store.get_run(task_run.job_run_id)
                print_json(for_each_run_json(job_run, task_run, store.list_task_runs(job_run.run_id)))
                return
            _report(store, run_id, output)
        finally:
            store.close()


@app.command("cancel")
def cancel_run(
    run_id: RunIdArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the run has ended.")] = False,
    profile: ProfileOpt = None,
) -> None:
    """Cancel a run: its tasks are killed, downstream tasks become UPSTREAM_CANCELED."""
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            client.get_run(run_id)  # "Run N does not exist." before anything else
            client.cancel_run(run_id)
            if wait:
                client.wait(run_id)
        else:
            _cancel_local(run_id, wait=wait)
    print_json({})


def _cancel_local(run_id: int, *, wait: bool) -> None:
    from sluice.engine.clock import now_ms
    from sluice.engine.identity import driver_alive
    from sluice.states import LifeCycleState

    store = open_store(load_settings())
    try:
        run = store.get_run(run_id)
        if LifeCycleState(run.state).is_terminal:
            return
        store.request_cancel(run_id)
        if run.state == LifeCycleState.QUEUED.value:
            store.update_run(
                run_id,
                state=LifeCycleState.TERMINATED.value,
                result_state="CANCELED",
                state_message="Run was canceled while queued.",
                end_time=now_ms(),
            )
        elif not driver_alive(run.driver, heartbeat_time=run.heartbeat_time, now=now_ms()):
            drive_in_background()  # a driver applies the cancel (and reconciles the run)
        if wait:
            _wait_terminal(store, run_id)
    finally:
        store.close()


def _task_run_list(task_runs: list[TaskRunRecord]) -> str:
    """``bronze 2, silver 3`` (the latest attempt of each task, in order of first start)."""
    latest: dict[str, int] = {}
    for tr in task_runs:
        latest[tr.task_key] = tr.run_id
    return ", ".join(f"{key} {run_id}" for key, run_id in latest.items()) or "none"


def _job_run_of(store: Store, run_id: int) -> tuple[int, TaskRunRecord | None]:
    """``(job run id, None)`` for a job run id; ``(its job run id, the task run)`` for a task run id."""
    from sluice.errors import NotFoundError

    try:
        store.get_run(run_id)
        return run_id, None
    except NotFoundError:
        try:
            tr = store.get_task_run(run_id)
        except NotFoundError:
            raise NotFoundError(f"Run {run_id} does not exist (neither a job run nor a task run).") from None
        return tr.job_run_id, tr


@app.command("logs")
def logs(
    run_id: Annotated[int, typer.Argument(help="A job run id, or a task run id (no --task needed).")],
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    attempt: Annotated[int | None, typer.Option("--attempt", help="Only this attempt number.")] = None,
) -> None:
    """Print the captured stdout and stderr of a run's task attempts.

    Local store only; against a server, `sluice runs get-output TASK_RUN_ID` prints a task's logs.
    """
    with errors_to_exit_codes():
        remote.local_only("runs logs")
        store = open_store(load_settings())
        try:
            job_run_id, one = _job_run_of(store, run_id)
            every = store.list_task_runs(job_run_id)
        finally:
            store.close()
    if one is not None:
        if task is not None and task != one.task_key:
            fail(
                f"run {run_id} is task run '{one.task_key}' of job run {job_run_id}, not '{task}'; "
                f"use 'sluice runs logs {job_run_id} --task {task}'",
                EXIT_INVALID,
            )
        task_runs = [tr for tr in every if tr.run_id == one.run_id]
    else:
        task_runs = [
            tr
            for tr in every
            if (task is None or tr.task_key == task) and (attempt is None or tr.attempt_number == attempt)
        ]
    if not task_runs:
        fail(
            f"run {run_id} has no task attempt matching --task {task} --attempt {attempt}; "
            f"its tasks (latest task run ids): {_task_run_list(every)}",
            EXIT_INVALID,
        )
    from sluice.engine.output import read_log

    for tr in task_runs:
        typer.echo(f"=== {tr.task_key} attempt {tr.attempt_number} (task run {tr.run_id}) ===")
        for stream in ("stdout", "stderr"):
            text = read_log(tr.attempt_dir, stream)[0]
            if text:
                typer.echo(f"--- {stream} ---")
                typer.echo(text, nl=not text.endswith("\n"))


@app.command("get-output")
def get_output(
    task_run_id: Annotated[int, typer.Argument(help="A task run id (not a job run id).")],
    profile: ProfileOpt = None,
) -> None:
    """Print a task run's output: its error, traceback and logs (Jobs API RunOutput)."""
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            print_json(client.run_output(task_run_id))
            return
        from sluice.engine.output import run_output
        from sluice.errors import InvalidRequestError

        store = open_store(load_settings())
        try:
            try:
                print_json(run_output(store, task_run_id))
            except InvalidRequestError as exc:  # a job run id: name its task runs
                every = store.list_task_runs(task_run_id)
                raise InvalidRequestError(
                    f"{exc} Run {task_run_id} is a job run; its tasks (latest task run ids): "
                    f"{_task_run_list(every)}"
                ) from None
        finally:
            store.close()


@app.command("export")
def export(
    task_run_id: Annotated[
        int, typer.Argument(help="The task run id of a notebook task attempt, or a job run id with --task.")
    ],
    output_file: Annotated[
        Path | None,
        typer.Option("--file", "-o", help="Write the HTML here instead of to standard output."),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="With a job run id: export this task's latest attempt.")
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Export a notebook task run as HTML: the executed notebook with its outputs, also after a failure."""
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            if task is not None:
                task_run_id = _remote_task_run(client, task_run_id, task)
            html = _export_remote(client, task_run_id)
        else:
            html = _export_local(task_run_id, task)
    if output_file is None:
        sys.stdout.write(html)
        return
    output_file.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {output_file}", err=True)


def _export_remote(client: remote.Client, task_run_id: int) -> str:
    from sluice.errors import InvalidRequestError

    views = client.export_views(task_run_id)
    if not views:
        raise InvalidRequestError(
            f"task run {task_run_id} has no executed notebook to export on the server: only notebook task "
            f"runs whose kernel started can be exported (see 'sluice runs get-output {task_run_id}')"
        )
    chosen = next((v for v in views if v.get("name") == "notebook"), views[0])
    return str(chosen.get("content", ""))


def _remote_task_run(client: remote.Client, job_run_id: int, task: str) -> int:
    """The latest attempt of task ``task`` in job run ``job_run_id`` on the server."""
    from sluice.errors import InvalidRequestError

    tasks = client.get_run(job_run_id).get("tasks", [])
    found = [t["run_id"] for t in tasks if t.get("task_key") == task]
    if not found:
        keys = ", ".join(dict.fromkeys(str(t.get("task_key")) for t in tasks)) or "none"
        raise InvalidRequestError(f"job run {job_run_id} has no task '{task}'; its tasks: {keys}")
    return int(found[-1])


def _export_local(task_run_id: int, task: str | None = None) -> str:
    from sluice.errors import InvalidRequestError

    store = open_store(load_settings())
    try:
        job_run_id, one = _job_run_of(store, task_run_id)
        if one is None:
            every = store.list_task_runs(job_run_id)
            picked = [tr for tr in every if tr.task_key == task]
            if task is None or not picked:
                why = "names a job run" if task is None else f"is a job run without a task '{task}'"
                raise InvalidRequestError(
                    f"run {task_run_id} {why}: export takes a notebook task's run id, or a job run id "
                    f"with --task; its tasks (latest task run ids): {_task_run_list(every)}"
                )
            one = picked[-1]
        elif task is not None and task != one.task_key:
            raise InvalidRequestError(
                f"run {task_run_id} is task run '{one.task_key}' of job run {job_run_id}, not '{task}'; "
                f"use 'sluice runs export {job_run_id} --task {task}'"
            )
        tr = one
        task_run_id = tr.run_id
        run = store.get_run(tr.job_run_id)
    finally:
        store.close()
    settings: dict[str, Any] = next(
        (t for t in run.settings.get("tasks", []) if t["task_key"] == tr.task_key), {}
    )
    if "notebook_task" not in settings:
        raise InvalidRequestError(
            f"task run {task_run_id} ('{tr.task_key}') is not a notebook task; only notebook task "
            f"runs can be exported (see 'sluice runs get-output {task_run_id}' for its output)"
        )
    from sluice.notebooks.render import ensure_html

    html = ensure_html(tr.attempt_dir) if tr.attempt_dir else None
    if html is None:
        raise InvalidRequestError(
            f"task run {task_run_id} ('{tr.task_key}') has no executed notebook to export: it "
            f"{'never started' if not tr.attempt_dir else 'has not finished or its kernel never started'}"
            f" (state {tr.state}{', ' + tr.result_state if tr.result_state else ''})"
        )
    return html.read_text(encoding="utf-8")


@app.command("repair")
def repair(  # noqa: PLR0913, PLR0917 - the command's options, as typer passes them
    run_id: Annotated[int, typer.Argument(help="A job run id, or a task run id (repairs that task).")],
    task: Annotated[list[str] | None, typer.Option("--task", help="Re-run this task; repeatable.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Re-run every unsuccessful task.")] = False,
    dependents: Annotated[
        bool, typer.Option("--dependents", help="Also re-run downstream tasks that had succeeded.")
    ] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Job parameter name=value.")
    ] = None,
    latest_repair_id: Annotated[
        int | None, typer.Option("--latest-repair-id", help="Required after the first repair.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Drive the repair here (remote: wait for the server); print the run."),
    ] = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="json (default) or table.")] = Output.json,
    profile: ProfileOpt = None,
) -> None:
    """Re-run tasks of a finished run inside the same run, with the job's current settings.

    Downstream tasks that did not succeed are re-run too (with --dependents, all downstream tasks).
    Without --wait a background process (remote: the server) drives the repair and {"repair_id": N} is
    printed.
    """
    from sluice.cli.common import parse_pairs
    from sluice.engine.clock import now_ms
    from sluice.engine.repair import repair_run

    params = parse_pairs(param or [], "--param")
    with errors_to_exit_codes():
        client = remote.connect(profile)
        if client is not None:
            repair_id = client.repair_run(
                run_id,
                rerun_tasks=task or None,
                rerun_all_failed_tasks=all_failed,
                rerun_dependent_tasks=dependents,
                latest_repair_id=latest_repair_id,
                job_parameters=params or None,
            )
            if not wait:
                print_json({"repair_id": repair_id})
                return
            raise typer.Exit(wait_remote(client, run_id, output))
        store = open_store(load_settings())
        try:
            job_run_id, one = _job_run_of(store, run_id)
            if one is not None:  # a task run id: repair its job run's task
                key = (
                    store.get_task_run(one.parent_task_run_id).task_key
                    if one.parent_task_run_id is not None
                    else one.task_key
                )
                if task and task != [key]:
                    fail(
                        f"run {run_id} is task run '{key}' of job run {job_run_id}; use 'sluice runs repair "
                        f"{job_run_id} --task ...' to re-run other tasks",
                        EXIT_INVALID,
                    )
                run_id, task = job_run_id, [key]
            record = repair_run(
                store,
                run_id,
                now=now_ms(),
                rerun_tasks=task or [],
                rerun_all_failed_tasks=all_failed,
                rerun_dependent_tasks=dependents,
                latest_repair_id=latest_repair_id,
                job_parameters=params,
            )
        finally:
            store.close()
    if not wait:
        drive_in_background()
        print_json({"repair_id": record.repair_id})
        return
    raise typer.Exit(wait_and_report(run_id, output))


@app.command("reconcile")
def reconcile(
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
) -> None:
    """Take over runs whose driver died: fail their orphaned attempts, retry by policy, finish the runs.

    Local store only (a server reconciles its own runs).
    """
    from sluice.cli.main import interruptible
    from sluice.engine.local import LocalRunner

    with errors_to_exit_codes():
        remote.local_only("runs reconcile")
        settings = load_settings()
        store = open_store(settings)
        try:
            with LocalRunner(
                store, home=settings.home, parallelism=settings.parallelism, git_timeout=settings.git_timeout
            ) as runner:
                runner.adopt_orphans()
                adopted = runner.driver.run_ids
                if not quiet:
                    for run_id in adopted:
                        typer.echo(f"run {run_id}: adopted")
                with interruptible(runner.driver):
                    runner.driver.run_until_done()
            if not quiet:
                for run_id in adopted:
                    run = store.get_run(run_id)
                    typer.echo(f"run {run_id}: {run.result_state or run.state}")
        finally:
            store.close()
    raise typer.Exit(exit_code_for("SUCCESS"))
