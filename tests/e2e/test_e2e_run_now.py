"""run-now extras through the CLI: ``--only`` with its closures, and idempotency tokens."""

from __future__ import annotations

from e2e.helpers import Workspace, py_task


def chain(ws: Workspace) -> str:
    """a -> b -> c, and x on its own; returns the job file."""
    tasks = [
        py_task("a", "ok.py"),
        py_task("b", "ok.py", deps=["a"]),
        py_task("c", "ok.py", deps=["b"]),
        py_task("x", "ok.py"),
    ]
    return str(ws.job(tasks))


def test_only_runs_the_named_tasks_and_their_closures(ws: Workspace) -> None:
    job = chain(ws)
    assert sorted(ws.run(ws.dir / "job.yml", "--only", "b").run.results()) == ["b"]
    assert sorted(ws.run(ws.dir / "job.yml", "--only", "+b").run.results()) == ["a", "b"]
    assert sorted(ws.run(ws.dir / "job.yml", "--only", "b+").run.results()) == ["b", "c"]
    assert sorted(ws.run(ws.dir / "job.yml", "--only", "+b", "--only", "x").run.results()) == ["a", "b", "x"]
    bad = ws.cli("run", job, "--only", "nope")
    assert bad.returncode == 2
    assert "nope" in bad.stderr


def test_the_same_idempotency_token_gives_the_same_run(ws: Workspace) -> None:
    job_id = ws.json("deploy", chain(ws), "--output", "json")[0]["job_id"]
    first = ws.json(
        "jobs",
        "run-now",
        str(job_id),
        "--idempotency-token",
        "nightly-2026-11-25",
        "--wait",
        "--output",
        "json",
    )
    again = ws.json("jobs", "run-now", str(job_id), "--idempotency-token", "nightly-2026-11-25")
    assert again["run_id"] == first["run_id"]
    other = ws.json(
        "jobs",
        "run-now",
        str(job_id),
        "--idempotency-token",
        "nightly-2026-11-26",
        "--wait",
        "--output",
        "json",
    )
    assert other["run_id"] != first["run_id"]
    assert len(ws.list_runs()) == 2
    too_long = ws.cli("jobs", "run-now", str(job_id), "--idempotency-token", "x" * 65)
    assert too_long.returncode == 2
