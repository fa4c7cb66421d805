"""The WeChat official-account gateway: callbacks, router, followers, QR scenes, outbound
client and channels, OAuth, JS-SDK, and the local sandbox.

Feature packages plug in through :data:`router` (``router.add(...)``,
``router.claim_scene_prefix(...)``, ``router.welcome = ...``); this package imports none of them.
"""
from __future__ import annotations

from flask import Flask

from wxapp.official_account.router import Inbound, Router, router

__all__ = ["init_app", "router", "Router", "Inbound"]


def init_app(app: Flask) -> None:
    from wxapp.extensions import csrf
    from wxapp.official_account import callback, channels, oauth, sandbox
    from wxapp.official_account import jobs as _jobs  # noqa: F401

    channels.register()
    router.add(channels.template_job_finished, name="wechat.template_job_finished", msg_type="event",
               event="templatesendjobfinish")
    router.add(channels.mass_job_finished, name="wechat.mass_job_finished", msg_type="event", event="masssendjobfinish")
    router.add(_ask_for_agent, name="wechat.ask_for_agent", msg_type="text", text_pattern=r"^\s*(人工客服|人工服务|转人工|人工)\s*$",
               priority=50, label="关键词：人工客服、转人工（进入在线客服排队）")
    csrf.exempt(callback.bp)  # signed by WeChat, not by a browser session
    csrf.exempt(sandbox.bp)
    app.register_blueprint(callback.bp)
    app.wsgi_app = callback.CallbackLane(app, app.wsgi_app)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(sandbox.bp)


def _ask_for_agent(ib) -> str:
    """人工客服: the conversation joins the queue of the console's 在线客服."""
    from crm_core.wechat import conversations
    from wxapp.config import wechat_org_id

    _c, agent_id = conversations.ask_for_agent(ib.appid, ib.openid, wechat_org_id())
    if agent_id is None:
        return "已为您转接人工客服。现在没有客服在线，您的消息已排队，客服上线后会尽快在这里回复您。"
    from crm_core.org.organization import employee_names

    name = employee_names([agent_id]).get(agent_id)
    return f"已为您转接人工客服{name or ''}，请稍候，客服人员会尽快在这里回复您。"
