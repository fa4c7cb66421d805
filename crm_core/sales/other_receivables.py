"""其他应收 (#19 item 8, docs/sales.md "Other receivables"): what a customer owes outside a contract. A completed work
order with paid-service income (有偿收入 fee lines) raises one, due on the day the work was done (on-site service is
usually paid then); money received is recorded against it, never beyond what is owed (a guarded update), and it is
paid when all is in. It counts in 应收款汇总表 with the contracts' instalments."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from crm_core.clock import local_today, utcnow
from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, ValidationFailed
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import org_timezone
from crm_core.sales import money
from crm_core.sales.documents import _date, _listing, _number
from crm_core.sales.models import OtherReceivable

LABELS = {"open": "待收", "paid": "已收齐"}
KINDS = {"service": "有偿服务"}


def raise_for_work_order(org_id: int, *, customer, work_order_id: int, amount: Decimal, description: str) -> OtherReceivable | None:
    """The paid service of a completed work order as 其他应收 (once per work order; nothing when nothing is owed)."""
    amount = money.money(amount)
    if amount <= 0 or db.session.scalar(select(OtherReceivable.id).where(OtherReceivable.work_order_id == work_order_id)):
        return None
    tz = org_timezone(org_id)
    r = OtherReceivable(org_id=org_id, owner_id=customer.owner_id, department_id=customer.department_id,
                        number=_number(org_id, "QY", tz), kind="service", customer_id=customer.id, work_order_id=work_order_id,
                        description=description[:300], amount=amount, received=Decimal("0.00"), due_date=local_today(tz),
                        status="open")
    db.session.add(r)
    db.session.flush()
    return r


@service
def record_payment(actor: Actor, receivable_id: int, data: dict) -> OtherReceivable:
    """收款: ``amount`` (≤ what is still owed) received on ``received_on`` (default today)."""
    actor.require("receipt", "create")
    r = get_visible(actor, OtherReceivable, receivable_id)
    amount = money.parse(data.get("amount"), "amount", label="收款金额")
    if amount <= 0:
        raise ValidationFailed("收款金额须大于 0。", fields={"amount": "must be > 0"})
    received_on = _date(data["received_on"], "received_on", "收款日期") if data.get("received_on") else local_today(
        org_timezone(actor.org_id))
    if received_on > local_today(org_timezone(actor.org_id)):
        raise ValidationFailed("收款日期不能晚于今天。", fields={"received_on": "in the future"})
    if not db.session.execute(update(OtherReceivable).where(
            OtherReceivable.id == r.id, OtherReceivable.status == "open", OtherReceivable.received + amount <= OtherReceivable.amount)
            .values(received=OtherReceivable.received + amount)).rowcount:
        db.session.refresh(r)
        if r.status == "paid":
            raise Conflict("这笔应收已收齐。", code="already_paid")
        raise ValidationFailed(f"收款金额超过未收的 {money.fmt(r.amount - r.received)} 元。", fields={"amount": "more than is owed"})
    db.session.execute(update(OtherReceivable).where(OtherReceivable.id == r.id, OtherReceivable.received >= OtherReceivable.amount)
                       .values(status="paid", paid_at=utcnow()))
    db.session.refresh(r)
    return r


def list_receivables(actor: Actor, *, status: str | None = None, customer_id: int | None = None, page: int = 1,
                     per_page: int = 20):
    return _listing(actor, OtherReceivable, page, per_page, status=status, customer_id=customer_id)


def receivable_dict(r: OtherReceivable) -> dict:
    return {"id": r.id, "number": r.number, "kind": r.kind, "kind_label": KINDS.get(r.kind, r.kind), "customer_id": r.customer_id,
            "work_order_id": r.work_order_id, "description": r.description, "amount": money.fmt(r.amount),
            "received": money.fmt(r.received), "outstanding": money.fmt(r.amount - r.received),
            "due_date": r.due_date.isoformat(), "status": r.status, "status_label": LABELS[r.status],
            "created_at": r.created_at.isoformat() + "Z"}


__all__ = ["raise_for_work_order", "record_payment", "list_receivables", "receivable_dict"]
