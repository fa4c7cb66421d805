"""WeChat OAuth for ``/h5`` pages and the JS-SDK config endpoint."""
from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from pydantic import Field
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from crm_core.errors import ValidationFailed
from wxapp.auth import jssdk_client, start_wechat_session, wechat_openid
from wxapp.config import wechat_appid
from wxapp.errors import error_response
from wxapp.guards import safe_next
from wxapp.openapi import Model, h5_api

bp = Blueprint("wechat_oauth", __name__, url_prefix="/h5")

JS_APIS = ["updateTimelineShareData", "updateAppMessageShareData", "getLocation", "openLocation", "chooseImage", "uploadImage"]


def _oauth(scope: str, state: str) -> WeChatOAuth:
    cfg = current_app.config
    # the redirect_uri comes from PUBLIC_BASE_URL, never from the request's Host header
    redirect_uri = cfg["PUBLIC_BASE_URL"].rstrip("/") + url_for("wechat_oauth.callback")
    oauth = WeChatOAuth(wechat_appid(), cfg["WECHAT_SECRET"] or "dev-secret", redirect_uri, scope=scope, state=state)
    oauth.API_BASE_URL = cfg["WECHAT_API_BASE"].rstrip("/") + "/"
    if cfg["DEV_ROUTES"] and "/sandbox/" in cfg["WECHAT_API_BASE"]:
        oauth.OAUTH_BASE_URL = cfg["WECHAT_API_BASE"].split("/sandbox/")[0] + "/sandbox/"
    return oauth


def _safe_next(value: str | None) -> str:
    return safe_next(value, url_for("h5.home"), ("/h5/", "/m/"))  # H5 pages and material pages


@bp.get("/oauth/start")
def start():
    """Redirect to WeChat's authorize page; ``scope=userinfo`` when a page needs the nickname."""
    scope = "snsapi_userinfo" if request.args.get("scope") == "userinfo" else "snsapi_base"
    state = secrets.token_hex(16)  # [a-zA-Z0-9], bound to this session
    session["wx_oauth_state"] = state
    session["wx_oauth_next"] = _safe_next(request.args.get("next"))
    url = _oauth(scope, state).authorize_url
    if "/sandbox/" in url:  # the sandbox's authorize page has no fragment
        url = url.replace("#wechat_redirect", "")
    return redirect(url)


@bp.get("/oauth/callback")
def callback():
    """Exchange the code once. A repeated callback (code already used: 40163) keeps the
    session it already has instead of showing an error page."""
    state, code = request.args.get("state", ""), request.args.get("code", "")
    nxt = session.get("wx_oauth_next") or url_for("h5.home")
    if not state or state != session.get("wx_oauth_state"):
        if wechat_openid():
            return redirect(nxt)
        return render_template("h5/message.html", title="请重新打开", text="页面已过期，请从公众号菜单重新进入。"), 400
    if not code:  # the user refused consent
        return render_template("h5/message.html", title="未授权", text="需要授权后才能使用此功能。"), 403
    try:
        data = _oauth("snsapi_base", state).fetch_access_token(code)
    except WeChatOAuthException as exc:
        if exc.errcode == 40163 and wechat_openid():
            return redirect(nxt)
        if exc.errcode == 40163:  # used by a double-loaded page that lost its session: start over once
            return redirect(url_for("wechat_oauth.start", next=nxt))
        return render_template("h5/message.html", title="登录失败", text="微信授权失败，请稍后重试。"), 502
    session.pop("wx_oauth_state", None)
    start_wechat_session(data["openid"])
    return redirect(nxt)


def _strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


class JssdkQuery(Model):
    url: str = Field(description="the page's full URL (the fragment is removed before signing)")


@h5_api.describe("/h5/api/jssdk-config", "GET", summary="wx.config for a page (JS-SDK signature)", tags=("wechat",),
                 query=JssdkQuery, auth=False)
@bp.get("/api/jssdk-config")
def jssdk_config():
    """``wx.config`` for a page URL (the fragment is removed before signing), signed for the client asking: the
    official account's inside WeChat, the company's (CorpID, ``beta``) inside 企业微信."""
    from wxapp.official_account.client import get_client

    url = request.args.get("url", "")
    if not url.startswith(("http://", "https://")) or len(url) > 1000:
        raise ValidationFailed("url 必须是完整的页面地址。", fields={"url": "absolute http(s) URL required"})
    noncestr, timestamp = secrets.token_hex(8), int(time.time())
    try:
        if jssdk_client() == "wecom":  # inside 企业微信: the corp's jsapi_ticket and CorpID sign it (wx.config beta)
            from wxapp import wecom

            return jsonify(wecom.jssdk_config(_strip_fragment(url), noncestr, timestamp, JS_APIS))
        client = get_client()
        signature = client.jsapi.get_jsapi_signature(noncestr, client.jsapi_ticket(), timestamp, _strip_fragment(url))
    except WeChatClientException as exc:
        return error_response(502, "wechat_unavailable", f"微信接口暂时无法签名（{exc.errcode}），拍照和定位将使用浏览器功能。")
    return jsonify({"appId": client.appid, "timestamp": timestamp, "nonceStr": noncestr, "signature": signature,
                    "jsApiList": JS_APIS})


__all__ = ["bp"]
