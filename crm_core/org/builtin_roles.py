"""Roles that exist right after ``wxcrm db upgrade``, shared by every organisation.

Pure data, so the migration that seeds them and :func:`ensure_builtin_roles` agree.
"""
from __future__ import annotations

SALES_OBJECTS = ("customer", "contact", "lead", "opportunity", "activity", "checkin", "quote", "contract", "receipt")
SERVICE_OBJECTS = ("ticket", "work_order", "product_archive")
MARKETING_OBJECTS = ("material", "campaign")

_ALL = ("view", "create", "edit", "delete", "export")


def _grant(objects, actions):
    return [(o, a) for o in objects for a in actions]


BUILTIN_ROLES: list[dict] = [
    {"code": "admin", "name": "系统管理员", "grants_all": True, "permissions": [], "scopes": {}},
    {
        "code": "sales_manager", "name": "销售经理", "grants_all": False,
        "permissions": _grant(SALES_OBJECTS, _ALL) + _grant(("lead", "customer", "opportunity", "activity", "quote", "contract"), ("assign", "approve"))
        + [("checkin", "approve")]  # reviews the flags on the team's check-ins
        + _grant(("expense",), _ALL + ("approve",))  # the team's 费用申请: approves and pays them
        + [("product", "view"), ("product_archive", "view"), ("product_archive", "create"), ("product_archive", "edit"),
           ("organization", "view")],
        "scopes": {o: "subordinates" for o in SALES_OBJECTS + ("product_archive", "expense")},
    },
    {
        "code": "salesperson", "name": "销售员", "grants_all": False,
        "permissions": _grant(SALES_OBJECTS + ("expense",), ("view", "create", "edit")) + [("product", "view"), ("product_archive", "view"),
                                                                                         ("product_archive", "create")],
        "scopes": {},  # default: self
    },
    {
        "code": "dispatcher", "name": "服务调度", "grants_all": False,
        "permissions": _grant(SERVICE_OBJECTS, ("view", "create", "edit", "export")) + [("ticket", "dispatch"), ("work_order", "dispatch")]
        + [("customer", "view"), ("contact", "view"), ("product", "view"), ("follower", "view"), ("follower", "edit"),
           ("organization", "view"), ("expense", "view"), ("expense", "export")],
        "scopes": {o: "organization" for o in SERVICE_OBJECTS + ("customer", "contact", "expense")},
    },
    {
        "code": "engineer", "name": "服务工程师", "grants_all": False,
        # engineers check in on arrival at the customer's site (移动工作台), and see their own check-ins
        "permissions": _grant(("ticket", "work_order"), ("view", "edit")) + [("product_archive", "view"), ("customer", "view"), ("contact", "view"), ("product", "view"),
                                                                            ("checkin", "view"), ("checkin", "create"),
                                                                            ("expense", "view"), ("expense", "create")],  # 服务费用
        "scopes": {},
    },
    {
        "code": "marketer", "name": "市场专员", "grants_all": False,
        "permissions": _grant(MARKETING_OBJECTS, _ALL) + [("lead", "view"), ("lead", "create"), ("follower", "view"), ("product", "view"),
                                                          ("wechat_account", "view"), ("wechat_account", "edit"),  # runs the 公众号
                                                          # reads customers and contacts to build the segments it pushes to
                                                          ("customer", "view"), ("contact", "view")],
        "scopes": {"material": "organization", "campaign": "organization", "lead": "organization",
                   "customer": "organization", "contact": "organization"},
    },
]


def sync_builtin_roles(bind) -> None:
    """Add missing built-in roles, permissions and scopes with Core SQL (for migrations:
    every migration that changes :data:`BUILTIN_ROLES` calls this). Never removes grants an
    administrator may rely on; :func:`crm_core.org.organization.ensure_builtin_roles` does the
    exact sync at run time."""
    from datetime import datetime

    import sqlalchemy as sa

    role = sa.table("role", sa.column("id", sa.Integer), sa.column("org_id", sa.Integer), sa.column("code", sa.String),
                    sa.column("name", sa.String), sa.column("builtin", sa.Boolean), sa.column("grants_all", sa.Boolean),
                    sa.column("created_at", sa.DateTime), sa.column("updated_at", sa.DateTime))
    perm = sa.table("role_permission", sa.column("role_id", sa.Integer), sa.column("object_type", sa.String),
                    sa.column("action", sa.String))
    scope = sa.table("role_data_scope", sa.column("role_id", sa.Integer), sa.column("object_type", sa.String),
                     sa.column("scope", sa.String), sa.column("department_ids", sa.JSON), sa.column("employee_ids", sa.JSON))
    now = datetime.utcnow()
    for spec in BUILTIN_ROLES:
        role_id = bind.execute(sa.select(role.c.id).where(role.c.code == spec["code"], role.c.org_id.is_(None))).scalar()
        if role_id is None:
            bind.execute(role.insert().values(org_id=None, code=spec["code"], name=spec["name"], builtin=True,
                                              grants_all=spec["grants_all"], created_at=now, updated_at=now))
            role_id = bind.execute(sa.select(role.c.id).where(role.c.code == spec["code"], role.c.org_id.is_(None))).scalar()
        have = set(bind.execute(sa.select(perm.c.object_type, perm.c.action).where(perm.c.role_id == role_id)).all())
        for obj, action in spec["permissions"]:
            if (obj, action) not in have:
                bind.execute(perm.insert().values(role_id=role_id, object_type=obj, action=action))
        scoped = set(bind.execute(sa.select(scope.c.object_type).where(scope.c.role_id == role_id)).scalars())
        for obj, sc in spec["scopes"].items():
            if obj not in scoped:
                bind.execute(scope.insert().values(role_id=role_id, object_type=obj, scope=sc, department_ids=[], employee_ids=[]))
    # running processes keep each user's roles keyed by the organisation's authz_version
    # (crm_core.org.permissions.load_actor): move it, so new grants apply without a restart
    if "authz_version" in {c["name"] for c in sa.inspect(bind).get_columns("organization")}:
        bind.execute(sa.text("UPDATE organization SET authz_version = authz_version + 1"))
