"""Customer segments (客户细分): saved filters over customers or contacts."""
from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.models.base import Audited, TimestampMixin


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
