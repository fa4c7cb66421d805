"""Leads (线索), sales methods and stages, opportunities (商机) with products, competitors and stage approvals."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.customers import collision
from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin
from crm_core.org import permissions

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


class LeadTouch(db.Model):
    """One time a person showed interest (意向): the first intent that made the lead and every
    later one that matched it by phone. The lead keeps its first attribution; each touch keeps
    its own campaign, material, sharer chain and the name the person typed that time."""

    __table_args__ = (Index("ix_lead_touch_lead", "lead_id", "id"), Index("ix_lead_touch_campaign", "campaign_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int | None]
    material_id: Mapped[int | None]
    name: Mapped[str | None] = mapped_column(String(100))  # as typed this time
    product_interest: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(1000))
    attribution: Mapped[dict] = mapped_column(JSON, default=dict)  # share token, first touch, chain
    created_at: Mapped[datetime]


OPPORTUNITY_STATUSES = ("open", "won", "lost")


class SalesMethod(Audited, TimestampMixin, db.Model):
    """销售方法: an ordered list of stages an organisation sells through."""

    __audit_type__ = "sales_method"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)

    stages: Mapped[list["SalesStage"]] = relationship(order_by="SalesStage.seq", cascade="all, delete-orphan")


class SalesStage(Audited, TimestampMixin, db.Model):
    """A stage, and what it takes to enter it."""

    __audit_type__ = "sales_stage"
    __table_args__ = (UniqueConstraint("method_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    method_id: Mapped[int] = mapped_column(ForeignKey("sales_method.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    probability: Mapped[int] = mapped_column(default=0)  # percent
    required_fields: Mapped[list] = mapped_column(JSON, default=list)  # amount, expected_close_date, contact_id, products, competitors
    requires_completed_activity: Mapped[bool] = mapped_column(default=False)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    skippable: Mapped[bool] = mapped_column(default=False)
    reminder_days: Mapped[int | None]  # remind the owner when the opportunity stays longer


class Opportunity(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "opportunity"
    __scope_object__ = "opportunity"
    __table_args__ = (Index("ix_opportunity_scope", "org_id", "owner_id", "id"),
                      Index("ix_opportunity_org_status_stage", "org_id", "status", "stage_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    method_id: Mapped[int] = mapped_column(ForeignKey("sales_method.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stage.id"), index=True)
    stage_entered_at: Mapped[datetime]
    stage_reminded_at: Mapped[datetime | None]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    expected_close_date: Mapped[date | None]
    source: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open")
    close_reason: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(2000))

    stage: Mapped[SalesStage] = relationship()
    products: Mapped[list["OpportunityProduct"]] = relationship(cascade="all, delete-orphan", order_by="OpportunityProduct.id")
    competitors: Mapped[list["Competitor"]] = relationship(cascade="all, delete-orphan", order_by="Competitor.id")


class OpportunityProduct(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))


class Competitor(db.Model):
    """竞争对手 on one opportunity: who, with what product, at what price and share."""

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    product: Mapped[str | None] = mapped_column(String(200))
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    share: Mapped[int | None]  # percent of the customer's business
    note: Mapped[str | None] = mapped_column(String(500))


class OpportunityApproval(Audited, TimestampMixin, db.Model):
    """A one-level approval to enter a stage that requires it (多级审批, one level)."""

    __audit_type__ = "opportunity_approval"
    __table_args__ = (Index("ix_opportunity_approval_approver", "approver_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stage.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    approver_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / approved / rejected
    comment: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime | None]


# The collision check (customers area) compares leads and opportunities with customers.
collision.register_object("lead", Lead)
collision.register_object("opportunity", Opportunity)
permissions.register_reference("lead_id", Lead)
permissions.register_reference("opportunity_id", Opportunity)
