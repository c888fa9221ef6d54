"""``sluice serve``: the Jobs API 2.2 REST server with its orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.common import errors_to_exit_codes

_PARAGRAPHS = (
    "Serve the Databricks Jobs API 2.2 (and 2.1) over HTTP and drive the runs it creates.",
    "Every request but GET /health needs a token (unless auth is off, below): create one with "
    "`sluice tokens create --comment NAME`. "
    "The real databricks-sdk and databricks CLI work against it "
    "(DATABRICKS_HOST=http://HOST:PORT DATABRICKS_TOKEN=dapi...).",
    "Settings: environment variables over a TOML file (--config, SLUICE_CONFIG, or "
    "$SLUICE_HOME/sluice.toml when it exists); the options below win over both. "
    "Variable (TOML key): meaning.",
    "SLUICE_HOME: state directory, default ~/.sluice.",
    "SLUICE_DATABASE_URL (database_url): sqlite in SLUICE_HOME by default, or postgresql://user@host/db.",
    "SLUICE_PARALLELISM (parallelism): task processes at once, default the CPU count.",
    "SLUICE_SERVER_HOST (server.host): bind address, default 127.0.0.1.",
    "SLUICE_SERVER_PORT (server.port): port, default 8080.",
    "SLUICE_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD, _FROM, _CA_FILE (smtp.host, .port, .tls, .user, "
    ".password, .from, .ca_file): the mail server of email notifications; tls is none, starttls or ssl; "
    "port defaults to 25 (587 with starttls, 465 with ssl); From to sluice@localhost.",
    "SLUICE_AUTH (server.auth): true (default) or false; false serves without tokens or login, for local "
    "use, and only on a loopback address (127.0.0.1, ::1, localhost).",
    "SLUICE_BASE_URL (server.base_url): where users reach this server, for links to runs in notifications.",
    "SIGTERM or Ctrl-C stops taking new runs and drains the runs in flight for --grace seconds; runs "
    "still active then are adopted when Sluice starts again (a second signal stops at once).",
)
HELP = "\n\n".join(_PARAGRAPHS)

app = typer.Typer(help="Serve the Jobs API.", no_args_is_help=False)


@app.command("serve", help=HELP)
def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default 8080).")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML settings file.")] = None,
    parallelism: Annotated[int | None, typer.Option(min=1, help="Task processes at once.")] = None,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds to drain runs in flight on SIGTERM before exiting.")
    ] = 20.0,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require a token (default), or serve without one: local use, loopback addresses only.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    from dataclasses import replace

    from sluice.server.serve import serve
    from sluice.settings import Settings

    with errors_to_exit_codes():
        settings = Settings.from_env(config)
        settings = replace(
            settings,
            server_host=host or settings.server_host,
            server_port=settings.server_port if port is None else port,
            parallelism=parallelism or settings.parallelism,
            auth=settings.auth if auth is None else auth,
        )
        serve(settings, grace_s=grace, log_level=log_level.lower())
