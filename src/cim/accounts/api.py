"""The caller's own API tokens: list, create (the secret is in this one response), revoke."""

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.models import ApiToken
from cim.accounts.selectors import api_token_list
from cim.accounts.services import api_token_create, api_token_revoke

router = Router(tags=["tokens"])


class TokenOut(Schema):
    id: int
    prefix: str
    name: str
    scope: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool = Field(validation_alias="is_active")


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token. It is returned only in this response.")


class TokenIn(Schema):
    name: str = Field("", max_length=100)
    scope: ApiToken.Scope = ApiToken.Scope.READ
    days: int | None = Field(None, description="Lifetime in days; default CIM_API_TOKEN_DAYS (90).")


@router.get("/tokens", response=list[TokenOut], summary="Your API tokens (never their secret)")
def tokens(request):
    return list(api_token_list(user=request.auth))


@router.post("/tokens", response={201: TokenCreated}, summary="Create an API token; its secret is shown once")
def token_create(request, payload: TokenIn):
    token, raw = api_token_create(
        user=request.auth, name=payload.name, scope=payload.scope, days=payload.days, actor=request.auth
    )
    token.token = raw
    return Status(201, token)


@router.post("/tokens/{token_id}/revoke", response=TokenOut, summary="Revoke one of your API tokens")
def token_revoke(request, token_id: int):
    token = get_object_or_404(api_token_list(user=request.auth), pk=token_id)
    return api_token_revoke(token=token, actor=request.auth)
