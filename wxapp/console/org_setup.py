"""组织设置 in the console (#16 item 1): business functions, departments, positions and reporting
lines, employees (hire, move, leave with a hand-over), users (create, roles, enable/disable,
reset password) — so a company sets itself up without the API."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.db import db
from crm_core.errors import PermissionDenied
from crm_core.org import setup
from crm_core.org.models import Department, Employee, Organization, Position, Role, User
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act, denied, form_int

BACK = "console.org_setup"


@bp.get("/org/setup")
@console_login_required
def org_setup():
    if not g.actor.can("organization", "edit"):
        return denied(PermissionDenied("只有管理员可以设置组织。"))
    org_id = g.actor.org_id
    depts = list(db.session.scalars(select(Department).where(Department.org_id == org_id).order_by(Department.id)))
    children: dict[int | None, list[Department]] = {}
    for d in depts:
        children.setdefault(d.parent_id, []).append(d)
    tree: list[tuple[int, Department]] = []

    def walk(parent, depth):
        for d in children.get(parent, []):
            tree.append((depth, d))
            walk(d.id, depth + 1)
    walk(None, 0)
    positions = list(db.session.scalars(select(Position).where(Position.org_id == org_id).order_by(Position.department_id,
                                                                                                      Position.id)))
    employees = list(db.session.scalars(select(Employee).where(Employee.org_id == org_id)
                                        .order_by(Employee.active.desc(), Employee.id)))
    users = list(db.session.scalars(select(User).where(User.org_id == org_id).order_by(User.id)))
    roles = list(db.session.scalars(select(Role).where((Role.org_id.is_(None)) | (Role.org_id == org_id)).order_by(Role.id)))
    return render_template("console/org_setup.html", org=db.session.get(Organization, org_id), tree=tree, depts=depts,
                           dept_names={d.id: d.name for d in depts}, positions=positions,
                           pos_names={p.id: p.name for p in positions}, employees=employees,
                           emp_names={e.id: e.name for e in employees}, users=users, roles=roles,
                           functions=setup.FUNCTIONS)


@bp.post("/org/setup/functions")
@console_login_required
def org_functions():
    chosen = set(request.form.getlist("function"))
    return act(lambda: setup.set_functions(g.actor, {f: f in chosen for f in setup.FUNCTIONS}), "业务职能已保存。",
               url_for(BACK))


@bp.post("/org/setup/departments")
@console_login_required
def org_department_add():
    f = request.form
    return act(lambda: setup.create_department(g.actor, f.get("name", ""), form_int(f.get("parent_id")), f.get("function") or None),
               "部门已添加。", url_for(BACK))


@bp.post("/org/setup/departments/<int:department_id>")
@console_login_required
def org_department_edit(department_id: int):
    f = request.form
    op = f.get("op", "save")
    if op in ("disable", "enable"):
        return act(lambda: setup.update_department(g.actor, department_id, active=op == "enable"),
                   "部门已启用。" if op == "enable" else "部门已停用。", url_for(BACK))
    return act(lambda: setup.update_department(g.actor, department_id, name=f.get("name"), parent_id=form_int(f.get("parent_id")),
                                               function=f.get("function") or None), "部门已保存。", url_for(BACK))


@bp.post("/org/setup/positions")
@console_login_required
def org_position_add():
    f = request.form
    return act(lambda: setup.create_position(g.actor, f.get("name", ""), form_int(f.get("department_id")) or -1,
                                             form_int(f.get("reports_to_id"))), "岗位已添加。", url_for(BACK))


@bp.post("/org/setup/positions/<int:position_id>")
@console_login_required
def org_position_edit(position_id: int):
    f = request.form
    if f.get("op") == "delete":
        return act(lambda: setup.delete_position(g.actor, position_id), "岗位已删除。", url_for(BACK))
    return act(lambda: setup.update_position(g.actor, position_id, name=f.get("name"),
                                             reports_to_id=form_int(f.get("reports_to_id"))), "岗位已保存。", url_for(BACK))


@bp.post("/org/setup/employees")
@console_login_required
def org_hire():
    f = request.form
    return act(lambda: setup.hire(g.actor, f.get("name", ""), [p for p in [form_int(f.get("position_id"))] if p],
                                  f.get("phone"), f.get("email"), f.get("wecom_userid")), "已入职。", url_for(BACK))


@bp.post("/org/setup/employees/<int:employee_id>")
@console_login_required
def org_employee_edit(employee_id: int):
    f = request.form
    if f.get("op") == "leave":
        holder = {}

        def run():
            holder["moved"] = setup.leave(g.actor, employee_id, form_int(f.get("handover_to")) or -1)
        return act(run, lambda: "已办理离职" + (f"，{sum(holder['moved'].values())} 条记录已交接" if holder["moved"] else "") + "。",
                   url_for(BACK))
    pos = form_int(f.get("position_id"))
    return act(lambda: setup.update_employee(g.actor, employee_id, phone=f.get("phone"), position_ids=[pos] if pos else None,
                                             wecom_userid=f.get("wecom_userid")),
               "已保存（调岗后，此前保存的记录仍留在原部门）。", url_for(BACK))


@bp.post("/org/setup/users")
@console_login_required
def org_user_add():
    f = request.form
    return act(lambda: setup.create_user(g.actor, f.get("username", ""), f.get("password", ""), [f.get("role") or "salesperson"],
                                         form_int(f.get("employee_id"))), "用户已创建，可以登录了。", url_for(BACK))


@bp.post("/org/setup/users/<int:user_id>")
@console_login_required
def org_user_edit(user_id: int):
    f = request.form
    op = f.get("op")
    if op == "password":
        return act(lambda: setup.reset_password(g.actor, user_id, f.get("password", "")), "密码已重置，该用户需重新登录。",
                   url_for(BACK))
    if op in ("disable", "enable"):
        return act(lambda: setup.update_user(g.actor, user_id, active=op == "enable"), "已保存。", url_for(BACK))
    return act(lambda: setup.update_user(g.actor, user_id, role_codes=[f.get("role") or ""]), "已保存。", url_for(BACK))
