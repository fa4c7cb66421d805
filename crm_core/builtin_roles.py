"""Roles that exist right after ``wxcrm db upgrade``, shared by every organisation.

Pure data, so the migration that seeds them and :func:`ensure_builtin_roles` agree.
"""
from __future__ import annotations

SALES_OBJECTS = ("customer", "contact", "lead", "opportunity", "activity", "checkin")
SERVICE_OBJECTS = ("ticket", "work_order", "product_archive")
MARKETING_OBJECTS = ("material", "campaign")

_ALL = ("view", "create", "edit", "delete", "export")


def _grant(objects, actions):
    return [(o, a) for o in objects for a in actions]


BUILTIN_ROLES: list[dict] = [
    {"code": "admin", "name": "系统管理员", "grants_all": True, "permissions": [], "scopes": {}},
    {
        "code": "sales_manager", "name": "销售经理", "grants_all": False,
        "permissions": _grant(SALES_OBJECTS, _ALL) + _grant(("lead", "customer", "opportunity"), ("assign", "approve"))
        + [("product", "view"), ("product_archive", "view"), ("organization", "view")],
        "scopes": {o: "subordinates" for o in SALES_OBJECTS},
    },
    {
        "code": "salesperson", "name": "销售员", "grants_all": False,
        "permissions": _grant(SALES_OBJECTS, ("view", "create", "edit")) + [("product", "view"), ("product_archive", "view")],
        "scopes": {},  # default: self
    },
    {
        "code": "dispatcher", "name": "服务调度", "grants_all": False,
        "permissions": _grant(SERVICE_OBJECTS, ("view", "create", "edit", "export")) + [("ticket", "dispatch"), ("work_order", "dispatch")]
        + [("customer", "view"), ("contact", "view"), ("product", "view"), ("follower", "view"), ("organization", "view")],
        "scopes": {o: "organization" for o in SERVICE_OBJECTS + ("customer", "contact")},
    },
    {
        "code": "engineer", "name": "服务工程师", "grants_all": False,
        "permissions": _grant(("ticket", "work_order"), ("view", "edit")) + [("product_archive", "view"), ("customer", "view"), ("contact", "view"), ("product", "view")],
        "scopes": {},
    },
    {
        "code": "marketer", "name": "市场专员", "grants_all": False,
        "permissions": _grant(MARKETING_OBJECTS, _ALL) + [("lead", "view"), ("lead", "create"), ("follower", "view"), ("product", "view")],
        "scopes": {"material": "organization", "campaign": "organization", "lead": "organization"},
    },
]
