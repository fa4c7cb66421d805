"""费用申请 (#19 items 5, 6, 8; docs/sales.md "Expense requests"): an employee's costs, line by line, for a customer,
an opportunity (商机下推) or a service work order (its fee lines, claimed once); the amount is the lines' sum computed
here (a client's total is never read). Submitted to the approval engine (``expense``: by default the requester's
superior, with conditions on the amount as the organisation sets); approved, it is paid (已报销) by someone who may
approve expenses. States: pending (审批中) → approved (已批准) / rejected (已驳回); approved → paid (已报销)."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from crm_core import outbox
from crm_core.clock import local_today, utcnow
from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org import approvals_engine
from crm_core.org.permissions import Actor, get_visible, resolve_reference
from crm_core.org.settings import org_timezone
from crm_core.sales import money
from crm_core.sales.documents import _date, _listing, _number, _owner_fields, _visible_ids
from crm_core.sales.models import ExpenseLine, ExpenseRequest, Opportunity

CATEGORIES = {"travel": "差旅费", "entertainment": "业务招待费", "transport": "交通费", "marketing": "市场推广费",
              "service": "服务费用", "other": "其他"}
EXPENSE_LABELS = {"pending": "审批中", "approved": "已批准", "rejected": "已驳回", "paid": "已报销"}
MAX_LINES = 100


def _lines(raw, today) -> list[ExpenseLine]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("费用申请至少需要一行费用。", fields={"lines": "at least one"})
    if len(raw) > MAX_LINES:
        raise ValidationFailed(f"费用明细最多 {MAX_LINES} 行。", fields={"lines": f"at most {MAX_LINES}"})
    out = []
    for n, ln in enumerate(raw, 1):
        if not isinstance(ln, dict):
            raise ValidationFailed(f"第 {n} 行格式不正确。", fields={f"lines.{n}": "an object"})
        item = str(ln.get("item") or "").strip()[:200]
        if not item:
            raise ValidationFailed(f"第 {n} 行请填写费用项目。", fields={f"lines.{n}.item": "required"})
        amount = money.parse(ln.get("amount"), f"lines.{n}.amount", label=f"第 {n} 行金额")
        if amount <= 0:
            raise ValidationFailed(f"第 {n} 行金额须大于 0。", fields={f"lines.{n}.amount": "must be > 0"})
        incurred = _date(ln["incurred_on"], f"lines.{n}.incurred_on", f"第 {n} 行发生日期") if ln.get("incurred_on") else None
        if incurred is not None and incurred > today:
            raise ValidationFailed(f"第 {n} 行发生日期不能晚于今天。", fields={f"lines.{n}.incurred_on": "in the future"})
        out.append(ExpenseLine(seq=n, item=item, amount=amount, incurred_on=incurred,
                               note=(str(ln.get("note") or "").strip()[:500] or None), fee_line_id=ln.get("fee_line_id")))
    return out


@service
def create_expense(actor: Actor, data: dict, *, work_order_id: int | None = None, service_customer=None) -> ExpenseRequest:
    """A 费用申请 from its lines; submitted for approval at once. ``service_customer``: the customer of the work order
    it claims for (the service area has checked the work order; an engineer need not see the customer record)."""
    actor.require("expense", "create")
    category = data.get("category") or "other"
    if category not in CATEGORIES:
        raise ValidationFailed("费用类别无效。", fields={"category": f"one of {', '.join(CATEGORIES)}"})
    customer = opp = None
    if data.get("opportunity_id") is not None:
        opp = resolve_reference(actor, "opportunity_id", data["opportunity_id"])
    if service_customer is not None:
        customer = service_customer
    elif data.get("customer_id") is not None or opp is not None:
        customer = resolve_reference(actor, "customer_id", data.get("customer_id") or opp.customer_id)
        if opp is not None and opp.customer_id != customer.id:
            raise ValidationFailed("商机不属于该客户。", fields={"opportunity_id": "belongs to another customer"})
    tz = org_timezone(actor.org_id)
    lines = _lines(data.get("lines"), local_today(tz))
    amount = money.money(sum((ln.amount for ln in lines), Decimal(0)))
    title = (str(data.get("title") or "").strip()[:200]
             or f"{CATEGORIES[category]}{'（' + customer.name + '）' if customer else ''}")
    e = ExpenseRequest(**_owner_fields(actor), number=_number(actor.org_id, "FY", tz), title=title, category=category,
                       status="pending", amount=amount, customer_id=customer.id if customer else None,
                       opportunity_id=opp.id if opp else None, work_order_id=work_order_id,
                       note=(str(data.get("note") or "").strip()[:2000] or None))
    e.lines = lines
    db.session.add(e)
    db.session.flush()
    req = approvals_engine.submit(e.org_id, "expense", e.id, title=f"{e.number} {e.title}",
                                  detail=f"{CATEGORIES[category]} · {money.fmt(amount)} 元" + (f" · {customer.name}" if customer else ""),
                                  facts={"amount": amount}, requested_by=actor.employee_id, owner_id=e.owner_id,
                                  record=("expense", e.id))
    if req is None:  # the flow's conditions leave it out: approved as filed
        _decided(True)(actor, e.id, "无需审批")
        db.session.refresh(e)
    return e


@service
def expense_from_opportunity(actor: Actor, opp_id: int, data: dict) -> ExpenseRequest:
    """商机下推: a 费用申请 for the opportunity (and its customer), linked back to it."""
    opp = get_visible(actor, Opportunity, opp_id)
    return create_expense(actor, {**data, "opportunity_id": opp.id, "customer_id": opp.customer_id})


def _decided(approve: bool):
    def on_decided(actor: Actor, expense_id: int, comment: str | None) -> None:
        e = db.session.get(ExpenseRequest, expense_id)
        moved = db.session.execute(update(ExpenseRequest).where(ExpenseRequest.id == e.id, ExpenseRequest.status == "pending")
                                   .values(status="approved" if approve else "rejected", decided_at=utcnow())).rowcount
        db.session.refresh(e)
        if not moved:
            raise Conflict(f"费用申请当前为「{EXPENSE_LABELS[e.status]}」，无需再审批。", code="already_decided")
        if not approve:
            if comment:
                e.note = ((e.note + "\n") if e.note else "") + f"驳回意见：{comment}"
            for ln in e.lines:  # a rejected request lets go of the work order's fee lines: they may be claimed again
                ln.fee_line_id = None
        if e.owner_id and e.owner_id != actor.employee_id:
            outbox.notify_staff(e.owner_id, "expense_decided",
                                f"费用申请 {e.number}（{money.fmt(e.amount)} 元）{'已批准' if approve else '未获批准'}。"
                                + (comment or "" if not approve else ""),
                                org_id=e.org_id, dedupe_key=f"expense-decided:{e.id}", expense_id=e.id)
        db.session.flush()
    return on_decided


approvals_engine.register(approvals_engine.DocType(
    code="expense", label="费用申请", on_approved=_decided(True), on_rejected=_decided(False),
    default_steps=lambda org_id: [{"name": "上级审批", "approver": "manager", "levels": 1, "mode": "any"}],
    permission=("expense", "approve"), visible=_visible_ids(ExpenseRequest), facts=("amount",), notice_kind="approval_requested",
    notice_refs=lambda doc_id: {"expense_id": doc_id}))


@service
def approve_expense(actor: Actor, expense_id: int, comment: str | None = None) -> ExpenseRequest:
    e = _for_decision(actor, expense_id)
    approvals_engine.decide(actor, "expense", e.id, True, comment)
    db.session.refresh(e)
    return e


@service
def reject_expense(actor: Actor, expense_id: int, comment: str | None = None) -> ExpenseRequest:
    e = _for_decision(actor, expense_id)
    approvals_engine.decide(actor, "expense", e.id, False, comment)
    db.session.refresh(e)
    return e


def _for_decision(actor: Actor, expense_id: int) -> ExpenseRequest:
    e = db.session.get(ExpenseRequest, expense_id)
    if e is None or e.org_id != actor.org_id:
        raise NotFound("费用申请不存在。")
    if e.status != "pending":
        raise Conflict(f"费用申请当前为「{EXPENSE_LABELS[e.status]}」，无需再审批。", code="already_decided")
    return e


@service
def pay_expense(actor: Actor, expense_id: int) -> ExpenseRequest:
    """已报销: an approved request is paid once (someone who may approve expenses: finance, a manager)."""
    actor.require("expense", "approve")
    e = get_visible(actor, ExpenseRequest, expense_id)
    if not db.session.execute(update(ExpenseRequest).where(ExpenseRequest.id == e.id, ExpenseRequest.status == "approved")
                              .values(status="paid", paid_at=utcnow(), paid_by_id=actor.employee_id)).rowcount:
        db.session.refresh(e)
        raise Conflict(f"费用申请当前为「{EXPENSE_LABELS[e.status]}」，" + ("已报销过。" if e.status == "paid" else "批准后才能报销。"),
                       code="illegal_transition")
    db.session.refresh(e)
    if e.owner_id and e.owner_id != actor.employee_id:
        outbox.notify_staff(e.owner_id, "expense_paid", f"费用申请 {e.number}（{money.fmt(e.amount)} 元）已报销。",
                            org_id=e.org_id, dedupe_key=f"expense-paid:{e.id}", expense_id=e.id)
    return e


def list_expenses(actor: Actor, *, status: str | None = None, opportunity_id: int | None = None,
                  customer_id: int | None = None, work_order_id: int | None = None, page: int = 1, per_page: int = 20):
    return _listing(actor, ExpenseRequest, page, per_page, status=status, opportunity_id=opportunity_id,
                    customer_id=customer_id, work_order_id=work_order_id)


def expense_dict(e: ExpenseRequest) -> dict:
    return {"id": e.id, "number": e.number, "title": e.title, "category": e.category, "category_label": CATEGORIES[e.category],
            "status": e.status, "status_label": EXPENSE_LABELS[e.status], "amount": money.fmt(e.amount),
            "customer_id": e.customer_id, "opportunity_id": e.opportunity_id, "work_order_id": e.work_order_id,
            "owner_id": e.owner_id, "note": e.note, "created_at": e.created_at.isoformat() + "Z",
            "paid_at": e.paid_at.isoformat() + "Z" if e.paid_at else None,
            "lines": [{"seq": ln.seq, "item": ln.item, "amount": money.fmt(ln.amount),
                       "incurred_on": ln.incurred_on.isoformat() if ln.incurred_on else None, "note": ln.note,
                       "fee_line_id": ln.fee_line_id} for ln in e.lines]}


def claimed_fee_lines(fee_line_ids) -> set[int]:
    """Which of these work-order fee lines an expense request (not rejected) already claims."""
    ids = [i for i in fee_line_ids if i]
    if not ids:
        return set()
    return set(db.session.scalars(select(ExpenseLine.fee_line_id).join(ExpenseRequest).where(
        ExpenseLine.fee_line_id.in_(ids), ExpenseRequest.status != "rejected")))


__all__ = ["CATEGORIES", "create_expense", "expense_from_opportunity", "approve_expense", "reject_expense", "pay_expense",
           "list_expenses", "expense_dict", "claimed_fee_lines"]
