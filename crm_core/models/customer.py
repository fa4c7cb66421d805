"""Customers, contacts and the relations between contacts (seed 3: 客户管理)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.models.base import Audited, OwnedRecord, TimestampMixin

CUSTOMER_KINDS = ("company", "person")
CUSTOMER_SOURCES = ("manual", "wechat", "wechat_campaign", "wechat_intent", "lead", "import", "referral", "exhibition",
                    "self_service", "demo", "other")


class Customer(Audited, OwnedRecord, TimestampMixin, db.Model):
    """A company or a person we sell to or serve. Starts non-trading (潜在客户) and becomes
    trading (交易客户) through :func:`crm_core.services.customers.mark_trading`."""

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
