"""The money chain over HTTP (SPEC: /api/v1/quotes, /contracts, /receipts): quotes priced on the
server, contracts with payment plans and their approval, receipts matched to instalments.
Money goes in as two-decimal numbers or strings and comes out as strings ("1280.00")."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.org.permissions import get_visible
from crm_core.sales import documents as svc
from crm_core.sales import orders
from crm_core.sales.models import Contract, Quote, SalesOrder
from wxapp import exports
from wxapp.api import bp
from wxapp.openapi import Model, Money, PageQuery, Percent, api, page_of
from wxapp.pages import quote_pdf_response, tell_quote_customer


class QuoteLineIn(Model):
    product_id: int
    quantity: Decimal = Field(default=Decimal(1), gt=0, max_digits=12, decimal_places=4)
    unit_price: Money | None = Field(default=None, description="default: the product's list price")
    discount_pct: Percent | None = None
    tax_rate: Percent | None = Field(default=None, description="default: the product's tax rate")


class QuoteIn(Model):
    customer_id: int
    opportunity_id: int | None = None
    valid_until: date | None = Field(default=None, description="default: 30 days from today")
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=svc.MAX_LINES)
    note: str | None = Field(default=None, max_length=2000)


class QuoteRevision(Model):
    valid_until: date | None = None
    lines: list[QuoteLineIn] | None = Field(default=None, min_length=1, max_length=svc.MAX_LINES)
    note: str | None = Field(default=None, max_length=2000)


class QuoteLineOut(Model):
    seq: int
    product_id: int
    name: str
    quantity: str
    unit_price: str
    discount_pct: str
    tax_rate: str
    gross: str
    discount: str
    tax: str
    total: str


class QuoteOut(Model):
    id: int
    number: str
    version: int
    status: str
    status_label: str
    customer_id: int
    opportunity_id: int | None
    owner_id: int | None
    valid_until: str
    subtotal: str
    discount: str
    tax: str
    total: str
    cost: str
    expected_profit: str
    note: str | None
    decided_at: str | None
    decided_by: str | None
    lines: list[QuoteLineOut]


class QuoteQuery(PageQuery):
    customer_id: int | None = None
    opportunity_id: int | None = None
    status: Literal[svc.QUOTE_STATUSES] | None = None  # type: ignore[valid-type]


@api.operation(bp, "/quotes", "POST", summary="报价: a quote priced on the server from its lines", tags=("sales",),
               body=QuoteIn, response=QuoteOut, status=201)
def create_quote(body: QuoteIn):
    return svc.quote_dict(svc.create_quote(g.actor, body.model_dump()))


class FromOpportunityIn(Model):
    valid_until: date | None = None
    note: str | None = Field(default=None, max_length=2000)


@api.operation(bp, "/opportunities/<int:opp_id>/quote", "POST", summary="商机下推报价: a draft quote from the opportunity's products",
               tags=("sales",), body=FromOpportunityIn, response=QuoteOut, status=201)
def quote_from_opportunity(opp_id: int, body: FromOpportunityIn):
    return svc.quote_dict(svc.quote_from_opportunity(g.actor, opp_id, body.model_dump()))


@api.operation(bp, "/quotes", "GET", summary="Quotes within the data scope", tags=("sales",), query=QuoteQuery,
               response=page_of(QuoteOut))
def list_quotes(query: QuoteQuery):
    rows, total = svc.list_quotes(g.actor, customer_id=query.customer_id, opportunity_id=query.opportunity_id,
                                  status=query.status, page=query.page, per_page=query.per_page)
    return {"items": [svc.quote_dict(q) for q in rows], "total": total}


@api.operation(bp, "/quotes/<int:quote_id>", "GET", summary="One quote", tags=("sales",), response=QuoteOut)
def get_quote(quote_id: int):
    return svc.quote_dict(get_visible(g.actor, Quote, quote_id))


@api.operation(bp, "/quotes/<int:quote_id>/revisions", "POST", summary="A new version of the quote (the old one is superseded)",
               tags=("sales",), body=QuoteRevision, response=QuoteOut, status=201)
def revise_quote(quote_id: int, body: QuoteRevision):
    return svc.quote_dict(svc.revise_quote(g.actor, quote_id, body.model_dump(exclude_unset=True)))


class DecisionIn(Model):
    by: str | None = Field(default=None, max_length=100, description="who answered for the customer")


def _quote_move(move: str):
    def view(quote_id: int, body: DecisionIn):
        return svc.quote_dict(svc.move_quote(g.actor, quote_id, move, body.by, on_sent=tell_quote_customer))

    view.__name__ = f"{move}_quote"
    return view


for _move, _summary in (("send", "Send the quote: the customer's verified WeChat users get a notice with its page"), ("accept", "The customer accepted the quote"),
                        ("reject", "The customer turned the quote down")):
    api.operation(bp, f"/quotes/<int:quote_id>/{_move}", "POST", summary=_summary, tags=("sales",), body=DecisionIn,
                  response=QuoteOut)(_quote_move(_move))


class PlanItem(Model):
    due_date: date
    amount: Money


class ContractIn(Model):
    customer_id: int
    quote_id: int | None = None
    opportunity_id: int | None = None
    title: str | None = Field(default=None, max_length=200)
    amount: Money | None = Field(default=None, description="without a quote or lines; with a quote it must equal its total")
    lines: list[QuoteLineIn] | None = Field(default=None, min_length=1, max_length=svc.MAX_LINES)
    payment_plan: list[PlanItem] = Field(min_length=1, max_length=svc.MAX_INSTALMENTS)
    signed_on: date | None = None
    note: str | None = Field(default=None, max_length=2000)


class InstalmentOut(Model):
    id: int
    seq: int
    due_date: str
    amount: str
    received: str
    outstanding: str
    state: str


class ContractLineOut(Model):
    id: int
    seq: int
    product_id: int
    name: str
    quantity: str
    unit_price: str
    discount_pct: str
    tax_rate: str
    total: str
    ordered: str = Field(description="taken by sales orders so far")
    to_order: str


class ContractOut(Model):
    id: int
    number: str
    title: str
    status: str
    status_label: str
    customer_id: int
    opportunity_id: int | None
    quote_id: int | None
    owner_id: int | None
    amount: str
    received: str
    outstanding: str
    signed_on: str | None
    approved_at: str | None = Field(description="when it was decided (approved or rejected)")
    approved_by_id: int | None = Field(default=None, description="who decided")
    decision_comment: str | None = Field(default=None, description="the approver's words (审批意见 / 驳回原因)")
    created_at: str | None = None
    note: str | None
    instalments: list[InstalmentOut]
    lines: list[ContractLineOut] = Field(default_factory=list, description="合同明细: from the quote or the lines given; none for an amount-only contract")


class ContractQuery(PageQuery):
    customer_id: int | None = None
    status: Literal[svc.CONTRACT_STATUSES] | None = None  # type: ignore[valid-type]


@api.operation(bp, "/contracts", "POST", summary="合同 with its payment plan (waits for approval)", tags=("sales",),
               body=ContractIn, response=ContractOut, status=201)
def create_contract(body: ContractIn):
    return svc.contract_dict(svc.create_contract(g.actor, body.model_dump(exclude_unset=True)))


@api.operation(bp, "/contracts", "GET", summary="Contracts within the data scope", tags=("sales",), query=ContractQuery,
               response=page_of(ContractOut))
def list_contracts(query: ContractQuery):
    rows, total = svc.list_contracts(g.actor, customer_id=query.customer_id, status=query.status, page=query.page,
                                     per_page=query.per_page)
    return {"items": [svc.contract_dict(c) for c in rows], "total": total}


@api.operation(bp, "/contracts/<int:contract_id>", "GET", summary="One contract with its instalments", tags=("sales",),
               response=ContractOut)
def get_contract(contract_id: int):
    return svc.contract_dict(get_visible(g.actor, Contract, contract_id))


class ApproveIn(Model):
    comment: str | None = Field(default=None, max_length=500)


class ChangeIn(Model):
    reason: str = Field(min_length=1, max_length=500)
    amount: Money | None = Field(default=None, description="the new amount (default: unchanged)")
    title: str | None = Field(default=None, max_length=200)
    payment_plan: list[PlanItem] | None = Field(default=None, max_length=svc.MAX_INSTALMENTS,
                                                description="replaces the instalments with nothing received")


@api.operation(bp, "/contracts/<int:contract_id>/changes", "POST", summary="合同变更: a versioned change, approved before it applies",
               tags=("sales",), body=ChangeIn, status=201)
def request_contract_change(contract_id: int, body: ChangeIn):
    from crm_core.sales import contract_changes

    data = body.model_dump()
    if data["amount"] is not None:
        data["amount"] = str(data["amount"])
    if data["payment_plan"] is not None:
        data["payment_plan"] = [{**p, "amount": str(p["amount"])} for p in data["payment_plan"]]
    return contract_changes.change_dict(contract_changes.request_change(g.actor, contract_id, data))


@api.operation(bp, "/contracts/<int:contract_id>/changes", "GET", summary="A contract's changes, each with before and after",
               tags=("sales",))
def list_contract_changes(contract_id: int):
    from crm_core.sales import contract_changes

    get_visible(g.actor, Contract, contract_id)
    items = [contract_changes.change_dict(ch) for ch in contract_changes.changes_of(contract_id)]
    return {"items": items, "total": len(items)}


@api.operation(bp, "/contracts/<int:contract_id>/approve", "POST", summary="Approve a contract once (the customer turns trading)",
               tags=("sales",), body=ApproveIn, response=ContractOut)
def approve_contract(contract_id: int, body: ApproveIn):
    return svc.contract_dict(svc.approve_contract(g.actor, contract_id, body.comment))


class ReceiptIn(Model):
    contract_id: int
    instalment_id: int | None = None
    amount: Money
    received_at: date | None = Field(default=None, description="the day the money came in (default today)")
    method: Literal[svc.RECEIPT_METHODS] = "bank"  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=500)


class AllocationOut(Model):
    instalment_id: int
    amount: str


class ReceiptOut(Model):
    id: int
    number: str
    contract_id: int
    customer_id: int
    amount: str
    received_at: str
    method: str | None
    note: str | None
    allocations: list[AllocationOut]


@api.operation(bp, "/receipts", "POST", summary="回款: matched to an instalment or to the oldest open ones (honours Idempotency-Key)",
               tags=("sales",), body=ReceiptIn, response=ReceiptOut, status=201)
def record_receipt(body: ReceiptIn):
    return svc.receipt_dict(svc.record_receipt(g.actor, body.model_dump()))


@api.operation(bp, "/quotes/<int:quote_id>/pdf", "GET", summary="The quote as a PDF (报价单, company header, capital-numeral total)",
               tags=("sales",))
def quote_pdf(quote_id: int):
    return quote_pdf_response(get_visible(g.actor, Quote, quote_id))


class TargetIn(Model):
    employee_id: int
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description='"2026-12"')
    amount: Money


class TargetsIn(Model):
    targets: list[TargetIn] = Field(min_length=1, max_length=12_000)


class TargetsOut(Model):
    saved: int


@api.operation(bp, "/sales-targets", "PUT", summary="Set monthly sales targets (销售目标; 0 clears one; all or nothing)",
               tags=("sales",), body=TargetsIn, response=TargetsOut)
def set_targets(body: TargetsIn):
    return {"saved": svc.set_targets(g.actor, [t.model_dump() for t in body.targets])}


class OrderLineIn(Model):
    contract_line_id: int
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=4)


class OrderIn(Model):
    lines: list[OrderLineIn] = Field(min_length=1, max_length=svc.MAX_LINES)
    required_on: date | None = None
    address: str | None = Field(default=None, max_length=300)
    note: str | None = Field(default=None, max_length=2000)


class OrderLineOut(Model):
    id: int
    seq: int
    contract_line_id: int
    product_id: int
    name: str
    quantity: str
    amount: str
    delivered: str
    to_deliver: str


class DeliveryLineOut(Model):
    order_line_id: int
    quantity: str
    amount: str
    serial_nos: list[str]


class DeliveryOut(Model):
    id: int
    number: str
    order_id: int
    shipped_on: str
    amount: str
    carrier: str | None
    note: str | None
    lines: list[DeliveryLineOut]


class OrderOut(Model):
    id: int
    number: str
    contract_id: int
    customer_id: int
    owner_id: int | None
    status: str
    status_label: str
    amount: str
    delivered_amount: str
    required_on: str | None
    address: str | None
    note: str | None
    created_at: str | None
    lines: list[OrderLineOut]
    deliveries: list[DeliveryOut]


class OrderQuery(PageQuery):
    contract_id: int | None = None
    customer_id: int | None = None
    status: Literal[orders.ORDER_STATUSES] | None = None  # type: ignore[valid-type]


@api.operation(bp, "/contracts/<int:contract_id>/orders", "POST", tags=("sales",), body=OrderIn, response=OrderOut, status=201,
               summary="合同下推订单: quantities of an approved contract's lines (never beyond the contract)")
def create_order(contract_id: int, body: OrderIn):
    return orders.order_dict(orders.create_order(g.actor, contract_id, body.model_dump()))


@api.operation(bp, "/orders", "GET", summary="Sales orders within the data scope (销售订单)", tags=("sales",), query=OrderQuery,
               response=page_of(OrderOut))
def list_orders(query: OrderQuery):
    rows, total = orders.list_orders(g.actor, contract_id=query.contract_id, customer_id=query.customer_id, status=query.status,
                                     page=query.page, per_page=query.per_page)
    return {"items": [orders.order_dict(o) for o in rows], "total": total}


@api.operation(bp, "/orders/<int:order_id>", "GET", summary="One sales order with its deliveries", tags=("sales",), response=OrderOut)
def get_order(order_id: int):
    return orders.order_dict(get_visible(g.actor, SalesOrder, order_id))


class CancelOrderIn(Model):
    reason: str | None = Field(default=None, max_length=200)


@api.operation(bp, "/orders/<int:order_id>/cancel", "POST", summary="Cancel an order nothing was shipped of (its quantities return to the contract)",
               tags=("sales",), body=CancelOrderIn, response=OrderOut)
def cancel_order(order_id: int, body: CancelOrderIn):
    return orders.order_dict(orders.cancel_order(g.actor, order_id, body.reason))


class DeliveryLineIn(Model):
    order_line_id: int
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=4)
    serial_nos: list[str] = Field(default_factory=list, max_length=orders.MAX_SERIALS,
                                  description="one per unit shipped, or none; each becomes a product archive of the customer")


class DeliveryIn(Model):
    lines: list[DeliveryLineIn] = Field(min_length=1, max_length=svc.MAX_LINES)
    shipped_on: date | None = Field(default=None, description="default today")
    carrier: str | None = Field(default=None, max_length=100, description="物流公司 / 运单号")
    note: str | None = Field(default=None, max_length=500)


@api.operation(bp, "/orders/<int:order_id>/deliveries", "POST", tags=("sales",), body=DeliveryIn, response=OrderOut, status=201,
               summary="发货 / 销售出库: ship quantities of the order's lines (never beyond the order); serials become product archives")
def record_delivery(order_id: int, body: DeliveryIn):
    data = body.model_dump()
    data["serial_nos"] = {str(ln["order_line_id"]): ln.pop("serial_nos") for ln in data["lines"]}
    d = orders.record_delivery(g.actor, order_id, data)
    return orders.order_dict(get_visible(g.actor, SalesOrder, d.order_id))


exports.register(bp, api, "/quotes", "报价单", "quote", QuoteQuery, svc.list_quotes,
                 lambda rows: [svc.quote_dict(q) for q in rows], [
                     exports.Column("number", "报价单号"), exports.Column("version", "版本"), exports.Column("status_label", "状态"),
                     exports.Column("customer_id", "客户", "customer"), exports.Column("valid_until", "有效期至"),
                     exports.Column("subtotal", "小计"), exports.Column("discount", "折扣"), exports.Column("tax", "税额"),
                     exports.Column("total", "合计"), exports.Column("expected_profit", "预计毛利"),
                     exports.Column("owner_id", "负责人", "employee")])
exports.register(bp, api, "/contracts", "合同", "contract", ContractQuery, svc.list_contracts,
                 lambda rows: [svc.contract_dict(c) for c in rows], [
                     exports.Column("number", "合同号"), exports.Column("title", "名称"), exports.Column("status_label", "状态"),
                     exports.Column("customer_id", "客户", "customer"), exports.Column("signed_on", "签订日期"),
                     exports.Column("amount", "合同金额"), exports.Column("received", "已回款"), exports.Column("outstanding", "未收"),
                     exports.Column("owner_id", "负责人", "employee")])
exports.register(bp, api, "/orders", "销售订单", "contract", OrderQuery, orders.list_orders,
                 lambda rows: [orders.order_dict(o) for o in rows], [
                     exports.Column("number", "订单号"), exports.Column("status_label", "状态"),
                     exports.Column("customer_id", "客户", "customer"), exports.Column("amount", "订单金额"),
                     exports.Column("delivered_amount", "已发货金额"), exports.Column("required_on", "要求交货日期"),
                     exports.Column("created_at", "下单时间", "time"), exports.Column("owner_id", "负责人", "employee")])
