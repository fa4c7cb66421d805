"""Customers, behind the data-scope filter."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field

from crm_core.services import customers as svc
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, api, page_of


class Site(Model):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord_system: Literal["wgs84", "gcj02", "bd09"] = "wgs84"


class CustomerIn(Model):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["company", "person"] = "company"
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=300)
    source: str | None = Field(default=None, max_length=32)
    site: Site | None = None
    owner_id: int | None = None


class CustomerPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["company", "person"] | None = None
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=300)
    source: str | None = Field(default=None, max_length=32)
    site: Site | None = None


class CustomerOut(Model):
    id: int
    name: str
    kind: str
    trading: bool
    phone: str | None
    address: str | None
    site: Site | None
    source: str | None
    owner_id: int | None
    department_id: int | None
    created_at: str | None


class CustomerQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)


@api.operation(bp, "/customers", "GET", summary="Customers within the caller's data scope", tags=("customers",),
               query=CustomerQuery, response=page_of(CustomerOut))
def list_customers(query: CustomerQuery):
    rows, total = svc.list_customers(g.actor, q=query.q, page=query.page, per_page=query.per_page)
    return {"items": [svc.customer_dict(c) for c in rows], "total": total}


@api.operation(bp, "/customers", "POST", summary="Register a customer", tags=("customers",),
               body=CustomerIn, response=CustomerOut, status=201)
def create_customer(body: CustomerIn):
    return svc.customer_dict(svc.create_customer(g.actor, body.model_dump()))


@api.operation(bp, "/customers/<int:customer_id>", "GET", summary="One customer", tags=("customers",), response=CustomerOut)
def get_customer(customer_id: int):
    return svc.customer_dict(svc.get_customer(g.actor, customer_id))


@api.operation(bp, "/customers/<int:customer_id>", "PATCH", summary="Change a customer", tags=("customers",),
               body=CustomerPatch, response=CustomerOut)
def update_customer(customer_id: int, body: CustomerPatch):
    return svc.customer_dict(svc.update_customer(g.actor, customer_id, body.model_dump(exclude_unset=True)))
