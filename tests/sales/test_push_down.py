"""商机下推 (#19 item 6): from an opportunity, a service request for its customer (the salesperson needs no ticket
rights; it reaches the dispatchers' queue) and an expense request, each linked back and listed on the opportunity."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import db
from crm_core.sales.models import Opportunity
from crm_core.service.models import Ticket
from tests.conftest import console_login, token_for


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def test_a_salesperson_raises_a_service_request_and_an_expense_from_the_deal(demo, client):
    zhang = token_for(client, "sales.zhang", "demo123456")
    opp = db.session.scalars(select(Opportunity).where(Opportunity.name == "酒店新风系统")).one()
    r = client.post(f"/api/v1/opportunities/{opp.id}/ticket", headers=zhang, json={
        "kind": "consultation", "description": "签约前现场勘查：大堂与客房新风管道走向"})
    assert r.status_code == 201, r.get_json()
    t = db.session.get(Ticket, r.get_json()["id"])
    assert t.opportunity_id == opp.id and t.customer_id == opp.customer_id and t.status == "submitted"
    assert client.post(f"/api/v1/opportunities/{opp.id}/ticket", headers=zhang, json={"kind": "repair", "description": " "}).status_code == 422
    li = token_for(client, "sales.li", "demo123456")
    assert client.post(f"/api/v1/opportunities/{opp.id}/ticket", headers=li, json={
        "kind": "repair", "description": "别人的商机"}).status_code in (403, 404)
    dispatcher = token_for(client, "service.dispatcher", "demo123456")
    queue = client.get("/api/v1/tickets?status=submitted", headers=dispatcher).get_json()["items"]
    assert t.id in {x["id"] for x in queue}  # it is the dispatchers' to send someone
    assert client.post(f"/api/v1/opportunities/{opp.id}/expense", headers=zhang, json={
        "category": "travel", "lines": [{"item": "勘查差旅", "amount": "120"}]}).status_code == 201

    from flask import g

    c, _ = console_login(demo, "sales.zhang", "demo123456")
    g.pop("csrf_token", None)
    page = c.get(f"/console/opportunities/{opp.id}").get_data(as_text=True)
    pushed = page.split('id="pushed"')[1].split("</div>")[0]
    assert t.number in pushed and "咨询" in pushed and "待派工" in pushed and "费用申请" in pushed and "¥120" in pushed
