"""竞争对手档案 (#19 item 7): the competitor master — companies with their aliases, market share, strengths and
weaknesses, products and prices — and the link from what salespeople write on opportunities to it.

Salespeople keep typing a competitor's name on an opportunity (商机 → 竞争对手, 输单 → 输给了谁). A name equal to a
master's name or one of its aliases (trimmed, case-insensitive) links that row to the company, when it is written
and, for rows written before, when the company is created or its aliases change. 竞争对手分析 then counts wins and
losses per company, however each salesperson spelled it; names nobody has put in the master still count on their own.

Everyone who sees opportunities reads the master; sales managers and administrators keep it (``opportunity: assign``).
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update

from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.permissions import Actor, visible_clause
from crm_core.sales import money
from crm_core.sales.models import Competitor, CompetitorCompany, CompetitorProduct, Opportunity

MAX_ALIASES = 20
MAX_PRODUCTS = 100


def _key(name: str | None) -> str:
    return (name or "").strip().lower()


def _names(c: CompetitorCompany) -> set[str]:
    return {_key(c.name), *(_key(a) for a in c.aliases or [])} - {""}


def master_for(org_id: int, name: str | None) -> int | None:
    """The id of the organisation's competitor whose name or alias is ``name``."""
    key = _key(name)
    if not key:
        return None
    for c in db.session.scalars(select(CompetitorCompany).where(CompetitorCompany.org_id == org_id, CompetitorCompany.active.is_(True))):
        if key in _names(c):
            return c.id
    return None


def _relink(c: CompetitorCompany) -> int:
    """Link the organisation's opportunity competitors written under one of ``c``'s names (and unlink those no longer)."""
    opp_ids = select(Opportunity.id).where(Opportunity.org_id == c.org_id)
    db.session.execute(update(Competitor).where(Competitor.competitor_id == c.id).values(competitor_id=None))
    if not c.active:
        return 0
    return db.session.execute(update(Competitor).where(Competitor.opportunity_id.in_(opp_ids), Competitor.competitor_id.is_(None),
                                                       func.lower(func.trim(Competitor.name)).in_(_names(c)))
                              .values(competitor_id=c.id).execution_options(synchronize_session=False)).rowcount


def _fill(actor: Actor, c: CompetitorCompany, data: dict) -> None:
    name = (data.get("name") if "name" in data else c.name) or ""
    name = name.strip()[:200]
    if not name:
        raise ValidationFailed("请填写竞争对手名称。", fields={"name": "required"})
    aliases = [a.strip()[:200] for a in (data.get("aliases") if "aliases" in data else c.aliases) or [] if a and a.strip()]
    if len(aliases) > MAX_ALIASES:
        raise ValidationFailed(f"别名最多 {MAX_ALIASES} 个。", fields={"aliases": f"at most {MAX_ALIASES}"})
    mine = {_key(name), *(_key(a) for a in aliases)}
    for other in db.session.scalars(select(CompetitorCompany).where(CompetitorCompany.org_id == actor.org_id,
                                                                    CompetitorCompany.id != (c.id or 0))):
        clash = mine & _names(other)
        if clash:
            raise Conflict(f"「{sorted(clash)[0]}」已是竞争对手「{other.name}」的名称或别名。", code="duplicate_name",
                           fields={"name": "used by another competitor"})
    share = data.get("market_share", c.market_share)
    if share is not None and share != "":
        share = money.parse(share, "market_share", maximum=money.HUNDRED, label="市场份额")
    else:
        share = None
    c.name, c.aliases, c.market_share = name, list(dict.fromkeys(aliases)), share
    for key in ("website", "strengths", "weaknesses", "note"):
        if key in data:
            setattr(c, key, (data[key] or "").strip()[:1000] or None)
    if "active" in data:
        c.active = bool(data["active"])
    if "products" in data:
        products = data["products"] or []
        if len(products) > MAX_PRODUCTS:
            raise ValidationFailed(f"产品最多 {MAX_PRODUCTS} 个。", fields={"products": f"at most {MAX_PRODUCTS}"})
        c.products = [CompetitorProduct(name=p["name"].strip()[:200], note=(p.get("note") or "").strip()[:500] or None,
                                        price=money.parse(p["price"], f"products.{i}.price", label=f"第 {i + 1} 个产品的价格")
                                        if p.get("price") not in (None, "") else None)
                      for i, p in enumerate(products) if (p.get("name") or "").strip()]


@service
def create_competitor(actor: Actor, data: dict) -> CompetitorCompany:
    actor.require("opportunity", "assign")
    c = CompetitorCompany(org_id=actor.org_id, aliases=[], active=True)
    _fill(actor, c, data)
    db.session.add(c)
    db.session.flush()
    _relink(c)
    return c


@service
def update_competitor(actor: Actor, competitor_id: int, data: dict) -> CompetitorCompany:
    actor.require("opportunity", "assign")
    c = get_competitor(actor, competitor_id)
    _fill(actor, c, data)
    db.session.flush()
    _relink(c)
    return c


def get_competitor(actor: Actor, competitor_id: int) -> CompetitorCompany:
    actor.require("opportunity", "view")
    c = db.session.get(CompetitorCompany, competitor_id)
    if c is None or c.org_id != actor.org_id:
        raise NotFound("竞争对手不存在。")
    return c


def list_competitors(actor: Actor, include_inactive: bool = False) -> list[CompetitorCompany]:
    actor.require("opportunity", "view")
    stmt = select(CompetitorCompany).where(CompetitorCompany.org_id == actor.org_id)
    if not include_inactive:
        stmt = stmt.where(CompetitorCompany.active.is_(True))
    return list(db.session.scalars(stmt.order_by(CompetitorCompany.market_share.desc().nulls_last(), CompetitorCompany.name)))


def record(actor: Actor, c: CompetitorCompany) -> dict:
    """Where we met the company, within the actor's scope: opportunities won, lost (and to it), still open."""
    from crm_core.sales.opportunities import WON_THIS_DEAL

    rows = db.session.execute(select(Opportunity.id, Opportunity.name, Opportunity.status, Opportunity.amount, Competitor.note,
                                     Competitor.price)
                              .join(Competitor, Competitor.opportunity_id == Opportunity.id)
                              .where(Competitor.competitor_id == c.id, visible_clause(actor, Opportunity))
                              .order_by(Opportunity.id.desc()).limit(500)).all()
    opps = [{"id": i, "name": n, "status": st, "amount": str(a) if a is not None else None, "price": str(p) if p is not None else None,
             "they_won": st == "lost" and WON_THIS_DEAL in (note or "")} for i, n, st, a, note, p in rows]
    won = sum(1 for o in opps if o["status"] == "won")
    lost = sum(1 for o in opps if o["status"] == "lost")
    return {"met": len(opps), "won": won, "lost": lost, "lost_to_them": sum(1 for o in opps if o["they_won"]),
            "win_rate": str((Decimal(won) * 100 / (won + lost)).quantize(Decimal("0.01"))) if won + lost else None,
            "opportunities": opps}


def competitor_dict(c: CompetitorCompany) -> dict:
    return {"id": c.id, "name": c.name, "aliases": list(c.aliases or []), "website": c.website,
            "market_share": money.fmt(Decimal(str(c.market_share))) if c.market_share is not None else None, "strengths": c.strengths,
            "weaknesses": c.weaknesses, "note": c.note, "active": c.active,
            "products": [{"id": p.id, "name": p.name, "price": money.fmt(Decimal(str(p.price))) if p.price is not None else None,
                          "note": p.note}
                         for p in c.products]}
