"""The outbox, for operators: what was sent, what failed and why."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field

from crm_core import outbox
from wxapp import exports
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
    rows, total = outbox.list_messages(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                       per_page=query.per_page)
    return {"items": [outbox.message_dict(m) for m in rows], "total": total}


def recipient_names(rows) -> dict[int, str]:
    """Who each message is for, as a person reads it: the employee's name for staff notices, the
    follower's name (bound contact, else 微信用户…) for WeChat messages, else the address as is."""
    from crm_core.org.organization import employee_names
    from crm_core.wechat.followers import display_names

    staff = employee_names(int(m.recipient) for m in rows if m.channel == "staff" and m.recipient.isdigit())
    wechat = display_names(m.recipient for m in rows if m.channel.startswith("wechat"))
    return {m.id: (staff.get(int(m.recipient)) if m.channel == "staff" and m.recipient.isdigit() else
                   wechat.get(m.recipient) if m.channel.startswith("wechat") else None) or m.recipient for m in rows}


_RECEIPTS = {"success": "已送达", "failed:user block": "用户拒收"}


def _sheet_rows(rows) -> list[dict]:
    names = recipient_names(rows)
    return [{**outbox.message_dict(m), "recipient_name": names[m.id],
             "receipt": _RECEIPTS.get(m.provider_status, "发送失败" if m.provider_status else None),
             "tries": f"{m.attempts}/{m.max_attempts}"} for m in rows]


exports.register(bp, api, "/outbox", "消息发件箱", "outbox", OutboxQuery, outbox.list_messages, _sheet_rows, [
    exports.Column("id", "编号"), exports.Column("channel", "通道", "label:outbox_channel"),
    exports.Column("recipient_name", "接收人"), exports.Column("recipient", "接收地址"),
    exports.Column("status", "状态", "label:outbox_status"), exports.Column("receipt", "送达回执"), exports.Column("tries", "尝试"),
    exports.Column("last_error", "最后错误"), exports.Column("created_at", "创建时间", "time"), exports.Column("sent_at", "发送时间", "time")])


@api.operation(bp, "/outbox/<int:message_id>/retry", "POST", summary="Send a failed message again", tags=("outbox",),
               response=OutboxOut)
def retry_outbox(message_id: int):
    return outbox.message_dict(outbox.retry_failed(g.actor, message_id))
