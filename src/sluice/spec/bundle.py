"""Loading job definitions: Databricks asset bundles, Jobs API JSON files and single-job YAML files.

:func:`load_jobs` accepts

* a bundle: ``databricks.yml`` / ``databricks.yaml`` (or a directory holding one, or any YAML file with a
  ``bundle:`` key), with ``include`` globs, ``variables``, ``targets`` and ``resources.jobs.<key>``, resolved
  the way the Databricks CLI does (``databricks/cli`` ``bundle/config/mutator``): ``--var`` > env
  ``BUNDLE_VAR_<name>`` > the target's value > ``default``; target resources deep-merged into the root with
  tasks, job clusters, parameters and environments merged by key; ``mode: development`` presets; top-level
  keys holding only YAML anchors dropped silently, and unknown top-level, job and task fields dropped with a
  warning (:attr:`LoadedJob.warnings`), as the CLI's ``normalize.go`` does; ``${bundle.git.*}``,
  ``${workspace.*}`` and ``${resources.jobs.<key>.id}`` substituted (see :meth:`_Interpolator.lookup`);
* a Jobs API JSON file: a JobSettings document, a ``jobs/create`` body, or a ``jobs/get`` response;
* a YAML file holding one job's JobSettings at the top level.

Local paths (notebooks, Python files, SQL files, dbt projects, a local ``git_url``) resolve relative to the
file that names them. Every problem raises :class:`~sluice.errors.InvalidJobError`, naming file and field.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from sluice.errors import InvalidJobError, Problem
from sluice.identity import local_user
from sluice.spec.bundle_yaml import GIT_FIELDS, anchored_keys, git_details
from sluice.spec.bundle_yaml import fail as _fail
from sluice.spec.bundle_yaml import read_json as _read_json
from sluice.spec.bundle_yaml import read_yaml as _read_yaml
from sluice.spec.bundle_yaml import record as _record
from sluice.spec.jobs import JobSettings

BUNDLE_FILE_NAMES: tuple[str, ...] = ("databricks.yml", "databricks.yaml")

_NO_VARS: Mapping[str, str] = MappingProxyType({})

_ROOT_KEYS = (
    "bundle", "include", "variables", "targets", "environments", "resources", "workspace", "artifacts",
    "sync", "permissions", "run_as", "presets", "scripts", "python", "experimental",
)  # fmt: skip
_TARGET_KEYS = (
    "default", "mode", "workspace", "variables", "resources", "run_as", "permissions", "presets",
    "artifacts", "sync", "git", "cluster_id", "compute_id", "bundle",
)  # fmt: skip
_VARIABLE_KEYS = ("default", "description", "type", "lookup")
#: Job lists merged by key when a target overrides a job (``merge_job_tasks.go`` and friends).
_MERGE_KEYS = dict(
    tasks="task_key", job_clusters="job_cluster_key", parameters="name", environments="environment_key"
)
_DEV_MAX_CONCURRENT_RUNS = 4
_REF_RE = re.compile(r"\$\{([A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*|\[[0-9]+\])*)\}")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SCP_RE = re.compile(r"^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class LoadedJob:
    """One job read from a file: its key (bundle resource key or file stem) and its settings."""

    key: str
    settings: JobSettings
    source_file: Path
    bundle_name: str | None
    target: str | None
    #: What the Databricks CLI would warn about (an unknown field, dropped); the job loads without it.
    warnings: tuple[Problem, ...] = ()

    @property
    def bundle_key(self) -> str | None:
        """``<bundle name>/<resource key>`` for bundle jobs: the key redeploys update."""
        return f"{self.bundle_name}/{self.key}" if self.bundle_name else None


@dataclass(frozen=True)
class RawJob:
    """A job document after bundle processing, before model validation (see :func:`build_job`)."""

    key: str
    data: dict[str, Any]
    source_file: Path
    bundle_name: str | None
    target: str | None
    warnings: tuple[Problem, ...] = ()


def load_jobs(
    path: Path,
    *,
    target: str | None = None,
    variables: Mapping[str, str] = _NO_VARS,
    job_key: str | None = None,
) -> list[LoadedJob]:
    """Every job at ``path`` (or only ``job_key``) as models; InvalidJobError lists all problems at once."""
    jobs: list[LoadedJob] = []
    problems: list[Problem] = []
    for raw in load_raw_jobs(path, target=target, variables=variables, job_key=job_key):
        try:
            jobs.append(build_job(raw))
        except InvalidJobError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidJobError(problems)
    return jobs


def build_job(raw: RawJob) -> LoadedJob:
    """Validate one raw job document into a LoadedJob; InvalidJobError names file, job, task and field."""
    if raw.bundle_name is None:
        settings = JobSettings.from_api(raw.data, file=str(raw.source_file), job=raw.key)
        return LoadedJob(raw.key, settings, raw.source_file, raw.bundle_name, raw.target, raw.warnings)
    data, dropped = _drop_unknown_fields(raw)
    settings = JobSettings.from_api(data, file=str(raw.source_file), job=raw.key)
    warnings = (*raw.warnings, *dropped)
    return LoadedJob(raw.key, settings, raw.source_file, raw.bundle_name, raw.target, warnings)


def _drop_unknown_fields(raw: RawJob) -> tuple[dict[str, Any], list[Problem]]:
    """A bundle job without the fields the Jobs API does not know, and a warning naming each one.

    The Databricks CLI normalizes bundle configuration this way (``libs/dyn/convert/normalize.go``): an
    unknown field is a warning ("unknown field: <name>") and is left out of the deployed job.
    """
    from pydantic import ValidationError

    from sluice.spec.jobs import problems_from_validation_error

    data = raw.data
    warnings: list[Problem] = []
    for _ in range(8):  # each pass drops every unknown field pydantic reports; nesting needs few passes
        try:
            JobSettings.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            problems = problems_from_validation_error(exc, data, file=str(raw.source_file), job=raw.key)
            extra = [(e, p) for e, p in zip(errors, problems, strict=True) if e["type"] == "extra_forbidden"]
            if not extra:
                break
            data = copy.deepcopy(data)
            for err, problem in extra:
                if not _delete(data, tuple(err["loc"])):
                    return data, warnings  # not a plain field path: left for from_api to report
                hint = problem.message.split("'", 2)[2]
                message = f"unknown field: {err['loc'][-1]}{hint}; ignored, as the Databricks CLI does"
                warnings.append(replace(problem, message=message))
        else:
            break
    return data, warnings


def _delete(data: Any, loc: tuple[int | str, ...]) -> bool:
    try:
        for part in loc[:-1]:
            data = data[part]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(data, dict) or loc[-1] not in data:
        return False
    del data[loc[-1]]
    return True


def load_raw_jobs(
    path: Path,
    *,
    target: str | None = None,
    variables: Mapping[str, str] = _NO_VARS,
    job_key: str | None = None,
) -> list[RawJob]:
    """The job documents at ``path`` with bundle variables, targets, presets and paths applied."""
    path = Path(path).absolute()
    if path.is_dir():
        found = [path / n for n in BUNDLE_FILE_NAMES if (path / n).is_file()]
        _record("dir", path, tuple(str(f) for f in found))
        if not found:
            _fail(f"no {' or '.join(BUNDLE_FILE_NAMES)} in this directory", path)
        path = found[0]
    if not path.is_file():
        _fail("no such file", path)
    if path.name in BUNDLE_FILE_NAMES:
        return _Bundle(path, _read_yaml(path), target, variables).jobs(job_key)
    if path.suffix == ".json":
        data = _read_json(path)
    elif path.suffix in (".yml", ".yaml"):
        data = _read_yaml(path)
        if "bundle" in data:
            return _Bundle(path, data, target, variables).jobs(job_key)
        if "resources" in data:
            _fail(_resource_file_hint(path), path)
    else:
        _fail("unknown file type: expected databricks.yml, a .json job or a .yml/.yaml job", path)
    if target is not None or variables:
        _fail("--target and --var apply to bundles (databricks.yml) only", path)
    return [_single_job(path, data, job_key)]


# --------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------


def _resource_file_hint(path: Path) -> str:
    for parent in path.parents:
        for name in BUNDLE_FILE_NAMES:
            if (parent / name).is_file():
                return f"this is a bundle resource file; load the bundle instead: {parent / name}"
    return "this is a bundle resource file; load the bundle's databricks.yml instead"


def _single_job(path: Path, data: dict[str, Any], job_key: str | None) -> RawJob:
    """A JobSettings document, a jobs/create body, a jobs/get response or a jobs/reset body."""
    key = path.stem
    if job_key is not None and job_key != key:
        _fail(f"no job '{job_key}' in this file; its job is '{key}'", path)
    for wrapper in ("settings", "new_settings"):
        inner = data.get(wrapper)
        if isinstance(inner, dict) and "tasks" not in data:
            data = inner
            break
    data = copy.deepcopy(data)
    _mark_job_paths(data, path.parent)
    _resolve_job_paths(data)
    return RawJob(key, _strip_markers(data), path, None, None)


# --------------------------------------------------------------------------------------------------------
# Local paths
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    """A path string remembered with the directory of the file that wrote it, until paths are resolved."""

    text: str
    base: Path


#: (task type, path to the container inside the task, field, source is GIT by default when git_source is set)
_PATH_FIELDS: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    ("notebook_task", (), "notebook_path", True),
    ("spark_python_task", (), "python_file", False),
    ("sql_task", ("file",), "path", True),
    ("dbt_task", (), "project_directory", True),
)


def _iter_tasks(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    tasks = job.get("tasks")
    stack = list(tasks) if isinstance(tasks, list) else []
    while stack:
        task = stack.pop()
        if isinstance(task, dict):
            yield task
            fe = task.get("for_each_task")
            if isinstance(fe, dict):
                stack.append(fe.get("task"))


def _path_containers(task: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, bool]]:
    for kind, inner, field, git_default in _PATH_FIELDS:
        container: Any = task.get(kind)
        for step in inner:
            container = container.get(step) if isinstance(container, dict) else None
        if isinstance(container, dict) and field in container:
            yield container, field, git_default


def _mark_job_paths(job: dict[str, Any], base: Path) -> None:
    """Remember the directory of this file on every local-path field of the job (in place)."""
    git = job.get("git_source")
    if isinstance(git, dict) and isinstance(git.get("git_url"), str):
        git["git_url"] = _Located(git["git_url"], base)
    for task in _iter_tasks(job):
        for container, field, _ in _path_containers(task):
            if isinstance(container[field], str):
                container[field] = _Located(container[field], base)


def _is_relative_local(text: str) -> bool:
    return bool(text) and not (
        text.startswith(("/", "~", "{{", "$")) or _SCHEME_RE.match(text) or _SCP_RE.match(text)
    )


def _resolve_job_paths(job: dict[str, Any]) -> None:
    """Relative local paths become absolute, relative to the file that wrote them (in place)."""
    git = job.get("git_source")
    has_git = isinstance(git, dict)
    if isinstance(git, dict) and isinstance(git.get("git_url"), _Located):
        url: _Located = git["git_url"]
        # A git_url beginning with '-' is left as written, for validation to refuse (never made a path).
        relative = _is_relative_local(url.text) and not url.text.startswith("-")
        git["git_url"] = os.path.normpath(url.base / url.text) if relative else url.text
    for task in _iter_tasks(job):
        for container, field, git_default in _path_containers(task):
            value = container[field]
            if not isinstance(value, _Located):
                continue
            source = container.get("source")
            is_git = source == "GIT" or (source is None and git_default and has_git)
            local = not is_git and _is_relative_local(value.text)
            container[field] = os.path.normpath(value.base / value.text) if local else value.text


def _strip_markers(value: Any) -> Any:
    if isinstance(value, _Located):
        return value.text
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------------------


def _merge(a: Any, b: Any) -> Any:
    """The bundle merge: maps merge (b wins), sequences concatenate, scalars are replaced, null keeps a."""
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return b


def _merge_job(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A target's job over the root's: like :func:`_merge`, with keyed lists merged by their key."""
    out = dict(a)
    for k, v in b.items():
        if k in _MERGE_KEYS:
            out[k] = _merge_by_key(a.get(k), v, _MERGE_KEYS[k])
        else:
            out[k] = _merge(out[k], v) if k in out else v
    return out


def _merge_by_key(a: Any, b: Any, key: str) -> Any:
    if not isinstance(a, list) or not isinstance(b, list):
        return _merge(a, b)
    out = list(a)
    for item in b:
        name = item.get(key) if isinstance(item, dict) else None
        index = next(
            (i for i, x in enumerate(out) if name is not None and isinstance(x, dict) and x.get(key) == name),
            None,
        )
        if index is None:
            out.append(item)
        else:
            out[index] = _merge(out[index], item)
    return out


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], what: str, file: Path) -> None:
    problems = []
    for key in data:
        if key not in allowed:
            hint = _closest(str(key), allowed) or f"; known keys: {', '.join(allowed)}"
            problems.append(Problem(f"unknown {what} key '{key}'{hint}", file=str(file)))
    if problems:
        raise InvalidJobError(problems)


def _mapping(value: Any, what: str, file: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(f"{what} must be a mapping, found {type(value).__name__}", file)
    return value


# --------------------------------------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------------------------------------


class _Bundle:
    """A bundle's files merged into one configuration for one target."""

    def __init__(self, root: Path, data: dict[str, Any], target: str | None, cli_vars: Mapping[str, str]):
        self.root = root
        self.jobs_by_key: dict[str, dict[str, Any]] = {}
        self.job_files: dict[str, Path] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.target_job_files: dict[tuple[str, str], Path] = {}
        self.config: dict[str, Any] = {}
        self.warnings: list[Problem] = []
        self._add_doc(root, data, is_root=True)
        for included in self._includes(data.get("include")):
            self._add_doc(included, _read_yaml(included), is_root=False)
        bundle = _mapping(self.config.get("bundle"), "bundle", root)
        name = bundle.get("name")
        if not isinstance(name, str) or not name:
            self.fail("the bundle needs a name: bundle: {name: <name>}", "bundle.name")
        self.name = name
        self.target = self._select_target(target)
        self.target_config = self.targets.get(self.target, {})
        self.mode: str | None = None
        self._apply_target()
        self.user = local_user()
        self.refs = _Interpolator(self, cli_vars, self.user)

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        _fail(message, self.root, field=field)

    # -- reading ------------------------------------------------------------------------------------------

    def _add_doc(self, file: Path, data: dict[str, Any], *, is_root: bool) -> None:
        if "environments" in data and "targets" not in data:
            data["targets"] = data.pop("environments")
        unknown = [k for k in data if k not in _ROOT_KEYS]
        if unknown:
            # As the Databricks CLI: a key holding only YAML anchors is dropped silently, any other unknown
            # key is dropped with a warning (libs/dyn/convert/normalize.go).
            anchors = anchored_keys(file)
            for key in unknown:
                del data[key]
                if str(key) not in anchors:
                    hint = _closest(str(key), _ROOT_KEYS)
                    self.warnings.append(
                        Problem(f"unknown field: {key}{hint}; ignored, as the Databricks CLI does", str(file))
                    )
        if not is_root and "include" in data:
            _fail("include is only allowed in the bundle's root file", file, field="include")
        resources = _mapping(data.get("resources"), "resources", file)
        for key, job in _mapping(resources.get("jobs"), "resources.jobs", file).items():
            if key in self.jobs_by_key:
                _fail(
                    f"job '{key}' is also defined in {self.job_files[key]}",
                    file,
                    field=f"resources.jobs.{key}",
                )
            job = _mapping(job, f"resources.jobs.{key}", file)
            _mark_job_paths(job, file.parent)
            self.jobs_by_key[key] = job
            self.job_files[key] = file
        for tname, tdata in _mapping(data.get("targets"), "targets", file).items():
            tdata = _mapping(tdata, f"targets.{tname}", file)
            _check_keys(tdata, _TARGET_KEYS, f"targets.{tname}", file)
            tres = _mapping(tdata.get("resources"), f"targets.{tname}.resources", file)
            for key, job in _mapping(tres.get("jobs"), f"targets.{tname}.resources.jobs", file).items():
                _mark_job_paths(_mapping(job, f"targets.{tname}.resources.jobs.{key}", file), file.parent)
                self.target_job_files.setdefault((tname, key), file)
            self.targets[tname] = _merge(self.targets.get(tname, {}), tdata)
        rest = {k: v for k, v in data.items() if k not in ("resources", "targets", "include")}
        self.config = _merge(self.config, rest)

    def _includes(self, include: Any) -> list[Path]:
        if include is None:
            return []
        if not isinstance(include, list) or not all(isinstance(p, str) for p in include):
            self.fail("include must be a list of file globs", "include")
        base = self.root.parent
        files: list[Path] = []
        for pattern in include:
            if Path(pattern).is_absolute():
                self.fail(f"include '{pattern}' must be relative to the bundle root", "include")
            matches = sorted(p for p in base.glob(pattern) if p.is_file() and p != self.root)
            _record("glob", f"{base}\0{pattern}\0{self.root}", tuple(str(m) for m in matches))
            if not matches and not any(c in pattern for c in "*?["):
                self.fail(f"include '{pattern}' matches no file", "include")
            files.extend(m for m in matches if m not in files)
        return files

    def _select_target(self, wanted: str | None) -> str:
        names = list(self.targets)
        if wanted is not None:
            if wanted not in self.targets:
                known = ", ".join(names) or "none (the bundle defines no targets)"
                self.fail(f"unknown target '{wanted}'; targets: {known}", "targets")
            return wanted
        if not names:
            return "default"
        if len(names) == 1:
            return names[0]
        defaults = [n for n in names if self.targets[n].get("default") is True]
        if len(defaults) > 1:
            self.fail(f"multiple targets are marked as default ({', '.join(defaults)})", "targets")
        if not defaults:
            self.fail(f"please specify a target (--target); targets: {', '.join(names)}", "targets")
        return defaults[0]

    def _apply_target(self) -> None:
        t = self.target_config
        tres = t.get("resources") or {}
        for key, job in (tres.get("jobs") or {}).items():
            if key in self.jobs_by_key:
                self.jobs_by_key[key] = _merge_job(self.jobs_by_key[key], job or {})
            else:
                self.jobs_by_key[key] = job or {}
                self.job_files[key] = self.target_job_files[(self.target, key)]
        for field in ("run_as", "presets", "permissions"):
            if field in t:
                self.config[field] = _merge(self.config.get(field), t[field])
        mode = t.get("mode")
        if mode not in (None, "development", "production"):
            self.fail(f"mode must be development or production, not '{mode}'", f"targets.{self.target}.mode")
        self.mode = mode

    # -- jobs ---------------------------------------------------------------------------------------------

    def jobs(self, job_key: str | None) -> list[RawJob]:
        keys = list(self.jobs_by_key)
        if job_key is not None:
            if job_key not in self.jobs_by_key:
                self.fail(f"no job '{job_key}' in bundle '{self.name}'; jobs: {', '.join(keys) or 'none'}")
            keys = [job_key]
        presets = self._presets()
        run_as = self.refs.value(self.config.get("run_as"), "run_as", self.root, None)
        out: list[RawJob] = []
        for key in keys:
            file = self.job_files[key]
            job = self.refs.value(copy.deepcopy(self.jobs_by_key[key]), f"resources.jobs.{key}", file, key)
            job.setdefault("name", key)
            _apply_presets(job, presets)
            if run_as and "run_as" not in job:
                job["run_as"] = copy.deepcopy(run_as)
            _resolve_job_paths(job)
            warnings = tuple(self.warnings)
            out.append(RawJob(key, _strip_markers(job), file, self.name, self.target, warnings))
        self.refs.raise_problems()
        if not out and self.warnings:  # nothing would carry them: the warnings explain the empty bundle
            raise InvalidJobError([*self.warnings, Problem("the bundle defines no job", str(self.root))])
        return out

    def _presets(self) -> dict[str, Any]:
        presets = dict(self.refs.value(self.config.get("presets") or {}, "presets", self.root, None))
        if self.mode == "development":
            short = _short_name(self.user)
            if not presets.get("name_prefix"):
                presets["name_prefix"] = f"[dev {short}] "
            tags = dict(presets.get("tags") or {})
            tags.setdefault("dev", short)
            presets["tags"] = tags
            if not presets.get("jobs_max_concurrent_runs"):
                presets["jobs_max_concurrent_runs"] = _DEV_MAX_CONCURRENT_RUNS
            if not presets.get("trigger_pause_status"):
                presets["trigger_pause_status"] = "PAUSED"
        status = presets.get("trigger_pause_status")
        if status not in (None, "", "PAUSED", "UNPAUSED"):
            self.fail(f"trigger_pause_status must be PAUSED or UNPAUSED, not '{status}'", "presets")
        return presets


def _apply_presets(job: dict[str, Any], presets: Mapping[str, Any]) -> None:
    """``apply_presets.go``: name prefix, tags the job lacks, concurrency when unset, pause when unset."""
    prefix = presets.get("name_prefix")
    if prefix:
        job["name"] = f"{prefix}{job.get('name', '')}"
    tags = presets.get("tags") or {}
    if tags:
        job_tags = job.setdefault("tags", {}) if isinstance(job.get("tags", {}), dict) else {}
        for k in sorted(tags):
            if not job_tags.get(k):
                job_tags[k] = str(tags[k])
    runs = presets.get("jobs_max_concurrent_runs")
    if runs and not job.get("max_concurrent_runs"):
        job["max_concurrent_runs"] = runs
    status = presets.get("trigger_pause_status")
    if status:
        for name in ("schedule", "continuous", "trigger"):
            block = job.get(name)
            if isinstance(block, dict) and not block.get("pause_status"):
                block["pause_status"] = status


def _short_name(user: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", user.split("@", 1)[0])


# --------------------------------------------------------------------------------------------------------
# Variables and ${...} interpolation
# --------------------------------------------------------------------------------------------------------


class _Unresolved(Exception):
    """Internal: why one ``${...}`` reference has no value."""


class _Interpolator:
    def __init__(self, bundle: _Bundle, cli_vars: Mapping[str, str], user: str) -> None:
        self.bundle = bundle
        self.cli_vars = cli_vars
        self.user = user
        self.definitions = self._definitions()
        self.values: dict[str, Any] = {}
        self.resolving: list[str] = []
        self.problems: list[Problem] = []
        self.git_details: dict[str, str] | None = None
        for name in cli_vars:
            if name not in self.definitions:
                hint = _closest(name, self.definitions)
                bundle.fail(f"--var '{name}': the bundle defines no variable '{name}'{hint}", "variables")

    def _definitions(self) -> dict[str, dict[str, Any]]:
        root = self.bundle.root
        defs: dict[str, dict[str, Any]] = {}
        for name, d in _mapping(self.bundle.config.get("variables"), "variables", root).items():
            d = d if isinstance(d, dict) else {"default": d}
            _check_keys(d, _VARIABLE_KEYS, f"variables.{name}", root)
            if d.get("type") not in (None, "complex"):
                self.bundle.fail(f"variable '{name}': type must be 'complex', not '{d['type']}'", "variables")
            defs[name] = d
        target_vars = self.bundle.target_config.get("variables") or {}
        for name, value in _mapping(target_vars, "target variables", root).items():
            if name not in defs:
                where = f"targets.{self.bundle.target}.variables"
                self.bundle.fail(
                    f"variable '{name}' is assigned but not defined{_closest(name, defs)}", where
                )
            full = isinstance(value, dict) and value and set(value) <= set(_VARIABLE_KEYS)
            base = {k: v for k, v in defs[name].items() if k not in ("default", "lookup")}
            defs[name] = {**base, **value} if full else {**base, "default": value}
        return defs

    def raise_problems(self) -> None:
        if self.problems:
            raise InvalidJobError(self.problems)

    # -- variables ----------------------------------------------------------------------------------------

    def variable(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name not in self.definitions:
            raise _Unresolved(f"the bundle defines no variable '{name}'{_closest(name, self.definitions)}")
        if name in self.resolving:
            cycle = " -> ".join([*self.resolving[self.resolving.index(name) :], name])
            raise _Unresolved(f"variables refer to each other in a cycle: {cycle}")
        self.resolving.append(name)
        try:
            value = self._interpolate_var(self._raw_variable(name))
        finally:
            self.resolving.pop()
        self.values[name] = value
        return value

    def _interpolate_var(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._string_strict(value)
        if isinstance(value, dict):
            return {k: self._interpolate_var(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._interpolate_var(v) for v in value]
        return value

    def _raw_variable(self, name: str) -> Any:
        d = self.definitions[name]
        complex_ = d.get("type") == "complex"
        env_name = f"BUNDLE_VAR_{name}"
        if name in self.cli_vars or env_name in os.environ:
            if complex_:
                how = "--var" if name in self.cli_vars else f"the environment variable {env_name}"
                raise _Unresolved(f"variable '{name}' is complex and cannot be set with {how}")
            return self.cli_vars[name] if name in self.cli_vars else os.environ[env_name]
        if "default" not in d and d.get("lookup") is not None:
            raise _Unresolved(
                f"variable '{name}' uses a lookup, which Sluice cannot resolve; "
                f"assign it with --var {name}=<value> or the {env_name} environment variable"
            )
        if "default" not in d or d["default"] is None:
            raise _Unresolved(
                f"no value assigned to required variable '{name}'; assign it with --var {name}=<value>, "
                f"the {env_name} environment variable, or a default"
            )
        value = d["default"]
        if not complex_ and isinstance(value, dict | list):
            raise _Unresolved(f"variable '{name}' has a complex value; declare it with type: complex")
        return value

    # -- references ---------------------------------------------------------------------------------------

    def lookup(self, ref: str) -> Any:
        parts = re.findall(r"[^.\[\]]+|\[[0-9]+\]", ref)
        head = parts[0]
        if head == "var" and len(parts) > 1:
            return _index(self.variable(parts[1]), parts[2:], ref)
        simple = {
            "bundle.name": self.bundle.name,
            "bundle.target": self.bundle.target,
            "bundle.environment": self.bundle.target,
            "workspace.current_user.userName": self.user,
            "workspace.current_user.user_name": self.user,
            "workspace.current_user.short_name": _short_name(self.user),
            "workspace.file_path": str(self.bundle.root.parent),
        }
        if ref in simple:
            return simple[ref]
        if ref == "workspace.root_path":
            return self.root_path()
        if parts[:2] == ["bundle", "git"] and len(parts) == 3 and parts[2] in GIT_FIELDS:
            return self.git(parts[2])
        if head == "resources":
            if parts[1:2] == ["jobs"] and parts[3:] == ["id"] and parts[2] in self.bundle.jobs_by_key:
                return f"${{{ref}}}"  # a job id: assigned when the bundle is deployed (sluice.engine.local)
            raise _Unresolved(
                "Sluice resolves ${resources.jobs.<key>.id} of this bundle's jobs (when it deploys them); "
                "other resources are not supported"
            )
        raise _Unresolved(
            "unknown reference; Sluice resolves ${var.<name>}, ${bundle.name}, ${bundle.target}, "
            "${bundle.git.origin_url|branch|commit}, ${workspace.current_user.userName}, "
            "${workspace.current_user.short_name}, ${workspace.root_path}, ${workspace.file_path}, "
            "${resources.jobs.<key>.id}"
        )

    def git(self, field: str) -> Any:
        """``bundle.git.<field>``: as configured (``bundle.git`` or the target's ``git``), else from git."""
        configured = _merge(
            _mapping(self.bundle.config.get("bundle"), "bundle", self.bundle.root).get("git"),
            self.bundle.target_config.get("git"),
        )
        if isinstance(configured, dict) and configured.get(field) not in (None, ""):
            return self._interpolate_var(configured[field])
        if self.git_details is None:
            self.git_details = git_details(self.bundle.root.parent)
        return self.git_details[field]

    def root_path(self) -> Any:
        """``workspace.root_path``: as configured, else the CLI's default, ``~`` expanded as the CLI does."""
        configured = _merge(self.bundle.config.get("workspace"), self.bundle.target_config.get("workspace"))
        value = configured.get("root_path") if isinstance(configured, dict) else None
        if value in (None, ""):
            value = f"~/.bundle/{self.bundle.name}/{self.bundle.target}"
        value = self._interpolate_var(value)
        if isinstance(value, str) and (value == "~" or value.startswith("~/")):
            value = f"/Workspace/Users/{self.user}{value[1:]}"  # expand_workspace_root.go
        return value

    def _string_strict(self, text: str) -> Any:
        """``text`` with its references resolved; _Unresolved names the first reference that fails."""
        full = _REF_RE.fullmatch(text)
        if full:
            return self._lookup_named(full.group(1))

        def sub(m: re.Match[str]) -> str:
            return _as_text(self._lookup_named(m.group(1)), m.group(0))

        return _REF_RE.sub(sub, text)

    def _lookup_named(self, ref: str) -> Any:
        try:
            return self.lookup(ref)
        except _Unresolved as exc:
            if str(exc).startswith("${"):
                raise _Unresolved(f"${{{ref}}} -> {exc}") from None
            raise _Unresolved(f"${{{ref}}}: {exc}") from None

    def value(self, value: Any, where: str, file: Path, job: str | None) -> Any:
        """``value`` with every ``${...}`` resolved; problems are collected, not raised."""
        if isinstance(value, dict):
            return {k: self.value(v, f"{where}.{k}", file, job) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]", file, job) for i, v in enumerate(value)]
        text = value.text if isinstance(value, _Located) else value
        if not isinstance(text, str) or "${" not in text:
            return value
        try:
            resolved = self._string_strict(text)
        except _Unresolved as exc:
            self.problems.append(Problem(f"cannot resolve {exc}", file=str(file), job=job, field=where))
            return value
        if isinstance(value, _Located) and isinstance(resolved, str):
            return _Located(resolved, value.base)
        return resolved


def _index(value: Any, parts: list[str], ref: str) -> Any:
    for part in parts:
        if part.startswith("["):
            i = int(part[1:-1])
            if not isinstance(value, list) or i >= len(value):
                raise _Unresolved(f"{part} is out of range in ${{{ref}}}")
            value = value[i]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise _Unresolved(f"no field '{part}' in the value of ${{{ref}}}")
    return value


def _as_text(value: Any, ref: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise _Unresolved(f"{ref}: a complex value cannot be part of a string")
    return str(value)


def _closest(word: str, choices: Iterable[str]) -> str:
    import difflib  # only on the error path

    found = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""
