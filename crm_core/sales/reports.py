"""Reports for managers: the sales funnel and customers by source, within the data scope."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.org.permissions import Actor, visible_clause
from crm_core.sales.models import Opportunity, SalesStage
from crm_core.sales.opportunities import ensure_default_method


def _range(stmt, col, date_from: date | None, date_to: date | None):
    if date_from:
        stmt = stmt.where(col >= datetime.combine(date_from, datetime.min.time()))
    if date_to:
        stmt = stmt.where(col < datetime.combine(date_to + timedelta(days=1), datetime.min.time()))
    return stmt


def funnel(actor: Actor, method_id: int | None = None, date_from: date | None = None, date_to: date | None = None) -> dict:
    """销售漏斗: open opportunities per stage (count, amount, probability-weighted amount),
    plus won and lost, for opportunities created in the range that the actor may see."""
    actor.require("opportunity", "view")
    method = ensure_default_method(actor.org_id) if not method_id else None
    method_id = method_id or method.id
    scope = visible_clause(actor, Opportunity)
    base = _range(select(Opportunity.stage_id, Opportunity.status, func.count(), func.coalesce(func.sum(Opportunity.amount), 0))
                  .where(scope, Opportunity.method_id == method_id), Opportunity.created_at, date_from, date_to)
    rows = db.session.execute(base.group_by(Opportunity.stage_id, Opportunity.status)).all()
    stages = db.session.scalars(select(SalesStage).where(SalesStage.method_id == method_id).order_by(SalesStage.seq)).all()
    per_stage = {s.id: {"count": 0, "amount": 0.0} for s in stages}
    won = {"count": 0, "amount": 0.0}
    lost = {"count": 0, "amount": 0.0}
    for stage_id, status, count, amount in rows:
        target = per_stage.get(stage_id) if status == "open" else (won if status == "won" else lost)
        if target is not None:
            target["count"] += count
            target["amount"] += float(amount)
    out_stages = [{"stage_id": s.id, "name": s.name, "seq": s.seq, "probability": s.probability,
                   "count": per_stage[s.id]["count"], "amount": round(per_stage[s.id]["amount"], 2),
                   "weighted_amount": round(per_stage[s.id]["amount"] * s.probability / 100, 2)} for s in stages]
    total_open = sum(s["count"] for s in out_stages)
    closed = won["count"] + lost["count"]
    return {"method_id": method_id, "stages": out_stages, "won": won, "lost": lost,
            "totals": {"open_count": total_open, "open_amount": round(sum(s["amount"] for s in out_stages), 2),
                       "weighted_amount": round(sum(s["weighted_amount"] for s in out_stages), 2),
                       "win_rate": round(won["count"] / closed, 3) if closed else None}}


def customers_by_source(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """客户来源分析: customers per source, trading and not, within the data scope."""
    actor.require("customer", "view")
    stmt = _range(select(Customer.source, Customer.trading, func.count()).where(visible_clause(actor, Customer),
                                                                                Customer.status == "active"),
                  Customer.created_at, date_from, date_to).group_by(Customer.source, Customer.trading)
    by: dict[str, dict] = {}
    for source, trading, count in db.session.execute(stmt):
        row = by.setdefault(source or "unknown", {"source": source or "unknown", "total": 0, "trading": 0, "non_trading": 0})
        row["total"] += count
        row["trading" if trading else "non_trading"] += count
    items = sorted(by.values(), key=lambda r: -r["total"])
    total = sum(r["total"] for r in items)
    for r in items:
        r["share"] = round(r["total"] / total, 3) if total else 0
        r["conversion_rate"] = round(r["trading"] / r["total"], 3) if r["total"] else 0
    return {"items": items, "total": total}
