"""Notification destinations (webhook targets named by id in job settings) and their deploy-time check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.errors import InvalidJobError, InvalidRequestError, Problem
from sluice.store import Store
from sluice.store import notifications as outbox
from sluice.store.notifications import DestinationRecord

#: Destination types and what they mean.
DESTINATION_TYPES = {"slack": "Slack incoming webhook", "webhook": "generic JSON webhook"}

#: Databricks allows at most this many destinations per event, per job or task.
MAX_WEBHOOKS_PER_EVENT = 3


def create(store: Store, *, type: str, url: str, name: str | None, now: int) -> DestinationRecord:
    """Record a destination; InvalidRequestError names a bad type or URL."""
    if type not in DESTINATION_TYPES:
        raise InvalidRequestError(
            f"destination type '{type}' is not supported; use one of: {', '.join(DESTINATION_TYPES)}"
        )
    if not url.startswith(("http://", "https://")):
        raise InvalidRequestError(f"destination URL '{url}' must start with http:// or https://")
    return outbox.create_destination(store, type=type, url=url, name=name or f"{type} destination", now=now)


def _webhook_refs(holder: Mapping[str, Any], where: str) -> Iterator[tuple[str, str, list[str]]]:
    """(field path, event, destination ids) of one JobSettings or Task document."""
    hooks = holder.get("webhook_notifications") or {}
    for event, refs in hooks.items():
        ids = [str(r.get("id")) for r in refs or () if isinstance(r, Mapping)]
        yield f"{where}webhook_notifications.{event}", event, ids


def _holders(settings: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, str | None]]:
    yield settings, "", None
    for i, task in enumerate(settings.get("tasks") or ()):
        yield task, f"tasks[{i}].", task.get("task_key")
        nested = (task.get("for_each_task") or {}).get("task")
        if nested:
            yield nested, f"tasks[{i}].for_each_task.task.", nested.get("task_key")


def validate_destinations(
    store: Store, settings: Mapping[str, Any], *, file: str | None = None, job: str | None = None
) -> None:
    """Every webhook id the job names is a destination in ``store``, at most 3 per event (InvalidJobError
    lists every problem). Call it at deploy time, with the JobSettings document (Jobs API JSON)."""
    known = {d.destination_id for d in outbox.list_destinations(store)}
    problems = []
    for holder, where, task in _holders(settings):
        for field, _event, ids in _webhook_refs(holder, where):
            if len(ids) > MAX_WEBHOOKS_PER_EVENT:
                problems.append(
                    Problem(
                        f"{len(ids)} destinations; at most {MAX_WEBHOOKS_PER_EVENT} per event are allowed",
                        file=file,
                        job=job,
                        task=task,
                        field=field,
                    )
                )
            problems.extend(
                Problem(
                    f"notification destination '{dest}' does not exist; create it with "
                    "`sluice destinations create --type slack|webhook --url URL` and use the id it prints "
                    "(`sluice destinations list` shows them)",
                    file=file,
                    job=job,
                    task=task,
                    field=field,
                )
                for dest in ids
                if dest not in known
            )
    if problems:
        raise InvalidJobError(problems)
