"""Records shared with an employee outside their data scope."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db


class RecordShare(db.Model):
    __table_args__ = (
        UniqueConstraint("object_type", "object_id", "employee_id"),
        Index("ix_record_share_lookup", "employee_id", "object_type", "object_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int]
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"))
    shared_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime]
