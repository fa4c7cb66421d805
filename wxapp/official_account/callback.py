"""``GET/POST /wechat/callback``: the official account's server URL.

Order of work on a POST: size limit → signature (constant time) → timestamp skew →
decrypt (safe mode) → XML hardening → parse → dedup → bookkeeping → route with a time
budget → store → reply (encrypted in safe mode). Every POST that passes the signature gets
a valid answer within WeChat's 5 seconds; anything we cannot handle is answered
``success``. Rejections (bad signature, bad ``msg_signature``, wrong AppID, stale
timestamp) are 4xx, logged, and process nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from crm_core import outbox
from crm_core.clock import to_utc, utcnow
from crm_core.db import begin_savepoint, db
from crm_core.wechat import conversations, followers
from crm_core.wechat.models import InboundMessage
from wxapp.config import wechat_appid
from wxapp.official_account import fastpath, held
from wxapp.official_account.router import Inbound, router

log = logging.getLogger("wxcrm.wechat")
access = logging.getLogger("wxcrm.web")
bp = Blueprint("wechat", __name__, url_prefix="/wechat")

MAX_BODY = 256 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="wxcrm-wechat")



def _signature(*parts) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _valid(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), (given or "").encode())


def _reject(status: int, reason: str, remote: str | None = None):
    if remote is None:
        remote = request.remote_addr
    log.warning("wechat callback rejected: %s", reason, extra={"reason": reason, "remote": remote})
    return Response(reason, status=status, mimetype="text/plain")


@bp.get("/callback")
def verify():
    """Server verification: echo ``echostr`` when the signature is right."""
    token = current_app.config["WECHAT_TOKEN"] or ""
    a = request.args
    if not token or not _valid(_signature(token, a.get("timestamp", ""), a.get("nonce", "")), a.get("signature", "")):
        return _reject(403, "invalid signature")
    return Response(a.get("echostr", ""), mimetype="text/plain")


_cryptos: dict[tuple, WeChatCrypto] = {}


def _crypto(token: str, aes_key: str, appid: str) -> WeChatCrypto:
    """One ``WeChatCrypto`` per key set (it decodes the key once; it keeps no per-message state)."""
    found = _cryptos.get((token, aes_key, appid))
    if found is None:
        if len(_cryptos) > 16:
            _cryptos.clear()
        found = _cryptos[(token, aes_key, appid)] = WeChatCrypto(token, aes_key, appid)
    return found


def _clean_xml(raw: bytes) -> str | None:
    text = raw.decode("utf-8", errors="replace")
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        return None  # WeChat never sends a DTD: treat as hostile
    return _CONTROL.sub("", text)


# job-finish and other pushes WeChat sends about an earlier call: their MsgID tells them apart
_JOB_EVENTS = {"templatesendjobfinish", "masssendjobfinish", "subscribe_msg_sent_event", "publishjobfinish"}


def dedup_key(msg) -> str:
    """The key WeChat's retries of one message share and two different messages never do
    (docs/wechat.md): ``FromUserName`` + ``MsgId`` for messages; for events ``CreateTime``,
    ``Event``, ``EventKey`` (and a scan's ticket, a job-finish event's ``MsgID``); anything
    without an id: a hash of its fields. Long keys are hashed to fit the column."""
    data = getattr(msg, "_data", None) or {}
    source = msg.source or ""
    if msg.type != "event":
        msg_id = data.get("MsgId") or data.get("MsgID") or getattr(msg, "id", None)
        if msg_id:
            return f"{source}|{msg_id}"
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
        return f"{source}|h:{digest[:40]}"
    event = str(data.get("Event") or getattr(msg, "event", "") or "")
    parts = [str(data.get("CreateTime") or ""), event, str(data.get("EventKey") or "")]
    if event.lower() in _JOB_EVENTS:
        parts.append(str(data.get("MsgID") or data.get("MsgId") or ""))
    if data.get("Ticket"):
        parts.append(str(data["Ticket"]))
    key = f"{source}|" + "|".join(parts)
    if len(key) > 160:
        key = f"{source}|e:" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]
    return key


def _reply_xml(msg, content: str) -> str:
    reply = TextReply(message=msg, content=content.replace("]]>", "]]]]><![CDATA[>"))
    return reply.render()


@bp.post("/callback")
def receive():
    """Reached only if the lane below is not installed; both run :func:`process_post`."""
    return process_post(request)


def process_post(req) -> Response:
    """The whole POST: ``req`` is a werkzeug request (Flask's, or the lane's own)."""
    cfg = current_app.config
    token = cfg["WECHAT_TOKEN"] or ""
    a = req.args
    remote = req.remote_addr or ""

    def _reject(status: int, reason: str):
        return globals()["_reject"](status, reason, remote)

    if req.content_length and req.content_length > MAX_BODY:
        return _reject(413, "body too large")
    raw = req.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return _reject(413, "body too large")
    timestamp, nonce = a.get("timestamp", ""), a.get("nonce", "")
    if not token or not _valid(_signature(token, timestamp, nonce), a.get("signature", "")):
        return _reject(403, "invalid signature")
    tolerance = cfg["WECHAT_TIMESTAMP_TOLERANCE"]
    if tolerance:
        try:
            skew = abs((utcnow() - datetime(1970, 1, 1)).total_seconds() - int(timestamp))
        except ValueError:
            return _reject(400, "invalid timestamp")
        if skew > tolerance:
            return _reject(403, "stale timestamp")
    safe = a.get("encrypt_type") == "aes"
    crypto = None
    mode = cfg.get("WECHAT_ENCRYPT_MODE") or "plain"
    if not safe and mode == "safe":  # the token alone must not let anyone inject messages
        log.warning("plaintext wechat callback refused in safe mode")
        return _reject(403, "plaintext refused in safe mode")
    if safe and mode == "plain":
        return _reject(400, "safe mode not configured")
    if safe:
        if not cfg.get("WECHAT_AES_KEY"):
            return _reject(400, "safe mode not configured")
        crypto = _crypto(token, cfg["WECHAT_AES_KEY"], cfg["WECHAT_APPID"])
        try:
            raw = crypto.decrypt_message(raw, a.get("msg_signature", ""), timestamp, nonce).encode()
        except InvalidSignatureException:
            return _reject(403, "invalid msg_signature")
        except InvalidAppIdException:
            return _reject(403, "wrong appid in ciphertext")
        except Exception:  # malformed envelope
            return _reject(400, "undecryptable body")
    xml = _clean_xml(raw)
    if xml is None:
        log.warning("wechat callback with a DTD or entity ignored")
        return _answer("success", None, crypto, nonce)
    try:
        msg = parse_message(xml)
    except Exception:  # expat errors, third-party pushes without MsgType (KeyError)...
        log.warning("unparseable wechat callback answered success", extra={"body": xml[:500]})
        return _answer("success", None, crypto, nonce)
    content = handle(msg)
    return _answer(content, msg, crypto, nonce)


class CallbackLane:
    """WSGI middleware: ``POST /wechat/callback`` skips Flask's request pipeline (session,
    rate-limiter and CSRF hooks, URL routing, error pages) — none of which a signed server-to-
    server call needs — and runs :func:`process_post` inside an app context, with a request id
    and an access log line like every other request. Anything unexpected is logged and answered
    ``success``: WeChat must always get a valid answer, never a 500 (it would retry)."""

    PATH = "/wechat/callback"

    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != self.PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        from werkzeug.wrappers import Request

        from crm_core.context import request_id

        t0 = time.perf_counter()
        req = Request(environ)
        rid = uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            with self.app.app_context():
                try:
                    resp = process_post(req)
                except Exception:
                    log.exception("wechat callback failed; answered success")
                    resp = Response("success", mimetype="text/plain")
            resp.headers["X-Request-ID"] = rid
            if access.isEnabledFor(logging.INFO):
                access.info("POST %s %s", self.PATH, resp.status_code, extra={
                    "method": "POST", "path": self.PATH, "status": resp.status_code,
                    "ms": round((time.perf_counter() - t0) * 1000, 1)})
        finally:
            request_id.reset(token)
        return resp(environ, start_response)


def _answer(content: str | None, msg, crypto, nonce) -> Response:
    if not content or content == "success" or msg is None:
        return Response("success", mimetype="text/plain")
    xml = _reply_xml(msg, content)
    if crypto is not None:
        xml = crypto.encrypt_message(xml, nonce, str(int(time.time())))
    return Response(xml, mimetype="application/xml")


# --- processing ---------------------------------------------------------------------------
def _inbound(msg, appid: str) -> Inbound:
    event = getattr(msg, "event", None)
    event = event.lower() if isinstance(event, str) else None
    key = getattr(msg, "key", None)
    scene = None
    if event == "subscribe_scan" or (event == "subscribe" and key):
        scene = getattr(msg, "scene_id", None) or (key[len("qrscene_"):] if key and key.startswith("qrscene_") else None)
        event = "subscribe"
    elif event == "scan":
        scene = getattr(msg, "scene_id", None) or key
    return Inbound(message=msg, appid=appid, openid=msg.source, msg_type=msg.type, event=event, event_key=key,
                   scene=scene, content=getattr(msg, "content", None))


_SUMMARY_ATTRS = ("content", "event", "key", "latitude", "longitude", "precision", "label", "url", "media_id", "recognition",
                  "format", "thumb_media_id", "title", "description", "location_x", "location_y", "scale")
_summary_attrs: dict[type, tuple[str, ...]] = {}


def _summary(msg, ib: Inbound) -> dict:
    attrs = _summary_attrs.get(type(msg))
    if attrs is None:  # the fields wechatpy's class for this message defines, worked out once per class
        attrs = _summary_attrs[type(msg)] = tuple(a for a in _SUMMARY_ATTRS if hasattr(type(msg), a))
    out = {"type": msg.type}
    for attr in attrs:
        value = getattr(msg, attr, None)
        if value not in (None, ""):
            out[attr] = value if isinstance(value, (int, float)) else str(value)[:500]
    if ib.scene:
        out["scene"] = ib.scene
    return out


def _redis_key(key: str) -> str:
    return f"wxcrm:wechat:dedup:{wechat_appid()}:{key}"


def _claim_redis(key: str):
    """Redis dedup: SET NX. Returns None when claimed, else the Redis key (a retry). The claim's
    value carries its time, so a claim left by a process that died can be taken over."""
    conn = current_app.extensions.get("wxcrm_redis")
    if conn is None:
        return None
    rkey = _redis_key(key)
    try:
        if conn.set(rkey, f"{PENDING}{time.time():.3f}", nx=True, ex=current_app.config["WECHAT_DEDUP_HORIZON_SECONDS"]):
            return None
    except held.REDIS_ERRORS:  # Redis away: the database's unique dedup key is the claim (held.py)
        log.warning("redis unavailable for the wechat dedup claim; the database decides", extra={"dedup_key": key})
        return None
    return rkey


PENDING = "\x00pending:"
# compare and set: take a pending claim over only if it is still the stale one we saw
_TAKE_OVER = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0"


def _lease() -> float:
    """How long a delivery may stay "processing" before its process is taken for dead: the handler
    budget (after which a live process answers and defers) and a margin for lock waits before it."""
    return float(current_app.config.get("WECHAT_HANDLER_BUDGET", 3.5)) + 4.0  # and a slow database's lock waits


def _retry_fetch(key: str, from_row: bool = False):
    """For a retry: a function returning the first delivery's reply once it is known (from Redis,
    or with ``from_row`` or without Redis from the stored row)."""
    conn = None if from_row else current_app.extensions.get("wxcrm_redis")

    def fetch_db():
        db.session.rollback()
        existing = db.session.scalars(db.select(InboundMessage).where(InboundMessage.dedup_key == key)).first()
        if existing is None or existing.outcome == "processing":
            return held.recorded_reply(key)  # the first delivery may have been held meanwhile
        return existing.reply or "success"

    if conn is not None:
        rkey = _redis_key(key)

        def fetch():
            try:
                v = conn.get(rkey)
            except held.REDIS_ERRORS:  # Redis went away: the row tells
                return fetch_db()
            v = v.decode() if v is not None else "success"
            if v.startswith(PENDING) or v == "\x00pending":
                return held.recorded_reply(key)
            return v
        return fetch
    return fetch_db


def _take_over(key: str) -> InboundMessage | bool | None:
    """A retry finds the first delivery still "processing" past the lease: its process died (a
    kill -9, a crash). The first retry to claim it — a conditional UPDATE on the row, or a
    compare-and-set on the Redis claim when the row never got written — runs the handler.
    Returns the row to finish, True (the Redis claim is ours, no row yet), or None."""
    try:
        return _claim_stale(key)
    except IntegrityError:  # the first delivery was slow, not dead, and just wrote its row: keep waiting
        db.session.rollback()
        return None


def _claim_stale(key: str) -> InboundMessage | bool | None:
    now = utcnow()
    cut = now - timedelta(seconds=_lease())
    db.session.rollback()
    from sqlalchemy import update

    claimed = db.session.execute(update(InboundMessage).where(
        InboundMessage.dedup_key == key, InboundMessage.outcome == "processing", InboundMessage.received_at < cut)
        .values(received_at=now).execution_options(synchronize_session=False)).rowcount
    if claimed:
        db.session.commit()
        log.warning("wechat delivery left processing by a dead process taken over", extra={"dedup_key": key})
        return db.session.scalars(db.select(InboundMessage).where(InboundMessage.dedup_key == key)).one()
    db.session.rollback()
    conn = current_app.extensions.get("wxcrm_redis")
    if conn is None:
        return None
    rkey = _redis_key(key)
    try:
        seen = conn.get(rkey)
    except held.REDIS_ERRORS:
        return None
    seen = seen.decode() if seen is not None else None
    if not seen or not seen.startswith(PENDING):
        return None
    try:
        stale = time.time() - float(seen[len(PENDING):]) > _lease()
    except ValueError:
        stale = False
    if not stale or db.session.scalar(db.select(InboundMessage.id).where(InboundMessage.dedup_key == key)) is not None:
        return None  # young, or the row exists (its own lease decides, above)
    if conn.eval(_TAKE_OVER, 1, rkey, seen, f"{PENDING}{time.time():.3f}"):
        log.warning("wechat claim left by a dead process taken over", extra={"dedup_key": key})
        return True
    return None


def _wait_for_reply(fetch, timeout: float | None = None, take_over=None) -> str:
    """A retry of a message still being processed waits for the first delivery's reply, within
    WeChat's own 5 s for this delivery; a first delivery whose process died is taken over."""
    timeout = timeout if timeout is not None else float(current_app.config.get("WECHAT_RETRY_WAIT", 4.5))
    deadline = time.monotonic() + timeout
    next_check = 0.0
    while time.monotonic() < deadline:
        value = fetch()
        if value is not None:
            return value
        if take_over is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + 0.5
            taken = take_over()
            if taken is not None:
                return taken
        time.sleep(0.05)
    return "success"


def handle(msg) -> str:
    """Process one parsed message exactly once; returns the passive reply text or "success"."""
    appid = wechat_appid()
    key = dedup_key(msg)
    t0 = time.perf_counter()
    ib = _inbound(msg, appid)
    rule = router.resolve(ib)
    if fastpath.eligible(ib, rule):  # idempotent effects, same reply every time: no claim (see fastpath)
        reply, handler_name, outcome = _default(ib)
        return fastpath.process(ib, key, _summary(msg, ib), reply, handler_name, outcome, t0)
    answered = held.recorded_reply(key)
    if answered is not None:  # an earlier delivery was held while the database was away: the same answer
        return answered
    progress = _Progress()
    try:
        return _claim_and_process(msg, ib, rule, key, t0, progress)
    except Exception as exc:
        if not held.dependency_away(exc):
            raise
        return _hold(msg, ib, rule, key, t0, progress, exc)


class _Progress:
    """How far a delivery got before a dependency failed: its claim committed (with the follower
    bookkeeping), its handler's result known."""

    def __init__(self):
        self.committed = False
        self.result: tuple | None = None


def _claim_and_process(msg, ib: Inbound, rule, key: str, t0: float, progress: _Progress) -> str:
    def retry_reply(from_row: bool = False) -> str:  # a retry: the first delivery's reply, or its work if its process died
        db.session.rollback()

        def take_over():
            taken = _take_over(key)
            if taken is None:
                return None
            try:
                return _process(msg, ib, rule, key, t0, progress,
                                existing=taken if isinstance(taken, InboundMessage) else None)
            except IntegrityError:  # the first delivery wrote its row meanwhile: its reply is what we wait for
                db.session.rollback()
                return None
        return _wait_for_reply(_retry_fetch(key, from_row=from_row), take_over=take_over)

    if _claim_redis(key) is not None:  # a WeChat retry (Redis mode)
        return retry_reply()
    try:
        return _process(msg, ib, rule, key, t0, progress)
    except IntegrityError:  # the dedup claim (embedded mode: the unique key): a concurrent delivery got here first
        # (in Redis mode: Redis lost the first delivery's claim — it restarted — so the row tells)
        answer = retry_reply(from_row=True)
        _redis_reply(key, answer)  # replaces this delivery's own pending claim
        return answer


def _hold(msg, ib: Inbound, rule, key: str, t0: float, progress: _Progress, exc: Exception) -> str:
    """The database (or Redis and the database) refused mid-delivery: keep the message in the
    held spool and its answer in a reply file, so it is stored once and every delivery gets
    the same answer (held.py). Before the handler ran the answer is ``success`` and the handler
    runs once the database is back; after it ran, its reply stands."""
    log.warning("wechat delivery held: %s", type(exc).__name__, extra={"dedup_key": key, "openid": ib.openid})
    try:
        db.session.rollback()
    except Exception:
        pass
    db.session.remove()
    duration = round((time.perf_counter() - t0) * 1000, 1)
    summary = {**_summary(msg, ib), "raw": getattr(msg, "_data", None) or {}}
    if progress.result is not None:
        reply, handler_name, outcome = progress.result
        answer = held.remember_reply(key, reply or "success")
        row = held.row_values(msg, ib, key, summary, outcome=outcome, reply=reply, handler=handler_name, duration_ms=duration)
    else:
        answer = held.remember_reply(key, "success")
        row = held.row_values(msg, ib, key, summary, outcome="held", handler=rule.name if rule else None, duration_ms=duration)
    held.hold(row, booked=progress.committed)
    return answer


def _rebuild(raw: dict):
    """A stored message's wechatpy object again, from the fields it arrived with."""
    import xmltodict

    return parse_message(xmltodict.unparse({"xml": raw}))


def _route(ib: Inbound, rule, run) -> tuple[str | None, str | None, str]:
    """Run the matched rule's handler (``run(handler, ib, name)``); a scene nobody knows (an
    unknown or stale code) still gets the welcome, never silence."""
    if rule is None:
        return _default(ib)
    reply, handler_name, outcome = run(rule.handler, ib, rule.name)
    while outcome == "no_reply" and ib.event in ("subscribe", "scan"):
        rule = router.resolve(ib, after=rule)
        if rule is None:
            return _default(ib)
        reply, handler_name, outcome = run(rule.handler, ib, rule.name)
    return reply, handler_name, outcome


def run_held(row_id: int) -> str | None:
    """The late run of a held message (job ``run_held_message``): bookkeeping if it never
    committed, the handler, and its reply sent as a customer-service message. Returns the reply."""
    row = held.claim(row_id)
    if row is None:
        return None
    t0 = time.perf_counter()
    raw = (row.summary or {}).get("raw")
    if not raw:
        row.outcome, row.handler = "error", row.handler or "held"
        db.session.commit()
        log.error("held wechat message without its fields cannot run", extra={"inbound_id": row_id})
        return None
    msg = _rebuild(raw)
    ib = _inbound(msg, row.appid)
    if not row.summary.get("booked"):
        _bookkeeping(ib)
    else:
        f = followers.find(ib.appid, ib.openid)
        ib.follower_id = f.id if f is not None else None
    reply, handler_name, outcome = _route(ib, router.resolve(ib), _run_inline)
    if outcome == "held":
        raise held.HeldBack("the database went away again")  # the job runs again; the sweeper too
    if reply and reply != "success":
        outbox.queue_message("wechat_custom", ib.openid, {"msgtype": "text", "text": reply, "appid": ib.appid},
                             dedupe_key=f"held:{row.appid}:{row.dedup_key or row.id}")
        outcome = "deferred"
    row.handler, row.outcome = handler_name, outcome
    row.duration_ms = round((time.perf_counter() - t0) * 1000, 1)
    db.session.commit()
    return reply


def _run_inline(handler, ib: Inbound, name: str) -> tuple[str | None, str | None, str]:
    try:
        with begin_savepoint():
            result = handler(ib)
    except Exception as exc:
        if held.dependency_away(exc):
            return None, name, "held"
        log.exception("wechat handler failed", extra={"handler": name})
        return None, name, "error"
    text = result if isinstance(result, str) else None
    return text, name, "replied" if text else "no_reply"


def _process(msg, ib: Inbound, rule, key: str, t0: float, progress: _Progress,
             existing: InboundMessage | None = None) -> str:
    """The first delivery's work (or a taken-over one's): the row, bookkeeping, the handler, the reply."""
    row = existing
    if row is None:
        row = InboundMessage(appid=ib.appid, openid=ib.openid, dedup_key=key, msg_type=ib.msg_type, event=ib.event,
                             event_key=(ib.event_key or None) and str(ib.event_key)[:200],
                             msg_id=str(msg.id) if getattr(msg, "id", None) else None,
                             # its fields, so a sweeper can run it again if this process dies (held.py)
                             summary={**_summary(msg, ib), "raw": getattr(msg, "_data", None) or {}},
                             received_at=utcnow(), outcome="processing")
        db.session.add(row)
        try:
            db.session.flush()  # the dedup claim: a concurrent delivery of the same message stops here
        except IntegrityError:
            db.session.rollback()
            raise
        _bookkeeping(ib)
    else:  # taken over: the dead process committed its claim with the bookkeeping; only the handler is left
        f = followers.find(ib.appid, ib.openid)
        ib.follower_id = f.id if f is not None else None
    if rule is None:
        # answered inline: claim, bookkeeping and result commit together (one write per message)
        reply, handler_name, outcome = _default(ib)
        _finish(row, reply, handler_name, outcome, t0)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise
    else:
        # the claim commits first, so a handler running in another thread can write too
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise
        progress.committed = True
        reply, handler_name, outcome = _route(ib, rule, _run)
        if outcome == "held":  # the handler's database went away: it runs again once it is back
            raise held.HeldBack(handler_name)
        progress.result = (reply, handler_name, outcome)
        _finish(row, reply, handler_name, outcome, t0)
        db.session.commit()
    _redis_reply(key, row.reply or "success")
    return row.reply or "success"


def _redis_reply(key: str, reply: str) -> None:
    """The reply for retries that come through Redis (if Redis is away they read the row)."""
    conn = current_app.extensions.get("wxcrm_redis")
    if conn is None:
        return
    try:
        conn.set(_redis_key(key), reply or "success", ex=current_app.config["WECHAT_DEDUP_HORIZON_SECONDS"])
    except held.REDIS_ERRORS:
        pass


def _finish(row: InboundMessage, reply, handler_name, outcome, t0) -> None:
    row.reply = reply if reply and reply != "success" else None
    row.handler, row.outcome = handler_name, outcome
    row.duration_ms = round((time.perf_counter() - t0) * 1000, 1)


def _bookkeeping(ib: Inbound) -> None:
    """Follower state the gateway owns: interaction time, follow/unfollow, location. Runs in a
    savepoint of the message's transaction; a failure here never loses the message."""
    try:
        with begin_savepoint():
            _follower_state(ib)
    except Exception:
        log.exception("follower bookkeeping failed", extra={"openid": ib.openid})


def _follower_state(ib: Inbound) -> None:
    follower = followers.get_or_create(ib.appid, ib.openid)
    ib.follower_id = follower.id
    if ib.event == "unsubscribe":
        followers.unfollow(follower)
    else:
        created = getattr(ib.message, "create_time", None)  # wechatpy: an aware time
        followers.record_interaction(follower, ib.msg_type, ib.event,
                                     sent_at=to_utc(created) if isinstance(created, datetime) else None)
    if ib.event == "subscribe":
        ib.first_follow = followers.follow(follower, ib.scene)
        from crm_core import jobs
        from wxapp.official_account.jobs import fetch_profile

        jobs.enqueue(fetch_profile, follower.id)
    if conversations.shown(ib.msg_type, ib.event):  # the 在线客服 inbox
        conversations.touch_many([(ib.appid, ib.openid, utcnow())])
    if ib.event == "location":
        m = ib.message
        followers.record_location(follower, float(m.latitude), float(m.longitude), float(m.precision or 0))


class _Pending:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = False
        self.deferred = False
        self.away = False  # the handler failed because the database went away


def _default(ib: Inbound) -> tuple[str | None, str | None, str]:
    """What happens when no rule matches: a default text answer, the welcome, or nothing."""
    if ib.msg_type == "text":
        return router.default_for(ib.appid), "default", "replied"
    if ib.event == "subscribe":
        return router.welcome_text, "default_welcome", "replied"
    if ib.event == "scan":
        return router.scan_text, "default_scan", "replied"
    if ib.msg_type == "unknown" or ib.event not in (None, "unsubscribe", "location", "scan", "click", "view"):
        log.info("unknown wechat event answered success", extra={"event": ib.event, "type": ib.msg_type})
    return None, None, "no_reply"


def _run(handler, ib: Inbound, name: str) -> tuple[str | None, str | None, str]:
    app = current_app._get_current_object()
    state = _Pending()
    budget = app.config.get("WECHAT_HANDLER_BUDGET", 3.5)

    def work():
        with app.app_context():
            try:
                result = handler(ib)
                db.session.commit()
            except Exception as exc:
                try:
                    db.session.rollback()
                except Exception:
                    pass
                if held.dependency_away(exc):
                    state.away = True
                    log.warning("wechat handler's database went away; the message is held", extra={"handler": name})
                else:
                    log.exception("wechat handler failed", extra={"handler": name})
                result = None
            text = result if isinstance(result, str) else None
            with state.lock:
                state.done = True
                deferred = state.deferred
            if deferred and text:  # too late for a passive reply: send it as a customer-service message
                outbox.queue_message("wechat_custom", ib.openid, {"msgtype": "text", "text": text, "appid": ib.appid},
                                     dedupe_key=f"deferred:{ib.appid}:{ib.openid}:{getattr(ib.message, 'id', '')}:{name}")
                db.session.commit()
            db.session.remove()
            return text

    future = _executor.submit(work)
    try:
        text = future.result(timeout=budget)
        if state.away:
            return None, name, "held"
        return text, name, "replied" if text else "no_reply"
    except FutureTimeout:
        with state.lock:
            if not state.done:
                state.deferred = True
        if state.deferred:
            log.warning("wechat handler over budget; answered success", extra={"handler": name})
            return None, name, "deferred"
        text = future.result()
        if state.away:
            return None, name, "held"
        return text, name, "replied" if text else "no_reply"
