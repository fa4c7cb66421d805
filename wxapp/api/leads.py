"""Leads: entry from any channel, assignment, collaboration, close, conversion."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal

from flask import g
from pydantic import Field

from crm_core.sales import leads as svc
from crm_core.sales.models import LEAD_SOURCES
from wxapp import exports
from wxapp.api import bp
from wxapp.api.customers import Collision
from wxapp.openapi import Model, PageQuery, UtcDateTime, api, page_of


class LeadIn(Model):
    name: str = Field(min_length=1, max_length=100)
    company: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=100)
    product_interest: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    source: Literal[LEAD_SOURCES] = "manual"  # type: ignore[valid-type]
    source_ref: str | None = Field(default=None, max_length=100)
    owner_id: int | None = None


class LeadPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    company: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=100)
    product_interest: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class LeadOut(Model):
    id: int
    name: str
    company: str | None
    phone: str | None
    email: str | None
    address: str | None
    title: str | None
    product_interest: str | None
    note: str | None
    source: str
    source_ref: str | None
    attribution: dict
    status: str
    close_reason: str | None
    owner_id: int | None
    customer_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    created_at: str | None
    collisions: list[Collision] = []
    touches: list[dict] = Field(default=[], description="every intent that reached this lead (one lead only)")


class LeadQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)
    status: Literal["new", "working", "converted", "closed"] | None = None
    source: str | None = Field(default=None, max_length=32)
    owner_id: int | None = None


@api.operation(bp, "/leads", "GET", summary="Leads within the caller's data scope", tags=("leads",),
               query=LeadQuery, response=page_of(LeadOut))
def list_leads(query: LeadQuery):
    rows, total = svc.list_leads(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                 per_page=query.per_page)
    return {"items": [svc.lead_dict(x) for x in rows], "total": total}


@api.operation(bp, "/leads", "POST", summary="Register a lead (collision-checked)", tags=("leads",),
               body=LeadIn, response=LeadOut, status=201)
def create_lead(body: LeadIn):
    """Warn-rule hits come back in `collisions`; block rules answer 409 `{error, hits}`."""
    lead, hits = svc.create_lead(g.actor, body.model_dump())
    return {**svc.lead_dict(lead), "collisions": [h.to_dict() for h in hits]}


@api.operation(bp, "/leads/<int:lead_id>", "GET", summary="One lead", tags=("leads",), response=LeadOut)
def get_lead(lead_id: int):
    from crm_core.org.permissions import get_visible
    from crm_core.sales.models import Lead

    return svc.lead_detail(get_visible(g.actor, Lead, lead_id))


@api.operation(bp, "/leads/<int:lead_id>", "PATCH", summary="Change a lead", tags=("leads",), body=LeadPatch,
               response=LeadOut)
def update_lead(lead_id: int, body: LeadPatch):
    lead, hits = svc.update_lead(g.actor, lead_id, body.model_dump(exclude_unset=True))
    return {**svc.lead_dict(lead), "collisions": [h.to_dict() for h in hits]}


class EmployeeRef(Model):
    employee_id: int


@api.operation(bp, "/leads/<int:lead_id>/assign", "POST", summary="Assign the lead to a colleague", tags=("leads",),
               body=EmployeeRef, response=LeadOut)
def assign(lead_id: int, body: EmployeeRef):
    return svc.lead_dict(svc.assign_lead(g.actor, lead_id, body.employee_id))


@api.operation(bp, "/leads/<int:lead_id>/collaborators", "POST", summary="Add a collaborator who may follow the lead",
               tags=("leads",), body=EmployeeRef, status=201)
def collaborate(lead_id: int, body: EmployeeRef):
    share = svc.add_collaborator(g.actor, lead_id, body.employee_id)
    return {"lead_id": lead_id, "employee_id": share.employee_id}


class CloseIn(Model):
    reason: str = Field(min_length=1, max_length=200)


@api.operation(bp, "/leads/<int:lead_id>/close", "POST", summary="Close the lead with a reason", tags=("leads",),
               body=CloseIn, response=LeadOut)
def close(lead_id: int, body: CloseIn):
    return svc.lead_dict(svc.close_lead(g.actor, lead_id, body.reason))


class ConvertIn(Model):
    customer_id: int | None = Field(default=None, description="attach to this existing customer instead of creating one")
    contact_id: int | None = Field(default=None, description="this contact of the customer is the lead's person")
    create_contact: bool = Field(default=False, description="a new contact even when one with the lead's phone or name exists")
    opportunity_id: int | None = Field(default=None, description="attach the lead to this open opportunity of the customer")
    create_opportunity: bool | None = Field(default=None, description=(
        "true: a new opportunity; false: none; left out: the customer's open opportunity is attached, "
        "and a new one is made only when it has none"))
    opportunity_name: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    create_activity: bool = True
    activity_subject: str | None = Field(default=None, max_length=200)
    activity_at: UtcDateTime | None = None


class ConvertOut(Model):
    lead_id: int
    customer_id: int
    customer_created: bool
    contact_id: int
    opportunity_id: int | None
    activity_id: int | None


class PlanChoice(Model):
    action: Literal["create", "attach"]
    id: int | None
    name: str


class PlanOut(Model):
    lead_id: int
    customer: PlanChoice
    contact: PlanChoice
    opportunity: PlanChoice
    new_contact_name: str
    contacts: list[dict]
    opportunities: list[dict]


@api.operation(bp, "/leads/<int:lead_id>/conversion-plan", "GET", summary="What converting would create or attach",
               tags=("leads",), response=PlanOut)
def conversion_plan(lead_id: int):
    """The customer it would reuse or create, the contact (same phone, else same name), and the
    customer's open opportunities; the convert call takes the ids to attach."""
    return svc.conversion_plan(g.actor, lead_id)


@api.operation(bp, "/leads/<int:lead_id>/convert", "POST", summary="Convert into customer, contact, opportunity, activity",
               tags=("leads",), body=ConvertIn, response=ConvertOut)
def convert(lead_id: int, body: ConvertIn):
    """Atomic. Reuses an existing customer with the same company or phone; 409 when that
    customer is outside your data scope (the message names its owner)."""
    return svc.convert_lead(g.actor, lead_id, body.model_dump())


exports.register(bp, api, "/leads", "线索", "lead", LeadQuery, svc.list_leads, lambda rows: [svc.lead_dict(x) for x in rows], [
    exports.Column("name", "姓名"), exports.Column("company", "公司"), exports.Column("phone", "电话"),
    exports.Column("product_interest", "意向产品"), exports.Column("source", "来源"), exports.Column("status", "状态", "label:lead_status"),
    exports.Column("owner_id", "负责人", "employee"), exports.Column("created_at", "创建时间", "time")])
