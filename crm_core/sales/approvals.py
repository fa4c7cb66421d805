"""One approvals inbox (待我审批, SPEC ``/api/v1/approvals``): every document waiting for the caller's decision — an
opportunity's stage (``OpportunityApproval``, the named approver), a contract (``contract:approve`` within scope, not
one's own) and a work plan submitted for 批阅 (the chosen reviewer). Each item's ``id`` names its kind and record
(``stage-12``, ``contract-5``, ``plan-3``); approve and reject go to that kind's own service call."""
from __future__ import annotations

from sqlalchemy import select

from crm_core.activities import activities as act_svc
from crm_core.customers.customers import customer_names
from crm_core.db import db
from crm_core.errors import NotFound, ValidationFailed
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor
from crm_core.sales import documents, money
from crm_core.sales import opportunities as opp_svc
from crm_core.sales.models import Opportunity, SalesStage

KIND_LABELS = {"stage": "商机阶段", "contract": "合同", "plan": "工作计划"}


def _iso(d):
    return d.isoformat() + "Z" if d else None


def inbox(actor: Actor) -> list[dict]:
    """What waits for me, oldest first: ``{id, kind, kind_label, title, detail, requested_by, requested_at, record}``."""
    items: list[dict] = []
    stages = opp_svc.pending_approvals(actor)
    if stages:
        opps = {o.id: o for o in db.session.scalars(select(Opportunity).where(
            Opportunity.id.in_({a.opportunity_id for a in stages})))}
        names = {s.id: s.name for s in db.session.scalars(select(SalesStage).where(
            SalesStage.id.in_({a.stage_id for a in stages})))}
        people = employee_names(a.requested_by_id for a in stages)
        custs = customer_names(o.customer_id for o in opps.values())
        for a in stages:
            o = opps[a.opportunity_id]
            items.append({"id": f"stage-{a.id}", "kind": "stage", "title": o.name,
                          "detail": f"申请进入「{names.get(a.stage_id, '')}」 · {custs.get(o.customer_id, '')}"
                                    + (f" · {money.fmt(o.amount)} 元" if o.amount is not None else ""),
                          "requested_by": people.get(a.requested_by_id), "requested_at": _iso(a.created_at),
                          "record": {"type": "opportunity", "id": o.id}})
    contracts = documents.pending_contracts(actor)
    if contracts:
        people = employee_names(c.owner_id for c in contracts)
        custs = customer_names(c.customer_id for c in contracts)
        for c in contracts:
            items.append({"id": f"contract-{c.id}", "kind": "contract", "title": f"{c.number} {c.title}",
                          "detail": f"{custs.get(c.customer_id, '')} · {money.fmt(c.amount)} 元",
                          "requested_by": people.get(c.owner_id), "requested_at": _iso(c.created_at),
                          "record": {"type": "contract", "id": c.id}})
    plans = act_svc.plans_to_review(actor)
    if plans:
        people = employee_names(p.owner_id for p in plans)
        for p in plans:
            items.append({"id": f"plan-{p.id}", "kind": "plan", "title": p.title,
                          "detail": (p.summary or p.content or "")[:120], "requested_by": people.get(p.owner_id),
                          "requested_at": _iso(p.updated_at), "record": {"type": "work_plan", "id": p.id}})
    for it in items:
        it["kind_label"] = KIND_LABELS[it["kind"]]
    items.sort(key=lambda i: (i["requested_at"] or "", i["id"]))
    return items


def _ref(ref: str) -> tuple[str, int]:
    kind, _, num = (ref or "").partition("-")
    if kind not in KIND_LABELS or not num.isdigit():
        raise NotFound("审批事项不存在。")
    return kind, int(num)


def decide(actor: Actor, ref: str, approve: bool, comment: str | None = None) -> dict:
    """Approve or reject the item ``ref`` with an optional comment (a plan sent back needs one)."""
    kind, record_id = _ref(ref)
    comment = (comment or "").strip() or None
    if kind == "stage":
        a = opp_svc.decide_approval(actor, record_id, approve, comment)
        return {"id": ref, "status": a.status, "comment": a.comment}
    if kind == "contract":
        c = (documents.approve_contract(actor, record_id, comment) if approve
             else documents.reject_contract(actor, record_id, comment))
        return {"id": ref, "status": c.status, "comment": comment}
    if not approve and not comment:
        raise ValidationFailed("退回计划请写明原因。", fields={"comment": "required"})
    p = (act_svc.review_plan(actor, record_id, comment or "同意") if approve
         else act_svc.return_plan(actor, record_id, comment))
    return {"id": ref, "status": "approved" if approve else "returned", "comment": p.review_comment}
