"""Official-account followers (粉丝), inbound messages and events, cached credentials and the sandbox's records."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.mixins import Audited, TimestampMixin


class Follower(Audited, TimestampMixin, db.Model):
    """A WeChat user of the official account, by openid; bound to a contact once verified."""

    __audit_type__ = "follower"
    __audit_ignore__ = ("last_interaction_at", "last_lat", "last_lng", "last_precision", "last_location_at",
                        "window_message_at", "window_message_used", "window_event_at", "window_event_used")
    __table_args__ = (UniqueConstraint("appid", "openid"), Index("ix_follower_contact", "contact_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    subscribed: Mapped[bool] = mapped_column(default=False)
    subscribed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    first_subscribed_at: Mapped[datetime | None]
    subscribe_count: Mapped[int] = mapped_column(default=0)
    scene: Mapped[str | None] = mapped_column(String(80))  # the QR scene that brought them (last follow)
    first_scene: Mapped[str | None] = mapped_column(String(80))
    nickname: Mapped[str | None] = mapped_column(String(100))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    profile_fetched_at: Mapped[datetime | None]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    bound_at: Mapped[datetime | None]
    # a member of staff who signed in on their phone (check-ins, work orders, staff notices)
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    staff_bound_at: Mapped[datetime | None]
    last_interaction_at: Mapped[datetime | None]  # the user's last message or event of any kind (shown)
    # the customer-service quotas WeChat grants (docs/wechat.md): a message allows 5 within 48 hours,
    # a menu tap, follow or scan 3 within a minute; each grant counts what it has used
    window_message_at: Mapped[datetime | None]
    window_message_used: Mapped[int] = mapped_column(default=0)
    window_event_at: Mapped[datetime | None]
    window_event_used: Mapped[int] = mapped_column(default=0)
    invalid_at: Mapped[datetime | None]  # WeChat answered 40003: not an openid of this account
    last_lat: Mapped[float | None]
    last_lng: Mapped[float | None]
    last_precision: Mapped[float | None]
    last_location_at: Mapped[datetime | None]


class InboundMessage(db.Model):
    """One processed delivery of a message or event (retries are deduplicated first)."""

    __table_args__ = (Index("ix_inbound_message_openid", "openid", "id"),
                      # the keys still deduplicating (within the retry horizon), for the purge job
                      Index("ix_inbound_message_live_key", "received_at", postgresql_where=text("dedup_key IS NOT NULL"),
                            sqlite_where=text("dedup_key IS NOT NULL")))
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    # WeChat's distinguishing fields (callback.dedup_key); cleared after the retry horizon, the row stays
    dedup_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    event_key: Mapped[str | None] = mapped_column(String(200))
    msg_id: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime]
    handler: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16), default="processing")  # replied / no_reply / deferred / error
    reply: Mapped[str | None] = mapped_column(Text)  # the passive reply text, resent to retries
    duration_ms: Mapped[float | None]


class Conversation(db.Model):
    """在线客服: one conversation per WeChat user. Its messages are the user's inbound messages
    and what was sent to them (the inbound and outbox tables): the callback writes nothing more.
    The batch writer and the callback's bookkeeping keep ``last_message_at`` current."""

    __table_args__ = (UniqueConstraint("appid", "openid"), Index("ix_conversation_recent", "status", "last_message_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open / closed
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    last_message_at: Mapped[datetime]
    last_read_id: Mapped[int] = mapped_column(default=0)  # the last inbound message an agent has seen
    created_at: Mapped[datetime]
    # the current session (from the first message after a close): response-time figures
    session_started_at: Mapped[datetime | None]
    requested_at: Mapped[datetime | None]  # asked for a person (人工客服) in this session
    first_response_at: Mapped[datetime | None]  # the first agent reply in this session
    first_response_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class ConversationSession(db.Model):
    """One closed session of a conversation, for response-time figures per agent (在线客服 统计)."""

    __table_args__ = (Index("ix_conversation_session_closed", "closed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    started_at: Mapped[datetime]
    requested_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    first_response_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    closed_at: Mapped[datetime]
    closed_by: Mapped[str] = mapped_column(String(12))  # agent / quiet


class AgentPresence(db.Model):
    """An agent with the 在线客服 console open (seen within a minute) and accepting conversations:
    "人工客服" requests go to them in turn."""

    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    last_seen_at: Mapped[datetime]
    accepting: Mapped[bool] = mapped_column(default=True)
    last_assigned_at: Mapped[datetime | None]


class CachedCredential(db.Model):
    """Access token / JS-SDK ticket shared by all processes in embedded mode (Redis otherwise)."""

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]


class SandboxRecord(db.Model):
    """What the local WeChat sandbox received (development and tests only)."""

    __table_args__ = (Index("ix_sandbox_record_openid", "openid", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    api: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    errcode: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]


class AutoReplyRule(db.Model):
    """The official account's own answers, edited in the console (autoreply.py): the welcome on a
    follow, keyword replies (exact / contains / regex, by priority), the default reply; and
    ``builtin`` rows that switch a feature package's rule (by its name) off or on."""

    __table_args__ = (Index("ix_auto_reply_rule_appid", "appid", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(12))  # subscribe / keyword / default / builtin
    match: Mapped[str | None] = mapped_column(String(12))  # exact / contains / regex (keyword rules)
    pattern: Mapped[str | None] = mapped_column(String(200))  # the keyword; a built-in rule's name
    reply: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(default=90)  # lower answers first; built-in rules use 10-150
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class MenuVersion(db.Model):
    """A custom menu pushed to WeChat (or refused by it): the menu editor's history."""

    __table_args__ = (Index("ix_menu_version_appid", "appid", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    menu: Mapped[dict] = mapped_column(JSON)
    errcode: Mapped[int] = mapped_column(default=0)  # 0: WeChat took it
    error: Mapped[str | None] = mapped_column(String(300))
    pushed_at: Mapped[datetime]
    pushed_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class FollowerTag(db.Model):
    """A follower tag (粉丝标签), kept in step with WeChat's tag API (its id there in ``wechat_id``)."""

    __table_args__ = (UniqueConstraint("appid", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(30))
    wechat_id: Mapped[int | None]
    created_at: Mapped[datetime]


class FollowerTagLink(db.Model):
    tag_id: Mapped[int] = mapped_column(ForeignKey("follower_tag.id", ondelete="CASCADE"), primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("follower.id"), primary_key=True, index=True)


class MassSend(db.Model):
    """A 群发 (mass send) of the official account: its audience (a follower tag, a segment's followers, or everyone), the
    text, WeChat's msg_id, and what MASSSENDJOBFINISH reported (total, filtered, sent, failed)."""

    __table_args__ = (Index("ix_mass_send_appid", "appid", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    appid: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(12))  # tag / segment / all
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("follower_tag.id"))
    segment_id: Mapped[int | None]
    target_label: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    openids: Mapped[list | None] = mapped_column(JSON)  # a segment's followers, as sent (message/mass/send)
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued / sending / sent / failed
    msg_id: Mapped[str | None] = mapped_column(String(32), index=True)
    wechat_status: Mapped[str | None] = mapped_column(String(100))
    total_count: Mapped[int | None]
    filter_count: Mapped[int | None]
    sent_count: Mapped[int | None]
    error_count: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
