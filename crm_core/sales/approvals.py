"""One approvals inbox (待我审批, SPEC ``/api/v1/approvals``): every document waiting for the caller's decision — what
the approval engine holds for them (``crm_core.org.approvals_engine``: an opportunity's stage, a quote, a contract, in
their own right, as someone's delegate, or as a holder of the approve permission) and a work plan submitted for 批阅
(the chosen reviewer). Each item's ``id`` names its kind and record (``stage-12``, ``contract-5``, ``quote-7``,
``expense-4``, ``plan-3``); approve and reject go to that kind's own service call."""
from __future__ import annotations

from crm_core.activities import activities as act_svc
from crm_core.errors import NotFound, ValidationFailed
from crm_core.org import approvals_engine
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor
from crm_core.sales import (
    contract_changes,
    documents,  # noqa: F401  (registers the quote and contract types)
    expenses,
)
from crm_core.sales import opportunities as opp_svc

KIND_LABELS = {"stage": "商机阶段", "contract": "合同", "contract_change": "合同变更", "quote": "报价单", "expense": "费用申请",
               "plan": "工作计划"}


def _iso(d):
    return d.isoformat() + "Z" if d else None


def inbox(actor: Actor) -> list[dict]:
    """What waits for me, oldest first: ``{id, kind, kind_label, title, detail, requested_by, requested_at, record,
    step, on_behalf_of}``."""
    items = approvals_engine.pending_items(actor)
    plans = act_svc.plans_to_review(actor)
    if plans:
        people = employee_names(p.owner_id for p in plans)
        for p in plans:
            items.append({"id": f"plan-{p.id}", "kind": "plan", "kind_label": KIND_LABELS["plan"], "title": p.title,
                          "detail": (p.summary or p.content or "")[:120], "requested_by": people.get(p.owner_id),
                          "requested_at": _iso(p.updated_at), "record": {"type": "work_plan", "id": p.id}, "step": None,
                          "on_behalf_of": None})
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
    if kind == "contract_change":
        ch = contract_changes.decide_change(actor, record_id, approve, comment)
        return {"id": ref, "status": ch.status, "comment": comment}
    if kind == "expense":
        e = (expenses.approve_expense(actor, record_id, comment) if approve
             else expenses.reject_expense(actor, record_id, comment))
        return {"id": ref, "status": e.status, "comment": comment}
    if kind == "quote":
        req = approvals_engine.decide(actor, "quote", record_id, approve, comment)
        return {"id": ref, "status": req.status, "comment": comment}
    if not approve and not comment:
        raise ValidationFailed("退回计划请写明原因。", fields={"comment": "required"})
    p = (act_svc.review_plan(actor, record_id, comment or "同意") if approve
         else act_svc.return_plan(actor, record_id, comment))
    return {"id": ref, "status": "approved" if approve else "returned", "comment": p.review_comment}
