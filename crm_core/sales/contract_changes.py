"""合同变更 (#19 item 3, docs/sales.md "Contract changes"): a change request against an effective contract — a new
amount, title, or the plan of what is still unpaid — with its reason, versioned (the contract's ``version`` + 1 when
it applies) and approved through the approval engine (``contract_change``: by default the owner's superior, else
anyone who may approve contracts in scope). One change waits per contract at a time.

What was received stays as it is: instalments that have money against them are kept (due date and amount), and the
change's ``payment_plan`` replaces the instalments with nothing received, so that kept + new add up to the new amount
exactly. The change applies on the last approval, under the contract's row lock (receipts take the same lock), and is
checked again then: a receipt that came in meanwhile or a contract changed meanwhile makes the approval a 409, never a
plan that no longer adds up."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import delete, select, update

from crm_core import outbox
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org import approvals_engine, integration
from crm_core.org.permissions import Actor, get_visible
from crm_core.sales import money
from crm_core.sales.documents import _plan, _visible_ids, contract_dict
from crm_core.sales.models import Contract, ContractChange, Instalment

CHANGE_LABELS = {"pending": "审批中", "approved": "已生效", "rejected": "已驳回"}


def _snapshot(c: Contract) -> dict:
    return {"amount": money.fmt(c.amount), "title": c.title,
            "instalments": [{"seq": i.seq, "due_date": i.due_date.isoformat(), "amount": money.fmt(i.amount),
                             "received": money.fmt(i.received)} for i in c.instalments]}


def _proposal(c: Contract, data: dict) -> dict:
    """The contract as the change would leave it, checked against what has been received."""
    amount = money.parse(data["amount"], "amount", label="变更后金额") if data.get("amount") not in (None, "") else c.amount
    title = (str(data.get("title") or "").strip()[:200]) or c.title
    kept = [i for i in c.instalments if i.received > 0]
    kept_total = sum((i.amount for i in kept), Decimal("0.00"))
    if amount < c.received:
        raise ValidationFailed(f"变更后金额不能少于已回款 {money.fmt(c.received)} 元。", fields={"amount": "below what was received"})
    plan_raw = data.get("payment_plan")
    if plan_raw is None:
        if amount != c.amount:
            raise ValidationFailed("金额变更时请同时调整未回款部分的付款计划。", fields={"payment_plan": "required when the amount changes"})
        plan = [(i.due_date, i.amount) for i in c.instalments if i.received == 0]
    elif amount - kept_total <= 0:
        if plan_raw:
            raise ValidationFailed("已回款的各期已覆盖变更后金额，无需新的付款计划。", fields={"payment_plan": "nothing left to plan"})
        plan = []
    else:
        try:
            plan = _plan(amount - kept_total, plan_raw)
        except ValidationFailed as exc:  # say it against the part that is planned
            raise ValidationFailed(exc.message.replace("与合同金额", "与未回款部分") + (
                f"（已回款各期共 {money.fmt(kept_total)} 元保持不变）" if kept else ""), fields=exc.fields) from None
        if kept and plan and plan[0][0] < max(i.due_date for i in kept):
            raise ValidationFailed("新的各期到期日不能早于已回款的各期。", fields={"payment_plan.0.due_date": "before a kept instalment"})
    if amount == c.amount and title == c.title and [(d, a) for d, a in plan] == [
            (i.due_date, i.amount) for i in c.instalments if i.received == 0]:
        raise ValidationFailed("没有任何变更。", fields={"amount": "unchanged"})
    return {"amount": money.fmt(amount), "title": title,
            "plan": [{"due_date": d.isoformat(), "amount": money.fmt(a)} for d, a in plan]}


@service
def request_change(actor: Actor, contract_id: int, data: dict) -> ContractChange:
    """合同变更 of an effective contract, with a reason; submitted for approval (or applied when no step applies)."""
    actor.require("contract", "edit")
    c = get_visible(actor, Contract, contract_id, action="edit")
    if c.status not in ("approved", "completed"):
        raise Conflict("合同生效后才能变更；待审批的合同请驳回后重新签订。", code="contract_not_effective")
    reason = str(data.get("reason") or "").strip()[:500]
    if not reason:
        raise ValidationFailed("请填写变更原因。", fields={"reason": "required"})
    if db.session.scalar(select(ContractChange.id).where(ContractChange.contract_id == c.id, ContractChange.status == "pending")):
        raise Conflict("这份合同已有一项变更在审批中。", code="change_pending")
    after = _proposal(c, data)
    change = ContractChange(org_id=c.org_id, contract_id=c.id, base_version=c.version, status="pending", reason=reason,
                            before=_snapshot(c), after=after, requested_by_id=actor.employee_id)
    db.session.add(change)
    db.session.flush()
    new_amount = Decimal(after["amount"])
    what = [f"金额 {money.fmt(c.amount)} → {after['amount']} 元"] if new_amount != c.amount else []
    if after["title"] != c.title:
        what.append(f"名称改为「{after['title'][:60]}」")
    req = approvals_engine.submit(
        c.org_id, "contract_change", change.id, title=f"{c.number} 第 {c.version + 1} 版",
        detail=" · ".join([reason[:60], *(what or ["调整付款计划"])]),
        facts={"amount": new_amount, "amount_change": abs(new_amount - c.amount)},
        requested_by=actor.employee_id, owner_id=c.owner_id, record=("contract", c.id))
    if req is None:
        _approved(actor, change.id, "无需审批")
    return change


def _approved(actor: Actor, change_id: int, comment: str | None) -> None:
    change = db.session.get(ContractChange, change_id)
    c = db.session.get(Contract, change.contract_id)
    # the contract's row lock (receipts write the same row): the version moves only from the one written against
    if not db.session.execute(update(Contract).where(Contract.id == c.id, Contract.version == change.base_version)
                              .values(version=Contract.version + 1)).rowcount:
        raise Conflict("合同在提交变更后已被修改，请驳回这项变更后重新申请。", code="stale_change")
    db.session.refresh(c)
    for i in c.instalments:
        db.session.refresh(i)
    unpaid_now = [i for i in c.instalments if i.received == 0]
    if [i.seq for i in c.instalments if i.received > 0] != [s["seq"] for s in change.before["instalments"]
                                                            if Decimal(s["received"]) > 0]:
        raise Conflict("提交变更后又有回款，付款计划需重新调整：请驳回后重新申请。", code="stale_change")
    next_seq = max((i.seq for i in c.instalments), default=0) + 1
    db.session.execute(delete(Instalment).where(Instalment.id.in_([i.id for i in unpaid_now])))
    db.session.expire(c, ["instalments"])
    for n, part in enumerate(change.after["plan"]):
        db.session.add(Instalment(org_id=c.org_id, contract_id=c.id, seq=next_seq + n,
                                  due_date=date.fromisoformat(part["due_date"]),
                                  amount=Decimal(part["amount"]), received=Decimal("0.00")))
    db.session.flush()
    db.session.expire(c, ["instalments"])
    ordered = sorted(c.instalments, key=lambda i: (i.due_date, i.seq))
    for n, i in enumerate(ordered, 1):  # two passes: (contract, seq) is unique
        i.seq = 10_000 + n
    db.session.flush()
    for n, i in enumerate(ordered, 1):
        i.seq = n
    c.amount, c.title = Decimal(change.after["amount"]), change.after["title"]
    c.status = "completed" if c.received >= c.amount else "approved"
    change.status, change.decided_at = "approved", utcnow()
    c.note = ((c.note + "\n") if c.note else "") + f"第 {c.version} 版变更：{change.reason}"
    db.session.flush()
    db.session.refresh(c)
    if change.requested_by_id and change.requested_by_id != actor.employee_id:
        outbox.notify_staff(change.requested_by_id, "contract_changed", f"合同 {c.number} 的变更已审批通过，现为第 {c.version} 版。",
                            org_id=c.org_id, dedupe_key=f"contract-change:{change.id}:decided", contract_id=c.id)
    integration.emit(c.org_id, "contract.changed", f"contract:{c.id}:v{c.version}", contract_dict(c))


def _rejected(actor: Actor, change_id: int, comment: str | None) -> None:
    change = db.session.get(ContractChange, change_id)
    change.status, change.decided_at = "rejected", utcnow()
    db.session.flush()
    c = db.session.get(Contract, change.contract_id)
    if change.requested_by_id and change.requested_by_id != actor.employee_id:
        outbox.notify_staff(change.requested_by_id, "contract_changed", f"合同 {c.number} 的变更未通过。{comment or ''}",
                            org_id=c.org_id, dedupe_key=f"contract-change:{change.id}:decided", contract_id=c.id)


def _visible_changes(actor: Actor, ids: list[int]) -> set[int]:
    rows = db.session.execute(select(ContractChange.id, ContractChange.contract_id).where(ContractChange.id.in_(ids))).all()
    seen = _visible_ids(Contract)(actor, [cid for _, cid in rows])
    return {i for i, cid in rows if cid in seen}


approvals_engine.register(approvals_engine.DocType(
    code="contract_change", label="合同变更", on_approved=_approved, on_rejected=_rejected,
    default_steps=lambda org_id: [{"name": "上级审批", "approver": "manager", "levels": 1, "mode": "any"}],
    permission=("contract", "approve"), visible=_visible_changes, facts=("amount", "amount_change"),
    notice_kind="approval_requested", notice_refs=lambda doc_id: {}))


def decide_change(actor: Actor, change_id: int, approve: bool, comment: str | None = None) -> ContractChange:
    change = db.session.get(ContractChange, change_id)
    if change is None or change.org_id != actor.org_id:
        raise NotFound("合同变更不存在。")
    approvals_engine.decide(actor, "contract_change", change.id, approve, comment)
    db.session.refresh(change)
    return change


def changes_of(contract_id: int) -> list[ContractChange]:
    return list(db.session.scalars(select(ContractChange).where(ContractChange.contract_id == contract_id)
                                   .order_by(ContractChange.id)))


def change_dict(ch: ContractChange) -> dict:
    return {"id": ch.id, "contract_id": ch.contract_id, "version": ch.base_version + 1, "status": ch.status,
            "status_label": CHANGE_LABELS[ch.status], "reason": ch.reason, "before": ch.before, "after": ch.after,
            "requested_by_id": ch.requested_by_id, "created_at": ch.created_at.isoformat() + "Z",
            "decided_at": ch.decided_at.isoformat() + "Z" if ch.decided_at else None}
