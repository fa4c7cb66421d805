"""Organisation set-up (SPEC: ``POST /api/v1/departments``, ``/positions``, ``/employees`` with
GET and PATCH), business functions, a leaver's hand-over and password resets (crm_core.org.setup)."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field
from sqlalchemy import select

from crm_core.db import db
from crm_core.org import setup
from crm_core.org.models import Department, Employee, Position
from wxapp.api import bp
from wxapp.openapi import Model, api

Function = Literal["sales", "marketing", "service"]


class DepartmentIn(Model):
    name: str = Field(min_length=1, max_length=100)
    parent_id: int | None = None
    business_function: Function | None = Field(default=None, description="部门属性: the business function it serves")


class DepartmentPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    parent_id: int | None = Field(default=None, description="move under this department")
    to_top: bool = Field(default=False, description="move to the top level")
    business_function: Function | None = None
    active: bool | None = Field(default=None, description="false: disable (refused while people work in it or below)")


class DepartmentOut(Model):
    id: int
    code: str
    name: str
    parent_id: int | None
    business_function: str | None
    active: bool


def _dept(d: Department) -> dict:
    return {"id": d.id, "code": d.code, "name": d.name, "parent_id": d.parent_id, "business_function": d.function,
            "active": d.active}


class Departments(Model):
    items: list[DepartmentOut]


@api.operation(bp, "/departments", "GET", summary="The department tree (flat, with parent ids)", tags=("organization",),
               response=Departments)
def list_departments():
    g.actor.require("organization", "view")
    rows = db.session.scalars(select(Department).where(Department.org_id == g.actor.org_id).order_by(Department.id))
    return {"items": [_dept(d) for d in rows]}


@api.operation(bp, "/departments", "POST", summary="Add a department", tags=("organization",), body=DepartmentIn,
               response=DepartmentOut, status=201)
def create_department(body: DepartmentIn):
    return _dept(setup.create_department(g.actor, body.name, body.parent_id, body.business_function))


@api.operation(bp, "/departments/<int:department_id>", "PATCH", summary="Rename, move, change the function, disable or enable",
               tags=("organization",), body=DepartmentPatch, response=DepartmentOut)
def update_department(department_id: int, body: DepartmentPatch):
    fields = body.model_fields_set
    parent = None if body.to_top else (body.parent_id if "parent_id" in fields else "keep")
    return _dept(setup.update_department(g.actor, department_id, name=body.name, parent_id=parent,
                                         function=body.business_function if "business_function" in fields else "keep",
                                         active=body.active))


class PositionIn(Model):
    name: str = Field(min_length=1, max_length=100)
    department_id: int
    reports_to_id: int | None = Field(default=None, description="the position this one reports to (汇报关系)")


class PositionPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    department_id: int | None = None
    reports_to_id: int | None = None
    reports_to_nobody: bool = False


class PositionOut(Model):
    id: int
    code: str
    name: str
    department_id: int
    reports_to_id: int | None
    holders: list[int]


def _pos(p: Position) -> dict:
    return {"id": p.id, "code": p.code, "name": p.name, "department_id": p.department_id, "reports_to_id": p.reports_to_id,
            "holders": [h.employee_id for h in p.holders]}


class Positions(Model):
    items: list[PositionOut]


@api.operation(bp, "/positions", "GET", summary="Positions with reporting lines and holders", tags=("organization",),
               response=Positions)
def list_positions():
    g.actor.require("organization", "view")
    rows = db.session.scalars(select(Position).where(Position.org_id == g.actor.org_id).order_by(Position.id))
    return {"items": [_pos(p) for p in rows]}


@api.operation(bp, "/positions", "POST", summary="Add a position", tags=("organization",), body=PositionIn,
               response=PositionOut, status=201)
def create_position(body: PositionIn):
    return _pos(setup.create_position(g.actor, body.name, body.department_id, body.reports_to_id))


@api.operation(bp, "/positions/<int:position_id>", "PATCH", summary="Rename, move, change the reporting line",
               tags=("organization",), body=PositionPatch, response=PositionOut)
def update_position(position_id: int, body: PositionPatch):
    fields = body.model_fields_set
    reports = None if body.reports_to_nobody else (body.reports_to_id if "reports_to_id" in fields else "keep")
    return _pos(setup.update_position(g.actor, position_id, name=body.name, department_id=body.department_id,
                                      reports_to_id=reports))


@api.operation(bp, "/positions/<int:position_id>", "DELETE", summary="Delete a position nobody holds", tags=("organization",),
               status=204)
def delete_position(position_id: int):
    setup.delete_position(g.actor, position_id)
    return None


class EmployeeIn(Model):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    position_ids: list[int] = Field(min_length=1, max_length=10, description="first = primary position")
    wecom_userid: str | None = Field(default=None, max_length=64, description="企业微信 UserID (account)")


class EmployeePatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    position_ids: list[int] | None = Field(default=None, min_length=1, max_length=10, description="调岗")
    wecom_userid: str | None = Field(default=None, max_length=64, description="企业微信 UserID; empty string removes it")


class EmployeeFull(Model):
    id: int
    code: str
    name: str
    phone: str | None
    email: str | None
    active: bool
    position_ids: list[int]
    department_id: int | None
    wecom_userid: str | None


def _emp(e: Employee) -> dict:
    return {"id": e.id, "code": e.code, "name": e.name, "phone": e.phone, "email": e.email, "active": e.active,
            "position_ids": [ep.position_id for ep in sorted(e.positions, key=lambda ep: not ep.primary)],
            "department_id": setup.primary_department(e), "wecom_userid": e.wecom_userid}


@api.operation(bp, "/employees", "POST", summary="Hire an employee into positions", tags=("organization",), body=EmployeeIn,
               response=EmployeeFull, status=201)
def hire_employee(body: EmployeeIn):
    return _emp(setup.hire(g.actor, body.name, body.position_ids, body.phone, body.email, body.wecom_userid))


@api.operation(bp, "/employees/<int:employee_id>", "GET", summary="One employee", tags=("organization",), response=EmployeeFull)
def get_employee(employee_id: int):
    g.actor.require("organization", "view")
    return _emp(setup._employee(g.actor, employee_id))


@api.operation(bp, "/employees/<int:employee_id>", "PATCH", summary="Rename, change the phone, move to other positions",
               tags=("organization",), body=EmployeePatch, response=EmployeeFull)
def update_employee(employee_id: int, body: EmployeePatch):
    return _emp(setup.update_employee(g.actor, employee_id, name=body.name, phone=body.phone, position_ids=body.position_ids,
                                      wecom_userid=body.wecom_userid))


class LeaveIn(Model):
    handover_to: int = Field(description="the colleague who takes over their customers, leads, tickets...")


class LeaveOut(Model):
    moved: dict[str, int]


@api.operation(bp, "/employees/<int:employee_id>/leave", "POST", summary="离职: hand the records over, disable the users",
               tags=("organization",), body=LeaveIn, response=LeaveOut)
def employee_leaves(employee_id: int, body: LeaveIn):
    return {"moved": setup.leave(g.actor, employee_id, body.handover_to)}


class FunctionsIn(Model):
    sales: bool | None = None
    marketing: bool | None = None
    service: bool | None = None


class FunctionsOut(Model):
    sales: bool
    marketing: bool
    service: bool


@api.operation(bp, "/org/functions", "PUT", summary="启用组织对应的业务职能", tags=("organization",), body=FunctionsIn,
               response=FunctionsOut)
def set_functions(body: FunctionsIn):
    org = setup.set_functions(g.actor, {k: v for k, v in body.model_dump().items() if v is not None})
    return {"sales": org.sales_enabled, "marketing": org.marketing_enabled, "service": org.service_enabled}


class PasswordIn(Model):
    password: str = Field(min_length=8, max_length=256)


@api.operation(bp, "/users/<int:user_id>/password", "PUT", summary="Reset a user's password (their sessions end)",
               tags=("organization",), body=PasswordIn, status=204)
def reset_password(user_id: int, body: PasswordIn):
    setup.reset_password(g.actor, user_id, body.password)
    return None
