"""竞争对手档案 over HTTP (#19 item 7): the competitor master, and where we met each company."""
from __future__ import annotations

from decimal import Decimal

from flask import g
from pydantic import Field

from crm_core.sales import competitors as svc
from wxapp.api import bp
from wxapp.openapi import Model, Money, api


class CompetitorProductIn(Model):
    name: str = Field(min_length=1, max_length=200)
    price: Money | None = None
    note: str | None = Field(default=None, max_length=500)


class CompetitorIn(Model):
    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=svc.MAX_ALIASES,
                               description="the other names salespeople write it under; opportunities naming any are linked")
    website: str | None = Field(default=None, max_length=200)
    market_share: Decimal | None = Field(default=None, ge=0, le=100, max_digits=5, decimal_places=2, description="percent")
    strengths: str | None = Field(default=None, max_length=1000)
    weaknesses: str | None = Field(default=None, max_length=1000)
    note: str | None = Field(default=None, max_length=1000)
    active: bool = True
    products: list[CompetitorProductIn] = Field(default_factory=list, max_length=svc.MAX_PRODUCTS)


class CompetitorProductOut(Model):
    id: int
    name: str
    price: str | None
    note: str | None


class CompetitorOut(Model):
    id: int
    name: str
    aliases: list[str]
    website: str | None
    market_share: str | None
    strengths: str | None
    weaknesses: str | None
    note: str | None
    active: bool
    products: list[CompetitorProductOut]


class MetOpportunity(Model):
    id: int
    name: str
    status: str
    amount: str | None
    price: str | None = Field(description="their price on that opportunity")
    they_won: bool


class CompetitorRecord(Model):
    met: int
    won: int
    lost: int
    lost_to_them: int
    win_rate: str | None
    opportunities: list[MetOpportunity]


class CompetitorDetail(CompetitorOut):
    record: CompetitorRecord


class CompetitorList(Model):
    items: list[CompetitorOut]


@api.operation(bp, "/competitors", "GET", summary="竞争对手档案: the competitor master", tags=("sales",), response=CompetitorList)
def list_competitors():
    return {"items": [svc.competitor_dict(c) for c in svc.list_competitors(g.actor)]}


@api.operation(bp, "/competitors", "POST", summary="Add a competitor (links opportunities written under its names)",
               tags=("sales",), body=CompetitorIn, response=CompetitorOut, status=201)
def create_competitor(body: CompetitorIn):
    return svc.competitor_dict(svc.create_competitor(g.actor, body.model_dump()))


@api.operation(bp, "/competitors/<int:competitor_id>", "GET", summary="One competitor with where we met it (within scope)",
               tags=("sales",), response=CompetitorDetail)
def get_competitor(competitor_id: int):
    c = svc.get_competitor(g.actor, competitor_id)
    return {**svc.competitor_dict(c), "record": svc.record(g.actor, c)}


@api.operation(bp, "/competitors/<int:competitor_id>", "PUT", summary="Replace a competitor's details", tags=("sales",),
               body=CompetitorIn, response=CompetitorOut)
def update_competitor(competitor_id: int, body: CompetitorIn):
    return svc.competitor_dict(svc.update_competitor(g.actor, competitor_id, body.model_dump()))
