"""Stored images (ticket photos, check-in photos, material covers): the bytes live behind
:mod:`crm_core.media`'s storage interface; this row is what the database knows."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.models.base import TimestampMixin


class MediaFile(TimestampMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(24))  # ticket / checkin / work_order / material
    status: Mapped[str] = mapped_column(String(12), default="ready")  # pending (WeChat download queued) / ready / failed
    source: Mapped[str] = mapped_column(String(12), default="upload")  # upload / wechat
    wechat_media_id: Mapped[str | None] = mapped_column(String(128))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    # who uploaded it: an employee, or a WeChat user (openid) for customer uploads
    uploaded_by_employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    uploaded_by_openid: Mapped[str | None] = mapped_column(String(64), index=True)
    ready_at: Mapped[datetime | None]
