"""The salesperson's and the manager's phone pages (/h5/staff/): 客户备案 with the collision answered inline (masked),
a visit with its result tied to a check-in, an opportunity's stages with what each needs, approval from the phone, win."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.activities.models import Activity
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.field.models import CheckIn
from crm_core.sales.models import Opportunity, SalesStage
from tests.service.test_staff_workbench import staff_phone

AT_WEST_LAKE = {"lat": 30.2271, "lng": 120.1231, "accuracy_m": 15, "coord_system": "wgs84"}


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def _opp(name="茶厂车间净水改造") -> Opportunity:
    return db.session.scalars(select(Opportunity).where(Opportunity.name == name)).one()


def test_registering_a_colleagues_customer_is_refused_with_a_masked_hit_and_a_new_one_is_saved(demo):
    phone = staff_phone(demo, "oWbZhang001", "sales.zhang")
    assert "我的客户" in phone.get("/h5/staff/").get_data(as_text=True)
    check = phone.post("/h5/api/staff/collisions/check", json={"object_type": "customer", "data": {"phone": "0571-85003456"}})
    assert check.status_code == 200 and check.get_json()["blocked"]
    hit = check.get_json()["items"][0]
    assert not hit["visible"] and "浙江钱塘物流股份有限公司" not in str(hit)  # 李娜's customer: masked for 张伟
    r = phone.post("/h5/api/staff/customers", json={"name": "浙江钱塘物流股份有限公司", "phone": "0571-85003456",
                                                    "contact_name": "徐丽"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "collision"
    assert "浙江钱塘物流股份有限公司" not in str(r.get_json()["hits"])
    r = phone.post("/h5/api/staff/customers", json={"name": "杭州之江新材料有限公司", "phone": "0571-81112222",
                                                    "address": "杭州市西湖区之江路 1 号", "contact_name": "沈工", "contact_phone": "13905719999"})
    assert r.status_code == 201, r.get_json()
    page = phone.get(r.get_json()["url"]).get_data(as_text=True)
    assert "杭州之江新材料有限公司" in page and 'href="tel:13905719999"' in page
    assert "杭州之江新材料有限公司" in phone.get("/h5/staff/customers?q=之江").get_data(as_text=True)


def test_a_visit_at_the_site_is_a_done_activity_with_its_check_in_and_unlocks_the_next_stage(demo):
    phone = staff_phone(demo, "oWbZhang002", "sales.zhang")
    opp = _opp()
    customer = db.session.get(Customer, opp.customer_id)
    page = phone.get(f"/h5/staff/opportunities/{opp.id}").get_data(as_text=True)
    assert "还需要：必填：联系人；需要至少一项已完成的活动" in page
    r = phone.post("/h5/api/staff/visits", json={"customer_id": customer.id, "opportunity_id": opp.id, "kind": "visit",
                                                 "result": "客户确认车间净水需求，下周报方案", "checkin": AT_WEST_LAKE})
    assert r.status_code == 201, r.get_json()
    activity = db.session.get(Activity, r.get_json()["activity"]["id"])
    assert activity.status == "done" and activity.result == "客户确认车间净水需求，下周报方案"
    ci = db.session.get(CheckIn, r.get_json()["checkin"]["id"])
    assert ci.activity_id == activity.id and ci.customer_id == customer.id and ci.distance_m < 50
    contact_id = db.session.scalar(select(Contact.id).where(Contact.customer_id == customer.id).order_by(Contact.id))
    assert phone.post(f"/h5/api/staff/opportunities/{opp.id}/contact", json={"contact_id": contact_id}).status_code == 200
    confirm = db.session.scalars(select(SalesStage).where(SalesStage.method_id == opp.method_id, SalesStage.name == "需求确认")).one()
    r = phone.post(f"/h5/api/staff/opportunities/{opp.id}/advance", json={"stage_id": confirm.id})
    assert r.status_code == 200 and r.get_json()["stage"]["name"] == "需求确认"
    # a call without being at the site: no check-in
    r = phone.post("/h5/api/staff/visits", json={"customer_id": customer.id, "kind": "call", "result": "电话确认报价时间"})
    assert r.status_code == 201 and r.get_json()["checkin"] is None


def test_the_manager_approves_a_stage_from_the_phone_and_the_salesperson_wins(demo):
    zhang = staff_phone(demo, "oWbZhang003", "sales.zhang")
    opp = _opp("酒店新风系统")
    talks = db.session.scalars(select(SalesStage).where(SalesStage.method_id == opp.method_id, SalesStage.name == "商务谈判")).one()
    r = zhang.post(f"/h5/api/staff/opportunities/{opp.id}/approvals", json={"stage_id": talks.id})
    assert r.status_code == 201, r.get_json()
    assert "需要审批：待审批" in zhang.get(f"/h5/staff/opportunities/{opp.id}").get_data(as_text=True)

    manager = staff_phone(demo, "oWbManager1", "sales.manager")
    home = manager.get("/h5/staff/").get_data(as_text=True)
    assert 'id="entry-approvals"' in home
    page = manager.get("/h5/staff/approvals").get_data(as_text=True)
    assert "酒店新风系统" in page and "申请进入「商务谈判」" in page
    assert zhang.post(f"/h5/api/staff/approvals/{r.get_json()['id']}/decision", json={"approve": True}).status_code == 403
    d = manager.post(f"/h5/api/staff/approvals/{r.get_json()['id']}/decision", json={"approve": True, "comment": "同意"})
    assert d.status_code == 200 and d.get_json()["status"] == "approved"
    assert "没有待审批的事项" in manager.get("/h5/staff/approvals").get_data(as_text=True)
    assert "需要审批：已批准" in zhang.get(f"/h5/staff/opportunities/{opp.id}").get_data(as_text=True)

    won = zhang.post(f"/h5/api/staff/opportunities/{opp.id}/win", json={})
    assert won.status_code == 200 and won.get_json()["status"] == "won"
    assert db.session.get(Customer, opp.customer_id).trading
    assert zhang.post(f"/h5/api/staff/opportunities/{opp.id}/lose", json={"reason": "x"}).status_code == 409


def test_approval_notices_open_the_approvals_and_the_opportunity(demo):
    from wxapp.official_account.channels import staff_link

    with demo.test_request_context():
        assert staff_link({"kind": "approval_requested", "approval_id": 1}).endswith("/h5/staff/approvals")


def test_my_calendar_shows_my_next_seven_days_by_day_and_not_a_colleagues(demo):
    phone = staff_phone(demo, "oWbZhang004", "sales.zhang")
    assert 'id="entry-calendar"' in phone.get("/h5/staff/").get_data(as_text=True)
    page = phone.get("/h5/staff/calendar").get_data(as_text=True)
    assert "上门测量车间水质" in page and "电话回访设备使用情况" in page and "杭州西湖茶业有限公司" in page
    assert "方案讲解会" not in page  # 李娜's meeting
    li = staff_phone(demo, "oWbLi000001", "sales.li")
    assert "方案讲解会" in li.get("/h5/staff/calendar").get_data(as_text=True)


def test_a_contact_added_from_the_phone_shows_on_the_customer_and_a_colleagues_phone_is_refused(demo):
    phone = staff_phone(demo, "oWbZhang005", "sales.zhang")
    tea = db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()
    assert 'id="contact-form"' in phone.get(f"/h5/staff/customers/{tea.id}").get_data(as_text=True)
    r = phone.post("/h5/api/staff/contacts", json={"customer_id": tea.id, "name": "王主任", "phone": "13905718888",
                                                   "title": "生产主管"})
    assert r.status_code == 201, r.get_json()
    page = phone.get(f"/h5/staff/customers/{tea.id}").get_data(as_text=True)
    assert "王主任 · 生产主管" in page and 'href="tel:13905718888"' in page
    r = phone.post("/h5/api/staff/contacts", json={"customer_id": tea.id, "name": "徐丽", "phone": "0571-85003456"})
    assert r.status_code == 409 and "浙江钱塘物流股份有限公司" not in str(r.get_json())  # 李娜's customer's phone, masked
    assert phone.post("/h5/api/staff/contacts", json={"customer_id": tea.id, "name": ""}).status_code == 422
    li = staff_phone(demo, "oWbLi000002", "sales.li")
    assert li.post("/h5/api/staff/contacts", json={"customer_id": tea.id, "name": "越权"}).status_code in (403, 404)
