"""Setting up a company without the API (#16 item 1): business functions, the department tree,
positions with reporting lines, employees who are hired, moved and leave, and the guards that
keep an organisation workable — the last administrator stays, a position with people is not
deleted, a department with people is not disabled, and a leaver's records go to a colleague.

Owned records keep the ``department_id`` they were saved with (mixins.OwnedRecord), so moving an
employee moves no history; a leaver's records change owner (and take the new owner's department)
with an audit entry each, as the data-scope rules expect of a hand-over.
"""
from __future__ import annotations

import re

from sqlalchemy import func, select

from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.models import Department, Employee, EmployeePosition, Organization, Position, Role, User, UserRole
from crm_core.org.permissions import Actor

FUNCTIONS = {"sales": "销售职能", "marketing": "营销职能", "service": "服务职能"}


def _org_row(actor: Actor) -> Organization:
    return db.session.get(Organization, actor.org_id)


def _name(value: str | None, what: str, limit: int = 100) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"请填写{what}名称。", fields={"name": "required"})
    if len(value) > limit:
        raise ValidationFailed(f"{what}名称最多 {limit} 个字。", fields={"name": "too_long"})
    return value


def _next_code(model, prefix: str, org_id: int) -> str:
    n = db.session.scalar(select(func.count(model.id)).where(model.org_id == org_id)) or 0
    while True:
        n += 1
        code = f"{prefix}{n:03d}"
        if not db.session.scalar(select(model.id).where(model.org_id == org_id, model.code == code)):
            return code


# --- business functions ----------------------------------------------------------------------
def set_functions(actor: Actor, enabled: dict[str, bool]) -> Organization:
    """启用组织对应的业务职能: switch sales, marketing and service on or off (one at least)."""
    actor.require("organization", "edit")
    org = _org_row(actor)
    values = {f: bool(enabled.get(f, getattr(org, f"{f}_enabled"))) for f in FUNCTIONS}
    if not any(values.values()):
        raise ValidationFailed("至少启用一项业务职能。", fields={"functions": "none"})
    for f, on in values.items():
        setattr(org, f"{f}_enabled", on)
    db.session.flush()
    return org


# --- departments -----------------------------------------------------------------------------
def _find(actor: Actor, model, record_id: int | None, message: str, field: str):
    """A row of the caller's organisation by id (None for no id), or NotFound naming the field."""
    if record_id is None:
        return None
    row = db.session.get(model, record_id)
    if row is None or row.org_id != actor.org_id:
        raise NotFound(message, fields={field: "unknown"})
    return row


def _department(actor: Actor, department_id: int | None) -> Department | None:
    return _find(actor, Department, department_id, "部门不存在。", "department_id")


def _check_function(function: str | None) -> str | None:
    if function in (None, ""):
        return None
    if function not in FUNCTIONS:
        raise ValidationFailed("部门属性只能是销售、营销或服务职能。", fields={"function": "invalid"})
    return function


def create_department(actor: Actor, name: str, parent_id: int | None = None, function: str | None = None) -> Department:
    actor.require("organization", "edit")
    parent = _department(actor, parent_id)
    if parent is not None and not parent.active:
        raise ValidationFailed("上级部门已停用。", fields={"parent_id": "inactive"})
    d = Department(org_id=actor.org_id, code=_next_code(Department, "D", actor.org_id), name=_name(name, "部门"),
                   parent_id=parent.id if parent else None, function=_check_function(function))
    db.session.add(d)
    db.session.flush()
    return d


def _people_in(department_ids: list[int]) -> int:
    return db.session.scalar(select(func.count(func.distinct(EmployeePosition.employee_id))).join(
        Position, Position.id == EmployeePosition.position_id).join(Employee, Employee.id == EmployeePosition.employee_id)
        .where(Position.department_id.in_(department_ids), Employee.active.is_(True))) or 0


def _subtree(root: Department) -> list[int]:
    ids, frontier = [root.id], [root.id]
    while frontier:
        frontier = list(db.session.scalars(select(Department.id).where(Department.parent_id.in_(frontier))))
        ids.extend(frontier)
    return ids


def update_department(actor: Actor, department_id: int, *, name: str | None = None, parent_id: int | None | str = "keep",
                      function: str | None | str = "keep", active: bool | None = None) -> Department:
    """Rename, move under another department (never under itself or its own sub-departments),
    change its business function, disable (only once nobody works in it or below) or enable."""
    actor.require("organization", "edit")
    d = _department(actor, department_id)
    if name is not None:
        d.name = _name(name, "部门")
    if parent_id != "keep":
        parent = _department(actor, parent_id)
        if parent is not None and parent.id in _subtree(d):
            raise ValidationFailed("不能把部门移到它自己或它的下级部门之下。", fields={"parent_id": "cycle"})
        d.parent_id = parent.id if parent else None
    if function != "keep":
        d.function = _check_function(function)
    if active is False and d.active:
        people = _people_in(_subtree(d))
        if people:
            raise Conflict(f"该部门（含下级部门）还有 {people} 名在职员工，请先调岗后再停用。", code="department_in_use")
        for sub in _subtree(d):
            db.session.get(Department, sub).active = False
    elif active is True:
        d.active = True
    db.session.flush()
    return d


# --- positions -------------------------------------------------------------------------------
def _position(actor: Actor, position_id: int | None) -> Position | None:
    return _find(actor, Position, position_id, "岗位不存在。", "position_id")


def _check_reporting(p: Position, reports_to: Position | None) -> None:
    seen, cur = {p.id}, reports_to
    while cur is not None:
        if cur.id in seen:
            raise ValidationFailed("汇报关系不能形成循环。", fields={"reports_to_id": "cycle"})
        seen.add(cur.id)
        cur = db.session.get(Position, cur.reports_to_id) if cur.reports_to_id else None


def create_position(actor: Actor, name: str, department_id: int, reports_to_id: int | None = None) -> Position:
    actor.require("organization", "edit")
    dept = _department(actor, department_id)
    if dept is None or not dept.active:
        raise ValidationFailed("请选择在用的部门。", fields={"department_id": "required"})
    boss = _position(actor, reports_to_id)
    p = Position(org_id=actor.org_id, department_id=dept.id, code=_next_code(Position, "P", actor.org_id),
                 name=_name(name, "岗位"), reports_to_id=boss.id if boss else None)
    db.session.add(p)
    db.session.flush()
    return p


def update_position(actor: Actor, position_id: int, *, name: str | None = None, department_id: int | None = None,
                    reports_to_id: int | None | str = "keep") -> Position:
    actor.require("organization", "edit")
    p = _position(actor, position_id)
    if name is not None:
        p.name = _name(name, "岗位")
    if department_id is not None:
        dept = _department(actor, department_id)
        if not dept.active:
            raise ValidationFailed("该部门已停用。", fields={"department_id": "inactive"})
        p.department_id = dept.id
    if reports_to_id != "keep":
        boss = _position(actor, reports_to_id)
        _check_reporting(p, boss)
        p.reports_to_id = boss.id if boss else None
    db.session.flush()
    return p


def delete_position(actor: Actor, position_id: int) -> None:
    actor.require("organization", "edit")
    p = _position(actor, position_id)
    holders = db.session.scalar(select(func.count(EmployeePosition.id)).where(EmployeePosition.position_id == p.id)) or 0
    if holders:
        raise Conflict(f"该岗位还有 {holders} 名员工，请先调岗后再删除。", code="position_in_use")
    if db.session.scalar(select(func.count(Position.id)).where(Position.reports_to_id == p.id)):
        raise Conflict("还有岗位向该岗位汇报，请先调整汇报关系。", code="position_in_use")
    db.session.delete(p)
    db.session.flush()


# --- employees -------------------------------------------------------------------------------
def _employee(actor: Actor, employee_id: int) -> Employee:
    return _find(actor, Employee, employee_id, "职员不存在。", "employee_id")


def _place(actor: Actor, e: Employee, position_ids: list[int]) -> None:
    positions = [_position(actor, pid) for pid in dict.fromkeys(position_ids)]
    if not positions:
        raise ValidationFailed("请至少选择一个岗位。", fields={"position_ids": "required"})
    for p in positions:
        if not db.session.get(Department, p.department_id).active:
            raise ValidationFailed(f"岗位「{p.name}」所在部门已停用。", fields={"position_ids": "inactive"})
    e.positions = [EmployeePosition(position_id=p.id, primary=(i == 0)) for i, p in enumerate(positions)]


WECOM_USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _wecom_userid(actor: Actor, e: Employee, value: str | None) -> None:
    """The employee's 企业微信 UserID (account), which WeCom OAuth and the app's messages use: letters, digits and
    ``_ . @ -``, one employee each in the organisation."""
    value = (value or "").strip()
    if not value:
        e.wecom_userid = None
        return
    if not WECOM_USERID.match(value):
        raise ValidationFailed("企业微信账号只能包含字母、数字和 _ . @ -，最多 64 位。", fields={"wecom_userid": "invalid"})
    taken = db.session.scalar(select(Employee.name).where(Employee.org_id == actor.org_id, Employee.wecom_userid == value,
                                                          Employee.id != (e.id or 0)))
    if taken:
        raise Conflict(f"企业微信账号 {value} 已绑定职员「{taken}」。", code="wecom_userid_taken")
    e.wecom_userid = value


def hire(actor: Actor, name: str, position_ids: list[int], phone: str | None = None, email: str | None = None,
         wecom_userid: str | None = None) -> Employee:
    actor.require("organization", "edit")
    e = Employee(org_id=actor.org_id, code=_next_code(Employee, "E", actor.org_id), name=_name(name, "职员", 100),
                 phone=(phone or "").strip()[:32] or None, email=(email or "").strip()[:200] or None)
    _wecom_userid(actor, e, wecom_userid)
    db.session.add(e)
    _place(actor, e, position_ids)
    db.session.flush()
    return e


def update_employee(actor: Actor, employee_id: int, *, name: str | None = None, phone: str | None = None,
                    position_ids: list[int] | None = None, wecom_userid: str | None = None) -> Employee:
    """Rename, change the phone, or move to other positions (调岗). Records saved before keep their department."""
    actor.require("organization", "edit")
    e = _employee(actor, employee_id)
    if not e.active:
        raise ValidationFailed("该职员已离职。", fields={"employee_id": "left"})
    if name is not None:
        e.name = _name(name, "职员")
    if phone is not None:
        e.phone = phone.strip()[:32] or None
    if position_ids is not None:
        _place(actor, e, position_ids)
    if wecom_userid is not None:
        _wecom_userid(actor, e, wecom_userid)
    db.session.flush()
    return e


def primary_department(e: Employee) -> int | None:
    for ep in sorted(e.positions, key=lambda ep: not ep.primary):
        p = db.session.get(Position, ep.position_id)
        if p is not None:
            return p.department_id
    return None


def leave(actor: Actor, employee_id: int, handover_to: int) -> dict[str, int]:
    """离职: the employee's owned records go to ``handover_to`` (owner and department, audited), their
    users are disabled and signed out, their positions freed. Returns how many records moved per kind."""
    from crm_core.org.auth import revoke_all_tokens
    from crm_core.org.organization import _owned_models

    actor.require("organization", "edit")
    e = _employee(actor, employee_id)
    if not e.active:
        raise ValidationFailed("该职员已离职。", fields={"employee_id": "left"})
    heir = _employee(actor, handover_to)
    if heir.id == e.id or not heir.active:
        raise ValidationFailed("请选择一位在职的同事接手。", fields={"handover_to": "invalid"})
    for u in db.session.scalars(select(User).where(User.employee_id == e.id, User.active.is_(True))):
        _guard_last_admin(u)
        u.active = False
        revoke_all_tokens(u.id)
    dept = primary_department(heir)
    moved = {}
    for model in _owned_models():  # every owned table (a work plan as well as an activity, a target as well as a contract)
        kind = model.__scope_object__
        rows = db.session.scalars(select(model).where(model.owner_id == e.id)).all()
        for obj in rows:  # through the ORM, so each change is audited (who held the record, when)
            obj.owner_id, obj.department_id = heir.id, dept
        if rows:
            moved[kind] = moved.get(kind, 0) + len(rows)
    e.active = False
    e.positions = []
    db.session.flush()
    return moved


# --- users -----------------------------------------------------------------------------------
def _admins_left(org_id: int, excluding: int) -> int:
    return db.session.scalar(select(func.count(func.distinct(User.id))).join(UserRole, UserRole.user_id == User.id)
                             .join(Role, Role.id == UserRole.role_id)
                             .where(User.org_id == org_id, User.active.is_(True), User.id != excluding,
                                    Role.grants_all.is_(True))) or 0


def _guard_last_admin(user: User) -> None:
    if any(r.grants_all for r in user.roles) and not _admins_left(user.org_id, user.id):
        raise Conflict("这是组织里最后一位在用的管理员，不能停用或取消管理员角色；请先指定另一位管理员。", code="last_admin")


def guard_user_change(user: User, *, active: bool | None = None, roles: list[Role] | None = None) -> None:
    """The last active administrator stays active and an administrator."""
    if (active is False and user.active) or (roles is not None and not any(r.grants_all for r in roles)):
        _guard_last_admin(user)


def create_user(actor: Actor, username: str, password: str, role_codes: list[str], employee_id: int | None = None) -> User:
    """A new login of this organisation, optionally linked to an employee (the API's and the console's)."""
    from crm_core.org import organization as org_service

    actor.require("user", "create")
    if db.session.scalars(select(User).where(User.username == (username or "").strip())).first():
        raise Conflict(f"用户名已存在：{username}", fields={"username": "taken"})
    emp = _find(actor, Employee, employee_id, "职员不存在。", "employee_id")
    return org_service.create_user(_org_row(actor), username, password, role_codes, emp)


def update_user(actor: Actor, user_id: int, *, employee_id: int | None = None, role_codes: list[str] | None = None,
                active: bool | None = None) -> User:
    """Link an employee, change roles, enable or disable (disabling signs the user out); the last
    active administrator stays active and an administrator."""
    from crm_core.org import organization as org_service
    from crm_core.org.auth import revoke_all_tokens

    actor.require("user", "edit")
    user = _find(actor, User, user_id, "用户不存在。", "user_id")
    if employee_id is not None:
        user.employee_id = _find(actor, Employee, employee_id, "职员不存在。", "employee_id").id
    if role_codes is not None:
        roles = [org_service.find_role(user.org_id, code) for code in role_codes]
        guard_user_change(user, roles=roles)
        user.roles = roles
    if active is not None:
        guard_user_change(user, active=active)
        user.active = active
        if not active:
            revoke_all_tokens(user.id)
    db.session.flush()
    return user


def reset_password(actor: Actor, user_id: int, password: str) -> User:
    from crm_core.org.auth import revoke_all_tokens
    from crm_core.security import hash_password

    actor.require("user", "edit")
    user = _find(actor, User, user_id, "用户不存在。", "user_id")
    if len(password or "") < 8:
        raise ValidationFailed("新密码至少 8 位。", fields={"password": "too_short"})
    user.password_hash = hash_password(password)
    revoke_all_tokens(user.id)
    db.session.flush()
    return user
