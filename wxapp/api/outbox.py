"""The outbox, for operators: what was sent, what failed and why."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field
from sqlalchemy import select

from crm_core import outbox
from crm_core.db import paginate
from crm_core.outbox import OutboxMessage
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, api, page_of


class OutboxQuery(PageQuery):
    status: Literal["pending", "sending", "sent", "failed"] | None = None
    recipient: str | None = Field(default=None, max_length=128)
    per_page: int = Field(default=20, ge=1, le=100)


class OutboxOut(Model):
    id: int
    channel: str
    recipient: str
    payload: dict
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None
    next_attempt_at: str
    dedupe_key: str | None
    provider_message_id: str | None = Field(default=None, description="the provider's id (WeChat's template msgid)")
    provider_status: str | None = Field(default=None, description="what the provider reported later (TEMPLATESENDJOBFINISH)")


@api.operation(bp, "/outbox", "GET", summary="Outbox messages with delivery status", tags=("outbox",),
               query=OutboxQuery, response=page_of(OutboxOut))
def list_outbox(query: OutboxQuery):
    g.actor.require("outbox", "view")
    stmt = select(OutboxMessage).where((OutboxMessage.org_id == g.actor.org_id) | OutboxMessage.org_id.is_(None))
    if query.status:
        stmt = stmt.where(OutboxMessage.status == query.status)
    if query.recipient:
        stmt = stmt.where(OutboxMessage.recipient == query.recipient)
    rows, total = paginate(stmt, OutboxMessage.id.desc(), page=query.page, per_page=query.per_page)
    return {"items": [outbox.message_dict(m) for m in rows], "total": total}


@api.operation(bp, "/outbox/<int:message_id>/retry", "POST", summary="Send a failed message again", tags=("outbox",),
               response=OutboxOut)
def retry_outbox(message_id: int):
    return outbox.message_dict(outbox.retry_failed(g.actor, message_id))
