"""Leads: channels, assignment, collaboration, closing, conversion (atomic, never a second customer)."""
from __future__ import annotations

import pytest

from crm_core.activities.models import Activity
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.sales.models import Lead, Opportunity
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _lead(client, h, **kw):
    resp = client.post("/api/v1/leads", json={"name": "王先生", "company": "杭州新客户科技有限公司", "phone": "13700001111", **kw},
                       headers=h)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_leads_from_channels_and_filters(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    _lead(client, h, source="wechat_intent", source_ref="share:abc")
    _lead(client, h, name="李女士", company="宁波某某", phone="13700002222", source="import")
    assert client.get("/api/v1/leads?source=wechat_intent", headers=h).get_json()["total"] == 1
    bad = client.post("/api/v1/leads", json={"name": "x", "source": "carrier-pigeon"}, headers=h)
    assert bad.status_code == 422 and "source" in bad.get_json()["error"]["fields"]


def test_assign_collaborate_close(team, client, auth_headers):
    mgr = auth_headers(team["manager"])
    lead = _lead(client, mgr)
    assert client.post(f"/api/v1/leads/{lead['id']}/assign", json={"employee_id": team["rep2"].employee_id},
                       headers=mgr).get_json()["owner_id"] == team["rep2"].employee_id
    rep2 = auth_headers(team["rep2"])
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=rep2).status_code == 200
    # salespeople cannot reassign
    assert client.post(f"/api/v1/leads/{lead['id']}/assign", json={"employee_id": team["rep1"].employee_id},
                       headers=rep2).status_code == 403
    # a collaborator outside the scope may then see it
    rep3 = auth_headers(team["rep3"])
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=rep3).status_code == 404
    client.post(f"/api/v1/leads/{lead['id']}/collaborators", json={"employee_id": team["rep3"].employee_id}, headers=rep2)
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=rep3).status_code == 200
    assert client.post(f"/api/v1/leads/{lead['id']}/close", json={"reason": ""}, headers=rep2).status_code == 422
    closed = client.post(f"/api/v1/leads/{lead['id']}/close", json={"reason": "预算不足"}, headers=rep2).get_json()
    assert closed["status"] == "closed" and closed["close_reason"] == "预算不足"
    assert client.post(f"/api/v1/leads/{lead['id']}/close", json={"reason": "再关"}, headers=rep2).status_code == 409


def test_conversion_creates_customer_contact_opportunity_activity(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    lead = _lead(client, h, product_interest="商用净水器", title="采购经理")
    resp = client.post(f"/api/v1/leads/{lead['id']}/convert", json={"amount": 80000}, headers=h)
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["customer_created"] is True
    customer = db.session.get(Customer, out["customer_id"])
    contact = db.session.get(Contact, out["contact_id"])
    opp = db.session.get(Opportunity, out["opportunity_id"])
    act = db.session.get(Activity, out["activity_id"])
    assert customer.name == "杭州新客户科技有限公司" and customer.phone == "13700001111" and customer.source == "lead"
    assert contact.name == "王先生" and contact.title == "采购经理"
    assert opp.name == "商用净水器" and float(opp.amount) == 80000 and opp.customer_id == customer.id
    assert act.customer_id == customer.id and act.lead_id == lead["id"]
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=h).get_json()["status"] == "converted"
    assert client.post(f"/api/v1/leads/{lead['id']}/convert", json={}, headers=h).status_code == 409


def test_conversion_reuses_the_existing_customer(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    existing = client.post("/api/v1/customers", json={"name": "杭州新客户科技有限公司"}, headers=h).get_json()
    lead = _lead(client, h, company="新客户科技（杭州）股份有限公司", phone="13800000000")
    out = client.post(f"/api/v1/leads/{lead['id']}/convert", json={"create_opportunity": False}, headers=h).get_json()
    assert out["customer_id"] == existing["id"] and out["customer_created"] is False
    assert out["opportunity_id"] is None
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1
    # matched by phone too
    lead2 = _lead(client, h, name="孙先生", company=None, phone="+86 137 0000 1111")
    client.post("/api/v1/customers", json={"name": "别家", "phone": "13700001111"}, headers=auth_headers(team["rep2"]))
    resp = client.post(f"/api/v1/leads/{lead2['id']}/convert", json={}, headers=h)
    assert resp.status_code == 409  # the phone belongs to rep2's customer, outside rep1's scope
    assert resp.get_json()["hits"][0]["record"]["owner"] == "员工rep2"
    assert db.session.get(Lead, lead2["id"]).status == "new"


def test_conversion_plan_attaches_the_contact_with_the_phone_and_the_open_opportunity(team, client, auth_headers):
    """A lead whose phone is an existing contact's: the plan (and a convert that follows it)
    attaches that contact and the customer's open opportunity instead of adding a second
    contact with the same phone and an empty 新商机 (#14 item 9)."""
    h = auth_headers(team["rep1"])
    cust = client.post("/api/v1/customers", headers=h, json={"name": "杭州西湖茶业有限公司", "contacts": [
        {"name": "陈建国", "phone": "13905710001"}]}).get_json()
    opp = client.post("/api/v1/opportunities", headers=h, json={"name": "车间净水改造", "customer_id": cust["id"]}).get_json()
    lead = _lead(client, h, name="吴经理", company="西湖茶业集团", phone="13905710001")
    plan = client.get(f"/api/v1/leads/{lead['id']}/conversion-plan", headers=h).get_json()
    assert plan["customer"] == {"action": "attach", "id": cust["id"], "name": "杭州西湖茶业有限公司"}
    assert plan["contact"]["action"] == "attach" and plan["contact"]["name"] == "陈建国"
    assert plan["opportunity"] == {"action": "attach", "id": opp["id"], "name": "车间净水改造"}
    assert db.session.get(Lead, lead["id"]).status == "new"  # asking changes nothing
    out = client.post(f"/api/v1/leads/{lead['id']}/convert", json={}, headers=h).get_json()
    assert (out["customer_id"], out["contact_id"], out["opportunity_id"]) == (cust["id"], plan["contact"]["id"], opp["id"])
    assert db.session.scalar(db.select(db.func.count(Contact.id)).where(Contact.customer_id == cust["id"])) == 1
    assert db.session.scalar(db.select(db.func.count(Opportunity.id)).where(Opportunity.customer_id == cust["id"])) == 1


def test_conversion_choices_a_new_contact_no_opportunity_or_a_wrong_one(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    cust = client.post("/api/v1/customers", headers=h, json={"name": "杭州西湖茶业有限公司", "contacts": [
        {"name": "陈建国", "phone": "13905710001"}]}).get_json()
    other = client.post("/api/v1/customers", headers=h, json={"name": "宁波别家贸易有限公司"}).get_json()
    elsewhere = client.post("/api/v1/opportunities", headers=h, json={"name": "别家的", "customer_id": other["id"]}).get_json()
    lead = _lead(client, h, name="吴经理", company="西湖茶业集团", phone="13905710001")
    wrong = client.post(f"/api/v1/leads/{lead['id']}/convert", json={"opportunity_id": elsewhere["id"]}, headers=h)
    assert wrong.status_code == 422 and "opportunity_id" in wrong.get_json()["error"]["fields"]
    out = client.post(f"/api/v1/leads/{lead['id']}/convert", json={"create_contact": True, "create_opportunity": False},
                      headers=h).get_json()
    assert out["opportunity_id"] is None
    names = db.session.scalars(db.select(Contact.name).where(Contact.customer_id == cust["id"]).order_by(Contact.id)).all()
    assert names == ["陈建国", "吴经理"]


def test_conversion_is_atomic(team, client, auth_headers, monkeypatch):
    from crm_core.sales import opportunities

    h = auth_headers(team["rep1"])
    lead = _lead(client, h)

    def boom(*a, **kw):
        raise RuntimeError("opportunity service failed")

    monkeypatch.setattr(opportunities, "create_opportunity", boom)
    resp = client.post(f"/api/v1/leads/{lead['id']}/convert", json={}, headers=h)
    assert resp.status_code == 500
    db.session.expire_all()
    assert db.session.get(Lead, lead["id"]).status == "new"
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0


def test_conversion_mapping_is_configurable(team, client, auth_headers):
    admin = auth_headers(team["admin"])
    resp = client.put("/api/v1/settings/lead-conversion", headers=admin, json={"mapping": {
        "company": "customer.name", "name": "contact.name", "note": "customer.note", "phone": "contact.phone"}})
    assert resp.status_code == 200
    h = auth_headers(team["rep1"])
    lead = _lead(client, h, note="展会上认识")
    out = client.post(f"/api/v1/leads/{lead['id']}/convert", json={}, headers=h).get_json()
    customer = db.session.get(Customer, out["customer_id"])
    assert customer.note == "展会上认识" and customer.phone is None
    bad = client.put("/api/v1/settings/lead-conversion", headers=admin, json={"mapping": {"shoe_size": "customer.name"}})
    assert bad.status_code == 422


def test_the_lead_page_opens_when_the_company_is_a_colleagues_customer(team, client, auth_headers, any_app):
    """The conversion is refused (409, naming the owner) but the lead itself stays readable."""
    from tests.conftest import console_login
    from tests.factories import PASSWORD

    h = auth_headers(team["rep1"])
    client.post("/api/v1/customers", json={"name": "别家", "phone": "13700003333"}, headers=auth_headers(team["rep2"]))
    lead = _lead(client, h, name="周先生", company=None, phone="13700003333")
    c, _ = console_login(any_app, team["rep1"].username, PASSWORD)
    page = c.get(f"/console/leads/{lead['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "周先生" in html and "撞单" in html and "确认转换" not in html
    assert c.post(f"/console/leads/{lead['id']}/convert", data={"contact": "²"}).status_code in (302, 400)  # never a 500
