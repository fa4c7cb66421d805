"""Customer segments (客户细分)."""
from __future__ import annotations

from typing import Any, Literal

from flask import g
from pydantic import Field

from crm_core.customers import segments as svc
from crm_core.customers.customers import contact_dict, customer_dict, segment_members
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, api, page_of


class Condition(Model):
    field: str = Field(min_length=1, max_length=32)
    op: str = Field(min_length=1, max_length=16)
    value: Any = None


class SegmentIn(Model):
    name: str = Field(min_length=1, max_length=100)
    target: Literal["customer", "contact"] = "customer"
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(default_factory=list, max_length=20)


class SegmentOut(Model):
    id: int
    name: str
    target: str
    match: str
    conditions: list[dict]


@api.operation(bp, "/segments", "POST", summary="Save a segment (a filter over customers or contacts)",
               tags=("segments",), body=SegmentIn, response=SegmentOut, status=201)
def create_segment(body: SegmentIn):
    """Fields and operators: see docs/api.md (e.g. `{"field": "tags", "op": "contains", "value": "VIP"}`)."""
    return svc.segment_dict(svc.create_segment(g.actor, body.model_dump()))


@api.operation(bp, "/segments", "GET", summary="Saved segments", tags=("segments",), response=page_of(SegmentOut))
def list_segments():
    items = [svc.segment_dict(s) for s in svc.list_segments(g.actor)]
    return {"items": items, "total": len(items)}


@api.operation(bp, "/segments/<int:segment_id>/members", "GET", summary="Members within your data scope",
               tags=("segments",), query=PageQuery)
def members(segment_id: int, query: PageQuery):
    rows, total = segment_members(g.actor, segment_id, query.page, min(query.per_page, 100))
    to_dict = customer_dict if rows and rows[0].__tablename__ == "customer" else contact_dict
    return {"items": [to_dict(r) for r in rows], "total": total}


class SegmentPatch(Model):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    match: Literal["all", "any"] | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=20)


@api.operation(bp, "/segments/<int:segment_id>", "PUT", summary="Rename a segment or change its conditions",
               tags=("segments",), body=SegmentPatch, response=SegmentOut)
def update_segment(segment_id: int, body: SegmentPatch):
    data = body.model_dump(exclude_unset=True)
    return svc.segment_dict(svc.update_segment(g.actor, segment_id, data))


class CountIn(Model):
    target: Literal["customer", "contact"] = "customer"
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(default_factory=list, max_length=20)


class CountOut(Model):
    count: int


@api.operation(bp, "/segments/count", "POST", summary="How many customers or contacts conditions pick, within your scope",
               tags=("segments",), body=CountIn, response=CountOut)
def count_segment(body: CountIn):
    return {"count": svc.count_matching(g.actor, body.target, body.match, [c.model_dump() for c in body.conditions])}
