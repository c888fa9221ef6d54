"""run_job_task end to end: a task that runs another job and takes its result."""

from __future__ import annotations

import json
import signal

import pytest

from e2e.helpers import Workspace, py_task, task_message, task_result, wait_for

HELLO = """
import sys, time
print("hello", sys.argv[1:])
if sys.argv[2] == "sleep":
    time.sleep(60)
if sys.argv[2] == "fail":
    raise SystemExit("child failed on purpose")
"""

#: The job the parents below run: prints its parameters, fails when mode is "fail".
CHILD = """
    child:
      name: child
      max_concurrent_runs: 5
      parameters: [{name: who, default: nobody}, {name: mode, default: ok}]
      tasks:
        - task_key: hello
          spark_python_task:
            python_file: hello.py
            parameters: ["{{job.parameters.who}}", "{{job.parameters.mode}}"]
"""

BUNDLE = (
    """
bundle: {name: rj}
resources:
  jobs:"""
    + CHILD
    + """    parent:
      name: parent
      tasks:
        - task_key: call
          run_job_task: {job_id: "${resources.jobs.child.id}", job_parameters: {who: "run {{job.run_id}}"}}
        - task_key: call_fail
          run_job_task: {job_id: "${resources.jobs.child.id}", job_parameters: {mode: fail}}
        - task_key: after
          depends_on: [{task_key: call}]
          spark_python_task: {python_file: hello.py, parameters: [after, ok]}
"""
)


def test_a_bundle_job_runs_a_sibling_by_key(ws: Workspace) -> None:
    ws.write("hello.py", HELLO)
    ws.write("databricks.yml", BUNDLE)
    done = ws.run(ws.dir, "--job", "parent")
    assert done.returncode == 1  # call_fail is a failed leaf
    run = done.run
    assert run.results() == {"call": "SUCCESS", "call_fail": "FAILED", "after": "SUCCESS"}
    assert isinstance(run.task("call")["run_job_task"]["job_id"], int)  # the bundle key became the job's id
    child_id = run.task("call")["run_job_task"]["job_id"]
    assert f"of job 'child' (id {child_id}) ended FAILED" in task_message(run.task("call_fail"))
    call = run.task("call")
    assert call["resolved_values"]["run_job_task"]["job_parameters"] == {"who": f"run {run.run_id}"}
    output = ws.json("runs", "get-output", str(call["run_id"]))
    child_run = ws.get_run(output["run_job_output"]["run_id"])
    assert child_run.data["trigger"] == "RUN_JOB_TASK"
    assert child_run.data["trigger_info"] == {"run_id": call["run_id"]}
    assert child_run.result_state == "SUCCESS"
    assert child_run.data["job_parameters"][0]["value"] == f"run {run.run_id}"
    logs = ws.cli("runs", "logs", str(child_run.run_id)).stdout
    assert f"hello ['run {run.run_id}', 'ok']" in logs


def test_a_job_that_would_run_itself_is_refused_before_anything_is_written(ws: Workspace) -> None:
    ws.write(
        "databricks.yml",
        """
bundle: {name: loop}
resources:
  jobs:
    a: {tasks: [{task_key: t, run_job_task: {job_id: "${resources.jobs.b.id}"}}]}
    b: {tasks: [{task_key: t, run_job_task: {job_id: "${resources.jobs.a.id}"}}]}
""",
    )
    done = ws.cli("run", str(ws.dir), "--job", "a")
    assert done.returncode == 2
    assert "would run itself: a -> b -> a" in done.stderr
    assert ws.list_jobs() == []


def test_an_unknown_job_id_is_refused(ws: Workspace) -> None:
    job = ws.job([{"task_key": "t", "run_job_task": {"job_id": 4242}}])
    done = ws.cli("run", str(job))
    assert done.returncode == 2
    assert "job 4242, which does not exist" in done.stderr


@pytest.mark.slow
def test_cancelling_the_parent_cancels_the_child(ws: Workspace) -> None:
    ws.write("hello.py", HELLO)
    child = ws.job([py_task("hello", "hello.py", params=["x", "sleep"])], file="child.yml", name="child")
    deployed = ws.json("deploy", str(child), "--output", "json")
    parent = ws.job(
        [{"task_key": "call", "run_job_task": {"job_id": deployed[0]["job_id"]}}], file="parent.yml"
    )
    bg = ws.start("run", str(parent), "--output", "json")

    def child_running() -> int | None:
        runs = [r for r in ws.list_runs("--active-only") if r["trigger"] == "RUN_JOB_TASK"]
        return runs[0]["run_id"] if runs and runs[0]["state"]["life_cycle_state"] == "RUNNING" else None

    child_id = wait_for(child_running, timeout=30, what="the child run to start")
    bg.proc.send_signal(signal.SIGINT)
    finished = bg.finish(timeout=30)
    assert finished.run.result_state == "CANCELED"
    assert task_result(finished.run.task("call")) == "CANCELED"
    assert ws.get_run(child_id).result_state == "CANCELED"


def test_task_parameters_json_shape(ws: Workspace) -> None:
    """The task entry keeps the run_job_task settings as written (job_id, job_parameters)."""
    ws.write("hello.py", HELLO)
    child = ws.job([py_task("hello", "hello.py", params=["x", "ok"])], file="child.yml", name="child")
    job_id = ws.json("deploy", str(child), "--output", "json")[0]["job_id"]
    parent = ws.job(
        [{"task_key": "call", "run_job_task": {"job_id": job_id, "job_parameters": {"a": "1"}}}],
        file="parent.yml",
    )
    done = ws.run(parent)
    assert done.returncode == 1  # the child job defines no parameter 'a'
    assert "'a'" in task_message(done.run.task("call")), json.dumps(done.run.task("call"))


FOR_EACH_BUNDLE = (
    """
bundle: {name: rjfe}
resources:
  jobs:"""
    + CHILD
    + """    fan:
      name: fan
      tasks:
        - task_key: each
          for_each_task:
            inputs: '[{"who": "a", "mode": "ok"}, {"who": "b", "mode": "fail"}, {"who": "c", "mode": "ok"}]'
            concurrency: 2
            task:
              task_key: call
              run_job_task:
                job_id: "${resources.jobs.child.id}"
                job_parameters: {who: "{{input.who}}", mode: "{{input.mode}}"}
"""
)


def test_a_for_each_runs_a_job_per_iteration(ws: Workspace) -> None:
    ws.write("hello.py", HELLO)
    ws.write("databricks.yml", FOR_EACH_BUNDLE)
    done = ws.run(ws.dir, "--job", "fan")
    assert done.returncode == 1
    assert done.run.results()["each"] == "FAILED"
    assert "1 of 3 iterations failed" in task_message(done.run.task("each"))
    children = [r for r in ws.list_runs() if r["trigger"] == "RUN_JOB_TASK"]
    assert len(children) == 3
    params = {}
    for child in children:
        run = ws.get_run(child["run_id"])
        values = {p["name"]: p["value"] for p in run.data["job_parameters"]}
        params[values["who"]] = (values["mode"], run.result_state)
    assert params == {"a": ("ok", "SUCCESS"), "b": ("fail", "FAILED"), "c": ("ok", "SUCCESS")}


PUSHDOWN_BUNDLE = (
    """
bundle: {name: rjp}
resources:
  jobs:"""
    + CHILD
    + """    parent:
      name: parent
      parameters: [{name: who, default: parent default}, {name: region, default: eu}]
      tasks:
        - task_key: call
          run_job_task: {job_id: "${resources.jobs.child.id}", job_parameters: {who: task value, mode: ok}}
"""
)


def test_the_parents_job_parameters_are_pushed_down_over_the_tasks_own(ws: Workspace) -> None:
    # Databricks pushes job parameters down to Run Job tasks like to any key/value task, a job parameter
    # winning over the task's own of the same key; `region` (not a parameter of the child) is left out.
    ws.write("hello.py", HELLO)
    ws.write("databricks.yml", PUSHDOWN_BUNDLE)
    done = ws.run(ws.dir, "--job", "parent", "--param", "who=from run-now")
    assert done.returncode == 0, done.stderr
    call = done.run.task("call")
    pushed = {"who": "from run-now", "mode": "ok"}
    assert call["resolved_values"]["run_job_task"]["job_parameters"] == pushed
    child_run = ws.get_run(ws.json("runs", "get-output", str(call["run_id"]))["run_job_output"]["run_id"])
    assert child_run.result_state == "SUCCESS"
    assert {p["name"]: p["value"] for p in child_run.data["job_parameters"]} == pushed
    assert "hello ['from run-now', 'ok']" in ws.cli("runs", "logs", str(child_run.run_id)).stdout
