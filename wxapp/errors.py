"""One place that turns errors into answers: the SPEC.md JSON error format for API-like
paths, a Chinese error page for pages. Never a traceback; a 500 is logged with its request id.
"""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from crm_core.errors import DomainError

_PG_STATES = {"23503": "foreign_key", "23505": "unique", "23502": "not_null", "23514": "check"}


def constraint_kind(exc: IntegrityError) -> str:
    """foreign_key / unique / not_null / check / other, from PostgreSQL's SQLSTATE or SQLite's message."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in _PG_STATES:
        return _PG_STATES[state]
    text = str(exc.orig).upper()
    for needle, kind in (("FOREIGN KEY", "foreign_key"), ("UNIQUE", "unique"), ("NOT NULL", "not_null"),
                         ("CHECK", "check")):
        if needle in text:
            return kind
    return "other"

log = logging.getLogger("wxcrm.web")

JSON_PREFIXES = ("/api/", "/h5/api/", "/wechat/", "/healthz", "/sandbox/", "/m/")

HTTP_CODES = {
    400: ("bad_request", "请求格式不正确。"),
    401: ("not_authenticated", "请先登录。"),
    403: ("permission_denied", "没有权限执行此操作。"),
    404: ("not_found", "请求的资源不存在。"),
    405: ("method_not_allowed", "不支持该请求方法。"),
    409: ("conflict", "操作与当前状态冲突。"),
    413: ("payload_too_large", "请求内容过大。"),
    415: ("unsupported_media_type", "请求内容类型不受支持，请使用 application/json。"),
    422: ("validation_failed", "提交的数据有误。"),
    429: ("rate_limited", "操作过于频繁，请稍后再试。"),
}


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str, fields: dict | None = None, extra: dict | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": message, "fields": fields or {}}}
        rid = getattr(g, "request_id", None)
        if rid:
            body["error"]["request_id"] = rid
        if extra:
            body.update(extra)
        resp = jsonify(body)
    else:
        resp = render_template("error.html", status=status, code=code, message=message, fields=fields or {})
        resp = Flask.response_class(resp, mimetype="text/html")
    resp.status_code = status
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        from crm_core.db import db

        db.session.rollback()
        resp = error_response(exc.status, exc.code, exc.message, exc.fields, exc.extra)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="wxcrm"'
        return resp

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc):
        resp = error_response(429, "rate_limited", "操作过于频繁，请稍后再试。")
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            resp.headers["Retry-After"] = str(int(retry_after))
        return resp

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(400, "csrf_failed", "页面已过期或请求来源不可信，请刷新页面后重试。")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code, message = HTTP_CODES.get(exc.code or 500, ("http_error", exc.description or "请求失败。"))
        if exc.code == 413:  # say the limit
            limit = app.config.get("MAX_CONTENT_LENGTH") or 0
            message = f"请求内容过大（上限 {limit // (1024 * 1024)} MB；每张照片最大 10 MB）。"
        resp = error_response(exc.code or 500, code, message)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError):
        """A constraint the database enforces (a referenced row that does not exist, a "once"
        rule backed by a unique index) answers 422/409 with a message, never 500."""
        from crm_core.db import db

        db.session.rollback()
        kind = constraint_kind(exc)
        log.info("integrity error answered %s: %s", kind, str(exc.orig)[:200])
        if kind == "foreign_key":
            return error_response(422, "invalid_reference", "引用的记录不存在，请检查提交的编号。")
        if kind == "unique":
            return error_response(409, "duplicate", "记录已存在（可能是重复提交），请刷新后查看。")
        return error_response(422, "constraint_failed", "提交的数据不符合要求，请检查后重试。")

    @app.errorhandler(DataError)
    def data_error(exc: DataError):
        from crm_core.db import db

        db.session.rollback()
        log.info("data error answered 422: %s", str(exc.orig)[:200])
        return error_response(422, "value_out_of_range", "提交的数值或文本超出允许的范围。")

    @app.errorhandler(OperationalError)
    def write_conflict(exc: OperationalError):
        """Two writers met (SQLite's lock after its busy timeout, a PostgreSQL serialization or
        deadlock failure): nothing was saved; the person is told to try again, with Retry-After."""
        from crm_core.db import db

        try:
            db.session.rollback()
        except Exception:  # the session may itself be broken
            db.session.remove()
        text = str(getattr(exc, "orig", exc)).lower()
        if not any(word in text for word in ("database is locked", "could not serialize", "deadlock detected", "busy")):
            return unavailable(exc)  # not a conflict: the database is away (restarting, unreachable)
        log.warning("write conflict answered 503: %s", text[:200])
        resp = error_response(503, "write_conflict", "有人同时在修改这条记录，本次操作未保存，请稍后重试。")
        resp.headers["Retry-After"] = "1"
        return resp

    def unavailable(exc: Exception):
        """The database or Redis is away (a restart, a lost connection): nothing was saved; the
        person is told to try again shortly (503 with Retry-After), and operators see it in the log."""
        from crm_core.db import db

        try:
            db.session.rollback()
        except Exception:
            db.session.remove()
        log.error("dependency unavailable answered 503: %s: %s", type(exc).__name__, str(getattr(exc, "orig", exc))[:200],
                  extra={"path": request.path})
        resp = error_response(503, "service_unavailable", "系统暂时无法保存（数据服务正在恢复），本次操作未保存，请稍后重试。")
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(DBAPIError)
    def connection_lost(exc: DBAPIError):
        if exc.connection_invalidated:
            return unavailable(exc)
        return unexpected(exc)

    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout

        app.register_error_handler(RedisConnectionError, unavailable)
        app.register_error_handler(RedisTimeout, unavailable)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        from crm_core.db import db

        try:
            db.session.rollback()
        except Exception:  # the session may itself be broken
            pass
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试。如问题持续，请提供请求编号联系管理员。")
