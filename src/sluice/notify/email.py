"""Email over SMTP (stdlib ``smtplib``): plain text with an HTML alternative, one message per recipient.

TLS: ``none``, ``starttls`` (upgrade after EHLO; the certificate is verified) or ``ssl`` (implicit TLS,
usually port 465). Every network step has the settings' timeout, so a dead server costs one timeout.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from typing import Any

from sluice.notify import render
from sluice.notify.errors import DeliveryError
from sluice.notify.settings import NotifySettings

#: CRLF lines; headers folded only past RFC 5322's 998 characters (short folds mangle long subjects).
_POLICY = SMTP.clone(max_line_length=998)


def build_message(facts: dict[str, Any], *, to: str, key: str, settings: NotifySettings) -> EmailMessage:
    """The message for ``to``; its Message-ID comes from the outbox ``key`` (a re-send is recognisable)."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = render.subject(facts)
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = settings.smtp_from.rpartition("@")[2] or "sluice.local"
    message["Message-ID"] = f"<{digest}@{domain}>"
    message["X-Sluice-Event"] = str(facts["event"])
    message["X-Sluice-Run-Id"] = str(facts["run_id"])
    message.set_content(render.email_text(facts, settings.base_url))
    message.add_alternative(render.email_html(facts, settings.base_url), subtype="html")
    return message


def _tls_context(settings: NotifySettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


def _connect(settings: NotifySettings) -> smtplib.SMTP:
    host = settings.smtp_host
    if not host:
        raise DeliveryError(
            "email is not configured: set SLUICE_SMTP_HOST (and SLUICE_SMTP_PORT, SLUICE_SMTP_TLS) "
            "to an SMTP server",
            permanent=True,
        )
    if settings.smtp_tls == "ssl":
        return smtplib.SMTP_SSL(
            host, settings.smtp_port, timeout=settings.timeout_s, context=_tls_context(settings)
        )
    smtp = smtplib.SMTP(host, settings.smtp_port, timeout=settings.timeout_s)
    try:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=_tls_context(settings))
    except BaseException:
        smtp.close()
        raise
    return smtp


def send_email(facts: dict[str, Any], *, to: str, key: str, settings: NotifySettings) -> None:
    """Send one message; DeliveryError says why not (``permanent`` for 5xx answers and refusals)."""
    message = build_message(facts, to=to, key=key, settings=settings)
    where = f"SMTP server {settings.smtp_host}:{settings.smtp_port}"
    try:
        smtp = _connect(settings)
        try:
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where} refused recipient {to}: {exc.recipients}", permanent=True) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"{where} refused the login of {settings.smtp_user!r}: check SLUICE_SMTP_USER and "
            f"SLUICE_SMTP_PASSWORD ({exc.smtp_code} {exc.smtp_error!r})"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"{where} answered {exc.smtp_code} {exc.smtp_error!r}", permanent=500 <= exc.smtp_code < 600
        ) from exc
    except ssl.SSLError as exc:
        raise DeliveryError(
            f"TLS with {where} failed: {exc} (check SLUICE_SMTP_TLS, SLUICE_SMTP_CA_FILE)"
        ) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{where}: {exc or type(exc).__name__}") from exc
