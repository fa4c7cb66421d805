"""Activities (活动), the smallest unit of work, and work plans (工作计划) with their reviews."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin

ACTIVITY_KINDS = ("visit", "call", "meeting", "task", "email", "wechat", "demo", "other")
ACTIVITY_STATUSES = ("planned", "in_progress", "done", "cancelled")
PLAN_PERIODS = ("daily", "weekly", "monthly")


class WorkPlan(Audited, OwnedRecord, TimestampMixin, db.Model):
    """A daily, weekly or monthly plan with its summary, reviewed by a chosen reviewer."""

    __audit_type__ = "work_plan"
    __scope_object__ = "activity"
    __scope_assignee_columns__ = ("reviewer_id",)
    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date]
    end_date: Mapped[date]
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str | None] = mapped_column(String(4000))
    summary: Mapped[str | None] = mapped_column(String(4000))  # 总结, written at the end
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    review_status: Mapped[str] = mapped_column(String(16), default="draft")  # draft / submitted / reviewed
    review_comment: Mapped[str | None] = mapped_column(String(2000))
    reviewed_at: Mapped[datetime | None]


class Activity(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "activity"
    __scope_object__ = "activity"
    __scope_assignee_columns__ = ("assignee_id",)
    __table_args__ = (
        Index("ix_activity_scope", "org_id", "owner_id", "id"),
        Index("ix_activity_assignee_start", "assignee_id", "planned_start"),
        Index("ix_activity_due", "status", "planned_end"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="task")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("work_plan.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"))  # assigned from a main activity
    planned_start: Mapped[datetime | None]
    planned_end: Mapped[datetime | None]
    warn_before_minutes: Mapped[int] = mapped_column(default=30)
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(2000))
    start_warned_at: Mapped[datetime | None]
    overdue_warned_at: Mapped[datetime | None]
