"""Callbacks answered while the database (or Redis and the database) is away.

The full path (``callback.handle``: follows, scans, menu taps, messages a rule handles) claims a
message in Redis and the database before it runs the handler. When a dependency refuses — the
database is restarting, Redis is stopped — the message must still be stored once and its
retries must get the same answer (issue #20, docs/operations.md "When things fail"):

- **Redis away, database up**: the database's unique dedup key is the claim (as in embedded
  mode); nothing is held.
- **Database away**: the message is *held*. Its record goes to a second spool beside the
  callback spool (one ``write``, survives kill -9, taken over by a sibling process), and the
  answer given — ``success`` before the handler ran, the handler's reply if it ran and only
  the final write failed — is kept in a reply file under the spool folder, created atomically.
  Every later delivery of the message, to any process on the host, finds that file first and
  gets the same answer, whether the database is back or not.
- When the database answers again, the spool's flusher writes the row (outcome ``held``, or
  the finished outcome for a handler that ran) and queues :func:`run_held`, which runs the
  handler late: its reply goes to the user as a customer-service message, the passive reply
  being long gone. ``recover_held_messages`` (every 30 s) re-finds held rows whose job was lost
  and rows a dead process left ``processing`` past a minute.

A handler whose own database work failed because the database went away (rather than a bug
in it) is treated the same: its transaction rolled back, so it runs again later, once.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from crm_core.db import db
from crm_core.spool import Spool
from crm_core.wechat.models import InboundMessage

log = logging.getLogger("wxcrm.wechat")
SPOOL_KEY = "wxcrm_held_spool"
_lock = threading.Lock()
_purged = {"at": 0.0}
PURGE_EVERY = 300.0
PRIVATE = ("raw", "booked")  # summary keys kept for a late run, not shown


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:  # pragma: no cover - redis is a dependency
        return ()
    return RedisConnectionError, RedisTimeout


REDIS_ERRORS = _redis_errors()


class HeldBack(Exception):
    """A handler's database work failed because the database went away: hold the message."""


def database_away(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (as opposed to refusing the data)."""
    return isinstance(exc, (OperationalError, HeldBack)) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def dependency_away(exc: BaseException) -> bool:
    return database_away(exc) or isinstance(exc, REDIS_ERRORS)


# --- reply files --------------------------------------------------------------------------
def _directory(app=None) -> str:
    from wxapp.official_account import fastpath

    app = app or current_app._get_current_object()
    inbound = fastpath.spool(app)
    return os.path.join(inbound.directory, inbound.name.replace("inbound-", "replies-", 1))


def _path(key: str, app=None) -> str:
    return os.path.join(_directory(app), hashlib.sha1(key.encode()).hexdigest())


def recorded_reply(key: str) -> str | None:
    """The answer a held delivery of this message was given, if any (one failed ``open`` otherwise)."""
    try:
        with open(_path(key), encoding="utf-8") as fh:
            return fh.read() or "success"
    except FileNotFoundError:
        return None
    except OSError:
        log.exception("reply file unreadable", extra={"dedup_key": key})
        return None


def remember_reply(key: str, reply: str) -> str:
    """Keep the answer for this message's later deliveries. The file appears whole or not at all
    (written aside, then linked in); if another delivery got there first, its answer wins and is
    returned."""
    path = _path(key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(reply or "success")
    try:
        os.link(tmp, path)
    except FileExistsError:
        found = recorded_reply(key)
        return found if found is not None else reply
    finally:
        os.unlink(tmp)
    _purge_old()
    return reply


def _purge_old(force: bool = False) -> int:
    """Reply files outlive WeChat's retries by the dedup horizon, then go."""
    now = time.time()
    if not force and now - _purged["at"] < PURGE_EVERY:
        return 0
    _purged["at"] = now
    horizon = float(current_app.config["WECHAT_DEDUP_HORIZON_SECONDS"])
    directory, n = _directory(), 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            if now - os.stat(path).st_mtime > horizon:
                os.unlink(path)
                n += 1
        except FileNotFoundError:
            continue
    return n


# --- the held spool ------------------------------------------------------------------------
def spool(app=None) -> Spool:
    from wxapp.official_account import fastpath

    app = app or current_app._get_current_object()
    found = app.extensions.get(SPOOL_KEY)
    if found is not None:
        return found
    with _lock:
        if SPOOL_KEY not in app.extensions:
            inbound = fastpath.spool(app)
            app.extensions[SPOOL_KEY] = Spool(inbound.directory, inbound.name.replace("inbound-", "held-", 1),
                                              lambda records: _ingest(app, records), interval=1.0,
                                              fsync=app.config["SPOOL_FSYNC"], refused=fastpath._refused)
        return app.extensions[SPOOL_KEY]


def flush_local() -> int:
    """Write what this process has held, now (a listing in this process shows it)."""
    found = current_app.extensions.get(SPOOL_KEY)
    if found is None:
        return 0
    db.session.commit()
    return found.flush()


def hold(row: dict, *, booked: bool) -> None:
    """Spool one held message: ``row`` holds the ``InboundMessage`` columns (``received_at`` as
    ISO text, ``summary`` with the message's ``raw`` fields); ``booked``: the follower bookkeeping
    already committed with the row's claim."""
    spool().append({"row": row, "booked": booked})


def _ingest(app, records: list[dict]) -> None:
    """Write held rows (or finish the claimed row they stand for) and queue their late handlers."""
    from datetime import datetime

    from crm_core import jobs
    from wxapp.official_account.jobs import run_held_message

    with app.app_context():
        try:
            to_run = []
            for rec in records:
                data = dict(rec["row"])
                data["received_at"] = datetime.fromisoformat(data["received_at"])
                data["summary"] = {**(data.get("summary") or {}), "booked": bool(rec.get("booked"))}
                row = db.session.scalars(select(InboundMessage).where(InboundMessage.dedup_key == data["dedup_key"])).first()
                if row is None:
                    row = InboundMessage(**data)
                    db.session.add(row)
                    db.session.flush()
                elif row.outcome == "processing":  # the claim committed before the database went away
                    row.outcome, row.reply, row.handler = data["outcome"], data.get("reply"), data.get("handler")
                    row.summary = {**(row.summary or {}), "booked": True}
                    row.duration_ms = data.get("duration_ms")
                else:
                    continue  # written already (a replayed spool file, another delivery)
                if row.outcome == "held":
                    to_run.append(row.id)
            for row_id in to_run:
                jobs.enqueue(run_held_message, row_id)
            db.session.commit()
        finally:
            db.session.remove()


def row_values(msg, ib, key: str, summary: dict, *, outcome: str, reply: str | None = None,
               handler: str | None = None, duration_ms: float | None = None) -> dict:
    from crm_core.clock import utcnow

    return {"appid": ib.appid, "openid": ib.openid, "dedup_key": key, "msg_type": ib.msg_type, "event": ib.event,
            "event_key": (ib.event_key or None) and str(ib.event_key)[:200],
            "msg_id": str(msg.id) if getattr(msg, "id", None) else None,
            "summary": summary, "received_at": utcnow().isoformat(" ", "microseconds"), "outcome": outcome,
            "reply": reply if reply and reply != "success" else None, "handler": handler, "duration_ms": duration_ms}


# --- recovery ------------------------------------------------------------------------------
def claim(row_id: int) -> InboundMessage | None:
    """Take a held row for its late run (one runner wins)."""
    from crm_core.clock import utcnow

    won = db.session.execute(update(InboundMessage).where(InboundMessage.id == row_id, InboundMessage.outcome == "held")
                             .values(outcome="processing", received_at=utcnow())
                             .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return db.session.get(InboundMessage, row_id) if won else None


def sweep(stale_after: float = 60.0, held_after: float = 15.0) -> list[int]:
    """Rows a dead process left ``processing`` past ``stale_after`` seconds become held, and held
    rows older than ``held_after`` (their job lost with the queue) are returned to run again."""
    from datetime import timedelta

    from crm_core.clock import utcnow

    now = utcnow()
    recent = now - timedelta(days=1)
    stale = db.session.execute(update(InboundMessage).where(
        InboundMessage.outcome == "processing", InboundMessage.received_at < now - timedelta(seconds=stale_after),
        InboundMessage.received_at > recent).values(outcome="held").execution_options(synchronize_session=False)).rowcount
    if stale:
        log.warning("%d wechat deliveries left processing by a dead process will run again", stale)
    ids = db.session.scalars(select(InboundMessage.id).where(
        InboundMessage.outcome == "held", InboundMessage.received_at < now - timedelta(seconds=held_after),
        InboundMessage.received_at > recent).order_by(InboundMessage.id).limit(500)).all()
    db.session.commit()
    return list(ids)
