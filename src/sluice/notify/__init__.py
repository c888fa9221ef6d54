"""Notifications: job and task events by email (SMTP) and webhooks (Slack, generic), from a durable outbox.

``Notifier(store, settings).tick(now)`` is the loop step (``notifier.py``); ``notifying(store, settings)``
runs it beside ``sluice run`` (``local.py``); ``validate_destinations`` is the deploy-time check.
"""

from __future__ import annotations

from sluice.notify.destinations import validate_destinations
from sluice.notify.local import notifying
from sluice.notify.notifier import Notifier, TickResult
from sluice.notify.settings import NotifySettings, run_page_url

__all__ = ["Notifier", "NotifySettings", "TickResult", "notifying", "run_page_url", "validate_destinations"]
