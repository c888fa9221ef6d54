"""Remote mode: the ``jobs`` and ``runs`` commands call a ``sluice serve`` over its REST API.

Remote mode is on when a profile is named (``--profile NAME`` or ``SLUICE_PROFILE``: a section of
``~/.databrickscfg``, or of the file ``DATABRICKS_CONFIG_FILE`` names, with ``host`` and ``token``) or when
``SLUICE_HOST`` is set (with ``SLUICE_TOKEN``). A named profile wins over ``SLUICE_HOST``. Otherwise the
commands work on the local store, as always. ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` are deliberately not
read: they usually point at a real Databricks workspace, and ``sluice jobs delete 5`` must never reach it
by accident.

The client is stdlib ``urllib`` (the CLI stays light); every call is one request to ``/api/2.2/...``, and
Databricks error bodies become :class:`RemoteError` with the CLI's exit code (see ``common``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.common import EXIT_INVALID, EXIT_REMOTE, RemoteError

if TYPE_CHECKING:
    import urllib.error

HOST_ENV = "SLUICE_HOST"
TOKEN_ENV = "SLUICE_TOKEN"  # noqa: S105 - the variable's name, not a token
PROFILE_ENV = "SLUICE_PROFILE"
#: The databricks CLI's override of ``~/.databrickscfg``; honoured for the same file.
CONFIG_FILE_ENV = "DATABRICKS_CONFIG_FILE"
#: Seconds one request may take before the CLI gives up on the server.
TIMEOUT_S = 60.0
#: Seconds between two ``runs/get`` while waiting for a run to end.
POLL_S = 0.3
_TERMINAL = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Call the server of this ~/.databrickscfg profile instead of the local store "
        "(default $SLUICE_PROFILE; or set $SLUICE_HOST and $SLUICE_TOKEN).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Target:
    """Where remote mode sends requests, and where that came from (for error messages)."""

    host: str
    token: str | None
    origin: str


def config_file() -> Path:
    named = os.environ.get(CONFIG_FILE_ENV)
    return Path(named).expanduser() if named else Path.home() / ".databrickscfg"


def _checked_host(host: str, origin: str) -> str:
    host = host.strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise RemoteError(
            f"{origin}: host '{host}' has no scheme; write it as http://{host} (or https://...)", EXIT_INVALID
        )
    return host


def read_profile(name: str, path: Path | None = None) -> Target:
    """The host and token of profile ``name`` (a section of the databricks CLI's config file)."""
    import configparser

    path = path or config_file()
    parser = configparser.ConfigParser(default_section="\0", interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise RemoteError(
            f"profile '{name}' was asked for, but {path} does not exist; create it with a [{name}] section "
            "holding host = http://HOST:PORT and token = dapi...",
            EXIT_INVALID,
        ) from None
    except (OSError, configparser.Error) as exc:
        raise RemoteError(f"cannot read {path}: {exc}", EXIT_INVALID) from None
    if not parser.has_section(name):
        known = ", ".join(parser.sections()) or "none"
        raise RemoteError(f"{path} has no profile [{name}] (its profiles: {known})", EXIT_INVALID)
    section = parser[name]
    origin = f"profile [{name}] of {path}"
    if not section.get("host"):
        raise RemoteError(f"{origin} has no host = http://HOST:PORT line", EXIT_INVALID)
    auth = section.get("auth_type", "pat")
    if auth != "pat" or not section.get("token"):
        raise RemoteError(
            f"{origin} has no token (auth_type {auth}): Sluice servers take personal access tokens only; "
            "add token = dapi... (from `sluice tokens create` on the server)",
            EXIT_INVALID,
        )
    return Target(_checked_host(section["host"], origin), section["token"].strip(), origin)


def target(profile: str | None = None) -> Target | None:
    """The server to call, or None for local mode."""
    name = profile or os.environ.get(PROFILE_ENV) or None
    if name:
        return read_profile(name)
    host = os.environ.get(HOST_ENV) or None
    if host is None:
        return None
    return Target(_checked_host(host, HOST_ENV), os.environ.get(TOKEN_ENV) or None, HOST_ENV)


def connect(profile: str | None = None) -> Client | None:
    """A client for remote mode, or None for local mode."""
    found = target(profile)
    return None if found is None else Client(found)


def local_only(command: str) -> None:
    """Refuse a command that has no API equivalent when remote mode is on (its ids would be the server's)."""
    if os.environ.get(PROFILE_ENV) or os.environ.get(HOST_ENV):
        where = PROFILE_ENV if os.environ.get(PROFILE_ENV) else HOST_ENV
        raise RemoteError(
            f"`sluice {command}` works on the local store only, and {where} is set (remote mode): "
            f"run it on the server's machine, or unset {where} to use the local store here",
            EXIT_INVALID,
        )


def _params(values: dict[str, Any]) -> str:
    import urllib.parse

    pairs = []
    for key, value in values.items():
        if value is None:
            continue
        pairs.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return urllib.parse.urlencode(pairs)


class Client:
    """The Jobs API 2.2 of one server, as the CLI needs it."""

    def __init__(self, where: Target) -> None:
        self.where = where

    # -- transport -------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        import urllib.error  # here: urllib.request costs ~50 ms to import, local mode never needs it
        import urllib.request

        url = f"{self.where.host}/api/2.2/{path}"
        if query:
            url += "?" + _params(query)
        headers = {"Accept": "application/json", "User-Agent": "sluice-cli"}
        if self.where.token:
            headers["Authorization"] = f"Bearer {self.where.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s) only: _checked_host
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - as above
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise self._refused(exc, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(
                f"cannot reach the Sluice server at {self.where.host} (from {self.where.origin}): {reason}. "
                f"Is `sluice serve` running there? To work on the local store instead, {self._leave()}.",
                EXIT_REMOTE,
            ) from None
        except json.JSONDecodeError:
            raise RemoteError(
                f"{self.where.host} answered {method} {path} with something other than JSON: "
                "is it a Sluice server?",
                EXIT_REMOTE,
            ) from None

    def _leave(self) -> str:
        if self.where.origin == HOST_ENV:
            return f"unset {HOST_ENV}"
        return f"drop --profile and unset {PROFILE_ENV}"

    def _refused(self, exc: urllib.error.HTTPError, path: str) -> RemoteError:
        raw = exc.read()
        try:
            doc = json.loads(raw)
            code, message = str(doc.get("error_code", "")), str(doc.get("message", ""))
        except (json.JSONDecodeError, AttributeError):
            code, message = "", raw.decode(errors="replace")[:200]
        host, origin = self.where.host, self.where.origin
        if exc.code == 401:
            hint = f"set {TOKEN_ENV}" if origin == HOST_ENV else "add token = dapi... to the profile"
            return RemoteError(f"the server at {host} wants a token ({hint}): {message}", EXIT_REMOTE)
        if exc.code == 403:
            return RemoteError(
                f"the server at {host} refused the token from {origin}: {message} "
                "Create one on the server with `sluice tokens create --comment NAME`.",
                EXIT_REMOTE,
            )
        if code == "ENDPOINT_NOT_FOUND" or (exc.code == 404 and not code):
            return RemoteError(f"{host} does not serve /api/2.2/{path}: is it a Sluice server?", EXIT_REMOTE)
        if exc.code >= 500:
            return RemoteError(f"the server at {host} failed: {message} ({code or exc.code})", EXIT_REMOTE)
        return RemoteError(message or f"HTTP {exc.code} from {host}", EXIT_INVALID)

    def _pages(self, path: str, key: str, query: dict[str, Any], limit: int, page: int) -> list[Any]:
        """Up to ``limit`` items of a listing, following ``next_page_token``."""
        items: list[Any] = []
        token = None
        while len(items) < limit:
            doc = self.call(
                "GET", path, query={**query, "limit": min(page, limit - len(items)), "page_token": token}
            )
            items.extend(doc.get(key, []))
            token = doc.get("next_page_token")
            if not token or not doc.get("has_more", True):
                return items
        return items

    def _whole(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        """A ``jobs/get`` or ``runs/get`` document with every page of its arrays joined."""
        doc: dict[str, Any] = self.call("GET", path, query=query)
        token = doc.pop("next_page_token", None)
        while token:
            more = self.call("GET", path, query={**query, "page_token": token})
            token = more.pop("next_page_token", None)
            for holder, extra in ((doc, more), (doc.get("settings"), more.get("settings"))):
                if isinstance(holder, dict) and isinstance(extra, dict):
                    for name, value in extra.items():
                        if isinstance(value, list) and isinstance(holder.get(name), list):
                            holder[name].extend(value)
        doc.pop("has_more", None)
        return doc

    # -- jobs ------------------------------------------------------------------------------------------

    def list_jobs(self, *, name: str | None, limit: int) -> list[dict[str, Any]]:
        return self._pages("jobs/list", "jobs", {"name": name, "expand_tasks": True}, limit, 100)

    def get_job(self, job_id: int) -> dict[str, Any]:
        return self._whole("jobs/get", {"job_id": job_id})

    def create_job(self, settings: dict[str, Any]) -> int:
        return int(self.call("POST", "jobs/create", body=settings)["job_id"])

    def update_job(self, job_id: int, new_settings: dict[str, Any]) -> None:
        self.call("POST", "jobs/update", body={"job_id": job_id, "new_settings": new_settings})

    def reset_job(self, job_id: int, settings: dict[str, Any]) -> None:
        self.call("POST", "jobs/reset", body={"job_id": job_id, "new_settings": settings})

    def delete_job(self, job_id: int) -> None:
        self.call("POST", "jobs/delete", body={"job_id": job_id})

    def run_now(self, job_id: int, **fields: Any) -> dict[str, Any]:
        body = {"job_id": job_id, **{k: v for k, v in fields.items() if v is not None}}
        result: dict[str, Any] = self.call("POST", "jobs/run-now", body=body)
        return result

    # -- runs ------------------------------------------------------------------------------------------

    def list_runs(self, *, job_id: int | None, active_only: bool, limit: int) -> list[dict[str, Any]]:
        query = {"job_id": job_id, "active_only": active_only or None}
        return self._pages("jobs/runs/list", "runs", query, limit, 25)

    def get_run(self, run_id: int) -> dict[str, Any]:
        query = {"run_id": run_id, "include_history": True, "include_resolved_values": True}
        return self._whole("jobs/runs/get", query)

    def cancel_run(self, run_id: int) -> None:
        self.call("POST", "jobs/runs/cancel", body={"run_id": run_id})

    def repair_run(self, run_id: int, **fields: Any) -> int:
        body = {"run_id": run_id, **{k: v for k, v in fields.items() if v is not None}}
        return int(self.call("POST", "jobs/runs/repair", body=body)["repair_id"])

    def run_output(self, task_run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "jobs/runs/get-output", query={"run_id": task_run_id})
        return result

    def export_views(self, task_run_id: int) -> list[dict[str, Any]]:
        query = {"run_id": task_run_id, "views_to_export": "CODE"}
        return list(self.call("GET", "jobs/runs/export", query=query).get("views", []))

    def wait(
        self,
        run_id: int,
        *,
        on_interrupt: Callable[[], None] | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll ``runs/get`` until the run has ended; the first Ctrl-C calls ``on_interrupt`` (cancel);
        ``on_poll`` sees each state on the way (a live table)."""
        interrupted = False
        while True:
            try:
                doc = self.get_run(run_id)
                if on_poll is not None:
                    on_poll(doc)
                if doc["state"]["life_cycle_state"] in _TERMINAL:
                    return doc
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                if interrupted or on_interrupt is None:
                    raise
                interrupted = True
                on_interrupt()
