"""``wxcrm worker`` under its dependencies (#20 items 5 and 6): it starts cleanly with a full queue,
outlives a Redis outage, and /healthz says when no worker beats."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from crm_core.db import db
from tests.conftest import _make_app
from tests.services import OwnRedis

pytestmark = pytest.mark.services


def _queue_log_messages(app, n: int) -> list[int]:
    from crm_core import outbox

    with app.app_context():
        ids = [outbox.queue_message("log", f"openid-{i}", {"text": "您好"}).id for i in range(n)]
        db.session.commit()
        db.session.remove()
    return ids


def _sent(app, ids) -> int:
    from crm_core.outbox import OutboxMessage

    with app.app_context():
        n = db.session.scalar(db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.id.in_(ids),
                                                                                 OutboxMessage.status == "sent"))
        db.session.remove()
    return n


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def _worker(env, cwd):
    return subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "wxcrm"), "worker"], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_the_worker_starts_with_a_full_queue_and_outlives_a_redis_outage(tmp_path):
    redis = OwnRedis()
    redis.start()
    url = f"sqlite:///{tmp_path}/w.db"
    app = _make_app(url, REDIS_URL=redis.url)
    with app.app_context():
        db.create_all()
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis.url, "WXCRM_ENV": "development", "WXCRM_LOG_LEVEL": "WARNING"}
    proc = None
    try:
        # a full queue when the worker starts, three times over: every job starts within seconds
        for _ in range(3):
            ids = _queue_log_messages(app, 30)
            proc = _worker(env, tmp_path)
            assert _wait(lambda: _sent(app, ids) == len(ids), 30), proc.stderr.read() if proc.poll() is not None else ""
            assert app.test_client().get("/healthz").get_json()["worker"]["ok"] is True
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)

        proc = _worker(env, tmp_path)
        assert _wait(lambda: app.test_client().get("/healthz").get_json().get("worker", {}).get("ok") is True, 20)
        _queue_log_messages(app, 200)  # busy when Redis goes away, for longer than a heartbeat
        redis.stop()  # Redis goes away for a while ...
        time.sleep(12)
        assert proc.poll() is None, "the worker exited when Redis went away"
        redis.start()  # ... and comes back (empty: it kept nothing on disk)
        ids = _queue_log_messages(app, 5)
        assert _wait(lambda: _sent(app, ids) == len(ids), 45), "the worker did not resume after Redis returned"
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()


def test_healthz_says_when_no_worker_beats(tmp_path, redis_url):
    app = _make_app(f"sqlite:///{tmp_path}/h.db", REDIS_URL=redis_url)
    with app.app_context():
        db.create_all()
        db.session.remove()
    from rq import Worker

    conn = app.extensions["wxcrm_redis"]
    for w in Worker.all(connection=conn):  # none left over from another test
        w.register_death()
    resp = app.test_client().get("/healthz")
    body = resp.get_json()
    assert resp.status_code == 200  # the web node still serves: background work is what is degraded
    assert body["status"] == "degraded" and body["worker"]["ok"] is False and body["worker"]["workers"] == 0
