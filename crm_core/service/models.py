"""Customer feedback (客户反馈) as tickets, service work orders (服务工单), handling records, parts and stock,
fees, ratings, and the phone verification that binds a WeChat user to a contact."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin
from crm_core.org import permissions

TICKET_KINDS = ("repair", "complaint", "suggestion", "consultation")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("submitted", "dispatched", "in_progress", "waiting_customer", "waiting_parts", "completed", "closed",
                   "cancelled", "rejected")
WORK_ORDER_STATUSES = ("assigned", "in_progress", "completed", "cancelled")


class Ticket(Audited, OwnedRecord, TimestampMixin, db.Model):
    """``owner_id`` is the customer's owner; ``handler_id`` the engineer handling it now."""

    __audit_type__ = "ticket"
    __scope_object__ = "ticket"
    __scope_assignee_columns__ = ("handler_id", "dispatcher_id")
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        Index("ix_ticket_org_status", "org_id", "status", "id"),
        Index("ix_ticket_org_created", "org_id", "created_at"),
        Index("ix_ticket_openid", "openid", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    source: Mapped[str] = mapped_column(String(16), default="wechat")  # wechat / console / api
    description: Mapped[str] = mapped_column(String(2000))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    # 商机下推: the opportunity a salesperson raised it from (an installation for the deal, a trial, a site survey)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    openid: Mapped[str | None] = mapped_column(String(64))  # the WeChat user who submitted it
    product_archive_id: Mapped[int | None] = mapped_column(ForeignKey("product_archive.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))  # a product without an archive
    product_note: Mapped[str | None] = mapped_column(String(200))
    in_warranty: Mapped[bool | None]
    required_by: Mapped[datetime | None]
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    dispatcher_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    first_response_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_automatically: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(String(500))  # cancel / reject / reopen reason
    reopen_count: Mapped[int] = mapped_column(default=0)
    sla_paused_seconds: Mapped[int] = mapped_column(default=0)
    paused_since: Mapped[datetime | None]
    due_warned_at: Mapped[datetime | None]
    overdue_warned_at: Mapped[datetime | None]
    sla_warned_at: Mapped[datetime | None]
    photo_ids: Mapped[list] = mapped_column(JSON, default=list)


class TicketEvent(db.Model):
    """The timeline: every transition and step. Internal by default: ``public`` entries are shown to
    the customer, with ``public_note`` (what staff chose to share, or the customer's own words) —
    never ``note``, which is for staff."""

    __table_args__ = (Index("ix_ticket_event_ticket", "ticket_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(24))  # status / dispatch / record / reassign / rating / note
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    actor_label: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(1000))
    public: Mapped[bool] = mapped_column(default=False)
    public_note: Mapped[str | None] = mapped_column(String(1000))
    work_order_id: Mapped[int | None]


class WorkOrder(Audited, OwnedRecord, TimestampMixin, db.Model):
    """A dispatch of a ticket to engineers. ``owner_id`` is the dispatcher; ``engineer_id`` the
    main engineer; collaborators are record shares."""

    __audit_type__ = "work_order"
    __scope_object__ = "work_order"
    __scope_assignee_columns__ = ("engineer_id",)
    __table_args__ = (
        Index("ix_work_order_engineer_status", "engineer_id", "status"),
        # one open work order per engineer and ticket: a double tap or a race cannot dispatch twice
        Index("uq_work_order_open_engineer", "ticket_id", "engineer_id", unique=True,
              sqlite_where=text("status IN ('assigned', 'in_progress')"),
              postgresql_where=text("status IN ('assigned', 'in_progress')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="assigned")
    engineer_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    planned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    summary: Mapped[str | None] = mapped_column(String(2000))
    auto_assigned: Mapped[bool] = mapped_column(default=False)
    accepted_at: Mapped[datetime | None]  # 接单: the engineer took it on (from the phone)
    arrived_at: Mapped[datetime | None]  # 到达: the arrival check-in at the customer's site
    arrival_checkin_id: Mapped[int | None] = mapped_column(ForeignKey("check_in.id"))
    arrival_distance_m: Mapped[float | None]  # from the customer's site, as the check-in measured it


class WorkOrderSignature(TimestampMixin, db.Model):
    """The customer's signature on the engineer's phone (signature_pad): ``fees`` confirms the paid service's
    charges, ``completion`` confirms the work done. One of each per work order; a new one replaces the old."""

    __table_args__ = (UniqueConstraint("work_order_id", "purpose"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"))
    purpose: Mapped[str] = mapped_column(String(12))  # fees / completion
    media_id: Mapped[int] = mapped_column(ForeignKey("media_file.id"))
    signer_name: Mapped[str | None] = mapped_column(String(64))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))  # whose phone it was signed on
    signed_at: Mapped[datetime]


class HandlingRecord(TimestampMixin, db.Model):
    """One visit or piece of work on a work order (several people, several visits)."""

    __table_args__ = (Index("ix_handling_record_wo", "work_order_id", "id"), Index("ix_handling_record_ticket", "ticket_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    visited_at: Mapped[datetime]
    minutes: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(2000))
    photo_ids: Mapped[list] = mapped_column(JSON, default=list)


class StockItem(TimestampMixin, db.Model):
    """Spare parts on hand; behind :class:`crm_core.service.stock.Stock` so an ERP can replace it."""

    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    unit_price: Mapped[float | None] = mapped_column(Numeric(12, 2))


class PartRequest(TimestampMixin, db.Model):
    """配件申请 on a work order: reserved from stock when available, else short."""

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    part_code: Mapped[str] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(String(12))  # reserved / short
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class FeeLine(TimestampMixin, db.Model):
    """费用 (a cost of the service) or 有偿收入 (paid-service income) on a work order."""

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # fee / income
    item: Mapped[str] = mapped_column(String(200))
    amount: Mapped[float] = mapped_column(Numeric(12, 2))
    note: Mapped[str | None] = mapped_column(String(500))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class Rating(db.Model):
    __table_args__ = (UniqueConstraint("ticket_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    score: Mapped[int]
    tags: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(String(1000))
    openid: Mapped[str | None] = mapped_column(String(64))
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class VerificationCode(db.Model):
    """A one-time code sent by SMS to bind a WeChat user to a contact (hash stored, not the code)."""

    __table_args__ = (Index("ix_verification_phone", "phone", "created_at"), Index("ix_verification_openid", "openid", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]


permissions.register_reference("ticket_id", Ticket)
permissions.register_reference("work_order_id", WorkOrder)
