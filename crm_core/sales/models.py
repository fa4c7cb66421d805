"""Leads (线索), sales methods and stages, opportunities (商机) with products, competitors and stage approvals;
quotes (报价), contracts (合同) with their payment plans, and receipts (回款)."""
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


class CompetitorCompany(Audited, TimestampMixin, db.Model):
    """竞争对手档案 (the competitor master): one company the sales force meets, with the other names salespeople
    write it under, its market share, strengths and weaknesses, and its products and prices. An opportunity's
    competitor naming it (or an alias) is linked to it, so wins and losses count against the company."""

    __audit_type__ = "competitor"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    website: Mapped[str | None] = mapped_column(String(200))
    market_share: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))  # percent of the market
    strengths: Mapped[str | None] = mapped_column(String(1000))
    weaknesses: Mapped[str | None] = mapped_column(String(1000))
    note: Mapped[str | None] = mapped_column(String(1000))
    active: Mapped[bool] = mapped_column(default=True)

    products: Mapped[list["CompetitorProduct"]] = relationship(cascade="all, delete-orphan", order_by="CompetitorProduct.id")


class CompetitorProduct(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitor_company.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    note: Mapped[str | None] = mapped_column(String(500))


class Competitor(db.Model):
    """竞争对手 on one opportunity: who, with what product, at what price and share; linked to the master
    (``competitor_id``) when its name is the master's or one of its aliases."""

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), index=True)
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitor_company.id", ondelete="SET NULL"), index=True)
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


# --- the money chain: 报价 → 合同 → 回款 (crm_core.sales.documents; amounts: crm_core.sales.money) ---
QUOTE_STATUSES = ("draft", "approving", "approved", "sent", "accepted", "rejected", "expired", "superseded")
CONTRACT_STATUSES = ("pending", "approved", "completed", "cancelled")


class Quote(Audited, OwnedRecord, TimestampMixin, db.Model):
    """报价单: priced lines for a customer (and an opportunity), valid until a date; a revision is a
    new version of the same number, the earlier one superseded."""

    __audit_type__ = "quote"
    __scope_object__ = "quote"
    __table_args__ = (UniqueConstraint("org_id", "number", "version"), Index("ix_quote_scope", "org_id", "owner_id", "id"),
                      Index("ix_quote_expiry", "status", "valid_until"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(default=1)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    valid_until: Mapped[date]
    subtotal: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    discount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    tax: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    cost: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    expected_profit: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    note: Mapped[str | None] = mapped_column(String(2000))
    decided_at: Mapped[datetime | None]  # accepted or rejected
    decided_by: Mapped[str | None] = mapped_column(String(100))

    lines: Mapped[list["QuoteLine"]] = relationship(cascade="all, delete-orphan", order_by="QuoteLine.seq")


class QuoteLine(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quote.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    name: Mapped[str] = mapped_column(String(200))  # the product's name when quoted
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    discount_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    unit_cost: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    gross: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    discount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    tax: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))


class Contract(Audited, OwnedRecord, TimestampMixin, db.Model):
    """合同: from a quote, an opportunity or on its own; approved once (the customer then trades),
    paid by the instalments of its payment plan."""

    __audit_type__ = "contract"
    __scope_object__ = "contract"
    __table_args__ = (UniqueConstraint("org_id", "number"), Index("ix_contract_scope", "org_id", "owner_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quote.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    received: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    signed_on: Mapped[date | None]
    approved_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    decision_comment: Mapped[str | None] = mapped_column(String(500))  # the approver's words, approved or rejected
    note: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # + 1 per approved change (合同变更)

    instalments: Mapped[list["Instalment"]] = relationship(cascade="all, delete-orphan", order_by="Instalment.seq")
    lines: Mapped[list["ContractLine"]] = relationship(cascade="all, delete-orphan", order_by="ContractLine.seq")


class ContractLine(db.Model):
    """A product line of a contract (合同明细): carried from its quote or priced from the lines given. ``ordered`` is
    how much of it sales orders have taken so far (moved only by a guarded update, never past ``quantity``)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    discount_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))  # with discount and tax: what the line is worth in the contract
    ordered: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(0))
    ordered_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))


ORDER_STATUSES = ("open", "partial", "delivered", "cancelled")


class SalesOrder(Audited, OwnedRecord, TimestampMixin, db.Model):
    """销售订单: what is to be delivered now out of an approved contract's lines; its deliveries (销售出库) move it
    from 待发货 through 部分发货 to 已发货. Seen through the contracts' data scope."""

    __audit_type__ = "sales_order"
    __scope_object__ = "contract"
    __table_args__ = (UniqueConstraint("org_id", "number"), Index("ix_sales_order_scope", "org_id", "owner_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    delivered_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    required_on: Mapped[date | None]  # the day the customer wants it
    address: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(2000))

    lines: Mapped[list["OrderLine"]] = relationship(cascade="all, delete-orphan", order_by="OrderLine.seq")
    deliveries: Mapped[list["Delivery"]] = relationship(cascade="all, delete-orphan", order_by="Delivery.id")


class OrderLine(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id", ondelete="CASCADE"), index=True)
    contract_line_id: Mapped[int] = mapped_column(ForeignKey("contract_line.id"), index=True)
    seq: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))  # its share of the contract line's total
    delivered: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(0))


class Delivery(Audited, db.Model):
    """发货 / 销售出库单: quantities shipped against an order's lines on a day; serial numbers given become the
    customer's product archives (产品档案), as the seed's 销售出库单 does."""

    __audit_type__ = "delivery"
    __table_args__ = (UniqueConstraint("org_id", "number"), UniqueConstraint("org_id", "external_ref"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    number: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id", ondelete="CASCADE"), index=True)
    shipped_on: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    carrier: Mapped[str | None] = mapped_column(String(100))  # 物流公司 / 运单号
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the ERP's 销售出库单 id of an imported shipment
    note: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    created_at: Mapped[datetime]

    lines: Mapped[list["DeliveryLine"]] = relationship(cascade="all, delete-orphan", order_by="DeliveryLine.id")


class DeliveryLine(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    serial_nos: Mapped[list] = mapped_column(JSON, default=list)


class Instalment(db.Model):
    """One due payment of a contract's plan (应收): what is due when, and what has come in."""

    __table_args__ = (UniqueConstraint("contract_id", "seq"), Index("ix_instalment_due", "org_id", "due_date"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    due_date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    received: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    overdue_notified_at: Mapped[datetime | None]


class Receipt(Audited, OwnedRecord, TimestampMixin, db.Model):
    """回款: money received against a contract, matched to its instalments (ReceiptAllocation)."""

    __audit_type__ = "receipt"
    __scope_object__ = "receipt"
    __table_args__ = (UniqueConstraint("org_id", "number"), UniqueConstraint("org_id", "external_ref"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    received_on: Mapped[date]
    method: Mapped[str | None] = mapped_column(String(16))  # bank / cash / wechat / alipay / other
    note: Mapped[str | None] = mapped_column(String(500))
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the ERP's own id of an imported receipt (once per org)

    allocations: Mapped[list["ReceiptAllocation"]] = relationship(cascade="all, delete-orphan", order_by="ReceiptAllocation.id")


class ReceiptAllocation(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipt.id", ondelete="CASCADE"), index=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))



class SalesTarget(OwnedRecord, db.Model):
    """An employee's monthly sales target (销售目标): the contracted amount the month should bring.
    The owner is the employee it is set for, so the contracts' data scope decides who sees it."""

    __scope_object__ = "contract"
    __table_args__ = (UniqueConstraint("org_id", "owner_id", "month"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date]  # the first day of the month
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    updated_at: Mapped[datetime]

# The collision check (customers area) compares leads and opportunities with customers.
collision.register_object("lead", Lead)
collision.register_object("opportunity", Opportunity)
permissions.register_reference("lead_id", Lead)
permissions.register_reference("opportunity_id", Opportunity)
permissions.register_reference("quote_id", Quote)
permissions.register_reference("contract_id", Contract)


# --- 费用申请 (crm_core.sales.expenses): costs claimed by an employee, approved through the approval engine ---
EXPENSE_STATUSES = ("pending", "approved", "rejected", "paid")


class ExpenseRequest(Audited, OwnedRecord, TimestampMixin, db.Model):
    """费用申请: an employee's costs (travel, entertainment, a service visit's fees), for a customer, an opportunity
    or a work order; approved through the approval engine, then paid (已报销)."""

    __audit_type__ = "expense_request"
    __scope_object__ = "expense"
    __table_args__ = (UniqueConstraint("org_id", "number"), Index("ix_expense_scope", "org_id", "owner_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(2000))
    decided_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))

    lines: Mapped[list["ExpenseLine"]] = relationship(cascade="all, delete-orphan", order_by="ExpenseLine.seq")


class ExpenseLine(db.Model):
    """One cost of an expense request; ``fee_line_id``: the work order's fee line it claims (claimed once)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("expense_request.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    item: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    incurred_on: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(String(500))
    fee_line_id: Mapped[int | None] = mapped_column(ForeignKey("fee_line.id"), unique=True)


class ContractChange(Audited, TimestampMixin, db.Model):
    """合同变更 (crm_core.sales.contract_changes): what the contract was (``before``) and becomes (``after``: amount,
    title, the plan of what is unpaid), approved through the approval engine."""

    __audit_type__ = "contract_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), index=True)
    base_version: Mapped[int]  # the contract's version the change was written against
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending / approved / rejected
    reason: Mapped[str] = mapped_column(String(500))
    before: Mapped[dict] = mapped_column(JSON)
    after: Mapped[dict] = mapped_column(JSON)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    decided_at: Mapped[datetime | None]


class OtherReceivable(Audited, OwnedRecord, TimestampMixin, db.Model):
    """其他应收: money a customer owes outside a contract — paid service on a work order (有偿服务) — due on a date and
    received once or in parts (crm_core.sales.other_receivables). Seen through the 回款 (``receipt``) scope."""

    __audit_type__ = "other_receivable"
    __scope_object__ = "receipt"
    __table_args__ = (UniqueConstraint("org_id", "number"), UniqueConstraint("work_order_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="service")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"))
    description: Mapped[str] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    received: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="open")  # open / paid
    paid_at: Mapped[datetime | None]
