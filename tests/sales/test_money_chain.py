"""报价 → 合同 → 回款 (#19): quotes priced on the server by the documented rule, contracts with
payment plans approved once (the customer turns trading), receipts matched to instalments without
ever overpaying one — also under concurrency on PostgreSQL — and the expiry and overdue jobs."""
from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm_core.clock import local_today, travel
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.sales import money
from crm_core.sales.models import Instalment, Receipt
from tests.factories import make_customer, make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _products(client, admin):
    a = client.post("/api/v1/products", headers=admin, json={"code": "WP100", "name": "商用净水器 WP100", "list_price": "1280.00",
                                                             "unit_cost": "800.00", "tax_rate": "13"})
    b = client.post("/api/v1/products", headers=admin, json={"code": "SVC-Y", "name": "年度维保服务", "tax_rate": 6})
    assert a.status_code == b.status_code == 201, (a.get_json(), b.get_json())
    assert a.get_json()["list_price"] == "1280.00" and b.get_json()["list_price"] is None
    return a.get_json(), b.get_json()


def _quote(client, h, customer_id, wp, svc, **extra):
    return client.post("/api/v1/quotes", headers=h, json={
        "customer_id": customer_id, "lines": [
            {"product_id": wp["id"], "quantity": 3, "discount_pct": "10"},  # list price, 10 % off
            {"product_id": svc["id"], "quantity": "2.5", "unit_price": "99.99"},  # no list price: priced by hand
        ], "total": "1.00", **extra})  # a client's total is never read


def test_a_quote_is_priced_on_the_server_line_by_line(team, client, auth_headers):
    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], "杭州报价测试有限公司")
    db.session.commit()

    r = _quote(client, rep1, customer.id, wp, svc)
    assert r.status_code == 201, r.get_json()
    q = r.get_json()
    # WP100: 3 × 1280.00 = 3840.00, 10 % = 384.00, net 3456.00, VAT 13 % = 449.28
    # service: 2.5 × 99.99 = 249.975 → 249.98 (half up), VAT 6 % = 14.9988 → 15.00
    assert [(ln["gross"], ln["discount"], ln["tax"], ln["total"]) for ln in q["lines"]] == [
        ("3840.00", "384.00", "449.28", "3905.28"), ("249.98", "0.00", "15.00", "264.98")]
    assert (q["subtotal"], q["discount"], q["tax"], q["total"]) == ("4089.98", "384.00", "464.28", "4170.26")
    assert (q["cost"], q["expected_profit"]) == ("2400.00", "1305.98")  # net 3705.98 − cost 3 × 800.00
    assert q["number"].startswith("BJ") and q["status"] == "draft" and q["version"] == 1
    assert q["valid_until"] == (local_today() + timedelta(days=30)).isoformat()

    # bad input names the line and saves nothing
    bad = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": customer.id, "lines": [
        {"product_id": wp["id"]}, {"product_id": svc["id"], "quantity": 1}]})
    assert bad.status_code == 422 and "lines.1.unit_price" in bad.get_json()["error"]["fields"]
    assert "年度维保服务" in bad.get_json()["error"]["message"]
    for line, field in (({"product_id": wp["id"], "quantity": 0}, "quantity"),
                        ({"product_id": wp["id"], "discount_pct": "120"}, "discount_pct"),
                        ({"product_id": wp["id"], "unit_price": "12.345"}, "unit_price"),
                        ({"product_id": 99999}, "product_id")):
        r = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": customer.id, "lines": [line]})
        assert r.status_code == 422 and any(field in k for k in r.get_json()["error"]["fields"]), (line, r.get_json())
    past = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": customer.id, "valid_until": "2020-01-01",
                                                             "lines": [{"product_id": wp["id"]}]})
    assert past.status_code == 422 and "valid_until" in past.get_json()["error"]["fields"]
    assert client.get("/api/v1/quotes", headers=rep1).get_json()["total"] == 1

    # the data scope: a colleague does not see it, the manager does
    assert client.get(f"/api/v1/quotes/{q['id']}", headers=auth_headers(team["rep2"])).status_code == 404
    assert client.get(f"/api/v1/quotes/{q['id']}", headers=auth_headers(team["manager"])).status_code == 200

    # a revision is the next version of the same number; the first is superseded
    rev = client.post(f"/api/v1/quotes/{q['id']}/revisions", headers=rep1,
                      json={"lines": [{"product_id": wp["id"], "quantity": 2}]}).get_json()
    assert (rev["number"], rev["version"], rev["total"]) == (q["number"], 2, "2892.80")  # 2560.00 + 13 %
    assert client.get(f"/api/v1/quotes/{q['id']}", headers=rep1).get_json()["status"] == "superseded"
    stale = client.post(f"/api/v1/quotes/{q['id']}/send", headers=rep1, json={})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "illegal_transition"


def test_quote_to_contract_to_receipts(team, client, auth_headers):
    admin, rep1, mgr = auth_headers(team["admin"]), auth_headers(team["rep1"]), auth_headers(team["manager"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], "宁波合同测试有限公司", trading=False)
    db.session.commit()
    q = _quote(client, rep1, customer.id, wp, svc).get_json()
    assert client.post(f"/api/v1/quotes/{q['id']}/send", headers=rep1, json={}).get_json()["status"] == "sent"

    uneven = client.post("/api/v1/contracts", headers=rep1, json={
        "customer_id": customer.id, "quote_id": q["id"], "payment_plan": [{"due_date": "2027-01-31", "amount": "2000.00"},
                                                                          {"due_date": "2027-03-31", "amount": "2000.00"}]})
    assert uneven.status_code == 422 and "少 170.26 元" in uneven.get_json()["error"]["message"]
    due1 = local_today() + timedelta(days=10)
    r = client.post("/api/v1/contracts", headers=rep1, json={
        "customer_id": customer.id, "quote_id": q["id"], "amount": "9.99",
        "payment_plan": [{"due_date": due1.isoformat(), "amount": "2085.13"},
                         {"due_date": (due1 + timedelta(days=60)).isoformat(), "amount": "2085.13"}]})
    assert r.status_code == 422 and "4170.26" in r.get_json()["error"]["message"]  # not the quote's total
    plan = [{"due_date": due1.isoformat(), "amount": "2085.13"}, {"due_date": (due1 + timedelta(days=60)).isoformat(),
                                                                  "amount": "2085.13"}]
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "quote_id": q["id"],
                                                             "payment_plan": plan}).get_json()
    assert c["status"] == "pending" and c["amount"] == "4170.26" and c["number"].startswith("HT")
    again = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "quote_id": q["id"],
                                                                 "payment_plan": plan})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "duplicate_contract"

    early = client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "100.00"})
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "contract_not_effective"
    assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=rep1, json={}).status_code == 403
    ok = client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    assert ok.status_code == 200 and ok.get_json()["status"] == "approved"
    twice = client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "already_decided"
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).trading is True  # 客户转交易
    assert client.get(f"/api/v1/quotes/{q['id']}", headers=rep1).get_json()["status"] == "accepted"
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.dedupe_key == f"contract-approved:{c['id']}")) == 1  # the owner hears of it

    # 1,000.00 goes to the first instalment; a double tap with one key is one receipt
    key = {**rep1, "Idempotency-Key": "receipt-0001"}
    first = client.post("/api/v1/receipts", headers=key, json={"contract_id": c["id"], "amount": "1000", "method": "bank"})
    replay = client.post("/api/v1/receipts", headers=key, json={"contract_id": c["id"], "amount": "1000", "method": "bank"})
    assert first.status_code == replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    ins = [i["id"] for i in c["instalments"]]
    assert first.get_json()["allocations"] == [{"instalment_id": ins[0], "amount": "1000.00"}]
    # 1,500.00 without an instalment: the rest of the first (1,085.13), then 414.87 of the second
    second = client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "1500.00"}).get_json()
    assert second["allocations"] == [{"instalment_id": ins[0], "amount": "1085.13"}, {"instalment_id": ins[1], "amount": "414.87"}]
    over = client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "1670.27"})
    assert over.status_code == 422 and "1670.26" in over.get_json()["error"]["message"]
    future = client.post("/api/v1/receipts", headers=rep1, json={
        "contract_id": c["id"], "amount": "1.00", "received_at": (local_today() + timedelta(days=2)).isoformat()})
    assert future.status_code == 422 and "received_at" in future.get_json()["error"]["fields"]
    last = client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "instalment_id": ins[1],
                                                               "amount": "1670.26"})
    assert last.status_code == 201
    done = client.get(f"/api/v1/contracts/{c['id']}", headers=rep1).get_json()
    assert (done["status"], done["received"], done["outstanding"]) == ("completed", "4170.26", "0.00")
    assert [i["state"] for i in done["instalments"]] == ["paid", "paid"]
    assert db.session.scalar(select(func.count(Receipt.id))) == 3


def test_overdue_instalments_are_reported_once_to_the_owner_and_manager(team, client, auth_headers):
    from crm_core.sales.documents import notify_overdue_instalments

    rep1, mgr = auth_headers(team["rep1"]), auth_headers(team["manager"])
    customer = make_customer(team["rep1"], "温州逾期测试有限公司")
    db.session.commit()
    due = local_today() + timedelta(days=3)
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "amount": "500000.00",
                                                             "payment_plan": [{"due_date": due.isoformat(), "amount": "500000"}]})
    assert c.status_code == 201, c.get_json()
    c = c.get_json()
    assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
    assert notify_overdue_instalments() == 0  # not due yet
    with travel(timedelta(days=5)):
        rep1 = auth_headers(team["rep1"])  # a token of that day
        assert client.get(f"/api/v1/contracts/{c['id']}", headers=rep1).get_json()["instalments"][0]["state"] == "overdue"
        assert notify_overdue_instalments() == 2
        assert notify_overdue_instalments() == 0
    texts = db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.dedupe_key.like("instalment-overdue:%"))).all()
    assert sorted(texts) == sorted([str(team["rep1"].employee_id), str(team["manager"].employee_id)])


def test_quotes_expire_after_their_validity(team, client, auth_headers):
    from crm_core.sales.documents import expire_quotes

    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    wp, _svc = _products(client, admin)
    customer = make_customer(team["rep1"])
    db.session.commit()
    q = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": customer.id, "lines": [{"product_id": wp["id"]}],
                                                          "valid_until": (local_today() + timedelta(days=1)).isoformat()}).get_json()
    assert expire_quotes() == 0
    with travel(timedelta(days=3)):
        assert expire_quotes() == 1
        rep1 = auth_headers(team["rep1"])
        late = client.post(f"/api/v1/quotes/{q['id']}/accept", headers=rep1, json={"by": "客户王总"})
    assert late.status_code == 409 and "已失效" in late.get_json()["error"]["message"]


# --- property tests: the figures always reconcile ----------------------------------------------
amounts = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("99999.99"), places=2)
percents = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("100.00"), places=2)
quantities = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("9999.9999"), places=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(quantities, amounts, percents, percents, amounts), min_size=1, max_size=30))
def test_lines_always_add_up_to_the_document(lines):
    figures = [money.line(*ln) for ln in lines]
    t = money.totals(figures)
    assert t.total == t.subtotal - t.discount + t.tax
    assert t.profit == t.subtotal - t.discount - t.cost
    for f in figures:
        assert f.total == f.net + f.tax and f.net == f.gross - f.discount and 0 <= f.discount <= f.gross
        assert all(x == x.quantize(money.CENT) for x in (f.gross, f.discount, f.tax, f.total, f.cost))


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2), st.integers(1, 120))
def test_an_even_plan_adds_up_exactly(amount, parts):
    plan = money.split(amount, parts)
    assert sum(plan) == amount and len(plan) == parts and all(p >= 0 for p in plan)
    assert max(plan) - min(plan) < Decimal("0.01") * parts + Decimal("0.01")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.decimals(min_value=Decimal("1.00"), max_value=Decimal("100000.00"), places=2), parts=st.integers(1, 6),
       receipts=st.lists(st.tuples(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("60000.00"), places=2),
                                   st.booleans()), min_size=1, max_size=8))
def test_receipts_never_overpay_and_always_reconcile(app, total, parts, receipts):
    """Whatever the plan and whatever receipts are tried, accepted receipts equal what the
    instalments and the contract say was received, and nothing is ever received beyond its amount."""
    from crm_core.org.permissions import Actor
    from crm_core.sales import documents as svc

    actor = Actor.system(_org(), "测试")
    actor.employee_id = None
    customer = Customer(org_id=actor.org_id, name=f"对账客户{total}{parts}", kind="company", trading=False, status="active", tags=[])
    db.session.add(customer)
    db.session.flush()
    due = date(2027, 1, 31)
    plan = [{"due_date": (due + timedelta(days=30 * i)).isoformat(), "amount": str(p)} for i, p in enumerate(money.split(total, parts))]
    c = svc.create_contract(actor, {"customer_id": customer.id, "amount": str(total), "payment_plan": plan})
    svc.approve_contract(actor, c.id)
    accepted = Decimal("0.00")
    for amount, pick in receipts:
        inst = c.instalments[-1].id if pick else None
        try:
            with db.session.begin_nested():
                svc.record_receipt(actor, {"contract_id": c.id, "amount": str(amount), "instalment_id": inst})
            accepted += amount
        except Exception as exc:  # refused: more than is outstanding (on that instalment)
            assert type(exc).__name__ == "ValidationFailed", exc
    db.session.expire_all()
    rows = db.session.scalars(select(Instalment).where(Instalment.contract_id == c.id)).all()
    assert all(i.received <= i.amount for i in rows)
    assert sum(i.received for i in rows) == accepted == db.session.get(type(c), c.id).received
    db.session.rollback()


def _org() -> int:
    from crm_core.org.models import Organization

    org = db.session.scalars(select(Organization).where(Organization.code == "prop")).first()
    if org is None:
        org = Organization(code="prop", name="对账测试")
        db.session.add(org)
        db.session.flush()
    return org.id


def test_concurrent_receipts_on_one_instalment_cannot_overpay_it(pg_url):
    """Eight receipts of 300.00 at once against a 1,000.00 instalment on PostgreSQL: three are
    taken (900.00), the rest refused with 422 — never 1,200.00 received, never a 500."""
    from tests.conftest import _create_schema, _make_app, token_for

    app = _make_app(pg_url)
    with app.app_context():
        _create_schema()
        users = make_team()
        customer = make_customer(users["rep1"], "并发回款测试有限公司")
        db.session.commit()
        client = app.test_client()
        rep1 = token_for(client, users["rep1"].username, "secret-pass-1")
        mgr = token_for(client, users["manager"].username, "secret-pass-1")
        c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "amount": "1000.00",
                                                                 "payment_plan": [{"due_date": "2027-06-30", "amount": "1000.00"}]})
        assert c.status_code == 201, c.get_json()
        c = c.get_json()
        assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
        db.session.remove()

    barrier, answers = threading.Barrier(8), []

    def pay(n):
        from sqlalchemy import text

        with app.app_context():
            # connect first, and keep the connection (the request shares this session): the race under test
            # is the receipts', not eight connections opening at once on a loaded machine
            db.session.execute(text("SELECT 1"))
            barrier.wait(timeout=30)
            r = app.test_client().post("/api/v1/receipts", headers={**rep1, "Idempotency-Key": f"pay-{n}"},
                                       json={"contract_id": c["id"], "instalment_id": c["instalments"][0]["id"], "amount": "300.00"})
            answers.append(r.status_code)
            db.session.remove()

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == [201] * 3 + [422] * 5, answers
    with app.app_context():
        inst = db.session.get(Instalment, c["instalments"][0]["id"])
        assert inst.received == Decimal("900.00")
        assert db.session.scalar(select(func.sum(Receipt.amount))) == Decimal("900.00")
        db.session.remove()
        db.engine.dispose()


def test_receivables_by_ageing_and_the_due_list_within_scope(team, client, auth_headers):
    rep1, mgr, rep2 = auth_headers(team["rep1"]), auth_headers(team["manager"]), auth_headers(team["rep2"])
    customer = make_customer(team["rep1"], "嘉兴应收测试有限公司")
    db.session.commit()
    today = local_today()
    plan = [{"due_date": (today + timedelta(days=d)).isoformat(), "amount": a} for d, a in ((5, "1000"), (40, "2000"), (100, "3000"))]
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "amount": "6000", "payment_plan": plan})
    c = c.get_json()
    client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    assert client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "400"}).status_code == 201
    with travel(timedelta(days=50)):  # the first is 45 days overdue, the second 10, the third not due
        rep1, mgr, rep2 = auth_headers(team["rep1"]), auth_headers(team["manager"]), auth_headers(team["rep2"])
        r = client.get("/api/v1/reports/receivables", headers=mgr).get_json()
        row = r["rows"][0]
        assert (row["customer"], row["not_due"], row["d1_30"], row["d31_60"], row["d61_90"], row["d90_plus"]) == (
            "嘉兴应收测试有限公司", "3000.00", "2000.00", "600.00", "0.00", "0.00")
        assert (r["totals"]["outstanding"], r["totals"]["overdue"]) == ("5600.00", "2600.00")
        due = client.get("/api/v1/reports/overdue", headers=rep1).get_json()
        assert [(x["seq"], x["outstanding"], x["days_overdue"]) for x in due["rows"]] == [(1, "600.00", 45), (2, "2000.00", 10)]
        assert due["totals"] == {"count": 2, "outstanding": "2600.00"}
        sheet = client.get("/api/v1/reports/receivables?format=csv", headers=mgr)
        lines = sheet.get_data(as_text=True).lstrip("\ufeff").splitlines()
        assert sheet.mimetype == "text/csv" and lines[0] == "客户,未到期,逾期1–30天,逾期31–60天,逾期61–90天,逾期90天以上,逾期合计,应收合计"
        assert lines[1] == "嘉兴应收测试有限公司,3000.00,2000.00,600.00,0.00,0.00,2600.00,5600.00" and lines[-1].startswith("合计,")
        due_sheet = client.get("/api/v1/reports/overdue?format=csv", headers=rep1).get_data(as_text=True).splitlines()
        assert len(due_sheet) == 4 and due_sheet[1].endswith(",1,%s,1000.00,400.00,600.00,45" % (today + timedelta(days=5)))
        assert client.get("/api/v1/reports/receivables", headers=rep2).get_json()["rows"] == []  # not in their scope
        v = client.get(f"/api/v1/customers/{customer.id}/360", headers=mgr).get_json()  # the customer 360 view
        assert (v["figures"]["receivable"], v["figures"]["overdue_receivable"]) == ("5600.00", "2600.00")
        assert [(x["number"], x["outstanding"]) for x in v["contracts"]] == [(c["number"], "5600.00")]


def test_the_quote_pdf_reads_as_the_customer_receives_it(team, client, auth_headers):
    import io

    from pypdf import PdfReader

    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], "湖州报价单测试有限公司")
    db.session.commit()
    q = _quote(client, rep1, customer.id, wp, svc, note="含上门安装与首年滤芯").get_json()
    r = client.get(f"/api/v1/quotes/{q['id']}/pdf", headers=rep1)
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    assert "filename*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95" in r.headers["Content-Disposition"]  # 报价单-...
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.data)).pages).replace(" ", "")
    for expected in ("报价单", "湖州报价单测试有限公司", q["number"], "商用净水器WP100", "¥4,170.26", "肆仟壹佰柒拾元贰角陆分",
                     "含上门安装与首年滤芯", team["admin"].organization.name):
        assert expected.replace(" ", "") in text, (expected, text[:400])
    assert client.get(f"/api/v1/quotes/{q['id']}/pdf", headers=auth_headers(team["rep2"])).status_code == 404


@pytest.mark.parametrize("value, words", [("1305.98", "壹仟叁佰零伍元玖角捌分"), ("100", "壹佰元整"), ("10001", "壹万零壹元整"),
                                          ("101000", "壹拾万壹仟元整"), ("100000001", "壹亿零壹元整"), ("0.05", "伍分"),
                                          ("1002003.04", "壹佰万贰仟零叁元零肆分"), ("1010", "壹仟零壹拾元整")])
def test_capital_numerals_as_invoices_write_them(value, words):
    from crm_core.sales.quote_pdf import upper_yuan

    assert upper_yuan(value) == words


def test_the_customer_reads_and_accepts_the_quote_in_wechat(team, client, auth_headers, any_app):
    import re

    from crm_core.clock import utcnow
    from crm_core.customers.models import Contact
    from crm_core.wechat.models import Follower

    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], "绍兴微信报价有限公司")
    other = make_customer(team["rep2"], "别家公司")
    appid = any_app.config["WECHAT_APPID"]
    for openid, cust in (("oQuoteBuyer01", customer), ("oQuoteOther01", other)):
        contact = Contact(org_id=cust.org_id, customer_id=cust.id, owner_id=cust.owner_id, department_id=cust.department_id,
                          name="王总" if cust is customer else "李总", phone="13900001111", interests=[], is_primary=True)
        db.session.add(contact)
        db.session.flush()
        db.session.add(Follower(appid=appid, openid=openid, org_id=cust.org_id, subscribed=True, subscribed_at=utcnow(),
                                contact_id=contact.id, customer_id=cust.id, bound_at=utcnow()))
    db.session.commit()
    q = _quote(client, rep1, customer.id, wp, svc).get_json()

    phone = any_app.test_client()
    page = phone.get(f"/h5/dev-login?openid=oQuoteBuyer01&next=/h5/quotes/{q['id']}", follow_redirects=True)
    assert page.status_code == 404 and "不是发给您的" in page.get_data(as_text=True)  # a draft is not the customer's yet

    sent = client.post(f"/api/v1/quotes/{q['id']}/send", headers=rep1, json={})
    assert sent.status_code == 200 and sent.get_json()["status"] == "sent"
    notices = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "wechat_notice",
                                                             OutboxMessage.dedupe_key.like("quote-sent:%"))).all()
    assert [(n.recipient, n.payload["url"].endswith(f"/h5/quotes/{q['id']}")) for n in notices] == [("oQuoteBuyer01", True)]
    assert "价税合计 4170.26 元" in notices[0].payload["text"]

    page = phone.get(f"/h5/quotes/{q['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "¥4,170.26" in html and "接受报价" in html and "商用净水器 WP100" in html
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    r = phone.post(f"/h5/api/quotes/{q['id']}/accept", json={}, headers={"X-CSRFToken": csrf, "Idempotency-Key": "tap-1"})
    assert r.status_code == 200 and r.get_json()["status"] == "accepted" and r.get_json()["decided_by"] == "王总（微信确认）"
    assert not {"cost", "expected_profit", "owner_id"} & set(r.get_json())  # the customer never sees the margin
    again = phone.post(f"/h5/api/quotes/{q['id']}/reject", json={}, headers={"X-CSRFToken": csrf})
    assert again.status_code == 409
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.dedupe_key == f"quote-answered:{q['id']}", OutboxMessage.recipient == str(team["rep1"].employee_id))) == 1

    stranger = any_app.test_client()
    r = stranger.get(f"/h5/dev-login?openid=oQuoteOther01&next=/h5/quotes/{q['id']}", follow_redirects=True)
    assert r.status_code == 404  # another customer's WeChat user never sees it


def test_an_opportunity_pushes_down_to_a_quote(team, client, auth_headers):
    """商机下推报价: the opportunity's products become the quote's lines, its agreed prices kept."""
    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    wp, svc = _products(client, admin)
    customer = make_customer(team["rep1"], "台州下推测试有限公司")
    db.session.commit()
    bare = client.post("/api/v1/opportunities", headers=rep1, json={"name": "空商机", "customer_id": customer.id}).get_json()
    r = client.post(f"/api/v1/opportunities/{bare['id']}/quote", headers=rep1, json={})
    assert r.status_code == 422 and "意向产品" in r.get_json()["error"]["message"]
    opp = client.post("/api/v1/opportunities", headers=rep1, json={
        "name": "净水项目", "customer_id": customer.id,
        "products": [{"product_id": wp["id"], "quantity": 4}, {"product_id": svc["id"], "quantity": 1, "unit_price": "500.00"}]}).get_json()
    q = client.post(f"/api/v1/opportunities/{opp['id']}/quote", headers=rep1, json={"note": "按商机报价"})
    assert q.status_code == 201, q.get_json()
    q = q.get_json()
    assert q["opportunity_id"] == opp["id"] and q["customer_id"] == customer.id and q["note"] == "按商机报价"
    assert [(ln["name"], ln["quantity"], ln["unit_price"]) for ln in q["lines"]] == [
        ("商用净水器 WP100", "4", "1280.00"), ("年度维保服务", "1", "500.00")]
    assert client.get(f"/api/v1/quotes?opportunity_id={opp['id']}", headers=rep1).get_json()["total"] == 1
    assert client.post(f"/api/v1/opportunities/{opp['id']}/quote", headers=auth_headers(team["rep2"]), json={}).status_code == 404


def test_sales_performance_against_monthly_targets(team, client, auth_headers):
    """销售业绩统计: the manager sets targets for the team (not for another team), and reads
    contracted, received and completion per person, per department and in total."""
    rep1, rep2, mgr = auth_headers(team["rep1"]), auth_headers(team["rep2"]), auth_headers(team["manager"])
    today = local_today()
    month = today.strftime("%Y-%m")
    r = client.put("/api/v1/sales-targets", headers=mgr, json={"targets": [
        {"employee_id": team["rep1"].employee_id, "month": month, "amount": "20000"},
        {"employee_id": team["rep2"].employee_id, "month": month, "amount": "10000.00"}]})
    assert r.status_code == 200 and r.get_json() == {"saved": 2}
    outside = client.put("/api/v1/sales-targets", headers=mgr, json={"targets": [
        {"employee_id": team["rep3"].employee_id, "month": month, "amount": "5000"}]})
    assert outside.status_code == 422 and "不在您的管理范围内" in outside.get_json()["error"]["message"]
    assert client.put("/api/v1/sales-targets", headers=rep1, json={"targets": [
        {"employee_id": team["rep1"].employee_id, "month": month, "amount": "1"}]}).status_code == 403
    bad = client.put("/api/v1/sales-targets", headers=mgr, json={"targets": [
        {"employee_id": team["rep1"].employee_id, "month": "2026-13", "amount": "1"}]})
    assert bad.status_code == 422 and "targets.0.month" in bad.get_json()["error"]["fields"]

    customer = make_customer(team["rep1"], "丽水业绩测试有限公司")
    db.session.commit()
    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": customer.id, "amount": "10000",
                                                             "payment_plan": [{"due_date": today.isoformat(), "amount": "10000"}]}).get_json()
    client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "4000"})

    report = client.get(f"/api/v1/reports/sales-performance?year={today.year}", headers=mgr).get_json()
    people = {r["name"]: r for r in report["rows"]}
    first = people["员工rep1"]
    assert (first["target"], first["contracted"], first["received"], first["completion"]) == ("20000.00", "10000.00", "4000.00", "50.00")
    assert first["months"] == [{"month": today.month, "target": "20000.00", "contracted": "10000.00", "received": "4000.00",
                                "completion": "50.00"}]
    assert (people["员工rep2"]["contracted"], people["员工rep2"]["completion"]) == ("0.00", "0.00")
    assert report["totals"] == {"target": "30000.00", "contracted": "10000.00", "received": "4000.00", "completion": "33.33"}
    depts = client.get(f"/api/v1/reports/sales-performance?year={today.year}&by=department", headers=mgr).get_json()
    assert [(d["name"], d["target"]) for d in depts["rows"]] == [("华东组", "30000.00")]
    sheet = client.get(f"/api/v1/reports/sales-performance?year={today.year}&format=csv", headers=mgr).get_data(as_text=True)
    assert f"员工rep1,{today.month},20000.00,10000.00,4000.00,50.00" in sheet and "合计,全年,30000.00,10000.00,4000.00,33.33" in sheet
    mine = client.get(f"/api/v1/reports/sales-performance?year={today.year}", headers=rep2).get_json()
    assert [r["name"] for r in mine["rows"]] == ["员工rep2"]  # a salesperson sees their own figures only


def test_competitor_analysis_counts_wins_and_losses_per_competitor(team, client, auth_headers):
    rep1, mgr = auth_headers(team["rep1"]), auth_headers(team["manager"])
    customer = make_customer(team["rep1"], "金华竞争测试有限公司")
    db.session.commit()
    outcomes = [("won", [("沁园", "4200"), ("美的", None)]), ("lost", [("沁园", "3800")]), ("lost", [(" 沁园 ", "4000")]),
                ("open", [("美的", "3000")])]
    for i, (outcome, rivals) in enumerate(outcomes):
        opp = client.post("/api/v1/opportunities", headers=rep1, json={"name": f"竞争商机{i}", "customer_id": customer.id,
                                                                       "amount": "10000"}).get_json()
        r = client.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=rep1,
                       json={"competitors": [{"name": n, **({"price": p} if p else {})} for n, p in rivals]})
        assert r.status_code == 200, r.get_json()
        if outcome == "won":
            client.post(f"/api/v1/opportunities/{opp['id']}/win", headers=rep1, json={})
        elif outcome == "lost":
            client.post(f"/api/v1/opportunities/{opp['id']}/lose", headers=rep1, json={"reason": "价格"})
    data = client.get("/api/v1/reports/competitors", headers=mgr).get_json()
    rows = {r["name"]: r for r in data["rows"]}
    assert (rows["沁园"]["met"], rows["沁园"]["won"], rows["沁园"]["lost"], rows["沁园"]["win_rate"]) == (3, 1, 2, "33.33")
    assert (rows["沁园"]["avg_price"], rows["沁园"]["lost_amount"]) == ("4000.00", "20000.00")
    assert (rows["美的"]["met"], rows["美的"]["open"], rows["美的"]["win_rate"]) == (2, 1, "100.00")
    assert data["totals"]["competitors"] == 2
    assert client.get("/api/v1/reports/competitors", headers=auth_headers(team["rep3"])).get_json()["rows"] == []
    sheet = client.get("/api/v1/reports/competitors?format=csv", headers=mgr).get_data(as_text=True)
    assert sheet.lstrip("\ufeff").startswith("竞争对手,市场份额%,交锋商机,赢单,输单,进行中,胜率%")



def test_guards_found_in_review(team, client, auth_headers):
    """A manager cannot approve their own contract; a receipt is the contract owner's whoever records
    it; a quote with a contract is not revised; huge numbers and markup in names are refused or kept
    as text, never a 500."""
    import io

    from pypdf import PdfReader

    from crm_core.errors import ValidationFailed

    admin, rep1, mgr = auth_headers(team["admin"]), auth_headers(team["rep1"]), auth_headers(team["manager"])
    mine = make_customer(team["manager"], "经理自己的客户")
    theirs = make_customer(team["rep1"], "衢州审核测试有限公司")
    db.session.commit()
    plan = [{"due_date": "2027-06-30", "amount": "1000"}]
    own = client.post("/api/v1/contracts", headers=mgr, json={"customer_id": mine.id, "amount": "1000", "payment_plan": plan}).get_json()
    r = client.post(f"/api/v1/contracts/{own['id']}/approve", headers=mgr, json={})
    assert r.status_code == 403 and "自己负责" in r.get_json()["error"]["message"]
    assert client.post(f"/api/v1/contracts/{own['id']}/approve", headers=admin, json={}).status_code == 200

    c = client.post("/api/v1/contracts", headers=rep1, json={"customer_id": theirs.id, "amount": "1000", "payment_plan": plan}).get_json()
    client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={})
    client.post("/api/v1/receipts", headers=mgr, json={"contract_id": c["id"], "amount": "300"})
    receipt = db.session.scalars(select(Receipt).where(Receipt.contract_id == c["id"])).one()
    assert receipt.owner_id == team["rep1"].employee_id  # rep1's 回款, recorded by the manager

    odd = client.post("/api/v1/products", headers=admin, json={"code": "M8", "name": "螺栓<M8> & <b>垫片", "list_price": "2.50"}).get_json()
    q = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": theirs.id, "lines": [{"product_id": odd["id"], "quantity": 100}]})
    q = q.get_json()
    assert q["lines"][0]["quantity"] == "100"  # not "1E+2"
    pdf = client.get(f"/api/v1/quotes/{q['id']}/pdf", headers=rep1)
    assert pdf.status_code == 200
    assert "螺栓<M8>&<b>垫片" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages).replace(" ", "")
    client.post(f"/api/v1/quotes/{q['id']}/send", headers=rep1, json={})
    client.post("/api/v1/contracts", headers=rep1, json={"customer_id": theirs.id, "quote_id": q["id"],
                                                         "payment_plan": [{"due_date": "2027-06-30", "amount": q["total"]}]})
    again = client.post(f"/api/v1/quotes/{q['id']}/revisions", headers=rep1, json={})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "has_contract"
    for value in ("1e30", "9" * 40, "NaN"):
        with pytest.raises(ValidationFailed):
            money.parse(value, "amount")
    huge = client.post("/api/v1/quotes", headers=rep1, json={"customer_id": theirs.id, "lines": [
        {"product_id": odd["id"], "quantity": "99999999", "unit_price": "9999999999999.99"}]})
    assert huge.status_code == 422 and "超出范围" in huge.get_json()["error"]["message"]
