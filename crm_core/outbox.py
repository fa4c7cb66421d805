"""The outbox: messages that must reach a person.

:func:`queue_message` writes a row in the caller's transaction and enqueues
:func:`deliver` after commit. Delivery claims the row with a conditional UPDATE
(``pending`` → ``sending``), so two workers, a retry and the sweeper can never send the
same message twice; the channel is called outside any transaction; the outcome is recorded
with attempts and the last error; transient failures retry with exponential backoff up to
``max_attempts``. :func:`sweep` (periodic) re-enqueues due rows whose job was lost — for
example when Redis was down at commit time — so no message is lost.

A row stuck in ``sending`` (the process died mid-call) is *not* resent automatically: the
provider may already have delivered it. It is marked ``failed`` with an explanation after
``STUCK_AFTER`` (a minute; a call times out in seconds) so staff can decide; "never twice" wins over "at least once" for messages
that reach customers' phones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol

from sqlalchemy import JSON, Index, String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import begin_savepoint, db
from crm_core.errors import NotFound, ValidationFailed

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


class OutboxMessage(db.Model):
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),
                      Index("ix_outbox_message_provider_id", "provider_message_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(128), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    # an optional business key: the same key is queued once (e.g. "dispatch:17:engineer:3")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=6)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    # what the provider reported afterwards (WeChat's TEMPLATESENDJOBFINISH: success, failed:user block...)
    provider_status: Mapped[str | None] = mapped_column(String(64))


log = logging.getLogger("wxcrm.outbox")

BACKOFF_BASE = 30          # seconds; attempt n waits BACKOFF_BASE * 4**(n-1), capped
BACKOFF_CAP = 3600
# a live delivery ends within its WeChat calls: a token lock (≤ 15 s), a refresh and a retry, then a
# template fallback with its own, each call ≤ 10 s (connect + read) — well under three minutes
STUCK_AFTER = timedelta(seconds=60)  # a WeChat call times out in seconds; a row older than this lost its process


class ChannelError(Exception):
    """A delivery failure. ``retryable=False`` (e.g. the user unsubscribed) stops retries."""

    def __init__(self, message: str, retryable: bool = True, retry_at: datetime | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_at = retry_at  # a provider's quota resets then (e.g. WeChat's daily API quota)


@dataclass
class Delivery:
    """What a channel returns on success."""

    provider_message_id: str | None = None


class Channel(Protocol):
    def __call__(self, message: OutboxMessage) -> Delivery | None: ...


_channels: dict[str, Callable[[OutboxMessage], Delivery | None]] = {}


def register_channel(name: str, sender: Callable[[OutboxMessage], Delivery | None]) -> None:
    """Register (or replace) the sender for a channel name, e.g. ``wechat_template``."""
    _channels[name] = sender


def channels() -> list[str]:
    return sorted(_channels)


def _log_channel(message: OutboxMessage) -> Delivery:
    log.info("outbox message delivered to log channel",
             extra={"outbox_id": message.id, "recipient": message.recipient, "payload": message.payload})
    return Delivery(provider_message_id=f"log-{message.id}")


register_channel("log", _log_channel)
# Notices to employees (reminders, approvals, dispatches). Until a WeChat channel for staff is
# registered (official-account issue) they are delivered to the log and visible in the outbox.
register_channel("staff", _log_channel)


def backoff(attempt: int) -> int:
    """Seconds to wait after the ``attempt``-th failure."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 4 ** max(0, attempt - 1))


def queue_message(channel: str, recipient: str, payload: dict, *, org_id: int | None = None,
                  dedupe_key: str | None = None, max_attempts: int = 6, delay: float | None = None) -> OutboxMessage:
    """Write an outbox row in the current transaction; delivery starts after commit.

    With a ``dedupe_key`` an identical business event queues one message only (the existing
    row is returned).
    """
    if channel not in _channels:
        raise ValidationFailed(f"未知的消息通道：{channel}", fields={"channel": "unknown channel"})
    if not recipient:
        raise ValidationFailed("消息缺少接收人", fields={"recipient": "required"})
    if dedupe_key:
        existing = db.session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)).first()
        if existing:
            return existing
    now = utcnow()
    first = now + timedelta(seconds=delay) if delay else now  # ``delay``: spread a bulk send (rate limit)
    msg = OutboxMessage(org_id=org_id, channel=channel, recipient=recipient, payload=payload, dedupe_key=dedupe_key,
                        status="pending", attempts=0, max_attempts=max_attempts, created_at=now, next_attempt_at=first)
    if dedupe_key:
        try:
            with begin_savepoint():
                db.session.add(msg)
        except IntegrityError:  # raced with another writer of the same event
            return db.session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)).one()
    else:
        db.session.add(msg)
        db.session.flush()
    if delay:
        jobs.enqueue(deliver, msg.id, delay=delay)
    else:
        jobs.enqueue_batched(deliver_many, msg.id)  # a transaction's notices: one job
    return msg


@jobs.job
def deliver_many(message_ids: list[int]) -> dict:
    """:func:`deliver` for each message a transaction queued. One failing does not hold the
    others back; the first unexpected error is raised after all were tried, so the job is
    retried (delivery is idempotent: what went out is not sent again)."""
    outcomes, error = {}, None
    for message_id in message_ids:
        try:
            outcomes[message_id] = deliver(message_id)
        except Exception as exc:
            db.session.rollback()
            log.exception("outbox delivery raised", extra={"outbox_id": message_id})
            error = error or exc
    if error is not None:
        raise error
    return outcomes


@jobs.job
def deliver(message_id: int) -> str:
    """Deliver one outbox message through its channel. Safe to call any number of times."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .values(status="sending", attempts=OutboxMessage.attempts + 1, claimed_at=now)
    ).rowcount
    db.session.commit()
    if not claimed:
        msg = db.session.get(OutboxMessage, message_id)
        return msg.status if msg else "missing"
    msg = db.session.get(OutboxMessage, message_id)
    sender = _channels.get(msg.channel)
    try:
        if sender is None:
            raise ChannelError(f"no sender registered for channel {msg.channel!r}", retryable=True)
        result = sender(msg)
    except Exception as exc:  # record every failure; decide whether to try again
        retryable = getattr(exc, "retryable", True)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        attempts = msg.attempts
        retry_at = getattr(exc, "retry_at", None)
        if retry_at is not None:  # not the message's fault: the attempt does not count
            wait = max(1, int((retry_at - utcnow()).total_seconds()))
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.status == "sending")
                               .values(status="pending", last_error=error, attempts=OutboxMessage.attempts - 1,
                                       next_attempt_at=retry_at))
            jobs.enqueue(deliver, message_id, delay=wait)
            db.session.commit()
            return "deferred"
        if retryable and attempts < msg.max_attempts:
            wait = backoff(attempts)
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.status == "sending")
                               .values(status="pending", last_error=error, next_attempt_at=utcnow() + timedelta(seconds=wait)))
            jobs.enqueue(deliver, message_id, delay=wait)
            log.warning("outbox delivery failed; will retry",
                        extra={"outbox_id": message_id, "attempt": attempts, "retry_in": wait, "error": error})
            outcome = "retry"
        else:
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.status == "sending")
                               .values(status="failed", last_error=error))
            log.error("outbox delivery failed for good", extra={"outbox_id": message_id, "error": error})
            outcome = "failed"
        db.session.commit()
        return outcome
    # "sent" wins even over the sweeper's "result unknown": it did go out (and is not resent)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id,
                                                   OutboxMessage.status.in_(("sending", "failed"))).values(
        status="sent", sent_at=utcnow(), last_error=None,
        provider_message_id=getattr(result, "provider_message_id", None)))
    db.session.commit()
    return "sent"


@jobs.periodic(every=60)
def sweep() -> int:
    """Re-enqueue due pending messages whose job was lost; fail rows stuck in ``sending``."""
    now = utcnow()
    stuck = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - STUCK_AFTER)
        .values(status="failed", last_error="投递过程中断，结果未知；为避免重复发送未自动重试，请人工确认后重发。")
    ).rowcount
    due = db.session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.status == "pending",
                                       OutboxMessage.next_attempt_at <= now - timedelta(seconds=30)).limit(500)
    ).all()
    for message_id in due:
        jobs.enqueue(deliver, message_id)
    db.session.commit()
    return len(due) + stuck


def provider_report(provider_message_id: str, status: str) -> int:
    """The provider said what became of a sent message (WeChat's job-finish event): recorded on
    the row whose provider id it is. Returns the rows updated (0 for an id we never sent)."""
    n = db.session.execute(update(OutboxMessage).where(OutboxMessage.provider_message_id == provider_message_id)
                           .values(provider_status=status[:64])).rowcount
    return n


def notify_staff(employee_id: int, kind: str, text: str, *, org_id: int | None, dedupe_key: str | None = None,
                 **refs) -> OutboxMessage:
    """A notice to an employee (reminder, approval, assignment) on the ``staff`` channel;
    ``refs`` are the ids it concerns (``activity_id=...``)."""
    return queue_message("staff", str(employee_id), {"kind": kind, **refs, "text": text}, org_id=org_id,
                         dedupe_key=dedupe_key)


def retry_failed(actor, message_id: int) -> OutboxMessage:
    """Staff action: send a failed message again (resets its attempts)."""
    actor.require("outbox", "edit")
    msg = db.session.get(OutboxMessage, message_id)
    if msg is None or (msg.org_id not in (None, actor.org_id)):
        raise NotFound("消息不存在。")
    if msg.status != "failed":
        from crm_core.errors import Conflict

        raise Conflict(f"只有发送失败的消息可以重发（当前状态：{msg.status}）。")
    msg.status, msg.attempts, msg.next_attempt_at = "pending", 0, utcnow()
    db.session.flush()
    jobs.enqueue(deliver, msg.id)
    return msg


def list_messages(actor, *, status: str | None = None, recipient: str | None = None, page: int = 1,
                  per_page: int = 20) -> tuple[list[OutboxMessage], int]:
    """消息发件箱, newest first: the organisation's messages and the account's own (no organisation)."""
    from crm_core.db import paginate

    actor.require("outbox", "view")
    stmt = select(OutboxMessage).where((OutboxMessage.org_id == actor.org_id) | OutboxMessage.org_id.is_(None))
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if recipient:
        stmt = stmt.where(OutboxMessage.recipient == recipient)
    return paginate(stmt, OutboxMessage.id.desc(), page=page, per_page=per_page)


def message_dict(m: OutboxMessage) -> dict:
    return {
        "id": m.id, "channel": m.channel, "recipient": m.recipient, "payload": m.payload, "status": m.status,
        "attempts": m.attempts, "max_attempts": m.max_attempts, "last_error": m.last_error,
        "created_at": m.created_at.isoformat() + "Z", "sent_at": m.sent_at.isoformat() + "Z" if m.sent_at else None,
        "next_attempt_at": m.next_attempt_at.isoformat() + "Z", "dedupe_key": m.dedupe_key,
        "provider_message_id": m.provider_message_id, "provider_status": m.provider_status,
    }
