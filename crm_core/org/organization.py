"""Organisation, users and roles (seed section 2.1–2.3)."""
from __future__ import annotations

from sqlalchemy import func, select

from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.builtin_roles import BUILTIN_ROLES
from crm_core.org.models import (
    DATA_SCOPES,
    Department,
    Employee,
    EmployeePosition,
    Organization,
    Position,
    RecordShare,
    Role,
    RoleDataScope,
    RolePermission,
    User,
)
from crm_core.org.permissions import ACTIONS, OBJECTS, Actor
from crm_core.security import MIN_PASSWORD_LENGTH, hash_password, verify_password


def ensure_builtin_roles() -> dict[str, Role]:
    """Create or refresh the built-in roles (idempotent; the first migration runs it too)."""
    roles: dict[str, Role] = {}
    for spec in BUILTIN_ROLES:
        role = db.session.scalars(select(Role).where(Role.org_id.is_(None), Role.code == spec["code"])).first()
        if role is None:
            role = Role(org_id=None, code=spec["code"], name=spec["name"], builtin=True, grants_all=spec["grants_all"])
            db.session.add(role)
        role.name, role.grants_all, role.builtin = spec["name"], spec["grants_all"], True
        wanted = set(spec["permissions"])
        have = {(p.object_type, p.action): p for p in role.permissions}
        for key, perm in have.items():
            if key not in wanted:
                role.permissions.remove(perm)
        for obj, action in sorted(wanted - set(have)):
            role.permissions.append(RolePermission(object_type=obj, action=action))
        scopes = {s.object_type: s for s in role.data_scopes}
        for obj, scope in spec["scopes"].items():
            if obj in scopes:
                scopes[obj].scope = scope
            else:
                role.data_scopes.append(RoleDataScope(object_type=obj, scope=scope, department_ids=[], employee_ids=[]))
        roles[spec["code"]] = role
    db.session.flush()
    return roles


def find_role(org_id: int, code: str) -> Role:
    role = db.session.scalars(
        select(Role).where(Role.code == code, (Role.org_id == org_id) | Role.org_id.is_(None))
        .order_by(Role.org_id.is_(None))  # an organisation's own role wins over a built-in one
    ).first()
    if role is None:
        raise NotFound(f"角色不存在：{code}", fields={"role": "unknown role"})
    return role


def employee_names(ids) -> dict[int, str]:
    """Employee id → name for the given ids (one query; none for an empty set)."""
    ids = {i for i in ids if i}
    return dict(db.session.execute(select(Employee.id, Employee.name).where(Employee.id.in_(ids))).all()) if ids else {}


def manager_of(employee_id: int) -> int | None:
    """The holder of the position the employee's primary position reports to."""
    pos_id = db.session.scalars(select(EmployeePosition.position_id).where(
        EmployeePosition.employee_id == employee_id).order_by(EmployeePosition.primary.desc())).first()
    boss_pos = db.session.get(Position, pos_id).reports_to_id if pos_id else None
    while boss_pos is not None:
        holder = db.session.scalars(select(EmployeePosition.employee_id).where(EmployeePosition.position_id == boss_pos)).first()
        if holder:
            return holder
        boss_pos = db.session.get(Position, boss_pos).reports_to_id
    return None


def employees_with_role(org_id: int, code: str) -> list[Employee]:
    """Active employees whose active user holds the role ``code`` (dispatchers, engineers...)."""
    from crm_core.org.models import UserRole

    return list(db.session.scalars(
        select(Employee).join(User, User.employee_id == Employee.id).join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Employee.org_id == org_id, Role.code == code, Employee.active.is_(True), User.active.is_(True))
        .distinct().order_by(Employee.id)))


# Other areas set up their defaults for an organisation here (org imports none of them).
_on_organization_created: list = []


def on_organization_created(hook) -> None:
    """``hook(org_id)`` runs when :func:`get_or_create_organization` saves an organisation."""
    _on_organization_created.append(hook)


def get_or_create_organization(code: str, name: str, functions: tuple[str, ...] = ("sales", "marketing", "service")) -> Organization:
    org = db.session.scalars(select(Organization).where(Organization.code == code)).first()
    if org is None:
        org = Organization(code=code, name=name)
        db.session.add(org)
    org.name = name
    org.sales_enabled = "sales" in functions
    org.marketing_enabled = "marketing" in functions
    org.service_enabled = "service" in functions
    db.session.flush()
    for hook in _on_organization_created:
        hook(org.id)  # e.g. the default collision rules, at creation, so concurrent first saves cannot each create a set
    return org


def upsert_department(org: Organization, code: str, name: str, parent: Department | None = None,
                      function: str | None = None) -> Department:
    dept = db.session.scalars(select(Department).where(Department.org_id == org.id, Department.code == code)).first()
    if dept is None:
        dept = Department(org_id=org.id, code=code)
        db.session.add(dept)
    dept.name, dept.parent_id, dept.function = name, parent.id if parent else None, function
    db.session.flush()
    return dept


def upsert_position(org: Organization, code: str, name: str, department: Department,
                    reports_to: Position | None = None) -> Position:
    pos = db.session.scalars(select(Position).where(Position.org_id == org.id, Position.code == code)).first()
    if pos is None:
        pos = Position(org_id=org.id, code=code)
        db.session.add(pos)
    pos.name, pos.department_id = name, department.id
    pos.reports_to_id = reports_to.id if reports_to else None
    db.session.flush()
    _check_no_cycle(pos)
    return pos


def _check_no_cycle(pos: Position) -> None:
    seen = {pos.id}
    cur = pos.reports_to_id
    while cur is not None:
        if cur in seen:
            raise ValidationFailed("汇报关系不能形成循环。", fields={"reports_to_id": "cycle"})
        seen.add(cur)
        cur = db.session.get(Position, cur).reports_to_id


def upsert_employee(org: Organization, code: str, name: str, position: Position | None = None,
                    phone: str | None = None, email: str | None = None) -> Employee:
    emp = db.session.scalars(select(Employee).where(Employee.org_id == org.id, Employee.code == code)).first()
    if emp is None:
        emp = Employee(org_id=org.id, code=code, name=name)
        db.session.add(emp)
    emp.name, emp.phone, emp.email = name, phone, email
    db.session.flush()
    if position is not None and not any(link.position_id == position.id for link in emp.positions):
        for link in emp.positions:
            link.primary = False
        emp.positions.append(EmployeePosition(position_id=position.id, primary=True))
        db.session.flush()
    return emp


def create_user(org: Organization, username: str, password: str, role_codes: list[str],
                employee: Employee | None = None, *, update_password: bool = True) -> User:
    """Create or update a user. Username 3–64 characters, password at least 8."""
    username = (username or "").strip()
    if not (3 <= len(username) <= 64):
        raise ValidationFailed("用户名需 3–64 个字符。", fields={"username": "length 3-64"})
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"密码至少 {MIN_PASSWORD_LENGTH} 位。", fields={"password": f"min length {MIN_PASSWORD_LENGTH}"})
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is not None and user.org_id != org.id:
        raise Conflict(f"用户名 {username} 已被其他组织使用。", fields={"username": "taken"})
    if user is None:
        user = User(org_id=org.id, username=username, password_hash=hash_password(password))
        db.session.add(user)
    elif update_password and not verify_password(user.password_hash, password):
        user.password_hash = hash_password(password)
    user.employee_id = employee.id if employee else user.employee_id
    user.roles = [find_role(org.id, code) for code in role_codes]
    db.session.flush()
    return user


@service
def set_role_grants(actor: Actor, role_id: int, permissions: list[tuple[str, str]],
                    scopes: dict[str, dict]) -> Role:
    """Replace an organisation role's function permissions and data scopes."""
    actor.require("role", "edit")
    role = db.session.get(Role, role_id)
    if role is None or role.org_id != actor.org_id:
        raise NotFound("角色不存在或为内置角色（内置角色不可修改，请复制后修改）。")
    errors = {}
    for obj, action in permissions:
        if obj not in OBJECTS or action not in ACTIONS:
            errors[f"permissions.{obj}:{action}"] = "unknown object or action"
    for obj, spec in scopes.items():
        if obj not in OBJECTS or spec.get("scope") not in DATA_SCOPES:
            errors[f"scopes.{obj}"] = "unknown object or scope"
    if errors:
        raise ValidationFailed("权限设置有误。", fields=errors)
    role.permissions, role.data_scopes = [], []
    db.session.flush()  # the old rows go first: a grant kept across the edit would collide with itself
    role.permissions = [RolePermission(object_type=o, action=a) for o, a in sorted(set(permissions))]
    role.data_scopes = [RoleDataScope(object_type=o, scope=s["scope"], department_ids=list(s.get("department_ids", [])),
                                      employee_ids=list(s.get("employee_ids", []))) for o, s in scopes.items()]
    db.session.flush()
    return role


@service
def share_record(actor: Actor, object_type: str, object_id: int, employee_id: int) -> RecordShare:
    """Share one record with a colleague outside their data scope (they may then view it)."""
    from crm_core.org.permissions import get_visible

    model = _scoped_models().get(object_type)
    if model is None:
        raise ValidationFailed("该对象不支持共享。", fields={"object_type": "not shareable"})
    get_visible(actor, model, object_id, action="edit")
    emp = db.session.get(Employee, employee_id)
    if emp is None or emp.org_id != actor.org_id:
        raise NotFound("职员不存在。", fields={"employee_id": "unknown"})
    share = db.session.scalars(select(RecordShare).where(
        RecordShare.object_type == object_type, RecordShare.object_id == object_id,
        RecordShare.employee_id == employee_id)).first()
    if share is None:
        share = RecordShare(object_type=object_type, object_id=object_id, employee_id=employee_id,
                            shared_by_user_id=actor.user_id, created_at=utcnow())
        db.session.add(share)
        db.session.flush()
    return share


def _owned_models() -> list:
    """Every owned model (several may share a data-scope object: activity — activities and work plans; contract —
    contracts and sales targets), in a stable order."""
    from crm_core.db import Base
    from crm_core.mixins import OwnedRecord

    return sorted((m.class_ for m in Base.registry.mappers if issubclass(m.class_, OwnedRecord) and m.class_.__scope_object__),
                  key=lambda cls: cls.__tablename__)


def _scoped_models() -> dict:
    """Data-scope object -> its main model (the table of that name when several share the object; the registry's
    order is arbitrary, so this must not depend on it)."""
    out: dict = {}
    for cls in _owned_models():
        obj = cls.__scope_object__
        if obj not in out or cls.__tablename__ == obj:
            out[obj] = cls
    return out


def org_chart(actor: Actor) -> dict:
    """The organisation as a tree: departments, their positions with holders and reporting lines."""
    actor.require("organization", "view")
    org = db.session.get(Organization, actor.org_id)
    depts = db.session.scalars(select(Department).where(Department.org_id == org.id).order_by(Department.id)).all()
    positions = db.session.scalars(select(Position).where(Position.org_id == org.id).order_by(Position.id)).all()
    pos_by_id = {p.id: p for p in positions}
    holders: dict[int, list[dict]] = {}
    for link in db.session.scalars(select(EmployeePosition).join(Position).where(Position.org_id == org.id)):
        holders.setdefault(link.position_id, []).append(
            {"id": link.employee.id, "name": link.employee.name, "phone": link.employee.phone, "primary": link.primary})

    def pos_dict(p: Position) -> dict:
        boss = pos_by_id.get(p.reports_to_id)
        return {"id": p.id, "code": p.code, "name": p.name, "reports_to_id": p.reports_to_id,
                "reports_to": boss.name if boss else None, "employees": holders.get(p.id, [])}

    nodes = {d.id: {"id": d.id, "code": d.code, "name": d.name, "function": d.function,
                    "positions": [pos_dict(p) for p in positions if p.department_id == d.id], "children": []}
             for d in depts}
    roots = []
    for d in depts:
        (nodes[d.parent_id]["children"] if d.parent_id in nodes else roots).append(nodes[d.id])

    # the reporting hierarchy of positions, top-down
    kids: dict[int | None, list[Position]] = {}
    for p in positions:
        kids.setdefault(p.reports_to_id if p.reports_to_id in pos_by_id else None, []).append(p)

    def line(p: Position, depth: int = 0) -> dict:
        if depth > 50:
            return {**pos_dict(p), "subordinates": []}
        return {**pos_dict(p), "department": p.department.name, "subordinates": [line(c, depth + 1) for c in kids.get(p.id, [])]}

    return {"organization": {"id": org.id, "code": org.code, "name": org.name, "functions": org.functions},
            "departments": roots, "reporting": [line(p) for p in kids.get(None, [])]}


# --- the role editor (#16 item 1) ----------------------------------------------------------------
@service
def copy_role(actor: Actor, from_role_id: int, name: str) -> Role:
    """复制角色: a new organisation role with another's permissions and data scopes, to edit (built-in
    roles are shared by every organisation and stay as shipped). An all-powerful source (the
    administrator) is copied as every permission with organisation-wide scopes, so it can be narrowed."""
    actor.require("role", "create")
    source = db.session.get(Role, from_role_id)
    if source is None or source.org_id not in (None, actor.org_id):
        raise NotFound("角色不存在。")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("请填写新角色的名称。", fields={"name": "required"})
    if len(name) > 100:
        raise ValidationFailed("角色名称最多 100 个字。", fields={"name": "too_long"})
    if db.session.scalar(select(Role.id).where(Role.org_id == actor.org_id, Role.name == name)):
        raise Conflict(f"已有名为「{name}」的角色。", fields={"name": "taken"})
    n = db.session.scalar(select(func.count(Role.id)).where(Role.org_id == actor.org_id)) or 0
    code = f"custom_{n + 1}"
    while db.session.scalar(select(Role.id).where(Role.code == code, (Role.org_id == actor.org_id) | Role.org_id.is_(None))):
        n += 1
        code = f"custom_{n + 1}"
    role = Role(org_id=actor.org_id, code=code, name=name)
    db.session.add(role)
    db.session.flush()
    if source.grants_all:
        perms = [(o, a) for o in OBJECTS for a in ACTIONS]
        scopes = {o: {"scope": "organization"} for o in _scoped_models()}
    else:
        perms = [(p.object_type, p.action) for p in source.permissions]
        scopes = {s.object_type: {"scope": s.scope, "department_ids": s.department_ids, "employee_ids": s.employee_ids}
                  for s in source.data_scopes}
    return set_role_grants(actor, role.id, perms, scopes)


def visibility_preview(actor: Actor, user_id: int) -> dict:
    """这个用户能看到什么: for one user, per business object, what they may do, which records their data
    scope covers, and how many records that is now — worked out by the very filter every list uses."""
    from crm_core.errors import DomainError
    from crm_core.org.permissions import SCOPE_LABELS, load_actor, visible_clause

    actor.require("role", "view")
    user = db.session.get(User, user_id)
    if user is None or user.org_id != actor.org_id:
        raise NotFound("用户不存在。")
    them = load_actor(user)
    models = _scoped_models()
    rows = []
    for obj, (label, function) in OBJECTS.items():
        actions = [ACTIONS[a] for a in ACTIONS if them.can(obj, a)]
        row = {"object": obj, "label": label, "actions": actions, "function_off": bool(function and function not in them.enabled_functions),
               "scope": None, "count": None}
        if obj in models and them.can(obj, "view"):
            row["scope"] = SCOPE_LABELS.get(them.widest_scope(obj))
            try:
                row["count"] = db.session.scalar(select(func.count()).select_from(models[obj]).where(
                    visible_clause(them, models[obj], obj))) or 0
            except DomainError as exc:  # e.g. a user without an employee sees no owned records
                row["scope"], row["count"] = exc.message, 0
        rows.append(row)
    return {"user": {"id": user.id, "username": user.username, "roles": [r.name for r in user.roles],
                     "employee": them.label}, "rows": rows}
