"""竞争对手档案 (#19 item 7): the competitor master with aliases, market share and products; what salespeople type on
opportunities — before or after the company is in the master, in any of its names — counts against the company in
竞争对手分析 and on its own page; managers keep it, salespeople read it."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.factories import make_customer, make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _opp(client, h, customer_id, name, rivals):
    opp = client.post("/api/v1/opportunities", headers=h, json={"name": name, "customer_id": customer_id, "amount": "50000"}).get_json()
    r = client.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=h, json={"competitors": rivals})
    assert r.status_code == 200, r.get_json()
    return opp


def test_the_master_gathers_every_spelling_and_counts_wins_and_losses(team, client, auth_headers):
    rep1, mgr = auth_headers(team["rep1"]), auth_headers(team["manager"])
    customer = make_customer(team["rep1"], "竞品测试有限公司")
    db.session.commit()
    before = _opp(client, rep1, customer.id, "写在建档之前", [{"name": "美的", "price": "3900"}])  # linked when the master is made
    client.post(f"/api/v1/opportunities/{before['id']}/win", headers=rep1, json={})

    assert client.post("/api/v1/competitors", headers=rep1, json={"name": "美的净水"}).status_code == 403  # managers keep it
    bad = client.post("/api/v1/competitors", headers=mgr, json={"name": "美的净水", "market_share": "120"})
    assert bad.status_code == 422 and "market_share" in bad.get_json()["error"]["fields"]
    made = client.post("/api/v1/competitors", headers=mgr, json={
        "name": "美的净水", "aliases": ["美的", "Midea"], "market_share": "23.5", "strengths": "品牌知名度高", "weaknesses": "服务网点少",
        "products": [{"name": "美的 MRO1781", "price": "2999"}, {"name": "美的 商用 RO"}]})
    assert made.status_code == 201, made.get_json()
    m = made.get_json()
    assert m["market_share"] == "23.50" and [p["name"] for p in m["products"]] == ["美的 MRO1781", "美的 商用 RO"]
    clash = client.post("/api/v1/competitors", headers=mgr, json={"name": "MIDEA"})  # an alias of another, whatever the case
    assert clash.status_code == 409 and "美的净水" in clash.get_json()["error"]["message"]

    after = _opp(client, rep1, customer.id, "写在建档之后", [{"name": " midea ", "price": "4100"}])
    client.post(f"/api/v1/opportunities/{after['id']}/lose", headers=rep1, json={"reason": "价格", "lost_to": " midea "})
    _opp(client, rep1, customer.id, "不在档案里的对手", [{"name": "沁园"}])

    report = {r["name"]: r for r in client.get("/api/v1/reports/competitors", headers=mgr).get_json()["rows"]}
    assert set(report) == {"美的净水", "沁园"}  # 美的 and midea are one company
    row = report["美的净水"]
    assert (row["met"], row["won"], row["lost"], row["win_rate"], row["market_share"], row["competitor_id"]) == \
        (2, 1, 1, "50.00", "23.50", m["id"])
    assert row["avg_price"] == "4000.00" and report["沁园"]["competitor_id"] is None

    detail = client.get(f"/api/v1/competitors/{m['id']}", headers=rep1).get_json()  # salespeople read it, within their scope
    assert (detail["record"]["met"], detail["record"]["lost_to_them"]) == (2, 1)
    assert {o["name"]: o["they_won"] for o in detail["record"]["opportunities"]} == {"写在建档之前": False, "写在建档之后": True}
    assert client.get(f"/api/v1/competitors/{m['id']}", headers=auth_headers(team["rep3"])).get_json()["record"]["met"] == 0

    # an alias taken away unlinks what was written under it
    client.put(f"/api/v1/competitors/{m['id']}", headers=mgr, json={"name": "美的净水", "aliases": ["美的"], "market_share": "23.5"})
    report = {r["name"]: r for r in client.get("/api/v1/reports/competitors", headers=mgr).get_json()["rows"]}
    assert report["美的净水"]["met"] == 1 and report["midea"]["met"] == 1
    assert [c["name"] for c in client.get("/api/v1/competitors", headers=rep1).get_json()["items"]] == ["美的净水"]
