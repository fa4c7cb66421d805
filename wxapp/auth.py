"""Who is calling: employees by bearer token (API) or session cookie (console); WeChat
users by the ``/h5`` session that WeChat OAuth (or, in development, ``/h5/dev-login``) sets.
"""
from __future__ import annotations

import functools

from flask import g, redirect, request, session, url_for

from crm_core.context import current_actor
from crm_core.db import db
from crm_core.errors import NotAuthenticated
from crm_core.org.auth import user_for_token
from crm_core.org.models import User
from crm_core.org.permissions import Actor, load_actor
from wxapp.config import wechat_appid

H5_OPENID = "wx_openid"
H5_APPID = "wx_appid"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def actor_from_bearer() -> Actor:
    """The :class:`Actor` behind the request's bearer token, or 401 saying why."""
    token = bearer_token()
    if token is None:
        raise NotAuthenticated("缺少访问令牌：请在请求头中携带 Authorization: Bearer <token>。", code="missing_token")
    user = user_for_token(token)
    return _set_actor(load_actor(user))


def _set_actor(actor: Actor) -> Actor:
    g.actor = actor
    current_actor.set(actor)
    return actor


def console_user() -> User | None:
    user_id = session.get("user_id")
    if not user_id:
        return None
    user = db.session.get(User, user_id)
    # a password change bumps the hash, which logs out other console sessions
    if user is None or not user.active or session.get("pw") != user.password_hash[-12:]:
        session.pop("user_id", None)
        return None
    return user


def login_console(user: User) -> None:
    session.clear()  # new session on login: no fixation
    session["user_id"] = user.id
    session["pw"] = user.password_hash[-12:]
    session.permanent = True


def console_login_required(view):
    """Console pages: an employee logged in with a session cookie."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = console_user()
        if user is None:
            return redirect(url_for("console.login", next=request.full_path if request.query_string else request.path))
        _set_actor(load_actor(user))
        g.console_user = user
        return view(*args, **kwargs)

    return wrapper


def wechat_openid() -> str | None:
    """The openid of the WeChat user of this ``/h5`` session, if identified."""
    openid = session.get(H5_OPENID)
    if openid and session.get(H5_APPID) == wechat_appid():
        return openid
    return None


def start_wechat_session(openid: str) -> None:
    """Remember the WeChat user for ``/h5`` pages (OAuth callback, dev login)."""
    session[H5_OPENID] = openid
    session[H5_APPID] = wechat_appid()
    session.permanent = True


def wechat_user_required(view):
    """``/h5`` pages and calls that need the WeChat user: pages go through OAuth (silent
    ``snsapi_base``) and come back; JSON calls answer 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if wechat_openid() is None:
            if request.path.startswith("/h5/api/") or request.method != "GET":
                raise NotAuthenticated("请在微信中打开此页面。", code="wechat_login_required")
            return redirect(url_for("wechat_oauth.start", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def wecom_user() -> User | None:
    """The employee's user signed in by WeCom OAuth in this session (``wxapp.wecom``), if any."""
    from flask import current_app

    from wxapp import wecom

    userid = session.get(wecom.SESSION_USER)
    if not userid or session.get(wecom.SESSION_CORP) != current_app.config.get("WECOM_CORP_ID"):
        return None
    return wecom.user_for(userid)


def jssdk_client() -> str | None:
    """Which JS-SDK the page's client runs: ``"wecom"`` inside 企业微信 (its user agent says ``wxwork``, next to
    ``MicroMessenger``) when WeCom is configured, ``"wechat"`` inside WeChat, None elsewhere (and inside WeCom without
    WeCom set up: the official account's signature is refused there) — then the pages use the browser's own APIs."""
    if in_wecom_client():
        from wxapp import wecom

        return "wecom" if wecom.configured() else None
    return "wechat" if "MicroMessenger" in (request.headers.get("User-Agent") or "") else None


def in_wecom_client() -> bool:
    """The request comes from 企业微信's browser (its user agent says ``wxwork``)."""
    return "wxwork" in (request.headers.get("User-Agent") or "").lower()


def staff_user_required(view):
    """Staff pages and calls: an employee signed in by WeCom OAuth, or a WeChat user (bound to an employee on the
    page). Inside WeCom (its user agent says ``wxwork``), with WeCom configured, pages go through WeCom OAuth."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if wecom_user() is not None:
            return view(*args, **kwargs)
        from wxapp import wecom

        if (wecom.configured() and in_wecom_client()
                and request.method == "GET" and not request.path.startswith("/h5/api/")):
            return redirect(url_for("wecom_oauth.start", next=request.full_path.rstrip("?")))
        return wechat_user_required(view)(*args, **kwargs)

    return wrapper


def staff_actor() -> Actor | None:
    """The employee acting in this session: signed in by WeCom OAuth, or through the WeChat user bound to them on
    the staff sign-in page."""
    from crm_core.wechat.followers import staff_user

    by_wecom = wecom_user()
    if by_wecom is not None:
        return _set_actor(load_actor(by_wecom))
    openid = wechat_openid()
    user = staff_user(wechat_appid(), openid) if openid else None
    return _set_actor(load_actor(user)) if user is not None else None
