"""The ``sluice`` command: run jobs locally, manage jobs and runs.

Heavy modules are imported inside commands, so ``sluice --help`` and every command start fast.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
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
    parse_pairs,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from sluice.cli.progress import LiveProgress
    from sluice.engine.driver import Driver
    from sluice.spec.cache import CompiledJob
    from sluice.store import Store
    from sluice.store.records import JobRecord, TaskRunRecord

app = typer.Typer(
    name="sluice",
    help="Databricks Jobs and Workflows on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PathArg = Annotated[
    Path,
    typer.Argument(
        help="A bundle (databricks.yml or its directory), a Jobs API JSON file, "
        "or a YAML file holding one job."
    ),
]
JobOpt = Annotated[
    str | None, typer.Option("--job", help="Key of the job to use when the file defines several.")
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Bundle target (default: the one marked default: true).")
]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Bundle variable override name=value; repeatable.")
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="Job parameter name=value for this run; repeatable.")
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (default) or json.")]


def _load(path: Path, job: str | None, target: str | None, var: list[str] | None) -> list[CompiledJob]:
    from sluice.spec.cache import load_validated

    jobs = load_validated(path, target=target, variables=parse_pairs(var or [], "--var"), job_key=job)
    _print_warnings(w for j in jobs for w in j.warnings)
    if not jobs:
        fail(f"{path} defines no job", EXIT_INVALID)
    return jobs


def _print_warnings(warnings: Iterable[str]) -> None:
    """Loading warnings (unknown bundle fields, as the Databricks CLI warns), each once, on stderr."""
    for warning in dict.fromkeys(warnings):
        typer.echo(f"Warning: {warning}", err=True)


def _choose(path: Path, jobs: list[CompiledJob], key: str | None) -> CompiledJob:
    """The job ``--job`` names, or the only one."""
    keys = ", ".join(j.key for j in jobs)
    if key is None:
        if len(jobs) > 1:
            fail(f"{path} defines several jobs ({keys}); choose one with --job KEY", EXIT_INVALID)
        return jobs[0]
    found = next((j for j in jobs if j.key == key), None)
    if found is None:
        fail(f"{path} has no job '{key}'; its jobs are: {keys}", EXIT_INVALID)
    return found


@app.command()
def run(
    path: PathArg,
    job: JobOpt = None,
    target: TargetOpt = None,
    var: VarOpt = None,
    param: ParamOpt = None,
    output: OutputOpt = Output.table,
    parallelism: Annotated[
        int | None, typer.Option(help="Task processes at once (default: CPU count).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run only this task; '+key' adds its upstream tasks, 'key+' its downstream."
        ),
    ] = None,
) -> None:
    """Validate a job, deploy it into the store and run it to completion here.

    Exit code 0 for SUCCESS or SUCCESS_WITH_FAILURES, 1 for FAILED, TIMEDOUT, CANCELED or a skipped run, 2 for
    invalid input.
    """
    from sluice.executors.local import LocalExecutor

    executor = LocalExecutor()
    executor.start()  # the task fork server boots while the job is loaded and validated
    try:
        with errors_to_exit_codes():
            bundle = _load(path, None, target, var)
            chosen = _choose(path, bundle, job)
            settings = load_settings()
            store = open_store(settings)
            try:
                request = RunRequest(chosen, bundle, parse_pairs(param or [], "--param"), only or [], output)
                code = _run_loaded(
                    store,
                    request,
                    executor,
                    settings.home,
                    parallelism or settings.parallelism,
                    git_timeout=settings.git_timeout,
                )
            finally:
                store.close()
    finally:
        executor.close()
    raise typer.Exit(code)


@dataclass(frozen=True)
class RunRequest:
    """What ``sluice run`` was asked to run."""

    job: CompiledJob
    #: Every job of the same file, for run-job tasks that name one by key.
    siblings: list[CompiledJob]
    params: dict[str, str]
    only: list[str]
    output: Output


def _run_loaded(
    store: Store,
    request: RunRequest,
    executor: object,
    home: Path,
    parallelism: int,
    *,
    git_timeout: float | None = None,
) -> int:
    from sluice.cli.runs_cmd import drive_in_background
    from sluice.engine.clock import now_ms
    from sluice.engine.local import LocalRunner, deploy_with_references
    from sluice.engine.submit import run_now
    from sluice.executors.local import LocalExecutor
    from sluice.identity import local_user
    from sluice.states import LifeCycleState

    assert isinstance(executor, LocalExecutor)
    deployed = deploy_with_references(store, request.job, request.siblings, now=now_ms())
    output = request.output
    listener = _progress(output)
    with LocalRunner(
        store,
        home=home,
        parallelism=parallelism,
        listener=listener,
        executor=executor,
        git_timeout=git_timeout,
    ) as runner:
        # Orphans of this job hold its concurrency slots: reconcile them here. Others get their own driver.
        if runner.adopt_orphans(job_id=deployed.job.job_id):
            drive_in_background()
        run_record, _ = run_now(
            store,
            deployed.job,
            now=now_ms(),
            job_parameters=request.params,
            driver=str(runner.driver_id),
            only=request.only or None,
            creator=local_user(),
        )
        if run_record.state == LifeCycleState.QUEUED.value:
            typer.echo(
                f"Run {run_record.run_id} is queued: {run_record.state_message or 'waiting for a slot'}",
                err=True,
            )
        runner.submit(run_record)
        with interruptible(runner.driver), listener or nullcontext(), _notifier(store, deployed.job):
            runner.driver.run_until_done()
    return _report(store, run_record.run_id, output)


def _notifier(store: Store, job: JobRecord) -> AbstractContextManager[Any]:
    """Notifications sent while the run goes on, when the job or a job it runs asks for any."""
    from sluice.engine.local import wants_notifications

    pending = [job.settings]
    seen: set[int] = {job.job_id}
    while pending:
        settings = pending.pop()
        if wants_notifications(settings):
            from sluice.notify import NotifySettings, notifying

            return notifying(store, NotifySettings.from_env())
        for task in settings.get("tasks") or ():
            for holder in (task, (task.get("for_each_task") or {}).get("task") or {}):
                target = (holder.get("run_job_task") or {}).get("job_id")
                if isinstance(target, int) and target not in seen:
                    seen.add(target)
                    pending.append(store.get_job(target).settings)
    return nullcontext()


@contextmanager
def interruptible(driver: Driver) -> Iterator[None]:
    """Ctrl-C or SIGTERM cancels the runs being driven (and waits for them); a second one stops at once."""
    hits = []

    def on_signal(signum: int, _frame: object) -> None:
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt
        typer.echo(
            "Canceling: killing the running tasks (interrupt again to stop without waiting).", err=True
        )
        driver.interrupt()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress(output: Output) -> LiveProgress | None:
    if output is Output.table and sys.stderr.isatty():
        from sluice.cli.progress import LiveProgress

        return LiveProgress()
    return None


def _report(store: Store, run_id: int, output: Output) -> int:
    from sluice.engine.view import run_json

    run_record = store.get_run(run_id)
    task_runs = store.list_task_runs(run_id)
    if output is Output.json:
        repairs = store.list_repairs(run_id) if run_record.repair_count else []
        print_json(run_json(run_record, task_runs, repairs=repairs, include_history=bool(repairs)))
    else:
        order = {t["task_key"]: i for i, t in enumerate(run_record.settings.get("tasks", []))}
        parents = {tr.run_id: tr.task_key for tr in task_runs if tr.parent_task_run_id is None}

        def label(tr: TaskRunRecord) -> str:
            if tr.parent_task_run_id is None:
                return tr.task_key
            return f"{parents.get(tr.parent_task_run_id, tr.task_key)}[{tr.iteration}]"

        def position(tr: TaskRunRecord) -> tuple[int, int, int, int]:
            key = parents.get(tr.parent_task_run_id, tr.task_key) if tr.parent_task_run_id else tr.task_key
            return (
                order.get(key, len(order)),
                tr.iteration if tr.iteration is not None else -1,
                tr.attempt_number,
                tr.run_id,
            )

        rows = [
            (
                label(tr),
                tr.run_id,
                tr.attempt_number,
                tr.result_state or tr.state,
                f"{(tr.end_time - tr.start_time) / 1000:.2f}s" if tr.start_time and tr.end_time else "",
                (tr.state_message or (f"outcome: {tr.outcome}" if tr.outcome else ""))[:100],
            )
            for tr in sorted(task_runs, key=position)
        ]
        print_table(
            ["task", "task_run_id", "attempt", "result", "duration", "message"],
            rows,
            title=f"run {run_id}: {run_record.result_state or run_record.state}",
        )
        if run_record.state_message:
            typer.echo(run_record.state_message)
        typer.echo(f"Logs: sluice runs logs {run_id} --task TASK (or: sluice runs logs TASK_RUN_ID)")
    return exit_code_for(run_record.result_state)


@app.command()
def validate(path: PathArg, job: JobOpt = None, target: TargetOpt = None, var: VarOpt = None) -> None:
    """Check job definitions without running or writing anything (exit 2 when invalid)."""
    from sluice.spec.validate import load_and_validate

    with errors_to_exit_codes():
        jobs = load_and_validate(path, target=target, variables=parse_pairs(var or [], "--var"), job_key=job)
    _print_warnings(str(w) for j in jobs for w in j.warnings)
    for loaded in jobs:
        count = len(loaded.settings.tasks)
        typer.echo(f"{loaded.key}: OK ({count} task{'' if count == 1 else 's'})")


@app.command()
def deploy(
    path: PathArg,
    job: JobOpt = None,
    target: TargetOpt = None,
    var: VarOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update the jobs a file defines (redeploying never duplicates a job)."""
    from sluice.engine.clock import now_ms
    from sluice.engine.local import deploy_with_references as deploy_job

    with errors_to_exit_codes():
        bundle = _load(path, None, target, var)
        jobs = [_choose(path, bundle, job)] if job else bundle
        store = open_store(load_settings())
        try:
            results = [(j.key, deploy_job(store, j, bundle, now=now_ms())) for j in jobs]
        finally:
            store.close()
    if output is Output.json:
        print_json(
            [
                {"key": k, "job_id": d.job.job_id, "created": d.created, "changed": d.changed}
                for k, d in results
            ]
        )
        return
    for key, d in results:
        verb = "created" if d.created else ("updated" if d.changed else "unchanged")
        typer.echo(f"{key}: job {d.job.job_id} {verb}")


def full_app() -> typer.Typer:
    """Every command: the top-level ones with the ``jobs`` and ``runs`` groups."""
    from sluice.cli import (
        catalog_cmd,
        clusters_cmd,
        destinations_cmd,
        example_cmd,
        jobs_cmd,
        runs_cmd,
        secrets_cmd,
        serve_cmd,
        tokens_cmd,
        volumes_cmd,
    )

    if not app.registered_groups:
        app.add_typer(jobs_cmd.app, name="jobs")
        app.add_typer(runs_cmd.app, name="runs")
        app.add_typer(example_cmd.app, name="example-data")
        app.add_typer(secrets_cmd.app, name="secrets")
        app.add_typer(destinations_cmd.app, name="destinations")
        app.add_typer(serve_cmd.app)  # the top-level `serve` command
        app.add_typer(tokens_cmd.app, name="tokens")
        app.add_typer(clusters_cmd.app, name="clusters")
        app.add_typer(catalog_cmd.app, name="catalog")
        app.add_typer(volumes_cmd.app, name="volumes")
    return app


def main() -> None:
    # `sluice run` is the hot path: an app of that one command starts ~35 ms sooner than the full one,
    # whose 16 commands typer would build (and whose modules import) first. Same function, same options.
    if sys.argv[1:2] == ["run"] and "--help" not in sys.argv[2:]:
        run_only = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        run_only.command()(run)
        try:
            run_only(args=sys.argv[2:], prog_name="sluice run")
            code = 0
        except SystemExit as exc:  # typer's standalone mode always ends this way
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        # Everything is written and closed by now (store, executor, output): skip the interpreter's
        # ~20 ms of module teardown, which would only delay the exit the caller is waiting for.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    full_app()()


if __name__ == "__main__":
    main()
