"""The mobile sales flow (seed: 客户备案 → 活动跟踪 → 商机备案 → 商机跟踪 → 赢单).

Each step is one short call; registrations run the collision check first:
1. ``POST /api/v1/mobile/customers`` — customer and first contact in one call;
2. ``POST /api/v1/activities`` — an activity on the customer;
3. ``POST /api/v1/opportunities`` — an opportunity on the customer;
4. ``POST /api/v1/opportunities/{id}/advance`` — move through the stages;
5. ``POST /api/v1/opportunities/{id}/win`` — won.
"""
from __future__ import annotations

from flask import g
from pydantic import Field

from crm_core.customers import customers as svc
from wxapp.api import bp
from wxapp.api.customers import CustomerOut, Site
from wxapp.openapi import Model, api


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
    data = body.model_dump()
    contact = {"name": data.pop("contact_name"), "phone": data.pop("contact_phone"), "title": data.pop("contact_title"),
               "is_primary": True}
    customer, hits = svc.create_customer(g.actor, {**data, "source": data.get("source") or "manual"}, contacts=[contact])
    return {**svc.customer_dict(customer), "collisions": [h.to_dict() for h in hits]}
