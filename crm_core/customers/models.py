"""Customers and contacts (客户/联系人) with their relations, products and product archives (产品档案), saved
segments, the value pyramid (客户金字塔), and the collision check's rules and index (撞单)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin
from crm_core.org import permissions

CUSTOMER_KINDS = ("company", "person")
CUSTOMER_SOURCES = ("manual", "wechat", "wechat_campaign", "wechat_intent", "lead", "import", "referral", "exhibition",
                    "self_service", "demo", "other")


class Customer(Audited, OwnedRecord, TimestampMixin, db.Model):
    """A company or a person we sell to or serve. Starts non-trading (潜在客户) and becomes
    trading (交易客户) through :func:`crm_core.customers.customers.mark_trading`."""

    __audit_type__ = "customer"
    __scope_object__ = "customer"
    __table_args__ = (
        Index("ix_customer_scope", "org_id", "owner_id", "id"),
        Index("ix_customer_org_level", "org_id", "value_level"),
        Index("ix_customer_org_source", "org_id", "source"),
        Index("ix_customer_org_site_cell", "org_id", "site_cell"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="company")
    trading: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active / merged
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    site_lat: Mapped[float | None]
    site_lng: Mapped[float | None]
    site_coord_system: Mapped[str | None] = mapped_column(String(8))  # the site as entered, in its own system
    # the same site in WGS-84 and its H3 cell (crm_core.geo), for distances and nearby lookups
    site_wgs_lat: Mapped[float | None]
    site_wgs_lng: Mapped[float | None]
    site_cell: Mapped[str | None] = mapped_column(String(16))
    checkin_radius_m: Mapped[int | None]  # overrides the organisation's check-in radius for this site
    source: Mapped[str | None] = mapped_column(String(32))
    source_detail: Mapped[str | None] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    needs_review: Mapped[bool] = mapped_column(default=False)  # created automatically; the service desk checks it
    value_score: Mapped[float | None]
    value_level: Mapped[str | None] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(String(2000))

    contacts: Mapped[list["Contact"]] = relationship(back_populates="customer", order_by="Contact.id",
                                                     foreign_keys="Contact.customer_id")


class Contact(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "contact"
    __scope_object__ = "contact"
    __table_args__ = (Index("ix_contact_scope", "org_id", "owner_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(8))
    birthday: Mapped[date | None]
    interests: Mapped[list] = mapped_column(JSON, default=list)
    is_primary: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(String(1000))

    customer: Mapped[Customer] = relationship(back_populates="contacts", foreign_keys=[customer_id])


class CustomerHolding(db.Model):
    """Who held a customer, from when to when (公海: the history of its owners). A holding ends when the customer
    is released or recycled to the pool, or handed to someone else; the open one (``ended_at`` None) is the owner's."""

    __table_args__ = (Index("ix_customer_holding_customer", "customer_id", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"), index=True)
    started_at: Mapped[datetime]
    how: Mapped[str] = mapped_column(String(12), default="claimed")  # claimed / assigned
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(12))  # released / recycled / transferred
    note: Mapped[str | None] = mapped_column(String(500))


class ContactRelation(Audited, TimestampMixin, db.Model):
    """关系人: how two contacts relate (同事, 上级, 配偶, 介绍人...)."""

    __audit_type__ = "contact_relation"
    __table_args__ = (UniqueConstraint("from_contact_id", "to_contact_id", "relation"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    from_contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    to_contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(200))


class Product(Audited, TimestampMixin, db.Model):
    __audit_type__ = "product"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(64))
    warranty_months: Mapped[int] = mapped_column(default=12)
    active: Mapped[bool] = mapped_column(default=True)
    # the price list's defaults for quotes (tax-exclusive, 元); crm_core.sales.money
    list_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    unit_cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("13.00"), server_default="13.00")


class ProductArchive(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "product_archive"
    __scope_object__ = "product_archive"
    __table_args__ = (UniqueConstraint("org_id", "serial_no"), Index("ix_product_archive_warranty", "org_id", "warranty_until"))
    id: Mapped[int] = mapped_column(primary_key=True)
    serial_no: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    sold_on: Mapped[date]
    warranty_months: Mapped[int]
    warranty_until: Mapped[date]
    shipment_ref: Mapped[str | None] = mapped_column(String(64))
    install_address: Mapped[str | None] = mapped_column(String(300))
    warranty_reminded_at: Mapped[datetime | None]

    product: Mapped[Product] = relationship()


class Segment(Audited, TimestampMixin, db.Model):
    __audit_type__ = "segment"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(16), default="customer")  # customer / contact
    match: Mapped[str] = mapped_column(String(8), default="all")  # all / any
    conditions: Mapped[list] = mapped_column(JSON, default=list)  # [{field, op, value}]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class CollisionRule(Audited, TimestampMixin, db.Model):
    """撞单参数: which fields of ``object_type`` are matched how, against which object
    types, what a hit shows, and whether it warns or blocks the save."""

    __audit_type__ = "collision_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    object_type: Mapped[str] = mapped_column(String(16))  # lead / customer / opportunity
    name: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list] = mapped_column(JSON, default=list)  # [{field, method, threshold?}]
    match: Mapped[str] = mapped_column(String(8), default="any")  # any / all
    targets: Mapped[list] = mapped_column(JSON, default=list)  # object types checked against
    result_fields: Mapped[list] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(8), default="warn")  # warn / block
    active: Mapped[bool] = mapped_column(default=True)


class CollisionKey(db.Model):
    """Normalised match keys of every lead, customer (with its contacts' phones) and
    opportunity: the index the collision check looks up instead of scanning."""

    __table_args__ = (
        Index("ix_collision_key_lookup", "org_id", "dimension", "method", "value", "object_type"),
        Index("ix_collision_key_record", "object_type", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(index=False)
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    dimension: Mapped[str] = mapped_column(String(16))  # phone / company / person / email / address / opportunity
    method: Mapped[str] = mapped_column(String(16))  # exact / phone / company
    value: Mapped[str] = mapped_column(String(300))


class CollisionGram(db.Model):
    """Character bigrams of normalised company names, for the similarity match."""

    __table_args__ = (
        Index("ix_collision_gram_lookup", "org_id", "gram", "object_type", "record_id"),
        Index("ix_collision_gram_record", "object_type", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int]
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    dimension: Mapped[str] = mapped_column(String(16))
    gram: Mapped[str] = mapped_column(String(8))


class CollisionClaim(db.Model):
    """A blocking rule's key, claimed by the record that holds it. The unique constraint
    makes two simultaneous saves of the same phone produce one record and one hit."""

    __table_args__ = (UniqueConstraint("org_id", "claim"), Index("ix_collision_claim_record", "object_type", "record_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int]
    claim: Mapped[str] = mapped_column(String(400))
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]


class ValueIndicator(Audited, TimestampMixin, db.Model):
    """客户价值指标: a measure of a customer with a weight and the value that counts as full marks."""

    __audit_type__ = "value_indicator"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # one of services.value.INDICATOR_KINDS
    name: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(default=1.0)
    full_marks_at: Mapped[float] = mapped_column(default=1.0)


class ValueLevel(Audited, TimestampMixin, db.Model):
    __audit_type__ = "value_level"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(32))
    min_score: Mapped[float]


permissions.register_reference("customer_id", Customer)
permissions.register_reference("contact_id", Contact)
