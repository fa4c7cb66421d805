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
DRAIN_DELAY = 1.0  # seconds the batch writer waits so one job writes a batch, not a message

_CLAIM_AND_QUEUE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {1, redis.call('RPUSH', KEYS[2], ARGV[3])}
end
return {0, redis.call('GET', KEYS[1]) or false}
"""

_touched: dict[tuple, float] = {}
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
        if value == 1:  # the list was empty: wake the batch writer, once per batch window
            from wxapp.official_account.jobs import drain_inbound

            try:
                jobs.submit_now(drain_inbound, delay=DRAIN_DELAY)
            except Exception:  # the periodic sweep drains it later
                pass
        return row["reply"] or "success"
    value = value.decode() if isinstance(value, bytes) else value
    if value is None or value == "\x00pending":
        return None
    return value


class _SqliteWriteTurn:
    """SQLite lets one writer in at a time and makes the others *poll* (sleeping 1, 2, 5,
    10... ms between tries), which under load costs far more than the write. Fast-path writers
    take turns on an ``flock`` next to the database file instead: the kernel wakes the next one
    the moment the lock is free. A thread lock covers threads of one process (``flock`` is per
    open file). Other databases need no turn."""

    def __init__(self):
        self.thread_lock = threading.Lock()
        self.fh = None
        self.path = None

    def __enter__(self):
        self.thread_lock.acquire()
        try:
            import fcntl

            path = db.engine.url.database
            if self.path != path:
                if self.fh:
                    self.fh.close()
                self.fh, self.path = open(f"{path}.writelock", "a+b"), path
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX)
        except Exception:
            self.thread_lock.release()
            raise
        return self

    def __exit__(self, *exc):
        import fcntl

        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        finally:
            self.thread_lock.release()


_sqlite_turn = _SqliteWriteTurn()


_SQLITE_INSERT = (
    "INSERT INTO inbound_message (appid, openid, dedup_key, msg_type, event, event_key, msg_id, summary, received_at, "
    "handler, outcome, reply, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING")


_SQLITE_TOUCH = (
    "INSERT INTO follower (appid, openid, subscribed, subscribe_count, last_interaction_at, created_at, updated_at) "
    "VALUES (?, ?, 0, 0, ?, ?, ?) ON CONFLICT (appid, openid) DO UPDATE SET last_interaction_at = excluded.last_interaction_at")


def _sqlite_claim(row: dict, touch: bool) -> bool:
    """Embedded SQLite: the row is built outside the writer's turn and only the insert and
    commit run inside it (tens of microseconds), on the pool's DB-API connection. The
    statement is written out because SQLAlchemy's per-statement work would otherwise sit
    inside the turn; the tests read these rows back through the ORM."""
    params = (row["appid"], row["openid"], row["dedup_key"], row["msg_type"], row["event"], row["event_key"],
              row["msg_id"], json.dumps(row["summary"], ensure_ascii=False),
              row["received_at"].strftime("%Y-%m-%d %H:%M:%S.%f"), row["handler"], row["outcome"], row["reply"],
              row["duration_ms"])
    at = row["received_at"].strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = db.engine.raw_connection()
    try:
        with _sqlite_turn:
            cur = conn.cursor()
            try:
                cur.execute(_SQLITE_INSERT, params)
                inserted = cur.rowcount == 1
                if inserted and touch:  # the follower's interaction time, in the same commit
                    cur.execute(_SQLITE_TOUCH, (row["appid"], row["openid"], at, at, at))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()
    finally:
        conn.close()  # back to the pool
    return inserted


def _generic_claim(row: dict) -> bool:
    result = db.session.execute(insert_for(InboundMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"]), row)
    if result.rowcount == 0:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def _due(ib, loc: dict) -> bool:
    """Follower bookkeeping at most once a minute per user and process (10 s for locations)."""
    now = time.monotonic()
    touch_key = (id(db.engine), ib.appid, ib.openid, "loc" if loc else "seen")
    with _touched_lock:
        due = now - _touched.get(touch_key, -1e9) >= (LOCATION_EVERY if loc else INTERACTION_EVERY)
        if due:
            _touched[touch_key] = now
            if len(_touched) > 100_000:
                _touched.clear()
    return due


def _database(ib, row: dict):
    loc = _location(ib)
    due = _due(ib, loc)
    sqlite_file = db.engine.dialect.name == "sqlite" and db.engine.url.database not in (None, "", ":memory:")
    if not (_sqlite_claim(row, due and not loc) if sqlite_file else _generic_claim(row)):
        return None  # a retry: the first delivery's row holds the answer
    if due and (loc or not sqlite_file):
        followers.touch_many([{"appid": ib.appid, "openid": ib.openid, "at": row["received_at"], **loc}])
        db.session.commit()
    return row["reply"] or "success"


def _not_recently_touched(conn, touches: list[dict]) -> list[dict]:
    """Interaction times need minute precision (the 48-hour window); locations always count."""
    keys = sorted({(t["appid"], t["openid"]) for t in touches if t.get("lat") is None})
    pipe = conn.pipeline(transaction=False)
    for appid, openid in keys:
        pipe.set(f"wxcrm:wechat:touched:{appid}:{openid}", 1, nx=True, ex=int(INTERACTION_EVERY))
    fresh = {k for k, ok in zip(keys, pipe.execute()) if ok}
    return [t for t in touches if t.get("lat") is not None or (t["appid"], t["openid"]) in fresh]


def drain(conn, batch: int = 500) -> int:
    """Move queued fast-path rows into the database (one writer at a time). Returns how many."""
    from crm_core.redisqueue import drain_list

    def handle(items):
        rows, touches = [], []
        for raw in items:
            rec = json.loads(raw)
            at = datetime.fromisoformat(rec.pop("received_at"))
            loc = {k: rec.pop(k) for k in ("lat", "lng", "precision") if k in rec}
            rows.append({**rec, "received_at": at})
            touches.append({"appid": rec["appid"], "openid": rec["openid"], "at": at, **loc})
        db.session.execute(insert_for(InboundMessage.__table__).on_conflict_do_nothing(index_elements=["dedup_key"]), rows)
        followers.touch_many(_not_recently_touched(conn, touches))
        db.session.commit()

    return drain_list(conn, QUEUE_KEY, LOCK_KEY, handle, batch=batch)
