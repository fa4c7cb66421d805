"""Products and product archives (产品档案): one archive per sold unit, the basis of service."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.models.base import Audited, OwnedRecord, TimestampMixin


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
