"""Products and product archives (产品档案), warranty and its reminders."""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers.models import Customer, Product, ProductArchive
from crm_core.db import begin_savepoint, db, paginate
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.permissions import Actor, get_visible, scoped_select


def add_months(d: date, months: int) -> date:
    """``2026-01-31`` + 1 month = ``2026-02-28``: the warranty ends on the same day of the month or the last one."""
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@service
def create_product(actor: Actor, data: dict) -> Product:
    actor.require("product", "create")
    if db.session.scalars(select(Product).where(Product.org_id == actor.org_id, Product.code == data["code"])).first():
        raise Conflict(f"产品编码已存在：{data['code']}", fields={"code": "taken"})
    product = Product(org_id=actor.org_id, code=data["code"], name=data["name"], model=data.get("model"),
                      category=data.get("category"), warranty_months=data.get("warranty_months", 12),
                      list_price=data.get("list_price"), unit_cost=data.get("unit_cost"),
                      tax_rate=data["tax_rate"] if data.get("tax_rate") is not None else Decimal("13.00"))
    db.session.add(product)
    db.session.flush()
    return product


def update_product(actor: Actor, product_id: int, data: dict) -> Product:
    """Rename, (de)activate or re-price; quotes already made keep the prices they were made with."""
    actor.require("product", "edit")
    product = db.session.get(Product, product_id)
    if product is None or product.org_id != actor.org_id:
        raise NotFound("产品不存在。")
    for key in ("name", "active", "list_price", "unit_cost", "tax_rate"):
        if key in data and not (key in ("name", "active", "tax_rate") and data[key] is None):
            setattr(product, key, data[key])
    db.session.flush()
    return product


def list_products(actor: Actor, q: str | None = None, page: int = 1, per_page: int = 50) -> tuple[list[Product], int]:
    actor.require("product", "view")
    stmt = select(Product).where(Product.org_id == actor.org_id, Product.active.is_(True))
    if q:
        stmt = stmt.where(or_(Product.name.like(f"%{q}%"), Product.code.like(f"%{q}%")))
    return paginate(stmt, Product.id, page=page, per_page=per_page)


@service
def create_archives(actor: Actor, items: list[dict], *, shipment_ref: str | None = None) -> list[ProductArchive]:
    """Create archives in bulk (one per sold unit), directly or from a shipment record.

    Each item: ``serial_no, product_id, customer_id, sold_on, warranty_months?``. All or
    nothing: a duplicate serial number or an unknown product rejects the whole batch (422
    naming the rows).
    """
    actor.require("product_archive", "create")
    if not items:
        raise ValidationFailed("至少需要一条产品档案。", fields={"items": "empty"})
    if len(items) > 1000:
        raise ValidationFailed("一次最多导入 1000 条。", fields={"items": "too many"})
    errors: dict[str, str] = {}
    serials = [i["serial_no"].strip() for i in items]
    dupes = {s for s in serials if serials.count(s) > 1}
    existing = set(db.session.scalars(select(ProductArchive.serial_no).where(
        ProductArchive.org_id == actor.org_id, ProductArchive.serial_no.in_(serials))))
    products = {p.id: p for p in db.session.scalars(select(Product).where(
        Product.org_id == actor.org_id, Product.id.in_({i["product_id"] for i in items})))}
    customers: dict[int, Customer] = {}
    for n, item in enumerate(items):
        s = item["serial_no"].strip()
        if s in dupes:
            errors[f"items.{n}.serial_no"] = "duplicated in this batch"
        if s in existing:
            errors[f"items.{n}.serial_no"] = "already archived"
        if item["product_id"] not in products:
            errors[f"items.{n}.product_id"] = "unknown product"
        cid = item["customer_id"]
        if cid not in customers:
            try:
                customers[cid] = get_visible(actor, Customer, cid)
            except Exception:
                errors[f"items.{n}.customer_id"] = "unknown customer or outside your data scope"
    if errors:
        raise ValidationFailed("产品档案有误，未导入任何记录。", fields=errors)
    out = []
    for item in items:
        product, customer = products[item["product_id"]], customers[item["customer_id"]]
        months = item.get("warranty_months") or product.warranty_months
        sold_on = item["sold_on"]
        out.append(ProductArchive(org_id=actor.org_id, owner_id=customer.owner_id, department_id=customer.department_id,
                                  serial_no=item["serial_no"].strip(), product_id=product.id, customer_id=customer.id,
                                  contact_id=item.get("contact_id"), sold_on=sold_on, warranty_months=months,
                                  warranty_until=add_months(sold_on, months), install_address=item.get("install_address"),
                                  shipment_ref=shipment_ref or item.get("shipment_ref")))
    db.session.add_all(out)
    try:
        with begin_savepoint():
            db.session.flush()
    except IntegrityError:
        raise Conflict("序列号已被其他档案使用（可能刚被同时导入）。", code="duplicate_serial") from None
    return out


@service
def archives_from_shipment(actor: Actor, shipment: dict) -> list[ProductArchive]:
    """出库单 → archives: ``{shipment_ref, customer_id, shipped_on, lines: [{product_id, serials: []}]}``."""
    items = [{"serial_no": s, "product_id": line["product_id"], "customer_id": shipment["customer_id"],
              "sold_on": shipment["shipped_on"], "contact_id": shipment.get("contact_id"),
              "install_address": shipment.get("install_address")}
             for line in shipment["lines"] for s in line["serials"]]
    return create_archives(actor, items, shipment_ref=shipment["shipment_ref"])


def list_archives(actor: Actor, *, customer_id: int | None = None, q: str | None = None, expiring_within_days: int | None = None,
                  page: int = 1, per_page: int = 20) -> tuple[list[ProductArchive], int]:
    stmt = scoped_select(actor, ProductArchive)
    if customer_id:
        stmt = stmt.where(ProductArchive.customer_id == customer_id)
    if q:
        stmt = stmt.where(ProductArchive.serial_no.like(f"%{q}%"))
    if expiring_within_days is not None:
        today = utcnow().date()
        stmt = stmt.where(ProductArchive.warranty_until >= today,
                          ProductArchive.warranty_until <= today + timedelta(days=expiring_within_days))
    return paginate(stmt, ProductArchive.id.desc(), page=page, per_page=per_page)


def product_dict(p: Product) -> dict:
    def fmt(d):
        return None if d is None else str(Decimal(d).quantize(Decimal("0.01")))

    return {"id": p.id, "code": p.code, "name": p.name, "model": p.model, "category": p.category,
            "warranty_months": p.warranty_months, "active": p.active, "list_price": fmt(p.list_price),
            "unit_cost": fmt(p.unit_cost), "tax_rate": fmt(p.tax_rate if p.tax_rate is not None else Decimal("13.00"))}


def archive_dict(a: ProductArchive) -> dict:
    today = utcnow().date()
    return {"id": a.id, "serial_no": a.serial_no, "product_id": a.product_id, "product_name": a.product.name,
            "customer_id": a.customer_id, "contact_id": a.contact_id, "sold_on": a.sold_on.isoformat(),
            "warranty_months": a.warranty_months, "warranty_until": a.warranty_until.isoformat(),
            "in_warranty": a.warranty_until >= today, "shipment_ref": a.shipment_ref, "install_address": a.install_address}
