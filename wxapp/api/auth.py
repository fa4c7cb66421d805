"""Tokens and the current user."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, g
from pydantic import Field

from crm_core.org.auth import authenticate, issue_token, revoke_token
from wxapp.api import bp
from wxapp.auth import bearer_token
from wxapp.extensions import login_throttle
from wxapp.openapi import Model, api


class TokenRequest(Model):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(Model):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class MeOut(Model):
    username: str
    user_id: int | None
    employee_id: int | None
    org_id: int
    roles: list[str]
    functions: list[str]
    permissions: list[str]
    employee_name: str | None = None
    warnings: list[str] = []


@api.operation(bp, "/auth/token", "POST", summary="Exchange username and password for a bearer token",
               tags=("auth",), body=TokenRequest, response=TokenOut, auth=False,
               decorators=(login_throttle,))
def issue_api_token(body: TokenRequest):
    """Failed attempts are throttled per client address and username, and per address (429 after the limit)."""
    user = authenticate(body.username, body.password)
    ttl = current_app.config["API_TOKEN_TTL_SECONDS"]
    token, _ = issue_token(user, timedelta(seconds=ttl))
    return TokenOut(access_token=token, expires_in=ttl)


@api.operation(bp, "/auth/token", "DELETE", summary="Revoke the token used for this call", tags=("auth",), status=204)
def revoke_api_token():
    revoke_token(bearer_token())
    return None


@api.operation(bp, "/me", "GET", summary="The calling user, roles and permissions", tags=("auth",), response=MeOut)
def me():
    from crm_core.org.permissions import NO_EMPLOYEE_MESSAGE

    actor = g.actor
    data = actor.to_dict()
    data["employee_name"] = actor.label if actor.employee_id else None
    data["warnings"] = [] if actor.employee_id else [NO_EMPLOYEE_MESSAGE]
    return data
