"""Databricks cell magics inside an IPython kernel: ``%sql %sh %fs %run %pip %md %python``, ``%scala``/``%r``.

A Databricks cell names its magic on its first line, alone (``%sql`` then the query below it), where IPython
would read a *line* magic. :func:`register` installs an input transformer that rewrites such cells to
IPython cell magics (``%%sluice_sql``) before IPython parses them, and the cell magics themselves:

- ``%python``: the rest of the cell is Python;
- ``%md`` / ``%md-sandbox``: displayed as Markdown (a job's runner does not send markdown cells at all);
- ``%sql``: each statement through ``spark.sql(...)`` (so ``SET`` and ``${k}`` of settings work, see
  :mod:`sluice.catalog.sql`), the last result displayed; ``${name}`` is replaced
  by the widget's value (legacy: a deprecation note naming the ``:name`` form goes to the task's stderr)
  and ``:name`` markers are bound to widget values (Databricks' parameter markers);
- ``%sh``: ``bash -c`` on this machine in the notebook's working directory, output streamed into the cell;
  a non-zero exit status fails the cell;
- ``%fs``: ``dbutils.fs`` shorthand (``%fs ls /path`` is ``dbutils.fs.ls("/path")``, ``-r`` sets recurse);
- ``%run ./other [$name=value ...]``: the other notebook's cells run here, in this namespace, with the
  arguments as widget values while it runs; paths are relative to the notebook holding the ``%run``;
- ``%pip install ...``: into this notebook's own directory (see :func:`pip_target`), never into the
  environment Sluice itself runs from; that directory is put first on ``sys.path`` and ``PYTHONPATH``;
- ``%scala``, ``%r``: a clear error (only Python and SQL cells run in Sluice).

Used by the job kernel (:mod:`sluice.notebooks.kernel`) and by ``%load_ext sluice`` in interactive Jupyter.
"""

from __future__ import annotations

import ast
import importlib
import linecache
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

#: Databricks' first-line magics and the IPython cell magic each becomes (None: the body is Python).
CELL_MAGICS: dict[str, str | None] = {
    "%python": None,
    "%sql": "sluice_sql",
    "%sh": "sluice_sh",
    "%fs": "sluice_fs",
    "%run": "sluice_run",
    "%pip": "sluice_pip",
    "%md": "sluice_md",
    "%md-sandbox": "sluice_md",
    "%scala": "sluice_unsupported",
    "%r": "sluice_unsupported",
}
#: Environment: the notebook file the kernel runs (relative ``%run`` paths start from its folder).
NOTEBOOK_PATH_ENV = "SLUICE_NOTEBOOK_PATH"
#: Environment: a JSON file listing the name of each code cell the runner sends, in order ("cell 3 ('Load')").
CELL_LABELS_ENV = "SLUICE_NOTEBOOK_CELLS"
#: Nesting limit of ``%run`` (a notebook that includes itself stops here with a clear error).
MAX_RUN_DEPTH = 32


class MagicError(Exception):
    """A magic cell that cannot run as written; the message names the cell and the fix."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback through Sluice's own code: the message says it all."""
        return [f"{type(self).__name__}: {self}"]


class ShellCommandFailed(MagicError):
    """A ``%sh`` cell whose script exited with a non-zero status."""


class UnsupportedLanguage(MagicError):
    """A ``%scala`` or ``%r`` cell."""


class NotebookRunError(MagicError):
    """A ``%run`` that cannot find or read its notebook."""


# ------------------------------------------------------------------------------------ input transformer


def transform_databricks_magics(lines: list[str]) -> list[str]:
    """IPython cleanup transformer: a cell starting with a Databricks magic becomes an IPython cell magic."""
    if not lines:
        return lines
    first = lines[0]
    stripped = first.strip()
    if not stripped.startswith("%") or stripped.startswith("%%"):
        return lines
    token = stripped.split(None, 1)[0]
    if token.lower() not in CELL_MAGICS:
        return lines
    rest = stripped[len(token) :].strip()
    target = CELL_MAGICS[token.lower()]
    body = lines[1:]
    if target is None:  # %python: plain Python below (or on) the magic line
        return ([rest + "\n"] if rest else []) + body
    if target == "sluice_unsupported":
        rest = token.lower().lstrip("%")
    if body and not body[-1].endswith("\n"):
        body = [*body[:-1], body[-1] + "\n"]
    # IPython refuses a cell magic with an empty body; a lone newline keeps one-line magics (%run ./x) valid.
    return [f"%%{target} {rest}\n", *(body or ["\n"])]


# ------------------------------------------------------------------------------------------ cell labels


def current_cell_label(shell: InteractiveShell) -> str:
    """``cell 3 ('Load data')`` for the cell the job runner is executing, else ``this cell``."""
    import json

    try:
        with open(os.environ.get(CELL_LABELS_ENV, ""), encoding="utf-8") as f:
            labels = json.load(f)
        count = int(shell.execution_count) - 1  # IPython counts the running cell before running it
    except (OSError, ValueError, TypeError):
        return "this cell"
    if isinstance(labels, list) and 1 <= count <= len(labels):
        return str(labels[count - 1])
    return "this cell"


# ------------------------------------------------------------------------------------------------ state


class _State:
    """Per-kernel state of the magics: the stack of notebook folders ``%run`` resolves against."""

    def __init__(self) -> None:
        start = os.environ.get(NOTEBOOK_PATH_ENV)
        self.notebooks: list[Path] = [Path(start)] if start else []
        self.pip_dir: str | None = None

    @property
    def folder(self) -> Path:
        return self.notebooks[-1].parent if self.notebooks else Path.cwd()


_state = _State()


def _user_object(shell: InteractiveShell, name: str) -> Any:
    return shell.user_ns.get(name)


def _display(shell: InteractiveShell, value: object) -> None:
    show = _user_object(shell, "display")
    if show is None:
        from IPython.display import display as show
    show(value)


# -------------------------------------------------------------------------------------------------- %sql

_LEGACY_SUBST = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def split_sql(text: str) -> list[str]:
    """Statements of a SQL cell: split on ``;`` outside quotes and comments, empty ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    i, quote = 0, ""
    while i < len(text):
        char = text[i]
        if quote:
            current.append(char)
            if char == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
            current.append(char)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def _widget_values(shell: InteractiveShell) -> dict[str, str]:
    dbutils = _user_object(shell, "dbutils")
    try:
        return dict(dbutils.widgets.getAll()) if dbutils is not None else {}
    except Exception:  # a dbutils without widgets: no parameters to bind
        return {}


_GET_ARGUMENT = re.compile(
    r"""\bgetArgument\(\s*(['"])(?P<name>[^'"]+)\1\s*(?:,\s*(['"])(?P<default>[^'"]*)\3\s*)?\)"""
)


def _get_argument(match: re.Match[str], values: Mapping[str, str]) -> str:
    """``getArgument('name'[, 'default'])`` in SQL: the widget's value as a string literal."""
    name, default = match.group("name"), match.group("default")
    value = values.get(name, default)
    if value is None:
        raise MagicError(
            f"getArgument('{name}') in %sql: no widget or job parameter '{name}' is defined; create it with "
            f"dbutils.widgets.text('{name}', ...) or pass a default: getArgument('{name}', 'default')"
        )
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def substitute_get_argument(statement: str, values: Mapping[str, str]) -> str:
    """``getArgument('name')`` / ``getArgument('name', 'default')`` replaced by string literals."""
    return _GET_ARGUMENT.sub(lambda m: _get_argument(m, values), statement)


def legacy_names(statement: str, values: Mapping[str, str]) -> list[str]:
    """The parameters a statement uses in the legacy ``${name}`` form (those with a value), in order."""
    found = [m.group(1) for m in _LEGACY_SUBST.finditer(statement) if m.group(1) in values]
    return list(dict.fromkeys(found))


#: Legacy ``${name}`` parameters already reported in this kernel (one note per name and notebook run).
_legacy_reported: set[str] = set()


def _note_legacy(names: list[str], where: str) -> None:
    """A deprecation note in the task log (stderr) for each legacy ``${name}`` not reported yet."""
    for name in names:
        if name in _legacy_reported:
            continue
        _legacy_reported.add(name)
        print(
            f"sluice: deprecated: ${{{name}}} in the %sql of {where} is legacy text substitution; "
            f"use the parameter marker :{name} instead (it is bound as a value, not pasted into the SQL)",
            file=sys.stderr,
        )


def run_sql(shell: InteractiveShell, query: str) -> None:
    """``%sql``: every statement through ``spark.sql``; the last one's result is displayed."""
    statements = split_sql(query)
    if not statements:
        return
    spark = _user_object(shell, "spark")
    where = current_cell_label(shell)
    if spark is None or getattr(spark, "sluice_unavailable", False):
        reason = getattr(spark, "sluice_reason", "no 'spark' session is defined")
        raise MagicError(
            f"{where} is a %sql cell, which runs through spark.sql(...) and needs the compute engine: "
            f"{reason}"
        )
    from sluice.sqltask import SqlTaskError, run_statement

    values = _widget_values(shell)
    fix = "define a widget of that name or pass it as a task or job parameter"
    result: Any = None
    for statement in statements:
        _note_legacy(legacy_names(statement, values), where)
        text = substitute_get_argument(statement, values)
        text = _LEGACY_SUBST.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        # Commands (INSERT, UPDATE, DELETE, MERGE ...) take no args on Sail: sql_task's binding inlines
        # their values as safe literals; queries get them as named parameters.
        try:
            result = run_statement(spark, text, values, fix=fix)
        except SqlTaskError as exc:
            raise MagicError(f"{where}: {exc}") from None
    if result is not None:
        _display(shell, result)


# --------------------------------------------------------------------------------------------------- %sh


def run_sh(shell: InteractiveShell, script: str) -> None:
    """``%sh``: bash on this machine; output streamed into the cell; non-zero exit fails the cell."""
    sys.stdout.flush()
    proc = subprocess.Popen(
        ["bash", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=os.getcwd(),
    )
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(line.decode("utf-8", "replace"))
        sys.stdout.flush()
    code = proc.wait()
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise ShellCommandFailed(f"the %sh script of {current_cell_label(shell)} {how}")


# --------------------------------------------------------------------------------------------------- %fs

#: ``%fs`` commands: name -> (dbutils.fs method, flags that set ``recurse=True``).
_FS_COMMANDS: dict[str, str] = {
    "ls": "ls",
    "head": "head",
    "cat": "head",
    "cp": "cp",
    "mv": "mv",
    "rm": "rm",
    "mkdirs": "mkdirs",
    "put": "put",
    "mounts": "mounts",
}


def run_fs(shell: InteractiveShell, line: str) -> Any:
    """``%fs <command> [-r] args...``: the ``dbutils.fs`` call; listings are displayed as a table."""
    words = shlex.split(line)
    if not words:
        raise MagicError(f"%fs needs a command, e.g. '%fs ls /Volumes/...' ({current_cell_label(shell)})")
    command, args = words[0], words[1:]
    method = _FS_COMMANDS.get(command)
    if method is None:
        raise MagicError(
            f"%fs {command}: unknown command in {current_cell_label(shell)}; use one of "
            f"{', '.join(sorted(_FS_COMMANDS))}"
        )
    flags = {a for a in args if a in ("-r", "--recurse", "-f", "--overwrite")}
    positional = [a for a in args if a not in flags]
    kwargs: dict[str, Any] = {}
    if flags & {"-r", "--recurse"}:
        kwargs["recurse"] = True
    if flags & {"-f", "--overwrite"}:
        kwargs["overwrite"] = True
    dbutils = _user_object(shell, "dbutils")
    if dbutils is None:
        from sluice.runtime import dbutils
    result = getattr(dbutils.fs, method)(*positional, **kwargs)
    if command == "ls" or command == "mounts":
        _display(shell, result)
        return None
    if isinstance(result, str):
        print(result)
        return None
    return result


# -------------------------------------------------------------------------------------------------- %run


@contextmanager
def _widget_arguments(arguments: Mapping[str, str]) -> Iterator[None]:
    """The ``$name=value`` arguments of ``%run`` as job-passed widget values while the child runs."""
    from sluice.runtime.widgets import widgets

    if not arguments:
        yield
        return
    saved = dict(widgets.passed)
    widgets._passed = {**saved, **arguments}
    try:
        yield
    finally:
        widgets._passed = saved


def run_notebook_inline(shell: InteractiveShell, line: str) -> None:
    """``%run <path> [$name=value ...]``: the notebook's cells run in this namespace, one after another."""
    from sluice.notebooks.source import (
        CellKind,
        NotebookSourceError,
        cell_text,
        parse_run_magic,
        read_notebook,
        resolve_notebook_path,
        workspace_root_from_env,
    )

    try:
        command = parse_run_magic(f"%run {line}")
        path = resolve_notebook_path(_state.folder, command.path, root=workspace_root_from_env())
        notebook = read_notebook(path)
    except NotebookSourceError as exc:
        raise NotebookRunError(f"{current_cell_label(shell)}: {exc}") from None
    if len(_state.notebooks) >= MAX_RUN_DEPTH:
        raise NotebookRunError(
            f"%run {command.path}: notebooks include each other more than {MAX_RUN_DEPTH} levels deep "
            f"(a notebook that %runs itself?); break the cycle"
        )
    _state.notebooks.append(path)
    caller = os.environ.get(NOTEBOOK_PATH_ENV)
    os.environ[NOTEBOOK_PATH_ENV] = str(path)  # dbutils.notebook.run paths start from the included notebook
    try:
        with _widget_arguments(command.arguments):
            for cell in notebook.cells:
                if cell.kind is CellKind.MARKDOWN:
                    continue
                text = cell_text(cell)
                if notebook.language == "sql" and cell.magic is None:
                    text = "%sql\n" + text
                _exec_cell(shell, text, f"<notebook {path.name} cell {cell.index + 1}>")
    finally:
        _state.notebooks.pop()
        if caller is None:
            os.environ.pop(NOTEBOOK_PATH_ENV, None)
        else:
            os.environ[NOTEBOOK_PATH_ENV] = caller


def _exec_cell(shell: InteractiveShell, raw: str, filename: str) -> None:
    """Run one included cell in the user namespace: exceptions propagate; a last expression is displayed."""
    if not raw.strip():
        return
    code: str = shell.transform_cell(raw)  # type: ignore[no-untyped-call]  # IPython is partly typed
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    tree = ast.parse(code, filename=filename)
    last: ast.Expr | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop()  # type: ignore[assignment]  # isinstance checked just above
    namespace = shell.user_ns
    exec(compile(tree, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - the user's notebook
    if last is not None:
        value = eval(  # noqa: S307 - the user's notebook
            compile(ast.Expression(last.value), filename, "eval", dont_inherit=True), namespace
        )
        if value is not None:
            _display(shell, value)


# -------------------------------------------------------------------------------------------------- %pip


def pip_target() -> str:
    """The directory ``%pip install`` installs into: ``<attempt dir>/python`` in a job, else a temp dir."""
    if _state.pip_dir is None:
        attempt_dir = os.environ.get("SLUICE_ATTEMPT_DIR")
        if attempt_dir:
            target = os.path.join(attempt_dir, "python")
        else:
            import tempfile

            target = tempfile.mkdtemp(prefix="sluice-pip-")
        os.makedirs(target, exist_ok=True)
        _state.pip_dir = target
    return _state.pip_dir


def _activate(target: str) -> None:
    import importlib

    if target not in sys.path:
        sys.path.insert(0, target)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if target not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([target, *parts])
    importlib.invalidate_caches()


def run_pip(shell: InteractiveShell, line: str) -> None:
    """``%pip install ...`` into :func:`pip_target`; ``list``/``show``/``freeze`` as they are."""
    words = shlex.split(line)
    if not words:
        raise MagicError(f"%pip needs a command, e.g. '%pip install requests' ({current_cell_label(shell)})")
    command = words[0]
    if command == "uninstall":
        raise MagicError(
            f"%pip uninstall is not supported ({current_cell_label(shell)}): packages installed with %pip "
            "live in this notebook's own directory and go away with it; Sluice's environment is not changed"
        )
    argv = [sys.executable, "-m", "pip", *words, "--disable-pip-version-check", "--no-input"]
    if command == "install":
        target = pip_target()
        argv += ["--target", target, "--upgrade"]
    sys.stdout.flush()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for chunk in iter(proc.stdout.readline, b""):
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
    code = proc.wait()
    if code != 0:
        raise MagicError(f"%pip {command} failed with status {code} in {current_cell_label(shell)}")
    if command == "install":
        _activate(pip_target())


# ------------------------------------------------------------------------------------------ registration


def _markdown(shell: InteractiveShell, text: str) -> None:
    display_module: Any = importlib.import_module("IPython.display")
    _display(shell, display_module.Markdown(text))


def _unsupported(shell: InteractiveShell, language: str) -> None:
    raise UnsupportedLanguage(
        f"{current_cell_label(shell)} is a %{language} cell: Sluice runs Python and SQL cells only; "
        f"rewrite it in Python (or %sql)"
    )


def register(shell: InteractiveShell) -> None:
    """Install the transformer and the ``%%sluice_*`` cell magics in ``shell`` (idempotent)."""
    from IPython.core.magic import no_var_expand

    if transform_databricks_magics not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(transform_databricks_magics)
    start = os.environ.get(NOTEBOOK_PATH_ENV)
    if start and not _state.notebooks:  # imported before the kernel knew its notebook (started ahead)
        _state.notebooks.append(Path(start))

    def inline(line: str, cell: str | None) -> str:
        body = cell or ""
        return f"{line}\n{body}" if line.strip() else body

    magics = {
        "sluice_sql": lambda line, cell: run_sql(shell, inline(line, cell)),
        "sluice_sh": lambda line, cell: run_sh(shell, inline(line, cell)),
        "sluice_fs": lambda line, cell: run_fs(shell, inline(line, cell).strip()),
        "sluice_run": lambda line, cell: run_notebook_inline(shell, line),
        "sluice_pip": lambda line, cell: run_pip(shell, inline(line, cell).strip()),
        "sluice_md": lambda line, cell: _markdown(shell, inline(line, cell)),
        "sluice_unsupported": lambda line, cell: _unsupported(shell, line.strip()),
    }
    for name, function in magics.items():
        shell.register_magic_function(no_var_expand(function), "cell", name)  # type: ignore[arg-type]
