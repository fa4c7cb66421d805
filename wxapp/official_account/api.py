"""Employees' API of the gateway: followers, inbound messages, WeChat outbox, QR codes."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field
from sqlalchemy import select

from crm_core import outbox as outbox_service
from crm_core.db import paginate
from crm_core.outbox import OutboxMessage
from crm_core.wechat import followers
from crm_core.wechat.models import InboundMessage
from wxapp import exports
from wxapp.api import bp
from wxapp.config import wechat_appid
from wxapp.official_account import fastpath, held
from wxapp.openapi import Model, PageQuery, api, page_of


class ServiceWindow(Model):
    remaining: int = Field(description="customer-service messages WeChat would still take now")
    until: str | None = Field(description="when the grant in use ends (UTC)")
    opened_by: Literal["message", "event"] | None = Field(description="a user message (5 in 48 h) or a menu tap, follow or scan (3 in 1 min)")


class FollowerOut(Model):
    openid: str
    appid: str
    subscribed: bool
    scene: str | None
    first_scene: str | None
    subscribed_at: str | None
    unsubscribed_at: str | None
    first_subscribed_at: str | None
    subscribe_count: int
    nickname: str | None
    avatar_url: str | None
    contact_id: int | None
    customer_id: int | None
    last_interaction_at: str | None
    in_service_window: bool
    service_window: ServiceWindow
    display_name: str = Field(description="the bound contact's name, else 微信用户 and the openid's tail")
    invalid: bool = Field(description="WeChat answered 40003: not an openid of this account")
    location: dict | None
    tags: list[str] = Field(default_factory=list, description="粉丝标签")


class FollowerQuery(PageQuery):
    q: str | None = Field(default=None, max_length=64)
    subscribed: bool | None = None
    tag_id: int | None = Field(default=None, description="only followers with this tag")
    per_page: int = Field(default=20, ge=1, le=100)


@api.operation(bp, "/wechat/followers", "GET", summary="Followers (粉丝), searchable", tags=("wechat",),
               query=FollowerQuery, response=page_of(FollowerOut))
def list_followers(query: FollowerQuery):
    rows, total = followers.list_followers(g.actor, wechat_appid(), **query.model_dump(exclude={"page", "per_page"}),
                                           page=query.page, per_page=query.per_page)
    return {"items": followers.follower_rows(rows), "total": total}


exports.register(bp, api, "/wechat/followers", "微信粉丝", "follower", FollowerQuery,
                 lambda actor, **kw: followers.list_followers(actor, wechat_appid(), **kw), followers.follower_rows, [
                     exports.Column("display_name", "粉丝"), exports.Column("openid", "OpenID"),
                     exports.Column("subscribed", "关注中", "yes_no"), exports.Column("first_subscribed_at", "首次关注", "time"),
                     exports.Column("first_scene", "来源场景"), exports.Column("customer_id", "客户", "customer"),
                     exports.Column("tags", "标签", "list"), exports.Column("last_interaction_at", "最近互动", "time")])


@api.operation(bp, "/wechat/followers/<openid>", "GET", summary="One follower", tags=("wechat",), response=FollowerOut)
def get_follower(openid: str):
    from crm_core.wechat import tags

    g.actor.require("follower", "view")
    fastpath.flush_local()  # its interaction time and location may still be in this process's spool
    f = followers.require(wechat_appid(), openid)
    return {**followers.follower_dict(f), "tags": tags.tags_of([f.id]).get(f.id, [])}


@api.operation(bp, "/wechat/followers/<openid>/unbind", "POST", summary="Undo a follower's verified binding (they verify again)",
               tags=("wechat",), response=FollowerOut)
def unbind_follower(openid: str):
    """A wrong phone at verification, or a number that changed hands: the WeChat user is no longer
    bound to the contact and verifies again on their next request."""
    return followers.follower_dict(followers.unbind_contact(g.actor, wechat_appid(), openid))


class MessageQuery(PageQuery):
    openid: str | None = Field(default=None, max_length=64)
    per_page: int = Field(default=50, ge=1, le=200)


class MessageOut(Model):
    id: int
    openid: str
    msg_type: str
    event: str | None
    event_key: str | None
    msg_id: str | None
    summary: dict
    received_at: str
    handler: str | None
    outcome: str
    reply: str | None


@api.operation(bp, "/wechat/messages", "GET", summary="Inbound messages and events, one row per processed delivery",
               tags=("wechat",), query=MessageQuery, response=page_of(MessageOut))
def list_messages(query: MessageQuery):
    g.actor.require("follower", "view")
    fastpath.flush_local()  # rows this process answered but has not written yet (the spool)
    held.flush_local()
    stmt = select(InboundMessage)
    if query.openid:
        stmt = stmt.where(InboundMessage.openid == query.openid)
    rows, total = paginate(stmt, InboundMessage.id.desc(), page=query.page, per_page=query.per_page)
    return {"items": [{"id": m.id, "openid": m.openid, "msg_type": m.msg_type, "event": m.event, "event_key": m.event_key,
                       "msg_id": m.msg_id, "summary": {k: v for k, v in (m.summary or {}).items() if k not in held.PRIVATE},
                       "received_at": m.received_at.isoformat() + "Z",
                       "handler": m.handler, "outcome": m.outcome, "reply": m.reply} for m in rows], "total": total}


class WechatOutboxQuery(PageQuery):
    openid: str | None = Field(default=None, max_length=64)
    per_page: int = Field(default=50, ge=1, le=200)


@api.operation(bp, "/wechat/outbox", "GET", summary="Template and customer-service messages with status",
               tags=("wechat",), query=WechatOutboxQuery)
def wechat_outbox(query: WechatOutboxQuery):
    g.actor.require("follower", "view")
    stmt = select(OutboxMessage).where(OutboxMessage.channel.in_(("wechat_custom", "wechat_template", "wechat_notice")))
    if query.openid:
        stmt = stmt.where(OutboxMessage.recipient == query.openid)
    rows, total = paginate(stmt, OutboxMessage.id.desc(), page=query.page, per_page=query.per_page)
    items = []
    for m in rows:
        d = outbox_service.message_dict(m)
        d["errcode"] = int(m.last_error.split(":")[1]) if m.last_error and m.last_error.startswith("ChannelError: ") \
            and m.last_error.split(":")[1].strip().isdigit() else None
        items.append(d)
    return {"items": items, "total": total}


class QrIn(Model):
    scene: str = Field(min_length=1, max_length=64)
    permanent: bool = False
    expire_seconds: int | None = None
    kind: Literal["str", "id"] = "str"


@api.operation(bp, "/wechat/qrcodes", "POST", summary="Create a parametric QR code (limits checked first)",
               tags=("wechat",), body=QrIn, status=201)
def create_qrcode(body: QrIn):
    from wxapp.official_account import qrcodes

    g.actor.require("follower", "view")
    scene: str | int = int(body.scene) if body.kind == "id" and body.scene.isdigit() else body.scene
    return qrcodes.create(scene, body.permanent, body.expire_seconds)


# --- 在线客服: conversations ------------------------------------------------------------------------
class WindowOut(Model):
    open: bool = Field(description="a customer-service message would be taken now")
    expires_at: str | None
    quota_left: int
    opened_by: Literal["message", "event"] | None


class ConversationOut(Model):
    id: int
    openid: str
    contact_id: int | None
    customer_id: int | None
    name: str
    status: Literal["open", "waiting", "closed"] = Field(description="waiting: asked for 人工客服, not yet taken")
    assignee_id: int | None
    unread: int
    last_message_at: str
    window: WindowOut


class ConversationQuery(PageQuery):
    status: Literal["open", "waiting", "closed"] | None = None
    mine: bool = False
    q: str | None = Field(default=None, max_length=64,
                          description="openid, the bound contact's name or phone, or what they wrote (text, last 90 days)")
    per_page: int = Field(default=20, ge=1, le=100)


@api.operation(bp, "/conversations", "GET", summary="在线客服: conversations, newest activity first", tags=("conversations",),
               query=ConversationQuery, response=page_of(ConversationOut))
def list_conversations(query: ConversationQuery):
    from crm_core.wechat import conversations

    fastpath.flush_local()
    items, total = conversations.list_conversations(g.actor, wechat_appid(), status=query.status, mine=query.mine,
                                                    q=query.q, page=query.page, per_page=query.per_page)
    return {"items": items, "total": total}


def _conversation_rows(actor, status=None, mine=False, q=None, page: int = 1, per_page: int = 20):
    from crm_core.wechat import conversations

    return conversations.list_conversations(actor, wechat_appid(), status=status, mine=mine, q=q, page=page, per_page=per_page)


_CONVERSATION_STATUS = {"open": "进行中", "waiting": "待接入", "closed": "已结束"}
exports.register(bp, api, "/conversations", "在线客服会话", "follower", ConversationQuery, _conversation_rows,
                 lambda rows: [{**r, "status": _CONVERSATION_STATUS.get(r["status"], r["status"]),
                                "window_open": r["window"]["open"], "quota_left": r["window"]["quota_left"]} for r in rows], [
                     exports.Column("name", "粉丝"), exports.Column("openid", "openid"), exports.Column("status", "状态"),
                     exports.Column("assignee_id", "接待", "employee"), exports.Column("customer_id", "客户", "customer"),
                     exports.Column("unread", "未读"), exports.Column("last_message_at", "最后消息", "time"),
                     exports.Column("window_open", "可回复", "yes_no"), exports.Column("quota_left", "剩余客服消息")])


class ConversationMessageOut(Model):
    id: int = Field(description="the inbound message's id (direction in) or the outbox row's (direction out)")
    direction: Literal["in", "out"]
    kind: str
    text: str
    at: str
    status: str | None = Field(description="out: pending / sending / sent / failed")
    error: str | None = None
    channel: Literal["customer_service", "template"] | None = None
    agent_id: int | None = None
    media: Literal["image", "voice", "video"] | None = Field(
        default=None, description="in: the message carries a picture, voice or video: GET .../messages/{id}/media")
    recognition: str | None = Field(default=None, description="voice: WeChat's recognition text, when it gave one")
    location: dict | None = Field(default=None, description="a shared location: {lat, lng, label}")
    link: dict | None = Field(default=None, description="a shared link: {title, description, url (http/https only, else null)}")


class ConversationMessages(Model):
    items: list[ConversationMessageOut]


@api.operation(bp, "/conversations/<int:conversation_id>/messages", "GET", summary="The conversation's messages both ways",
               tags=("conversations",), response=ConversationMessages)
def conversation_messages(conversation_id: int):
    """Oldest first, the last 100; reading them marks the conversation read."""
    from crm_core.db import db
    from crm_core.wechat import conversations

    fastpath.flush_local()
    items = conversations.messages(g.actor, wechat_appid(), conversation_id, mark_read=True)
    db.session.commit()
    return {"items": items}


class ReplyIn(Model):
    text: str | None = Field(default=None, min_length=1, max_length=600)
    image_id: int | None = Field(default=None, description="a picture uploaded with POST /api/v1/media (purpose chat_reply) "
                                                            "by this agent: sent as a customer-service image instead of text")


class ReplyOut(Model):
    id: int
    status: str
    channel: Literal["customer_service", "template"] = Field(
        description="customer_service while the user's actions leave a quota, else the template notice")


class MediaQuery(Model):
    thumb: bool = Field(default=False, description="a picture's thumbnail (240 px)")


@api.operation(bp, "/conversations/<int:conversation_id>/messages/<int:message_id>/media", "GET",
               summary="The picture, voice or video a follower sent (the product's copy)", tags=("conversations",),
               query=MediaQuery)
def conversation_message_media(conversation_id: int, message_id: int, query: MediaQuery):
    """A picture cleaned (JPEG/PNG/WebP), voice as WeChat recorded it (AMR/Speex, a download), video as sent; 404 in
    words when the message has none or WeChat no longer keeps it (three days) and no copy was made."""
    from crm_core.wechat import conversations
    from wxapp.official_account import chat_media

    c = conversations.get_conversation(g.actor, wechat_appid(), conversation_id)
    return chat_media.serve(c, message_id, g.actor.org_id, thumb=query.thumb)


@api.operation(bp, "/conversations/<int:conversation_id>/replies/<int:outbox_id>/media", "GET",
               summary="A picture an agent sent in the conversation", tags=("conversations",))
def conversation_reply_media(conversation_id: int, outbox_id: int):
    from crm_core.wechat import conversations
    from wxapp.official_account import chat_media

    return chat_media.serve_reply(conversations.get_conversation(g.actor, wechat_appid(), conversation_id), outbox_id)


@api.operation(bp, "/conversations/<int:conversation_id>/messages", "POST", summary="Answer the follower",
               tags=("conversations",), body=ReplyIn, response=ReplyOut, status=201)
def reply_conversation(conversation_id: int, body: ReplyIn):
    from crm_core.wechat import conversations

    if body.image_id is not None:  # a picture has no template form: 409 window_closed outside the 48 hours
        return conversations.reply_image(g.actor, wechat_appid(), conversation_id, body.image_id)
    return conversations.reply(g.actor, wechat_appid(), conversation_id, body.text or "")


class AssignIn(Model):
    employee_id: int | None = Field(default=None, description="hand it to this colleague (转接); left out: take it yourself (接入)")


@api.operation(bp, "/conversations/<int:conversation_id>/assign", "POST", summary="Take or transfer a conversation",
               tags=("conversations",), body=AssignIn, response=ConversationOut)
def assign_conversation(conversation_id: int, body: AssignIn):
    from crm_core.wechat import conversations

    return conversations.conversation_dict(conversations.assign(g.actor, wechat_appid(), conversation_id, body.employee_id))


@api.operation(bp, "/conversations/<int:conversation_id>/close", "POST", summary="End a conversation (the next message reopens it)",
               tags=("conversations",), response=ConversationOut)
def close_conversation(conversation_id: int):
    from crm_core.wechat import conversations

    return conversations.conversation_dict(conversations.close(g.actor, wechat_appid(), conversation_id))


class PresenceIn(Model):
    accepting: bool = Field(description="接待中 (true) or 暂停接待: whether 人工客服 requests come to me")


class PresenceOut(Model):
    accepting: bool
    online: int = Field(description="agents online and accepting in my organisation")
    waiting: int = Field(description="conversations waiting for an agent (待接入)")


@api.operation(bp, "/conversations/presence", "PUT", summary="I am online for 在线客服 (round-robin of 人工客服 requests)",
               tags=("conversations",), body=PresenceIn, response=PresenceOut)
def conversation_presence(body: PresenceIn):
    """A client that stays open calls this at least once a minute; an agent seen within a minute is online."""
    from crm_core.wechat import conversations

    g.actor.require("follower", "edit")
    conversations.seen_online(g.actor, accepting=body.accepting)
    return conversations.presence(g.actor)


class StatsQuery(Model):
    days: int = Field(default=7, ge=1, le=92, description="the last N days, today included (the organisation's time zone)")


class AgentStats(Model):
    employee_id: int | None
    name: str | None
    sessions: int
    answered: int
    median_first_response_s: float | None
    median_resolution_s: float | None


class ConversationStatsOut(Model):
    agents: list[AgentStats]
    all: dict


@api.operation(bp, "/conversations/stats", "GET", summary="客服统计: sessions, first response and resolution per agent",
               tags=("conversations",), query=StatsQuery, response=ConversationStatsOut)
def conversation_stats(query: StatsQuery):
    from crm_core.wechat import conversations

    _start, _end, lo, hi = conversations.last_days(g.actor.org_id, query.days)
    return conversations.response_stats(g.actor, lo, hi)


class CannedReply(Model):
    title: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=600, description="may hold {客户名称} {联系人} {工单号} {客服}")


class CannedReplies(Model):
    items: list[CannedReply] = Field(max_length=50)


@api.operation(bp, "/conversations/canned-replies", "GET", summary="快捷回复: the team's canned replies", tags=("conversations",),
               response=CannedReplies)
def list_canned_replies():
    from crm_core.wechat import conversations

    g.actor.require("follower", "view")
    return {"items": conversations.canned_replies(g.actor.org_id)}


@api.operation(bp, "/conversations/canned-replies", "PUT", summary="Replace the team's canned replies", tags=("conversations",),
               body=CannedReplies, response=CannedReplies)
def save_canned_replies(body: CannedReplies):
    from crm_core.wechat import conversations

    return {"items": conversations.save_canned_replies(g.actor, [i.model_dump() for i in body.items])}
