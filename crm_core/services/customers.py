"""Customers (the CRM core issue grows this into the full customer service)."""
from __future__ import annotations

from sqlalchemy import func, or_, select

from crm_core.context import service
from crm_core.db import db
from crm_core.errors import ValidationFailed
from crm_core.models import Customer, Employee
from crm_core.permissions import Actor, get_visible, scoped_select

COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")


@service
def create_customer(actor: Actor, data: dict) -> Customer:
    """Register a customer owned by the acting employee (or ``owner_id`` when allowed)."""
    actor.require("customer", "create")
    owner_id = data.get("owner_id") or actor.employee_id
    if owner_id is None:
        raise ValidationFailed("当前用户没有关联职员，请指定负责人（owner_id）。", fields={"owner_id": "required"})
    owner = db.session.get(Employee, owner_id)
    if owner is None or owner.org_id != actor.org_id:
        raise ValidationFailed("负责人不存在。", fields={"owner_id": "unknown employee"})
    if owner_id != actor.employee_id:
        actor.require("customer", "assign")
    site = data.get("site") or {}
    customer = Customer(
        org_id=actor.org_id, owner_id=owner.id, department_id=owner.department_id,
        name=data["name"].strip(), kind=data.get("kind") or "company", phone=data.get("phone"),
        address=data.get("address"), source=data.get("source") or "manual",
        site_lat=site.get("lat"), site_lng=site.get("lng"), site_coord_system=site.get("coord_system"),
    )
    db.session.add(customer)
    db.session.flush()
    return customer


def list_customers(actor: Actor, *, q: str | None = None, page: int = 1, per_page: int = 20) -> tuple[list[Customer], int]:
    """The customers the actor may see, newest first, optionally searched by name or phone."""
    stmt = scoped_select(actor, Customer)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Customer.name.like(like), Customer.phone.like(like)))
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.order_by(Customer.id.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)


def get_customer(actor: Actor, customer_id: int) -> Customer:
    return get_visible(actor, Customer, customer_id)


@service
def update_customer(actor: Actor, customer_id: int, data: dict) -> Customer:
    customer = get_visible(actor, Customer, customer_id, action="edit")
    for key in ("name", "phone", "address", "kind", "source"):
        if key in data and data[key] is not None:
            setattr(customer, key, data[key])
    if data.get("site"):
        customer.site_lat, customer.site_lng = data["site"]["lat"], data["site"]["lng"]
        customer.site_coord_system = data["site"]["coord_system"]
    db.session.flush()
    return customer


def customer_dict(c: Customer) -> dict:
    return {
        "id": c.id, "name": c.name, "kind": c.kind, "trading": c.trading, "phone": c.phone, "address": c.address,
        "site": ({"lat": c.site_lat, "lng": c.site_lng, "coord_system": c.site_coord_system}
                 if c.site_lat is not None else None),
        "source": c.source, "owner_id": c.owner_id, "department_id": c.department_id,
        "created_at": c.created_at.isoformat() + "Z" if c.created_at else None,
    }
