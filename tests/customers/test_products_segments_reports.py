"""Product archives and warranty, segments, the value pyramid, source analysis, the mobile flow."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm_core.clock import travel
from crm_core.customers.models import Customer
from crm_core.customers.products import add_months
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.service.warranty import warranty_reminders
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


@pytest.fixture
def catalogue(team, client, auth_headers):
    admin = auth_headers(team["admin"])
    p = client.post("/api/v1/products", json={"code": "WP100", "name": "商用净水器", "warranty_months": 24}, headers=admin)
    return p.get_json()


def test_warranty_dates():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2026, 11, 15), 24) == date(2028, 11, 15)


def test_archives_from_a_shipment_and_all_or_nothing_bulk(team, catalogue, client, auth_headers):
    h = auth_headers(team["rep1"])
    c = client.post("/api/v1/customers", json={"name": "档案客户"}, headers=h).get_json()
    resp = client.post("/api/v1/product-archives/from-shipment", headers=h, json={
        "shipment_ref": "CK-2026-001", "customer_id": c["id"], "shipped_on": "2026-03-10",
        "lines": [{"product_id": catalogue["id"], "serials": ["SN001", "SN002"]}]})
    assert resp.status_code == 201, resp.get_json()
    items = resp.get_json()["items"]
    assert [(a["serial_no"], a["warranty_until"], a["shipment_ref"]) for a in items] == [
        ("SN001", "2028-03-10", "CK-2026-001"), ("SN002", "2028-03-10", "CK-2026-001")]
    bad = client.post("/api/v1/product-archives", headers=h, json={"items": [
        {"serial_no": "SN003", "product_id": catalogue["id"], "customer_id": c["id"], "sold_on": "2026-01-01"},
        {"serial_no": "SN001", "product_id": catalogue["id"], "customer_id": c["id"], "sold_on": "2026-01-01"},
        {"serial_no": "SN004", "product_id": 999999, "customer_id": c["id"], "sold_on": "2026-01-01"}]})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"items.1.serial_no", "items.2.product_id"}
    assert client.get("/api/v1/product-archives", headers=h).get_json()["total"] == 2  # nothing of the bad batch
    view = client.get(f"/api/v1/customers/{c['id']}/360", headers=h).get_json()
    assert view["product_archives"][0]["in_warranty"] is True


def test_warranty_reminder_once_through_the_outbox(team, catalogue, client, auth_headers):
    h = auth_headers(team["rep1"])
    c = client.post("/api/v1/customers", json={"name": "保修客户"}, headers=h).get_json()
    sold = date.today() - timedelta(days=365 * 2 - 20)  # expires in about 20 days
    client.post("/api/v1/product-archives", headers=h, json={"items": [
        {"serial_no": "SN-W1", "product_id": catalogue["id"], "customer_id": c["id"], "sold_on": sold.isoformat()},
        {"serial_no": "SN-W2", "product_id": catalogue["id"], "customer_id": c["id"], "sold_on": date.today().isoformat()}]})
    assert warranty_reminders() == 1
    assert warranty_reminders() == 0
    db.session.commit()
    msgs = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.payload["kind"].as_string() == "warranty_expiring")).all()
    assert len(msgs) == 1 and "SN-W1" in msgs[0].payload["text"] and msgs[0].status == "sent"
    assert msgs[0].recipient == str(team["rep1"].employee_id)
    expiring = client.get("/api/v1/product-archives?expiring_within_days=30", headers=h).get_json()
    assert [a["serial_no"] for a in expiring["items"]] == ["SN-W1"]


def test_segments_over_customers_and_contacts(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    client.post("/api/v1/customers", json={"name": "茶企甲", "tags": ["VIP"], "source": "exhibition", "industry": "茶叶",
                                           "contacts": [{"name": "甲", "birthday": "1985-12-03", "interests": ["高尔夫"]}]}, headers=h)
    client.post("/api/v1/customers", json={"name": "餐饮乙", "source": "referral",
                                           "contacts": [{"name": "乙", "birthday": "1990-06-01"}]}, headers=h)
    seg = client.post("/api/v1/segments", headers=h, json={"name": "VIP茶企", "conditions": [
        {"field": "tags", "op": "contains", "value": "VIP"}, {"field": "industry", "op": "eq", "value": "茶叶"}]}).get_json()
    members = client.get(f"/api/v1/segments/{seg['id']}/members", headers=h).get_json()
    assert [m["name"] for m in members["items"]] == ["茶企甲"]
    seg2 = client.post("/api/v1/segments", headers=h, json={"name": "12月生日", "target": "contact", "match": "any", "conditions": [
        {"field": "birthday_month", "op": "eq", "value": 12}, {"field": "interests", "op": "contains", "value": "钓鱼"}]}).get_json()
    assert [m["name"] for m in client.get(f"/api/v1/segments/{seg2['id']}/members", headers=h).get_json()["items"]] == ["甲"]
    assert client.get(f"/api/v1/customers?segment_id={seg['id']}", headers=h).get_json()["total"] == 1
    # members are scoped: another salesperson sees none of them
    assert client.get(f"/api/v1/segments/{seg['id']}/members", headers=auth_headers(team["rep3"])).get_json()["total"] == 0
    bad = client.post("/api/v1/segments", headers=h, json={"name": "坏的", "conditions": [{"field": "salary", "op": "eq"}]})
    assert bad.status_code == 422


def test_value_pyramid_scores_and_levels(team, client, auth_headers):
    from crm_core.customers.value import recompute_all_values

    h = auth_headers(team["rep1"])
    big = client.post("/api/v1/customers", json={"name": "大客户"}, headers=h).get_json()
    small = client.post("/api/v1/customers", json={"name": "小客户"}, headers=h).get_json()
    opp = client.post("/api/v1/opportunities", json={"name": "大单", "customer_id": big["id"]}, headers=h).get_json()
    client.post(f"/api/v1/opportunities/{opp['id']}/win", json={"amount": 600000}, headers=h)  # recomputed on change
    db.session.expire_all()
    assert db.session.get(Customer, big["id"]).value_level == "A"
    assert db.session.get(Customer, small["id"]).value_level == "D"
    pyramid = client.get("/api/v1/reports/customer-pyramid?level=A", headers=h).get_json()
    assert {lv["code"]: lv["count"] for lv in pyramid["levels"]} == {"A": 1, "B": 0, "C": 0, "D": 1}
    assert [c["name"] for c in pyramid["customers"]] == ["大客户"]
    # reconfigure: only contacts count now; levels recompute
    admin = auth_headers(team["admin"])
    resp = client.put("/api/v1/settings/customer-value", headers=admin, json={
        "indicators": [{"code": "contact_count", "weight": 1, "full_marks_at": 2}],
        "levels": [{"code": "高", "name": "高价值", "min_score": 50}, {"code": "低", "name": "其他", "min_score": 0}]})
    assert resp.status_code == 200, resp.get_json()
    db.session.expire_all()
    assert db.session.get(Customer, big["id"]).value_level == "低"
    with travel(timedelta(days=1)):
        assert recompute_all_values() >= 2
    bad = client.put("/api/v1/settings/customer-value", headers=admin, json={
        "indicators": [{"code": "contact_count"}], "levels": [{"code": "X", "name": "x", "min_score": 10}]})
    assert bad.status_code == 422


def test_customers_by_source(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    for name, source in [("a", "exhibition"), ("b", "exhibition"), ("c", "referral")]:
        client.post("/api/v1/customers", json={"name": name, "source": source}, headers=h)
    report = client.get("/api/v1/reports/customers-by-source", headers=h).get_json()
    assert report["total"] == 3
    assert report["items"][0] == {"source": "exhibition", "total": 2, "trading": 0, "non_trading": 2, "share": 0.667,
                                  "conversion_rate": 0.0}


def test_mobile_sales_flow_end_to_end(team, client, auth_headers):
    """客户备案 → 活动跟踪 → 商机备案 → 商机跟踪 → 赢单, each one short call."""
    h = auth_headers(team["rep1"])
    c = client.post("/api/v1/mobile/customers", headers=h, json={
        "name": "杭州移动端客户有限公司", "phone": "0571-55556666", "contact_name": "周总", "contact_phone": "13966667777",
        "site": {"lat": 30.27, "lng": 120.15, "coord_system": "gcj02"}})
    assert c.status_code == 201
    cid = c.get_json()["id"]
    dup = client.post("/api/v1/mobile/customers", headers=auth_headers(team["rep3"]), json={
        "name": "别的名字", "contact_name": "周总", "contact_phone": "139 6666 7777"})
    assert dup.status_code == 409  # the collision check guards the phone registration too
    act = client.post("/api/v1/activities", headers=h, json={"subject": "首次拜访", "kind": "visit", "customer_id": cid}).get_json()
    client.post(f"/api/v1/activities/{act['id']}/status", json={"status": "done"}, headers=h)
    opp = client.post("/api/v1/opportunities", headers=h, json={"name": "新风系统", "customer_id": cid}).get_json()
    contact = client.get(f"/api/v1/contacts?customer_id={cid}", headers=h).get_json()["items"][0]
    client.patch(f"/api/v1/opportunities/{opp['id']}", json={"contact_id": contact["id"]}, headers=h)
    act2 = client.post("/api/v1/activities", headers=h, json={"subject": "需求沟通", "opportunity_id": opp["id"]}).get_json()
    client.post(f"/api/v1/activities/{act2['id']}/status", json={"status": "done"}, headers=h)
    stage2 = opp["stages"][1]["id"]
    assert client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stage2}, headers=h).status_code == 200
    won = client.post(f"/api/v1/opportunities/{opp['id']}/win", json={"amount": 30000}, headers=h).get_json()
    assert won["status"] == "won"
    assert client.get(f"/api/v1/customers/{cid}", headers=h).get_json()["trading"] is True
