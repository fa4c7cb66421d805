"""The Flask app factory: configuration, extensions, job backend, blueprints, errors, logs.

``create_app()`` is what gunicorn serves (``wxapp:create_app()``) and what the ``wxcrm``
CLI loads. It is the only place that wires the packages together.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid

from dotenv import load_dotenv
from flask import Flask, g, request

from crm_core import jobs
from crm_core.context import request_id
from crm_core.db import db
from wxapp.config import ConfigError, load_config

__all__ = ["create_app", "ConfigError"]

log = logging.getLogger("wxcrm.web")
_RID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def yuan(value) -> str:
    """An amount as people read it on a page: ¥1,234.50, ¥50 (no cents when there are none); — for none."""
    if value is None or value == "":
        return "—"
    amount = float(value)
    text = f"{amount:,.2f}"
    return "¥" + (text[:-3] if text.endswith(".00") else text)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application. ``overrides`` replace configuration values (tests)."""
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    config = load_config(overrides)
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(config)
    from wxapp.guards import BoundedIntConverter, SafeJSONProvider

    app.url_map.converters["int"] = BoundedIntConverter  # before any route: ids past 64 bits are not found
    app.json = SafeJSONProvider(app)  # JSON nesting bounded before parsing
    app.json.ensure_ascii = False  # Chinese stays readable in JSON answers

    from wxapp.logging_setup import configure_logging

    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])

    import crm_core.all_models
    import crm_core.audit  # noqa: F401  (installs the audit hook)
    import crm_core.outbox  # noqa: F401  (registers the delivery job and its sweeper)

    if app.config["TRUSTED_PROXIES"]:  # client address and scheme from the trusted proxies only (docs/security.md)
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0, x_prefix=0)
    from wxapp import security_headers

    _request_ids(app)  # first, so even requests refused by CSRF or rate limits carry an id
    security_headers.init_app(app)
    _local_time(app)
    db.init_app(app)
    from wxapp.extensions import compress, csrf, limiter, migrate

    compress.init_app(app)  # before the idempotency hooks: they store the answer before it is compressed
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    from wxapp import idempotency

    idempotency.init_app(app)  # after CSRF and the limiter: a refused request claims no key
    _configure_jobs(app)
    from crm_core import media
    from crm_core.field import geocoding

    geocoding.configure(app.config["GEOCODER"], app.config["GEOCODER_KEY"])
    media.configure(media.LocalStorage(os.path.join(os.getcwd(), app.config["MEDIA_ROOT"])
                                       if not os.path.isabs(app.config["MEDIA_ROOT"]) else app.config["MEDIA_ROOT"]))

    import materials.api  # noqa: F401  (adds /api/v1/materials, /campaigns, /marketing)
    from wxapp import api as api_pkg
    from wxapp import (
        checkin,  # adds /api/v1/checkins, field reports and console pages before registration
        console,
        h5,
        health,
        self_service,  # adds /api/v1/tickets, /work-orders, service reports and console pages
        staff,
    )
    from wxapp.official_account import account as _account_api  # noqa: F401  (adds /api/v1/wechat/auto-replies, /menu)
    from wxapp.official_account import api as _gateway_api  # noqa: F401  (adds /api/v1/wechat/... before registration)
    from wxapp.openapi import api

    csrf.exempt(api_pkg.bp)  # bearer-token API: no ambient credentials to forge
    app.register_blueprint(api_pkg.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(h5.bp)
    app.register_blueprint(health.bp)

    from wxapp import official_account

    official_account.init_app(app)
    checkin.init_app(app)
    self_service.init_app(app)
    staff.init_app(app)  # the staff phone workbench (/h5/staff/)
    from wxapp import wecom

    wecom.init_app(app)  # 企业微信: staff sign-in and notices, and the sandbox's WeCom
    from wxapp import erp

    erp.init_app(app)  # the ERP webhook channel (documents' events, signed)
    _wire_marketing(app)

    @app.get("/api/v1/openapi.json")
    def openapi_json():
        return api.spec(server_url=app.config["PUBLIC_BASE_URL"])

    @app.get("/favicon.ico")
    def favicon():
        from flask import send_from_directory

        return send_from_directory(app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)

    @app.get("/h5/api/openapi.json")
    def h5_openapi_json():
        from wxapp.openapi import h5_api

        return h5_api.spec(server_url=app.config["PUBLIC_BASE_URL"])

    @app.get("/")
    def index():
        from flask import redirect, url_for

        return redirect(url_for("console.home"))

    from wxapp.errors import register_error_handlers

    register_error_handlers(app)
    return app


def _wire_marketing(app: Flask) -> None:
    """The marketing package stays out of the console and H5 packages; their entries are added here."""
    import materials
    from wxapp.console import NAV
    from wxapp.h5 import register_entry

    materials.init_app(app)
    for entry in (("营销素材", "marketing_console.materials", "material", "view"),
                  ("营销方案", "marketing_console.campaigns", "campaign", "view")):
        if entry not in NAV:
            NAV.append(entry)
    register_entry("活动与资讯", "materials.campaigns_page", "📣", "推送给您的活动与内容")


def _configure_jobs(app: Flask) -> None:
    if app.config["REDIS_URL"]:
        import redis

        # short timeouts: a Redis that is away must cost a callback milliseconds, not WeChat's 5 s
        conn = redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=1.0)
        app.extensions["wxcrm_redis"] = conn
        jobs.configure(jobs.RedisBackend(conn))
        return
    backend = jobs.EmbeddedBackend(app.app_context, eager=app.config["JOBS_EAGER"])
    jobs.configure(backend)
    if app.config["JOBS_TICKER"] and not app.config.get("TESTING"):
        started = {"done": False}

        @app.before_request
        def _start_ticker():  # lazily, so CLI commands such as `db upgrade` never tick
            if not started["done"]:
                started["done"] = True
                backend.start_ticker()


def _local_time(app: Flask) -> None:
    """Times are stored in UTC and shown in the organisation's zone: ``{{ dt|local }}``,
    ``{{ dt|local('%m-%d %H:%M') }}`` in templates, ``timezone()`` for the pages' scripts."""
    from crm_core import clock

    clock.configure_timezone(app.config["TIMEZONE"])

    def current_timezone() -> str:
        from crm_core.org.settings import org_timezone

        actor = g.get("actor")
        if actor is not None:
            return org_timezone(actor.org_id)
        return clock.default_timezone()

    app.jinja_env.filters["local"] = lambda value, fmt="%Y-%m-%d %H:%M": clock.local_str(value, fmt, current_timezone())
    app.jinja_env.globals["timezone"] = current_timezone
    from crm_core.labels import label

    app.jinja_env.filters["label"] = lambda value, kind: label(kind, value)  # the one label table
    app.jinja_env.filters["yuan"] = yuan
    from wxapp.pages import pop_form_retry

    app.jinja_env.globals["pop_form_retry"] = pop_form_retry


def _request_ids(app: Flask) -> None:
    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _RID.match(incoming) else uuid.uuid4().hex
        g.request_id = rid
        g._t0 = time.perf_counter()
        request_id.set(rid)

    @app.after_request
    def _log_request(response):
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
        ms = round((time.perf_counter() - g.get("_t0", time.perf_counter())) * 1000, 1)
        log.info("%s %s %s", request.method, request.path, response.status_code,
                 extra={"method": request.method, "path": request.path, "status": response.status_code, "ms": ms})
        return response

    @app.teardown_request
    def _clear_request_id(exc):
        request_id.set(None)
