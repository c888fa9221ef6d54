"""Page tokens: opaque to clients, a direction and a key (or an offset into arrays) inside.

List pages are keyset pages (``n<id>``: after/older than id; ``p<id>``: before/newer than id), so a run
created while a client pages through ``runs/list`` neither repeats nor hides a row. ``jobs/get`` and
``runs/get`` page their large arrays by offset (``a<offset>``), 100 elements at a time, as Jobs API 2.2 does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from sluice.api.errors import bad_request
from sluice.api.fields import INT64_MAX

#: Elements of each large array that ``jobs/get`` and ``runs/get`` return per page (Jobs API 2.2).
ARRAY_PAGE = 100


def encode(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).decode().rstrip("=")


def decode(token: str, kinds: str) -> tuple[str, int]:
    """``(kind, value)`` of a token made by :func:`encode` with one of ``kinds``; 400 for anything else."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, value = text[0], int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError):
        raise bad_request(
            f"Invalid page_token '{token}': pass back a next_page_token or prev_page_token."
        ) from None
    if kind not in kinds or not 0 <= value <= INT64_MAX:
        raise bad_request(f"Invalid page_token '{token}': it belongs to another listing.")
    return kind, value


def page_arrays(
    doc: dict[str, Any], paths: Sequence[tuple[str, ...]], page_token: str | None
) -> dict[str, Any]:
    """Cut each array at ``paths`` to the page ``page_token`` names; set ``next_page_token``/``has_more``."""
    offset = 0 if not page_token else decode(page_token, "a")[1]
    more = False
    for path in paths:
        parent: Any = doc
        for name in path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or not isinstance(parent.get(path[-1]), list):
            continue
        items = parent[path[-1]]
        parent[path[-1]] = items[offset : offset + ARRAY_PAGE]
        more = more or len(items) > offset + ARRAY_PAGE
    if more:
        doc["next_page_token"] = encode("a", offset + ARRAY_PAGE)
    doc["has_more"] = more
    return doc
