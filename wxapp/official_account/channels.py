"""Outbox channels that deliver through WeChat: customer-service (客服) and template messages.

Customer-service messages are allowed only within 48 hours of the user's last interaction;
:func:`message_follower` picks the channel when the message is queued, and a 45047 answer at
delivery time falls back to the template message when the payload carries one.
"""
from __future__ import annotations

from types import SimpleNamespace

from flask import current_app
from wechatpy.exceptions import WeChatClientException

from crm_core import outbox
from crm_core.wechat import followers
from wxapp.config import wechat_appid

# errors that will not go away by retrying: unsubscribed, bad openid, outside the 48-hour window
PERMANENT = {43004, 40003, 45047, 40037, 43101}


def _client():
    from wxapp.official_account.client import get_client

    return get_client()


def _wrap(exc: WeChatClientException) -> outbox.ChannelError:
    return outbox.ChannelError(f"{exc.errcode}: {exc.errmsg}", retryable=exc.errcode not in PERMANENT)


def send_custom(message) -> outbox.Delivery:
    p = message.payload
    try:
        _client().message.send_text(message.recipient, p["text"])
    except WeChatClientException as exc:
        if exc.errcode == 45047 and p.get("template"):  # the window closed meanwhile
            return send_template(message, p["template"])
        raise _wrap(exc) from None
    return outbox.Delivery(provider_message_id=None)


def send_template(message, template: dict | None = None) -> outbox.Delivery:
    t = template or message.payload
    try:
        res = _client().message.send_template(message.recipient, t["template_id"], t["data"], url=t.get("url"))
    except WeChatClientException as exc:
        raise _wrap(exc) from None
    return outbox.Delivery(provider_message_id=str(res.get("msgid", "")) or None)


def send_notice(message) -> outbox.Delivery:
    """``wechat_notice``: a notice to a WeChat user queued by the domain (ticket progress,
    satisfaction invitation, campaign pushes). The 48-hour window is judged when it is sent:
    a customer-service message inside it, the template message outside it."""
    p = message.payload
    template = template_for(p["text"], p.get("title") or "服务通知", p.get("url"))
    follower = followers.find(wechat_appid(), message.recipient)
    if followers.in_cs_window(follower):
        text = p["text"] + (f"\n{p['url']}" if p.get("url") else "")
        return send_custom(SimpleNamespace(id=message.id, recipient=message.recipient,
                                           payload={"text": text, "template": template}))
    return send_template(message, template)


def send_staff(message) -> outbox.Delivery:
    """``staff``: notices to employees go as template messages to the WeChat user the
    employee signed in with (``followers.bind_staff``); without one they stay in the log."""
    from crm_core.db import db
    from crm_core.wechat.models import Follower

    p = message.payload
    try:
        employee_id = int(message.recipient)
    except ValueError:
        return outbox._log_channel(message)
    follower = db.session.scalars(db.select(Follower).where(Follower.employee_id == employee_id,
                                                            Follower.appid == wechat_appid())
                                  .order_by(Follower.staff_bound_at.desc())).first()
    if follower is None:
        return outbox._log_channel(message)
    template = template_for(p["text"], p.get("title") or "工作提醒", p.get("url"))
    return send_template(SimpleNamespace(id=message.id, recipient=follower.openid, payload=template), template)


def register() -> None:
    outbox.register_channel("wechat_custom", send_custom)
    outbox.register_channel("wechat_template", send_template)
    outbox.register_channel("wechat_notice", send_notice)
    outbox.register_channel("staff", send_staff)


def template_for(text: str, title: str = "服务通知", url: str | None = None) -> dict:
    """The generic notice template (id from ``WECHAT_TEMPLATE_NOTICE``)."""
    return {"template_id": current_app.config.get("WECHAT_TEMPLATE_NOTICE") or "TPL_SERVICE_NOTICE", "url": url,
            "data": {"first": {"value": title}, "keyword1": {"value": text[:100]}, "remark": {"value": "蓝云服务"}}}


def message_follower(openid: str, text: str, *, title: str = "服务通知", url: str | None = None,
                     org_id: int | None = None, dedupe_key: str | None = None):
    """Queue a message to a WeChat user: customer-service inside the 48-hour window, a
    template message outside it."""
    follower = followers.find(wechat_appid(), openid)
    template = template_for(text, title, url)
    if followers.in_cs_window(follower):
        return outbox.queue_message("wechat_custom", openid, {"msgtype": "text", "text": text, "template": template},
                                    org_id=org_id, dedupe_key=dedupe_key)
    return outbox.queue_message("wechat_template", openid, template, org_id=org_id, dedupe_key=dedupe_key)
