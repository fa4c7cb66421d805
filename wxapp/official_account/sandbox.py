"""The local WeChat sandbox (development and tests only; absent in production).

``/sandbox/wechat/...`` plays the subset of WeChat's API the product uses (token, JS-SDK
ticket, template and customer-service messages, QR codes, menu, OAuth code exchange, user
info, media download), records what it received, and can inject errors (40001, 45047, a
slow answer). ``/sandbox/phone`` is a phone simulator that sends signed callbacks;
``/sandbox/outbox?openid=`` lists what WeChat "delivered" to a user.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request
from sqlalchemy import select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.wechat.models import SandboxRecord

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
OLD_TOKEN_GRACE = 300  # WeChat keeps the previous token valid for 5 minutes


@bp.before_request
def _dev_only():
    if not current_app.config["DEV_ROUTES"]:
        abort(404)


def _record(api: str, payload: dict, openid: str | None = None, errcode: int = 0) -> None:
    db.session.add(SandboxRecord(api=api, openid=openid, payload=payload, errcode=errcode, created_at=utcnow()))
    db.session.commit()


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


def _err(errcode: int, errmsg: str = "sandbox error"):
    return jsonify({"errcode": errcode, "errmsg": errmsg})


def _check_token(api: str):
    """Valid: the latest token, or the previous one within its grace period."""
    inj = _injected(api)
    if inj:
        _record(api, {"injected": inj["errcode"]}, errcode=inj["errcode"])
        return _err(inj["errcode"], inj.get("errmsg", "injected"))
    token = request.args.get("access_token", "")
    rows = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "token").order_by(SandboxRecord.id.desc()).limit(2)).all()
    if rows and rows[0].payload.get("access_token") == token:
        return None
    if len(rows) > 1 and rows[1].payload.get("access_token") == token and utcnow() - rows[0].created_at < timedelta(seconds=OLD_TOKEN_GRACE):
        return None
    return _err(40001, "invalid credential, access_token is invalid or not latest")


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
        return _err(inj["errcode"])
    value = "SBX_" + secrets.token_hex(16)
    _record("token", {"access_token": value, "appid": request.args.get("appid")})
    return jsonify({"access_token": value, "expires_in": 7200})


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
    _record("custom_send", body, openid=body.get("touser"))
    return jsonify({"errcode": 0, "errmsg": "ok"})


@bp.post("/wechat/cgi-bin/message/template/send")
@token_checked("template_send")
def template_send():
    body = request.get_json(force=True)
    _record("template_send", body, openid=body.get("touser"))
    return jsonify({"errcode": 0, "errmsg": "ok", "msgid": int(time.time() * 1000)})


@bp.post("/wechat/cgi-bin/qrcode/create")
@token_checked("qrcode_create")
def qrcode_create():
    body = request.get_json(force=True)
    ticket_value = "SBXQR_" + secrets.token_hex(8)
    _record("qrcode_create", {**body, "ticket": ticket_value})
    return jsonify({"ticket": ticket_value, "expire_seconds": body.get("expire_seconds"),
                    "url": f"http://weixin.qq.com/q/{ticket_value}"})


@bp.post("/wechat/cgi-bin/menu/create")
@token_checked("menu_create")
def menu_create():
    _record("menu_create", request.get_json(force=True))
    return jsonify({"errcode": 0, "errmsg": "ok"})


@bp.get("/wechat/cgi-bin/user/info")
@token_checked("user_info")
def user_info():
    openid = request.args.get("openid", "")
    _record("user_info", {"openid": openid}, openid=openid)
    return jsonify({"subscribe": 1, "openid": openid, "nickname": f"微信用户{openid[-4:]}", "sex": 0,
                    "headimgurl": f"https://thirdwx.qlogo.cn/sandbox/{openid}.png", "language": "zh_CN"})


@bp.get("/wechat/cgi-bin/media/get")
@token_checked("media_get")
def media_get():
    from PIL import Image

    media_id = request.args.get("media_id", "")
    _record("media_get", {"media_id": media_id})
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (7, 193, 96)).save(buf, "JPEG")
    return Response(buf.getvalue(), mimetype="image/jpeg")


@bp.get("/wechat/sns/oauth2/access_token")
def oauth_exchange():
    code = request.args.get("code", "")
    row = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "oauth_code").order_by(SandboxRecord.id.desc())
                             .limit(200)).all()
    match = next((r for r in row if r.payload.get("code") == code), None)
    if match is None:
        return _err(40029, "invalid code")
    if match.payload.get("used"):
        return _err(40163, "code been used")
    match.payload = {**match.payload, "used": True}
    db.session.commit()
    return jsonify({"access_token": "SBX_OAUTH_" + secrets.token_hex(8), "expires_in": 7200, "refresh_token": "r",
                    "openid": match.payload["openid"], "scope": match.payload.get("scope", "snsapi_base")})


@bp.get("/wechat/sns/userinfo")
def oauth_userinfo():
    openid = request.args.get("openid", "")
    return jsonify({"openid": openid, "nickname": f"微信用户{openid[-4:]}", "headimgurl": ""})


@bp.get("/oauth2/authorize")
def oauth_authorize():
    """Stands in for open.weixin.qq.com: the simulated phone's openid consents at once."""
    openid = request.args.get("openid") or request.cookies.get("sandbox_openid")
    redirect_uri, state = request.args.get("redirect_uri", ""), request.args.get("state", "")
    if not openid:
        return render_template("sandbox/pick_user.html", args=request.args)
    code = "SBXCODE_" + secrets.token_hex(8)
    _record("oauth_code", {"code": code, "openid": openid, "scope": request.args.get("scope"), "used": False}, openid=openid)
    sep = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{sep}code={code}&state={state}")


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
    stmt = select(SandboxRecord).where(SandboxRecord.api.in_(("custom_send", "template_send")))
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
    return render_template("sandbox/phone.html", menu=menu_definition()["button"])


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
    query, body = signed_request(xml, cfg["WECHAT_TOKEN"], aes_key=cfg.get("WECHAT_AES_KEY"), appid=cfg["WECHAT_APPID"])
    resp = current_app.test_client().post(f"/wechat/callback?{query}", data=body, content_type="text/xml")
    reply = read_reply(resp.get_data(), cfg["WECHAT_TOKEN"], cfg.get("WECHAT_AES_KEY"), cfg["WECHAT_APPID"])
    out = jsonify({"status": resp.status_code, "reply": reply})
    out.set_cookie("sandbox_openid", openid, samesite="Lax")
    return out
