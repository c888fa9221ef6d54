"""All-purpose clusters: long-lived, named Spark Connect servers (``sluice clusters start NAME``).

A cluster is a detached server whose state file carries its name; tasks reach it with
``existing_cluster_id: NAME``. It runs until ``sluice clusters stop NAME`` (or the machine restarts: a dead
cluster's state file is swept).
"""

from __future__ import annotations

import re
from pathlib import Path

from sluice.compute.server import ComputeError, Server, ServerInfo, read_states, start_server, sweep

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_CLUSTER_PREFIX = "cluster:"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ComputeError(
            f"cluster name '{name}' is not valid: use letters, digits, '_', '.' and '-' (at most 100)"
        )


def list_clusters(home: Path) -> list[ServerInfo]:
    """The running all-purpose clusters, by name."""
    sweep(home)
    found = [i for i in read_states(home) if i.name.startswith(_CLUSTER_PREFIX) and i.alive()]
    return sorted(found, key=lambda i: i.name)


def cluster_name(info: ServerInfo) -> str:
    return info.name.removeprefix(_CLUSTER_PREFIX)


def find_cluster(home: Path, name: str) -> ServerInfo | None:
    return next((i for i in list_clusters(home) if cluster_name(i) == name), None)


def start_cluster(
    home: Path, name: str, *, engine: str = "sail", port: int = 0, env: dict[str, str] | None = None
) -> ServerInfo:
    """Start the all-purpose cluster ``name``; ComputeError if one of that name runs already."""
    _check_name(name)
    existing = find_cluster(home, name)
    if existing is not None:
        raise ComputeError(
            f"cluster '{name}' is already running at {existing.endpoint} (pid {existing.pid}); "
            f"stop it first with `sluice clusters stop {name}`"
        )
    server = start_server(home, engine=engine, port=port, name=_CLUSTER_PREFIX + name, detached=True, env=env)
    return server.info


def stop_cluster(home: Path, name: str) -> ServerInfo:
    """Stop the all-purpose cluster ``name``; ComputeError when none of that name runs."""
    info = find_cluster(home, name)
    if info is None:
        raise ComputeError(f"no cluster named '{name}' is running; see `sluice clusters list`")
    Server(info, home).stop()
    return info


def cluster_endpoint(home: Path, name: str) -> str:
    """The endpoint of the running cluster ``name`` (``existing_cluster_id: NAME``)."""
    info = find_cluster(home, name)
    if info is None:
        raise ComputeError(
            f"existing_cluster_id '{name}': no such cluster is running; start it with "
            f"`sluice clusters start {name}`, or use an sc://host:port URL"
        )
    return info.endpoint
