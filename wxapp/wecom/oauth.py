"""WeCom OAuth for the staff pages: ``/h5/wecom/start?next=`` → WeCom's authorize page → ``/h5/wecom/callback``."""
from __future__ import annotations

import secrets
from urllib.parse import quote

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from wechatpy.exceptions import WeChatClientException

from wxapp import wecom
from wxapp.guards import safe_next

bp = Blueprint("wecom_oauth", __name__, url_prefix="/h5/wecom")
AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"


def _authorize_base() -> str:
    cfg = current_app.config
    if cfg["DEV_ROUTES"] and "/sandbox/" in cfg["WECOM_API_BASE"]:  # the sandbox plays WeCom's authorize page too
        return cfg["WECOM_API_BASE"].split("/sandbox/")[0] + "/sandbox/wecom/connect/oauth2/authorize"
    return AUTHORIZE


def _refuse(message: str, status: int = 400):
    return render_template("error.html", status=status, code="wecom_login_failed", message=message, fields={}), status


@bp.get("/start")
def start():
    if not wecom.configured():
        return _refuse("本系统未启用企业微信登录，请在微信中打开。", 404)
    cfg = current_app.config
    state = secrets.token_hex(16)
    session["wecom_state"] = state
    session["wecom_next"] = safe_next(request.args.get("next"), url_for("staff_h5.home"), ("/h5/",))
    redirect_uri = cfg["PUBLIC_BASE_URL"].rstrip("/") + url_for("wecom_oauth.callback")  # never the Host header
    url = (f"{_authorize_base()}?appid={quote(cfg['WECOM_CORP_ID'])}&redirect_uri={quote(redirect_uri, safe='')}"
           f"&response_type=code&scope=snsapi_base&state={state}&agentid={quote(str(cfg['WECOM_AGENT_ID']))}")
    return redirect(url if "/sandbox/" in url else url + "#wechat_redirect")


@bp.get("/callback")
def callback():
    """The code gives the member's UserID (once); the UserID gives the employee and their staff session."""
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not state or state != session.pop("wecom_state", None) or not code:
        return _refuse("登录链接已失效，请从企业微信应用重新打开。")
    try:
        info = wecom.client().oauth.get_user_info(code)
    except WeChatClientException as exc:
        return _refuse(f"企业微信登录失败（{exc.errcode}），请重新打开。")
    userid = info.get("UserId") or info.get("userid")
    if not userid:  # a visitor outside the company (OpenId only)
        return _refuse("仅限本企业成员使用。", 403)
    user = wecom.user_for(userid)
    if user is None:
        return _refuse(f"企业微信账号 {userid} 没有关联 CRM 职员，请联系管理员在组织设置中填写其企业微信账号。", 403)
    nxt = session.pop("wecom_next", None) or url_for("staff_h5.home")
    session[wecom.SESSION_USER], session[wecom.SESSION_CORP] = userid, current_app.config["WECOM_CORP_ID"]
    session.permanent = True
    return redirect(nxt)
