"""How job parameters, task parameters and run-now overrides combine (Databricks' precedence rules).

* Job parameters (``parameters[{name, default}]``, overridden per run) are pushed down to every task that
  takes key/value parameters; on a clash the job parameter wins over the task parameter.
* Legacy path (the job defines no job parameters): ``notebook_params`` (and other legacy maps) are merged
  over the task's own map, the run-now value winning; ``python_params``/``jar_params``/``spark_submit_params``
  replace the task's list.
* Positional tasks (``spark_python_task``, wheel ``parameters``) get no job parameters automatically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sluice.errors import InvalidRequestError

#: Databricks' limit on the JSON of each legacy run-now map/list.
LEGACY_MAX_BYTES = 10_000


def _closest(word: str, choices: Sequence[str]) -> str:
    import difflib  # error path only

    found = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{found[0]}'? " if found else ""


def resolve_job_parameters(
    definitions: Sequence[tuple[str, str]], overrides: Mapping[str, str]
) -> list[dict[str, str]]:
    """The run's ``job_parameters``: ``[{name, default, value}]`` in definition order.

    ``definitions`` are ``(name, default)`` pairs. An override naming no defined parameter raises
    InvalidRequestError listing the defined ones.
    """
    defined = [name for name, _ in definitions]
    known = set(defined)
    for name in overrides:
        if name not in known:
            listing = ", ".join(defined) if defined else "none (the job defines no parameters)"
            raise InvalidRequestError(
                f"job parameter '{name}' is not defined by this job; {_closest(name, defined)}"
                f"defined parameters: {listing}"
            )
    return [
        {"name": name, "default": default, "value": overrides.get(name, default)}
        for name, default in definitions
    ]


def merge_named(
    task_params: Mapping[str, str],
    job_params: Mapping[str, str],
    legacy_overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Key/value parameters a task receives (notebook widgets, wheel named params, SQL params ...).

    With job parameters defined they are pushed down and win over the task's own parameters; legacy
    overrides are then refused (Databricks does not mix the two). Without job parameters, the legacy run-now
    map is merged over the task's parameters and wins.
    """
    if job_params:
        if legacy_overrides:
            raise InvalidRequestError(
                "this job defines job parameters, so legacy parameters (notebook_params, python_named_params "
                "...) cannot be passed; pass job_parameters instead"
            )
        return {**task_params, **job_params}
    if legacy_overrides:
        return {**task_params, **legacy_overrides}
    return dict(task_params)


def positional(task_params: Sequence[str], legacy_override: Sequence[str] | None = None) -> list[str]:
    """Positional arguments (spark_python_task, wheel ``parameters``): a non-empty legacy list replaces the
    task's list; job parameters are never pushed down here (use ``{{job.parameters.<name>}}``)."""
    return list(legacy_override) if legacy_override else list(task_params)


def check_legacy(name: str, value: Mapping[str, str] | Sequence[str], *, ascii_only: bool = False) -> None:
    """Databricks' limits on one legacy run-now field: its JSON at most 10,000 bytes; ``python_params`` and
    ``spark_submit_params`` ASCII only. Raises InvalidRequestError naming the field."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) > LEGACY_MAX_BYTES:
        raise InvalidRequestError(
            f"{name} is {len(encoded)} bytes of JSON; the limit is {LEGACY_MAX_BYTES} bytes. "
            "Pass large values through a file or job parameters"
        )
    if ascii_only:
        items = value.values() if isinstance(value, Mapping) else value
        for item in items:
            if not item.isascii():
                raise InvalidRequestError(f"{name} must be ASCII only; {item!r} is not")
