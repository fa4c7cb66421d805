"""Employee auth: tokens (expiry, revocation), console login with CSRF, throttling; H5 session."""
from __future__ import annotations

import re
from datetime import timedelta

from crm_core.clock import travel
from crm_core.db import db
from tests.conftest import _make_app
from tests.factories import PASSWORD, make_team


def test_token_grants_access_and_me_describes_the_user(app, client):
    users = make_team()
    db.session.commit()
    resp = client.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": PASSWORD})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["expires_in"] == 8 * 3600 and len(body["access_token"]) > 30
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["username"] == "acme.rep1"
    assert me.get_json()["employee_id"] == users["rep1"].employee_id
    assert me.get_json()["roles"] == ["salesperson"]


def test_wrong_password_and_unknown_user_get_the_same_answer(app, client):
    make_team()
    db.session.commit()
    a = client.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": "wrong-password"})
    b = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.get_json()["error"] == {**b.get_json()["error"], "request_id": a.get_json()["error"]["request_id"]}


def test_missing_and_malformed_bearer(app, client):
    assert client.get("/api/v1/me").get_json()["error"]["code"] == "missing_token"
    resp = client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_expires(app, client):
    make_team()
    db.session.commit()
    token = client.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": PASSWORD}).get_json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=h).status_code == 200
    with travel(timedelta(hours=8, seconds=1)):
        resp = client.get("/api/v1/me", headers=h)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "token_expired"


def test_token_revocation(app, client):
    make_team()
    db.session.commit()
    token = client.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": PASSWORD}).get_json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/v1/auth/token", headers=h).status_code == 204
    resp = client.get("/api/v1/me", headers=h)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_revoked"


def test_disabling_a_user_revokes_their_tokens(app, client, auth_headers):
    users = make_team()
    db.session.commit()
    rep_h = auth_headers(users["rep1"])
    resp = client.patch(f"/api/v1/users/{users['rep1'].id}", json={"active": False}, headers=auth_headers(users["admin"]))
    assert resp.status_code == 200
    assert client.get("/api/v1/me", headers=rep_h).status_code == 401


def test_login_throttling_counts_failures_only(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        db.create_all()
        make_team()
        db.session.commit()
        c = app.test_client()
        for _ in range(5):  # successes do not count
            assert c.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": PASSWORD}).status_code == 200
        for _ in range(3):
            assert c.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": "bad-password"}).status_code == 401
        resp = c.post("/api/v1/auth/token", json={"username": "acme.rep1", "password": PASSWORD})
        assert resp.status_code == 429
        assert resp.get_json()["error"]["code"] == "rate_limited"
        assert "Retry-After" in resp.headers
        # another account from the same address is not locked out
        assert c.post("/api/v1/auth/token", json={"username": "acme.rep2", "password": PASSWORD}).status_code == 200
        db.session.remove()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_console_login_requires_csrf_token(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", WTF_CSRF_ENABLED=True)
    with app.app_context():
        db.create_all()
        make_team()
        db.session.commit()
        db.session.remove()
    # no app context is held open here: each request gets its own, as in production
    c = app.test_client()
    resp = c.post("/console/login", data={"username": "acme.admin", "password": PASSWORD})
    assert resp.status_code == 400
    assert "页面已过期" in resp.get_data(as_text=True)
    token = _csrf(c.get("/console/login").get_data(as_text=True))
    resp = c.post("/console/login", data={"username": "acme.admin", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/")
    assert "组织架构" in c.get("/console/").get_data(as_text=True)
    # logging out is a POST that needs the token too
    assert c.post("/console/logout").status_code == 400
    page = c.get("/console/").get_data(as_text=True)
    assert c.post("/console/logout", data={"csrf_token": _csrf(page)}).status_code == 302
    assert c.get("/console/").status_code == 302


def test_console_wrong_password_shows_message(app, client):
    make_team()
    db.session.commit()
    app.config["WTF_CSRF_ENABLED"] = False
    resp = client.post("/console/login", data={"username": "acme.admin", "password": "nope-nope"})
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.get_data(as_text=True)


def test_console_pages_redirect_to_login(app, client):
    resp = client.get("/console/org")
    assert resp.status_code == 302 and "/console/login?next=/console/org" in resp.headers["Location"]


def test_h5_dev_login_sets_wechat_session(app, client):
    assert "请在微信中" in client.get("/h5/").get_data(as_text=True)
    resp = client.get("/h5/dev-login?openid=oDEV_user_0001")
    assert resp.status_code == 302
    assert "已识别您的微信身份" in client.get("/h5/").get_data(as_text=True)
    bad = client.get("/h5/dev-login?openid=<script>")
    assert bad.status_code == 422


def test_h5_dev_login_is_absent_when_dev_routes_are_off(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", DEV_ROUTES=False)
    assert app.test_client().get("/h5/dev-login?openid=oDEV_user_0001").status_code == 404
