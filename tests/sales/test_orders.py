"""合同 → 销售订单 → 发货 (#19 items 3–4 and 9): a contract keeps its product lines; orders take them never beyond
the contract, deliveries ship orders never beyond the order (also when two people race on PostgreSQL), serial
numbers become product archives, the money always adds up to the fen, and 合同执行 and 客户分析 report it."""
from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.clock import local_today
from crm_core.customers.models import ProductArchive
from crm_core.db import db
from crm_core.sales import money
from tests.factories import make_customer, make_team
from tests.sales.test_money_chain import _products


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _contract(client, team, auth_headers, *, name="杭州订单测试有限公司", trading=False):
    """An approved contract from a sent quote: 3 × WP100 at 10 % off (3905.28) and 2.5 service (264.98)."""
    admin, rep1, mgr = auth_headers(team["admin"]), auth_headers(team["rep1"]), auth_headers(team["manager"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], name, trading=trading)
    db.session.commit()
    q = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": customer.id, "lines": [
        {"product_id": wp["id"], "quantity": 3, "discount_pct": "10"},
        {"product_id": svc["id"], "quantity": "2.5", "unit_price": "99.99"}]}).get_json()
    client.post(f"/api/v1/quotes/{q['id']}/send", headers=rep1, json={})
    due = local_today() + timedelta(days=10)
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "quote_id": q["id"], "payment_plan": [
        {"due_date": due.isoformat(), "amount": "2085.13"}, {"due_date": (due + timedelta(days=60)).isoformat(), "amount": "2085.13"}]})
    assert c.status_code == 201, c.get_json()
    c = c.get_json()
    assert [(ln["name"], ln["quantity"], ln["total"], ln["to_order"]) for ln in c["lines"]] == [
        ("商用净水器 WP100", "3", "3905.28", "3"), ("年度维保服务", "2.5", "264.98", "2.5")]  # carried from the quote
    early = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                        json={"lines": [{"contract_line_id": c["lines"][0]["id"], "quantity": 1}]})
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "contract_not_effective"
    assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
    return c, customer


def test_a_contract_is_ordered_and_delivered_never_beyond_itself(team, client, auth_headers):
    rep1 = auth_headers(team["rep1"])
    c, customer = _contract(client, team, auth_headers)
    wp_line, svc_line = c["lines"]

    first = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1, json={
        "lines": [{"contract_line_id": wp_line["id"], "quantity": 1}, {"contract_line_id": svc_line["id"], "quantity": "2.5"}],
        "required_on": (local_today() + timedelta(days=5)).isoformat(), "address": "杭州市西湖区文三路 1 号", "total": "1.00"})
    assert first.status_code == 201, first.get_json()
    o1 = first.get_json()
    # 1 of 3 WP100: 3905.28 / 3 = 1301.76; the whole service line: 264.98 — the client's total is not read
    assert o1["number"].startswith("XS") and o1["status"] == "open" and o1["amount"] == "1566.74"
    assert [ln["amount"] for ln in o1["lines"]] == ["1301.76", "264.98"]

    too_many = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                           json={"lines": [{"contract_line_id": wp_line["id"], "quantity": 3}]})
    assert too_many.status_code == 409 and too_many.get_json()["error"]["code"] == "over_contract"
    assert "还可下单 2" in too_many.get_json()["error"]["message"]
    for bad, field in (({"lines": []}, "lines"), ({"lines": [{"contract_line_id": wp_line["id"], "quantity": 0}]}, "lines.0.quantity"),
                       ({"lines": [{"contract_line_id": 999999, "quantity": 1}]}, "lines.0.contract_line_id"),
                       ({"lines": [{"contract_line_id": wp_line["id"], "quantity": "0.00001"}]}, "lines.0.quantity"),
                       ({"lines": [{"contract_line_id": wp_line["id"], "quantity": 1}], "required_on": "2020-01-01"}, "required_on")):
        r = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1, json=bad)
        assert r.status_code == 422 and any(k.startswith(field) for k in r.get_json()["error"]["fields"]), (bad, r.get_json())

    second = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                         json={"lines": [{"contract_line_id": wp_line["id"], "quantity": 2}]}).get_json()
    assert second["amount"] == "2603.52"  # the rest of the line: 3905.28 − 1301.76, to the fen
    assert Decimal(o1["amount"]) + Decimal(second["amount"]) == Decimal(c["amount"])
    lines = client.get(f"/api/v1/contracts/{c['id']}", headers=rep1).get_json()["lines"]
    assert [ln["to_order"] for ln in lines] == ["0", "0"]

    # 发货: part of the first order, with a serial number per unit (they become the customer's product archives)
    wp_ol, svc_ol = o1["lines"]
    mismatch = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1, json={
        "lines": [{"order_line_id": wp_ol["id"], "quantity": 1, "serial_nos": ["WP-A1", "WP-A2"]}]})
    assert mismatch.status_code == 422 and "序列号应有 1 个" in mismatch.get_json()["error"]["message"]
    ship = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1, json={
        "lines": [{"order_line_id": wp_ol["id"], "quantity": 1, "serial_nos": ["WP-2026-0001"]}], "carrier": "顺丰 SF1234"})
    assert ship.status_code == 201, ship.get_json()
    shipped = ship.get_json()
    assert shipped["status"] == "partial" and shipped["delivered_amount"] == "1301.76"
    assert shipped["deliveries"][0]["number"].startswith("CK") and shipped["deliveries"][0]["lines"][0]["serial_nos"] == ["WP-2026-0001"]
    archive = db.session.query(ProductArchive).filter_by(serial_no="WP-2026-0001").one()
    assert archive.customer_id == customer.id and archive.sold_on == local_today()
    over = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1,
                       json={"lines": [{"order_line_id": svc_ol["id"], "quantity": 3}]})
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "over_order"
    future = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1, json={
        "lines": [{"order_line_id": svc_ol["id"], "quantity": 1}], "shipped_on": (local_today() + timedelta(days=1)).isoformat()})
    assert future.status_code == 422 and "shipped_on" in future.get_json()["error"]["fields"]
    done = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1,
                       json={"lines": [{"order_line_id": svc_ol["id"], "quantity": "2.5"}]}).get_json()
    assert done["status"] == "delivered" and done["delivered_amount"] == o1["amount"]
    again = client.post(f"/api/v1/orders/{o1['id']}/deliveries", headers=rep1,
                        json={"lines": [{"order_line_id": svc_ol["id"], "quantity": 1}]})
    assert again.status_code == 409

    # an order nothing was shipped of can be cancelled: its quantities go back to the contract
    assert client.post(f"/api/v1/orders/{o1['id']}/cancel", headers=rep1, json={}).status_code == 409
    cancelled = client.post(f"/api/v1/orders/{second['id']}/cancel", headers=rep1, json={"reason": "客户改期"}).get_json()
    assert cancelled["status"] == "cancelled"
    lines = client.get(f"/api/v1/contracts/{c['id']}", headers=rep1).get_json()["lines"]
    assert [ln["to_order"] for ln in lines] == ["2", "0"]

    # in scope only: a peer salesperson does not see the orders
    peer = auth_headers(team["rep3"])
    assert client.get(f"/api/v1/orders/{o1['id']}", headers=peer).status_code == 404
    assert client.get("/api/v1/orders", headers=peer).get_json()["total"] == 0
    assert client.get(f"/api/v1/orders?contract_id={c['id']}", headers=rep1).get_json()["total"] == 2


def test_an_amount_only_contract_has_no_orders(team, client, auth_headers):
    rep1, mgr = auth_headers(team["rep1"]), auth_headers(team["manager"])
    customer = make_customer(team["rep1"], "只签金额的客户")
    db.session.commit()
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "amount": "5000.00",
                                                             "payment_plan": [{"due_date": "2027-06-30", "amount": "5000.00"}]}).get_json()
    assert c["lines"] == []
    client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    r = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1, json={"lines": [{"contract_line_id": 1, "quantity": 1}]})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "no_lines"


def test_contract_execution_and_customer_analysis_report_the_chain(team, client, auth_headers):
    rep1, mgr = auth_headers(team["rep1"]), auth_headers(team["manager"])
    c, customer = _contract(client, team, auth_headers)
    o = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                    json={"lines": [{"contract_line_id": c["lines"][0]["id"], "quantity": 3}]}).get_json()
    client.post(f"/api/v1/orders/{o['id']}/deliveries", headers=rep1, json={"lines": [{"order_line_id": o["lines"][0]["id"], "quantity": 2}]})
    client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "1000.00"})

    r = client.get("/api/v1/reports/contract-execution", headers=mgr).get_json()
    row = [x for x in r["rows"] if x["contract_id"] == c["id"]][0]
    assert (row["amount"], row["ordered"], row["delivered"], row["received"]) == ("4170.26", "3905.28", "2603.52", "1000.00")
    assert (row["to_deliver"], row["outstanding"], row["received_rate"]) == ("1301.76", "3170.26", "23.98")
    by_customer = client.get("/api/v1/reports/contract-execution?by=customer", headers=mgr).get_json()
    assert [(x["customer"], x["contracts"], x["delivered"]) for x in by_customer["rows"]] == [(customer.name, 1, "2603.52")]
    by_owner = client.get("/api/v1/reports/contract-execution?by=owner", headers=mgr).get_json()
    assert by_owner["totals"]["ordered"] == "3905.28" and by_owner["rows"][0]["owner"]
    sheet = client.get("/api/v1/reports/contract-execution?format=csv", headers=mgr).get_data(as_text=True)
    assert sheet.lstrip("\ufeff").startswith("合同号,名称,客户,负责人,签订日期,合同金额,已下单,已发货") and "合计" in sheet
    peer = client.get("/api/v1/reports/contract-execution", headers=auth_headers(team["rep3"])).get_json()
    assert peer["rows"] == [] and peer["totals"]["amount"] == "0.00"  # within scope
    assert client.get("/api/v1/reports/contract-execution?by=nobody", headers=mgr).status_code == 422

    customers = client.get("/api/v1/reports/customers?by=source", headers=mgr).get_json()
    assert customers["totals"]["customers"] >= 1 and customers["totals"]["contracted"] == "4170.26"
    traded = [x for x in customers["rows"] if x["contracted"] == "4170.26"][0]
    assert traded["trading"] >= 1 and traded["received"] == "1000.00"  # the approval turned the customer trading
    months = client.get("/api/v1/reports/customers?by=month", headers=mgr).get_json()
    assert months["rows"][-1]["key"] == local_today().strftime("%Y-%m")
    assert client.get("/api/v1/reports/customers?by=region&format=xlsx", headers=mgr).mimetype.endswith("spreadsheetml.sheet")


def test_the_city_of_an_address_is_its_region():
    from crm_core.sales.reports import _CITY

    for address, city in (("杭州市西湖区龙井路 18 号", "杭州市"), ("浙江省宁波市鄞州区", "宁波市"), ("广西壮族自治区南宁市青秀区", "南宁市"),
                          ("上海市浦东新区", "上海市")):
        assert _CITY.match(address).group(1) == city, address
    assert _CITY.match("西湖区龙井路") is None


@settings(max_examples=300, deadline=None)
@given(total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2),
       whole=st.integers(1, 500), cuts=st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_the_parts_of_a_line_add_up_to_it(total, whole, cuts):
    """However a line is split over orders (or an order over deliveries), the parts add up to its total to the fen,
    none is negative, and each is within a fen of its pro-rata share (the last part takes the remainder)."""
    whole_q, taken, taken_q, parts = Decimal(whole), Decimal("0.00"), Decimal(0), []
    for cut in cuts:
        q = min(Decimal(cut), whole_q - taken_q)
        if q <= 0:
            break
        part = money.share(total, q, whole_q, taken, taken_q)
        parts.append(part)
        taken, taken_q = taken + part, taken_q + q
    if taken_q < whole_q:
        parts.append(money.share(total, whole_q - taken_q, whole_q, taken, taken_q))
    assert sum(parts) == total and all(p >= 0 for p in parts)
    assert all(p == p.quantize(money.CENT) for p in parts)


def test_two_people_ordering_the_last_units_at_once_cannot_both_succeed(pg_url):
    """A line of 5 with 1 ordered; six orders of 2 at once on PostgreSQL: two are taken (the line is full), the rest
    refused with 409 — never more ordered than contracted, never a 500, and the one that completed the line took
    exactly what was left of its amount (the racers queue on the line's row, so each prices from the other's take)."""
    from tests.conftest import _create_schema, _make_app, token_for

    app = _make_app(pg_url)
    with app.app_context():
        _create_schema()
        users = make_team()
        customer = make_customer(users["rep1"], "并发下单测试有限公司")
        db.session.commit()
        client = app.test_client()
        admin = token_for(client, users["admin"].username, "secret-pass-1")
        rep1 = token_for(client, users["rep1"].username, "secret-pass-1")
        mgr = token_for(client, users["manager"].username, "secret-pass-1")
        wp, _ = _products(client, admin)
        c = client.post("/api/v1/contracts", headers=rep1, json={
            "customer_id": customer.id, "lines": [{"product_id": wp["id"], "quantity": 5}],
            "payment_plan": [{"due_date": "2027-06-30", "amount": "7232.00"}]})
        assert c.status_code == 201, c.get_json()
        c = c.get_json()
        assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
        first = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                            json={"lines": [{"contract_line_id": c["lines"][0]["id"], "quantity": 1}]})
        assert first.status_code == 201 and first.get_json()["amount"] == "1446.40"
        db.session.remove()

    barrier, answers = threading.Barrier(6), []

    def order(n):
        from sqlalchemy import text

        with app.app_context():
            db.session.execute(text("SELECT 1"))
            barrier.wait(timeout=30)
            r = app.test_client().post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                                       json={"lines": [{"contract_line_id": c["lines"][0]["id"], "quantity": 2}]})
            answers.append(r.status_code)
            db.session.remove()

    threads = [threading.Thread(target=order, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == [201] * 2 + [409] * 4, answers  # 1 + 2 + 2 = 5
    with app.app_context():
        from crm_core.sales.models import ContractLine, SalesOrder

        line = db.session.get(ContractLine, c["lines"][0]["id"])
        assert line.ordered == Decimal(5) and line.ordered_amount == Decimal("7232.00")
        assert sum(o.amount for o in db.session.query(SalesOrder)) == Decimal("7232.00")  # the contract, to the fen
        db.session.remove()
        db.engine.dispose()
