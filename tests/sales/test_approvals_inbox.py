"""One approvals inbox (SPEC: GET /api/v1/approvals?mine=1, POST /api/v1/approvals/{id}/approve|reject): a stage, a
contract and a work plan wait for the sales manager; each is approved or rejected through its own rules."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_core.clock import local_today
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.sales.models import Contract, Opportunity, SalesStage
from tests.conftest import console_login, token_for


@pytest.fixture
def waiting(app, client):
    """张伟 asks for a stage, registers a contract and submits a plan to 孙立: the three headers and the refs' records."""
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    zhang, manager = token_for(client, "sales.zhang", "demo123456"), token_for(client, "sales.manager", "demo123456")
    opp = db.session.scalars(select(Opportunity).where(Opportunity.name == "酒店新风系统")).one()
    talks = db.session.scalars(select(SalesStage).where(SalesStage.method_id == opp.method_id, SalesStage.name == "商务谈判")).one()
    stage = client.post(f"/api/v1/opportunities/{opp.id}/approvals", headers=zhang, json={"stage_id": talks.id}).get_json()
    due = (local_today() + timedelta(days=30)).isoformat()
    contract = client.post("/api/v1/contracts", headers=zhang, json={
        "customer_id": opp.customer_id, "opportunity_id": opp.id, "title": "新风系统采购合同", "amount": "420000.00",
        "payment_plan": [{"due_date": due, "amount": "420000.00"}]}).get_json()
    assert contract.get("status") == "pending", contract
    day = local_today().isoformat()
    me = client.get("/api/v1/me", headers=manager).get_json()
    plan = client.post("/api/v1/work-plans", headers=zhang, json={"period": "daily", "start_date": day, "end_date": day,
                                                                  "title": "今日计划", "reviewer_id": me["employee_id"]}).get_json()
    client.post(f"/api/v1/work-plans/{plan['id']}/submit", headers=zhang, json={"summary": "酒店合同已提交"})
    return {"zhang": zhang, "manager": manager, "stage": stage["id"], "contract": contract["id"], "plan": plan["id"],
            "opp": opp}


def test_the_managers_inbox_holds_a_stage_a_contract_and_a_plan_and_each_is_decided_by_its_rules(waiting, client):
    h = waiting["manager"]
    inbox = client.get("/api/v1/approvals?mine=1", headers=h).get_json()
    refs = {i["id"]: i for i in inbox["items"]}
    stage, contract, plan = f"stage-{waiting['stage']}", f"contract-{waiting['contract']}", f"plan-{waiting['plan']}"
    assert {stage, contract, plan} <= set(refs) and inbox["total"] == len(inbox["items"])
    assert refs[stage]["kind_label"] == "商机阶段" and "申请进入「商务谈判」" in refs[stage]["detail"]
    assert refs[contract]["requested_by"] == "张伟" and "420000.00 元" in refs[contract]["detail"]
    assert refs[plan]["detail"] == "酒店合同已提交"
    # the salesperson has nothing to decide, and may not decide these
    assert client.get("/api/v1/approvals", headers=waiting["zhang"]).get_json()["total"] == 0
    assert client.post(f"/api/v1/approvals/{contract}/approve", headers=waiting["zhang"], json={}).status_code == 403

    assert client.post(f"/api/v1/approvals/{stage}/approve", headers=h, json={"comment": "同意"}).get_json()["status"] == "approved"
    r = client.post(f"/api/v1/approvals/{contract}/reject", headers=h, json={"comment": "付款条件需改为分三期"})
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    c = db.session.get(Contract, waiting["contract"])
    assert c.status == "rejected" and "驳回意见：付款条件需改为分三期" in c.note
    assert client.post(f"/api/v1/approvals/{contract}/approve", headers=h, json={}).status_code == 409  # decided once
    r = client.post(f"/api/v1/approvals/{plan}/reject", headers=h, json={})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["comment"]
    r = client.post(f"/api/v1/approvals/{plan}/reject", headers=h, json={"comment": "请补充明日安排"})
    assert r.get_json()["status"] == "returned"
    plans = client.get("/api/v1/work-plans", headers=waiting["zhang"]).get_json()["items"]
    assert next(p for p in plans if p["id"] == waiting["plan"])["review_status"] == "draft"  # back to 张伟 to correct
    told = [m.payload["kind"] for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))]
    assert "contract_rejected" in told and "plan_returned" in told
    assert client.get("/api/v1/approvals", headers=h).get_json()["total"] == 0
    assert client.post("/api/v1/approvals/bogus-1/approve", headers=h, json={}).status_code == 404
    # the manager was told of the contract when it was submitted; the notice opens it in 待我审批 on the phone
    from wxapp.official_account.channels import staff_link

    submitted = [m for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
                 if m.payload.get("kind") == "contract_submitted"]
    assert len(submitted) == 1 and "待您审批" in submitted[0].payload["text"]
    with client.application.test_request_context():
        assert staff_link(submitted[0].payload).endswith(f"/h5/staff/approvals#approval-contract-{waiting['contract']}")
    assert client.post("/api/v1/approvals/contract-x/approve", headers=h, json={}).status_code == 404


def test_the_console_inbox_approves_and_rejects_with_a_comment(waiting, app):
    from flask import g

    c, _ = console_login(app, "sales.manager", "demo123456")
    g.pop("csrf_token", None)  # the test's app context outlives requests (Flask-WTF caches the token in g)
    page = c.get("/console/approvals").get_data(as_text=True)
    assert "待我审批" in page and f'id="approval-stage-{waiting["stage"]}"' in page and "新风系统采购合同" in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post(f"/console/approvals/contract-{waiting['contract']}", data={"csrf_token": token, "decision": "approve",
                                                                           "comment": "同意"}, follow_redirects=True)
    assert "已通过" in r.get_data(as_text=True)
    assert db.session.get(Contract, waiting["contract"]).status == "approved"
    r = c.post(f"/console/approvals/plan-{waiting['plan']}", data={"csrf_token": token, "decision": "reject", "comment": ""},
               follow_redirects=True)
    assert "退回计划请写明原因" in r.get_data(as_text=True)  # the reason is asked, nothing is lost
    page = c.get("/console/approvals").get_data(as_text=True)
    assert f'id="approval-plan-{waiting["plan"]}"' in page and f'id="approval-contract-{waiting["contract"]}"' not in page


def test_the_managers_phone_lists_the_contract_too_and_decides_it(waiting, app):
    from tests.service.test_staff_workbench import staff_phone

    phone = staff_phone(app, "oWbInbox0001", "sales.manager")
    home = phone.get("/h5/staff/").get_data(as_text=True)
    assert '<span class="weui-badge">3</span>' in home.split('id="entry-approvals"')[1][:200]  # stage, contract, plan
    page = phone.get("/h5/staff/approvals").get_data(as_text=True)
    assert f'id="approval-contract-{waiting["contract"]}"' in page and "新风系统采购合同" in page
    r = phone.post(f"/h5/api/staff/approvals/contract-{waiting['contract']}/decide", json={"approve": True, "comment": "同意"})
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    assert db.session.get(Contract, waiting["contract"]).status == "approved"
    assert f'id="approval-contract-{waiting["contract"]}"' not in phone.get("/h5/staff/approvals").get_data(as_text=True)


def test_the_records_show_their_approval_history_and_the_contract_page_rejects_with_a_reason(waiting, client, app):
    """On the record (#16 item 5): the opportunity's page lists its stage approvals (who asked, who decided, the
    comment); the contract page rejects with a required reason and then shows who rejected it and why; a stage that
    needs approval offers 申请审批 on the console and then says 审批中."""
    import re

    from flask import g

    h = waiting["manager"]
    client.post(f"/api/v1/approvals/stage-{waiting['stage']}/approve", headers=h, json={"comment": "同意进入谈判"})
    manager, _ = console_login(app, "sales.manager", "demo123456")

    def page(c, path):
        g.pop("csrf_token", None)
        html = c.get(path).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        return html, token.group(1) if token else None

    html, _ = page(manager, f"/console/opportunities/{waiting['opp'].id}")
    history = html.split('id="approval-history"')[1].split("</table>")[0]
    assert "商务谈判" in history and "张伟" in history and "孙立" in history and "通过" in history and "同意进入谈判" in history

    html, token = page(manager, f"/console/contracts/{waiting['contract']}")
    assert 'id="reject"' in html and "提交合同，等待审批" in html
    r = manager.post(f"/console/contracts/{waiting['contract']}/reject", data={"csrf_token": token, "comment": " "},
                     follow_redirects=True)
    assert "驳回时请填写原因" in r.get_data(as_text=True)
    assert db.session.get(Contract, waiting["contract"]).status == "pending"
    _, token = page(manager, f"/console/contracts/{waiting['contract']}")
    r = manager.post(f"/console/contracts/{waiting['contract']}/reject", data={"csrf_token": token, "comment": "付款分三期"},
                     follow_redirects=True)
    assert "合同已驳回" in r.get_data(as_text=True)
    html, _ = page(manager, f"/console/contracts/{waiting['contract']}")
    history = html.split('id="approval-history"')[1].split("</ul>")[0]
    assert "孙立" in history and "驳回" in history and "付款分三期" in history
    rejected = [m for m in db.session.scalars(select(OutboxMessage)) if m.payload.get("kind") == "contract_rejected"]
    assert rejected and "付款分三期" in rejected[0].payload["text"]  # the owner is told why

    # 张伟 asks for 商务谈判's approval of another opportunity from the console, then sees it waiting
    other = db.session.scalars(select(Opportunity).where(Opportunity.name == "茶厂车间净水改造")).one()
    talks = db.session.scalars(select(SalesStage).where(SalesStage.method_id == other.method_id,
                                                        SalesStage.name == "商务谈判")).one()
    zhang, _ = console_login(app, "sales.zhang", "demo123456")
    html, token = page(zhang, f"/console/opportunities/{other.id}")
    assert html.count("request-approval") == 1 and 'id="approval-history"' not in html
    r = zhang.post(f"/console/opportunities/{other.id}/approvals", data={"csrf_token": token, "stage_id": talks.id},
                   follow_redirects=True)
    after = r.get_data(as_text=True)
    assert "已提交审批" in after and "审批中" in after and "request-approval" not in after
    assert "待审批" in after.split('id="approval-history"')[1]


def test_the_managers_inbox_exports_what_waits(waiting, client, app):
    """待我审批 exports to Excel: the stage, the contract and the plan waiting for 孙立, with who asked and when."""
    import io
    import re

    from flask import g
    from openpyxl import load_workbook

    manager, _ = console_login(app, "sales.manager", "demo123456")
    g.pop("csrf_token", None)
    html = manager.get("/console/approvals").get_data(as_text=True)
    link = re.search(r'id="export-approvals">.*?<a href="([^"]+)">Excel</a>', html, re.S).group(1).replace("&amp;", "&")
    r = manager.get(link)
    assert r.status_code == 200
    rows = list(load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert rows[0] == ("类型", "事项", "说明", "申请人", "申请时间")
    assert {x[0] for x in rows[1:]} >= {"商机阶段", "合同"} and all(x[3] == "张伟" for x in rows[1:])
