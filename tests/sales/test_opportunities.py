"""Opportunities: stage conditions, skipping, approval, competitors, reminders, win/lose, funnel."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_core.clock import travel
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from tests.factories import make_team


@pytest.fixture
def setup(any_app, client, auth_headers):
    users = make_team()
    db.session.commit()
    h = auth_headers(users["rep1"])
    customer = client.post("/api/v1/customers", json={"name": "杭州商机测试有限公司", "contacts": [{"name": "联系人"}]},
                           headers=h).get_json()
    contact_id = client.get(f"/api/v1/contacts?customer_id={customer['id']}", headers=h).get_json()["items"][0]["id"]
    product = client.post("/api/v1/products", json={"code": "WP100", "name": "净水器"}, headers=auth_headers(users["admin"]))
    opp = client.post("/api/v1/opportunities", json={"name": "净水项目", "customer_id": customer["id"]}, headers=h).get_json()
    return users, h, customer, contact_id, product.get_json()["id"], opp


def _stages(opp):
    return {s["name"]: s for s in opp["stages"]}


def test_new_opportunity_starts_at_the_first_stage_with_a_stage_picture(setup):
    _, _, _, _, _, opp = setup
    assert opp["stage"]["name"] == "初步接洽" and opp["status"] == "open"
    assert [s["state"] for s in opp["stages"]] == ["current", "todo", "todo", "todo"]
    assert "必填：联系人" in _stages(opp)["需求确认"]["missing"]


def test_advance_names_the_missing_condition(setup, client):
    users, h, customer, contact_id, product_id, opp = setup
    stages = _stages(opp)
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["需求确认"]["id"]}, headers=h)
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["error"]["code"] == "stage_conditions_missing"
    assert body["missing"] == ["必填：联系人", "需要至少一项已完成的活动"]
    client.patch(f"/api/v1/opportunities/{opp['id']}", json={"contact_id": contact_id}, headers=h)
    act = client.post("/api/v1/activities", json={"subject": "需求调研", "opportunity_id": opp["id"]}, headers=h).get_json()
    assert act["customer_id"] == customer["id"]
    client.post(f"/api/v1/activities/{act['id']}/status", json={"status": "done", "result": "明确需求"}, headers=h)
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["需求确认"]["id"]}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["stage"]["name"] == "需求确认"


def test_skipping_only_skippable_stages(setup, client):
    users, h, customer, contact_id, product_id, opp = setup
    stages = _stages(opp)
    client.patch(f"/api/v1/opportunities/{opp['id']}", json={"amount": 100000, "products": [{"product_id": product_id}]},
                 headers=h)
    # 需求确认 is skippable: straight to 方案报价 works once its own fields are there
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["方案报价"]["id"]}, headers=h)
    assert resp.status_code == 200, resp.get_json()
    # 方案报价 → 商务谈判 needs the expected date and an approval; back to 初步接洽 is always allowed
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["商务谈判"]["id"]}, headers=h)
    assert resp.get_json()["missing"] == ["必填：预计成交日期", "需要审批通过"]
    assert client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["初步接洽"]["id"]},
                       headers=h).status_code == 200
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["商务谈判"]["id"]}, headers=h)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "stage_not_skippable"


def test_approval_by_the_owners_manager(setup, client, auth_headers):
    users, h, customer, contact_id, product_id, opp = setup
    stages = _stages(opp)
    client.patch(f"/api/v1/opportunities/{opp['id']}", json={"amount": 1, "products": [{"product_id": product_id}],
                                                             "expected_close_date": "2026-12-31"}, headers=h)
    client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["方案报价"]["id"]}, headers=h)
    appr = client.post(f"/api/v1/opportunities/{opp['id']}/approvals", json={"stage_id": stages["商务谈判"]["id"]}, headers=h)
    assert appr.status_code == 201
    approval = appr.get_json()
    assert approval["approver_id"] == users["manager"].employee_id and approval["status"] == "pending"
    notice = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.recipient == str(users["manager"].employee_id))).all()
    assert any("申请进入「商务谈判」" in m.payload["text"] for m in notice)
    # the salesperson cannot approve their own request; the peer manager cannot either
    assert client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approve": True}, headers=h).status_code == 403
    assert client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approve": True},
                       headers=auth_headers(users["peer"])).status_code == 403
    mgr = auth_headers(users["manager"])
    assert client.get("/api/v1/approvals", headers=mgr).get_json()["total"] == 1
    assert client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approve": True, "comment": "同意"},
                       headers=mgr).get_json()["status"] == "approved"
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": stages["商务谈判"]["id"]}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["stage"]["name"] == "商务谈判"


def test_competitors_and_win_makes_the_customer_trading(setup, client):
    users, h, customer, contact_id, product_id, opp = setup
    resp = client.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=h, json={"competitors": [
        {"name": "某竞品公司", "product": "X 净水器", "price": 9800, "share": 40}]})
    assert resp.get_json()["competitors"][0] == {"name": "某竞品公司", "product": "X 净水器", "price": 9800.0, "share": 40,
                                                  "note": None}
    too_much = client.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=h, json={"competitors": [
        {"name": "a", "share": 70}, {"name": "b", "share": 50}]})
    assert too_much.status_code == 422
    won = client.post(f"/api/v1/opportunities/{opp['id']}/win", json={"amount": 120000, "reason": "价格与服务"}, headers=h)
    assert won.get_json()["status"] == "won"
    assert db.session.get(Customer, customer["id"]).trading is True
    assert client.post(f"/api/v1/opportunities/{opp['id']}/lose", json={"reason": "x"}, headers=h).status_code == 409


def test_lose_needs_a_reason(setup, client):
    _, h, _, _, _, opp = setup
    assert client.post(f"/api/v1/opportunities/{opp['id']}/lose", json={"reason": ""}, headers=h).status_code == 422
    assert client.post(f"/api/v1/opportunities/{opp['id']}/lose", json={"reason": "选择了竞品"}, headers=h).get_json()["status"] == "lost"


def test_stage_reminder_once(setup):
    users, *_ = setup
    from crm_core.sales.opportunities import stage_reminders

    with travel(timedelta(days=8)):
        assert stage_reminders() == 1
        assert stage_reminders() == 0
    db.session.commit()
    msgs = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.payload["kind"].as_string() == "stage_reminder")).all()
    assert len(msgs) == 1 and msgs[0].recipient == str(users["rep1"].employee_id)


def test_custom_sales_method(setup, client, auth_headers):
    users, h, customer, *_ = setup
    admin = auth_headers(users["admin"])
    resp = client.post("/api/v1/sales-methods", headers=admin, json={"code": "project", "name": "项目型销售", "stages": [
        {"name": "立项", "probability": 20}, {"name": "招投标", "probability": 50, "required_fields": ["competitors"]}]})
    assert resp.status_code == 201
    method = resp.get_json()
    opp = client.post("/api/v1/opportunities", headers=h, json={"name": "园区项目", "customer_id": customer["id"],
                                                                 "method_id": method["id"]}).get_json()
    assert opp["stage"]["name"] == "立项"
    resp = client.post(f"/api/v1/opportunities/{opp['id']}/advance", json={"stage_id": method["stages"][1]["id"]}, headers=h)
    assert resp.get_json()["missing"] == ["必填：竞争对手"]
    bad = client.post("/api/v1/sales-methods", headers=admin, json={"code": "x", "name": "x", "stages": [
        {"name": "a", "required_fields": ["favourite_colour"]}]})
    assert bad.status_code == 422


def test_funnel_within_the_data_scope(setup, client, auth_headers):
    users, h, customer, contact_id, product_id, opp = setup
    client.patch(f"/api/v1/opportunities/{opp['id']}", json={"amount": 50000}, headers=h)
    rep3 = auth_headers(users["rep3"])
    c3 = client.post("/api/v1/customers", json={"name": "华西客户"}, headers=rep3).get_json()
    o3 = client.post("/api/v1/opportunities", json={"name": "华西项目", "customer_id": c3["id"], "amount": 7000}, headers=rep3)
    client.post(f"/api/v1/opportunities/{o3.get_json()['id']}/win", json={}, headers=rep3)
    mine = client.get("/api/v1/reports/funnel", headers=auth_headers(users["manager"])).get_json()
    assert mine["stages"][0]["count"] == 1 and mine["stages"][0]["amount"] == 50000
    assert mine["stages"][0]["weighted_amount"] == 5000 and mine["won"]["count"] == 0
    everyone = client.get("/api/v1/reports/funnel", headers=auth_headers(users["boss"])).get_json()
    assert everyone["won"] == {"count": 1, "amount": 7000.0} and everyone["totals"]["win_rate"] == 1.0


def test_the_customer_360_lists_only_opportunities_and_leads_the_viewer_may_see(setup, client, auth_headers):
    """A dispatcher opens the customer (service sees every customer) but not the salesperson's
    opportunities or leads; the owner sees them; a colleague of the owner's peer team neither."""
    from crm_core.org.organization import create_user, upsert_employee
    from tests.factories import PASSWORD

    users, h, customer, _, _, opp = setup
    client.post("/api/v1/leads", json={"name": "王先生", "company": "杭州商机测试有限公司", "customer_id": customer["id"]}, headers=h)
    org = users["rep1"].organization
    disp = create_user(org, f"{org.code}.disp", PASSWORD, ["dispatcher"], upsert_employee(org, "DISP", "调度员"))
    db.session.commit()
    mine = client.get(f"/api/v1/customers/{customer['id']}/360", headers=h).get_json()
    assert [o["id"] for o in mine["opportunities"]] == [opp["id"]] and mine["figures"]["open_opportunities"] == 1
    theirs = client.get(f"/api/v1/customers/{customer['id']}/360", headers=auth_headers(disp))
    assert theirs.status_code == 200
    v = theirs.get_json()
    assert v["opportunities"] == [] and v["leads"] == [] and v["figures"]["open_opportunities"] == 0
