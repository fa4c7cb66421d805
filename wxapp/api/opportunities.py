"""Opportunities: stages and their conditions, approvals, products, competitors, win/lose."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.org.permissions import get_visible
from crm_core.sales import opportunities as svc
from crm_core.sales.models import Opportunity
from wxapp import exports
from wxapp.api import bp
from wxapp.api.customers import Collision
from wxapp.openapi import Model, PageQuery, api, page_of


class ProductLine(Model):
    product_id: int
    quantity: int = Field(default=1, ge=1, le=100000)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


class OpportunityIn(Model):
    name: str = Field(min_length=1, max_length=200)
    customer_id: int
    contact_id: int | None = None
    method_id: int | None = None
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    expected_close_date: date | None = None
    source: str | None = Field(default=None, max_length=32)
    owner_id: int | None = None
    note: str | None = Field(default=None, max_length=2000)
    products: list[ProductLine] = Field(default_factory=list, max_length=100)


class OpportunityPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    contact_id: int | None = None
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    expected_close_date: date | None = None
    note: str | None = Field(default=None, max_length=2000)
    products: list[ProductLine] | None = Field(default=None, max_length=100)


class StageBrief(Model):
    id: int
    name: str
    seq: int
    probability: int


class OpportunityOut(Model):
    id: int
    name: str
    customer_id: int
    contact_id: int | None
    method_id: int
    stage: StageBrief
    status: str
    amount: float | None
    expected_close_date: str | None
    owner_id: int | None
    source: str | None
    close_reason: str | None
    stage_entered_at: str
    collisions: list[Collision] = []
    products: list[dict] = []
    competitors: list[dict] = []
    stages: list[dict] = []


class OpportunityQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)
    status: Literal["open", "won", "lost"] | None = None
    stage_id: int | None = None
    customer_id: int | None = None


@api.operation(bp, "/opportunities", "GET", summary="Opportunities within the caller's data scope",
               tags=("opportunities",), query=OpportunityQuery, response=page_of(OpportunityOut))
def list_opportunities(query: OpportunityQuery):
    rows, total = svc.list_opportunities(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                         per_page=query.per_page)
    return {"items": [svc.opportunity_dict(o) for o in rows], "total": total}


@api.operation(bp, "/opportunities", "POST", summary="Register an opportunity (商机备案)", tags=("opportunities",),
               body=OpportunityIn, response=OpportunityOut, status=201)
def create_opportunity(body: OpportunityIn):
    data = body.model_dump()
    opp, hits = svc.create_opportunity(g.actor, data)
    return {**svc.opportunity_dict(opp, detail=True), "collisions": [h.to_dict() for h in hits]}


@api.operation(bp, "/opportunities/<int:opp_id>", "GET", summary="One opportunity with its stage picture",
               tags=("opportunities",), response=OpportunityOut)
def get_opportunity(opp_id: int):
    """`stages` lists every stage with `state` (done/current/todo) and, for later stages,
    what entering them still needs."""
    return svc.opportunity_dict(get_visible(g.actor, Opportunity, opp_id), detail=True)


@api.operation(bp, "/opportunities/<int:opp_id>", "PATCH", summary="Change an opportunity", tags=("opportunities",),
               body=OpportunityPatch, response=OpportunityOut)
def update_opportunity(opp_id: int, body: OpportunityPatch):
    return svc.opportunity_dict(svc.update_opportunity(g.actor, opp_id, body.model_dump(exclude_unset=True)), detail=True)


class AdvanceIn(Model):
    stage_id: int


@api.operation(bp, "/opportunities/<int:opp_id>/advance", "POST", summary="Move to a stage (商机跟踪)",
               tags=("opportunities",), body=AdvanceIn, response=OpportunityOut)
def advance(opp_id: int, body: AdvanceIn):
    """409 `stage_conditions_missing` with `missing` naming each unmet condition, or
    `stage_not_skippable`."""
    return svc.opportunity_dict(svc.advance(g.actor, opp_id, body.stage_id), detail=True)


class CompetitorIn(Model):
    name: str = Field(min_length=1, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    price: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    share: int | None = Field(default=None, ge=0, le=100)
    note: str | None = Field(default=None, max_length=500)


class CompetitorsIn(Model):
    competitors: list[CompetitorIn] = Field(max_length=20)


@api.operation(bp, "/opportunities/<int:opp_id>/competitors", "PUT", summary="Replace the competitors",
               tags=("opportunities",), body=CompetitorsIn, response=OpportunityOut)
def competitors(opp_id: int, body: CompetitorsIn):
    return svc.opportunity_dict(svc.set_competitors(g.actor, opp_id, [c.model_dump() for c in body.competitors]), detail=True)


class WinIn(Model):
    reason: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


@api.operation(bp, "/opportunities/<int:opp_id>/win", "POST", summary="Won (赢单): the customer becomes trading",
               tags=("opportunities",), body=WinIn, response=OpportunityOut)
def win(opp_id: int, body: WinIn):
    return svc.opportunity_dict(svc.win(g.actor, opp_id, body.reason, body.amount))


class LoseIn(Model):
    reason: str = Field(min_length=1, max_length=200)
    lost_to: str | None = Field(default=None, max_length=200, description="the competitor who won it (added and marked)")


@api.operation(bp, "/opportunities/<int:opp_id>/lose", "POST", summary="Lost, with a reason", tags=("opportunities",),
               body=LoseIn, response=OpportunityOut)
def lose(opp_id: int, body: LoseIn):
    return svc.opportunity_dict(svc.lose(g.actor, opp_id, body.reason, body.lost_to))


class ApprovalOut(Model):
    id: int
    opportunity_id: int
    stage_id: int
    requested_by_id: int
    approver_id: int
    status: str
    comment: str | None


def _approval(a) -> dict:
    return {"id": a.id, "opportunity_id": a.opportunity_id, "stage_id": a.stage_id, "requested_by_id": a.requested_by_id,
            "approver_id": a.approver_id, "status": a.status, "comment": a.comment}


@api.operation(bp, "/opportunities/<int:opp_id>/approvals", "POST", summary="Ask for the approval a stage needs",
               tags=("opportunities",), body=AdvanceIn, response=ApprovalOut, status=201)
def request_approval(opp_id: int, body: AdvanceIn):
    return _approval(svc.request_approval(g.actor, opp_id, body.stage_id))


class InboxQuery(Model):
    mine: bool = Field(default=True, description="what waits for my decision (the only inbox there is)")


class InboxItem(Model):
    id: str = Field(description="kind and record: stage-12, contract-5, quote-7, plan-3")
    kind: Literal["stage", "contract", "contract_change", "quote", "expense", "plan"]
    kind_label: str
    title: str
    detail: str
    requested_by: str | None
    requested_at: str | None
    record: dict
    step: str | None = Field(default=None, description="the flow's step waiting for me: 第 1/2 步 · 上级审批")
    on_behalf_of: str | None = Field(default=None, description="whose task I decide as their delegate (审批委托)")


@api.operation(bp, "/approvals", "GET", summary="待我审批: every document waiting for my decision (stages, quotes, contracts, plans)",
               tags=("opportunities",), query=InboxQuery, response=page_of(InboxItem))
def my_approvals(query: InboxQuery):
    from crm_core.sales import approvals

    items = approvals.inbox(g.actor)
    return {"items": items, "total": len(items)}


def _inbox(actor, mine: bool = True, page: int = 1, per_page: int = 20):
    from crm_core.sales import approvals

    items = approvals.inbox(actor)
    return items[(page - 1) * per_page:page * per_page], len(items)


exports.register(bp, api, "/approvals", "待我审批", "opportunity", InboxQuery, _inbox, list, [
    exports.Column("kind_label", "类型"), exports.Column("title", "事项"), exports.Column("detail", "说明"),
    exports.Column("requested_by", "申请人"), exports.Column("requested_at", "申请时间", "time")])


class CommentIn(Model):
    comment: str | None = Field(default=None, max_length=500)


@api.operation(bp, "/approvals/<ref>/approve", "POST", summary="Approve an item of the inbox (with an optional comment)",
               tags=("opportunities",), body=CommentIn)
def approve_item(ref: str, body: CommentIn):
    from crm_core.sales import approvals

    return approvals.decide(g.actor, ref[:40], True, body.comment)


@api.operation(bp, "/approvals/<ref>/reject", "POST", summary="Reject an item of the inbox (a plan is sent back; say why)",
               tags=("opportunities",), body=CommentIn)
def reject_item(ref: str, body: CommentIn):
    from crm_core.sales import approvals

    return approvals.decide(g.actor, ref[:40], False, body.comment)


class DecisionIn(Model):
    approve: bool
    comment: str | None = Field(default=None, max_length=500)


@api.operation(bp, "/approvals/<int:approval_id>/decision", "POST", summary="Approve or reject", tags=("opportunities",),
               body=DecisionIn, response=ApprovalOut)
def decide(approval_id: int, body: DecisionIn):
    return _approval(svc.decide_approval(g.actor, approval_id, body.approve, body.comment))


class StageIn(Model):
    name: str = Field(min_length=1, max_length=64)
    probability: int = Field(default=0, ge=0, le=100)
    required_fields: list[Literal["amount", "expected_close_date", "contact_id", "products", "competitors"]] = []
    requires_completed_activity: bool = False
    requires_approval: bool = False
    skippable: bool = False
    reminder_days: int | None = Field(default=None, ge=1, le=365)


class MethodIn(Model):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=100)
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=1, max_length=20)


@api.operation(bp, "/sales-methods", "GET", summary="Sales methods and their stages", tags=("opportunities",))
def methods():
    items = [svc.method_dict(m) for m in svc.list_methods(g.actor)]
    return {"items": items, "total": len(items)}


@api.operation(bp, "/sales-methods", "POST", summary="Define a sales method with stages and conditions",
               tags=("opportunities",), body=MethodIn, status=201)
def define_method(body: MethodIn):
    return svc.method_dict(svc.define_method(g.actor, body.model_dump()))


def _opportunity_rows(rows) -> list[dict]:
    return [{**d, "stage_name": d["stage"]["name"]} for d in (svc.opportunity_dict(o) for o in rows)]


exports.register(bp, api, "/opportunities", "商机", "opportunity", OpportunityQuery, svc.list_opportunities, _opportunity_rows, [
    exports.Column("name", "商机名称"), exports.Column("customer_id", "客户", "customer"), exports.Column("stage_name", "阶段"),
    exports.Column("amount", "金额"), exports.Column("expected_close_date", "预计成交"),
    exports.Column("status", "状态", "label:opportunity_status"), exports.Column("owner_id", "负责人", "employee"),
    exports.Column("close_reason", "赢单/输单原因")])
