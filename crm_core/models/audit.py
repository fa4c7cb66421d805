"""The audit log: who changed what, when, before and after."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db


class AuditEntry(db.Model):
    __table_args__ = (Index("ix_audit_entry_object", "object_type", "object_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    org_id: Mapped[int | None] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(index=True)
    actor_label: Mapped[str | None] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))  # create / update / delete
    changes: Mapped[dict] = mapped_column(JSON, default=dict)  # {field: [before, after]}
    request_id: Mapped[str | None] = mapped_column(String(64))
