"""dbutils.notebook.exit in a task: the seed's try/except/exit template succeeds with its message."""

from __future__ import annotations

from e2e.helpers import Workspace, py_task, task_result

TEMPLATE = """
from sluice.runtime import dbutils

try:
    raise LookupError("Table or view not found: bronze_data")
except Exception as e:
    error_msg = f"Task failed: {str(e)}"
    print(error_msg)
    dbutils.notebook.exit(error_msg)
print("not reached")
"""


def test_the_try_except_exit_template_succeeds_with_its_message(ws: Workspace) -> None:
    ws.write("template.py", TEMPLATE)
    done = ws.run(ws.job([py_task("t", "template.py"), py_task("after", "ok.py", deps=["t"])]))
    assert done.returncode == 0, done.stderr
    assert done.run.results() == {"t": "SUCCESS", "after": "SUCCESS"}
    output = ws.json("runs", "get-output", str(done.run.task("t")["run_id"]))
    message = "Task failed: Table or view not found: bronze_data"
    assert output["notebook_output"] == {"result": message, "truncated": False}
    assert output["logs"] == message + "\n"  # the print after exit did not run
    assert task_result(done.run.task("t")) == "SUCCESS"
