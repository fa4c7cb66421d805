"""App factory, configuration checks, health, request ids, CLI and the import layers."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from crm_core.db import db
from tests.conftest import _make_app
from wxapp import ConfigError
from wxapp.config import load_config

PROD = {"WXCRM_ENV": "production", "SECRET_KEY": "s" * 32, "DATABASE_URL": "postgresql://u@db/wxcrm", "DEV_ROUTES": False}


def test_production_refuses_without_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({**PROD, "SECRET_KEY": None})


def test_production_refuses_sqlite_unless_allowed():
    with pytest.raises(ConfigError, match="SQLite"):
        load_config({**PROD, "DATABASE_URL": "sqlite:///instance/x.db"})
    cfg = load_config({**PROD, "DATABASE_URL": "sqlite:////tmp/x.db", "ALLOW_SQLITE_IN_PRODUCTION": True})
    assert cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


def test_production_refuses_dev_routes():
    with pytest.raises(ConfigError, match="dev-only"):
        load_config({**PROD, "DEV_ROUTES": True})


def test_production_error_is_one_line_from_the_cli(tmp_path):
    env = {**os.environ, "WXCRM_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    env.pop("SECRET_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "wxapp.cli", "routes"], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SECRET_KEY" in lines[0]


def test_production_config_accepted_and_urls_normalised():
    cfg = load_config(PROD)
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/wxcrm"
    assert cfg["SESSION_COOKIE_SECURE"] is True


def test_development_generates_a_secret_key():
    assert len(load_config({"SECRET_KEY": None})["SECRET_KEY"]) == 64


def test_healthz_embedded(app, client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["database"]["ok"] is True
    assert body["redis"]["mode"] == "embedded"
    assert body["queue"] == {"ok": True, "mode": "embedded", "depth": 0}


@pytest.mark.services
def test_healthz_with_redis_and_postgres(tmp_path, redis_url, pg_url):
    app = _make_app(pg_url, REDIS_URL=redis_url)
    with app.app_context():
        db.create_all()
    body = app.test_client().get("/healthz").get_json()
    assert body["database"] == {**body["database"], "ok": True, "backend": "postgresql"}
    assert body["redis"] == {"ok": True, "mode": "redis"}
    assert body["queue"]["mode"] == "redis"


def test_healthz_reports_a_dead_redis_as_503(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", REDIS_URL="redis://127.0.0.1:1/0")
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["redis"]["ok"] is False and resp.get_json()["status"] == "degraded"


def test_request_id_is_echoed_and_logged_as_json(app, client, caplog):
    from wxapp.logging_setup import JsonFormatter, RequestIdFilter

    with caplog.at_level(logging.INFO, logger="wxcrm"):
        resp = client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
    assert resp.headers["X-Request-ID"] == "abc-12345678"
    record = next(r for r in caplog.records if getattr(r, "path", None) == "/healthz")
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["status"] == 200 and line["path"] == "/healthz"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


def test_internal_errors_are_json_without_traceback(app, client):
    @app.get("/api/v1/_boom")
    def boom():
        raise RuntimeError("secret internals")

    resp = client.get("/api/v1/_boom")
    assert resp.status_code == 500
    text = resp.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert resp.get_json()["error"]["code"] == "internal_error"


def test_demo_command_is_repeatable_and_prints_logins(app, runner):
    from crm_core.customers.models import Customer
    from crm_core.org.models import Employee, User

    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    counts = [db.session.scalar(db.select(db.func.count(m.id))) for m in (User, Employee, Customer)]
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert [db.session.scalar(db.select(db.func.count(m.id))) for m in (User, Employee, Customer)] == counts
    for login in ("admin", "sales.manager", "sales.zhang", "sales.li", "service.dispatcher", "service.engineer",
                  "marketing.wang"):
        assert login in first.output
    assert "demo123456" in first.output


def test_demo_manager_sees_his_salespeople_customers(app, runner, client):
    runner.invoke(args=["demo"])
    from tests.conftest import token_for

    mgr = client.get("/api/v1/customers", headers=token_for(client, "sales.manager", "demo123456")).get_json()
    zhang = client.get("/api/v1/customers", headers=token_for(client, "sales.zhang", "demo123456")).get_json()
    li = client.get("/api/v1/customers", headers=token_for(client, "sales.li", "demo123456")).get_json()
    assert zhang["total"] == 3 and li["total"] == 3
    assert mgr["total"] == 6
    assert {c["name"] for c in zhang["items"]}.isdisjoint({c["name"] for c in li["items"]})


def test_user_create_command(app, runner, client):
    result = runner.invoke(args=["user", "create", "boss", "--password", "a-strong-pass", "--role", "admin"])
    assert result.exit_code == 0, result.output
    from tests.conftest import token_for

    me = client.get("/api/v1/me", headers=token_for(client, "boss", "a-strong-pass")).get_json()
    assert me["roles"] == ["admin"] and me["employee_id"] is not None
    weak = runner.invoke(args=["user", "create", "weak", "--password", "short", "--role", "admin"])
    assert weak.exit_code != 0 and "密码至少" in weak.output


def test_import_layers_hold():
    """crm_core imports no web package; see [tool.importlinter] in pyproject.toml."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    proc = subprocess.run([exe, "--no-cache"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    from sqlalchemy import text

    from crm_core.customers.models import Customer

    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.session.add(Customer(org_id=424242, name="孤儿"))
    import sqlalchemy.exc

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


@pytest.mark.services
def test_wxcrm_worker_delivers_outbox_messages_from_redis(tmp_path, redis_url):
    """End to end: a message queued by the web process is delivered by `wxcrm worker`."""
    from crm_core import outbox
    from crm_core.outbox import OutboxMessage

    url = f"sqlite:///{tmp_path}/w.db"
    app = _make_app(url, REDIS_URL=redis_url)
    with app.app_context():
        db.create_all()
        mid = outbox.queue_message("log", "openid-worker", {"text": "您好"}).id
        db.session.commit()
        assert len(__import__("crm_core.jobs", fromlist=["x"]).backend().queue) == 1
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "WXCRM_ENV": "development"}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "wxcrm"), "worker", "--burst"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with app.app_context():
        msg = db.session.get(OutboxMessage, mid)
        assert (msg.status, msg.attempts) == ("sent", 1)
        db.session.remove()


def test_worker_needs_redis(app, runner):
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output
