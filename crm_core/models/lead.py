"""Leads (线索): interest not yet qualified, from any channel."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.models.base import Audited, OwnedRecord, TimestampMixin

LEAD_SOURCES = ("manual", "wechat_campaign", "wechat_intent", "import", "website", "exhibition", "referral", "other")
LEAD_STATUSES = ("new", "working", "converted", "closed")


class Lead(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "lead"
    __scope_object__ = "lead"
    __table_args__ = (Index("ix_lead_scope", "org_id", "owner_id", "id"), Index("ix_lead_org_status", "org_id", "status"))
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))  # the person
    company: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(100))
    product_interest: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(2000))
    source: Mapped[str] = mapped_column(String(32), default="manual")
    source_ref: Mapped[str | None] = mapped_column(String(100))  # campaign id, share token, import batch...
    attribution: Mapped[dict] = mapped_column(JSON, default=dict)  # who/what brought it (sharer, campaign)
    campaign_id: Mapped[int | None] = mapped_column(index=True)  # the marketing campaign or event it came from
    status: Mapped[str] = mapped_column(String(16), default="new")
    close_reason: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
