"""Idempotent writes over HTTP (SPEC.md; the engine is :mod:`crm_core.idempotency`).

- JSON calls (``/api/v1``, ``/h5/api``, ``/m/...``) honour an ``Idempotency-Key`` header: the same
  key and body get the first answer again (``Idempotent-Replayed: true``); the same key with another
  body is 409 ``idempotency_mismatch``. The H5 pages' ``wxcrm.api`` sends a key derived from the
  page load and the request, so a double tap is one request.
- Console and H5 forms carry a one-time ``_once`` token (added by the base templates' script, which
  also disables the submit buttons while the request is in flight): a second submission of the same
  form — a double click, or Back and submit again — gets the first answer (its redirect).

The scope is the caller (bearer token, console user, WeChat user), so keys of different people
never meet.
"""
from __future__ import annotations

import hashlib
import re

from flask import Flask, Response, g, request, session

from crm_core import idempotency
from crm_core.db import db

METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SKIP_PREFIXES = ("/wechat/", "/sandbox/")  # WeChat's own retries are deduplicated by message; the sandbox plays WeChat
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
MAX_STORED_BODY = 512 * 1024


def _scope() -> str | None:
    auth = request.headers.get("Authorization")
    if auth:
        return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:40]
    if session.get("user_id"):
        return f"u:{session['user_id']}"
    from wxapp.auth import H5_OPENID

    if session.get("wecom_uid"):  # an employee signed in by WeCom OAuth (wxapp.wecom)
        return f"w:{session['wecom_uid']}"[:80]
    if session.get(H5_OPENID):
        return f"o:{session[H5_OPENID]}"[:80]
    return f"a:{request.remote_addr}"  # public calls (material pages): per address


def _fingerprint() -> str:
    h = hashlib.sha256(f"{request.method} {request.path}?{request.query_string.decode('latin-1')}".encode())
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name in sorted(request.form):
            if name not in ("_once", "csrf_token"):
                h.update(f"\0{name}=".encode() + "\x1f".join(request.form.getlist(name)).encode())
        for name in sorted(request.files):
            for f in request.files.getlist(name):
                data = f.stream.read()
                f.stream.seek(0)
                h.update(f"\0{name}:{f.filename}:".encode() + hashlib.sha256(data).digest())
    else:
        h.update(b"\0" + request.get_data(cache=True))
    return h.hexdigest()


def _requested_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None and request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        key = request.form.get("_once")
    return key.strip() if key else None


def _replay(row) -> Response:
    resp = Response(row.response_body or "", status=row.response_status or 200, content_type=row.response_type)
    if row.response_location:
        resp.headers["Location"] = row.response_location
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _answer(response: Response) -> tuple:
    body = None
    if not response.is_streamed:
        data = response.get_data()
        if len(data) <= MAX_STORED_BODY:
            body = data.decode("utf-8", "replace")
    return response.status_code, response.content_type, response.headers.get("Location"), body


def commit(response: Response) -> Response:
    """Commit the request's work; a request that claimed a key stores its answer in the same
    transaction (one commit instead of two, and no window in which the work is done but the
    key still looks unfinished — a retry then could only wait, or after the lease run it again)."""
    row_id = g.pop("idempotency_row_id", None)
    try:
        if row_id is not None:
            idempotency.record(row_id, *_answer(response))
        db.session.commit()
    except BaseException:
        if row_id is not None:
            g.idempotency_row_id = row_id  # the error's own answer is stored (or the key released) after the request
        raise
    return response


def init_app(app: Flask) -> None:
    @app.before_request
    def _claim_idempotency_key():
        if request.method not in METHODS or request.path.startswith(SKIP_PREFIXES):
            return None
        key = _requested_key()
        if not key:
            return None
        from wxapp.errors import error_response

        if not _KEY.match(key):
            return error_response(422, "invalid_idempotency_key", "Idempotency-Key 须为 1–100 个可见 ASCII 字符。",
                                  {"Idempotency-Key": "invalid"})
        result = idempotency.claim(_scope(), key, _fingerprint())
        if result.outcome == "new":
            g.idempotency_row_id = result.row_id
            return None
        if result.outcome == "replay":
            return _replay(result.row)
        if result.outcome == "mismatch":
            return error_response(409, "idempotency_mismatch", "同一个请求编号已用于另一份内容，请刷新页面后重新提交。")
        return error_response(409, "request_in_progress", "上一次提交仍在处理中，请稍候刷新查看结果。")

    @app.after_request
    def _store_idempotent_answer(response):
        row_id = g.pop("idempotency_row_id", None)
        if row_id is None:
            return response
        try:
            db.session.rollback()  # whatever the view left uncommitted is not ours to commit
            idempotency.complete(row_id, *_answer(response))
        except Exception:  # the answer still goes out; the claim expires after its lease
            db.session.rollback()
            app.logger.exception("could not store an idempotent answer")
        return response
