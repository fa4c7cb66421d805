"""Collision check (撞单): normalisation, rules, scope masking, blocking, race-freedom."""
from __future__ import annotations

import threading

import pytest

from crm_core import normalize
from crm_core.customers import collision
from crm_core.customers.models import CollisionRule, Customer
from crm_core.db import db
from crm_core.sales.models import Lead
from tests.factories import make_team


@pytest.mark.parametrize("raw,expected", [
    ("浙江省杭州市西湖茶业有限公司", "西湖茶业"),
    ("杭州西湖茶业有限公司", "西湖茶业"),
    ("西湖茶业（杭州）股份有限公司", "西湖茶业"),
    ("浙江钱塘物流股份有限公司", "钱塘物流"),
    ("ＡＢＣ科技（杭州）有限公司", "abc科技"),
    ("阿里巴巴集团控股有限公司", "阿里巴巴"),
    ("上海市 蓝云 智联 科技 有限责任公司", "蓝云智联科技"),
])
def test_company_names_normalise(raw, expected):
    assert normalize.company(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("+86 138-0000-0001", "13800000001"), ("0086 13800000001", "13800000001"), ("１３８００００００01", "13800000001"),
    ("(0571) 8700-1234", "057187001234"), ("+86 571 8700 1234", "057187001234"), ("8613800000001", "13800000001"),
])
def test_phones_normalise(raw, expected):
    assert normalize.phone(raw) == expected


def test_masking():
    assert normalize.mask_name("杭州西湖茶业有限公司") == "杭州******公司"
    assert normalize.mask_name("张三") == "张*"


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def test_blocked_customer_returns_409_with_hits(team, client, auth_headers):
    h1, h3 = auth_headers(team["rep1"]), auth_headers(team["rep3"])
    first = client.post("/api/v1/customers", json={"name": "杭州西湖茶业有限公司", "phone": "0571-87001234"}, headers=h1)
    assert first.status_code == 201 and first.get_json()["collisions"] == []
    # same company written differently, by a salesperson who cannot see rep1's customers
    resp = client.post("/api/v1/customers", json={"name": "浙江省杭州市西湖茶业股份有限公司"}, headers=h3)
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["error"]["code"] == "collision" and "员工rep1" in body["error"]["message"]
    hit = body["hits"][0]
    assert hit["visible"] is False and hit["id"] is None
    assert hit["record"] == {"owner": "员工rep1", "name": "杭州******公司"}
    # by phone in another format
    resp = client.post("/api/v1/customers", json={"name": "别的名字", "phone": "+86 571 8700 1234"}, headers=h3)
    assert resp.status_code == 409 and resp.get_json()["hits"][0]["matched_fields"] == ["phone"]
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1


def test_visible_hits_show_the_configured_fields(team, client, auth_headers):
    client.post("/api/v1/customers", json={"name": "杭州滨江智造科技有限公司", "phone": "13900000001"},
                headers=auth_headers(team["rep1"]))
    resp = client.post("/api/v1/customers", json={"name": "滨江智造科技", "phone": "13900000002"},
                       headers=auth_headers(team["manager"]))  # the manager sees rep1's customers
    assert resp.status_code == 409
    hit = resp.get_json()["hits"][0]
    assert hit["visible"] is True and hit["record"]["name"] == "杭州滨江智造科技有限公司"
    assert hit["record"]["owner"] == "员工rep1" and "phone" in hit["record"]


def test_lead_warns_on_similar_company_and_shared_phone(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    client.post("/api/v1/customers", json={"name": "杭州西湖茶业有限公司", "phone": "0571-87001234",
                                           "contacts": [{"name": "陈建国", "phone": "13905710001"}]}, headers=h)
    resp = client.post("/api/v1/leads", json={"name": "王先生", "company": "西湖茶业集团", "phone": "139 0571 0001"},
                       headers=auth_headers(team["rep2"]))
    assert resp.status_code == 201  # the default lead rule warns
    hits = resp.get_json()["collisions"]
    assert hits and hits[0]["object_type"] == "customer" and hits[0]["rule"]["action"] == "warn"
    assert set(hits[0]["matched_fields"]) == {"phone", "company"}  # a contact's phone counts for its customer
    assert hits[0]["score"] == 1.0
    # 茶叶 vs 茶业: bigram similarity 0.67, below the default threshold 0.8
    resp = client.post("/api/v1/leads", json={"name": "赵女士", "company": "西湖茶叶有限公司"}, headers=h)
    assert [x for x in resp.get_json()["collisions"] if x["object_type"] == "customer"] == []
    # unrelated lead: no hits
    resp = client.post("/api/v1/leads", json={"name": "李四", "company": "宁波港口机械有限公司", "phone": "13700000000"},
                       headers=h)
    assert resp.get_json()["collisions"] == []


def test_rules_are_configurable(team, client, auth_headers):
    admin = auth_headers(team["admin"])
    rules = client.get("/api/v1/settings/collision-rules", headers=admin).get_json()["items"]
    lead_rule = next(r for r in rules if r["object_type"] == "lead")
    resp = client.put(f"/api/v1/settings/collision-rules/{lead_rule['id']}", headers=admin, json={
        **lead_rule, "action": "block", "fields": [{"field": "phone", "method": "phone"}], "targets": ["lead"]})
    assert resp.status_code == 200, resp.get_json()
    h = auth_headers(team["rep1"])
    assert client.post("/api/v1/leads", json={"name": "甲", "phone": "13811112222"}, headers=h).status_code == 201
    blocked = client.post("/api/v1/leads", json={"name": "乙", "phone": "+86 138 1111 2222"}, headers=h)
    assert blocked.status_code == 409
    assert db.session.scalar(db.select(db.func.count(Lead.id))) == 1
    bad = client.post("/api/v1/settings/collision-rules", headers=admin, json={
        "object_type": "lead", "name": "x", "fields": [{"field": "favourite_colour", "method": "exact"}]})
    assert bad.status_code == 422 and "fields.0.field" in bad.get_json()["error"]["fields"]
    assert client.get("/api/v1/settings/collision-rules", headers=h).status_code == 403


def test_all_match_rule_and_threshold(team):
    from crm_core.customers.customers import create_customer
    from crm_core.org.permissions import load_actor
    from crm_core.sales.opportunities import create_opportunity

    actor = load_actor(team["rep1"])
    cust, _ = create_customer(actor, {"name": "测试客户甲"})
    other, _ = create_customer(actor, {"name": "测试客户乙"})
    create_opportunity(actor, {"name": "2026年净水设备采购项目", "customer_id": cust.id})
    _, same_customer_hits = create_opportunity(actor, {"name": "2026年净水设备采购", "customer_id": cust.id})
    _, other_customer_hits = create_opportunity(actor, {"name": "2026年净水设备采购项目", "customer_id": other.id})
    assert [h.object_type for h in same_customer_hits] == ["opportunity"]
    assert other_customer_hits == []  # "all": same customer *and* similar name


def test_check_endpoint_warns_without_saving(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    client.post("/api/v1/customers", json={"name": "杭州上城湖滨餐饮有限公司"}, headers=h)
    resp = client.post("/api/v1/collisions/check", headers=h,
                       json={"object_type": "customer", "data": {"name": "上城湖滨餐饮（杭州）股份公司"}})
    body = resp.get_json()
    assert body["blocked"] is True and body["total"] == 1
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1


@pytest.mark.services
def test_concurrent_registration_of_the_same_phone_gives_one_record_and_one_hit(pg_url):
    """Two salespeople register the same phone at the same moment (real concurrency on
    PostgreSQL; SQLite serialises writers anyway)."""
    from tests.conftest import _make_app

    any_app = _make_app(pg_url)
    ctx = any_app.app_context()
    ctx.push()
    db.create_all()
    users = make_team()
    db.session.commit()
    from crm_core.customers import customers as svc
    from crm_core.org.permissions import load_actor

    barrier = threading.Barrier(2)
    results: list = []
    real_check = collision.check

    waited = threading.local()

    def slow_check(*args, **kwargs):  # both check before either saves (first check of each thread)
        hits = real_check(*args, **kwargs)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(timeout=10)
        return hits

    def register(user_id, name):
        with any_app.app_context():
            from crm_core.org.models import User

            actor = load_actor(db.session.get(User, user_id))
            try:
                svc.create_customer(actor, {"name": name, "phone": "138 0000 9999"})
                db.session.commit()
                results.append("created")
            except Exception as exc:  # the loser gets the 409
                db.session.rollback()
                results.append(getattr(exc, "code", type(exc).__name__))
                if getattr(exc, "code", "") == "collision":
                    results.append(len(exc.extra["hits"]))
            finally:
                db.session.remove()

    collision.check = slow_check
    try:
        threads = [threading.Thread(target=register, args=(users["rep1"].id, "甲公司")),
                   threading.Thread(target=register, args=(users["rep3"].id, "乙公司"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        collision.check = real_check
    try:
        assert sorted(map(str, results)) == sorted(["created", "collision", "1"]), results
        assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1
    finally:
        db.session.remove()
        db.engine.dispose()
        ctx.pop()


def test_rule_rows_are_per_organisation(team):
    from crm_core.org.organization import create_user, upsert_employee
    from tests.factories import make_org

    org2 = make_org("org2", "第二家")
    emp = upsert_employee(org2, "E", "员工")
    create_user(org2, "org2.u", "secret-pass-1", ["admin"], emp)
    collision.ensure_default_rules(team["rep1"].org_id)
    collision.ensure_default_rules(org2.id)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(CollisionRule.id)).where(CollisionRule.org_id == org2.id)) == 3


def test_reindex_rebuilds_the_same_keys(team, runner):
    from crm_core.customers.customers import create_customer
    from crm_core.customers.models import CollisionGram, CollisionKey
    from crm_core.org.permissions import load_actor
    from crm_core.sales.leads import create_lead

    actor = load_actor(team["rep1"])
    create_customer(actor, {"name": "杭州重建索引有限公司", "phone": "0571-1"}, contacts=[{"name": "甲", "phone": "13912345678"}])
    create_lead(actor, {"name": "乙", "company": "某某贸易", "phone": "13800001234"})
    db.session.commit()

    def snapshot():
        keys = {(k.object_type, k.record_id, k.dimension, k.method, k.value) for k in db.session.scalars(db.select(CollisionKey))}
        grams = {(g.object_type, g.record_id, g.gram) for g in db.session.scalars(db.select(CollisionGram))}
        return keys, grams

    before = snapshot()
    result = runner.invoke(args=["collision", "reindex"])
    assert result.exit_code == 0, result.output
    assert "customer 1" in result.output and "lead 1" in result.output
    assert snapshot() == before and before[0]
