"""Audit log: who changed what, when, before and after."""
from __future__ import annotations

from crm_core.audit import AuditEntry
from crm_core.db import db
from tests.factories import make_team


def test_api_writes_are_audited_with_actor_before_after_and_request_id(any_app, client, auth_headers):
    users = make_team()
    db.session.commit()
    h = auth_headers(users["rep1"])
    created = client.post("/api/v1/customers", json={"name": "杭州审计测试有限公司", "phone": "0571-1"}, headers=h).get_json()
    resp = client.patch(f"/api/v1/customers/{created['id']}", json={"phone": "0571-2"},
                        headers={**h, "X-Request-ID": "req-audit-000001"})
    assert resp.status_code == 200
    trail = client.get(f"/api/v1/audit?object_type=customer&object_id={created['id']}", headers=auth_headers(users["admin"]))
    assert trail.status_code == 200
    items = trail.get_json()["items"]
    assert [i["action"] for i in items] == ["update", "create"]
    update, create = items
    assert update["changes"] == {"phone": ["0571-1", "0571-2"]}
    assert update["actor_user_id"] == users["rep1"].id and update["actor"] == "员工rep1"
    assert update["request_id"] == "req-audit-000001"
    assert create["changes"]["name"] == [None, "杭州审计测试有限公司"]


def test_secrets_never_enter_the_log(any_app):
    users = make_team()
    db.session.commit()
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.object_type == "user",
                                                           AuditEntry.object_id == users["rep1"].id)).first()
    assert entry.changes["password_hash"] == [None, "***"]


def test_rolled_back_change_leaves_no_audit_entry(any_app):
    users = make_team()
    db.session.commit()
    before = db.session.scalar(db.select(db.func.count(AuditEntry.id)))
    users["rep1"].active = False
    db.session.flush()
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == before


def test_audit_needs_permission(any_app, client, auth_headers):
    users = make_team()
    db.session.commit()
    resp = client.get("/api/v1/audit?object_type=customer&object_id=1", headers=auth_headers(users["rep1"]))
    assert resp.status_code == 403
