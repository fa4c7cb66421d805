"""费用申请 (#19 items 5, 6, 8): filed line by line (the server adds up), approved through the approval engine with the
organisation's conditions, paid once; pushed down from an opportunity; from a work order's fee lines, each claimed
once; and the parts a completed work order used leave stock."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.clock import local_today
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.sales.models import ExpenseRequest
from tests.factories import make_customer


def _lines(*amounts):
    day = local_today().isoformat()
    return [{"item": f"费用{n}", "amount": a, "incurred_on": day} for n, a in enumerate(amounts, 1)]


def test_an_expense_is_added_up_on_the_server_approved_by_the_manager_and_paid_once(team, h, client):
    customer = make_customer(team["rep1"], "费用测试有限公司")
    db.session.commit()
    r = client.post("/api/v1/expenses", headers=h["rep1"], json={
        "title": "拜访客户差旅", "category": "travel", "customer_id": customer.id, "amount": "1.00",
        "lines": _lines("280.50", "76")})
    assert r.status_code == 201, r.get_json()
    e = r.get_json()
    assert e["amount"] == "356.50" and e["status"] == "pending" and e["status_label"] == "审批中" and e["category_label"] == "差旅费"
    item = {i["id"]: i for i in client.get("/api/v1/approvals", headers=h["manager"]).get_json()["items"]}[f"expense-{e['id']}"]
    assert item["kind_label"] == "费用申请" and "356.50 元" in item["detail"] and item["step"] == "第 1/1 步 · 上级审批"
    assert client.post(f"/api/v1/expenses/{e['id']}/approve", headers=h["rep1"], json={}).status_code == 403  # own request
    assert client.post(f"/api/v1/expenses/{e['id']}/pay", headers=h["manager"], json={}).status_code == 409  # not approved yet
    assert client.post(f"/api/v1/approvals/expense-{e['id']}/approve", headers=h["manager"], json={}).get_json()["status"] == "approved"
    told = [m for m in db.session.scalars(select(OutboxMessage)) if m.payload.get("kind") == "expense_decided"]
    assert len(told) == 1 and "已批准" in told[0].payload["text"]
    assert client.post(f"/api/v1/expenses/{e['id']}/pay", headers=h["rep1"], json={}).status_code == 403
    assert client.post(f"/api/v1/expenses/{e['id']}/pay", headers=h["manager"], json={}).get_json()["status"] == "paid"
    assert client.post(f"/api/v1/expenses/{e['id']}/pay", headers=h["manager"], json={}).status_code == 409  # paid once
    # another salesperson does not see it; bad lines are refused in words
    assert client.get(f"/api/v1/expenses/{e['id']}", headers=h["rep3"]).status_code in (403, 404)
    r = client.post("/api/v1/expenses", headers=h["rep1"], json={"category": "travel", "lines": [{"item": "打车", "amount": "0"}]})
    assert r.status_code == 422 and "金额须大于 0" in r.get_json()["error"]["message"]
    assert client.post("/api/v1/expenses", headers=h["rep1"], json={"lines": []}).status_code == 422
    future = (local_today() + timedelta(days=3)).isoformat()
    r = client.post("/api/v1/expenses", headers=h["rep1"], json={"lines": [{"item": "预订酒店", "amount": "300", "incurred_on": future}]})
    assert r.status_code == 422 and "不能晚于今天" in r.get_json()["error"]["message"]


def test_a_large_expense_also_needs_the_general_manager_and_a_rejection_says_why(team, h, client):
    assert client.put("/api/v1/approval-flows/expense", headers=h["admin"], json={"steps": [
        {"name": "上级审批", "approver": "manager"},
        {"name": "总经理审批", "approver": "manager", "levels": 2, "when": [{"field": "amount", "op": "gte", "value": "5000"}]}]}).status_code == 200
    small = client.post("/api/v1/expenses", headers=h["rep1"], json={"category": "entertainment", "lines": _lines("800")}).get_json()
    big = client.post("/api/v1/expenses", headers=h["rep1"], json={"category": "marketing", "lines": _lines("3000", "2000")}).get_json()
    assert client.post(f"/api/v1/expenses/{small['id']}/approve", headers=h["manager"], json={}).get_json()["status"] == "approved"
    assert client.post(f"/api/v1/expenses/{big['id']}/approve", headers=h["manager"], json={}).get_json()["status"] == "pending"
    r = client.post(f"/api/v1/expenses/{big['id']}/reject", headers=h["boss"], json={"comment": "展会预算已用完"})
    assert r.get_json()["status"] == "rejected" and "驳回意见：展会预算已用完" in r.get_json()["note"]


def test_an_opportunity_pushes_down_an_expense_request_linked_back_to_it(team, h, client):
    customer = make_customer(team["rep1"], "下推费用有限公司")
    db.session.commit()
    opp = client.post("/api/v1/opportunities", headers=h["rep1"], json={"name": "净水改造", "customer_id": customer.id}).get_json()
    r = client.post(f"/api/v1/opportunities/{opp['id']}/expense", headers=h["rep1"], json={"category": "travel",
                                                                                          "lines": _lines("420")})
    assert r.status_code == 201, r.get_json()
    e = r.get_json()
    assert e["opportunity_id"] == opp["id"] and e["customer_id"] == customer.id and e["title"] == "差旅费（下推费用有限公司）"
    listed = client.get(f"/api/v1/expenses?opportunity_id={opp['id']}", headers=h["manager"]).get_json()
    assert [x["id"] for x in listed["items"]] == [e["id"]]
    assert client.post(f"/api/v1/opportunities/{opp['id']}/expense", headers=h["rep3"], json={"lines": _lines("1")}).status_code in (403, 404)


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def test_a_work_orders_fee_lines_become_one_expense_request_and_its_parts_leave_stock(demo, client):
    from crm_core.service.models import PartRequest, StockItem, Ticket
    from tests.service.test_staff_workbench import dispatched
    from tests.service.test_tickets import staff

    _, tid, wo_id = dispatched(demo, client)
    eng = staff(client, "service.engineer")
    before = db.session.scalars(select(StockItem).where(StockItem.code == "LY-FILTER-1")).one()
    on_hand, reserved = before.on_hand, before.reserved
    assert client.post(f"/api/v1/work-orders/{wo_id}/accept", headers=eng, json={}).status_code == 200
    r = client.post(f"/api/v1/work-orders/{wo_id}/records", headers=eng, json={
        "note": "更换滤芯", "parts": [{"code": "LY-FILTER-1", "quantity": 2}],
        "fees": [{"kind": "fee", "item": "往返交通", "amount": 46.5}, {"kind": "fee", "item": "停车费", "amount": 10},
                 {"kind": "income", "item": "上门服务费", "amount": 80}]})
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/v1/work-orders/{wo_id}/expense", headers=eng, json={})
    assert r.status_code == 201, r.get_json()
    e = r.get_json()
    assert e["amount"] == "56.50" and e["category"] == "service" and e["work_order_id"] == wo_id
    assert [ln["item"] for ln in e["lines"]] == ["往返交通", "停车费"]  # the costs; income is the customer's to pay
    again = client.post(f"/api/v1/work-orders/{wo_id}/expense", headers=eng, json={})
    assert again.status_code == 409 and "没有待申请的费用" in again.get_json()["error"]["message"]  # claimed once
    db.session.expire_all()
    after = db.session.get(StockItem, before.id)
    assert (after.on_hand, after.reserved) == (on_hand, reserved + 2)  # reserved while the work goes on
    from crm_core.org.settings import remember

    remember(after.org_id, "self_service", completion_signature="never")  # the paid-service signature is tested elsewhere
    db.session.commit()
    done = client.post(f"/api/v1/work-orders/{wo_id}/complete", headers=eng, json={"summary": "已更换"})
    assert done.status_code == 200, done.get_json()
    db.session.expire_all()
    after = db.session.get(StockItem, before.id)
    assert (after.on_hand, after.reserved) == (on_hand - 2, reserved)  # issued: gone from the shelf
    assert {p.status for p in db.session.scalars(select(PartRequest).where(PartRequest.work_order_id == wo_id))} == {"issued"}
    assert db.session.get(ExpenseRequest, e["id"]).status == "pending"
    assert db.session.get(ExpenseRequest, e["id"]).customer_id == db.session.get(Ticket, tid).customer_id
    # the paid service (80.00 上门服务费) is now owed: 其他应收, due today, in the receivables report
    admin = staff(client, "admin")
    owed = client.get("/api/v1/other-receivables", headers=admin).get_json()["items"]
    assert [(r["amount"], r["outstanding"], r["status"], r["work_order_id"]) for r in owed] == [("80.00", "80.00", "open", wo_id)]
    customer_id = db.session.get(Ticket, tid).customer_id
    report = client.get("/api/v1/reports/receivables", headers=admin).get_json()
    row = next(r for r in report["rows"] if r["customer_id"] == customer_id)
    assert row["other"] == "80.00" and Decimal(row["outstanding"]) >= Decimal("80.00")
    url = f"/api/v1/other-receivables/{owed[0]['id']}/payments"
    assert client.post(url, headers=admin, json={"amount": "50"}).get_json()["outstanding"] == "30.00"
    r = client.post(url, headers=admin, json={"amount": "40"})
    assert r.status_code == 422 and "超过未收的 30.00 元" in r.get_json()["error"]["message"]
    assert client.post(url, headers=admin, json={"amount": "30"}).get_json()["status"] == "paid"
    assert client.post(url, headers=admin, json={"amount": "1"}).status_code == 409
    assert client.post(f"/api/v1/work-orders/{wo_id}/complete", headers=eng, json={"summary": "again"}).status_code == 409
    assert len(client.get("/api/v1/other-receivables", headers=admin).get_json()["items"]) == 1  # raised once


def test_the_engineer_claims_the_fees_from_the_work_order_page_on_the_phone(demo, client):
    from tests.service.test_staff_workbench import dispatched, staff_phone

    _, _, wo_id = dispatched(demo, client)
    phone = staff_phone(demo, "oWbEngFee01")
    base = f"/h5/api/staff/work-orders/{wo_id}"
    assert phone.post(f"{base}/accept", json={}).status_code == 200
    assert 'id="claim-fees"' not in phone.get(f"/h5/staff/work-orders/{wo_id}").get_data(as_text=True)  # no cost yet
    r = phone.post(f"{base}/records", json={"note": "检修", "fees": [{"kind": "fee", "item": "高速通行费", "amount": 35}]})
    assert r.status_code == 201, r.get_json()
    assert 'id="claim-fees"' in phone.get(f"/h5/staff/work-orders/{wo_id}").get_data(as_text=True)
    r = phone.post(f"{base}/expense", json={})
    assert r.status_code == 201 and r.get_json()["amount"] == "35.00" and r.get_json()["status"] == "pending"
    assert phone.post(f"{base}/expense", json={}).status_code == 409
