"""Where Sluice keeps its state and how it runs: environment variables over one optional TOML file.

Read when asked, never at import. ``Settings.from_env()`` is on the hot path of ``sluice run``: it reads
the environment and, only when a config file is named (``SLUICE_CONFIG`` or ``--config``) or present at
``$SLUICE_HOME/sluice.toml``, parses that file (tomllib is imported only then).

- ``SLUICE_HOME`` (~/.sluice): database, run directories (logs, outputs), checkouts; not in the file.
- ``SLUICE_CONFIG`` (HOME/sluice.toml): the TOML file every command reads; not in the file.
- ``SLUICE_DATABASE_URL``, ``database_url`` (SQLite in HOME): ``postgresql://user@host:5432/db``.
- ``SLUICE_PARALLELISM``, ``parallelism`` (CPU count): task processes running at once, per driver.
- ``SLUICE_SERVER_HOST``, ``[server] host`` (127.0.0.1) and ``SLUICE_SERVER_PORT``, ``[server] port``
  (8080): where ``sluice serve`` listens.
- ``SLUICE_SMTP_HOST``, ``_PORT``, ``_TLS``, ``_USER``, ``_PASSWORD``, ``_FROM``, ``_CA_FILE`` and
  ``[smtp] host``, ``port``, ``tls``, ``user``, ``password``, ``from``, ``ca_file``: the mail server of email
  notifications (no host: email is off; tls ``none``, ``starttls`` or ``ssl``; port 25, 587 with starttls,
  465 with ssl; From sluice@localhost; CA file: a PEM bundle trusted besides the system's).
- ``SLUICE_AUTH``, ``[server] auth`` (true): whether ``sluice serve`` needs a token; false (local use: no
  login, no tokens) is accepted only with a loopback ``host`` (``sluice.server.local``).
- ``SLUICE_BASE_URL``, ``[server] base_url`` (none): where users reach ``sluice serve``, for links to runs
  in notifications.
- ``SLUICE_ALLOW_LOCAL_GIT_SOURCES``, ``[server] allow_local_git_sources`` (true): whether API callers of
  ``sluice serve`` may name a local path or ``file://`` as ``git_source.git_url`` (``sluice run`` always may).
- ``SLUICE_MAX_REQUEST_BODY_BYTES``, ``[server] max_request_body_bytes`` (10 MiB): larger API request
  bodies answer 413.
- ``SLUICE_MAX_LOG_BYTES``, ``[tasks] max_log_bytes`` (10 MiB; 0: no cap): each log of a task attempt
  keeps its last this many bytes (``sluice.executors.caplog``).
- ``SLUICE_GIT_TIMEOUT``, ``git_timeout`` (300): seconds a run's ``git_source`` checkout may take before it
  is stopped and its run fails.

Environment variables win over the file; command-line options win over both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sluice.errors import SluiceError

T = TypeVar("T")

CONFIG_FILE_NAME = "sluice.toml"
DEFAULT_SERVER_HOST = "127.0.0.1"
DEFAULT_SERVER_PORT = 8080
DEFAULT_GIT_TIMEOUT = 300
SMTP_TLS_MODES = ("none", "starttls", "ssl")
_SMTP_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
DEFAULT_MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server of email notifications; ``host`` None means email is not configured."""

    host: str | None = None
    port: int = 25
    tls: str = "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "sluice@localhost"
    #: PEM file of CAs that sign the server's certificate (besides the system's).
    ca_file: str | None = None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    parallelism: int
    server_host: str = DEFAULT_SERVER_HOST
    server_port: int = DEFAULT_SERVER_PORT
    #: Whether ``sluice serve`` needs a token (false: local use, loopback addresses only).
    auth: bool = True
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    #: ``https://sluice.example.com``: the base of links to runs in notifications; None: no links.
    base_url: str | None = None
    #: The TOML file these settings were read from, None when there was none.
    config_file: Path | None = None
    #: Whether jobs sent to ``sluice serve`` may check out a local path or file:// git_url.
    allow_local_git_sources: bool = True
    #: API request bodies larger than this answer 413.
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES
    #: Each log (stdout, stderr) of a task attempt keeps its last this many bytes; 0: no cap.
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    #: Seconds a git_source checkout may take (it runs in a process of its own, killed at this deadline).
    git_timeout: int = DEFAULT_GIT_TIMEOUT

    @staticmethod
    def from_env(config: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) over the TOML file ``config`` (or HOME's)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("SLUICE_HOME") or Path.home() / ".sluice").expanduser()
        path = _config_path(config, env, home)
        data = _read_toml(path) if path is not None else {}
        r = _Reader(env, data, path)
        parallelism = r.get("SLUICE_PARALLELISM", ("parallelism",), int, os.cpu_count() or 1)
        if parallelism < 1:
            raise SluiceError(f"{r.source('SLUICE_PARALLELISM', ('parallelism',))} must be at least 1")
        port = r.get("SLUICE_SERVER_PORT", ("server", "port"), int, DEFAULT_SERVER_PORT)
        if not 0 <= port <= 65535:
            raise SluiceError(f"{r.source('SLUICE_SERVER_PORT', ('server', 'port'))} must be 0..65535")
        body_limit = r.get(
            "SLUICE_MAX_REQUEST_BODY_BYTES",
            ("server", "max_request_body_bytes"),
            int,
            DEFAULT_MAX_REQUEST_BODY_BYTES,
        )
        if body_limit < 1:
            where = r.source("SLUICE_MAX_REQUEST_BODY_BYTES", ("server", "max_request_body_bytes"))
            raise SluiceError(f"{where} must be at least 1 (bytes); the default is 10485760 (10 MiB)")
        log_limit = r.get("SLUICE_MAX_LOG_BYTES", ("tasks", "max_log_bytes"), int, DEFAULT_MAX_LOG_BYTES)
        if log_limit < 0:
            where = r.source("SLUICE_MAX_LOG_BYTES", ("tasks", "max_log_bytes"))
            raise SluiceError(f"{where} must be 0 (no cap) or a number of bytes; the default is 10485760")
        git_timeout = r.get("SLUICE_GIT_TIMEOUT", ("git_timeout",), int, DEFAULT_GIT_TIMEOUT)
        if git_timeout < 1:
            raise SluiceError(
                f"{r.source('SLUICE_GIT_TIMEOUT', ('git_timeout',))} must be at least 1 (seconds)"
            )
        return Settings(
            home=home,
            database_url=r.get("SLUICE_DATABASE_URL", ("database_url",), str, None) or None,
            parallelism=parallelism,
            server_host=r.get("SLUICE_SERVER_HOST", ("server", "host"), str, DEFAULT_SERVER_HOST),
            server_port=port,
            auth=r.flag("SLUICE_AUTH", ("server", "auth"), True),
            smtp=_smtp(r),
            base_url=(r.get("SLUICE_BASE_URL", ("server", "base_url"), str, "") or "").rstrip("/") or None,
            config_file=path,
            allow_local_git_sources=r.flag(
                "SLUICE_ALLOW_LOCAL_GIT_SOURCES", ("server", "allow_local_git_sources"), True
            ),
            max_request_body_bytes=body_limit,
            max_log_bytes=log_limit,
            git_timeout=git_timeout,
        )


def _smtp(r: _Reader) -> SmtpSettings:
    tls = r.get("SLUICE_SMTP_TLS", ("smtp", "tls"), str, "none").lower()
    if tls not in SMTP_TLS_MODES:
        where = r.source("SLUICE_SMTP_TLS", ("smtp", "tls"))
        raise SluiceError(f"{where}={tls!r} is not one of {', '.join(SMTP_TLS_MODES)}")
    return SmtpSettings(
        host=r.get("SLUICE_SMTP_HOST", ("smtp", "host"), str, None) or None,
        port=r.get("SLUICE_SMTP_PORT", ("smtp", "port"), int, _SMTP_PORTS[tls]),
        tls=tls,
        user=r.get("SLUICE_SMTP_USER", ("smtp", "user"), str, None) or None,
        password=r.get("SLUICE_SMTP_PASSWORD", ("smtp", "password"), str, None) or None,
        sender=r.get("SLUICE_SMTP_FROM", ("smtp", "from"), str, "sluice@localhost"),
        ca_file=r.get("SLUICE_SMTP_CA_FILE", ("smtp", "ca_file"), str, None) or None,
    )


def _config_path(config: Path | None, env: Mapping[str, str], home: Path) -> Path | None:
    """The named file (which must exist), else ``HOME/sluice.toml`` if it exists, else None."""
    named = config or (Path(env["SLUICE_CONFIG"]) if env.get("SLUICE_CONFIG") else None)
    if named is not None:
        named = named.expanduser()
        if not named.is_file():
            raise SluiceError(f"config file {named} does not exist; create it or name another one")
        return named
    default = home / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a config file: `sluice run` without one never pays for it

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SluiceError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SluiceError(f"config file {path} cannot be read: {exc}") from None


class _Reader:
    """One setting from the environment, else the file, else its default, converted and checked."""

    def __init__(self, env: Mapping[str, str], data: Mapping[str, Any], path: Path | None) -> None:
        self.env = env
        self.data = data
        self.path = path

    def source(self, var: str, key: tuple[str, ...]) -> str:
        if self.env.get(var):
            return var
        return f"{self.path}: {'.'.join(key)}"

    def get(self, var: str, key: tuple[str, ...], kind: Callable[[Any], T], default: T) -> T:
        raw: Any = self.env.get(var) or None
        if raw is None:
            raw = self._from_file(key)
        if raw is None:
            return default
        if kind is int and isinstance(raw, bool):
            raw = "not a number"
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise SluiceError(
                f"{self.source(var, key)}={raw!r} is not a whole number; set it to e.g. 4"
            ) from None

    def flag(self, var: str, key: tuple[str, ...], default: bool) -> bool:
        """A true/false setting: ``true``/``false`` (also 1/0, yes/no, on/off) or a TOML boolean."""
        raw: Any = self.env.get(var) or None
        if raw is None:
            raw = self._from_file(key)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise SluiceError(f"{self.source(var, key)}={raw!r} is not true or false; set it to true or false")

    def _from_file(self, key: tuple[str, ...]) -> Any:
        node: Any = self.data
        for part in key:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        if isinstance(node, Mapping):
            raise SluiceError(f"{self.path}: {'.'.join(key)} must be a value, not a table")
        return node
