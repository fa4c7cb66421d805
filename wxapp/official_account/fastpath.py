"""The callback's fast path: messages no feature handles (free text answered with the
default reply, ``LOCATION`` events every few seconds, ``VIEW`` clicks) are most of the
traffic, and each needs only dedup, a stored row, the follower's interaction time, and the
reply. They skip the ORM and the handler thread:

- **Redis mode**: one Lua script claims the dedup key (``SET NX EX`` with the reply as its
  value) and appends the row to a Redis list in the same atomic step; a batch writer job
  (:func:`wxapp.official_account.jobs.drain_inbound`) moves the list into the database —
  ``INSERT ... ON CONFLICT DO NOTHING`` on the unique dedup key, so a re-run after a crash
  never doubles a row — and applies follower bookkeeping in bulk. Rows appear in
  ``/api/v1/wechat/messages`` after the next drain (well under a second with a worker).
- **Embedded mode**: one Core ``INSERT ... ON CONFLICT DO NOTHING`` is the dedup claim and
  the stored row together; follower bookkeeping is written at most once a minute per user
  and process (once every 10 s for locations), which is all the 48-hour window and the
  check-in page need.

Everything else — follows, scans, menu clicks, and any message a feature's rule matches —
takes the full path in ``callback.handle``.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime

from flask import current_app

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import db, insert_for
from crm_core.models import InboundMessage
from crm_core.services import followers

QUEUE_KEY = "wxcrm:wechat:inbound"
LOCK_KEY = "wxcrm:wechat:inbound:lock"
FAST_EVENTS = (None, "location", "view")
INTERACTION_EVERY = 60.0  # seconds between follower interaction writes per user and process (embedded)
LOCATION_EVERY = 10.0

_CLAIM_AND_QUEUE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {1, redis.call('RPUSH', KEYS[2], ARGV[3])}
end
return {0, redis.call('GET', KEYS[1]) or false}
"""

_touched: dict[tuple[str, str, str], float] = {}
_touched_lock = threading.Lock()
_scripts: dict[int, object] = {}


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


def _row(ib, key: str, summary: dict, reply: str | None, handler: str | None, outcome: str, t0: float) -> dict:
    return {"appid": ib.appid, "openid": ib.openid, "dedup_key": key, "msg_type": ib.msg_type, "event": ib.event,
            "event_key": (str(ib.event_key)[:200] if ib.event_key else None),
            "msg_id": str(ib.message.id) if getattr(ib.message, "id", None) else None, "summary": summary,
            "received_at": utcnow(), "handler": handler, "outcome": outcome,
            "reply": reply if reply and reply != "success" else None,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 1)}


def process(ib, key: str, summary: dict, reply: str | None, handler: str | None, outcome: str, t0: float):
    """Record the message and return the reply to send, or ``(None, fetch)`` for a retry of
    a message whose first delivery is still being processed (``fetch`` polls for its reply)."""
    row = _row(ib, key, summary, reply, handler, outcome, t0)
    conn = current_app.extensions.get("wxcrm_redis")
    if conn is not None:
        return _redis(conn, ib, row)
    return _database(ib, row)


def _redis(conn, ib, row: dict):
    from wxapp.official_account.callback import DEDUP_TTL, _redis_key

    script = _scripts.get(id(conn))
    if script is None:
        script = _scripts[id(conn)] = conn.register_script(_CLAIM_AND_QUEUE)
    record = {**row, "received_at": row["received_at"].isoformat(), **_location(ib)}
    claimed, value = script(keys=[_redis_key(row["dedup_key"]), QUEUE_KEY],
                            args=[row["reply"] or "success", DEDUP_TTL, json.dumps(record, ensure_ascii=False)])
    if claimed:
        if value == 1:  # the list was empty: wake the batch writer
            from wxapp.official_account.jobs import drain_inbound

            try:
                jobs.submit_now(drain_inbound)
            except Exception:  # the periodic sweep drains it later
                pass
        return row["reply"] or "success"
    value = value.decode() if isinstance(value, bytes) else value
    if value is None or value == "\x00pending":
        return None
    return value


def _database(ib, row: dict):
    result = db.session.execute(insert_for(InboundMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"]), row)
    if result.rowcount == 0:  # a retry: the first delivery's row holds the answer
        db.session.rollback()
        return None
    loc = _location(ib)
    now = time.monotonic()
    touch_key = (ib.appid, ib.openid, "loc" if loc else "seen")
    with _touched_lock:
        due = now - _touched.get(touch_key, -1e9) >= (LOCATION_EVERY if loc else INTERACTION_EVERY)
        if due:
            _touched[touch_key] = now
            if len(_touched) > 100_000:
                _touched.clear()
    if due:
        followers.touch_many([{"appid": ib.appid, "openid": ib.openid, "at": row["received_at"], **loc}])
    db.session.commit()
    return row["reply"] or "success"


def drain(conn, batch: int = 500) -> int:
    """Move queued fast-path rows into the database (one drainer at a time). Returns how many."""
    token = f"{time.time()}"
    if not conn.set(LOCK_KEY, token, nx=True, ex=120):
        return 0
    moved = 0
    try:
        while True:
            items = conn.lrange(QUEUE_KEY, 0, batch - 1)
            if not items:
                break
            rows, touches = [], []
            for raw in items:
                rec = json.loads(raw)
                at = datetime.fromisoformat(rec.pop("received_at"))
                loc = {k: rec.pop(k) for k in ("lat", "lng", "precision") if k in rec}
                rows.append({**rec, "received_at": at})
                touches.append({"appid": rec["appid"], "openid": rec["openid"], "at": at, **loc})
            db.session.execute(insert_for(InboundMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"]), rows)
            followers.touch_many(touches)
            db.session.commit()
            conn.ltrim(QUEUE_KEY, len(items), -1)  # only after the commit: a crash re-inserts, never loses
            moved += len(items)
    finally:
        if (conn.get(LOCK_KEY) or b"").decode() == token:
            conn.delete(LOCK_KEY)
    return moved
