"""Regression tests for the security findings (issue #13), one per numbered finding."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from crm_core.db import db
from crm_core.field.models import CheckIn
from crm_core.media import MediaFile
from tests.conftest import _make_app, console_login
from tests.factories import PASSWORD, make_team

NOT_LOOPBACK = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture
def team(app):
    users = make_team()
    db.session.commit()
    return users


def _png(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


# --- 1. referenced ids through the data scope -----------------------------------------------
def test_1_activity_parent_and_ticket_outside_scope_are_refused(team, client, auth_headers):
    rep1, rep3 = auth_headers(team["rep1"]), auth_headers(team["rep3"])
    theirs = client.post("/api/v1/activities", json={"subject": "main", "kind": "visit"}, headers=rep3).get_json()
    resp = client.post("/api/v1/activities", json={"subject": "child", "kind": "call", "parent_id": theirs["id"]},
                       headers=rep1)
    assert resp.status_code == 404 and "parent_id" in resp.get_json()["error"]["fields"]
    resp = client.post("/api/v1/activities", json={"subject": "child", "kind": "call", "ticket_id": 999999}, headers=rep1)
    assert resp.status_code == 404 and "ticket_id" in resp.get_json()["error"]["fields"]
    # the other person's activity got nothing appended
    db.session.expire_all()
    from crm_core.activities.models import Activity

    assert db.session.get(Activity, theirs["id"]).result is None
    # one's own parent still works
    mine = client.post("/api/v1/activities", json={"subject": "main", "kind": "visit"}, headers=rep1).get_json()
    child = client.post("/api/v1/activities", json={"subject": "child", "kind": "call", "parent_id": mine["id"]}, headers=rep1)
    assert child.status_code == 201


# --- 2. media through its record ------------------------------------------------------------
def test_2_a_checkin_photo_is_seen_by_who_may_see_the_checkin_only(team, client, auth_headers):
    rep1, rep2, mgr = auth_headers(team["rep1"]), auth_headers(team["rep2"]), auth_headers(team["manager"])
    up = client.post("/api/v1/media", headers=rep1, data={"purpose": "checkin", "file": (io.BytesIO(_png()), "p.png")},
                     content_type="multipart/form-data").get_json()
    assert client.get(f"/api/v1/media/{up['id']}", headers=rep1).status_code == 200  # the uploader
    assert client.get(f"/api/v1/media/{up['id']}", headers=rep2).status_code == 404  # a colleague: not attached to anything
    # attach it the way the product does: a check-in by rep1 with this photo
    resp = client.post("/api/v1/checkins", headers=rep1, json={"kind": "in", "lat": 31.23, "lng": 121.47,
                                                               "coord_system": "wgs84", "accuracy_m": 10,
                                                               "photo_id": up["id"]})
    assert resp.status_code == 201, resp.get_json()
    assert db.session.scalar(db.select(CheckIn.photo_id)) == up["id"]
    assert client.get(f"/api/v1/media/{up['id']}", headers=mgr).status_code == 200  # rep1's manager sees rep1's check-ins
    assert client.get(f"/api/v1/media/{up['id']}", headers=rep2).status_code == 404  # a peer does not
    assert client.get(f"/api/v1/media/{up['id']}", headers=auth_headers(team["rep3"])).status_code == 404
    assert db.session.get(MediaFile, up["id"]) is not None


# --- 3. the login throttle ------------------------------------------------------------------
def _app(tmp_path, **kw):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", **kw)
    with app.app_context():
        db.create_all()
        make_team()
        db.session.commit()
    return app


def test_3_padded_usernames_and_text_plain_share_the_counter(tmp_path):
    app = _app(tmp_path, LOGIN_RATE_LIMIT="3 per minute")
    c = app.test_client()
    for name in ("acme.rep1", "  acme.rep1 ", "ACME.REP1"):
        assert c.post("/api/v1/auth/token", json={"username": name, "password": "wrong-pass"}).status_code == 401
    resp = c.post("/api/v1/auth/token", data=json.dumps({"username": " acme.rep1", "password": PASSWORD}),
                  content_type="text/plain")
    assert resp.status_code == 429  # same account, same counter, whatever the padding or Content-Type


def test_3_one_password_sprayed_over_many_usernames_is_capped_per_address(tmp_path):
    app = _app(tmp_path, LOGIN_ADDRESS_RATE_LIMIT="4 per minute")
    c = app.test_client()
    for name in ("acme.rep1", "acme.rep2", "acme.rep3", "acme.boss"):
        assert c.post("/api/v1/auth/token", json={"username": name, "password": "Spring2026!"}).status_code == 401
    assert c.post("/api/v1/auth/token", json={"username": "acme.peer", "password": PASSWORD}).status_code == 429
    other = app.test_client()  # another address is not affected
    assert other.post("/api/v1/auth/token", json={"username": "acme.peer", "password": PASSWORD},
                      environ_base=NOT_LOOPBACK).status_code == 200


def test_3_the_throttle_is_shared_by_processes_through_redis(tmp_path, redis_url):
    one = _make_app(f"sqlite:///{tmp_path}/t.db", REDIS_URL=redis_url, LOGIN_RATE_LIMIT="3 per minute")
    with one.app_context():
        db.create_all()
        make_team()
        db.session.commit()
    two = _make_app(f"sqlite:///{tmp_path}/t.db", REDIS_URL=redis_url, LOGIN_RATE_LIMIT="3 per minute")
    body = {"username": "acme.rep2", "password": "wrong-pass"}
    assert one.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert two.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert one.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert two.test_client().post("/api/v1/auth/token", json={**body, "password": PASSWORD}).status_code == 429


def test_3_a_disabled_account_gets_the_wrong_password_answer(team, client):
    team["rep2"].active = False
    db.session.commit()
    right = client.post("/api/v1/auth/token", json={"username": "acme.rep2", "password": PASSWORD})
    wrong = client.post("/api/v1/auth/token", json={"username": "acme.rep2", "password": "wrong-pass"})
    assert right.status_code == wrong.status_code == 401
    assert right.get_json()["error"]["code"] == wrong.get_json()["error"]["code"] == "invalid_credentials"
    assert right.get_json()["error"]["message"] == wrong.get_json()["error"]["message"]


# --- 4. no 500 for hostile input ----------------------------------------------------------------
def test_4_deeply_nested_json_is_a_400(team, client, auth_headers):
    deep = "[" * 50_000 + "]" * 50_000
    for path, headers in (("/api/v1/auth/token", {}), ("/api/v1/activities", auth_headers(team["rep1"]))):
        resp = client.post(path, data=deep, content_type="application/json", headers=headers)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"
    resp = client.post("/m/nope/seen", data=deep, content_type="application/json")
    assert resp.status_code < 500


def test_4_ids_wider_than_64_bits(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    assert client.get("/api/v1/customers/99999999999999999999", headers=h).status_code == 404
    assert client.get("/materials/99999999999999999999/qr.png").status_code == 404
    resp = client.get("/api/v1/customers?page=99999999999999999999", headers=h)
    assert resp.status_code == 422 and "page" in resp.get_json()["error"]["fields"]
    resp = client.post("/api/v1/activities", json={"subject": "x", "kind": "call", "customer_id": 2**70}, headers=h)
    assert resp.status_code == 422 and "customer_id" in resp.get_json()["error"]["fields"]


@pytest.mark.parametrize("value", [0, -1])
def test_4_zero_and_negative_ids_are_refused_with_the_field(team, client, auth_headers, value):
    h = auth_headers(team["rep1"])
    for field in ("parent_id", "ticket_id", "plan_id", "contact_id"):
        resp = client.post("/api/v1/activities", json={"subject": "x", "kind": "call", field: value}, headers=h)
        assert resp.status_code == 422 and field in resp.get_json()["error"]["fields"], (field, resp.get_json())
    resp = client.get(f"/api/v1/customers?segment_id={value}", headers=h)
    assert resp.status_code == 422
    mkt = auth_headers(team["admin"])
    m = client.post("/api/v1/materials", json={"title": "t", "body_html": "<p>b</p>"}, headers=mkt)
    assert m.status_code == 201, m.get_json()
    for what in ("my-link", "my-qrcode"):
        resp = client.post(f"/api/v1/materials/{m.get_json()['id']}/{what}", json={"campaign_id": value}, headers=mkt)
        assert resp.status_code == 422 and "campaign_id" in resp.get_json()["error"]["fields"], resp.get_json()


def test_4_a_missing_referenced_row_is_a_404_not_a_500(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    for field in ("parent_id", "ticket_id", "plan_id"):
        resp = client.post("/api/v1/activities", json={"subject": "x", "kind": "call", field: 999999}, headers=h)
        assert resp.status_code == 404 and field in resp.get_json()["error"]["fields"]


def test_4_a_duplicate_contact_relation_is_a_409(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    cust = client.post("/api/v1/customers", json={"name": "关系测试公司"}, headers=h).get_json()
    a = client.post("/api/v1/contacts", json={"customer_id": cust["id"], "name": "甲"}, headers=h).get_json()
    b = client.post("/api/v1/contacts", json={"customer_id": cust["id"], "name": "乙"}, headers=h).get_json()
    body = {"to_contact_id": b["id"], "relation": "同事"}
    assert client.post(f"/api/v1/contacts/{a['id']}/relations", json=body, headers=h).status_code == 201
    again = client.post(f"/api/v1/contacts/{a['id']}/relations", json=body, headers=h)
    assert again.status_code == 409 and "同事" in again.get_json()["error"]["message"]


def test_4_date_ranges_are_bounded(team, client, auth_headers):
    h = auth_headers(team["admin"])
    for path in ("/api/v1/activities", "/api/v1/reports/funnel", "/api/v1/reports/customers-by-source"):
        resp = client.get(f"{path}?date_from=0001-01-01&date_to=9999-12-31", headers=h)
        assert resp.status_code == 422, (path, resp.status_code)
    resp = client.get("/api/v1/reports/funnel?date_from=2026-01-01&date_to=2025-01-01", headers=h)
    assert resp.status_code == 422 and "date_to" in resp.get_json()["error"]["fields"]
    assert client.get("/api/v1/reports/funnel?date_from=2026-01-01&date_to=2026-06-30", headers=h).status_code == 200


def _console_login(app, next_value: str):
    return console_login(app, "acme.admin", PASSWORD, next_value)[1]


def test_4_crlf_in_the_console_login_next_is_not_followed(team, app):
    resp = _console_login(app, "/console/\r\nSet-Cookie: x=1")
    assert resp.status_code == 302 and "\n" not in resp.headers["Location"] and "Set-Cookie" not in resp.headers["Location"]
    assert "evil.example" not in _console_login(app, "//evil.example/console").headers["Location"]
    assert "evil.example" not in _console_login(app, "/console\\@evil.example").headers["Location"]


# --- 5. smaller ---------------------------------------------------------------------------------
def test_5_security_headers_on_every_answer(team, client):
    console = client.get("/console/login")
    csp = console.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "unsafe-eval" not in csp
    assert console.headers["X-Frame-Options"] == "DENY"
    assert console.headers["X-Content-Type-Options"] == "nosniff"
    assert console.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in console.headers  # development: no HTTPS promised
    api = client.get("/api/v1/openapi.json")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in api.headers
    # a page's inline scripts carry the answer's nonce
    h5 = client.get("/h5/dev-login?openid=oSECURITY01", follow_redirects=True)
    nonce = h5.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in h5.get_data(as_text=True)


def test_5_hsts_in_production_settings(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", HSTS=True)
    assert "max-age=" in app.test_client().get("/healthz").headers["Strict-Transport-Security"]


def test_5_oauth_redirect_uri_ignores_the_host_header(app):
    resp = app.test_client().get("/h5/oauth/start?next=/h5/", headers={"Host": "evil.example"})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert "evil.example" not in location and "redirect_uri=http%3A%2F%2Flocalhost%2Fh5%2Foauth%2Fcallback" in location


def test_5_healthz_tells_anonymous_callers_the_status_only(team, app, auth_headers, client):
    anon = app.test_client().get("/healthz", environ_base=NOT_LOOPBACK).get_json()
    assert anon["status"] == "ok" and anon["database"] == {"ok": True}
    assert "env" not in anon and "backend" not in json.dumps(anon)
    admin = client.get("/healthz", headers=auth_headers(team["admin"]), environ_base=NOT_LOOPBACK).get_json()
    assert admin["database"]["backend"] == "sqlite" and "env" in admin
    rep = client.get("/healthz", headers=auth_headers(team["rep1"]), environ_base=NOT_LOOPBACK).get_json()
    assert "env" not in rep
    assert "env" in app.test_client().get("/healthz").get_json()  # loopback: the operator on the host


def test_5_a_picture_with_too_many_pixels_is_refused_before_decoding(team, client, auth_headers):
    import time

    buf = io.BytesIO()
    Image.new("1", (6300, 6300)).save(buf, "PNG")  # about 5 KB on the wire, 40 megapixels
    t0 = time.perf_counter()
    resp = client.post("/api/v1/media", headers=auth_headers(team["rep1"]),
                       data={"purpose": "checkin", "file": (io.BytesIO(buf.getvalue()), "big.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 413 and "百万像素" in resp.get_json()["error"]["message"]
    assert time.perf_counter() - t0 < 0.5


def test_5_safe_mode_refuses_plaintext_callbacks(tmp_path):
    from tests.wechat_helpers import AES_KEY, message_xml, post

    app = _make_app(f"sqlite:///{tmp_path}/wx.db", WECHAT_AES_KEY=AES_KEY)
    assert app.config["WECHAT_ENCRYPT_MODE"] == "safe"  # the default once a key is set
    with app.app_context():
        db.create_all()
    resp = post(app.test_client(), message_xml("text", "oUser0001", content="你好"))
    assert resp.status_code == 403
    with app.app_context():
        from crm_core.wechat.models import InboundMessage

        assert db.session.scalar(db.select(db.func.count(InboundMessage.id))) == 0
    compatible = _make_app(f"sqlite:///{tmp_path}/wx2.db", WECHAT_AES_KEY=AES_KEY, WECHAT_ENCRYPT_MODE="compatible")
    with compatible.app_context():
        db.create_all()
    assert post(compatible.test_client(), message_xml("text", "oUser0001", content="你好")).status_code == 200
    with pytest.raises(RuntimeError):
        _make_app(f"sqlite:///{tmp_path}/wx3.db", WECHAT_ENCRYPT_MODE="safe")  # safe without a key


# --- idempotency (SPEC.md: Idempotency-Key; issue #14 item 1) -------------------------------------
def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(team, client, auth_headers):
    from crm_core.customers.models import Customer

    h = {**auth_headers(team["rep1"]), "Idempotency-Key": "create-customer-0001"}
    first = client.post("/api/v1/customers", json={"name": "幂等测试公司"}, headers=h)
    again = client.post("/api/v1/customers", json={"name": "幂等测试公司"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(db.select(db.func.count(Customer.id)).where(Customer.name == "幂等测试公司")) == 1
    other = client.post("/api/v1/customers", json={"name": "另一家公司"}, headers=h)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_mismatch"
    # another person's identical key is theirs alone
    h2 = {**auth_headers(team["rep2"]), "Idempotency-Key": "create-customer-0001"}
    assert client.post("/api/v1/customers", json={"name": "另一家公司"}, headers=h2).status_code == 201
    # a refused request (422) is replayed as refused, and a fresh key is a fresh action
    bad = {**auth_headers(team["rep1"]), "Idempotency-Key": "bad-0001"}
    assert client.post("/api/v1/customers", json={}, headers=bad).status_code == 422
    assert client.post("/api/v1/customers", json={}, headers=bad).status_code == 422
    bad_key = {**auth_headers(team["rep1"]), "Idempotency-Key": "含中文"}
    assert client.post("/api/v1/customers", json={"name": "x"}, headers=bad_key).status_code == 422


def test_the_answer_commits_with_the_work_so_a_retry_after_a_crash_is_replayed(team, client, auth_headers, monkeypatch):
    """The answer is stored in the work's own transaction: were the process to die right after
    that commit, the retry still finds the answer (it used to find a key "still working", and
    after the lease would have run the action again)."""
    from crm_core import idempotency
    from crm_core.customers.models import Customer

    def dead(*args, **kwargs):
        raise AssertionError("the answer must already be stored with the work")

    monkeypatch.setattr(idempotency, "complete", dead)  # the late, separate store never happens
    h = {**auth_headers(team["rep1"]), "Idempotency-Key": "crash-after-commit-01"}
    first = client.post("/api/v1/customers", json={"name": "崩溃重试公司"}, headers=h)
    again = client.post("/api/v1/customers", json={"name": "崩溃重试公司"}, headers=h)
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert db.session.scalar(db.select(db.func.count(Customer.id)).where(Customer.name == "崩溃重试公司")) == 1


def test_idempotency_keys_race_to_one_effect(tmp_path):
    """Two requests with one key at the same moment (a double tap): one customer, two equal answers."""
    import threading

    from crm_core.customers.models import Customer
    from tests.conftest import LiveServer, token_for

    app = _app(tmp_path)
    with app.app_context():
        h = {**token_for(app.test_client(), "acme.rep1", PASSWORD), "Idempotency-Key": "race-0001"}
    import urllib.request

    with LiveServer(app) as server:
        answers = []

        def send():
            req = urllib.request.Request(f"{server.url}/api/v1/customers", method="POST",
                                         data=json.dumps({"name": "并发幂等公司"}).encode(),
                                         headers={**h, "Content-Type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                answers.append((resp.status, json.loads(resp.read())["id"]))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(answers) == 4 and len({a[1] for a in answers}) == 1 and {a[0] for a in answers} == {201}
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Customer.id)).where(Customer.name == "并发幂等公司")) == 1


def test_3_without_redis_the_throttle_is_shared_through_a_file_beside_the_database(tmp_path):
    """Two web processes of the embedded mode (two app instances on one SQLite database) count together."""
    one = _app(tmp_path, LOGIN_RATE_LIMIT="3 per minute")
    two = _make_app(f"sqlite:///{tmp_path}/t.db", LOGIN_RATE_LIMIT="3 per minute")
    assert one.config["RATELIMIT_STORAGE_URI"].startswith("wxcrm+sqlite:")
    body = {"username": "acme.rep3", "password": "wrong-pass"}
    assert one.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert two.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert one.test_client().post("/api/v1/auth/token", json=body).status_code == 401
    assert two.test_client().post("/api/v1/auth/token", json={**body, "password": PASSWORD}).status_code == 429
