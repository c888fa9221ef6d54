"""Validated jobs, cached by their inputs, so running an unchanged job skips YAML and pydantic entirely.

Like ``__pycache__`` for Python source: an entry holds the validated Jobs API JSON of every job a file
defines, and the exact inputs it was computed from — the path given, target, ``--var`` values, the
``BUNDLE_VAR_*`` environment, the local user, every file the loader read (its size and a digest of its
bytes, so a file rewritten with the same content — a ``git checkout``, a generator — still hits), every
include glob with what it matched, the task files validation found, and the ``bundle.git`` values when the
bundle uses ``${bundle.git.*}`` (git is asked again on each use). Loads that printed warnings are not
cached, so the warnings are printed every time. An entry is used only when all of those are unchanged;
anything else reloads and revalidates. The cache lives in ``$SLUICE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/sluice`` or ``~/.cache/sluice``); ``SLUICE_CACHE_DIR=off`` disables it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sluice
from sluice.identity import local_user

_FORMAT = 4  # 4: warnings (entries with warnings are not written), git and file-existence inputs


@dataclass(frozen=True)
class CompiledJob:
    """A validated job definition, as the engine consumes it."""

    key: str
    #: Jobs API JobSettings JSON, validated.
    settings: dict[str, Any]
    source_file: Path
    bundle_name: str | None
    target: str | None
    #: Warnings of loading (an unknown bundle field, dropped), for the CLI to print; never cached.
    warnings: tuple[str, ...] = ()


def cache_dir() -> Path | None:
    configured = os.environ.get("SLUICE_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sluice"


def _entry_name(path: Path, target: str | None, variables: Mapping[str, str], job_key: str | None) -> str:
    inputs = {
        "format": _FORMAT,
        "version": sluice.__version__,
        "path": str(path.absolute()),
        "target": target,
        "variables": sorted(variables.items()),
        "job_key": job_key,
        "bundle_env": sorted((k, v) for k, v in os.environ.items() if k.startswith("BUNDLE_VAR_")),
        "user": local_user(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32] + ".json"


def _stamp(path: str) -> list[Any] | None:
    """The size and BLAKE2b digest of a file's bytes; None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return [len(data), hashlib.blake2b(data, digest_size=16).hexdigest()]


def _still_valid(reads: list[list[Any]]) -> bool:
    for kind, where, recorded in reads:
        if kind == "file":
            if _stamp(where) != recorded:
                return False
        elif kind == "glob":
            base, pattern, root = where.split("\0")
            matches = sorted(p for p in Path(base).glob(pattern) if p.is_file() and str(p) != root)
            if [str(m) for m in matches] != recorded:
                return False
        elif kind == "git":
            from sluice.spec.bundle_yaml import GIT_FIELDS, git_details

            details = git_details(Path(where))
            if [details[f] for f in GIT_FIELDS] != recorded:
                return False
        elif kind == "exists":
            if Path(where).is_file() != bool(recorded):
                return False
        elif kind == "dir":
            names = ("databricks.yml", "databricks.yaml")
            if [str(Path(where) / n) for n in names if (Path(where) / n).is_file()] != recorded:
                return False
    return True


def _read_entry(file: Path) -> list[CompiledJob] | None:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != _FORMAT or not _still_valid(data["reads"]):
        return None
    return [
        CompiledJob(j["key"], j["settings"], Path(j["source_file"]), j["bundle_name"], j["target"])
        for j in data["jobs"]
    ]


def _write_entry(file: Path, jobs: list[CompiledJob], reads: list[list[Any]]) -> None:
    payload = {
        "format": _FORMAT,
        "reads": reads,
        "jobs": [
            {
                "key": j.key,
                "settings": j.settings,
                "source_file": str(j.source_file),
                "bundle_name": j.bundle_name,
                "target": j.target,
            }
            for j in jobs
        ],
    }
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, file)
    except OSError:
        return  # a cache that cannot be written is only slower


def load_validated(
    path: Path,
    *,
    target: str | None = None,
    variables: Mapping[str, str] | None = None,
    job_key: str | None = None,
) -> list[CompiledJob]:
    """The validated jobs at ``path``; InvalidJobError lists every problem, as load_and_validate does."""
    variables = dict(variables or {})
    directory = cache_dir()
    entry = directory / _entry_name(path, target, variables, job_key) if directory else None
    if entry is not None:
        cached = _read_entry(entry)
        if cached is not None:
            return cached
    from sluice.spec import bundle_yaml as bundle
    from sluice.spec.validate import load_and_validate

    recorded: list[tuple[str, str, tuple[str, ...]]] = []
    token = bundle.READS.set(recorded)
    try:
        loaded = load_and_validate(path, target=target, variables=variables, job_key=job_key)
    finally:
        bundle.READS.reset(token)
    jobs = [
        CompiledJob(
            j.key, j.settings.to_api(), j.source_file, j.bundle_name, j.target, tuple(map(str, j.warnings))
        )
        for j in loaded
    ]
    if entry is not None and not any(j.warnings for j in jobs):  # warnings are printed on every load
        _write_entry(entry, jobs, [_reading(kind, where, found) for kind, where, found in recorded])
    return jobs


def _reading(kind: str, where: str, found: tuple[str, ...]) -> list[Any]:
    if kind == "file":
        return [kind, where, _stamp(where)]
    return [kind, where, list(found)]
