"""The local WeChat sandbox (development and tests only; absent in production).

``/sandbox/wechat/...`` plays the part of WeChat's API the product uses, and says no where
WeChat says no (docs/wechat.md has the codes):

- **token**: checks grant_type, appid and secret (40002 / 40013 / 40125; 41002 / 41004 when
  missing); tokens expire after ``SANDBOX_TOKEN_TTL`` seconds (42001), the previous one stays
  valid for 5 minutes after a refresh, a missing one is 41001, a wrong one 40001.
- **users**: the sandbox knows what each openid did from the callbacks it delivered (the phone
  simulator, ``simulate``, and tests standing in for WeChat call :func:`saw`): who follows,
  since when, from which scene, and which actions opened which customer-service quota.
  ``user/info`` answers as WeChat has since 2021-12-27 (no nickname or avatar; 40003 for an
  openid it never saw).
- **messages**: customer-service messages need a quota (45015 none, 45047 used up, 40003 an
  unknown openid); template messages need a known template id (40037) and a follower (43004),
  and push ``TEMPLATESENDJOBFINISH`` back to the callback.
- **menu** create (validated: 40016 / 40017 / 40018 / 40019), get (46003 when none), delete;
  **QR codes** with WeChat's defaults and limits, and ``showqrcode`` serving a real QR image;
  **media** upload and get (40007 for an unknown id or one older than 3 days);
  **OAuth** with the redirect domain check (10003), the secret (40125), one use per code
  (40163), refresh_token, sns/auth and a token-checked sns/userinfo (40001, 48001 for a
  snsapi_base token).
- **JS-SDK**: ``/sandbox/jssdk/config`` checks a page's ``wx.config`` as the WeChat client does (AppID, URL
  domain, the signature against the tickets it issued).
- every error carries WeChat's errmsg with a ``rid``. ``POST /sandbox/inject`` still injects
  what cannot happen by itself (a timeout, -1, any code).

``/sandbox/phone`` is a phone simulator that sends signed callbacks; ``/sandbox/outbox?openid=``
lists what the sandbox delivered to a user.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request
from sqlalchemy import func, select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.wechat.models import SandboxRecord
from wxapp.official_account import errcodes

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
OLD_TOKEN_GRACE = 300  # WeChat keeps the previous token valid for 5 minutes
MEDIA_TTL = timedelta(days=3)  # temporary media
DEFAULT_TEMPORARY_QR = 30  # seconds, when expire_seconds is left out
MESSAGE_GRANT, EVENT_GRANT = (timedelta(hours=48), 5), (timedelta(minutes=1), 3)
MESSAGE_TYPES = {"text", "image", "voice", "video", "shortvideo", "location", "link", "file"}
GRANTING_EVENTS = {"click", "scancode_push", "scancode_waitmsg", "subscribe", "scan"}


@bp.before_request
def _dev_only():
    if not current_app.config["DEV_ROUTES"]:
        abort(404)


def _record(api: str, payload: dict, openid: str | None = None, errcode: int = 0) -> SandboxRecord:
    row = SandboxRecord(api=api, openid=openid, payload=payload, errcode=errcode, created_at=utcnow())
    db.session.add(row)
    db.session.commit()
    return row


def _injected(api: str) -> dict | None:
    """Consume one injected error for ``api`` (set with POST /sandbox/inject)."""
    row = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == f"inject:{api}")
                             .order_by(SandboxRecord.id).with_for_update()).first()
    if row is None:
        return None
    spec = dict(row.payload)
    remaining = spec.get("times", 1) - 1
    if remaining <= 0:
        db.session.delete(row)
    else:
        row.payload = {**spec, "times": remaining}
    db.session.commit()
    if spec.get("delay"):
        time.sleep(float(spec["delay"]))
    return spec if spec.get("errcode") else None


def _err(errcode: int, errmsg: str | None = None, api: str | None = None, openid: str | None = None):
    """WeChat's error shape: the errmsg carries a request id (``rid``) as WeChat's do."""
    if api:
        _record(api, {"refused": errcode, **(request.get_json(silent=True) or {})}, openid=openid, errcode=errcode)
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(6)}"
    return jsonify({"errcode": errcode, "errmsg": f"{errmsg or errcodes.errmsg(errcode)} rid: {rid}"})


def _token_ttl() -> int:
    return int(current_app.config.get("SANDBOX_TOKEN_TTL") or 7200)


def _check_token(api: str):
    """Valid: the latest token within its lifetime, or the previous one within its grace period."""
    inj = _injected(api)
    if inj:
        return _err(inj["errcode"], inj.get("errmsg"), api=api)
    token = request.args.get("access_token", "")
    if not token:
        return _err(41001, api=api)
    # only the latest token and the one before it can be valid: any older one is 40001 anyway
    rows = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "token").order_by(SandboxRecord.id.desc())
                              .limit(2)).all()
    found = next(((i, r) for i, r in enumerate(rows) if r.payload.get("access_token") == token), None)
    if found is None:
        return _err(40001, api=api)
    i, row = found
    now = utcnow()
    if now - row.created_at >= timedelta(seconds=row.payload.get("expires_in", 7200)):
        return _err(42001, api=api)
    if i == 0 or (i == 1 and now - rows[0].created_at < timedelta(seconds=OLD_TOKEN_GRACE)):
        return None
    return _err(40001, api=api)


def token_checked(api: str):
    """Sandbox endpoints that need a valid access token (and honour injected errors)."""
    import functools

    def deco(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return _check_token(api) or view(*args, **kwargs)

        return wrapper

    return deco


@bp.get("/wechat/cgi-bin/token")
def token():
    inj = _injected("token")
    if inj:
        return _err(inj["errcode"], inj.get("errmsg"))
    args = request.args
    cfg = current_app.config
    from wxapp.config import wechat_appid

    if args.get("grant_type") != "client_credential":
        return _err(40002)
    if not args.get("appid"):
        return _err(41002)
    if not args.get("secret"):
        return _err(41004)
    if args["appid"] != wechat_appid():
        return _err(40013)
    if args["secret"] != (cfg.get("WECHAT_SECRET") or "dev-secret"):
        return _err(40125)
    value = "SBX_" + secrets.token_hex(16)
    ttl = _token_ttl()
    _record("token", {"access_token": value, "appid": args["appid"], "expires_in": ttl})
    return jsonify({"access_token": value, "expires_in": ttl})


# --- what users did (WeChat knows it from the callbacks it delivered) -------------------------------
def saw(xml: str) -> None:
    """Record a callback the sandbox (or a test standing in for WeChat) delivered: the user's
    follow, unfollow, message or event, which later decides what the sandbox accepts. Read as
    the callback reads it (wechatpy's parser, then the gateway's ``_inbound``: event and scene)."""
    from wechatpy import parse_message

    from wxapp.config import wechat_appid
    from wxapp.official_account.callback import _inbound

    try:
        ib = _inbound(parse_message(xml), wechat_appid())
    except Exception:  # not a message WeChat would send: nothing to learn
        return
    if ib.msg_type == "event":
        action = {"subscribe": "follow", "unsubscribe": "unfollow"}.get(ib.event or "", ib.event or "")
    elif ib.msg_type in MESSAGE_TYPES:
        action = "message"
    else:
        return
    scene = str(ib.scene) if ib.scene is not None and action in ("follow", "scan") else None
    _record("user_action", {"action": action, "scene": scene or None}, openid=ib.openid)


def _actions(openid: str) -> list[SandboxRecord]:
    return db.session.scalars(select(SandboxRecord).where(SandboxRecord.openid == openid, SandboxRecord.api == "user_action")
                              .order_by(SandboxRecord.id)).all()


def _user(openid: str) -> dict | None:
    """What WeChat knows of ``openid``: None if it never saw it."""
    rows = _actions(openid)
    if not rows:
        return None
    follows = [r for r in rows if r.payload["action"] in ("follow", "unfollow")]
    subscribed = follows[-1].payload["action"] == "follow" if follows else True  # a user who messages follows
    first = next((r for r in rows if r.payload["action"] == "follow"), None)
    last_follow = next((r for r in reversed(rows) if r.payload["action"] == "follow"), None)
    return {"openid": openid, "subscribed": subscribed, "rows": rows,
            "subscribe_time": int((last_follow or rows[0]).created_at.timestamp()),
            "scene": (last_follow.payload.get("scene") if last_follow else None), "first": first}


def _quota(user: dict) -> str | None:
    """Why a customer-service message to ``user`` would be refused now (None: it is allowed)."""
    if not user["subscribed"]:
        return "45015"
    now = utcnow()
    sends = db.session.scalars(select(SandboxRecord.created_at).where(
        SandboxRecord.openid == user["openid"], SandboxRecord.api == "custom_send", SandboxRecord.errcode == 0)).all()
    active = False
    for kinds, (span, allowed) in ((("message",), MESSAGE_GRANT), (tuple(GRANTING_EVENTS | {"follow"}), EVENT_GRANT)):
        last = next((r for r in reversed(user["rows"]) if r.payload["action"] in kinds), None)
        if last is None or now - last.created_at >= span:
            continue
        active = True
        if sum(1 for at in sends if at >= last.created_at) < allowed:
            return None
    return "45047" if active else "45015"


# --- messages ----------------------------------------------------------------------------------------
@bp.get("/wechat/cgi-bin/ticket/getticket")
@token_checked("ticket")
def ticket():
    value = "SBX_TICKET_" + secrets.token_hex(8)
    _record("ticket", {"ticket": value})
    return jsonify({"errcode": 0, "errmsg": "ok", "ticket": value, "expires_in": 7200})


@bp.post("/wechat/cgi-bin/message/custom/send")
@token_checked("custom_send")
def custom_send():
    body = request.get_json(force=True)
    openid = body.get("touser") or ""
    user = _user(openid)
    if user is None:
        return _err(40003, api="custom_send", openid=openid)
    wrong = _custom_body_refusal(body)
    if wrong:
        return _err(wrong, api="custom_send", openid=openid)
    refused = _quota(user)
    if refused:
        return _err(int(refused), api="custom_send", openid=openid)
    _record("custom_send", body, openid=openid)
    return jsonify({"errcode": 0, "errmsg": "ok"})


CUSTOM_TYPES = ("text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard",
                "miniprogrampage")


def _custom_body_refusal(body: dict) -> int | None:
    """What WeChat refuses in a customer-service message's body before it looks at the quota: an unknown msgtype
    (40008), empty text (44004), an image whose media id it never issued or has forgotten (40007, three days), news
    that is not exactly one article (45008) or an article without a title or link (47001)."""
    kind = body.get("msgtype")
    if kind not in CUSTOM_TYPES:
        return 40008
    if kind == "text" and not str((body.get("text") or {}).get("content") or "").strip():
        return 44004
    if kind == "image":
        media_id = (body.get("image") or {}).get("media_id") or ""
        row = _uploaded(media_id)
        if row is None or utcnow() - row.created_at > MEDIA_TTL:
            return 40007
    if kind == "news":
        articles = (body.get("news") or {}).get("articles") or []
        if len(articles) != 1:
            return 45008
        if not articles[0].get("title") or not articles[0].get("url"):
            return 47001
    return None


def _templates() -> set[str]:
    cfg = current_app.config
    return {cfg.get("WECHAT_TEMPLATE_NOTICE") or "TPL_SERVICE_NOTICE", *(cfg.get("SANDBOX_TEMPLATES") or ())}


@bp.post("/wechat/cgi-bin/message/template/send")
@token_checked("template_send")
def template_send():
    body = request.get_json(force=True)
    openid = body.get("touser") or ""
    if body.get("template_id") not in _templates():
        return _err(40037, api="template_send", openid=openid)
    user = _user(openid)
    if user is None:
        return _err(40003, api="template_send", openid=openid)
    if not user["subscribed"]:
        return _err(43004, api="template_send", openid=openid)
    msgid = int(time.time() * 1000) + secrets.randbelow(1000)
    _record("template_send", {**body, "msgid": msgid}, openid=openid)
    _push_job_finish(openid, msgid)
    return jsonify({"errcode": 0, "errmsg": "ok", "msgid": msgid})


def _push_job_finish(openid: str, msgid: int) -> None:
    """WeChat tells the account, a moment later, whether a template message reached the user."""
    if not current_app.config.get("SANDBOX_JOB_FINISH_EVENTS", True):
        return
    _push_event("TEMPLATESENDJOBFINISH", openid, f"<MsgID>{msgid}</MsgID><Status><![CDATA[success]]></Status>")


def _push_event(event: str, source: str, extra: str) -> None:
    """A signed callback event WeChat sends on its own, 0.2 s later (the sandbox's courtesy, as WeChat does)."""
    app = current_app._get_current_object()

    def push():
        from wxapp.official_account.simulate import message_xml, signed_request

        xml = message_xml("raw_event", source, event=event, extra=extra)
        with app.app_context():
            cfg = app.config
            try:
                query, body = signed_request(xml, cfg["WECHAT_TOKEN"], aes_key=cfg.get("WECHAT_AES_KEY"),
                                             appid=cfg["WECHAT_APPID"])
                app.test_client().post(f"/wechat/callback?{query}", data=body, content_type="text/xml")
            except Exception:  # the sandbox's courtesy call; the product logs its own side
                pass
            finally:
                db.session.remove()

    threading.Timer(0.2, push).start()


# --- 群发 (mass sends) ----------------------------------------------------------------------------------
MASS_ALLOWANCE = {"service": ("month", 4), "subscription": ("day", 1)}


def _mass_body_refusal(body: dict) -> int | None:
    if body.get("msgtype") != "text":  # the product sends text; others need WeChat's news materials (mpnews)
        return 40008 if body.get("msgtype") not in CUSTOM_TYPES else None
    if not str((body.get("text") or {}).get("content") or "").strip():
        return 44004
    return None


@bp.post("/wechat/cgi-bin/message/mass/preview")
@token_checked("mass_preview")
def mass_preview():
    body = request.get_json(force=True)
    openid = body.get("touser") or ""
    wrong = _mass_body_refusal(body)
    if wrong:
        return _err(wrong, api="mass_preview", openid=openid)
    user = _user(openid)
    if user is None or not user["subscribed"]:
        return _err(40003 if user is None else 43004, api="mass_preview", openid=openid)
    _record("mass_preview", body, openid=openid)
    _record("mass_message", {"text": body["text"], "preview": True}, openid=openid)  # what the phone shows
    return jsonify({"errcode": 0, "errmsg": "preview success", "msg_id": _new_msg_id()})


def _new_msg_id() -> int:
    return int(time.time() * 1000) % 10**10 + secrets.randbelow(1000)


def _mass(api: str, recipients: list[str]):
    """sendall / send: WeChat's checks (clientmsgid seen within 24 h: 45065 with that send's msg_id; the account's
    allowance: 45028), then each follower gets the text and WeChat reports the job (MASSSENDJOBFINISH)."""
    body = request.get_json(force=True)
    wrong = _mass_body_refusal(body)
    if wrong:
        return _err(wrong, api=api)
    client_id = body.get("clientmsgid")
    if client_id:
        since = utcnow() - timedelta(hours=24)
        for row in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api.in_(("mass_sendall", "mass_send")),
                                                                  SandboxRecord.errcode == 0, SandboxRecord.created_at >= since)):
            if row.payload.get("clientmsgid") == client_id:
                rid = secrets.token_hex(4)
                return jsonify({"errcode": 45065, "errmsg": f"clientmsgid exist rid: {rid}", "msg_id": row.payload["msg_id"]})
    period, limit = MASS_ALLOWANCE.get(current_app.config.get("WECHAT_ACCOUNT_TYPE") or "service", MASS_ALLOWANCE["service"])
    now = utcnow()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) if period == "month" else \
        now.replace(hour=0, minute=0, second=0, microsecond=0)
    used = db.session.scalar(select(func.count(SandboxRecord.id)).where(SandboxRecord.api.in_(("mass_sendall", "mass_send")),
                                                                        SandboxRecord.errcode == 0,
                                                                        SandboxRecord.created_at >= start)) or 0
    if used >= limit:
        return _err(45028, api=api)
    users = [u for u in (_user(o) for o in recipients) if u is not None]
    following = [u["openid"] for u in users if u["subscribed"]]
    msg_id = _new_msg_id()
    _record(api, {**body, "msg_id": msg_id, "recipients": len(recipients)})
    for openid in following:
        _record("mass_message", {"text": body["text"], "msg_id": msg_id}, openid=openid)
    _push_mass_finish(msg_id, total=len(recipients), sent=len(following))
    return jsonify({"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id, "msg_data_id": msg_id})


@bp.post("/wechat/cgi-bin/message/mass/sendall")
@token_checked("mass_sendall")
def mass_sendall():
    body = request.get_json(force=True)
    f = body.get("filter") or {}
    if f.get("is_to_all"):
        recipients = sorted({r.openid for r in db.session.scalars(select(SandboxRecord).where(
            SandboxRecord.api == "user_action", SandboxRecord.openid.is_not(None)))})
    else:
        tags, members = _tag_state()
        if f.get("tag_id") not in tags:
            return _err(45159, api="mass_sendall")
        recipients = sorted(members.get(f["tag_id"], ()))
    return _mass("mass_sendall", recipients)


@bp.post("/wechat/cgi-bin/message/mass/send")
@token_checked("mass_send")
def mass_send():
    body = request.get_json(force=True)
    touser = body.get("touser") or []
    if not isinstance(touser, list) or not 2 <= len(touser) <= 10_000:
        return _err(40130, api="mass_send")
    return _mass("mass_send", [str(o) for o in touser])


def _push_mass_finish(msg_id: int, total: int, sent: int) -> None:
    """MASSSENDJOBFINISH, a moment later, as WeChat reports a mass send."""
    if not current_app.config.get("SANDBOX_JOB_FINISH_EVENTS", True):
        return
    extra = (f"<MsgID>{msg_id}</MsgID><Status><![CDATA[send success]]></Status><TotalCount>{total}</TotalCount>"
             f"<FilterCount>{total}</FilterCount><SentCount>{sent}</SentCount><ErrorCount>{total - sent}</ErrorCount>")
    _push_event("MASSSENDJOBFINISH", "mphelper", extra)  # WeChat's 群发助手 sends it


# --- user tags ------------------------------------------------------------------------------------------
def _tag_state() -> tuple[dict[int, str], dict[int, set[str]]]:
    """The account's tags (id -> name; WeChat's own ids start at 100) and who carries each, replayed
    from the calls recorded."""
    tags: dict[int, str] = {}
    members: dict[int, set[str]] = {}
    for r in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api.in_(
            ("tag_create", "tag_delete", "tag_link")), SandboxRecord.errcode == 0).order_by(SandboxRecord.id)):
        p = r.payload
        if r.api == "tag_create":
            tags[p["id"]] = p["name"]
        elif r.api == "tag_delete":
            tags.pop(p["id"], None)
            members.pop(p["id"], None)
        else:
            (members.setdefault(p["tagid"], set()).add if p["on"] else members.setdefault(p["tagid"], set()).discard)(p["openid"])
    return tags, members


@bp.post("/wechat/cgi-bin/tags/create")
@token_checked("tag_create")
def tag_create():
    name = str(((request.get_json(force=True) or {}).get("tag") or {}).get("name") or "")
    tags, _ = _tag_state()
    if not name or len(name) > 30:
        return _err(45158, api="tag_create")
    if name in tags.values():
        return _err(45157, api="tag_create")
    if len(tags) >= 100:
        return _err(45056, api="tag_create")
    new_id = 100 + db.session.scalar(select(func.count(SandboxRecord.id)).where(SandboxRecord.api == "tag_create",
                                                                                 SandboxRecord.errcode == 0))
    _record("tag_create", {"id": new_id, "name": name})
    return jsonify({"tag": {"id": new_id, "name": name}})


@bp.get("/wechat/cgi-bin/tags/get")
@token_checked("tag_get")
def tag_get():
    tags, members = _tag_state()
    return jsonify({"tags": [{"id": i, "name": n, "count": len(members.get(i, ()))} for i, n in sorted(tags.items())]})


@bp.post("/wechat/cgi-bin/tags/delete")
@token_checked("tag_delete")
def tag_delete():
    tag_id = ((request.get_json(force=True) or {}).get("tag") or {}).get("id")
    if tag_id in (0, 1, 2):
        return _err(45058, api="tag_delete")
    if tag_id not in _tag_state()[0]:
        return _err(45159, api="tag_delete")
    _record("tag_delete", {"id": tag_id})
    return jsonify({"errcode": 0, "errmsg": "ok"})


def _tagging(on: bool):
    body = request.get_json(force=True) or {}
    api = "tag_batchtagging" if on else "tag_batchuntagging"
    tag_id, openids = body.get("tagid"), body.get("openid_list") or []
    tags, members = _tag_state()
    if tag_id not in tags:
        return _err(45159, api=api)
    if not isinstance(openids, list) or not openids or len(openids) > 50:
        return _err(40032, api=api)
    for openid in openids:
        if _user(str(openid)) is None:
            return _err(40003, api=api, openid=str(openid))
        if on and sum(1 for t, who in members.items() if openid in who and t != tag_id) >= 20:
            return _err(45059, api=api, openid=str(openid))
    for openid in openids:
        _record("tag_link", {"tagid": tag_id, "openid": openid, "on": on}, openid=openid)
    return jsonify({"errcode": 0, "errmsg": "ok"})


@bp.post("/wechat/cgi-bin/tags/members/batchtagging")
@token_checked("tag_batchtagging")
def tag_batchtagging():
    return _tagging(True)


@bp.post("/wechat/cgi-bin/tags/members/batchuntagging")
@token_checked("tag_batchuntagging")
def tag_batchuntagging():
    return _tagging(False)


@bp.post("/wechat/cgi-bin/tags/getidlist")
@token_checked("tag_getidlist")
def tag_getidlist():
    openid = str((request.get_json(force=True) or {}).get("openid") or "")
    if _user(openid) is None:
        return _err(40003, api="tag_getidlist", openid=openid)
    _, members = _tag_state()
    return jsonify({"tagid_list": sorted(t for t, who in members.items() if openid in who)})


# --- QR codes ------------------------------------------------------------------------------------------
@bp.post("/wechat/cgi-bin/qrcode/create")
@token_checked("qrcode_create")
def qrcode_create():
    body = request.get_json(force=True)
    action = body.get("action_name")
    scene = (body.get("action_info") or {}).get("scene") or {}
    if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
        return _err(40097, "invalid args", api="qrcode_create")
    if action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        sid = scene.get("scene_id")
        if not isinstance(sid, int) or (action == "QR_LIMIT_SCENE" and not 1 <= sid <= 100_000) or not 0 < sid < 2 ** 32:
            return _err(40097, "invalid args", api="qrcode_create")
    elif not 1 <= len(str(scene.get("scene_str") or "")) <= 64:
        return _err(40097, "invalid args", api="qrcode_create")
    ticket_value = "SBXQR_" + secrets.token_hex(12)
    out = {"ticket": ticket_value, "url": f"http://weixin.qq.com/q/{ticket_value}"}
    if action in ("QR_SCENE", "QR_STR_SCENE"):
        out["expire_seconds"] = min(int(body.get("expire_seconds") or DEFAULT_TEMPORARY_QR), 2_592_000)
    _record("qrcode_create", {**body, **out})
    return jsonify(out)


@bp.get("/wechat/cgi-bin/showqrcode")
def showqrcode():
    """The QR image for a ticket (WeChat serves it at mp.weixin.qq.com/cgi-bin/showqrcode)."""
    import qrcode

    ticket_value = request.args.get("ticket", "")
    row = next((r for r in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "qrcode_create")
                                              .order_by(SandboxRecord.id.desc()).limit(500))
                if r.payload.get("ticket") == ticket_value), None)
    if row is None:
        abort(404)
    expires = row.payload.get("expire_seconds")
    if expires and utcnow() - row.created_at > timedelta(seconds=expires):
        abort(404)
    buf = io.BytesIO()
    qrcode.make(row.payload["url"]).save(buf, "PNG")
    return Response(buf.getvalue(), mimetype="image/png")


# --- menu ----------------------------------------------------------------------------------------------
MENU_TYPES = {"click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin",
              "location_select", "media_id", "article_id", "article_view_limited", "miniprogram"}


def _menu_error(menu: dict) -> int | None:
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    for b in buttons:
        subs = b.get("sub_button")
        if len((b.get("name") or "").encode()) == 0 or len((b.get("name") or "").encode()) > 16:
            return 40018
        if subs:
            if not 1 <= len(subs) <= 5:
                return 40016
            for sb in subs:
                if not 1 <= len((sb.get("name") or "").encode()) <= 60:
                    return 40018
                if sb.get("type") not in MENU_TYPES:
                    return 40017
                if len((sb.get("key") or "").encode()) > 128:
                    return 40019
        elif b.get("type") not in MENU_TYPES:
            return 40017
        elif len((b.get("key") or "").encode()) > 128:
            return 40019
    return None


@bp.post("/wechat/cgi-bin/menu/create")
@token_checked("menu_create")
def menu_create():
    menu = request.get_json(force=True)
    code = _menu_error(menu)
    if code:
        return _err(code, api="menu_create")
    _record("menu_create", menu)
    return jsonify({"errcode": 0, "errmsg": "ok"})


def _current_menu() -> dict | None:
    row = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api.in_(("menu_create", "menu_delete")),
                                                         SandboxRecord.errcode == 0)
                             .order_by(SandboxRecord.id.desc())).first()
    return row.payload if row is not None and row.api == "menu_create" else None


@bp.get("/wechat/cgi-bin/menu/get")
@token_checked("menu_get")
def menu_get():
    menu = _current_menu()
    if menu is None:
        return _err(46003, "menu no exist")
    return jsonify({"menu": menu})


@bp.get("/wechat/cgi-bin/menu/delete")
@token_checked("menu_delete")
def menu_delete():
    _record("menu_delete", {})
    return jsonify({"errcode": 0, "errmsg": "ok"})


# --- users ---------------------------------------------------------------------------------------------
@bp.get("/wechat/cgi-bin/user/info")
@token_checked("user_info")
def user_info():
    openid = request.args.get("openid", "")
    user = _user(openid)
    if user is None:
        return _err(40003, api="user_info", openid=openid)
    _record("user_info", {"openid": openid}, openid=openid)
    if not user["subscribed"]:
        return jsonify({"subscribe": 0, "openid": openid})
    scene = user["scene"]
    return jsonify({"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": user["subscribe_time"],
                    "remark": "", "groupid": 0, "tagid_list": [],
                    "subscribe_scene": "ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH",
                    "qr_scene": int(scene) if scene and scene.isdigit() else 0,
                    "qr_scene_str": scene if scene and not scene.isdigit() else ""})


# --- media ---------------------------------------------------------------------------------------------
@bp.post("/wechat/cgi-bin/media/upload")
@token_checked("media_upload")
def media_upload():
    kind = request.args.get("type", "")
    f = request.files.get("media")
    if kind not in ("image", "voice", "video", "thumb") or f is None:
        return _err(40004 if f is None else 40005, "invalid media type", api="media_upload")
    data = f.read()
    media_id = "SBXMEDIA_" + secrets.token_hex(16)
    _record("media_upload", {"media_id": media_id, "type": kind, "filename": f.filename or "upload",
                             "mimetype": f.mimetype, "data": data.hex()})
    return jsonify({"type": kind, "media_id": media_id, "created_at": int(time.time())})


def give_media(image: bytes | None = None, filename: str = "photo.jpg") -> str:
    """A media id for a picture a user 'uploaded in WeChat' (wx.uploadImage): tests and the
    simulator use it; the product downloads it with media/get like a real one."""
    if image is None:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (7, 193, 96)).save(buf, "JPEG")
        image = buf.getvalue()
    media_id = "SBXMEDIA_" + secrets.token_hex(16)
    _record("media_upload", {"media_id": media_id, "type": "image", "filename": filename, "mimetype": "image/jpeg",
                             "data": image.hex()})
    return media_id


@bp.post("/saw")
def sandbox_saw():
    """``POST /sandbox/saw`` (the callback's XML as the body): a driver outside this process that
    plays WeChat (a benchmark, a drill) tells the sandbox what the user did."""
    saw(request.get_data(as_text=True))
    return jsonify({"ok": True})


@bp.post("/jssdk/config")
def sandbox_jssdk_config():
    """``POST /sandbox/jssdk/config`` ({appId, timestamp, nonceStr, signature, url}): what the WeChat client checks on
    ``wx.config`` — the AppID, and the signature against every jsapi_ticket the sandbox issued in the last two hours
    (sha1 of ``jsapi_ticket=…&noncestr=…&timestamp=…&url=…``). Answers ``config:ok`` or, as WeChat,
    ``config:invalid signature`` / ``config:invalid url domain``. Tests' stand-in for the client's JS-SDK uses it."""
    body = request.get_json(silent=True) or {}
    refused, url = js_config_refusal(body, current_app.config.get("WECHAT_APPID"), "ticket")
    if refused is None:
        _record("jssdk_config", {"url": url})
    return jsonify({"errMsg": {None: "config:ok", "appid": "config:fail,invalid appid", "domain": "config:invalid url domain",
                               "signature": "config:invalid signature"}[refused]})


def js_config_refusal(body: dict, app_id: str | None, ticket_api: str) -> tuple[str | None, str]:
    """What a client's JS-SDK checks on ``wx.config`` (WeChat's and WeCom's alike): the app id, the page's domain
    (``PUBLIC_BASE_URL``'s) and the signature — sha1 of ``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` — against
    every ticket recorded under ``ticket_api`` in the last two hours. Answers (None, url) when accepted, else
    ("appid" | "domain" | "signature", url)."""
    import hashlib

    url = str(body.get("url") or "").split("#")[0]
    if body.get("appId") != app_id:
        return "appid", url
    host = urlparse(url).netloc
    if not host or host != urlparse(current_app.config.get("PUBLIC_BASE_URL") or "").netloc:
        return "domain", url
    since = utcnow() - timedelta(seconds=7200)
    for row in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == ticket_api, SandboxRecord.created_at >= since)
                                  .order_by(SandboxRecord.id.desc()).limit(50)):
        raw = f"jsapi_ticket={row.payload.get('ticket')}&noncestr={body.get('nonceStr')}&timestamp={body.get('timestamp')}&url={url}"
        if hashlib.sha1(raw.encode("utf-8")).hexdigest() == body.get("signature"):
            return None, url
    return "signature", url


def _uploaded(media_id: str):
    """The media_upload record that issued ``media_id`` (the newest 500 are searched), or None."""
    return next((r for r in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "media_upload")
                                               .order_by(SandboxRecord.id.desc()).limit(500))
                 if r.payload.get("media_id") == media_id), None)


@bp.get("/media/<media_id>")
def sandbox_show_media(media_id: str):
    """``GET /sandbox/media/<media_id>``: what the user's WeChat shows of a picture the account sent (the simulator)."""
    row = _uploaded(media_id)
    if row is None:
        return Response(status=404)
    return Response(bytes.fromhex(row.payload["data"]), mimetype=row.payload.get("mimetype") or "image/jpeg")


@bp.post("/media")
def sandbox_give_media():
    """``POST /sandbox/media``: a media id as if a user uploaded a picture inside WeChat."""
    return jsonify({"media_id": give_media()}), 201


@bp.get("/wechat/cgi-bin/media/get")
@token_checked("media_get")
def media_get():
    media_id = request.args.get("media_id", "")
    row = _uploaded(media_id)
    if row is None or utcnow() - row.created_at > MEDIA_TTL:
        return _err(40007, api="media_get")
    _record("media_get", {"media_id": media_id})
    resp = Response(bytes.fromhex(row.payload["data"]), mimetype=row.payload.get("mimetype") or "image/jpeg")
    resp.headers["Content-Disposition"] = f'attachment; filename="{row.payload.get("filename") or "media.jpg"}"'
    return resp


# --- OAuth (网页授权) ------------------------------------------------------------------------------------
def _oauth_domain_ok(redirect_uri: str) -> bool:
    allowed = urlparse(current_app.config["PUBLIC_BASE_URL"]).hostname
    host = urlparse(redirect_uri).hostname
    return bool(host) and host == allowed


@bp.get("/oauth2/authorize")
def oauth_authorize():
    """Stands in for open.weixin.qq.com: the simulated phone's openid consents at once."""
    from wxapp.config import wechat_appid

    openid = request.args.get("openid") or request.cookies.get("sandbox_openid")
    redirect_uri, state = request.args.get("redirect_uri", ""), request.args.get("state", "")
    if request.args.get("appid") and request.args["appid"] != wechat_appid():
        return Response("40013 invalid appid（AppID 不正确）", status=400, mimetype="text/plain")
    if not _oauth_domain_ok(redirect_uri):
        return Response("10003 redirect_uri 域名与后台配置不一致", status=400, mimetype="text/plain")
    if not openid:
        return render_template("sandbox/pick_user.html", args=request.args)
    code = "SBXCODE_" + secrets.token_hex(8)
    _record("oauth_code", {"code": code, "openid": openid, "scope": request.args.get("scope") or "snsapi_base",
                           "used": False}, openid=openid)
    sep = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{sep}code={code}&state={state}")


def _oauth_credentials_error():
    from wxapp.config import wechat_appid

    if request.args.get("appid") != wechat_appid():
        return _err(40013)
    if request.args.get("secret") != (current_app.config.get("WECHAT_SECRET") or "dev-secret"):
        return _err(40125)
    return None


def _issue_oauth_token(openid: str, scope: str) -> dict:
    out = {"access_token": "SBX_OAUTH_" + secrets.token_hex(12), "expires_in": 7200,
           "refresh_token": "SBX_REFRESH_" + secrets.token_hex(12), "openid": openid, "scope": scope}
    _record("oauth_token", out, openid=openid)
    return out


def _oauth_row(field: str, value: str) -> SandboxRecord | None:
    return next((r for r in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "oauth_token")
                                               .order_by(SandboxRecord.id.desc()).limit(500))
                 if r.payload.get(field) == value), None)


@bp.get("/wechat/sns/oauth2/access_token")
def oauth_exchange():
    bad = _oauth_credentials_error()
    if bad:
        return bad
    code = request.args.get("code", "")
    rows = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "oauth_code").order_by(SandboxRecord.id.desc())
                              .limit(200)).all()
    match = next((r for r in rows if r.payload.get("code") == code), None)
    if match is None:
        return _err(40029)
    if match.payload.get("used"):
        return _err(40163)
    match.payload = {**match.payload, "used": True}
    db.session.commit()
    return jsonify(_issue_oauth_token(match.payload["openid"], match.payload.get("scope", "snsapi_base")))


@bp.get("/wechat/sns/oauth2/refresh_token")
def oauth_refresh():
    row = _oauth_row("refresh_token", request.args.get("refresh_token", ""))
    if row is None:
        return _err(40030, "invalid refresh_token")
    if utcnow() - row.created_at > timedelta(days=30):
        return _err(42002)
    return jsonify(_issue_oauth_token(row.payload["openid"], row.payload["scope"]))


def _oauth_token_row():
    row = _oauth_row("access_token", request.args.get("access_token", ""))
    if row is None or row.payload["openid"] != request.args.get("openid"):
        return None
    if utcnow() - row.created_at > timedelta(seconds=row.payload.get("expires_in", 7200)):
        return None
    return row


@bp.get("/wechat/sns/auth")
def oauth_check():
    return jsonify({"errcode": 0, "errmsg": "ok"}) if _oauth_token_row() else _err(40001)


@bp.get("/wechat/sns/userinfo")
def oauth_userinfo():
    row = _oauth_token_row()
    if row is None:
        return _err(40001)
    if row.payload["scope"] != "snsapi_userinfo":
        return _err(48001)
    return jsonify({"openid": row.payload["openid"], "nickname": "微信用户", "sex": 0, "province": "", "city": "",
                    "country": "", "headimgurl": "", "privilege": []})


# --- test and demo helpers -----------------------------------------------------------------------------
@bp.post("/inject")
def inject():
    """Inject errors: ``{"api": "custom_send", "errcode": 45047, "times": 1, "delay": 0}``."""
    spec = request.get_json(force=True)
    _record(f"inject:{spec['api']}", {"errcode": spec.get("errcode", 0), "times": spec.get("times", 1),
                                      "delay": spec.get("delay", 0)})
    return jsonify({"ok": True})


@bp.get("/outbox")
def sandbox_outbox():
    """What the sandbox WeChat delivered to a user: customer-service and template messages."""
    openid = request.args.get("openid")
    stmt = select(SandboxRecord).where(SandboxRecord.api.in_(("custom_send", "template_send", "mass_message")),
                                       SandboxRecord.errcode == 0)
    if openid:
        stmt = stmt.where(SandboxRecord.openid == openid)
    rows = db.session.scalars(stmt.order_by(SandboxRecord.id.desc()).limit(100)).all()
    return jsonify({"items": [{"id": r.id, "api": r.api, "openid": r.openid, "payload": r.payload,
                               "at": r.created_at.isoformat() + "Z"} for r in rows], "total": len(rows)})


@bp.get("/sms")
def sandbox_sms():
    """The last text messages the logging SMS sender 'sent' (verification codes), newest first."""
    from crm_core.sms import SmsMessage

    phone = request.args.get("phone")
    stmt = select(SmsMessage)
    if phone:
        stmt = stmt.where(SmsMessage.phone == phone)
    rows = db.session.scalars(stmt.order_by(SmsMessage.id.desc()).limit(20)).all()
    return jsonify({"items": [{"phone": r.phone, "text": r.text, "at": r.created_at.isoformat() + "Z",
                               "code": (re.search(r"\d{6}", r.text) or [None])[0]} for r in rows]})


@bp.get("/calls")
def calls():
    """Every recorded call (tests and debugging): ``?api=token``."""
    stmt = select(SandboxRecord)
    if request.args.get("api"):
        stmt = stmt.where(SandboxRecord.api == request.args["api"])
    rows = db.session.scalars(stmt.order_by(SandboxRecord.id)).all()
    return jsonify({"items": [{"api": r.api, "openid": r.openid, "payload": r.payload, "errcode": r.errcode} for r in rows],
                    "total": len(rows)})


# --- the phone simulator ------------------------------------------------------------------
def menu_definition() -> dict:
    return json.loads((Path(__file__).parent / "menu.json").read_text(encoding="utf-8"))


@bp.get("/phone")
def phone():
    """The phone shows the menu WeChat holds (the last one pushed), as a real phone does; the
    repository's menu.json until one is."""
    menu = _current_menu() or menu_definition()
    return render_template("sandbox/phone.html", menu=menu["button"])


@bp.post("/phone/send")
def phone_send():
    """Send one user action as a signed (and, in safe mode, encrypted) callback."""
    from wxapp.official_account.simulate import message_xml, read_reply, signed_request

    data = request.get_json(force=True)
    openid = (data.get("openid") or "").strip()
    if not openid:
        return jsonify({"error": {"code": "validation_failed", "message": "请先填写 openid", "fields": {"openid": "required"}}}), 422
    kind = data.get("kind")
    kw = {k: v for k, v in data.items() if k not in ("openid", "kind")}
    cfg = current_app.config
    try:
        xml = message_xml(kind, openid, **kw)
    except (KeyError, ValueError) as exc:
        return jsonify({"error": {"code": "validation_failed", "message": f"参数不完整：{exc}", "fields": {}}}), 422
    saw(xml)  # WeChat knows what its users did
    query, body = signed_request(xml, cfg["WECHAT_TOKEN"], aes_key=cfg.get("WECHAT_AES_KEY"), appid=cfg["WECHAT_APPID"])
    resp = current_app.test_client().post(f"/wechat/callback?{query}", data=body, content_type="text/xml")
    reply = read_reply(resp.get_data(), cfg["WECHAT_TOKEN"], cfg.get("WECHAT_AES_KEY"), cfg["WECHAT_APPID"])
    out = jsonify({"status": resp.status_code, "reply": reply})
    out.set_cookie("sandbox_openid", openid, samesite="Lax")
    return out
