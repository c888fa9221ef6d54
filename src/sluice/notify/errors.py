"""Delivery failures: transient ones are retried with backoff, permanent ones end the notification at once."""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` when retrying cannot help (a refused recipient, a 404)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
