"""Customers and contacts: registration behind the collision check, 360 view, merge."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.customers import customers as svc
from wxapp import exports
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, api, page_of


class Site(Model):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord_system: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    radius_m: int | None = Field(default=None, ge=50, le=5000, description="check-in radius for this site (default: the organisation's)")


class ContactIn(Model):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=100)
    gender: Literal["male", "female"] | None = None
    birthday: date | None = None
    interests: list[str] = Field(default_factory=list, max_length=50)
    is_primary: bool | None = None
    note: str | None = Field(default=None, max_length=1000)


class ContactPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=100)
    gender: Literal["male", "female"] | None = None
    birthday: date | None = None
    interests: list[str] | None = Field(default=None, max_length=50)
    is_primary: bool | None = None
    note: str | None = Field(default=None, max_length=1000)


class CustomerIn(Model):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["company", "person"] = "company"
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    source: str | None = Field(default=None, max_length=32)
    source_detail: str | None = Field(default=None, max_length=200)
    industry: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=30)
    site: Site | None = None
    owner_id: int | None = None
    note: str | None = Field(default=None, max_length=2000)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=20)


class CustomerPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["company", "person"] | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    source: str | None = Field(default=None, max_length=32)
    source_detail: str | None = Field(default=None, max_length=200)
    industry: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(default=None, max_length=30)
    site: Site | None = None
    owner_id: int | None = None
    note: str | None = Field(default=None, max_length=2000)


class Collision(Model):
    object_type: str
    id: int | None
    rule: dict
    matched_fields: list[str]
    score: float | None
    visible: bool
    record: dict


class CustomerOut(Model):
    id: int
    name: str
    kind: str
    trading: bool
    status: str
    phone: str | None
    email: str | None
    address: str | None
    site: Site | None
    source: str | None
    source_detail: str | None
    industry: str | None
    tags: list[str]
    owner_id: int | None
    department_id: int | None
    needs_review: bool
    value_score: float | None
    value_level: str | None
    note: str | None
    created_at: str | None
    collisions: list[Collision] = []


class ContactOut(Model):
    id: int
    customer_id: int
    name: str
    phone: str | None
    email: str | None
    title: str | None
    gender: str | None
    birthday: str | None
    interests: list[str]
    is_primary: bool
    owner_id: int | None
    note: str | None
    collisions: list[Collision] = []


class CustomerQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)
    kind: Literal["company", "person"] | None = None
    trading: bool | None = None
    source: str | None = Field(default=None, max_length=32)
    tag: str | None = Field(default=None, max_length=32)
    owner_id: int | None = None
    value_level: str | None = Field(default=None, max_length=8)
    needs_review: bool | None = None
    segment_id: int | None = None


@api.operation(bp, "/customers", "GET", summary="Customers within the caller's data scope", tags=("customers",),
               query=CustomerQuery, response=page_of(CustomerOut))
def list_customers(query: CustomerQuery):
    rows, total = svc.list_customers(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                     per_page=query.per_page)
    return {"items": [svc.customer_dict(c) for c in rows], "total": total}


@api.operation(bp, "/customers", "POST", summary="Register a customer (客户备案), optionally with contacts",
               tags=("customers",), body=CustomerIn, response=CustomerOut, status=201)
def create_customer(body: CustomerIn):
    """Runs the collision check: 409 `{error, hits}` when a blocking rule matches; warn-rule
    hits come back in `collisions`."""
    data = body.model_dump(exclude={"contacts"})
    customer, hits = svc.create_customer(g.actor, data, contacts=[c.model_dump() for c in body.contacts])
    return {**svc.customer_dict(customer), "collisions": [h.to_dict() for h in hits]}


@api.operation(bp, "/customers/<int:customer_id>", "GET", summary="One customer", tags=("customers",), response=CustomerOut)
def get_customer(customer_id: int):
    return svc.customer_dict(svc.get_customer(g.actor, customer_id))


@api.operation(bp, "/customers/<int:customer_id>", "PATCH", summary="Change a customer", tags=("customers",),
               body=CustomerPatch, response=CustomerOut)
def update_customer(customer_id: int, body: CustomerPatch):
    customer, hits = svc.update_customer(g.actor, customer_id, body.model_dump(exclude_unset=True))
    return {**svc.customer_dict(customer), "collisions": [h.to_dict() for h in hits]}


class TradingIn(Model):
    trading: bool = True


@api.operation(bp, "/customers/<int:customer_id>/trading", "POST", summary="Mark trading (交易客户) or back",
               tags=("customers",), body=TradingIn, response=CustomerOut)
def mark_trading(customer_id: int, body: TradingIn):
    return svc.customer_dict(svc.mark_trading(g.actor, customer_id, body.trading))


class MergeIn(Model):
    merge_id: int = Field(description="the customer that disappears into this one")


class MergeOut(Model):
    kept: int
    merged: int
    moved: dict[str, int]


@api.operation(bp, "/customers/<int:customer_id>/merge", "POST", summary="Merge another customer into this one (客户合并)",
               tags=("customers",), body=MergeIn, response=MergeOut)
def merge(customer_id: int, body: MergeIn):
    return svc.merge_customers(g.actor, customer_id, body.merge_id)


@api.operation(bp, "/customers/<int:customer_id>/360", "GET", summary="Customer 360 view (客户360视图)", tags=("customers",))
def customer_360(customer_id: int):
    """Profile, contacts, product archives with warranty, recent activities, opportunities,
    leads, figures, and the sections other features add (followers, tickets, check-ins, ratings)."""
    return svc.customer_360(g.actor, customer_id)


class ContactQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)
    customer_id: int | None = None
    birthday_month: int | None = Field(default=None, ge=1, le=12)
    interest: str | None = Field(default=None, max_length=32)
    segment_id: int | None = None


@api.operation(bp, "/contacts", "GET", summary="Contacts within the caller's data scope", tags=("customers",),
               query=ContactQuery, response=page_of(ContactOut))
def list_contacts(query: ContactQuery):
    rows, total = svc.list_contacts(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                    per_page=query.per_page)
    return {"items": [svc.contact_dict(c) for c in rows], "total": total}


class ContactCreate(ContactIn):
    customer_id: int


@api.operation(bp, "/contacts", "POST", summary="Add a contact to a customer", tags=("customers",),
               body=ContactCreate, response=ContactOut, status=201)
def create_contact(body: ContactCreate):
    contact, hits = svc.add_contact(g.actor, body.customer_id, body.model_dump(exclude={"customer_id"}))
    return {**svc.contact_dict(contact), "collisions": [h.to_dict() for h in hits]}


@api.operation(bp, "/contacts/<int:contact_id>", "PATCH", summary="Change a contact", tags=("customers",),
               body=ContactPatch, response=ContactOut)
def update_contact(contact_id: int, body: ContactPatch):
    return svc.contact_dict(svc.update_contact(g.actor, contact_id, body.model_dump(exclude_unset=True)))


class RelationIn(Model):
    to_contact_id: int
    relation: str = Field(min_length=1, max_length=32, description="同事、上级、配偶、介绍人…")
    note: str | None = Field(default=None, max_length=200)


@api.operation(bp, "/contacts/<int:contact_id>/relations", "POST", summary="Relate two contacts (关系人)",
               tags=("customers",), body=RelationIn, status=201)
def relate(contact_id: int, body: RelationIn):
    rel = svc.relate_contacts(g.actor, contact_id, body.to_contact_id, body.relation, body.note)
    return {"id": rel.id, "from_contact_id": rel.from_contact_id, "to_contact_id": rel.to_contact_id, "relation": rel.relation}


@api.operation(bp, "/contacts/<int:contact_id>/relations", "GET", summary="A contact's relations", tags=("customers",))
def relations(contact_id: int):
    items = svc.contact_relations(g.actor, contact_id)
    return {"items": items, "total": len(items)}


exports.register(bp, api, "/customers", "客户", "customer", CustomerQuery, svc.list_customers,
                 lambda rows: [svc.customer_dict(c) for c in rows], [
                     exports.Column("name", "客户名称"), exports.Column("phone", "电话"), exports.Column("address", "地址"),
                     exports.Column("industry", "行业"), exports.Column("source", "来源"), exports.Column("trading", "交易客户", "yes_no"),
                     exports.Column("value_level", "价值等级"), exports.Column("tags", "标签", "list"),
                     exports.Column("owner_id", "负责人", "employee"), exports.Column("note", "备注")])
exports.register(bp, api, "/contacts", "联系人", "contact", ContactQuery, svc.list_contacts,
                 lambda rows: [svc.contact_dict(c) for c in rows], [
                     exports.Column("name", "姓名"), exports.Column("customer_id", "客户", "customer"), exports.Column("title", "职务"),
                     exports.Column("phone", "电话"), exports.Column("email", "邮箱"), exports.Column("birthday", "生日"),
                     exports.Column("interests", "兴趣", "list"), exports.Column("is_primary", "主联系人", "yes_no"),
                     exports.Column("owner_id", "负责人", "employee")])
