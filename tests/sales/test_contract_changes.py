"""合同变更 (#19 item 3): a change of an effective contract — amount, title, the plan of what is unpaid — is versioned,
approved through the approval engine, keeps what was received, and is refused in words when it does not add up or
when money came in after it was written."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from crm_core.clock import local_today
from crm_core.db import db
from crm_core.sales.models import Contract
from tests.factories import make_customer


def _effective_contract(client, h, customer_id):
    d = local_today()
    c = client.post("/api/v1/contracts", headers=h["rep1"], json={
        "customer_id": customer_id, "amount": "10000.00", "title": "净水设备采购合同",
        "payment_plan": [{"due_date": (d + timedelta(days=10)).isoformat(), "amount": "5000.00"},
                         {"due_date": (d + timedelta(days=40)).isoformat(), "amount": "5000.00"}]}).get_json()
    assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=h["manager"], json={}).status_code == 200
    return client.get(f"/api/v1/contracts/{c['id']}", headers=h["rep1"]).get_json()


def _pay(client, h, c, instalment, amount, key):
    r = client.post("/api/v1/receipts", headers={**h["rep1"], "Idempotency-Key": key},
                    json={"contract_id": c["id"], "instalment_id": instalment["id"], "amount": amount})
    assert r.status_code == 201, r.get_json()


def test_a_change_keeps_what_was_received_and_applies_once_approved(team, h, client):
    customer = make_customer(team["rep1"], "合同变更测试有限公司")
    db.session.commit()
    c = _effective_contract(client, h, customer.id)
    _pay(client, h, c, c["instalments"][0], "3000.00", "chg-pay-1")
    later = (local_today() + timedelta(days=70)).isoformat()
    url = f"/api/v1/contracts/{c['id']}/changes"
    r = client.post(url, headers=h["rep1"], json={"reason": "客户增购 2 台", "amount": "12000.00",
                                                   "payment_plan": [{"due_date": later, "amount": "6000.00"}]})
    assert r.status_code == 422 and "与未回款部分" in r.get_json()["error"]["message"] and "少 1000.00 元" in r.get_json()["error"]["message"]
    r = client.post(url, headers=h["rep1"], json={"reason": "减少采购", "amount": "2000.00",
                                                   "payment_plan": [{"due_date": later, "amount": "1.00"}]})
    assert r.status_code == 422 and "不能少于已回款 3000.00 元" in r.get_json()["error"]["message"]
    assert client.post(url, headers=h["rep1"], json={"reason": " "}).status_code == 422
    r = client.post(url, headers=h["rep1"], json={"reason": "客户增购 2 台", "amount": "12000.00",
                                                   "payment_plan": [{"due_date": later, "amount": "7000.00"}]})
    assert r.status_code == 201, r.get_json()
    change = r.get_json()
    assert change["status"] == "pending" and change["version"] == 2 and change["before"]["amount"] == "10000.00"
    assert client.post(url, headers=h["rep1"], json={"reason": "再改", "title": "新名称"}).status_code == 409  # one at a time
    item = {i["id"]: i for i in client.get("/api/v1/approvals", headers=h["manager"]).get_json()["items"]}[f"contract_change-{change['id']}"]
    assert item["kind_label"] == "合同变更" and "10000.00 → 12000.00 元" in item["detail"] and item["record"]["type"] == "contract"
    assert db.session.get(Contract, c["id"]).amount == Decimal("10000.00")  # nothing applies before approval

    r = client.post(f"/api/v1/approvals/contract_change-{change['id']}/approve", headers=h["manager"], json={"comment": "同意增购"})
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    after = client.get(f"/api/v1/contracts/{c['id']}", headers=h["rep1"]).get_json()
    assert after["amount"] == "12000.00" and after["received"] == "3000.00"
    assert [(i["seq"], i["amount"], i["received"]) for i in after["instalments"]] == [(1, "5000.00", "3000.00"), (2, "7000.00", "0.00")]  # renumbered in due order
    assert "第 2 版变更：客户增购 2 台" in after["note"] and db.session.get(Contract, c["id"]).version == 2
    assert client.post(f"/api/v1/approvals/contract_change-{change['id']}/approve", headers=h["manager"], json={}).status_code == 409
    listed = client.get(url, headers=h["rep1"]).get_json()["items"]
    assert [(x["version"], x["status_label"]) for x in listed] == [(2, "已生效")]


def test_money_received_after_the_change_was_written_stops_it_from_applying(team, h, client):
    customer = make_customer(team["rep1"], "变更冲突测试有限公司")
    db.session.commit()
    c = _effective_contract(client, h, customer.id)
    r = client.post(f"/api/v1/contracts/{c['id']}/changes", headers=h["rep1"], json={
        "reason": "延后第二期", "payment_plan": [{"due_date": (local_today() + timedelta(days=20)).isoformat(), "amount": "5000.00"},
                                                {"due_date": (local_today() + timedelta(days=90)).isoformat(), "amount": "5000.00"}]})
    assert r.status_code == 201, r.get_json()
    _pay(client, h, c, c["instalments"][1], "100.00", "chg-pay-2")  # money arrives against an instalment the change replaces
    r = client.post(f"/api/v1/approvals/contract_change-{r.get_json()['id']}/approve", headers=h["manager"], json={})
    assert r.status_code == 409 and "又有回款" in r.get_json()["error"]["message"]
    db.session.expire_all()
    contract = db.session.get(Contract, c["id"])
    assert contract.version == 1 and [i.due_date for i in contract.instalments] == [
        local_today() + timedelta(days=10), local_today() + timedelta(days=40)]
    pending = client.post(f"/api/v1/contracts/{c['id']}/changes", headers=h["rep2"], json={"reason": "x", "title": "y"})
    assert pending.status_code in (403, 404)  # not rep2's contract


def test_a_contract_waiting_for_approval_cannot_be_changed(team, h, client):
    customer = make_customer(team["rep1"], "待审合同有限公司")
    db.session.commit()
    c = client.post("/api/v1/contracts", headers=h["rep1"], json={
        "customer_id": customer.id, "amount": "100.00",
        "payment_plan": [{"due_date": local_today().isoformat(), "amount": "100.00"}]}).get_json()
    r = client.post(f"/api/v1/contracts/{c['id']}/changes", headers=h["rep1"], json={"reason": "改名", "title": "新合同名"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "contract_not_effective"
