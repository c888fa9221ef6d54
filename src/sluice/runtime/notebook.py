"""``dbutils.notebook``: ``exit`` ends the notebook (or script) with a value; ``run`` starts a child run.

``exit(value)`` raises :class:`NotebookExit`, a ``SystemExit`` with exit status 0, so that:

- a user's ``except Exception:`` does not swallow it and no later statement or cell runs. On Databricks
  exit reportedly raises an ordinary exception that ``except Exception`` *does* catch (a pitfall users
  document; no official statement found); Sluice deliberately does not reproduce that, so "exit stops the
  notebook" always holds;
- a task process ends with status 0 (``python file.py`` and Sluice's task runner both treat an uncaught
  ``SystemExit(0)`` as success) and a notebook runner can catch ``NotebookExit`` by name.

In a job, ``exit`` first writes ``<attempt_dir>/notebook_exit.json`` = ``{"result": value, "truncated":
bool}`` atomically (Databricks keeps the first 5 MB of the value in ``notebook_output.result``), so the
control plane has the value even if the process dies right after. Outside a job it only raises.
"""

from __future__ import annotations

import os
import sys

from sluice.runtime.context import current_context, write_json_atomic

TYPE_CHECKING = False  # typing is not imported at run time: this module is on task paths
if TYPE_CHECKING:
    from collections.abc import Mapping

    from sluice.runtime.entry_point import EntryPoint


NOTEBOOK_EXIT_FILE = "notebook_exit.json"
#: Databricks keeps the first 5 MB of an exit value (``notebook_output.result``), here 5 MiB of UTF-8.
MAX_RESULT_BYTES = 5 * 1024 * 1024


class NotebookExit(SystemExit):
    """Raised by :func:`exit`: the notebook stops and its task succeeds with :attr:`value`."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value
        self.code = 0  # an uncaught NotebookExit ends the process with status 0: the task succeeds

    def __str__(self) -> str:
        return self.value


def truncate_result(value: str) -> tuple[str, bool]:
    """``value`` cut to :data:`MAX_RESULT_BYTES` of UTF-8 (never inside a character), and whether it was."""
    if len(value) * 4 <= MAX_RESULT_BYTES:  # cannot exceed the limit: skip encoding (the usual case)
        return value, False
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_RESULT_BYTES:
        return value, False
    return data[:MAX_RESULT_BYTES].decode("utf-8", "ignore"), True


class NotebookUtil:
    """``dbutils.notebook``."""

    @property
    def entry_point(self) -> EntryPoint:
        """``entry_point.getDbutils().notebook().getContext()``: see :mod:`sluice.runtime.entry_point`."""
        from sluice.runtime.entry_point import entry_point

        return entry_point

    def exit(self, value: str) -> None:
        """Stop the notebook now; in a job the task succeeds with ``value`` as its notebook output."""
        text = value if isinstance(value, str) else str(value)  # Databricks records strings only
        context = current_context()
        if context is not None:
            redaction = sys.modules.get("sluice.runtime.redact")  # loaded once the task read a secret
            shown = redaction.redact(text) if redaction is not None else text  # runs/get-output shows it
            result, truncated = truncate_result(shown)
            os.makedirs(context.attempt_dir, exist_ok=True)
            write_json_atomic(
                os.path.join(context.attempt_dir, NOTEBOOK_EXIT_FILE),
                {"result": result, "truncated": truncated},
            )
        raise NotebookExit(text)

    def run(self, path: str, timeout_seconds: int = 0, arguments: Mapping[str, str] | None = None) -> str:
        """Run the notebook ``path`` as a child run (WORKFLOW_RUN) and return its exit value.

        ``arguments`` set the child's widgets; relative paths start from the calling notebook's folder.
        Raises ``WorkflowException`` when the child fails, is canceled or does not finish within
        ``timeout_seconds`` (0: no timeout).
        """
        context = current_context()
        if context is None:
            raise RuntimeError(
                f"dbutils.notebook.run('{path}', ...) needs a job run: it starts the notebook as a child run "
                "through Sluice's control plane. Outside a job, use %run to include the notebook inline"
            )
        from sluice.engine.workflow_runs import run_notebook

        return run_notebook(context, path, int(timeout_seconds), arguments)


#: ``dbutils.notebook`` of this process.
notebook = NotebookUtil()
