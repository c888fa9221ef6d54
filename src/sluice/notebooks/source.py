"""Databricks notebooks as cells: the source-file format, ``.ipynb`` documents and ``%run`` lines.

Pure functions over text and dicts; the only I/O is in :func:`read_notebook` and
:func:`resolve_notebook_path`, which say so in their names.

Source format (databricks/cli ``libs/notebook``; reference §6.6)::

    # Databricks notebook source        <- exactly the first line (the CLI reads 32 bytes)
    print("cell 1")

    # COMMAND ----------                <- separator, comment prefix of the notebook language

    # DBTITLE 1,Load                    <- optional title line (1 = shown, 0 = hidden)
    # MAGIC %sql                        <- non-default language: every line prefixed with "# MAGIC "
    # MAGIC SELECT 1                    <- a bare "# MAGIC" is an empty line

What a :class:`Cell` keeps in ``source``:

* a default-language cell: its text, blank lines around it trimmed (as the export writes it);
* a magic cell: the text *after* the magic token, without ``# MAGIC`` prefixes. When the magic line
  carries text (``%run ./x $a=1``, ``%pip install x``, ``%md # Title``) that text is the first line
  of ``source`` and ``magic_inline`` is True; otherwise ``source`` is the lines below the magic line.
  So ``source`` is always what runs (the SQL, the shell script, the ``%run`` arguments).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError

#: Comment prefix of each notebook language in the source format.
COMMENT_PREFIX: Mapping[str, str] = {"python": "#", "r": "#", "sql": "--", "scala": "//"}
#: Extensions tried, in order, after the path as given (Databricks paths omit the extension).
NOTEBOOK_EXTENSIONS: tuple[str, ...] = (".py", ".sql", ".scala", ".r", ".ipynb")

_HEADER_TEXT = "Databricks notebook source"
_SEPARATOR_TEXT = "COMMAND ----------"
_LANGUAGE_MAGICS = {"%python": "python", "%sql": "sql", "%scala": "scala", "%r": "r"}
_MARKDOWN_MAGICS = frozenset({"%md", "%md-sandbox"})
_DBTITLE = re.compile(r"DBTITLE ([01]),(.*)")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DATABRICKS_NB_META = "application/vnd.databricks.v1+notebook"
_DATABRICKS_CELL_META = "application/vnd.databricks.v1+cell"


class NotebookSourceError(SluiceError):
    """A notebook file, ``%run`` line or notebook path that cannot be used as written."""


class CellKind(StrEnum):
    """What a cell is: code in a language, markdown, or another magic (``%sh``, ``%run``, ``%pip`` ...)."""

    CODE = "code"
    MARKDOWN = "markdown"
    MAGIC = "magic"


@dataclass(frozen=True)
class Cell:
    """One notebook cell. ``language`` is the notebook language, a ``%<lang>`` language or the magic name."""

    language: str
    kind: CellKind
    source: str
    magic: str | None = None
    title: str | None = None
    index: int = 0
    title_shown: bool = True
    magic_inline: bool = False

    @property
    def magic_line(self) -> str | None:
        """The cell's first line as written in the notebook (``%run ./x $a=1``), or None without magic."""
        if self.magic is None:
            return None
        if self.magic_inline:
            return f"{self.magic} {self.source.split(chr(10), 1)[0]}"
        return self.magic


@dataclass(frozen=True)
class Notebook:
    """A parsed notebook: its default language, its cells and the file it came from (if any)."""

    language: str
    cells: tuple[Cell, ...]
    path: Path | None = None


@dataclass(frozen=True)
class RunCommand:
    """A parsed ``%run <path> [$name=value ...]`` line; values are strings like widget values."""

    path: str
    arguments: Mapping[str, str]


# ---------------------------------------------------------------------------------------------- detection


def is_databricks_source(text: str, *, suffix: str | None = None) -> str | None:
    """The notebook language if the first line is a Databricks source header, else None.

    Like the Databricks CLI, only an exact first line counts (a trailing CR is allowed). ``#`` headers
    are Python unless ``suffix`` is ``.r`` (the CLI tells Python and R apart by the file extension).
    """
    first = text[:64].split("\n", 1)[0].removesuffix("\r")
    if first == f"# {_HEADER_TEXT}":
        return "r" if (suffix or "").lower() == ".r" else "python"
    if first == f"-- {_HEADER_TEXT}":
        return "sql"
    if first == f"// {_HEADER_TEXT}":
        return "scala"
    return None


# ------------------------------------------------------------------------------------------------ parsing


def parse_source(text: str, *, default_language: str | None = None) -> list[Cell]:
    """Split Databricks source text into cells.

    With a header, the header decides the language (``default_language="r"`` picks R for a ``#``
    header). Without one, ``default_language`` says how to read headerless text; None is an error.
    """
    text = text.replace("\r\n", "\n")
    language = is_databricks_source(text, suffix=".r" if default_language == "r" else None)
    if language is not None:
        body = text.split("\n", 1)[1] if "\n" in text else ""
    elif default_language is None:
        first = text.split("\n", 1)[0]
        raise NotebookSourceError(
            f"not a Databricks notebook: the first line must be exactly '# {_HEADER_TEXT}' "
            f"('-- ...' for SQL, '// ...' for Scala), found {first[:60]!r}; add the header line "
            "or pass default_language"
        )
    else:
        language = _known_language(default_language)
        body = text
    prefix = COMMENT_PREFIX[language]
    chunks = _split_chunks(body, f"{prefix} {_SEPARATOR_TEXT}")
    if len(chunks) == 1 and not chunks[0].strip():
        return []
    return [_parse_chunk(chunk, language, prefix, i) for i, chunk in enumerate(chunks)]


def _known_language(language: str) -> str:
    if language not in COMMENT_PREFIX:
        raise NotebookSourceError(
            f"unknown notebook language {language!r}; use one of {', '.join(sorted(COMMENT_PREFIX))}"
        )
    return language


def _split_chunks(body: str, separator: str) -> list[str]:
    chunks: list[list[str]] = [[]]
    for line in body.split("\n"):
        if line.rstrip() == separator:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return ["\n".join(_trim_blank(lines)) for lines in chunks]


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _parse_chunk(chunk: str, language: str, prefix: str, index: int) -> Cell:
    lines = chunk.split("\n") if chunk else []
    title, shown = None, True
    match = (
        _DBTITLE.fullmatch(lines[0][len(prefix) + 1 :])
        if lines and lines[0].startswith(prefix + " ")
        else None
    )
    if match:
        title, shown = match.group(2), match.group(1) == "1"
        lines = lines[1:]
    magic_prefix = f"{prefix} MAGIC"
    if lines and all(_is_magic_line(line, magic_prefix) for line in lines):
        lines = [_unmagic(line, magic_prefix) for line in lines]
    return cell_from_text("\n".join(lines), language, index=index, title=title, title_shown=shown)


def _is_magic_line(line: str, magic_prefix: str) -> bool:
    return line == magic_prefix or line.startswith(magic_prefix + " ")


def _unmagic(line: str, magic_prefix: str) -> str:
    rest = line[len(magic_prefix) :]
    return rest[1:] if rest.startswith(" ") else rest


def cell_from_text(
    text: str,
    language: str,
    *,
    index: int = 0,
    title: str | None = None,
    title_shown: bool = True,
) -> Cell:
    """A cell from its editor text (``%sql\\nSELECT 1`` or plain code in the notebook ``language``)."""
    first, _, rest = text.partition("\n")
    if not first.startswith("%"):
        return Cell(language, CellKind.CODE, text, None, title, index, title_shown)
    magic = first.split(None, 1)[0]
    inline_text = first[len(magic) :].lstrip(" \t")
    inline = bool(inline_text.strip())
    source = (inline_text + ("\n" + rest if "\n" in text else "")) if inline else rest
    lowered = magic.lower()
    if lowered in _LANGUAGE_MAGICS:
        cell_language, kind = _LANGUAGE_MAGICS[lowered], CellKind.CODE
    elif lowered in _MARKDOWN_MAGICS:
        cell_language, kind = "markdown", CellKind.MARKDOWN
    else:
        cell_language, kind = lowered.lstrip("%"), CellKind.MAGIC
    return Cell(cell_language, kind, source, magic, title, index, title_shown, inline)


# ---------------------------------------------------------------------------------------------- rendering


def cell_text(cell: Cell) -> str:
    """The editor text of a cell: the magic line (if any) followed by the source."""
    if cell.magic is None:
        return cell.source
    if cell.magic_inline:
        return f"{cell.magic} {cell.source}"
    return f"{cell.magic}\n{cell.source}" if cell.source else cell.magic


def render_source(cells: Iterable[Cell], language: str) -> str:
    """Canonical Databricks source text for ``cells`` in a notebook of ``language`` (LF line ends)."""
    prefix = COMMENT_PREFIX[_known_language(language)]
    rendered = [_render_cell(cell, prefix) for cell in cells]
    body = f"\n\n{prefix} {_SEPARATOR_TEXT}\n\n".join(rendered)
    return f"{prefix} {_HEADER_TEXT}\n{body}\n" if rendered else f"{prefix} {_HEADER_TEXT}\n"


def _render_cell(cell: Cell, prefix: str) -> str:
    lines: list[str] = []
    if cell.title is not None:
        lines.append(f"{prefix} DBTITLE {1 if cell.title_shown else 0},{cell.title}")
    text = cell_text(cell)
    if cell.magic is None:
        lines.extend(text.split("\n") if text else [])
    else:
        lines.extend(f"{prefix} MAGIC {line}" if line else f"{prefix} MAGIC" for line in text.split("\n"))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- %run


def parse_run_magic(line: str) -> RunCommand:
    """Parse ``%run <path> [$name=value ...]``; quotes ('' or "") group text with spaces, no escapes."""
    stripped = line.strip()
    head = stripped.split(None, 1)[0] if stripped else ""
    if head != "%run":
        raise NotebookSourceError(f"not a %run line: {line!r}; it must start with '%run '")
    tokens = _split_words(stripped[len(head) :], line)
    if not tokens:
        raise NotebookSourceError(f"%run needs a notebook path, e.g. '%run ./other': {line!r}")
    path, arguments = tokens[0], {}
    if not path:
        raise NotebookSourceError(f"%run has an empty notebook path: {line!r}")
    for token in tokens[1:]:
        name, value = _parse_argument(token, line)
        if name in arguments:
            raise NotebookSourceError(f"%run argument ${name} is given twice in {line!r}; keep one")
        arguments[name] = value
    return RunCommand(path, arguments)


def _split_words(text: str, line: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    in_word, quote = False, ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote, in_word = char, True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if quote:
        raise NotebookSourceError(f"%run line has an unterminated {quote} quote: {line!r}; close the quote")
    if in_word:
        words.append("".join(current))
    return words


def _parse_argument(token: str, line: str) -> tuple[str, str]:
    if not token.startswith("$"):
        raise NotebookSourceError(
            f"%run argument {token!r} must look like $name=value (e.g. $n=3) in {line!r}"
        )
    name, equals, value = token[1:].partition("=")
    if not equals:
        raise NotebookSourceError(f"%run argument {token!r} has no value; write ${name}=<value> in {line!r}")
    if not _ARG_NAME.fullmatch(name):
        raise NotebookSourceError(
            f"%run argument {token!r} needs a name of letters, digits or _ after '$' in {line!r}"
        )
    return name, value


def check_run_cells(cells: Sequence[Cell]) -> dict[int, RunCommand]:
    """The ``%run`` command of every ``%run`` cell, by cell index; all problems raised together.

    ``%run`` must be alone in its cell with its path on the magic line (as in Databricks).
    """
    problems: list[str] = []
    commands: dict[int, RunCommand] = {}
    for cell in cells:
        where = f"cell {cell.index + 1}" + (f" ({cell.title!r})" if cell.title else "")
        if cell.magic == "%run":
            first, _, rest = cell.source.partition("\n")
            if not cell.magic_inline:
                problems.append(f"{where}: %run needs a notebook path on its line, e.g. '%run ./other'")
            elif rest.strip():
                problems.append(
                    f"{where}: %run must be alone in its cell; move the other lines to a new cell"
                )
            else:
                try:
                    commands[cell.index] = parse_run_magic(f"%run {first}")
                except NotebookSourceError as exc:
                    problems.append(f"{where}: {exc}")
        elif cell.kind is CellKind.CODE and any(
            line.lstrip().startswith("%run") for line in cell_text(cell).split("\n")[1:]
        ):
            problems.append(f"{where}: %run must be alone in its cell and first; put it in a cell of its own")
    if problems:
        raise NotebookSourceError("\n".join(problems))
    return commands


# ----------------------------------------------------------------------------------------- files and paths


def workspace_root_from_env() -> Path | None:
    """The root a task may open notebooks in (``SLUICE_WORKSPACE_ROOT``, set by the engine), if any."""
    from sluice.executors import WORKSPACE_ROOT_ENV

    value = os.environ.get(WORKSPACE_ROOT_ENV)
    return Path(value) if value else None


def resolve_notebook_path(base_dir: Path, path: str, *, root: Path | None = None) -> Path:
    """The notebook file a Databricks path names: as given, then with each of :data:`NOTEBOOK_EXTENSIONS`.

    Relative paths (``./x``, ``../x``, ``x``) are relative to ``base_dir`` (the calling notebook's
    folder); absolute paths are used as they are. The first existing file wins. With ``root``, the path
    and the file it names (symbolic links followed) must lie inside ``root``: anything else is refused
    with an error naming the path and the root, before the file is looked at.
    """
    if not path.strip():
        raise NotebookSourceError(
            f"empty notebook path (relative to {base_dir}); name a notebook, e.g. ./other"
        )
    given = Path(path) if os.path.isabs(path) else base_dir / path
    given = Path(os.path.normpath(given))
    if root is not None:
        _check_inside_root(path, given, root)
    candidates = [given, *(given.with_name(given.name + ext) for ext in NOTEBOOK_EXTENSIONS)]
    for candidate in candidates:
        if candidate.is_file():
            if root is not None:
                _check_inside_root(path, Path(os.path.realpath(candidate)), root)
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise NotebookSourceError(
        f"notebook {path!r} not found (relative to {base_dir}); tried: {tried}. "
        "Check the path; Databricks paths leave out the extension"
    )


def _check_inside_root(path: str, local: Path, root: Path) -> None:
    real_root = os.path.realpath(root)
    where = os.path.normpath(local)
    if where != real_root and not where.startswith(real_root.rstrip(os.sep) + os.sep):
        # Compare the lexical path against the real root too (a root reached through a link).
        lexical_root = os.path.normpath(root)
        if not (where == lexical_root or where.startswith(lexical_root.rstrip(os.sep) + os.sep)):
            raise NotebookSourceError(
                f"notebook path {path!r} leads to {where}, outside the workspace root {real_root}; "
                "a notebook can only run notebooks inside its job's root (the bundle or job file's "
                "directory, or the git checkout): move the notebook inside it"
            )


def read_notebook(path: Path) -> Notebook:
    """Read a Databricks source file (any extension, header required) or a ``.ipynb`` document."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookSourceError(f"cannot read notebook {path}: {exc}") from exc
    if path.suffix.lower() == ".ipynb":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NotebookSourceError(f"{path}: error loading Jupyter notebook file: {exc}") from exc
        return from_ipynb(document, path=path)
    language = is_databricks_source(text, suffix=path.suffix)
    if language is None:
        first = text.split("\n", 1)[0]
        raise NotebookSourceError(
            f"{path} is not a Databricks notebook: its first line must be exactly '# {_HEADER_TEXT}' "
            f"('-- ...' for SQL, '// ...' for Scala), found {first[:60]!r}"
        )
    return Notebook(language, tuple(parse_source(text, default_language=language)), path)


# ------------------------------------------------------------------------------------------------- ipynb


def from_ipynb(document: Any, *, path: Path | None = None) -> Notebook:
    """A notebook from an nbformat v4 dict; code cells starting with a magic line become magic cells.

    Raw cells are not run by Databricks or Jupyter and are left out (cell indexes count kept cells).
    """
    where = str(path) if path else "notebook"
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        raise NotebookSourceError(f"{where}: invalid Jupyter notebook file (no metadata object)")
    cells = document.get("cells")
    if not isinstance(cells, list):
        raise NotebookSourceError(f"{where}: invalid Jupyter notebook file (no cells list)")
    major = document.get("nbformat")
    if not isinstance(major, int) or major < 4:
        raise NotebookSourceError(f"{where}: unsupported Jupyter notebook version: {major}; use nbformat 4")
    language = _ipynb_language(document["metadata"])
    kept = [raw for raw in cells if not (isinstance(raw, dict) and raw.get("cell_type") == "raw")]
    parsed = [_ipynb_cell(raw, language, i, where) for i, raw in enumerate(kept)]
    return Notebook(language, tuple(parsed), path)


def _ipynb_language(metadata: Mapping[str, Any]) -> str:
    candidates = [
        (metadata.get(_DATABRICKS_NB_META) or {}).get("language"),
        (metadata.get("language_info") or {}).get("name"),
        (metadata.get("kernelspec") or {}).get("language"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.lower() in COMMENT_PREFIX:
            return candidate.lower()
    return "python"


def _ipynb_cell(raw: Any, language: str, index: int, where: str) -> Cell:
    if not isinstance(raw, dict):
        raise NotebookSourceError(f"{where}: cell {index + 1} is not an object")
    source = raw.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    text = text.replace("\r\n", "\n")
    metadata = raw.get("metadata") or {}
    databricks = metadata.get(_DATABRICKS_CELL_META) or {}
    title = databricks.get("title") or None
    shown = bool(databricks.get("showTitle", True)) if title else True
    cell_type = raw.get("cell_type")
    if cell_type == "markdown":
        if text.startswith("%md"):
            return cell_from_text(text, language, index=index, title=title, title_shown=shown)
        ours = metadata.get("sluice") or {}
        magic, inline = str(ours.get("magic") or "%md"), bool(ours.get("magic_inline", False))
        return Cell("markdown", CellKind.MARKDOWN, text, magic, title, index, shown, inline)
    if cell_type != "code":
        raise NotebookSourceError(f"{where}: cell {index + 1} has unknown cell_type {cell_type!r}")
    return cell_from_text(text, language, index=index, title=title, title_shown=shown)


def to_ipynb(notebook: Notebook) -> dict[str, Any]:
    """An nbformat 4.4 dict: markdown cells for ``%md``, code cells (magic line kept in source) otherwise."""
    name = notebook.path.stem if notebook.path else "notebook"
    return {
        "cells": [_ipynb_cell_dict(cell) for cell in notebook.cells],
        "metadata": {
            _DATABRICKS_NB_META: {"language": notebook.language, "notebookName": name},
            "language_info": {"name": notebook.language},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }


def _ipynb_cell_dict(cell: Cell) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        _DATABRICKS_CELL_META: {
            "title": cell.title or "",
            "showTitle": cell.title is not None and cell.title_shown,
        },
        "sluice": {"magic": cell.magic, "magic_inline": cell.magic_inline, "language": cell.language},
    }
    if cell.kind is CellKind.MARKDOWN:
        return {"cell_type": "markdown", "metadata": metadata, "source": cell.source}
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": metadata,
        "outputs": [],
        "source": cell_text(cell),
    }
