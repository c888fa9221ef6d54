"""The notifier's settings: SMTP, the base URL of run links, and delivery limits (read when asked).

| variable              | default                 | meaning                                                  |
|-----------------------|-------------------------|----------------------------------------------------------|
| SLUICE_SMTP_HOST      | (none: email disabled)  | SMTP server host name                                    |
| SLUICE_SMTP_PORT      | 25, 587 (starttls), 465 (ssl) | SMTP server port                                   |
| SLUICE_SMTP_USER      | (none: no login)        | SMTP login user                                          |
| SLUICE_SMTP_PASSWORD  | (none)                  | SMTP login password                                      |
| SLUICE_SMTP_TLS       | none                    | ``none``, ``starttls`` or ``ssl`` (implicit TLS)         |
| SLUICE_SMTP_FROM      | sluice@localhost        | the From address                                         |
| SLUICE_SMTP_CA_FILE   | (system trust store)    | PEM file of CAs that sign the SMTP server's certificate  |
| SLUICE_BASE_URL       | (none: no links)        | where ``sluice serve`` is reached, for links to runs     |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sluice.settings import Settings

TlsMode = Literal["none", "starttls", "ssl"]


@dataclass(frozen=True)
class NotifySettings:
    """How the notifier sends. Every field has a working default except the SMTP host (no host: email
    deliveries fail with a message naming ``SLUICE_SMTP_HOST``)."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: TlsMode = "none"
    smtp_from: str = "sluice@localhost"
    smtp_ca_file: str | None = None
    #: ``https://sluice.example.com``: run links are ``{base_url}/jobs/{job_id}/runs/{run_id}``.
    base_url: str | None = None
    #: Seconds one SMTP or HTTP delivery may take (connect, send, answer).
    timeout_s: float = 10.0
    #: Attempts per notification before it is recorded FAILED.
    max_attempts: int = 5
    #: Backoff after failed attempt n: ``backoff_base_ms * 2**(n-1)``, at most ``backoff_max_ms``.
    backoff_base_ms: int = 2_000
    backoff_max_ms: int = 300_000
    #: Threads that deliver; 0 delivers inside ``tick`` (tests, and a final flush).
    workers: int = 2
    #: Each scan re-reads runs that ended this long before the last scan: commits that land late
    #: (a slow transaction, clocks of several hosts) are still seen; the outbox key makes re-reads harmless.
    rescan_ms: int = 60_000
    #: A notifier starting after a pause looks back at most this far (older events are not sent).
    max_backfill_ms: int = 3_600_000

    @property
    def lease_ms(self) -> int:
        """How long a claimed delivery is reserved: a sender that died is replaced after this."""
        return int(self.timeout_s * 3_000) + 5_000

    def backoff_ms(self, attempt: int) -> int:
        return int(min(self.backoff_max_ms, self.backoff_base_ms * 2 ** max(0, attempt - 1)))

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> NotifySettings:
        """The notifier's part of :class:`sluice.settings.Settings` (environment over the TOML file)."""
        from sluice.settings import Settings

        return NotifySettings.of(Settings.from_env(environ=environ))

    @staticmethod
    def of(settings: Settings) -> NotifySettings:
        smtp = settings.smtp
        tls: TlsMode = "ssl" if smtp.tls == "ssl" else "starttls" if smtp.tls == "starttls" else "none"
        return NotifySettings(
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_user=smtp.user,
            smtp_password=smtp.password,
            smtp_tls=tls,
            smtp_from=smtp.sender,
            smtp_ca_file=smtp.ca_file,
            base_url=settings.base_url,
        )


def run_page_path(job_id: int | None, run_id: int) -> str:
    """The Jobs UI's path of a run or task run (Databricks' own shape): ``/jobs/{job_id}/runs/{run_id}``;
    ``/jobs/runs/{run_id}`` for a one-time run, which belongs to no job."""
    if job_id is None:
        return f"/jobs/runs/{run_id}"
    return f"/jobs/{job_id}/runs/{run_id}"


def run_page_url(base_url: str | None, job_id: int | None, run_id: int) -> str | None:
    """The link to a run's page in the Jobs UI (the Databricks ``run_page_url``), None without a base URL."""
    if not base_url:
        return None
    return base_url + run_page_path(job_id, run_id)
