"""The callback's fast path: messages no feature handles (free text answered with the
default reply, ``LOCATION`` events every few seconds, ``VIEW`` clicks) are most of the
traffic. Their only effects are idempotent — a stored row (unique on the dedup key), the
follower's interaction time and location (last value wins) — and their reply is the same on
every delivery, so they need no claim before answering:

- the row is appended to this process's **spool** (:mod:`crm_core.spool`: one ``write``),
  and a thread moves the spool into ``inbound_message`` every 200 ms with
  ``INSERT ... ON CONFLICT (dedup_key) DO NOTHING`` — a WeChat retry, delivered to any
  process, gets the same default reply and adds no second row; a replayed spool after a crash
  adds none either. A process killed hard leaves its file behind and another takes it over;
  nothing answered is lost.
- follower bookkeeping (interaction time; the last reported location) rides in the same
  batch, at most once a minute per user and process (every 10 s for locations) — all the
  48-hour window and the check-in page need.

Rows appear in ``/api/v1/wechat/messages`` within the flush interval (a listing in the same
process flushes first). Everything else — follows, scans, menu clicks, and any message a
feature's rule matches — takes the full path in ``callback.handle`` with its claim in Redis or
the database.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from datetime import datetime

from flask import current_app

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.spool import Spool
from crm_core.wechat import conversations, followers

log = logging.getLogger("wxcrm.wechat")
FAST_EVENTS = (None, "location", "view")
INTERACTION_EVERY = 60.0  # seconds between follower interaction writes per user and process
CONVERSATION_EVERY = 5.0  # ... and between moves of their 在线客服 conversation to the top (its messages are live)
LOCATION_EVERY = 10.0
SPOOL_KEY = "wxcrm_inbound_spool"

_touched: dict[tuple, float] = {}
_touched_lock = threading.Lock()
_spool_lock = threading.Lock()


def eligible(ib, rule) -> bool:
    return rule is None and ib.event in FAST_EVENTS


def _location(ib) -> dict:
    if ib.event != "location":
        return {}
    m = ib.message
    try:
        return {"lat": float(m.latitude), "lng": float(m.longitude), "precision": float(m.precision or 0)}
    except (TypeError, ValueError):
        return {}


# a spooled record is a JSON array in the column order of this INSERT, plus the reported location
_COLUMNS = ("appid", "openid", "dedup_key", "msg_type", "event", "event_key", "msg_id", "summary", "received_at",
            "handler", "outcome", "reply", "duration_ms")
_INSERT = (f"INSERT INTO inbound_message ({', '.join(_COLUMNS)}) VALUES ({{marks}}) "
           "ON CONFLICT (dedup_key) DO NOTHING")


def process(ib, key: str, summary: dict, reply: str | None, handler: str | None, outcome: str, t0: float) -> str:
    """Spool the message (row and follower bookkeeping) and return the reply to send."""
    reply = reply if reply and reply != "success" else None
    msg_id = getattr(ib.message, "id", None)
    record = [ib.appid, ib.openid, key, ib.msg_type, ib.event, str(ib.event_key)[:200] if ib.event_key else None,
              str(msg_id) if msg_id else None, summary, utcnow().isoformat(" ", "microseconds"), handler, outcome,
              reply, round((time.perf_counter() - t0) * 1000, 1), _location(ib) or None]
    try:
        spool().append(record)
    except OSError:  # the spool's disk is full or gone: write this one directly (slower, still once)
        log.exception("callback spool unavailable; message written directly", extra={"openid": ib.openid})
        _ingest(current_app._get_current_object(), [record])
    return reply or "success"


def _due(database: int, appid: str, openid: str, kind: str) -> bool:
    """Follower bookkeeping at most once a minute per user, kind, database and process (10 s for
    locations, 5 s for a user message, which renews its reply grant, and for the conversation's place
    in the inbox). ``kind``: "msg", "conv", "loc" or "seen"."""
    now = time.monotonic()
    touch_key = (database, appid, openid, kind)
    with _touched_lock:
        # a user message renews its reply grant: within seconds, or a live chat runs out of replies
        every = {"loc": LOCATION_EVERY, "conv": CONVERSATION_EVERY, "msg": CONVERSATION_EVERY}.get(kind, INTERACTION_EVERY)
        due = now - _touched.get(touch_key, -1e9) >= every
        if due:
            _touched[touch_key] = now
            if len(_touched) > 100_000:
                _touched.clear()
    return due


def spool(app=None) -> Spool:
    """This app's inbound spool (one per database: the name carries a hash of its URL, so two
    databases sharing a spool folder never take over each other's files)."""
    app = app or current_app._get_current_object()
    found = app.extensions.get(SPOOL_KEY)
    if found is not None:
        return found
    with _spool_lock:
        if SPOOL_KEY not in app.extensions:
            url = str(app.config["SQLALCHEMY_DATABASE_URI"])
            directory = app.config["SPOOL_DIR"]
            if not os.path.isabs(directory):
                directory = os.path.join(os.getcwd(), directory)
            app.extensions[SPOOL_KEY] = Spool(
                directory, "inbound-" + hashlib.sha1(url.encode()).hexdigest()[:10], lambda records: _ingest(app, records),
                interval=app.config["SPOOL_FLUSH_SECONDS"], fsync=app.config["SPOOL_FSYNC"], refused=_refused)
        return app.extensions[SPOOL_KEY]


def _ingest(app, records: list[list]) -> None:
    """One batch: the rows (insert-or-ignore on the dedup key) and the followers' interaction
    times and locations (last value wins), in one transaction. The statement is written out
    and run with the driver's ``executemany``: the rows come ready in column order, and the
    ORM's per-row work would cost more than the insert (the tests read them back through it)."""
    with app.app_context():
        try:
            marks = ", ".join(["?" if db.engine.dialect.paramstyle == "qmark" else "%s"] * len(_COLUMNS))
            params, touches = [], {}
            for r in records:  # left as they are: a refused batch is retried record by record
                loc = r[13]
                params.append((*r[:7], json.dumps(r[7], ensure_ascii=False), *r[8:13]))
                grant = followers.opened_grant(r[3], r[4])
                kind = "loc" if loc else "msg" if grant else "seen"
                touches[(r[0], r[1], kind)] = {"appid": r[0], "openid": r[1], "at": r[8], "grant": grant, **(loc or {})}
            db.session.connection().exec_driver_sql(_INSERT.format(marks=marks), params)
            database = id(db.engine)
            said = [(r[0], r[1], datetime.fromisoformat(r[8])) for r in records
                    if conversations.shown(r[3], r[4]) and _due(database, r[0], r[1], "conv")]
            if said:  # the 在线客服 inbox: these users' conversations come to the top (every 5 s per user at most)
                conversations.touch_many(said)
            due = [t for (appid, openid, kind), t in touches.items() if _due(database, appid, openid, kind)]
            if due:
                for t in due:
                    t["at"] = datetime.fromisoformat(t["at"])
                followers.touch_many(due)
            db.session.commit()
        finally:
            db.session.remove()


def _refused(exc: Exception) -> bool:
    """The database refused the data (a constraint, a value too long), as opposed to being
    locked or unreachable: such a record is set aside instead of retried."""
    from sqlalchemy.exc import DataError, IntegrityError

    return isinstance(exc, (DataError, IntegrityError))


def flush_local() -> int:
    """Move what this process has spooled into the database now, so a listing in this process
    shows every message it answered. Commits the caller's session first: SQLite lets one
    writer in, and the spool's writer would otherwise wait for the caller's pending write."""
    found = current_app.extensions.get(SPOOL_KEY)
    if found is None:
        return 0
    db.session.commit()
    return found.flush()
