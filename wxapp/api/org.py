"""Organisation chart, employees, users, roles and record sharing."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field
from sqlalchemy import select

from crm_core.db import db, paginate
from crm_core.errors import ValidationFailed
from crm_core.org import organization as org_service
from crm_core.org.models import DATA_SCOPES, Employee, Role, User
from wxapp import exports
from wxapp.api import bp
from wxapp.exports import Column
from wxapp.openapi import Model, PageQuery, api, page_of


class EmployeeOut(Model):
    id: int
    code: str
    name: str
    phone: str | None
    department_id: int | None
    position: str | None
    email: str | None = None
    department: str | None = None
    wecom_userid: str | None = None
    active: bool = True


class EmployeeQuery(PageQuery):
    q: str | None = None


@api.operation(bp, "/org/chart", "GET", summary="Departments, positions, holders and reporting lines", tags=("organization",))
def org_chart():
    return org_service.org_chart(g.actor)


def _employees(actor, q: str | None = None, page: int = 1, per_page: int = 20):
    actor.require("organization", "view")
    stmt = select(Employee).where(Employee.org_id == actor.org_id)
    if q:
        stmt = stmt.where(Employee.name.like(f"%{q}%") | Employee.code.like(f"%{q}%"))
    return paginate(stmt, Employee.id, page=page, per_page=per_page)


def _employee_rows(rows) -> list[dict]:
    from crm_core.org.models import Department

    depts = dict(db.session.execute(select(Department.id, Department.name).where(
        Department.id.in_({e.department_id for e in rows if e.department_id}))).all()) if rows else {}
    return [{"id": e.id, "code": e.code, "name": e.name, "phone": e.phone, "email": e.email, "department_id": e.department_id,
             "department": depts.get(e.department_id), "position": e.primary_position.name if e.primary_position else None,
             "wecom_userid": e.wecom_userid, "active": e.active} for e in rows]


@api.operation(bp, "/employees", "GET", summary="Employees of the organisation", tags=("organization",),
               query=EmployeeQuery, response=page_of(EmployeeOut))
def list_employees(query: EmployeeQuery):
    rows, total = _employees(g.actor, query.q, query.page, min(query.per_page, 100))
    return {"items": _employee_rows(rows), "total": total}


exports.register(bp, api, "/employees", "员工", "organization", EmployeeQuery, _employees, _employee_rows, [
    Column("code", "工号"), Column("name", "姓名"), Column("phone", "手机"), Column("email", "邮箱"),
    Column("department", "部门"), Column("position", "主岗位"), Column("wecom_userid", "企业微信账号"),
    Column("active", "在职", "yes_no")])


class RoleOut(Model):
    id: int
    code: str
    name: str
    builtin: bool
    grants_all: bool
    permissions: list[str]
    scopes: dict[str, dict]


def _role_dict(r: Role) -> dict:
    return {"id": r.id, "code": r.code, "name": r.name, "builtin": r.builtin, "grants_all": r.grants_all,
            "permissions": sorted(f"{p.object_type}:{p.action}" for p in r.permissions),
            "scopes": {s.object_type: {"scope": s.scope, "department_ids": s.department_ids, "employee_ids": s.employee_ids}
                       for s in r.data_scopes}}


@api.operation(bp, "/roles", "GET", summary="Built-in and organisation roles", tags=("organization",),
               query=PageQuery, response=page_of(RoleOut))
def list_roles(query: PageQuery):
    g.actor.require("role", "view")
    rows = db.session.scalars(select(Role).where((Role.org_id == g.actor.org_id) | Role.org_id.is_(None)).order_by(Role.id)).all()
    return {"items": [_role_dict(r) for r in rows], "total": len(rows)}


class RoleIn(Model):
    code: str = Field(min_length=2, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=100)


@api.operation(bp, "/roles", "POST", summary="Create an organisation role (no permissions yet)", tags=("organization",),
               body=RoleIn, response=RoleOut, status=201)
def create_role(body: RoleIn):
    g.actor.require("role", "create")
    exists = db.session.scalars(select(Role).where(Role.code == body.code,
                                                   (Role.org_id == g.actor.org_id) | Role.org_id.is_(None))).first()
    if exists:
        from crm_core.errors import Conflict

        raise Conflict(f"角色编码已存在：{body.code}", fields={"code": "taken"})
    role = Role(org_id=g.actor.org_id, code=body.code, name=body.name)
    db.session.add(role)
    db.session.flush()
    return _role_dict(role)


class ScopeIn(Model):
    scope: Literal[DATA_SCOPES]  # type: ignore[valid-type]
    department_ids: list[int] = []
    employee_ids: list[int] = []


class RoleGrantsIn(Model):
    permissions: list[str] = Field(default_factory=list, description='"object:action" strings, e.g. "customer:view"')
    scopes: dict[str, ScopeIn] = {}


@api.operation(bp, "/roles/<int:role_id>/grants", "PUT", summary="Replace a role's function permissions and data scopes",
               tags=("organization",), body=RoleGrantsIn, response=RoleOut)
def set_role_grants(role_id: int, body: RoleGrantsIn):
    perms = []
    for item in body.permissions:
        obj, sep, action = item.partition(":")
        if not sep:
            raise ValidationFailed("权限格式应为 对象:操作。", fields={"permissions": f"bad item {item!r}"})
        perms.append((obj, action))
    role = org_service.set_role_grants(g.actor, role_id, perms, {k: v.model_dump() for k, v in body.scopes.items()})
    return _role_dict(role)


class UserOut(Model):
    id: int
    username: str
    employee_id: int | None
    active: bool
    roles: list[str]


def _user_dict(u: User) -> dict:
    return {"id": u.id, "username": u.username, "employee_id": u.employee_id, "active": u.active,
            "roles": [r.code for r in u.roles]}


@api.operation(bp, "/users", "GET", summary="Users of the organisation", tags=("organization",),
               query=PageQuery, response=page_of(UserOut))
def list_users(query: PageQuery):
    g.actor.require("user", "view")
    stmt = select(User).where(User.org_id == g.actor.org_id)
    rows, total = paginate(stmt, User.id, page=query.page, per_page=min(query.per_page, 100))
    return {"items": [_user_dict(u) for u in rows], "total": total}


class UserIn(Model):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    roles: list[str] = Field(min_length=1)
    employee_id: int | None = None


@api.operation(bp, "/users", "POST", summary="Create a user, optionally linked to an employee", tags=("organization",),
               body=UserIn, response=UserOut, status=201)
def create_user(body: UserIn):
    from crm_core.org import setup

    return _user_dict(setup.create_user(g.actor, body.username, body.password, body.roles, body.employee_id))


class UserPatch(Model):
    employee_id: int | None = None
    roles: list[str] | None = None
    active: bool | None = None


@api.operation(bp, "/users/<int:user_id>", "PATCH", summary="Link an employee, change roles, enable or disable",
               tags=("organization",), body=UserPatch, response=UserOut)
def update_user(user_id: int, body: UserPatch):
    from crm_core.org import setup

    return _user_dict(setup.update_user(g.actor, user_id, employee_id=body.employee_id, role_codes=body.roles,
                                        active=body.active))


class ShareIn(Model):
    object_type: str = Field(min_length=1, max_length=32)
    object_id: int
    employee_id: int


class ShareOut(Model):
    id: int
    object_type: str
    object_id: int
    employee_id: int


@api.operation(bp, "/shares", "POST", summary="Share a record with a colleague outside their data scope",
               tags=("organization",), body=ShareIn, response=ShareOut, status=201)
def share(body: ShareIn):
    s = org_service.share_record(g.actor, body.object_type, body.object_id, body.employee_id)
    return {"id": s.id, "object_type": s.object_type, "object_id": s.object_id, "employee_id": s.employee_id}
