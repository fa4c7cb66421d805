"""One approval engine (#19 item 5): flows per document type with conditions, sequential steps, 会签, delegation while
away, reminders, and every document (stage, quote, contract) through it; a document is approved once, also when
approvers race on PostgreSQL."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm_core.clock import local_today, utcnow
from crm_core.db import db
from crm_core.org.models import ApprovalRequest, ApprovalTask
from crm_core.outbox import OutboxMessage
from crm_core.sales.models import Contract, Quote
from tests.factories import PASSWORD, make_customer, make_team


def _contract(client, headers, customer_id, amount):
    due = (local_today() + timedelta(days=60)).isoformat()
    r = client.post("/api/v1/contracts", headers=headers, json={"customer_id": customer_id, "amount": amount,
                                                                "payment_plan": [{"due_date": due, "amount": amount}]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _inbox(client, headers):
    return {i["id"]: i for i in client.get("/api/v1/approvals", headers=headers).get_json()["items"]}


def _notices(kind, recipient=None):
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff")).all()
    return [m for m in rows if m.payload.get("kind") == kind and (recipient is None or m.recipient == str(recipient))]


def test_a_large_contract_goes_from_the_manager_to_the_director_and_a_small_one_stops_at_the_manager(team, h, client):
    boss = team["boss"].employee_id
    r = client.put("/api/v1/approval-flows/contract", headers=h["admin"], json={"steps": [
        {"name": "上级审批", "approver": "manager"},
        {"name": "销售总监", "approver": "employees", "employee_ids": [boss],
         "when": [{"field": "amount", "op": "gt", "value": "500000"}, {"field": "discount_pct", "op": "gt", "value": "10"}]}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["flows"]["contract"]["default"] is False
    customer = make_customer(team["rep1"], "审批流测试有限公司")
    db.session.commit()

    small = _contract(client, h["rep1"], customer.id, "420000.00")
    big = _contract(client, h["rep1"], customer.id, "600000.00")
    mine = _inbox(client, h["manager"])
    assert {f"contract-{small['id']}", f"contract-{big['id']}"} <= set(mine)
    assert mine[f"contract-{big['id']}"]["step"] == "第 1/2 步 · 上级审批"
    assert mine[f"contract-{small['id']}"]["step"] == "第 1/1 步 · 上级审批"
    assert f"contract-{big['id']}" not in _inbox(client, h["boss"])  # not the director's turn yet
    r = client.post(f"/api/v1/approvals/contract-{big['id']}/approve", headers=h["boss"], json={})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_your_turn"

    assert client.post(f"/api/v1/approvals/contract-{small['id']}/approve", headers=h["manager"], json={}).get_json()["status"] == "approved"
    r = client.post(f"/api/v1/approvals/contract-{big['id']}/approve", headers=h["manager"], json={"comment": "金额较大，请总监审批"})
    assert r.status_code == 200 and r.get_json()["status"] == "pending"  # on to step 2
    assert db.session.get(Contract, big["id"]).status == "pending"
    assert client.post(f"/api/v1/approvals/contract-{big['id']}/approve", headers=h["manager"], json={}).status_code == 403
    told = _notices("contract_submitted", boss)
    assert len(told) == 1 and "销售总监" in told[0].payload["text"] and told[0].payload["approval_ref"] == f"contract-{big['id']}"
    assert _inbox(client, h["boss"])[f"contract-{big['id']}"]["step"] == "第 2/2 步 · 销售总监"

    r = client.post(f"/api/v1/approvals/contract-{big['id']}/approve", headers=h["boss"], json={"comment": "同意"})
    assert r.get_json()["status"] == "approved"
    assert db.session.get(Contract, big["id"]).status == "approved"
    assert client.post(f"/api/v1/approvals/contract-{big['id']}/approve", headers=h["boss"], json={}).status_code == 409
    history = client.get(f"/api/v1/approvals/history?type=contract&id={big['id']}", headers=h["rep1"]).get_json()["items"]
    assert [(t["step_name"], t["status"], t["decided_by"], t["comment"]) for t in history[0]["tasks"]] == [
        ("上级审批", "approved", "员工manager", "金额较大，请总监审批"), ("销售总监", "approved", "员工boss", "同意")]
    assert history[0]["status_label"] == "已通过"


def test_a_countersigned_step_needs_everyone_and_one_rejection_ends_the_request(team, h, client):
    both = [team["boss"].employee_id, team["peer"].employee_id]
    assert client.put("/api/v1/approval-flows/contract", headers=h["admin"], json={"steps": [
        {"name": "会签", "approver": "employees", "employee_ids": both, "mode": "all"},
        {"name": "财务", "approver": "employees", "employee_ids": [team["admin"].employee_id]}]}).status_code == 200
    customer = make_customer(team["rep1"], "会签测试有限公司")
    db.session.commit()
    c = _contract(client, h["rep1"], customer.id, "1000.00")
    ref = f"contract-{c['id']}"
    assert ref in _inbox(client, h["boss"]) and ref in _inbox(client, h["peer"])
    assert client.post(f"/api/v1/approvals/{ref}/approve", headers=h["boss"], json={}).get_json()["status"] == "pending"
    assert ref not in _inbox(client, h["boss"]) and ref in _inbox(client, h["peer"])  # the other signature is missing
    assert client.post(f"/api/v1/approvals/{ref}/approve", headers=h["peer"], json={}).get_json()["status"] == "pending"
    r = client.post(f"/api/v1/approvals/{ref}/reject", headers=h["admin"], json={"comment": "付款条件不符合财务制度"})
    assert r.get_json()["status"] == "rejected"
    contract = db.session.get(Contract, c["id"])
    assert contract.status == "rejected" and "驳回意见：付款条件不符合财务制度" in contract.note
    assert _notices("contract_rejected", team["rep1"].employee_id)


def test_a_quote_with_a_deep_discount_waits_for_approval_before_the_customer_sees_it(team, h, client):
    from crm_core.sales.documents import customer_quote

    assert client.put("/api/v1/approval-flows/quote", headers=h["admin"], json={"steps": [
        {"name": "折扣审批", "approver": "manager", "when": [{"field": "discount_pct", "op": "gt", "value": "10"}]}]}).status_code == 200
    p = client.post("/api/v1/products", headers=h["admin"], json={"code": "AQ1", "name": "空气净化器", "list_price": "1000.00",
                                                                  "unit_cost": "600.00"}).get_json()
    customer = make_customer(team["rep1"], "报价审批测试有限公司")
    db.session.commit()

    def quote(discount):
        r = client.post("/api/v1/quotes", headers=h["rep1"], json={"customer_id": customer.id, "lines": [
            {"product_id": p["id"], "quantity": 2, "discount_pct": discount}]})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    modest, deep = quote("5"), quote("15")
    r = client.post(f"/api/v1/quotes/{deep}/accept", headers=h["rep1"], json={"by": "客户电话"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "approval_required"  # not around the approval
    assert client.post(f"/api/v1/quotes/{modest}/send", headers=h["rep1"], json={}).get_json()["status"] == "sent"
    r = client.post(f"/api/v1/quotes/{deep}/send", headers=h["rep1"], json={})
    assert r.status_code == 200 and r.get_json()["status"] == "approving" and r.get_json()["status_label"] == "审批中"
    with pytest.raises(Exception):
        customer_quote(customer.id, deep)  # not the customer's to read yet
    item = _inbox(client, h["manager"])[f"quote-{deep}"]
    assert item["kind_label"] == "报价单" and "1921.00 元" in item["detail"]  # 2 × 1000 − 15 %, 13 % tax
    # rejected: back to the owner as a draft with the reason
    client.post(f"/api/v1/approvals/quote-{deep}/reject", headers=h["manager"], json={"comment": "折扣最多 12%"})
    q = db.session.get(Quote, deep)
    assert q.status == "draft" and "审批意见：折扣最多 12%" in q.note and _notices("quote_rejected", team["rep1"].employee_id)
    # sent again, approved: the owner sends it
    assert client.post(f"/api/v1/quotes/{deep}/send", headers=h["rep1"], json={}).get_json()["status"] == "approving"
    assert client.post(f"/api/v1/approvals/quote-{deep}/approve", headers=h["manager"], json={}).get_json()["status"] == "approved"
    db.session.expire_all()
    assert db.session.get(Quote, deep).status == "approved" and _notices("quote_approved", team["rep1"].employee_id)
    assert client.post(f"/api/v1/quotes/{deep}/send", headers=h["rep1"], json={}).get_json()["status"] == "sent"
    assert customer_quote(customer.id, deep).id == deep
    history = client.get(f"/api/v1/approvals/history?type=quote&id={deep}", headers=h["rep1"]).get_json()["items"]
    assert [r["status"] for r in history] == ["rejected", "approved"]


def test_a_delegate_decides_while_the_approver_is_away_and_the_record_says_so(team, h, client):
    today = local_today()
    r = client.post("/api/v1/approval-delegations", headers=h["manager"], json={
        "delegate_id": team["peer"].employee_id, "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=3)).isoformat(),
        "note": "年假"})
    assert r.status_code == 201, r.get_json()
    assert _notices("approval_delegated", team["peer"].employee_id)
    again = client.post("/api/v1/approval-delegations", headers=h["manager"], json={
        "delegate_id": team["boss"].employee_id, "ends_on": (today + timedelta(days=1)).isoformat()})
    assert again.status_code == 409  # one delegation at a time
    customer = make_customer(team["rep1"], "委托测试有限公司")
    db.session.commit()
    c = _contract(client, h["rep1"], customer.id, "8000.00")
    ref = f"contract-{c['id']}"
    assert _notices("contract_submitted", team["peer"].employee_id)  # the delegate is told as well
    item = _inbox(client, h["peer"])[ref]
    assert item["on_behalf_of"] == "员工manager"
    from flask import g

    from tests.conftest import console_login

    peer, _ = console_login(client.application, team["peer"].username, PASSWORD)
    g.pop("csrf_token", None)
    page = peer.get(f"/console/contracts/{c['id']}")  # outside the delegate's scope, but theirs to decide
    assert page.status_code == 200 and 'id="approve"' in page.get_data(as_text=True)
    assert client.post(f"/api/v1/approvals/{ref}/approve", headers=h["peer"], json={"comment": "代审同意"}).get_json()["status"] == "approved"
    task = client.get(f"/api/v1/approvals/history?type=contract&id={c['id']}", headers=h["manager"]).get_json()["items"][0]["tasks"][0]
    assert task["approver"] == "员工manager" and task["decided_by"] == "员工peer"
    # revoked: the next one is the manager's alone
    client.delete(f"/api/v1/approval-delegations/{r.get_json()['id']}", headers=h["manager"])
    c2 = _contract(client, h["rep1"], customer.id, "9000.00")
    assert f"contract-{c2['id']}" not in _inbox(client, h["peer"])
    assert client.post(f"/api/v1/approvals/contract-{c2['id']}/approve", headers=h["peer"], json={}).status_code == 403


def test_pending_approvals_are_reminded_after_the_set_hours_and_the_submitter_may_remind_once_an_hour(team, h, client):
    from crm_core.org.approvals_engine import remind_overdue_approvals

    assert client.put("/api/v1/settings/approval-reminders", headers=h["admin"], json={"remind_hours": 4}).status_code == 200
    customer = make_customer(team["rep1"], "催办测试有限公司")
    db.session.commit()
    c = _contract(client, h["rep1"], customer.id, "3000.00")
    assert remind_overdue_approvals() == 0  # not waiting long enough
    task = db.session.scalars(select(ApprovalTask).join(ApprovalRequest).where(ApprovalRequest.doc_id == c["id"])).one()
    task.activated_at = utcnow() - timedelta(hours=5)
    db.session.commit()
    assert remind_overdue_approvals() == 1
    assert remind_overdue_approvals() == 0  # once per period
    reminded = [m for m in _notices("contract_submitted", team["manager"].employee_id) if m.payload["text"].startswith("【催办】")]
    assert len(reminded) == 1 and "已等待您审批 5 小时" in reminded[0].payload["text"]
    assert client.post(f"/api/v1/approvals/contract-{c['id']}/remind", headers=h["rep2"], json={}).status_code == 403
    r = client.post(f"/api/v1/approvals/contract-{c['id']}/remind", headers=h["rep1"], json={})
    assert r.status_code == 409 and "一小时内" in r.get_json()["error"]["message"]  # the job just reminded
    # the general manager has no superior: anyone who may approve contracts decides, so there is nobody to remind
    own = make_customer(team["boss"], "总经理的客户")
    db.session.commit()
    top = _contract(client, h["boss"], own.id, "500.00")
    r = client.post(f"/api/v1/approvals/contract-{top['id']}/remind", headers=h["boss"], json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "nobody_to_remind"


def test_flows_refuse_what_cannot_work_with_a_clear_message(team, h, client):
    def put(doc_type, steps, who="admin"):
        return client.put(f"/api/v1/approval-flows/{doc_type}", headers=h[who], json={"steps": steps})

    assert put("contract", [{"approver": "manager"}], who="manager").status_code == 403
    r = put("contract", [{"approver": "employees", "employee_ids": [999999]}])
    assert r.status_code == 422 and "审批人不存在" in r.get_json()["error"]["message"]
    r = put("contract", [{"approver": "role", "role": "no_such_role"}])
    assert r.status_code == 422 and "角色不存在" in r.get_json()["error"]["message"]
    r = put("contract", [{"approver": "manager", "when": [{"field": "amount", "op": "gt", "value": "很多"}]}])
    assert r.status_code == 422 and "不是数字" in r.get_json()["error"]["message"]
    r = put("stage", [{"approver": "permission"}])
    assert r.status_code == 422 and "请指定审批人" in r.get_json()["error"]["message"]
    assert put("invoice", [{"approver": "manager"}]).status_code == 404
    assert put("contract", [{"approver": "manager"}] * 11).status_code == 422
    # a stage whose flow names nobody usable is refused when asked, not left waiting for nobody
    assert put("stage", [{"approver": "manager", "levels": 5}]).status_code == 200
    flows = client.get("/api/v1/approval-flows", headers=h["admin"]).get_json()
    assert flows["flows"]["stage"]["steps"] == [{"name": "第1步审批", "approver": "manager", "mode": "any", "levels": 5}]
    assert put("stage", None).get_json()["flows"]["stage"]["default"] is True


def test_two_approvers_racing_on_one_contract_approve_it_once(pg_url):
    """On PostgreSQL: the two signatures of a 会签 step arrive at once, and two administrators approve the last step
    at once — the contract takes effect exactly once, the step completes once, and the loser gets 409 (never a 500)."""
    from tests.conftest import _create_schema, _make_app, token_for

    app = _make_app(pg_url)
    with app.app_context():
        _create_schema()
        users = make_team()
        customer = make_customer(users["rep1"], "并发审批测试有限公司")
        db.session.commit()
        client = app.test_client()
        tokens = {k: token_for(client, users[k].username, PASSWORD) for k in ("rep1", "boss", "peer", "admin")}
        assert client.put("/api/v1/approval-flows/contract", headers=tokens["admin"], json={"steps": [
            {"name": "会签", "approver": "employees", "employee_ids": [users["boss"].employee_id, users["peer"].employee_id],
             "mode": "all"}]}).status_code == 200
        contracts = [_contract(client, tokens["rep1"], customer.id, "5000.00")["id"] for _ in range(3)]
        db.session.remove()

    def race(who_and_ref):
        barrier, answers = threading.Barrier(len(who_and_ref)), []

        def go(who, ref):
            from sqlalchemy import text

            with app.app_context():
                db.session.execute(text("SELECT 1"))
                barrier.wait(timeout=30)
                r = app.test_client().post(f"/api/v1/approvals/{ref}/approve", headers=tokens[who], json={})
                answers.append((r.status_code, (r.get_json() or {}).get("status")))
                db.session.remove()

        threads = [threading.Thread(target=go, args=wr) for wr in who_and_ref]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return sorted(answers, key=str)

    for cid in contracts[:2]:  # both signatures at once: one waits for the other, the second completes it
        answers = race([("boss", f"contract-{cid}"), ("peer", f"contract-{cid}")])
        assert [a[0] for a in answers] == [200, 200] and sorted(a[1] for a in answers) == ["approved", "pending"], answers
    # an administrator decides the whole step (管理员代审); two of them at once: one wins
    answers = race([("admin", f"contract-{contracts[2]}"), ("admin", f"contract-{contracts[2]}")])
    assert sorted(a[0] for a in answers) == [200, 409], answers
    with app.app_context():
        assert {c.status for c in db.session.scalars(select(Contract))} == {"approved"}
        assert db.session.scalar(select(func.count(ApprovalRequest.id)).where(ApprovalRequest.status == "approved")) == 3
        db.session.remove()
        db.engine.dispose()
