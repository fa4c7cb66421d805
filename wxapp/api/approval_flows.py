"""The approval engine's settings and records (``crm_core.org.approvals_engine``, docs/approvals.md): each document
type's flow, the reminder period, delegations while away (审批委托), a record's approval history, and 催办."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.errors import NotFound
from crm_core.org import approvals_engine as engine
from crm_core.org.permissions import get_visible
from wxapp.api import bp
from wxapp.openapi import Model, api


class ConditionIn(Model):
    field: Literal["amount", "discount_pct", "max_line_discount_pct", "amount_change"]
    op: Literal["gt", "gte", "lt", "lte"]
    value: str = Field(min_length=1, max_length=20, description="a number: yuan for amount, percent for discounts")


class StepIn(Model):
    name: str | None = Field(default=None, max_length=30)
    approver: Literal["manager", "employees", "role", "permission"] = "manager"
    levels: int | None = Field(default=None, ge=1, le=5, description="manager: 1 = the owner's superior, 2 = theirs")
    employee_ids: list[int] | None = Field(default=None, max_length=engine.MAX_APPROVERS)
    role: str | None = Field(default=None, max_length=64)
    mode: Literal["any", "all"] = Field(default="any", description="any: 或签 (one decides); all: 会签 (everyone)")
    when: list[ConditionIn] = Field(default_factory=list, max_length=engine.MAX_CONDITIONS)
    match: Literal["any", "all"] = "any"


class FlowIn(Model):
    steps: list[StepIn] | None = Field(max_length=engine.MAX_STEPS, description="null: back to the default")


def _flow_type(doc_type: str) -> str:
    if doc_type not in engine.doc_types():
        raise NotFound("没有这种审批单据。")
    return doc_type


@api.operation(bp, "/approval-flows", "GET", summary="Each document type's approval flow (and whether it is the default)",
               tags=("settings",))
def get_flows():
    g.actor.require("organization", "edit")
    return engine.flows(g.actor.org_id)


@api.operation(bp, "/approval-flows/<doc_type>", "PUT", summary="Set a document type's approval flow (steps, conditions)",
               tags=("settings",), body=FlowIn)
def put_flow(doc_type: str, body: FlowIn):
    steps = None if body.steps is None else [s.model_dump(exclude_none=True) for s in body.steps]
    return engine.put_flow(g.actor, _flow_type(doc_type[:32]), steps)


class RemindIn(Model):
    remind_hours: int = Field(ge=0, le=720, description="0: no automatic reminders")


@api.operation(bp, "/settings/approval-reminders", "PUT", summary="After how many hours a pending approval is reminded (催办)",
               tags=("settings",), body=RemindIn)
def put_reminders(body: RemindIn):
    return engine.put_remind_hours(g.actor, body.remind_hours)


class DelegationIn(Model):
    delegate_id: int
    starts_on: date | None = None
    ends_on: date
    employee_id: int | None = Field(default=None, description="whose approvals (an administrator's choice; default: mine)")
    note: str | None = Field(default=None, max_length=200)


@api.operation(bp, "/approval-delegations", "GET", summary="Delegations in force or to come (mine; all for an administrator)",
               tags=("settings",))
def list_delegations():
    items = [engine.delegation_dict(d) for d in engine.list_delegations(g.actor)]
    return {"items": items, "total": len(items)}


@api.operation(bp, "/approval-delegations", "POST", summary="审批委托: someone decides my approvals while I am away",
               tags=("settings",), body=DelegationIn, status=201)
def create_delegation(body: DelegationIn):
    return engine.delegation_dict(engine.create_delegation(g.actor, body.model_dump()))


@api.operation(bp, "/approval-delegations/<int:delegation_id>", "DELETE", summary="End a delegation", tags=("settings",))
def revoke_delegation(delegation_id: int):
    return engine.delegation_dict(engine.revoke_delegation(g.actor, delegation_id))


def record_history(actor, record_type: str, record_id: int) -> list[dict]:
    """A record's approvals, after checking the caller sees it: a contract's, a quote's, an opportunity's stages."""
    from crm_core.sales.models import Contract, ExpenseRequest, Opportunity, OpportunityApproval, Quote

    model = {"contract": Contract, "quote": Quote, "expense": ExpenseRequest, "opportunity": Opportunity}.get(record_type)
    if model is None:
        raise NotFound("没有这种记录。")
    get_visible(actor, model, record_id)
    if record_type == "opportunity":
        from sqlalchemy import select

        from crm_core.db import db

        ids = db.session.scalars(select(OpportunityApproval.id).where(OpportunityApproval.opportunity_id == record_id))
        return engine.history(actor.org_id, "stage", ids)
    return engine.history(actor.org_id, record_type, [record_id])


class HistoryQuery(Model):
    type: Literal["contract", "quote", "expense", "opportunity"]
    id: int


@api.operation(bp, "/approvals/history", "GET", summary="A record's approval history: each request, its steps and decisions",
               tags=("opportunities",), query=HistoryQuery)
def approval_history(query: HistoryQuery):
    items = record_history(g.actor, query.type, query.id)
    return {"items": items, "total": len(items)}


@api.operation(bp, "/approvals/<ref>/remind", "POST", summary="催办: the submitter reminds the step's approvers (once an hour)",
               tags=("opportunities",))
def remind(ref: str):
    return {"reminded": engine.remind(g.actor, *engine.parse_ref(ref))}
