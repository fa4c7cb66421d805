"""Setting up a company without the API (#16 item 1, SPEC: /api/v1/departments, /positions,
/employees): the tree, reporting lines, hiring, moving, leaving with a hand-over, users, and the
guards — the last administrator, a position with people, a department with people."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import token_for


@pytest.fixture
def admin(app, client):
    from crm_core.org.models import Organization
    from crm_core.org.organization import create_user, ensure_builtin_roles

    ensure_builtin_roles()
    org = Organization(code="acme", name="杭州测试有限公司")
    db.session.add(org)
    db.session.flush()
    create_user(org, "boss", "boss-pass-1", ["admin"])
    db.session.commit()
    return token_for(client, "boss", "boss-pass-1")


def test_a_company_builds_its_organisation_and_a_leaver_hands_over(admin, client):
    h = admin
    r = client.put("/api/v1/org/functions", headers=h, json={"marketing": False})
    assert r.get_json() == {"sales": True, "marketing": False, "service": True}
    assert client.put("/api/v1/org/functions", headers=h, json={"sales": False, "service": False}).status_code == 422

    hq = client.post("/api/v1/departments", headers=h, json={"name": "总部"}).get_json()
    sales = client.post("/api/v1/departments", headers=h, json={"name": "销售部", "parent_id": hq["id"],
                                                                "business_function": "sales"}).get_json()
    assert sales["parent_id"] == hq["id"] and sales["business_function"] == "sales"
    cyc = client.patch(f"/api/v1/departments/{hq['id']}", headers=h, json={"parent_id": sales["id"]})
    assert cyc.status_code == 422 and "下级" in cyc.get_json()["error"]["message"]

    mgr = client.post("/api/v1/positions", headers=h, json={"name": "销售经理", "department_id": sales["id"]}).get_json()
    rep = client.post("/api/v1/positions", headers=h, json={"name": "销售代表", "department_id": sales["id"],
                                                            "reports_to_id": mgr["id"]}).get_json()
    loop = client.patch(f"/api/v1/positions/{mgr['id']}", headers=h, json={"reports_to_id": rep["id"]})
    assert loop.status_code == 422 and "循环" in loop.get_json()["error"]["message"]

    li = client.post("/api/v1/employees", headers=h, json={"name": "李经理", "position_ids": [mgr["id"]]}).get_json()
    wang = client.post("/api/v1/employees", headers=h, json={"name": "王销售", "phone": "13900000001",
                                                             "position_ids": [rep["id"]]}).get_json()
    assert wang["department_id"] == sales["id"] and wang["code"].startswith("E")
    r = client.post("/api/v1/users", headers=h, json={"username": "wang", "password": "wang-pass-1", "roles": ["salesperson"],
                                                      "employee_id": wang["id"]})
    assert r.status_code == 201
    wang_user = r.get_json()["id"]

    # guards
    busy = client.delete(f"/api/v1/positions/{rep['id']}", headers=h)
    assert busy.status_code == 409 and "员工" in busy.get_json()["error"]["message"]
    off = client.patch(f"/api/v1/departments/{sales['id']}", headers=h, json={"active": False})
    assert off.status_code == 409 and "在职员工" in off.get_json()["error"]["message"]

    # the salesperson works, then leaves: their customer goes to the manager
    w = token_for(client, "wang", "wang-pass-1")
    cust = client.post("/api/v1/customers", headers=w, json={"name": "杭州王记茶庄", "phone": "0571-88880001"})
    assert cust.status_code == 201, cust.get_json()
    left = client.post(f"/api/v1/employees/{wang['id']}/leave", headers=h, json={"handover_to": li["id"]})
    assert left.status_code == 200 and left.get_json()["moved"].get("customer") == 1
    assert client.get("/api/v1/me", headers=w).status_code == 401  # signed out
    assert client.post("/api/v1/auth/token", json={"username": "wang", "password": "wang-pass-1"}).status_code == 401
    got = client.get(f"/api/v1/customers/{cust.get_json()['id']}", headers=h).get_json()
    assert got["owner_id"] == li["id"]
    assert client.get(f"/api/v1/employees/{wang['id']}", headers=h).get_json()["active"] is False
    assert client.delete(f"/api/v1/positions/{rep['id']}", headers=h).status_code == 204  # free now
    r = client.put(f"/api/v1/users/{wang_user}/password", headers=h, json={"password": "short"})
    assert r.status_code == 422


def test_the_last_administrator_stays(admin, client):
    me = client.get("/api/v1/me", headers=admin).get_json()
    r = client.patch(f"/api/v1/users/{me['user_id']}", headers=admin, json={"active": False})
    assert r.status_code == 409 and "最后一位" in r.get_json()["error"]["message"]
    r = client.patch(f"/api/v1/users/{me['user_id']}", headers=admin, json={"roles": ["salesperson"]})
    assert r.status_code == 409
    client.post("/api/v1/users", headers=admin, json={"username": "second", "password": "second-pass", "roles": ["admin"]})
    assert client.patch(f"/api/v1/users/{me['user_id']}", headers=admin, json={"roles": ["dispatcher"]}).status_code == 200


def test_only_administrators_set_up_the_organisation(admin, client):
    client.post("/api/v1/users", headers=admin, json={"username": "rep1", "password": "rep1-pass-1", "roles": ["salesperson"]})
    rep = token_for(client, "rep1", "rep1-pass-1")
    assert client.post("/api/v1/departments", headers=rep, json={"name": "x"}).status_code == 403
    assert client.post("/api/v1/employees", headers=rep, json={"name": "x", "position_ids": [1]}).status_code == 403


def test_an_employees_wecom_account_is_set_checked_and_one_per_person(admin, client):
    h = admin
    dept = client.post("/api/v1/departments", headers=h, json={"name": "服务部"}).get_json()
    pos = client.post("/api/v1/positions", headers=h, json={"name": "工程师", "department_id": dept["id"]}).get_json()
    a = client.post("/api/v1/employees", headers=h, json={"name": "郑强", "position_ids": [pos["id"]], "wecom_userid": "ZhengQiang"})
    assert a.status_code == 201 and a.get_json()["wecom_userid"] == "ZhengQiang"
    dup = client.post("/api/v1/employees", headers=h, json={"name": "王五", "position_ids": [pos["id"]], "wecom_userid": "ZhengQiang"})
    assert dup.status_code == 409 and "郑强" in dup.get_json()["error"]["message"]
    bad = client.post("/api/v1/employees", headers=h, json={"name": "王五", "position_ids": [pos["id"]], "wecom_userid": "郑 强"})
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"]["wecom_userid"]
    b = client.post("/api/v1/employees", headers=h, json={"name": "王五", "position_ids": [pos["id"]]}).get_json()
    assert client.patch(f"/api/v1/employees/{b['id']}", headers=h, json={"wecom_userid": "WangWu"}).get_json()["wecom_userid"] == "WangWu"
    assert client.patch(f"/api/v1/employees/{b['id']}", headers=h, json={"wecom_userid": ""}).get_json()["wecom_userid"] is None
