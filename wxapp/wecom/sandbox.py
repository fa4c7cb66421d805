"""The sandbox's 企业微信 (development and tests): the WeCom API the product calls, refusing what WeCom refuses —
a wrong corpid (40013) or secret (40001), an unknown or expired token (40014 / 42001), a wrong agentid (40056), a member
the company does not have (81013), a used or unknown OAuth code (40029) — and a phone page showing what each member's
WeCom app received. Its members are the employees with a WeCom UserID."""
from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request
from sqlalchemy import select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.org.models import Employee
from crm_core.wechat.models import SandboxRecord

bp = Blueprint("wecom_sandbox", __name__, url_prefix="/sandbox/wecom")
ERRMSG = {40001: "invalid credential", 40013: "invalid corpid", 40014: "invalid access_token", 40029: "invalid code",
          40056: "invalid agentid", 42001: "access_token expired", 81013: "user & party & tag all invalid"}


@bp.before_request
def _dev_only():
    if not current_app.config["DEV_ROUTES"]:
        abort(404)


def _record(api: str, payload: dict, userid: str | None = None, errcode: int = 0) -> SandboxRecord:
    row = SandboxRecord(api=api, openid=userid, payload=payload, errcode=errcode, created_at=utcnow())
    db.session.add(row)
    db.session.commit()
    return row


def _err(errcode: int, api: str | None = None):
    if api:
        _record(api, {"refused": errcode, **(request.get_json(silent=True) or {})}, errcode=errcode)
    return jsonify({"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')}, hint: [{secrets.token_hex(6)}]"})


def _token_ok() -> int:
    token = request.args.get("access_token", "")
    rows = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "wecom_token")
                              .order_by(SandboxRecord.id.desc()).limit(2)).all()
    row = next((r for r in rows if r.payload.get("access_token") == token), None)
    if row is None:
        return 40014
    if utcnow() - row.created_at > timedelta(seconds=7200):
        return 42001
    return 0


def _members() -> set[str]:
    return set(db.session.scalars(select(Employee.wecom_userid).where(Employee.wecom_userid.is_not(None),
                                                                        Employee.active.is_(True))))


@bp.get("/cgi-bin/gettoken")
def gettoken():
    cfg = current_app.config
    if request.args.get("corpid") != cfg.get("WECOM_CORP_ID"):
        return _err(40013)
    if request.args.get("corpsecret") != cfg.get("WECOM_SECRET"):
        return _err(40001)
    token = "SBXW_" + secrets.token_hex(16)
    _record("wecom_token", {"access_token": token})
    return jsonify({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})


@bp.post("/cgi-bin/message/send")
def message_send():
    bad = _token_ok()
    if bad:
        return _err(bad, "wecom_send")
    body = request.get_json(force=True, silent=True) or {}
    if str(body.get("agentid")) != str(current_app.config.get("WECOM_AGENT_ID")):
        return _err(40056, "wecom_send")
    wanted = [u for u in str(body.get("touser") or "").split("|") if u]
    members = _members()
    valid = [u for u in wanted if u in members]
    if not valid:
        return _err(81013, "wecom_send")
    msgid = "SBXWMSG_" + secrets.token_hex(8)
    for userid in valid:
        _record("wecom_send", {**body, "msgid": msgid}, userid=userid)
    invalid = "|".join(u for u in wanted if u not in members)
    return jsonify({"errcode": 0, "errmsg": "ok", "invaliduser": invalid, "msgid": msgid})


@bp.get("/cgi-bin/get_jsapi_ticket")
def get_jsapi_ticket():
    """The company's jsapi_ticket (WeCom's JS-SDK signature inside 企业微信)."""
    bad = _token_ok()
    if bad:
        return _err(bad, "wecom_ticket")
    ticket = "SBXW_TICKET_" + secrets.token_hex(8)
    _record("wecom_ticket", {"ticket": ticket})
    return jsonify({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200})


@bp.post("/jssdk/config")
def jssdk_config():
    """``POST /sandbox/wecom/jssdk/config`` ({appId, timestamp, nonceStr, signature, url}): what the WeCom client checks
    on ``wx.config`` — the CorpID, the page's domain, the signature against the tickets of the last two hours. Answers
    ``config:ok`` or WeCom's ``config:fail`` wording (the tests' stand-in JS-SDK asks it inside 企业微信)."""
    from wxapp.official_account.sandbox import js_config_refusal

    refused, url = js_config_refusal(request.get_json(silent=True) or {}, current_app.config.get("WECOM_CORP_ID"), "wecom_ticket")
    if refused is None:
        _record("wecom_jssdk_config", {"url": url})
    return jsonify({"errMsg": {None: "config:ok", "appid": "config:fail,invalid corpid", "domain": "config:fail,invalid url domain",
                               "signature": "config:fail,invalid signature"}[refused]})


@bp.get("/connect/oauth2/authorize")
def authorize():
    """WeCom's authorize page: the member of the sandbox phone (``?userid=`` or its cookie) consents at once."""
    cfg = current_app.config
    redirect_uri, state = request.args.get("redirect_uri", ""), request.args.get("state", "")
    if request.args.get("appid") != cfg.get("WECOM_CORP_ID"):
        return "40013 invalid corpid（CorpID 不正确）", 400
    if urlparse(redirect_uri).hostname != urlparse(cfg["PUBLIC_BASE_URL"]).hostname:
        return "redirect_uri 需使用应用可信域名", 400
    userid = request.args.get("userid") or request.cookies.get("sandbox_wecom_userid")
    if not userid:
        return render_template("sandbox/wecom_pick.html", members=sorted(_members()), args=request.args)
    code = "SBXWCODE_" + secrets.token_hex(8)
    _record("wecom_code", {"code": code, "userid": userid, "used": False}, userid=userid)
    return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}code={code}&state={state}")


@bp.get("/cgi-bin/user/getuserinfo")
@bp.get("/cgi-bin/auth/getuserinfo")
def getuserinfo():
    bad = _token_ok()
    if bad:
        return _err(bad)
    code = request.args.get("code", "")
    rows = db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "wecom_code").order_by(SandboxRecord.id.desc())
                              .limit(200)).all()
    row = next((r for r in rows if r.payload.get("code") == code), None)
    if row is None or row.payload.get("used") or utcnow() - row.created_at > timedelta(minutes=5):
        return _err(40029)
    row.payload = {**row.payload, "used": True}
    db.session.commit()
    userid = row.payload["userid"]
    if userid not in _members():  # WeCom answers a non-member with an OpenId
        return jsonify({"errcode": 0, "errmsg": "ok", "OpenId": "SBXW_OPEN_" + userid, "DeviceId": ""})
    return jsonify({"errcode": 0, "errmsg": "ok", "UserId": userid, "DeviceId": ""})


@bp.get("/outbox")
def outbox():
    """What a member's WeCom app received, newest first (the phone page polls it)."""
    stmt = select(SandboxRecord).where(SandboxRecord.api == "wecom_send", SandboxRecord.errcode == 0)
    if request.args.get("userid"):
        stmt = stmt.where(SandboxRecord.openid == request.args["userid"])
    rows = db.session.scalars(stmt.order_by(SandboxRecord.id.desc()).limit(100)).all()
    return jsonify({"items": [{"id": r.id, "userid": r.openid, "payload": r.payload, "at": r.created_at.isoformat() + "Z"}
                              for r in rows]})


@bp.get("/phone")
def phone():
    """A member's WeCom on a phone: the application's messages; a card's 详情 opens its page inside WeCom."""
    resp = current_app.make_response(render_template("sandbox/wecom_phone.html", members=sorted(_members()),
                                                     userid=request.args.get("userid", "")))
    if request.args.get("userid"):
        resp.set_cookie("sandbox_wecom_userid", request.args["userid"], samesite="Lax")
    return resp
