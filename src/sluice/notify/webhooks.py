"""Webhooks (stdlib ``urllib``): Slack incoming webhooks and generic JSON webhooks.

One POST per delivery, JSON body, the settings' timeout. 2xx is delivered; 408, 429 and 5xx are retried;
other 4xx answers are permanent (the URL or payload is wrong; retrying cannot help).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from sluice.notify import render
from sluice.notify.destinations import DESTINATION_TYPES
from sluice.notify.errors import DeliveryError
from sluice.notify.settings import NotifySettings
from sluice.store.notifications import DestinationRecord

_RETRIED_STATUSES = frozenset({408, 425, 429})


def payload_for(
    destination: DestinationRecord, facts: dict[str, Any], *, key: str, settings: NotifySettings
) -> dict[str, Any]:
    if destination.type == "slack":
        return render.slack_payload(facts, settings.base_url)
    return render.webhook_payload(facts, settings.base_url, notification_id=key)


def redacted(url: str) -> str:
    """The URL without its path and query (Slack webhook URLs are secrets)."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/..." if rest else url


def post_webhook(
    destination: DestinationRecord, facts: dict[str, Any], *, key: str, settings: NotifySettings
) -> None:
    body = json.dumps(payload_for(destination, facts, key=key, settings=settings)).encode()
    if not destination.url.startswith(("http://", "https://")):
        raise DeliveryError(f"destination {destination.destination_id} has no http(s) URL", permanent=True)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        destination.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "sluice-notifier",
            "Idempotency-Key": key,
        },
    )
    where = f"{DESTINATION_TYPES.get(destination.type, destination.type)} {redacted(destination.url)}"
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:  # noqa: S310 - checked above
            response.read(65536)
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode(errors="replace").strip()
        exc.close()
        permanent = 400 <= exc.code < 500 and exc.code not in _RETRIED_STATUSES
        raise DeliveryError(
            f"{where} answered HTTP {exc.code}: {detail or exc.reason}", permanent=permanent
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{where}: {reason}") from exc
