"""List exports (SPEC: /api/v1/{customers,...}/export?format=xlsx|csv; #16 "every list lacks an export"):
the list's own filters, the data scope, the export permission, Chinese headers and labels, names
for ids, formulas kept as text, and an audit entry."""
from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from crm_core.audit import AuditEntry
from crm_core.db import db
from tests.factories import make_customer, make_team


@pytest.fixture
def team(app):
    users = make_team()
    make_customer(users["rep1"], "杭州导出一号有限公司", phone="057188880001", tags=["重点"])
    make_customer(users["rep1"], "=HYPERLINK(\"http://evil\")", phone="057188880002")
    make_customer(users["rep3"], "别组的客户", phone="057188880003")
    db.session.commit()
    return users


def _sheet(resp):
    wb = load_workbook(io.BytesIO(resp.data), read_only=True)
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


def test_a_manager_exports_the_team_s_customers_as_excel(team, client, auth_headers):
    mgr = auth_headers(team["manager"])
    r = client.get("/api/v1/customers/export", headers=mgr)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''%E5%AE%A2%E6%88%B7_" in r.headers["Content-Disposition"]  # 客户_<date>.xlsx
    rows = _sheet(r)
    assert rows[0][:3] == ["客户名称", "电话", "地址"] and "负责人" in rows[0]
    names = {row[0]: row for row in rows[1:]}
    assert "别组的客户" not in names  # another team: outside the manager's scope
    first = names["杭州导出一号有限公司"]
    assert first[rows[0].index("负责人")] == "员工rep1" and first[rows[0].index("标签")] == "重点"
    assert first[rows[0].index("交易客户")] == "否"
    assert "'=HYPERLINK(\"http://evil\")" in names  # a formula stays text
    assert r.headers["X-Total-Rows"] == "2"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert (entry.object_type, entry.changes["rows"], entry.actor_user_id) == ("customer", 2, team["manager"].id)

    only = _sheet(client.get("/api/v1/customers/export?q=导出一号", headers=mgr))
    assert [row[0] for row in only[1:]] == ["杭州导出一号有限公司"]  # the list's own filter


def test_csv_and_labels_and_who_may_export(team, client, auth_headers):
    mgr, rep1 = auth_headers(team["manager"]), auth_headers(team["rep1"])
    client.post("/api/v1/leads", json={"name": "王先生", "company": "宁波导出线索", "phone": "13700001111"}, headers=mgr)
    r = client.get("/api/v1/leads/export?format=csv", headers=mgr)
    text = r.get_data(as_text=True)
    assert r.mimetype == "text/csv" and text.startswith("\ufeff姓名,公司,电话")
    assert "王先生,宁波导出线索,13700001111,,manual,新线索,员工manager" in text
    denied = client.get("/api/v1/customers/export", headers=rep1)
    assert denied.status_code == 403 and "导出" in denied.get_json()["error"]["message"]
    bad = client.get("/api/v1/customers/export?format=pdf", headers=mgr)
    assert bad.status_code == 422 and "format" in bad.get_json()["error"]["fields"]
    # a formula in a customer's name stays text where it is shown for an id too; control characters are dropped
    from crm_core.customers.models import Contact, Customer

    evil = db.session.scalars(select(Customer).where(Customer.name.like("=HYPERLINK%"))).one()
    db.session.add(Contact(org_id=evil.org_id, customer_id=evil.id, owner_id=evil.owner_id, department_id=evil.department_id,
                           name="赵\x0b经理", interests=[], is_primary=True))
    db.session.commit()
    contacts = _sheet(client.get("/api/v1/contacts/export", headers=mgr))
    row = next(r for r in contacts[1:] if r[0] == "赵经理")
    assert row[1] == "'=HYPERLINK(\"http://evil\")"
    for kind in ("contacts", "opportunities", "activities", "checkins"):
        assert client.get(f"/api/v1/{kind}/export", headers=mgr).status_code == 200, kind


def test_the_dispatcher_exports_the_feedback_queue(team, client, auth_headers):
    from crm_core.org.organization import create_user, upsert_employee
    from tests.factories import PASSWORD

    org = team["rep1"].organization
    disp = create_user(org, f"{org.code}.disp", PASSWORD, ["dispatcher"], upsert_employee(org, "DISP", "调度员"))
    db.session.commit()
    h = auth_headers(disp)
    customer_id = client.get("/api/v1/customers?q=导出一号", headers=h).get_json()["items"][0]["id"]
    t = client.post("/api/v1/tickets", headers=h, json={"customer_id": customer_id, "kind": "repair", "description": "净水器漏水",
                                                        "product_note": "商用净水器"})
    assert t.status_code == 201, t.get_json()
    rows = _sheet(client.get("/api/v1/tickets/export?status=open", headers=h))
    assert rows[0][:3] == ["工单号", "类型", "状态"]
    assert rows[1][1:5] == ["报修", "待派工", "杭州导出一号有限公司", "净水器漏水"]
    assert client.get("/api/v1/tickets/export", headers=auth_headers(team["manager"])).status_code == 403
