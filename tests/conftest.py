"""Fixtures: a fresh database per test, clients, real PostgreSQL/Redis, headless Chromium."""
from __future__ import annotations

import os
import re
import tempfile
import threading

import pytest

import crm_core.security
from crm_core.db import db
from tests.services import PostgresServer, RedisServer, new_database, unavailable

# cheap password hashes in tests (production keeps scrypt); verification reads the method from the hash
crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"


def _make_app(database_url: str, **overrides):
    from wxapp import create_app

    cfg = {"TESTING": True, "DATABASE_URL": database_url, "JOBS_EAGER": True, "WXCRM_ENV": "development",
           "SECRET_KEY": "test-secret", "LOGIN_RATE_LIMIT": "1000 per minute", "LOGIN_ADDRESS_RATE_LIMIT": "1000 per minute",
           # WeChat: known keys; the API base is an unused port unless a test points it at a live sandbox
           "WECHAT_APPID": "wxtestappid000001", "WECHAT_SECRET": "test-secret", "WECHAT_TOKEN": "testtoken",
           "WECHAT_AES_KEY": None, "WECHAT_API_BASE": "http://127.0.0.1:9/sandbox/wechat/",
           "PUBLIC_BASE_URL": "http://localhost", "MEDIA_ROOT": tempfile.mkdtemp(prefix="wxcrm-media-"),
           "SPOOL_DIR": tempfile.mkdtemp(prefix="wxcrm-spool-")}
    cfg.update(overrides)
    return create_app(cfg)


def _create_schema():
    from crm_core.org.organization import ensure_builtin_roles

    db.create_all()
    ensure_builtin_roles()
    db.session.commit()


@pytest.fixture
def app(tmp_path):
    """An app on a fresh SQLite file, with an app context pushed."""
    app = _make_app(f"sqlite:///{tmp_path}/test.db")
    with app.app_context():
        _create_schema()
        yield app
        db.session.remove()
        db.engine.dispose()


def _current_app(request):
    name = "any_app" if "any_app" in request.fixturenames else "app"
    return request.getfixturevalue(name)


@pytest.fixture
def client(request):
    """A test client for the test's app (``any_app`` when the test runs on both databases)."""
    return _current_app(request).test_client()


@pytest.fixture
def runner(request):
    """Runs the ``wxcrm`` command group against the test's app."""
    import functools

    from wxapp.cli import cli

    r = _current_app(request).test_cli_runner()
    r.invoke = functools.partial(r.invoke, cli)
    return r


# --- real services ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    url = server.start()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...: each worker flushes a database of its own
    if worker.startswith("gw") and url.rsplit("/", 1)[-1].isdigit():
        url = f"{url.rsplit('/', 1)[0]}/{int(worker[2:]) % 15 + 1}"
    yield url
    server.stop()


_pg_counter = iter(range(1, 10_000))


@pytest.fixture
def pg_url(postgres_server):
    """A fresh, empty PostgreSQL database for this test."""
    return new_database(postgres_server, f"wxcrm_t{os.getpid()}_{next(_pg_counter)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, tmp_path):
    """The same test on SQLite and on real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/test.db"
    else:
        url = request.getfixturevalue("pg_url")
    app = _make_app(url)
    with app.app_context():
        _create_schema()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def redis_url(redis_server):
    import redis

    conn = redis.Redis.from_url(redis_server)
    conn.flushdb()
    return redis_server


# --- API helpers --------------------------------------------------------------------------
def console_login(app, username: str, password: str, next_value: str | None = None):
    """Sign in to the console with a fresh test client (CSRF token read from the form); returns
    (client, answer to the POST)."""
    from flask import g

    g.pop("csrf_token", None)  # Flask-WTF caches the token in g, and a test's app context outlives requests
    c = app.test_client()
    html = c.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    data = {"username": username, "password": password}
    if next_value is not None:
        data["next"] = next_value
    if token:
        data["csrf_token"] = token.group(1)
    return c, c.post("/console/login", data=data)


def token_for(client, username: str, password: str) -> dict:
    resp = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


@pytest.fixture
def auth_headers(client):
    from tests.factories import PASSWORD

    def make(user):
        return token_for(client, user.username, PASSWORD)

    return make


# --- a live server and headless Chromium --------------------------------------------------
class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


def _live(tmp_path, documents: bool):
    from crm_core.demo import load_demo

    app = _make_app(f"sqlite:///{tmp_path}/live.db")
    with app.app_context():
        _create_schema()
        load_demo(documents=documents)
        db.session.commit()
        db.session.remove()
    return LiveServer(app)


@pytest.fixture
def live_app(tmp_path):
    """An app with the demo loaded, served over real HTTP on a free port."""
    with _live(tmp_path, documents=False) as server:
        yield server


@pytest.fixture
def live_demo(tmp_path):
    """``live_app`` with the demo's documents too (``wxcrm demo``: quotes, a contract with an order, a ticket…)."""
    with _live(tmp_path, documents=True) as server:
        yield server


CHROMIUM = "/usr/bin/chromium"
CSP_VIOLATIONS: list[str] = []


class _WatchedBrowser:
    """The Chromium browser, with every context reporting Content-Security-Policy violations
    (our pages must work under the CSP they are served with; a test fails on a violation)."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **kwargs):
        ctx = self._browser.new_context(**kwargs)
        ctx.on("console", lambda msg: CSP_VIOLATIONS.append(f"{msg.text} ({msg.location.get('url')})")
               if "Content Security Policy" in msg.text else None)
        return ctx

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def _no_csp_violations(request):
    CSP_VIOLATIONS.clear()
    yield
    if "browser" in request.fixturenames and CSP_VIOLATIONS:
        found = list(CSP_VIOLATIONS)
        CSP_VIOLATIONS.clear()
        pytest.fail("Content-Security-Policy violations: " + "; ".join(found[:5]))


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
        yield _WatchedBrowser(b)
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()
