"""Customers and contacts: trading, contacts and relations, merge, the 360 view."""
from __future__ import annotations

import pytest

from crm_core.audit import AuditEntry
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _customer(client, h, **kw):
    resp = client.post("/api/v1/customers", json={"name": "杭州测试有限公司", **kw}, headers=h)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_register_with_contacts_site_and_tags(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    c = _customer(client, h, phone="0571-1234567", tags=["VIP", "净水"], site={"lat": 30.25, "lng": 120.16, "coord_system": "gcj02"},
                  contacts=[{"name": "陈经理", "phone": "13900000001", "birthday": "1980-05-20", "interests": ["茶"]}])
    assert c["trading"] is False and c["status"] == "active" and c["tags"] == ["VIP", "净水"]
    assert c["site"] == {"lat": 30.25, "lng": 120.16, "coord_system": "gcj02"}
    contacts = client.get(f"/api/v1/contacts?customer_id={c['id']}", headers=h).get_json()
    assert contacts["total"] == 1 and contacts["items"][0]["birthday"] == "1980-05-20"
    assert client.get("/api/v1/contacts?birthday_month=5", headers=h).get_json()["total"] == 1
    assert client.get("/api/v1/contacts?interest=茶", headers=h).get_json()["total"] == 1
    assert client.get("/api/v1/customers?tag=VIP", headers=h).get_json()["total"] == 1
    assert client.get("/api/v1/customers?tag=VI", headers=h).get_json()["total"] == 0


def test_a_change_with_null_empties_a_field_and_keeps_a_required_one(team, client, auth_headers):
    """PATCH with null: an address, a birthday, a lead's company are emptied (they used to stay as they were);
    a name, which every record must have, keeps its value."""
    h = auth_headers(team["rep1"])
    c = _customer(client, h, address="杭州市西湖区文三路1号", industry="制造",
                  contacts=[{"name": "陈经理", "phone": "13900000002", "birthday": "1980-05-20"}])
    r = client.patch(f"/api/v1/customers/{c['id']}", json={"address": None, "name": None, "industry": "零售"}, headers=h)
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["address"], r.get_json()["name"], r.get_json()["industry"]) == (None, "杭州测试有限公司", "零售")
    contact = client.get(f"/api/v1/contacts?customer_id={c['id']}", headers=h).get_json()["items"][0]
    r = client.patch(f"/api/v1/contacts/{contact['id']}", json={"birthday": None}, headers=h)
    assert r.status_code == 200 and r.get_json()["birthday"] is None and r.get_json()["name"] == "陈经理"
    lead = client.post("/api/v1/leads", json={"name": "林女士", "company": "宁波某厂", "phone": "13700002222"}, headers=h).get_json()
    r = client.patch(f"/api/v1/leads/{lead['id']}", json={"company": None}, headers=h)
    assert r.status_code == 200 and r.get_json()["company"] is None


def test_trading_is_an_explicit_step(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    c = _customer(client, h)
    resp = client.post(f"/api/v1/customers/{c['id']}/trading", json={"trading": True}, headers=h)
    assert resp.get_json()["trading"] is True
    assert client.get("/api/v1/customers?trading=true", headers=h).get_json()["total"] == 1


def test_contact_relations(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    c = _customer(client, h, contacts=[{"name": "甲"}, {"name": "乙"}])
    names = {x["name"]: x["id"] for x in client.get(f"/api/v1/contacts?customer_id={c['id']}", headers=h).get_json()["items"]}
    a, b = names["甲"], names["乙"]
    assert client.post(f"/api/v1/contacts/{a}/relations", json={"to_contact_id": b, "relation": "上级"}, headers=h).status_code == 201
    rel = client.get(f"/api/v1/contacts/{b}/relations", headers=h).get_json()["items"]
    assert [(r["relation"], r["direction"], r["contact"]) for r in rel] == [("上级", "from", {"id": a, "name": "甲"})]
    assert client.post(f"/api/v1/contacts/{a}/relations", json={"to_contact_id": a, "relation": "自己"}, headers=h).status_code == 422


def test_merge_moves_every_linked_record_with_an_audit_trail(team, client, auth_headers):
    from crm_core.activities.activities import create_activity
    from crm_core.customers.models import ProductArchive
    from crm_core.customers.products import create_archives, create_product
    from crm_core.org.permissions import load_actor
    from crm_core.sales.models import Lead, Opportunity

    admin = auth_headers(team["admin"])
    keep = _customer(client, admin, name="蓝云净水（杭州）有限公司", phone="0571-1111111")
    gone = _customer(client, admin, name="蓝云净水设备门店", phone="0571-2222222", tags=["老客户"],
                     contacts=[{"name": "重复联系人", "phone": "13911112222"}])
    actor = load_actor(team["admin"])
    product = create_product(actor, {"code": "P1", "name": "净水器"})
    import datetime as dt

    create_archives(actor, [{"serial_no": "SN-1", "product_id": product.id, "customer_id": gone["id"],
                             "sold_on": dt.date(2026, 1, 1)}])
    create_activity(actor, {"subject": "回访", "customer_id": gone["id"]})
    client.post("/api/v1/opportunities", json={"name": "换新", "customer_id": gone["id"]}, headers=admin)
    db.session.add(Lead(org_id=actor.org_id, name="线索", status="converted", customer_id=gone["id"], source="manual"))
    db.session.commit()

    resp = client.post(f"/api/v1/customers/{keep['id']}/merge", json={"merge_id": gone["id"]}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    moved = resp.get_json()["moved"]
    assert moved["contact"] == 1 and moved["product_archive"] == 1 and moved["activity"] == 1
    assert moved["opportunity"] == 1 and moved["lead"] == 1
    for model in (Contact, ProductArchive, Opportunity, Lead):
        assert db.session.scalar(db.select(db.func.count()).select_from(model).where(model.customer_id == gone["id"])) == 0
    merged = db.session.get(Customer, gone["id"])
    assert merged.status == "merged" and merged.merged_into_id == keep["id"]
    assert db.session.get(Customer, keep["id"]).tags == ["老客户"]
    trail = db.session.scalars(db.select(AuditEntry).where(AuditEntry.object_type == "contact", AuditEntry.action == "update")).all()
    assert any(e.changes.get("customer_id") == [gone["id"], keep["id"]] for e in trail)
    # the merged customer is out of lists and no longer collides; its phone now belongs to the kept one
    assert gone["id"] not in [c["id"] for c in client.get("/api/v1/customers", headers=admin).get_json()["items"]]
    dup = client.post("/api/v1/customers", json={"name": "新名字", "phone": "13911112222"}, headers=admin)
    assert dup.status_code == 409 and dup.get_json()["hits"][0]["record"]["id"] == keep["id"]
    assert client.post(f"/api/v1/customers/{keep['id']}/merge", json={"merge_id": gone["id"]}, headers=admin).status_code == 409


def test_merge_needs_rights_and_scope(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    a = _customer(client, h, name="甲公司")
    b = _customer(client, h, name="乙公司")
    assert client.post(f"/api/v1/customers/{a['id']}/merge", json={"merge_id": b["id"]}, headers=h).status_code == 403


def test_customer_360_view(team, client, auth_headers):
    from crm_core.customers.customers import register_360_section

    h = auth_headers(team["rep1"])
    c = _customer(client, h, contacts=[{"name": "陈经理", "phone": "13900000009"}])
    client.post("/api/v1/activities", json={"subject": "上门拜访", "kind": "visit", "customer_id": c["id"]}, headers=h)
    client.post("/api/v1/opportunities", json={"name": "净水项目", "customer_id": c["id"], "amount": 50000}, headers=h)
    register_360_section("followers", lambda actor, customer: [{"openid": "o-test", "customer": customer.id}])
    view = client.get(f"/api/v1/customers/{c['id']}/360", headers=h).get_json()
    assert view["profile"]["name"] == "杭州测试有限公司" and view["profile"]["owner"]["name"] == "员工rep1"
    assert [x["name"] for x in view["contacts"]] == ["陈经理"]
    assert view["recent_activities"][0]["subject"] == "上门拜访"
    assert view["opportunities"][0]["amount"] == 50000.0 and view["figures"]["open_opportunities"] == 1
    assert view["followers"] == [{"openid": "o-test", "customer": c["id"]}]
    assert client.get(f"/api/v1/customers/{c['id']}/360", headers=auth_headers(team["rep3"])).status_code == 404
