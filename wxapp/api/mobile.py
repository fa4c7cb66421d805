"""The mobile sales flow (seed: 客户备案 → 活动跟踪 → 商机备案 → 商机跟踪 → 赢单).

Each step is one short call; registrations run the collision check first:
1. ``POST /api/v1/mobile/customers`` — customer and first contact in one call;
2. ``POST /api/v1/activities`` — an activity on the customer;
3. ``POST /api/v1/opportunities`` — an opportunity on the customer;
4. ``POST /api/v1/opportunities/{id}/advance`` — move through the stages;
5. ``POST /api/v1/opportunities/{id}/win`` — won.
"""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field

from crm_core.customers import customers as svc
from wxapp.api import bp
from wxapp.api.customers import CustomerOut, Site
from wxapp.openapi import Model, UtcDateTime, api


class QuickCustomerIn(Model):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=300)
    site: Site | None = None
    contact_name: str = Field(min_length=1, max_length=100)
    contact_phone: str | None = Field(default=None, max_length=32)
    contact_title: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=32)


@api.operation(bp, "/mobile/customers", "POST", summary="客户备案 from a phone: customer and first contact",
               tags=("mobile",), body=QuickCustomerIn, response=CustomerOut, status=201)
def quick_customer(body: QuickCustomerIn):
    customer, hits = register_customer(g.actor, body)
    return {**svc.customer_dict(customer), "collisions": [h.to_dict() for h in hits]}


def register_customer(actor, body: QuickCustomerIn):
    """客户备案 from a phone (the API and the staff workbench): the customer and its first contact, behind the
    collision check. Answers ``(customer, warn hits)``; a blocking hit is 409 with the masked hits."""
    data = body.model_dump()
    contact = {"name": data.pop("contact_name"), "phone": data.pop("contact_phone"), "title": data.pop("contact_title"),
               "is_primary": True}
    return svc.create_customer(actor, {**data, "source": data.get("source") or "manual"}, contacts=[contact])


class VisitLocation(Model):
    lat: float | None = Field(default=None, ge=-90, le=90, description="omit lat and lng to use your latest WeChat location")
    lng: float | None = Field(default=None, ge=-180, le=180)
    coord_system: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    client_time: UtcDateTime | None = None


class VisitIn(Model):
    customer_id: int
    contact_id: int | None = None
    opportunity_id: int | None = None
    kind: Literal["visit", "call"] = "visit"
    subject: str | None = Field(default=None, max_length=200)
    result: str = Field(min_length=1, max_length=2000, description="what came of it (拜访结果)")
    checkin: VisitLocation | None = Field(default=None, description="at the customer's site: a check-in tied to the visit")


def log_visit(actor, body: VisitIn):
    """活动跟踪 from the phone: a visit or call that happened, with its result; at the site, a check-in at the
    customer (all the check-in checks) tied to it. One transaction; answers ``(activity, checkin or None)``."""
    from crm_core.activities import activities
    from crm_core.field import checkins

    label = "拜访" if body.kind == "visit" else "电话"
    activity = activities.create_activity(actor, {"kind": body.kind, "subject": body.subject or f"{label}记录",
                                                  "customer_id": body.customer_id, "contact_id": body.contact_id,
                                                  "opportunity_id": body.opportunity_id})
    ci = None
    if body.checkin is not None:
        ci = checkins.record(actor, {**body.checkin.model_dump(), "kind": "in", "customer_id": activity.customer_id,
                                     "activity_id": activity.id})
    activities.set_activity_status(actor, activity.id, "done", result=body.result)
    return activity, ci


@api.operation(bp, "/mobile/visits", "POST", summary="Log a visit or call with its result (活动跟踪), with a check-in at the site",
               tags=("mobile",), body=VisitIn, status=201)
def visit(body: VisitIn):
    from crm_core.activities.activities import activity_dict
    from crm_core.field.checkins import to_dict

    activity, ci = log_visit(g.actor, body)
    return {"activity": activity_dict(activity), "checkin": to_dict(ci) if ci else None}
