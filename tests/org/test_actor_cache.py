"""The actor's roles are kept per process (#20 throughput), and a change to a role or to a user's
roles applies to the very next request — in this process and in another one on the same database."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import _make_app, token_for


@pytest.fixture
def two_processes(app, tmp_path):
    """The test's app (the admin's process) and a second app on the same database file, with its
    own engine and actor cache (the clerk's process)."""
    from crm_core.org.models import Organization
    from crm_core.org.organization import create_user, upsert_department, upsert_employee, upsert_position

    org = Organization(code="acme", name="杭州测试有限公司")
    db.session.add(org)
    db.session.flush()
    create_user(org, "boss", "boss-pass-1", ["admin"])
    pos = upsert_position(org, "CLERK", "内勤", upsert_department(org, "SALES", "销售部"))
    emp = upsert_employee(org, "E001", "小王", pos, "13800000001")
    create_user(org, "clerk", "clerk-pass-1", ["salesperson"], emp)
    db.session.commit()
    other = _make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    yield app.test_client(), other.test_client()
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_revoked_permission_applies_to_the_next_request_in_every_process(two_processes):
    admin_side, clerk_side = two_processes
    boss = token_for(admin_side, "boss", "boss-pass-1")
    clerk = token_for(clerk_side, "clerk", "clerk-pass-1")
    assert clerk_side.get("/api/v1/customers", headers=clerk).status_code == 200  # cached in the clerk's process now

    role = admin_side.post("/api/v1/roles", headers=boss, json={"code": "clerk_ro", "name": "只看活动"}).get_json()
    r = admin_side.put(f"/api/v1/roles/{role['id']}/grants", headers=boss,
                       json={"permissions": ["activity:view"], "scopes": {"activity": {"scope": "self"}}})
    assert r.status_code == 200
    users = {u["username"]: u for u in admin_side.get("/api/v1/users", headers=boss).get_json()["items"]}
    r = admin_side.patch(f"/api/v1/users/{users['clerk']['id']}", headers=boss, json={"roles": ["clerk_ro"]})
    assert r.status_code == 200, r.get_json()

    denied = clerk_side.get("/api/v1/customers", headers=clerk)
    assert denied.status_code == 403 and "客户" in denied.get_json()["error"]["message"]
    assert clerk_side.get("/api/v1/activities", headers=clerk).status_code == 200

    # a grant added to the role the clerk holds now applies at once as well
    r = admin_side.put(f"/api/v1/roles/{role['id']}/grants", headers=boss,
                       json={"permissions": ["activity:view", "customer:view"],
                             "scopes": {"activity": {"scope": "self"}, "customer": {"scope": "self"}}})
    assert r.status_code == 200
    assert clerk_side.get("/api/v1/customers", headers=clerk).status_code == 200


def test_an_unchanged_actor_is_loaded_in_one_query(two_processes):
    from sqlalchemy import event

    admin_side, _ = two_processes
    boss = token_for(admin_side, "boss", "boss-pass-1")
    admin_side.get("/api/v1/me", headers=boss)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert admin_side.get("/api/v1/me", headers=boss).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert not any("role_permission" in s or "role_data_scope" in s or "user_role" in s for s in seen), seen
