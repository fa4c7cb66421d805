"""费用申请 (console): my and my team's expense requests within the data scope — filed line by line (for a customer
or an opportunity), each with its approval route and history; approved ones are paid (已报销) by someone who may
approve expenses. The same calls as ``/api/v1/expenses``; approving is the approval engine's (待我审批)."""
from __future__ import annotations

from flask import g, render_template, request, url_for

from crm_core.customers.customers import customer_names
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.org.organization import employee_names
from crm_core.org.permissions import scoped_select
from crm_core.sales import expenses as svc
from crm_core.sales.models import ExpenseRequest, Opportunity
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.console.sales_documents import _approval_state, _page, visible_or_waiting
from wxapp.pages import act, denied

LINE_ROWS = 5


@bp.get("/expenses")
@console_login_required
def expenses():
    try:
        status = request.args.get("status") or None
        rows, total = svc.list_expenses(g.actor, status=status if status in svc.EXPENSE_LABELS else None, page=_page())
    except DomainError as exc:
        return denied(exc)
    can_create = g.actor.can("expense", "create")
    customers = list(db.session.scalars(scoped_select(g.actor, Customer).order_by(Customer.name).limit(500))) \
        if can_create and g.actor.can("customer", "view") else []
    return render_template("console/expenses.html", rows=rows, total=total, status=status, labels=svc.EXPENSE_LABELS,
                           categories=svc.CATEGORIES, customers=customer_names(r.customer_id for r in rows),
                           owners=employee_names(r.owner_id for r in rows), choices=customers, line_rows=LINE_ROWS,
                           can_create=can_create)


def _form_lines() -> list[dict]:
    f = request.form
    lines = []
    for item, amount, day in zip(f.getlist("item"), f.getlist("amount"), f.getlist("incurred_on")):
        if item.strip() or amount.strip():
            lines.append({"item": item, "amount": amount.strip() or None, "incurred_on": day or None})
    return lines


@bp.post("/expenses")
@console_login_required
def create_expense():
    f = request.form
    data = {"title": f.get("title"), "category": f.get("category") or "other", "lines": _form_lines(),
            "customer_id": int(f["customer_id"]) if (f.get("customer_id") or "").isdigit() else None, "note": f.get("note")}
    return act(lambda: svc.create_expense(g.actor, data), "费用申请已提交，等待审批。", url_for("console.expenses"),
               lambda e: url_for("console.expense", expense_id=e.id))


@bp.post("/opportunities/<int:opp_id>/expense")
@console_login_required
def expense_from_opportunity(opp_id: int):
    f = request.form
    data = {"title": f.get("title"), "category": f.get("category") or "travel", "lines": _form_lines(), "note": f.get("note")}
    return act(lambda: svc.expense_from_opportunity(g.actor, opp_id, data), "费用申请已提交，等待审批。",
               url_for("console.opportunity", opp_id=opp_id), lambda e: url_for("console.expense", expense_id=e.id))


@bp.get("/expenses/<int:expense_id>")
@console_login_required
def expense(expense_id: int):
    try:
        e = visible_or_waiting(ExpenseRequest, expense_id, "expense")
    except DomainError as exc:
        return denied(exc)
    opp = db.session.get(Opportunity, e.opportunity_id) if e.opportunity_id else None
    return render_template("console/expense.html", e=svc.expense_dict(e), customer=db.session.get(Customer, e.customer_id)
                           if e.customer_id else None, opp=opp, owner=employee_names([e.owner_id]).get(e.owner_id),
                           paid_by=employee_names([e.paid_by_id]).get(e.paid_by_id) if e.paid_by_id else None,
                           can_pay=e.status == "approved" and g.actor.can("expense", "approve"),
                           **_approval_state("expense", e.id))


@bp.post("/expenses/<int:expense_id>/pay")
@console_login_required
def pay_expense(expense_id: int):
    return act(lambda: svc.pay_expense(g.actor, expense_id), "已报销。", url_for("console.expense", expense_id=expense_id))



# --- 其他应收: paid service owed outside contracts, and its 收款 ------------------------------------------------
@bp.get("/other-receivables")
@console_login_required
def other_receivables():
    from crm_core.sales import other_receivables as orx

    try:
        status = request.args.get("status") if request.args.get("status") in orx.LABELS else None
        rows, total = orx.list_receivables(g.actor, status=status, page=_page())
    except DomainError as exc:
        return denied(exc)
    return render_template("console/other_receivables.html", rows=[orx.receivable_dict(r) for r in rows], total=total,
                           labels=orx.LABELS, status=status, customers=customer_names(r.customer_id for r in rows),
                           can_receive=g.actor.can("receipt", "create"))


@bp.post("/other-receivables/<int:receivable_id>/payments")
@console_login_required
def other_receivable_payment(receivable_id: int):
    from crm_core.sales import other_receivables as orx

    data = {"amount": (request.form.get("amount") or "").strip() or None, "received_on": request.form.get("received_on") or None}
    return act(lambda: orx.record_payment(g.actor, receivable_id, data), "收款已登记。", url_for("console.other_receivables"))
