"""``GET /healthz``: database, Redis and queue status for load balancers and operators."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from crm_core import jobs
from crm_core.db import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    status = 200
    out: dict = {"status": "ok", "env": current_app.config["WXCRM_ENV"]}
    t0 = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
        out["database"] = {"ok": True, "backend": db.engine.dialect.name,
                           "ms": round((time.perf_counter() - t0) * 1000, 1)}
    except Exception as exc:  # report, don't crash: this endpoint exists to say what is down
        out["database"] = {"ok": False, "backend": db.engine.dialect.name, "error": type(exc).__name__}
        status = 503
    redis_conn = current_app.extensions.get("wxcrm_redis")
    if redis_conn is None:
        out["redis"] = {"ok": None, "mode": "embedded", "detail": "REDIS_URL unset: queue, dedup and token cache in-process/database"}
    else:
        try:
            redis_conn.ping()
            out["redis"] = {"ok": True, "mode": "redis"}
        except Exception as exc:
            out["redis"] = {"ok": False, "mode": "redis", "error": type(exc).__name__}
            status = 503
    try:
        out["queue"] = {"ok": True, "mode": jobs.backend().mode, "depth": jobs.backend().depth()}
    except Exception as exc:
        out["queue"] = {"ok": False, "error": type(exc).__name__}
        status = 503
    if status != 200:
        out["status"] = "degraded"
    resp = jsonify(out)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp
