"""Function permissions and data scopes (seed section 2.3).

Function permissions answer "may this user do ACTION on OBJECT at all"; data scopes answer
"which records of OBJECT may this user see". Both come from the user's roles. There is
**one** data-scope filter, :func:`visible_clause`; every list and lookup of every feature
goes through :func:`scoped_select` or :func:`get_visible`, so the rule cannot drift.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, false, inspect, or_, select, true, update
from sqlalchemy.orm import Session

from crm_core.db import db
from crm_core.errors import FunctionDisabled, NoEmployeeLinked, NotFound, PermissionDenied

# object type -> (Chinese label, business function it belongs to or None for system objects)
OBJECTS: dict[str, tuple[str, str | None]] = {
    "customer": ("客户", "sales"),
    "contact": ("联系人", "sales"),
    "lead": ("线索", "sales"),
    "opportunity": ("商机", "sales"),
    "activity": ("活动", "sales"),
    "checkin": ("移动签到", "sales"),
    "quote": ("报价单", "sales"),
    "contract": ("合同", "sales"),
    "receipt": ("回款", "sales"),
    "expense": ("费用申请", None),  # filed by salespeople and engineers alike
    "product": ("产品", None),
    "product_archive": ("产品档案", "service"),
    "ticket": ("客户反馈", "service"),
    "work_order": ("服务工单", "service"),
    "material": ("营销素材", "marketing"),
    "campaign": ("营销方案", "marketing"),
    "follower": ("微信粉丝", None),
    "wechat_account": ("公众号设置", None),  # auto-reply rules, the custom menu
    "organization": ("组织架构", None),
    "user": ("用户", None),
    "role": ("角色", None),
    "audit": ("审计日志", None),
    "outbox": ("消息发件箱", None),
}

ACTIONS: dict[str, str] = {
    "view": "查看",
    "create": "新增",
    "edit": "修改",
    "delete": "删除",
    "assign": "分配",
    "dispatch": "派工",
    "approve": "审批",
    "export": "导出",
}

FUNCTION_LABELS = {"sales": "销售职能", "marketing": "营销职能", "service": "服务职能"}
SCOPE_LABELS = {
    "self": "本人",
    "subordinates": "本人及下属",
    "department": "本部门及下级部门",
    "organization": "本组织",
    "listed": "指定部门/职员",
}
# the broader scope wins when a user holds several roles
_SCOPE_RANK = {"self": 0, "listed": 1, "subordinates": 2, "department": 3, "organization": 4}

NO_EMPLOYEE_MESSAGE = (
    "当前用户没有关联职员，无法按数据权限查看业务数据。请管理员在「用户」中为该用户关联职员，"
    "并为职员维护岗位。"
)


@dataclass
class Actor:
    """The acting user, with everything permission checks need, loaded once per request."""

    user_id: int | None
    username: str
    org_id: int
    employee_id: int | None
    role_codes: list[str] = field(default_factory=list)
    grants_all: bool = False
    permissions: set[tuple[str, str]] = field(default_factory=set)
    # object type -> list of (scope, department_ids, employee_ids)
    scopes: dict[str, list[tuple[str, list[int], list[int]]]] = field(default_factory=dict)
    enabled_functions: set[str] = field(default_factory=set)
    label: str = ""
    _subtree: list[int] | None = None
    _departments: list[int] | None = None
    _org_employees: int | None = None

    @classmethod
    def system(cls, org_id: int, label: str = "系统") -> "Actor":
        """An actor for jobs and CLI commands: every permission, organisation-wide."""
        return cls(user_id=None, username="system", org_id=org_id, employee_id=None, grants_all=True,
                   enabled_functions={"sales", "marketing", "service"}, label=label, role_codes=["system"])

    # --- function permissions -------------------------------------------------------------
    def can(self, object_type: str, action: str) -> bool:
        """True when the user may do ``action`` on ``object_type`` (function enabled too)."""
        function = OBJECTS.get(object_type, ("", None))[1]
        if function and function not in self.enabled_functions:
            return False
        return self.grants_all or (object_type, action) in self.permissions

    def require(self, object_type: str, action: str) -> None:
        """Raise 403 unless the user may do ``action`` on ``object_type``."""
        label, function = OBJECTS.get(object_type, (object_type, None))
        if function and function not in self.enabled_functions:
            raise FunctionDisabled(f"本组织未启用{FUNCTION_LABELS[function]}，不能使用「{label}」。")
        if not (self.grants_all or (object_type, action) in self.permissions):
            raise PermissionDenied(
                f"没有权限：{label}-{ACTIONS.get(action, action)}。请联系管理员为您的角色授权。",
                extra={"object": object_type, "action": action},
            )

    # --- data scope -----------------------------------------------------------------------
    def scope_grants(self, object_type: str) -> list[tuple[str, list[int], list[int]]]:
        if self.grants_all:
            return [("organization", [], [])]
        return self.scopes.get(object_type) or [("self", [], [])]

    def widest_scope(self, object_type: str) -> str:
        return max((g[0] for g in self.scope_grants(object_type)), key=_SCOPE_RANK.__getitem__)

    def subordinate_employee_ids(self) -> list[int]:
        """The employee and everyone in the reporting subtree below their positions."""
        if self._subtree is None:
            self._subtree = subtree_employee_ids(self.org_id, self.employee_id)
        return self._subtree

    def org_employee_count(self) -> int:
        if self._org_employees is None:
            from sqlalchemy import func

            from crm_core.org.models import Employee

            self._org_employees = db.session.scalar(select(func.count(Employee.id)).where(Employee.org_id == self.org_id)) or 0
        return self._org_employees

    def department_ids(self) -> list[int]:
        """The employee's departments and all departments below them."""
        if self._departments is None:
            self._departments = department_tree_ids(self.org_id, self.employee_id)
        return self._departments

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "user_id": self.user_id,
            "employee_id": self.employee_id,
            "org_id": self.org_id,
            "roles": self.role_codes,
            "functions": sorted(self.enabled_functions),
            "permissions": sorted(f"{o}:{a}" for o, a in self.permissions) if not self.grants_all else ["*"],
        }


_ROLE_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()  # engine -> {(user, version): roles}
_ROLE_CACHE_SIZE = 4096


def load_actor(user) -> Actor:
    """Build the :class:`Actor` for a :class:`~crm_core.models.User`.

    Runs on every request, so it reads plain rows (no ORM objects), in one round trip when
    nothing changed: the organisation's functions and its ``authz_version`` with the
    employee's name. The user's roles, permissions and data scopes are kept per process,
    keyed by the user and that version; the version moves in the same transaction as any
    change to a role, its permissions or scopes, or the user's roles (:func:`_bump_authz`),
    so a change applies to the very next request, in every process.
    """
    from crm_core.org.models import BUSINESS_FUNCTIONS, Employee, Organization

    head = db.session.execute(
        select(Organization.sales_enabled, Organization.marketing_enabled, Organization.service_enabled,
               Organization.authz_version, Employee.name)
        .select_from(Organization).outerjoin(Employee, Employee.id == user.employee_id)
        .where(Organization.id == user.org_id)).first()
    flags, version, name = (head[:3], head[3], head[4]) if head else ((), None, None)
    actor = Actor(
        user_id=user.id,
        username=user.username,
        org_id=user.org_id,
        employee_id=user.employee_id,
        enabled_functions={f for f, on in zip(BUSINESS_FUNCTIONS, flags) if on},
    )
    cache = _ROLE_CACHE.setdefault(db.engine, {})
    roles = cache.get((user.id, user.org_id, version)) if version is not None else None
    if roles is None:
        roles = _load_roles(user)
        if version is not None:
            if len(cache) >= _ROLE_CACHE_SIZE:
                cache.clear()
            cache[(user.id, user.org_id, version)] = roles
    codes, grants_all, permissions, scopes = roles
    actor.role_codes, actor.grants_all, actor.permissions = list(codes), grants_all, set(permissions)
    actor.scopes = {obj: [(scope, list(depts), list(emps)) for scope, depts, emps in grants] for obj, grants in scopes}
    actor.label = name or user.username
    return actor


def _load_roles(user) -> tuple:
    """(role codes, grants all, permissions, scopes) of a user, as immutable values."""
    from crm_core.org.models import Role, RoleDataScope, RolePermission, UserRole

    roles = db.session.execute(
        select(Role.id, Role.code, Role.org_id, Role.grants_all).join(UserRole, UserRole.role_id == Role.id)
        .where(UserRole.user_id == user.id)).all()
    role_ids = [r.id for r in roles if r.org_id in (None, user.org_id)]
    permissions: frozenset = frozenset()
    scopes: dict[str, list] = {}
    if role_ids:
        permissions = frozenset(tuple(p) for p in db.session.execute(
            select(RolePermission.object_type, RolePermission.action).where(RolePermission.role_id.in_(role_ids))))
        for obj, scope, depts, emps in db.session.execute(
                select(RoleDataScope.object_type, RoleDataScope.scope, RoleDataScope.department_ids,
                       RoleDataScope.employee_ids).where(RoleDataScope.role_id.in_(role_ids))):
            scopes.setdefault(obj, []).append((scope, tuple(depts or ()), tuple(emps or ())))
    return (tuple(r.code for r in roles), any(r.grants_all for r in roles if r.org_id in (None, user.org_id)),
            permissions, tuple((obj, tuple(grants)) for obj, grants in scopes.items()))


@event.listens_for(Session, "after_flush")
def _bump_authz(session, flush_context) -> None:
    """Move ``Organization.authz_version`` for every organisation whose roles, role permissions,
    data scopes or role assignments this flush changed (a built-in role: every organisation)."""
    from crm_core.org.models import Organization, Role, RoleDataScope, RolePermission, User

    orgs: set[int | None] = set()
    role_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, User) and (obj in session.new or obj in session.deleted or any(
                inspect(obj).attrs[name].history.has_changes() for name in ("roles", "org_id", "employee_id"))):
            orgs.add(obj.org_id)  # (a login's last_login_at does not move it)
        elif isinstance(obj, Role):
            orgs.add(obj.org_id if obj.org_id is not None else _ALL)
        elif isinstance(obj, (RolePermission, RoleDataScope)):
            if obj.role_id is None:
                orgs.add(_ALL)
            else:
                role_ids.add(obj.role_id)
    if not orgs and not role_ids:
        return
    conn = session.connection()
    if role_ids:
        orgs.update(o if o is not None else _ALL for o in conn.execute(select(Role.org_id).where(Role.id.in_(role_ids))).scalars())
    bump = update(Organization).values(authz_version=Organization.authz_version + 1, updated_at=Organization.updated_at)
    if _ALL not in orgs:
        bump = bump.where(Organization.id.in_([o for o in orgs if o is not None]))
    conn.execute(bump)


_ALL = -1  # "every organisation" in _bump_authz


def subtree_employee_ids(org_id: int, employee_id: int | None) -> list[int]:
    """Employees holding a position at or below the given employee's positions.

    One round trip: a recursive CTE walks ``reports_to`` downwards (UNION, not UNION ALL,
    so a reporting cycle created by a bad edit terminates).
    """
    from crm_core.org.models import EmployeePosition, Position

    if employee_id is None:
        return []
    start = select(EmployeePosition.position_id.label("id")).where(EmployeePosition.employee_id == employee_id)
    sub = start.cte("subtree", recursive=True)
    step = select(Position.id).join(sub, Position.reports_to_id == sub.c.id).where(Position.org_id == org_id)
    sub = sub.union(step)
    ids = set(db.session.scalars(
        select(EmployeePosition.employee_id).where(EmployeePosition.position_id.in_(select(sub.c.id)))).all())
    ids.add(employee_id)
    return sorted(ids)


def department_tree_ids(org_id: int, employee_id: int | None) -> list[int]:
    """The employee's departments (through their positions) and their sub-departments."""
    from crm_core.org.models import Department, EmployeePosition, Position

    if employee_id is None:
        return []
    mine = db.session.scalars(
        select(Position.department_id).join(EmployeePosition, EmployeePosition.position_id == Position.id)
        .where(EmployeePosition.employee_id == employee_id)
    ).all()
    rows = db.session.execute(select(Department.id, Department.parent_id).where(Department.org_id == org_id)).all()
    children: dict[int, list[int]] = {}
    for did, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(did)
    seen: set[int] = set()
    stack = list(mine)
    while stack:
        did = stack.pop()
        if did in seen:
            continue
        seen.add(did)
        stack.extend(children.get(did, ()))
    return sorted(seen)


def visible_clause(actor: Actor, model, object_type: str | None = None):
    """THE data-scope filter: a WHERE clause selecting the rows of ``model`` the actor sees.

    Visible are: rows in the actor's organisation that (a) the scope of any of their roles
    covers (self, subordinates, department, organisation, listed), or (b) are assigned to
    the actor through one of the model's assignee columns, or (c) were shared with them.
    A user with no linked employee has no scope at all: :class:`NoEmployeeLinked`.
    """
    from crm_core.org.models import RecordShare

    object_type = object_type or model.__scope_object__
    in_org = model.org_id == actor.org_id
    grants = actor.scope_grants(object_type)
    if any(g[0] == "organization" for g in grants):
        return in_org
    if actor.employee_id is None:
        if actor.user_id is None:  # system actors without org scope see nothing
            return false()
        raise NoEmployeeLinked(NO_EMPLOYEE_MESSAGE)
    owners: set[int] = {actor.employee_id}
    departments: set[int] = set()
    for scope, dept_ids, emp_ids in grants:
        if scope == "subordinates":
            owners.update(actor.subordinate_employee_ids())
        elif scope == "department":
            departments.update(actor.department_ids())
        elif scope == "listed":
            owners.update(emp_ids)
            departments.update(dept_ids)
    if len(owners) > 50 and len(owners) >= actor.org_employee_count():
        return in_org  # the subtree is the whole organisation (a general manager): no list needed
    conds = [model.owner_id.in_(sorted(owners)) if len(owners) > 1 else model.owner_id == actor.employee_id]
    if departments:
        conds.append(model.department_id.in_(sorted(departments)))
    for column in getattr(model, "__scope_assignee_columns__", ()):
        conds.append(getattr(model, column) == actor.employee_id)
    # shared records: usually none or a few, so inline their ids (an OR with a subquery makes
    # PostgreSQL scan the table); very many fall back to the subquery
    shared_q = select(RecordShare.object_id).where(RecordShare.employee_id == actor.employee_id,
                                                    RecordShare.object_type == object_type)
    shared = db.session.scalars(shared_q.limit(501)).all()
    if len(shared) > 500:
        conds.append(model.id.in_(shared_q))
    elif shared:
        conds.append(model.id.in_(sorted(shared)))
    return in_org & (or_(*conds) if len(conds) > 1 else conds[0])


def scoped_select(actor: Actor, model, object_type: str | None = None, action: str = "view"):
    """``select(model)`` limited to what the actor may see; checks the view permission."""
    object_type = object_type or model.__scope_object__
    actor.require(object_type, action)
    return select(model).where(visible_clause(actor, model, object_type))


def get_visible(actor: Actor, model, record_id: int, object_type: str | None = None, action: str = "view"):
    """Load one record through the data-scope filter; 404 when it does not exist *or* is
    outside the actor's scope (so ids cannot be probed)."""
    object_type = object_type or model.__scope_object__
    obj = db.session.scalars(scoped_select(actor, model, object_type, action).where(model.id == record_id)).first()
    if obj is None:
        label = OBJECTS.get(object_type, (object_type,))[0]
        raise NotFound(f"{label}不存在或不在您的数据权限范围内。")
    return obj


# --- referenced ids -------------------------------------------------------------------------
# A body or query field that names another record (``customer_id``, ``opportunity_id``...) is
# registered once by the area that owns the model; any area resolves it through the actor's data
# scope without importing that area.
_REFERENCES: dict[str, tuple[type, str | None]] = {}


def register_reference(field: str, model, object_type: str | None = None) -> None:
    """Declare that ``field`` names a row of ``model`` (scope object ``object_type``, default the model's)."""
    _REFERENCES[field] = (model, object_type)


def resolve_reference(actor: Actor, field: str, record_id: int, action: str = "view", *, model=None,
                      object_type: str | None = None):
    """The record ``field`` names, loaded through the data-scope filter: 404 naming ``field`` when
    it is missing, in another organisation or outside the actor's scope. ``model`` overrides the
    registry for fields whose name is not unique across the product (``parent_id``)."""
    if model is None:
        model, registered_type = _REFERENCES[field]
        object_type = object_type or registered_type
    try:
        return get_visible(actor, model, record_id, object_type=object_type, action=action)
    except (NoEmployeeLinked, FunctionDisabled):
        raise
    except (NotFound, PermissionDenied):  # no right to that kind of record: to this actor it does not exist
        label = OBJECTS.get(object_type or model.__scope_object__, (object_type,))[0]
        raise NotFound(f"{label}不存在或不在您的数据权限范围内。", fields={field: "不存在或不在您的数据权限范围内"}) from None


def everything_visible():
    """A clause that is always true (for explicit org-wide system reads)."""
    return true()
