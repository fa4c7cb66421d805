"""公海 — the customer pool: list, claim (领取), release (退回公海) and a customer's holders."""
from __future__ import annotations

from flask import g
from pydantic import Field

from crm_core.customers.customers import customer_dict
from crm_core.sales import pool as svc
from wxapp import exports
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, api


class PoolQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100)
    per_page: int = Field(default=20, ge=1, le=100)


@api.operation(bp, "/customer-pool", "GET", summary="公海: customers without an owner (phones masked until claimed)",
               tags=("customers",), query=PoolQuery)
def pool_list(query: PoolQuery):
    items, total = svc.pool_customers(g.actor, query.q, query.page, query.per_page)
    return {"items": items, "total": total, "settings": svc.settings(g.actor.org_id)}


exports.register(bp, api, "/customer-pool", "公海客户", "customer", PoolQuery,
                 lambda actor, q=None, page=1, per_page=20: svc.pool_customers(actor, q, page, per_page), list, [
                     exports.Column("name", "客户名称"), exports.Column("industry", "行业"), exports.Column("address", "地址"),
                     exports.Column("phone", "电话（领取后可见）"), exports.Column("trading", "交易客户", "yes_no"),
                     exports.Column("last_holder", "上一位负责人"), exports.Column("why", "进入公海原因"),
                     exports.Column("in_pool_since", "进入公海时间", "time")])


@api.operation(bp, "/customer-pool/<int:customer_id>/claim", "POST", summary="领取: take a customer from the pool",
               tags=("customers",))
def pool_claim(customer_id: int):
    """409 `already_claimed` (someone was first), `claim_limit`, `reclaim_after_days` (given up too recently)."""
    return customer_dict(svc.claim(g.actor, customer_id))


class ReleaseIn(Model):
    reason: str | None = Field(default=None, max_length=500)


@api.operation(bp, "/customers/<int:customer_id>/release", "POST", summary="退回公海: give a customer back to the pool",
               tags=("customers",), body=ReleaseIn)
def pool_release(customer_id: int, body: ReleaseIn):
    return customer_dict(svc.release(g.actor, customer_id, body.reason))


@api.operation(bp, "/customers/<int:customer_id>/holders", "GET", summary="Who held the customer, from when to when",
               tags=("customers",))
def customer_holders(customer_id: int):
    items = svc.holdings(g.actor, customer_id)
    return {"items": items, "total": len(items)}
