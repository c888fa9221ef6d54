"""``/api/2.0/preview/scim/v2/Me``: the caller's identity, as Databricks' SCIM API answers it.

The databricks-sdk's ``current_user.me()`` reads it, and ``get_workspace_id()`` reads the workspace id from
its ``X-Databricks-Org-Id`` header. Sluice's users are the names tokens act as (:mod:`sluice.identity`):
no groups, no entitlements, nothing stored beyond the name.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Response

from sluice.api.deps import CallerDep, StoreDep
from sluice.store.workspace import workspace_id

router = APIRouter(tags=["identity"])

USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]


def user_id(user_name: str) -> str:
    """A stable numeric id for a user name (Databricks user ids are 15-16 digit numbers)."""
    digest = hashlib.sha256(user_name.encode()).digest()
    return str(10**15 + int.from_bytes(digest[:8], "big") % (9 * 10**15))


def user_json(user_name: str) -> dict[str, Any]:
    emails = [{"value": user_name, "type": "work", "primary": True}] if "@" in user_name else []
    return {
        "id": user_id(user_name),
        "userName": user_name,
        "displayName": user_name,
        "active": True,
        "emails": emails,
        "groups": [],
        "entitlements": [],
        "schemas": USER_SCHEMAS,
    }


@router.get("/preview/scim/v2/Me", summary="The caller's identity (SCIM User)")
def me(store: StoreDep, caller: CallerDep, response: Response) -> dict[str, Any]:
    response.headers["X-Databricks-Org-Id"] = str(workspace_id(store))
    return user_json(caller)
