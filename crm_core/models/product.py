"""Products the organisation sells and services."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.models.base import Audited, TimestampMixin


class Product(Audited, TimestampMixin, db.Model):
    __audit_type__ = "product"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(100))
    warranty_months: Mapped[int] = mapped_column(default=12)
