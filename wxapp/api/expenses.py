"""费用申请 over HTTP (docs/sales.md "Expense requests"): file one from its lines, for a customer or an opportunity
(商机下推) or from a work order's fee lines; approve or reject (the approval engine: the inbox's ``expense-<id>``);
mark paid (已报销); list within the data scope and export. And 其他应收: the paid service owed outside contracts, with
its 收款."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.org.permissions import get_visible
from crm_core.sales import expenses as svc
from crm_core.sales.models import ExpenseRequest
from wxapp import exports
from wxapp.api import bp
from wxapp.openapi import Model, Money, PageQuery, api, page_of


class ExpenseLineIn(Model):
    item: str = Field(min_length=1, max_length=200)
    amount: Money
    incurred_on: date | None = None
    note: str | None = Field(default=None, max_length=500)


class ExpenseIn(Model):
    title: str | None = Field(default=None, max_length=200)
    category: Literal[tuple(svc.CATEGORIES)] = "other"  # type: ignore[valid-type]
    lines: list[ExpenseLineIn] = Field(min_length=1, max_length=svc.MAX_LINES)
    customer_id: int | None = None
    opportunity_id: int | None = None
    note: str | None = Field(default=None, max_length=2000)


class ExpenseFromIn(Model):
    title: str | None = Field(default=None, max_length=200)
    category: Literal[tuple(svc.CATEGORIES)] = "other"  # type: ignore[valid-type]
    lines: list[ExpenseLineIn] = Field(min_length=1, max_length=svc.MAX_LINES)
    note: str | None = Field(default=None, max_length=2000)


class ExpenseLineOut(Model):
    seq: int
    item: str
    amount: str
    incurred_on: str | None
    note: str | None
    fee_line_id: int | None


class ExpenseOut(Model):
    id: int
    number: str
    title: str
    category: str
    category_label: str
    status: str
    status_label: str
    amount: str
    customer_id: int | None
    opportunity_id: int | None
    work_order_id: int | None
    owner_id: int | None
    note: str | None
    created_at: str
    paid_at: str | None
    lines: list[ExpenseLineOut]


class ExpenseQuery(PageQuery):
    status: Literal[tuple(svc.EXPENSE_LABELS)] | None = None  # type: ignore[valid-type]
    customer_id: int | None = None
    opportunity_id: int | None = None
    work_order_id: int | None = None


class CommentIn(Model):
    comment: str | None = Field(default=None, max_length=500)


def _dump(body) -> dict:
    data = body.model_dump()
    data["lines"] = [{**ln, "amount": str(ln["amount"])} for ln in data["lines"]]
    return data


@api.operation(bp, "/expenses", "POST", summary="费用申请: an employee's costs, line by line; submitted for approval", tags=("sales",),
               body=ExpenseIn, response=ExpenseOut, status=201)
def create_expense(body: ExpenseIn):
    return svc.expense_dict(svc.create_expense(g.actor, _dump(body)))


@api.operation(bp, "/opportunities/<int:opp_id>/expense", "POST", summary="商机下推费用申请: an expense request for the opportunity",
               tags=("sales",), body=ExpenseFromIn, response=ExpenseOut, status=201)
def expense_from_opportunity(opp_id: int, body: ExpenseFromIn):
    return svc.expense_dict(svc.expense_from_opportunity(g.actor, opp_id, _dump(body)))


@api.operation(bp, "/expenses", "GET", summary="Expense requests within the data scope", tags=("sales",), query=ExpenseQuery,
               response=page_of(ExpenseOut))
def list_expenses(query: ExpenseQuery):
    rows, total = svc.list_expenses(g.actor, status=query.status, customer_id=query.customer_id,
                                    opportunity_id=query.opportunity_id, work_order_id=query.work_order_id,
                                    page=query.page, per_page=query.per_page)
    return {"items": [svc.expense_dict(e) for e in rows], "total": total}


@api.operation(bp, "/expenses/<int:expense_id>", "GET", summary="One expense request", tags=("sales",), response=ExpenseOut)
def get_expense(expense_id: int):
    return svc.expense_dict(get_visible(g.actor, ExpenseRequest, expense_id))


@api.operation(bp, "/expenses/<int:expense_id>/approve", "POST", summary="Approve my step of the expense request's flow",
               tags=("sales",), body=CommentIn, response=ExpenseOut)
def approve_expense(expense_id: int, body: CommentIn):
    return svc.expense_dict(svc.approve_expense(g.actor, expense_id, body.comment))


@api.operation(bp, "/expenses/<int:expense_id>/reject", "POST", summary="Reject the expense request (say why)",
               tags=("sales",), body=CommentIn, response=ExpenseOut)
def reject_expense(expense_id: int, body: CommentIn):
    return svc.expense_dict(svc.reject_expense(g.actor, expense_id, body.comment))


@api.operation(bp, "/expenses/<int:expense_id>/pay", "POST", summary="已报销: an approved request is paid, once", tags=("sales",),
               response=ExpenseOut)
def pay_expense(expense_id: int):
    return svc.expense_dict(svc.pay_expense(g.actor, expense_id))


exports.register(bp, api, "/expenses", "费用申请", "expense", ExpenseQuery, svc.list_expenses,
                 lambda rows: [svc.expense_dict(e) for e in rows], [
                     exports.Column("number", "单号"), exports.Column("title", "事由"), exports.Column("category_label", "类别"),
                     exports.Column("status_label", "状态"), exports.Column("amount", "金额"),
                     exports.Column("customer_id", "客户", "customer"), exports.Column("created_at", "申请时间", "time"),
                     exports.Column("owner_id", "申请人", "employee")])


# --- 其他应收 (crm_core.sales.other_receivables) ---------------------------------------------------------------
class OtherReceivableQuery(PageQuery):
    status: Literal["open", "paid"] | None = None
    customer_id: int | None = None


class PaymentIn(Model):
    amount: Money
    received_on: date | None = None


@api.operation(bp, "/other-receivables", "GET", summary="其他应收 (paid service) within the 回款 scope", tags=("sales",),
               query=OtherReceivableQuery)
def list_other_receivables(query: OtherReceivableQuery):
    from crm_core.sales import other_receivables as orx

    rows, total = orx.list_receivables(g.actor, status=query.status, customer_id=query.customer_id, page=query.page,
                                       per_page=query.per_page)
    return {"items": [orx.receivable_dict(r) for r in rows], "total": total}


@api.operation(bp, "/other-receivables/<int:receivable_id>/payments", "POST", summary="收款 against 其他应收 (never beyond what is owed)",
               tags=("sales",), body=PaymentIn)
def record_other_payment(receivable_id: int, body: PaymentIn):
    from crm_core.sales import other_receivables as orx

    return orx.receivable_dict(orx.record_payment(g.actor, receivable_id, {"amount": str(body.amount),
                                                                           "received_on": body.received_on}))
