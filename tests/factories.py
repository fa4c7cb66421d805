"""Small factories for organisation data (STYLE.md: factories build data, fixtures stay small)."""
from __future__ import annotations

import itertools

from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.org.organization import (
    create_user,
    ensure_builtin_roles,
    get_or_create_organization,
    upsert_department,
    upsert_employee,
    upsert_position,
)

PASSWORD = "secret-pass-1"
_seq = itertools.count(1)


def make_org(code: str = "acme", name: str = "测试公司", functions=("sales", "marketing", "service")):
    ensure_builtin_roles()
    return get_or_create_organization(code, name, tuple(functions))


def make_team(org=None):
    """A three-level team: boss → manager → (rep1, rep2), plus a peer manager with rep3,
    and a user with no employee. Returns a dict of users by name."""
    org = org or make_org()
    hq = upsert_department(org, "HQ", "总部")
    sales = upsert_department(org, "S", "销售部", hq, "sales")
    east = upsert_department(org, "SE", "华东组", sales, "sales")
    west = upsert_department(org, "SW", "华西组", sales, "sales")
    boss_p = upsert_position(org, "BOSS", "总经理", hq)
    mgr_p = upsert_position(org, "MGR", "销售经理", east, boss_p)
    peer_p = upsert_position(org, "PEER", "销售经理", west, boss_p)
    rep1_p = upsert_position(org, "R1", "销售员", east, mgr_p)
    rep2_p = upsert_position(org, "R2", "销售员", east, mgr_p)
    rep3_p = upsert_position(org, "R3", "销售员", west, peer_p)
    users = {}
    for key, pos, role in [("boss", boss_p, "sales_manager"), ("manager", mgr_p, "sales_manager"),
                           ("peer", peer_p, "sales_manager"), ("rep1", rep1_p, "salesperson"),
                           ("rep2", rep2_p, "salesperson"), ("rep3", rep3_p, "salesperson")]:
        emp = upsert_employee(org, key.upper(), f"员工{key}", pos)
        users[key] = create_user(org, f"{org.code}.{key}", PASSWORD, [role], emp)
    users["admin"] = create_user(org, f"{org.code}.admin", PASSWORD, ["admin"],
                                 upsert_employee(org, "ADMIN", "管理员", boss_p))
    users["nobody"] = create_user(org, f"{org.code}.nobody", PASSWORD, ["salesperson"], None)
    db.session.flush()
    return users


def make_customer(owner_user, name: str | None = None, **kw) -> Customer:
    emp = owner_user.employee
    c = Customer(org_id=owner_user.org_id, owner_id=emp.id, department_id=emp.department_id,
                 name=name or f"客户{next(_seq)}", **kw)
    db.session.add(c)
    db.session.flush()
    return c
