"""Customers and their contacts (the CRM core issue extends these)."""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.models.base import Audited, OwnedRecord, TimestampMixin


class Customer(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "customer"
    __scope_object__ = "customer"
    __table_args__ = (Index("ix_customer_scope", "org_id", "owner_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="company")  # company / person
    trading: Mapped[bool] = mapped_column(default=False)  # non-trading -> trading
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    site_lat: Mapped[float | None]
    site_lng: Mapped[float | None]
    site_coord_system: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str | None] = mapped_column(String(32))

    contacts: Mapped[list["Contact"]] = relationship(back_populates="customer", order_by="Contact.id")


class Contact(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "contact"
    __scope_object__ = "contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    title: Mapped[str | None] = mapped_column(String(100))

    customer: Mapped[Customer] = relationship(back_populates="contacts")
