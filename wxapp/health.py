"""``GET /healthz``: database, Redis and queue status for load balancers and operators."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import text

from crm_core import jobs
from crm_core.db import db

bp = Blueprint("health", __name__)


def _may_see_details() -> bool:
    """Operators: a request from this host (the real client once WXCRM_TRUSTED_PROXIES is set),
    or an administrator's bearer token or console session."""
    if request.remote_addr in ("127.0.0.1", "::1"):
        return True
    from crm_core.errors import DomainError
    from crm_core.org.permissions import load_actor
    from wxapp.auth import actor_from_bearer, bearer_token, console_user

    try:
        if bearer_token():
            return actor_from_bearer().can("organization", "edit")
        user = console_user()
        return user is not None and load_actor(user).can("organization", "edit")
    except DomainError:
        return False


def _summary(out: dict) -> dict:
    """What anonymous callers see: whether each dependency is up, nothing about what it is."""
    return {"status": out["status"], **{k: {"ok": out[k].get("ok")} for k in ("database", "redis", "queue", "worker")
                                        if k in out}}


WORKER_STALE_SECONDS = 60  # RQ workers beat every few seconds; a minute without one is a dead worker


def _workers(conn) -> dict:
    """The RQ workers registered in Redis and how recently the freshest one beat."""
    from datetime import datetime, timezone

    from rq import Worker

    try:
        workers = Worker.all(connection=conn)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    beats = [w.last_heartbeat for w in workers if w.last_heartbeat]
    if not beats:
        return {"ok": False, "workers": 0, "detail": "没有在运行的后台 worker（wxcrm worker）"}
    now = datetime.now(timezone.utc)
    age = min((now - (b if b.tzinfo else b.replace(tzinfo=timezone.utc))).total_seconds() for b in beats)
    return {"ok": age < WORKER_STALE_SECONDS, "workers": len(workers), "last_heartbeat_s": round(age, 1)}


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
    if redis_conn is not None and out["redis"].get("ok"):
        out["worker"] = _workers(redis_conn)
    if status != 200 or not out.get("worker", {"ok": True})["ok"]:
        out["status"] = "degraded"  # a missing worker degrades background work, not this web node (still 200)
    resp = jsonify(out if _may_see_details() else _summary(out))
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp
