"""企业微信 (WeCom): the company's staff app, when ``WECOM_CORP_ID`` / ``WECOM_AGENT_ID`` / ``WECOM_SECRET`` are set.

- **Staff notices** (the outbox's ``staff`` channel) go as the application's text-card messages to the employee's
  WeCom UserID (``Employee.wecom_userid``), opening the notice's page; employees without one, or with WeCom unset,
  get the official account's template message as before (``wxapp.official_account.channels.send_staff``).
- **Staff sign-in**: a staff page opened inside WeCom (its user agent says ``wxwork``) goes through WeCom OAuth
  (``/h5/wecom/start`` → the authorize page → ``/h5/wecom/callback``): the code gives the UserID, the UserID the
  employee. No password, no binding step.
- The client is wechatpy's ``wechatpy.enterprise`` pointed at ``WECOM_API_BASE`` (the sandbox's WeCom in development
  and tests, ``wxapp/wecom/sandbox.py``).
"""
from __future__ import annotations

import threading
import weakref

from flask import Flask, current_app
from sqlalchemy import select
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from crm_core import outbox
from crm_core.db import db

SESSION_USER, SESSION_CORP = "wecom_uid", "wecom_corp"


def configured() -> bool:
    cfg = current_app.config
    return bool(cfg.get("WECOM_CORP_ID") and cfg.get("WECOM_AGENT_ID") and cfg.get("WECOM_SECRET"))


class WeComClient(WeChatClient):
    """wechatpy's WeCom client with its base URL (and token URL, which wechatpy hard-codes) from the config."""

    def __init__(self, corp_id: str, secret: str, api_base: str):
        super().__init__(corp_id, secret, timeout=5)
        self.API_BASE_URL = api_base.rstrip("/") + "/"

    def fetch_access_token(self):
        return self._fetch_access_token(url=self.API_BASE_URL + "gettoken",
                                        params={"corpid": self.corp_id, "corpsecret": self.secret})


_clients = threading.local()


def client() -> WeComClient:
    """One client per thread and app, kept (its token and its HTTP connections)."""
    cfg = current_app.config
    app = current_app._get_current_object()
    key = (cfg["WECOM_CORP_ID"], cfg["WECOM_SECRET"], cfg["WECOM_API_BASE"])
    held = getattr(_clients, "entry", None)
    if held is not None and held[0]() is app and held[1] == key:
        return held[2]
    c = WeComClient(*key)
    _clients.entry = (weakref.ref(app), key, c)
    return c


# WeCom errcodes that a retry cannot fix: the member, the agent or the credentials are wrong
_FOR_GOOD = {40003, 40013, 40056, 60011, 60020, 81013, 301002}


def send_card(userid: str, title: str, description: str, url: str | None) -> str | None:
    """An application text-card message (title, text, a 详情 link) to one member; answers WeCom's msgid."""
    try:
        res = client().message.send_text_card(int(current_app.config["WECOM_AGENT_ID"]), userid, title[:60],
                                              description[:500], url or current_app.config["PUBLIC_BASE_URL"] + "/h5/staff/")
    except WeChatClientException as exc:
        raise outbox.ChannelError(f"企业微信 {exc.errcode}: {exc.errmsg}", retryable=exc.errcode not in _FOR_GOOD) from None
    return str(res.get("msgid") or "") or None


def jssdk_config(url: str, noncestr: str, timestamp: int, apis: list[str]) -> dict:
    """``wx.config`` inside 企业微信: signed with the company's jsapi_ticket (cached by the client, 7,200 s), the
    CorpID as appId and ``beta`` on, as WeCom's JS-SDK wants."""
    c = client()
    signature = c.jsapi.get_jsapi_signature(noncestr, c.jsapi.get_jsapi_ticket(), timestamp, url)
    return {"appId": current_app.config["WECOM_CORP_ID"], "timestamp": timestamp, "nonceStr": noncestr,
            "signature": signature, "jsApiList": apis, "beta": True}


def wecom_userid(employee_id: int) -> str | None:
    from crm_core.org.models import Employee

    return db.session.scalar(select(Employee.wecom_userid).where(Employee.id == employee_id, Employee.active.is_(True)))


def user_for(userid: str):
    """The active CRM user of the employee with this WeCom UserID (in the organisation WeCom serves), or None."""
    from crm_core.org.models import Employee, User
    from wxapp.config import wechat_org_id

    # the company's WeCom serves the organisation that runs the official account (WXCRM_WECHAT_ORG): a UserID that
    # another organisation's employee happens to carry signs nobody in
    emp = db.session.scalars(select(Employee).where(Employee.wecom_userid == userid, Employee.active.is_(True),
                                                    Employee.org_id == wechat_org_id())).first()
    if emp is None:
        return None
    return db.session.scalars(select(User).where(User.employee_id == emp.id, User.active.is_(True)).order_by(User.id)).first()


def init_app(app: Flask) -> None:
    from wxapp.extensions import csrf
    from wxapp.wecom import oauth, sandbox

    app.register_blueprint(oauth.bp)
    csrf.exempt(sandbox.bp)
    app.register_blueprint(sandbox.bp)
