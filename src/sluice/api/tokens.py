"""``/api/2.0/token/*``: the Token API (create, list, delete) over Sluice's API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from sluice.api.deps import CallerDep, StoreDep
from sluice.api.errors import RESOURCE_DOES_NOT_EXIST, ApiError
from sluice.api.jobs import _Request
from sluice.engine.clock import now_ms
from sluice.errors import NotFoundError
from sluice.store import tokens

router = APIRouter(tags=["tokens"])


class CreateBody(_Request):
    comment: str = ""
    #: At most 10**15 s (31 million years): the expiry time, in epoch ms, must fit in 64 bits.
    lifetime_seconds: int | None = Field(default=None, le=10**15)


class DeleteBody(_Request):
    token_id: str


@router.post("/token/create", summary="Create an API token (its value is shown once)")
def create(store: StoreDep, caller: CallerDep, body: CreateBody) -> dict[str, Any]:
    # A token created through the API belongs to its creator, as a Databricks personal access token does.
    value, info = tokens.create_token(
        store, comment=body.comment, now=now_ms(), user_name=caller, lifetime_seconds=body.lifetime_seconds
    )
    return {"token_value": value, "token_info": info.json()}


@router.get("/token/list", summary="List API tokens (never their values)")
def list_tokens(store: StoreDep) -> dict[str, Any]:
    return {"token_infos": [t.json() for t in tokens.list_tokens(store)]}


@router.post(
    "/token/delete",
    summary="Revoke an API token",
    responses={404: {"description": "RESOURCE_DOES_NOT_EXIST: no token has that id."}},
)
def delete(store: StoreDep, body: DeleteBody) -> dict[str, Any]:
    try:
        tokens.revoke_token(store, body.token_id, now=now_ms())
    except NotFoundError as exc:
        raise ApiError(404, RESOURCE_DOES_NOT_EXIST, str(exc)) from None
    return {}
