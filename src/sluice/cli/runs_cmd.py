"""``sluice runs ...``: inspect, follow, cancel and reconcile runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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

app = typer.Typer(help="Inspect, follow, cancel and reconcile runs.", no_args_is_help=True)

OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]
RunIdArg = Annotated[int, typer.Argument(help="A job run id.")]

#: get-output returns at most the last 5 MB of logs, as Databricks does.
LOG_LIMIT = 5 * 1024 * 1024


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
    from sluice.cli.main import _report, interruptible
    from sluice.engine.clock import now_ms
    from sluice.engine.local import LocalRunner

    settings = load_settings()
    store = open_store(settings)
    try:
        with LocalRunner(store, home=settings.home, parallelism=settings.parallelism) as runner:
            run = store.get_run(run_id)
            if store.take_over_run(
                run_id, expected_driver=run.driver, driver=str(runner.driver_id), now=now_ms()
            ):
                with interruptible(runner.driver):
                    runner.drive([store.get_run(run_id)])
        _wait_terminal(store, run_id)
        return _report(store, run_id, output)
    finally:
        store.close()


def _wait_terminal(store: Store, run_id: int) -> None:
    from sluice.states import LifeCycleState

    while not LifeCycleState(store.get_run(run_id).state).is_terminal:
        time.sleep(0.2)


@app.command("list")
def list_runs(
    job_id: Annotated[int | None, typer.Option("--job-id", help="Only runs of this job.")] = None,
    active_only: Annotated[bool, typer.Option("--active-only", help="Only runs not yet finished.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 25,
    output: OutputOpt = Output.table,
) -> None:
    """List runs, newest first."""
    from sluice.engine.view import run_json

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            runs = store.list_runs(job_id=job_id, active_only=active_only, limit=limit)
        finally:
            store.close()
    if output is Output.json:
        print_json(
            {"runs": [{k: v for k, v in run_json(r, []).items() if k != "tasks"} for r in runs]}
            if runs
            else {}
        )
        return
    print_table(
        ["run_id", "job_id", "name", "trigger", "state", "result", "duration"],
        [
            (
                r.run_id,
                r.job_id,
                r.run_name,
                r.trigger,
                r.state,
                r.result_state or "",
                f"{(r.end_time - r.start_time) / 1000:.1f}s" if r.end_time and r.start_time else "",
            )
            for r in runs
        ],
    )


@app.command("get")
def get_run(
    run_id: RunIdArg, output: Annotated[Output, typer.Option("--output", "-o")] = Output.json
) -> None:
    """Print a run with one task entry per attempt (Jobs API shape).

    Given the task run id of a for-each task, prints that task with its ``iterations``.
    """
    from sluice.cli.main import _report
    from sluice.engine.view import for_each_run_json
    from sluice.errors import NotFoundError

    with errors_to_exit_codes():
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
) -> None:
    """Cancel a run: its tasks are killed, downstream tasks become UPSTREAM_CANCELED."""
    from sluice.engine.clock import now_ms
    from sluice.engine.identity import driver_alive
    from sluice.states import LifeCycleState

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            run = store.get_run(run_id)
            if LifeCycleState(run.state).is_terminal:
                print_json({})
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
    print_json({})


@app.command("logs")
def logs(
    run_id: RunIdArg,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    attempt: Annotated[int | None, typer.Option("--attempt", help="Only this attempt number.")] = None,
) -> None:
    """Print the captured stdout and stderr of a run's task attempts."""
    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            store.get_run(run_id)
            task_runs = [
                tr
                for tr in store.list_task_runs(run_id)
                if (task is None or tr.task_key == task) and (attempt is None or tr.attempt_number == attempt)
            ]
        finally:
            store.close()
    if not task_runs:
        fail(f"run {run_id} has no task attempt matching --task {task} --attempt {attempt}", EXIT_INVALID)
    for tr in task_runs:
        typer.echo(f"=== {tr.task_key} attempt {tr.attempt_number} (task run {tr.run_id}) ===")
        for stream in ("stdout", "stderr"):
            text = _read_log(tr.attempt_dir, stream, LOG_LIMIT)[0]
            if text:
                typer.echo(f"--- {stream} ---")
                typer.echo(text, nl=not text.endswith("\n"))


def _read_log(attempt_dir: str | None, stream: str, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of a log, and whether it was cut."""
    if not attempt_dir:
        return "", False
    path = Path(attempt_dir) / f"{stream}.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace"), size > limit
    except FileNotFoundError:
        return "", False


@app.command("get-output")
def get_output(task_run_id: Annotated[int, typer.Argument(help="A task run id (not a job run id).")]) -> None:
    """Print a task run's output: its error, traceback and logs (Jobs API RunOutput)."""
    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            print_json(run_output(store, task_run_id))
        finally:
            store.close()


def run_output(store: Store, task_run_id: int) -> dict[str, Any]:
    from sluice.engine.view import task_run_json
    from sluice.errors import InvalidRequestError, NotFoundError

    try:
        tr = store.get_task_run(task_run_id)
    except NotFoundError:
        store.get_run(task_run_id)  # a job run id: Databricks refuses those for multi-task runs
        raise InvalidRequestError(
            "Retrieving the output of runs with multiple tasks is not supported. "
            "Please retrieve the output of each individual task run instead."
        ) from None
    run = store.get_run(tr.job_run_id)
    task_settings = next((t for t in run.settings.get("tasks", []) if t["task_key"] == tr.task_key), None)
    out: dict[str, Any] = {
        "metadata": {**task_run_json(tr, task_settings), "job_id": run.job_id, "job_run_id": run.run_id}
    }
    if tr.error:
        out["error"] = tr.error
    if tr.error_trace:
        out["error_trace"] = tr.error_trace
    if task_settings is not None and "notebook_task" in task_settings:
        # Databricks: notebooks have no `logs` (their output is the notebook); notebook_output is set
        # for every notebook task, empty when it did not call dbutils.notebook.exit.
        out["notebook_output"] = {}
        out.update(tr.output)
        return out
    stdout, cut_out = _read_log(tr.attempt_dir, "stdout", LOG_LIMIT)
    stderr, cut_err = _read_log(tr.attempt_dir, "stderr", LOG_LIMIT)
    if stdout or stderr:
        out["logs"] = (stdout + stderr)[-LOG_LIMIT:]
        out["logs_truncated"] = cut_out or cut_err or len(stdout) + len(stderr) > LOG_LIMIT
    out.update(tr.output)
    return out


@app.command("export")
def export(
    task_run_id: Annotated[int, typer.Argument(help="The task run id of a notebook task attempt.")],
    output_file: Annotated[
        Path | None,
        typer.Option("--file", "-o", help="Write the HTML here instead of to standard output."),
    ] = None,
) -> None:
    """Export a notebook task run as HTML: the executed notebook with its outputs, also after a failure."""
    from sluice.errors import InvalidRequestError

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            tr = store.get_task_run(task_run_id)
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
        if output_file is None:
            sys.stdout.write(html.read_text(encoding="utf-8"))
            return
        output_file.write_bytes(html.read_bytes())
    typer.echo(f"wrote {output_file}", err=True)


@app.command("repair")
def repair(
    run_id: RunIdArg,
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
    wait: Annotated[bool, typer.Option("--wait", help="Drive the repair here and print the run.")] = False,
    output: OutputOpt = Output.json,
) -> None:
    """Re-run tasks of a finished run inside the same run, with the job's current settings.

    Downstream tasks that did not succeed are re-run too (with --dependents, all downstream tasks).
    Without --wait a background process drives the repair and {"repair_id": N} is printed.
    """
    from sluice.cli.common import parse_pairs
    from sluice.engine.clock import now_ms
    from sluice.engine.repair import repair_run

    with errors_to_exit_codes():
        store = open_store(load_settings())
        try:
            record = repair_run(
                store,
                run_id,
                now=now_ms(),
                rerun_tasks=task or [],
                rerun_all_failed_tasks=all_failed,
                rerun_dependent_tasks=dependents,
                latest_repair_id=latest_repair_id,
                job_parameters=parse_pairs(param or [], "--param"),
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
    """Take over runs whose driver died: fail their orphaned attempts, retry by policy, finish the runs."""
    from sluice.cli.main import interruptible
    from sluice.engine.local import LocalRunner

    with errors_to_exit_codes():
        settings = load_settings()
        store = open_store(settings)
        try:
            with LocalRunner(store, home=settings.home, parallelism=settings.parallelism) as runner:
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
