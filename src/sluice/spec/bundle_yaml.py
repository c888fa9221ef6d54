"""Reading bundle files: YAML as the Databricks CLI (Go yaml.v3) reads it, JSON, and the inputs read.

Split from :mod:`sluice.spec.bundle`. :func:`anchored_keys` tells which top-level keys of a YAML file only
hold YAML anchors (``x-common: &common {...}``), which the CLI accepts without a warning.
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NoReturn

import yaml

from sluice.errors import InvalidJobError, Problem

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]  # same API, pure Python


def fail(message: str, file: Path | None = None, *, field: str | None = None) -> NoReturn:
    raise InvalidJobError([Problem(message, file=str(file) if file else None, field=field)])


class _Loader(_BaseLoader):
    """YAML 1.2 scalars as the Databricks CLI (Go yaml.v3) reads them, and duplicate keys as errors.

    No timestamps (``2024-01-01`` stays a string), booleans are only true/false, no sexagesimal numbers.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"found duplicate key '{key_node.value}' (first on line {seen[key_node.value] + 1})",
                        key_node.start_mark,
                    )
                seen[key_node.value] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml12_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    replaced = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp")}
    out: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in _BaseLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in replaced]
        if kept:
            out[first] = kept
    numbers = "-+.0123456789"
    for tag, pattern, firsts in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+)$", numbers),
        (
            "float",
            r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            numbers,
        ),
    ):
        for ch in firsts:
            out.setdefault(ch, []).append((f"tag:yaml.org,2002:{tag}", re.compile(pattern)))
    return out


_Loader.yaml_implicit_resolvers = _yaml12_resolvers()


#: When set, every file the loader reads and every include glob it expands is recorded here, so a cache of
#: validated jobs knows exactly which inputs its entry depends on (``sluice.spec.cache``).
READS: ContextVar[list[tuple[str, str, tuple[str, ...]]] | None] = ContextVar(
    "sluice_bundle_reads", default=None
)


def record(kind: str, where: Path | str, found: tuple[str, ...] = ()) -> None:
    reads = READS.get()
    if reads is not None:
        reads.append((kind, str(where), found))


def read_yaml(path: Path) -> dict[str, Any]:
    record("file", path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read file: {exc.strerror}", path)
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" {exc.context}" if exc.context and exc.problem else ""
        fail(f"{where}invalid YAML: {exc.problem or exc.context}{context}", path)
    except yaml.YAMLError as exc:
        fail(f"invalid YAML: {exc}", path)
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(f"expected a mapping at the top level, found {type(data).__name__}", path)
    return data


def read_json(path: Path) -> dict[str, Any]:
    record("file", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read file: {exc.strerror}", path)
    except json.JSONDecodeError as exc:
        fail(f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}", path)
    if not isinstance(data, dict):
        fail(f"expected a JSON object at the top level, found {type(data).__name__}", path)
    return data


class _AnchorTracker(yaml.SafeLoader):
    """Pure-Python composer that remembers which nodes carry an anchor (libyaml does not say)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.anchored: set[int] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped PyYAML
        anchor = getattr(event, "anchor", None) if not isinstance(event, yaml.AliasEvent) else None
        node = super().compose_node(parent, index)
        if anchor is not None and node is not None:
            self.anchored.add(id(node))
        return node


def anchored_keys(path: Path) -> set[str]:
    """Top-level keys of a YAML file whose value only holds anchors (``libs/dyn/convert/normalize.go``).

    A value is such an "anchor container" when it carries an anchor, or is a non-empty sequence or mapping
    whose every element is one. The Databricks CLI drops these keys without the "unknown field" warning.
    """
    tracker = _AnchorTracker(path.read_text(encoding="utf-8"))
    try:
        root = tracker.get_single_node()
    finally:
        tracker.dispose()

    def container(node: yaml.Node) -> bool:
        if id(node) in tracker.anchored:
            return True
        if isinstance(node, yaml.SequenceNode) and node.value:
            return all(container(n) for n in node.value)
        if isinstance(node, yaml.MappingNode) and node.value:
            return all(container(v) for _, v in node.value)
        return False

    if not isinstance(root, yaml.MappingNode):
        return set()
    return {k.value for k, v in root.value if isinstance(k, yaml.ScalarNode) and container(v)}


#: ``bundle.git`` fields the Databricks CLI fills in from the bundle's repository (``load_git_details.go``).
GIT_FIELDS: tuple[str, ...] = ("origin_url", "branch", "commit", "actual_branch", "bundle_root_path")


def _git(directory: Path, *args: str) -> str | None:
    """``git <args>`` run in ``directory`` (no argument comes from outside); its output, or None."""
    import subprocess

    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    for name in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
    ):  # the bundle's repository only
        env.pop(name, None)
    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _without_credentials(url: str) -> str:
    """The origin URL without a user name or password, as the CLI gives it (``Repository.OriginUrl``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def git_details(directory: Path) -> dict[str, str]:
    """The ``bundle.git`` fields of the repository holding ``directory``; all empty outside a repository.

    As the Databricks CLI: the current branch (empty on a detached HEAD), the commit HEAD names, the
    ``origin`` remote's URL without credentials, and the bundle's directory relative to the work tree.
    """
    top = _git(directory, "rev-parse", "--show-toplevel")
    details = dict.fromkeys(GIT_FIELDS, "")
    if top:
        branch = _git(directory, "symbolic-ref", "--quiet", "--short", "HEAD") or ""
        details.update(
            origin_url=_without_credentials(_git(directory, "config", "--get", "remote.origin.url") or ""),
            branch=branch,
            actual_branch=branch,
            commit=_git(directory, "rev-parse", "--verify", "--quiet", "HEAD") or "",
            bundle_root_path=Path(os.path.relpath(directory.resolve(), Path(top).resolve())).as_posix(),
        )
    record("git", directory, tuple(details[f] for f in GIT_FIELDS))
    return details
