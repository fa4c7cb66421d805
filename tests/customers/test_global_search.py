"""Global search (console top bar, GET /api/v1/search): customers, contacts, leads and tickets by name, phone or number,
each within the caller's data scope and only for the roles that may see it."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import console_login, token_for


@pytest.fixture
def demo(any_app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return any_app


def _sections(body: dict) -> dict:
    return {s["kind"]: s for s in body["sections"]}


def test_a_salesperson_finds_their_own_customers_and_contacts_by_name_and_phone_and_nothing_of_a_colleagues(demo, client):
    zhang = token_for(client, "sales.zhang", "demo123456")
    found = _sections(client.get("/api/v1/search?q=西湖茶业", headers=zhang).get_json())
    assert [c["title"] for c in found["customer"]["items"]] == ["杭州西湖茶业有限公司"]
    assert "ticket" not in found  # a salesperson does not see tickets
    by_phone = _sections(client.get("/api/v1/search?q=87001234", headers=zhang).get_json())
    assert by_phone["customer"]["items"][0]["title"] == "杭州西湖茶业有限公司"  # 0571-87001234, typed without the area code
    contact = _sections(client.get("/api/v1/search?q=13905710001", headers=zhang).get_json())["contact"]["items"][0]
    assert contact["title"] == "陈建国" and "杭州西湖茶业有限公司" in contact["subtitle"]
    # 李娜's customer: not in 张伟's scope, so not found at all
    theirs = _sections(client.get("/api/v1/search?q=钱塘物流", headers=zhang).get_json())
    assert all(s["total"] == 0 for s in theirs.values())
    li = token_for(client, "sales.li", "demo123456")
    assert _sections(client.get("/api/v1/search?q=钱塘物流", headers=li).get_json())["customer"]["total"] == 1
    # too short, or missing: a clear 422
    r = client.get("/api/v1/search?q=a", headers=zhang)
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["q"]
    assert client.get("/api/v1/search", headers=zhang).status_code == 422


def test_the_dispatcher_finds_a_ticket_by_its_number_and_by_its_customer(demo, client):
    h = token_for(client, "service.dispatcher", "demo123456")
    cust = client.get("/api/v1/customers?q=西湖茶业", headers=h).get_json()["items"][0]
    t = client.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "complaint",
                                                        "description": "净水器漏水，地面有积水"}).get_json()
    assert "number" in t, t
    by_number = _sections(client.get(f"/api/v1/search?q={t['number']}", headers=h).get_json())["ticket"]
    assert [i["title"] for i in by_number["items"]] == [t["number"]] and "杭州西湖茶业有限公司" in by_number["items"][0]["subtitle"]
    assert _sections(client.get("/api/v1/search?q=地面有积水", headers=h).get_json())["ticket"]["total"] == 1
    assert t["number"] in [i["title"] for i in _sections(client.get("/api/v1/search?q=西湖茶业", headers=h)
                                                          .get_json())["ticket"]["items"]]


def test_the_console_top_bar_search_links_each_result_to_its_page(demo):
    c, _ = console_login(demo, "sales.zhang", "demo123456")
    home = c.get("/console/").get_data(as_text=True)
    assert 'role="search"' in home and 'action="/console/search"' in home
    page = c.get("/console/search?q=西湖茶业").get_data(as_text=True)
    assert 'id="results-customer"' in page and "/console/customers/" in page and "杭州西湖茶业有限公司" in page
    assert 'id="search-empty"' in c.get("/console/search?q=不存在的名字").get_data(as_text=True)
    assert 'id="search-hint"' in c.get("/console/search?q=x").get_data(as_text=True)
    lead_page = c.get("/console/search?q=吴经理").get_data(as_text=True)
    assert 'id="results-lead"' in lead_page and "/console/leads/" in lead_page
