"""Products and product archives (产品档案)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import g
from pydantic import Field

from crm_core.customers import products as svc
from crm_core.customers.models import ProductArchive
from crm_core.org.permissions import get_visible
from wxapp import exports
from wxapp.api import bp
from wxapp.exports import Column
from wxapp.openapi import Model, Money, PageQuery, Percent, api, page_of


class ProductIn(Model):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    model: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=64)
    warranty_months: int = Field(default=12, ge=0, le=240)
    list_price: Money | None = Field(default=None, description="标准价 (tax-exclusive), the quotes' default unit price")
    unit_cost: Money | None = Field(default=None, description="成本 per unit, for the quotes' expected profit")
    tax_rate: Percent = Field(default=Decimal("13.00"), description="增值税率 in per cent")


class ProductPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    list_price: Money | None = None
    unit_cost: Money | None = None
    tax_rate: Percent | None = None


class ProductOut(Model):
    id: int
    code: str
    name: str
    model: str | None
    category: str | None
    warranty_months: int
    active: bool
    list_price: str | None
    unit_cost: str | None
    tax_rate: str


class ProductQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=50, ge=1, le=200)


@api.operation(bp, "/products", "GET", summary="Products", tags=("products",), query=ProductQuery,
               response=page_of(ProductOut))
def list_products(query: ProductQuery):
    rows, total = svc.list_products(g.actor, query.q, query.page, query.per_page)
    return {"items": [svc.product_dict(p) for p in rows], "total": total}


@api.operation(bp, "/products", "POST", summary="Create a product", tags=("products",), body=ProductIn,
               response=ProductOut, status=201)
def create_product(body: ProductIn):
    return svc.product_dict(svc.create_product(g.actor, body.model_dump()))


@api.operation(bp, "/products/<int:product_id>", "PATCH", summary="Rename, (de)activate or re-price a product (价目表)",
               tags=("products",), body=ProductPatch, response=ProductOut)
def update_product(product_id: int, body: ProductPatch):
    return svc.product_dict(svc.update_product(g.actor, product_id, body.model_dump(exclude_unset=True)))


class ArchiveIn(Model):
    serial_no: str = Field(min_length=1, max_length=64)
    product_id: int
    customer_id: int
    contact_id: int | None = None
    sold_on: date
    warranty_months: int | None = Field(default=None, ge=0, le=240)
    install_address: str | None = Field(default=None, max_length=300)
    shipment_ref: str | None = Field(default=None, max_length=64)


class ArchivesIn(Model):
    items: list[ArchiveIn] = Field(min_length=1, max_length=1000)


class ArchiveOut(Model):
    id: int
    serial_no: str
    product_id: int
    product_name: str
    customer_id: int
    contact_id: int | None
    sold_on: str
    warranty_months: int
    warranty_until: str
    in_warranty: bool
    shipment_ref: str | None
    install_address: str | None


@api.operation(bp, "/product-archives", "POST", summary="Create archives in bulk (all or nothing)", tags=("products",),
               body=ArchivesIn, response=page_of(ArchiveOut), status=201)
def create_archives(body: ArchivesIn):
    rows = svc.create_archives(g.actor, [i.model_dump() for i in body.items])
    return {"items": [svc.archive_dict(a) for a in rows], "total": len(rows)}


class ShipmentLine(Model):
    product_id: int
    serials: list[str] = Field(min_length=1, max_length=1000)


class ShipmentIn(Model):
    shipment_ref: str = Field(min_length=1, max_length=64)
    customer_id: int
    contact_id: int | None = None
    shipped_on: date
    install_address: str | None = Field(default=None, max_length=300)
    lines: list[ShipmentLine] = Field(min_length=1, max_length=200)


@api.operation(bp, "/product-archives/from-shipment", "POST", summary="Archives from a shipment record (出库单)",
               tags=("products",), body=ShipmentIn, response=page_of(ArchiveOut), status=201)
def from_shipment(body: ShipmentIn):
    rows = svc.archives_from_shipment(g.actor, body.model_dump())
    return {"items": [svc.archive_dict(a) for a in rows], "total": len(rows)}


class ArchiveQuery(PageQuery):
    per_page: int = Field(default=20, ge=1, le=100)
    customer_id: int | None = None
    q: str | None = Field(default=None, max_length=64)
    expiring_within_days: int | None = Field(default=None, ge=0, le=3650)


@api.operation(bp, "/product-archives", "GET", summary="Product archives within the data scope", tags=("products",),
               query=ArchiveQuery, response=page_of(ArchiveOut))
def list_archives(query: ArchiveQuery):
    rows, total = svc.list_archives(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                    per_page=query.per_page)
    return {"items": [svc.archive_dict(a) for a in rows], "total": total}


exports.register(bp, api, "/product-archives", "产品档案", "product_archive", ArchiveQuery, svc.list_archives,
                 lambda rows: [svc.archive_dict(a) for a in rows], [
                     Column("serial_no", "序列号"), Column("product_name", "产品"), Column("customer_id", "客户", "customer"),
                     Column("sold_on", "购买日期"), Column("warranty_months", "保修（月）"), Column("warranty_until", "保修至"),
                     Column("in_warranty", "在保", "yes_no"), Column("shipment_ref", "发货单号"),
                     Column("install_address", "安装地址")])


@api.operation(bp, "/product-archives/<int:archive_id>", "GET", summary="One product archive", tags=("products",),
               response=ArchiveOut)
def get_archive(archive_id: int):
    return svc.archive_dict(get_visible(g.actor, ProductArchive, archive_id))
