"""公海 (the customer pool): released customers wait there with their phone masked, a colleague claims one (up to the
limit; the previous holder not again too soon), a customer nobody followed up is recycled by the rule, and the
customer keeps who held it from when to when."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_core import clock
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from tests.conftest import token_for


@pytest.fixture
def demo(any_app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return any_app


def _customer(name: str) -> Customer:
    return db.session.scalars(select(Customer).where(Customer.name == name)).one()


def test_released_claimed_and_the_history_of_holders(demo, client):
    zhang, li = token_for(client, "sales.zhang", "demo123456"), token_for(client, "sales.li", "demo123456")
    binjiang = _customer("杭州滨江智造科技有限公司")
    r = client.post(f"/api/v1/customers/{binjiang.id}/release", headers=zhang, json={"reason": "客户已转向竞品，暂停跟进"})
    assert r.status_code == 200 and r.get_json()["owner_id"] is None
    assert client.get(f"/api/v1/customers/{binjiang.id}", headers=zhang).status_code == 404  # no longer his
    pool = client.get("/api/v1/customer-pool", headers=li).get_json()
    row = next(i for i in pool["items"] if i["id"] == binjiang.id)
    assert row["last_holder"] == "张伟" and row["why"] == "退回公海" and row["phone"] != binjiang.phone and "****" in row["phone"]
    assert client.post(f"/api/v1/customers/{binjiang.id}/release", headers=li, json={}).status_code in (404, 409)

    # the previous holder may not take it straight back
    r = client.post(f"/api/v1/customer-pool/{binjiang.id}/claim", headers=zhang)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "reclaim_too_soon"
    r = client.post(f"/api/v1/customer-pool/{binjiang.id}/claim", headers=li)
    assert r.status_code == 200, r.get_json()
    assert client.get(f"/api/v1/customers/{binjiang.id}", headers=li).get_json()["phone"] == binjiang.phone  # hers now
    again = client.post(f"/api/v1/customer-pool/{binjiang.id}/claim", headers=zhang)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_claimed"
    holders = client.get(f"/api/v1/customers/{binjiang.id}/holders", headers=li).get_json()["items"]
    assert [(h["employee"], h["how"], h["end_reason"]) for h in holders] == [
        ("李娜", "从公海领取", None), ("张伟", "分配", "退回公海")]
    assert holders[1]["note"] == "客户已转向竞品，暂停跟进" and holders[1]["ended_at"]


def test_the_claim_limit_counts_what_one_already_owns(demo, client):
    from crm_core.org.settings import remember

    zhang, li = token_for(client, "sales.zhang", "demo123456"), token_for(client, "sales.li", "demo123456")
    tea = _customer("杭州西湖茶业有限公司")
    client.post(f"/api/v1/customers/{tea.id}/release", headers=zhang, json={})
    remember(tea.org_id, "customer_pool", claim_limit=3)
    db.session.commit()
    r = client.post(f"/api/v1/customer-pool/{tea.id}/claim", headers=li)  # 李娜 owns three already
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "claim_limit" and "3 个客户" in r.get_json()["error"]["message"]
    assert db.session.get(Customer, tea.id).owner_id is None  # nothing half done


def test_a_customer_nobody_followed_up_goes_back_to_the_pool_and_its_owner_is_told(demo, client):
    from crm_core.sales.pool import recycle_customers

    zhang = token_for(client, "sales.zhang", "demo123456")
    new = client.post("/api/v1/customers", headers=zhang, json={"name": "杭州之江新材料有限公司", "phone": "0571-81112222"}).get_json()
    followed = client.post("/api/v1/customers", headers=zhang, json={"name": "杭州转塘文创有限公司", "phone": "0571-81113333"}).get_json()
    with clock.travel(timedelta(days=20)):
        later = token_for(client, "sales.zhang", "demo123456")  # a token of that day
        r = client.post("/api/v1/mobile/visits", headers=later, json={"customer_id": followed["id"], "kind": "call",
                                                                       "result": "电话沟通需求"})
        assert r.status_code == 201, r.get_json()
    with clock.travel(timedelta(days=31)):
        assert recycle_customers() == 1  # the demo's customers have traded: exempt
        db.session.commit()
    assert db.session.get(Customer, new["id"]).owner_id is None
    assert db.session.get(Customer, followed["id"]).owner_id is not None  # followed up 11 days ago
    told = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff")).all()
    assert any(m.payload.get("kind") == "customer_recycled" and "杭州之江新材料有限公司" in m.payload["text"] for m in told)
    li = token_for(client, "sales.li", "demo123456")
    row = next(i for i in client.get("/api/v1/customer-pool", headers=li).get_json()["items"] if i["id"] == new["id"])
    assert row["why"] == "超期未跟进，自动收回"


def test_the_console_releases_from_the_customer_page_and_claims_from_the_pool(demo):
    from flask import g

    from tests.conftest import console_login

    tea = _customer("杭州西湖茶业有限公司")
    zhang, _ = console_login(demo, "sales.zhang", "demo123456")
    g.pop("csrf_token", None)
    page = zhang.get(f"/console/customers/{tea.id}").get_data(as_text=True)
    assert 'id="release"' in page and "一直由当前负责人跟进" in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = zhang.post(f"/console/customers/{tea.id}/release", data={"csrf_token": token, "reason": "交接给李娜"}, follow_redirects=True)
    assert "已退回公海" in r.get_data(as_text=True) and f'id="pool-{tea.id}"' in r.get_data(as_text=True)

    li, _ = console_login(demo, "sales.li", "demo123456")
    g.pop("csrf_token", None)
    pool_page = li.get("/console/customer-pool").get_data(as_text=True)
    assert f'id="pool-{tea.id}"' in pool_page and "张伟" in pool_page and "30 天没有跟进" in pool_page
    token = pool_page.split('name="csrf_token" value="')[1].split('"')[0]
    r = li.post(f"/console/customer-pool/{tea.id}/claim", data={"csrf_token": token}, follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "已领取" in body and "杭州西湖茶业有限公司" in body and "交接给李娜" in body  # the 360 page, with its holders
