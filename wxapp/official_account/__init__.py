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
    csrf.exempt(callback.bp)  # signed by WeChat, not by a browser session
    csrf.exempt(sandbox.bp)
    app.register_blueprint(callback.bp)
    app.wsgi_app = callback.CallbackLane(app, app.wsgi_app)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(sandbox.bp)
