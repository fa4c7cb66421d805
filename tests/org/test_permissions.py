"""Data scopes and function permissions: the one filter every list and lookup goes through."""
from __future__ import annotations

import pytest

from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import NoEmployeeLinked, PermissionDenied
from crm_core.org.models import RoleDataScope
from crm_core.org.organization import create_user, find_role, share_record, upsert_employee
from crm_core.org.permissions import load_actor, scoped_select
from tests.factories import make_customer, make_org, make_team


def visible_names(user):
    return {c.name for c in db.session.scalars(scoped_select(load_actor(user), Customer))}


@pytest.fixture
def team(any_app):
    users = make_team()
    for key in ("boss", "manager", "peer", "rep1", "rep2", "rep3"):
        make_customer(users[key], name=f"{key}的客户")
    db.session.commit()
    return users


def test_salesperson_sees_only_own_records(team):
    assert visible_names(team["rep1"]) == {"rep1的客户"}


def test_manager_sees_whole_subtree_but_not_peers(team):
    assert visible_names(team["manager"]) == {"manager的客户", "rep1的客户", "rep2的客户"}
    assert visible_names(team["peer"]) == {"peer的客户", "rep3的客户"}


def test_top_of_hierarchy_sees_every_level_below(team):
    assert visible_names(team["boss"]) == {f"{k}的客户" for k in ("boss", "manager", "peer", "rep1", "rep2", "rep3")}


def test_user_without_employee_sees_nothing_and_is_told_why(team, client, auth_headers):
    with pytest.raises(NoEmployeeLinked):
        visible_names(team["nobody"])
    resp = client.get("/api/v1/customers", headers=auth_headers(team["nobody"]))
    assert resp.status_code == 403
    body = resp.get_json()["error"]
    assert body["code"] == "no_employee_linked"
    assert "关联职员" in body["message"]
    me = client.get("/api/v1/me", headers=auth_headers(team["nobody"])).get_json()
    assert me["employee_id"] is None and me["warnings"]


def test_lookup_outside_scope_is_404_not_403(team, client, auth_headers):
    other = db.session.scalars(db.select(Customer).where(Customer.name == "rep3的客户")).one()
    resp = client.get(f"/api/v1/customers/{other.id}", headers=auth_headers(team["rep1"]))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/customers/{other.id}", headers=auth_headers(team["peer"])).status_code == 200


def test_shared_record_becomes_visible(team):
    rep3_customer = db.session.scalars(db.select(Customer).where(Customer.name == "rep3的客户")).one()
    share_record(load_actor(team["peer"]), "customer", rep3_customer.id, team["rep1"].employee_id)
    db.session.commit()
    assert visible_names(team["rep1"]) == {"rep1的客户", "rep3的客户"}


def test_department_and_listed_scopes(team):
    org_id = team["rep1"].org_id
    from crm_core.org.models import Role

    dept_role = Role(org_id=org_id, code="dept_viewer", name="部门查看")
    db.session.add(dept_role)
    db.session.flush()
    from crm_core.org.models import RolePermission

    dept_role.permissions.append(RolePermission(object_type="customer", action="view"))
    dept_role.data_scopes.append(RoleDataScope(object_type="customer", scope="department", department_ids=[], employee_ids=[]))
    team["rep1"].roles = [dept_role]
    db.session.commit()
    # rep1 sits in 华东组: sees everything owned in that department (manager, rep1, rep2)
    assert visible_names(team["rep1"]) == {"manager的客户", "rep1的客户", "rep2的客户"}

    dept_role.data_scopes[0].scope = "listed"
    dept_role.data_scopes[0].employee_ids = [team["rep3"].employee_id]
    db.session.commit()
    assert visible_names(team["rep1"]) == {"rep1的客户", "rep3的客户"}


def test_records_of_other_organisations_never_leak(team):
    other_org = make_org("other", "别的公司")
    emp = upsert_employee(other_org, "X1", "外人")
    outsider = create_user(other_org, "other.admin", "secret-pass-1", ["admin"], emp)
    db.session.add(Customer(org_id=other_org.id, owner_id=emp.id, name="外部客户"))
    db.session.commit()
    assert visible_names(outsider) == {"外部客户"}
    assert "外部客户" not in visible_names(team["admin"])


def test_function_permission_required(team, client, auth_headers):
    # a salesperson has no role-management right
    resp = client.get("/api/v1/roles", headers=auth_headers(team["rep1"]))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "permission_denied"
    assert "角色" in resp.get_json()["error"]["message"]
    assert client.get("/api/v1/roles", headers=auth_headers(team["admin"])).status_code == 200


def test_disabled_business_function_blocks_its_objects(any_app, client, auth_headers):
    org = make_org("nosales", "只做服务", functions=("service",))
    emp = upsert_employee(org, "A", "管理员")
    admin = create_user(org, "nosales.admin", "secret-pass-1", ["admin"], emp)
    db.session.commit()
    resp = client.get("/api/v1/customers", headers=auth_headers(admin))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "function_disabled"
    assert "销售职能" in resp.get_json()["error"]["message"]
    actor = load_actor(admin)
    with pytest.raises(PermissionDenied):
        actor.require("customer", "view")


def test_role_grants_api_changes_what_a_user_may_do(team, client, auth_headers):
    admin_h = auth_headers(team["admin"])
    role = client.post("/api/v1/roles", json={"code": "viewer", "name": "只读"}, headers=admin_h).get_json()
    resp = client.put(f"/api/v1/roles/{role['id']}/grants", headers=admin_h,
                      json={"permissions": ["customer:view"], "scopes": {"customer": {"scope": "organization"}}})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["permissions"] == ["customer:view"]
    client.patch(f"/api/v1/users/{team['rep1'].id}", json={"roles": ["viewer"]}, headers=admin_h)
    h = auth_headers(team["rep1"])
    assert client.get("/api/v1/customers", headers=h).get_json()["total"] == 6
    assert client.post("/api/v1/customers", json={"name": "新客户"}, headers=h).status_code == 403
    bad = client.put(f"/api/v1/roles/{role['id']}/grants", headers=admin_h, json={"permissions": ["nothing:fly"]})
    assert bad.status_code == 422


def test_builtin_admin_role_exists_without_demo(any_app):
    assert find_role(1, "admin").grants_all


def test_reporting_cycle_cannot_hang_the_subtree(any_app):
    from crm_core.org.models import Position
    from crm_core.org.permissions import subtree_employee_ids

    users = make_team()
    db.session.commit()
    boss = db.session.scalars(db.select(Position).where(Position.code == "BOSS")).one()
    rep1 = db.session.scalars(db.select(Position).where(Position.code == "R1")).one()
    boss.reports_to_id = rep1.id  # a bad direct edit: BOSS -> MGR -> R1 -> BOSS
    db.session.commit()
    ids = subtree_employee_ids(boss.org_id, users["rep1"].employee_id)
    assert users["boss"].employee_id in ids and users["rep3"].employee_id in ids


def test_service_refuses_a_reporting_cycle(any_app):
    from crm_core.errors import ValidationFailed
    from crm_core.org.models import Position
    from crm_core.org.organization import upsert_position

    make_team()
    org = make_org()
    rep1 = db.session.scalars(db.select(Position).where(Position.code == "R1")).one()
    boss = db.session.scalars(db.select(Position).where(Position.code == "BOSS")).one()
    with pytest.raises(ValidationFailed):
        upsert_position(org, "BOSS", "总经理", boss.department, rep1)
