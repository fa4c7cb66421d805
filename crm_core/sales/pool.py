"""公海 — the customer pool: customers with no owner, whether never assigned, released by their owner, or returned by
the organisation's rule (no follow-up — a done activity — in ``return_after_days``; customers who have traded are
exempt by default). A salesperson claims one (领取) up to ``claim_limit`` owned customers; the previous holder may
claim it back only after ``reclaim_after_days``. Every holding is kept (:class:`CustomerHolding`), so a customer shows
who held it, from when to when, and why it ended. Settings: ``customer_pool`` (``crm_core.org.settings``)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update

from crm_core import jobs, outbox
from crm_core.activities.models import Activity
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers.customers import register_360_section
from crm_core.customers.models import Customer, CustomerHolding
from crm_core.db import db, paginate
from crm_core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_core.normalize import mask_phone
from crm_core.org.models import Employee, Organization
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import get_setting

END_LABELS = {"released": "退回公海", "recycled": "超期未跟进，自动收回", "transferred": "转给他人"}
HOW_LABELS = {"claimed": "从公海领取", "assigned": "分配"}


def settings(org_id: int) -> dict:
    return get_setting(org_id, "customer_pool")


def pool_customers(actor: Actor, q: str | None = None, page: int = 1, per_page: int = 20):
    """The organisation's customers without an owner, newest in the pool first; phones masked until claimed."""
    actor.require("customer", "view")
    stmt = select(Customer).where(Customer.org_id == actor.org_id, Customer.owner_id.is_(None), Customer.status == "active")
    if q and q.strip():
        stmt = stmt.where(Customer.name.contains(q.strip()[:100]))
    last_end = (select(func.max(CustomerHolding.ended_at)).where(CustomerHolding.customer_id == Customer.id)
                .correlate(Customer).scalar_subquery())
    rows, total = paginate(stmt, func.coalesce(last_end, Customer.created_at).desc(), Customer.id.desc(), page=page,
                           per_page=per_page)
    last = _last_holdings([c.id for c in rows])
    names = employee_names(h.employee_id for h in last.values())
    return [{"id": c.id, "name": c.name, "industry": c.industry, "address": c.address, "phone": mask_phone(c.phone),
             "trading": c.trading, "last_holder": names.get(last[c.id].employee_id) if c.id in last else None,
             "in_pool_since": _iso(last[c.id].ended_at if c.id in last else c.created_at),
             "why": END_LABELS.get(last[c.id].end_reason) if c.id in last else "未分配"} for c in rows], total


def _iso(d):
    return d.isoformat() + "Z" if d else None


def _last_holdings(customer_ids: list[int]) -> dict[int, CustomerHolding]:
    if not customer_ids:
        return {}
    rows = db.session.scalars(select(CustomerHolding).where(CustomerHolding.customer_id.in_(customer_ids))
                              .order_by(CustomerHolding.started_at, CustomerHolding.id)).all()
    return {h.customer_id: h for h in rows}


def _owned(org_id: int, employee_id: int) -> int:
    return db.session.scalar(select(func.count(Customer.id)).where(
        Customer.org_id == org_id, Customer.owner_id == employee_id, Customer.status == "active")) or 0


@service
def claim(actor: Actor, customer_id: int) -> Customer:
    """领取: the customer becomes mine — if it is still in the pool (two claims at once: one wins, the other is told),
    I own fewer than the limit, and I did not give it up too recently."""
    actor.require("customer", "edit")
    if actor.employee_id is None:
        raise ValidationFailed("当前用户没有关联职员，不能领取客户。", code="no_employee_linked")
    c = db.session.get(Customer, customer_id)
    if c is None or c.org_id != actor.org_id or c.status != "active":
        raise NotFound("客户不存在。")
    cfg, now = settings(actor.org_id), utcnow()
    if c.owner_id is not None:
        raise Conflict("该客户已被领取。", code="already_claimed")
    limit = int(cfg.get("claim_limit") or 0)
    if limit and _owned(actor.org_id, actor.employee_id) >= limit:
        raise Conflict(f"您已拥有 {limit} 个客户，达到领取上限；请先跟进或退回部分客户。", code="claim_limit")
    wait = int(cfg.get("reclaim_after_days") or 0)
    mine_last = db.session.scalars(select(CustomerHolding).where(
        CustomerHolding.customer_id == c.id, CustomerHolding.employee_id == actor.employee_id)
        .order_by(CustomerHolding.started_at.desc())).first()
    if wait and mine_last is not None and mine_last.ended_at and now - mine_last.ended_at < timedelta(days=wait):
        raise Conflict(f"您退回或被收回该客户未满 {wait} 天，暂不能再次领取。", code="reclaim_too_soon")
    me = db.session.get(Employee, actor.employee_id)
    taken = db.session.execute(update(Customer).where(Customer.id == c.id, Customer.owner_id.is_(None)).values(
        owner_id=me.id, department_id=me.department_id)).rowcount
    if not taken:
        raise Conflict("该客户刚刚被同事领取。", code="already_claimed")
    db.session.add(CustomerHolding(org_id=c.org_id, customer_id=c.id, employee_id=me.id, started_at=now, how="claimed"))
    db.session.flush()
    db.session.refresh(c)
    return c


@service
def release(actor: Actor, customer_id: int, reason: str | None = None) -> Customer:
    """退回公海: the owner (or whoever may edit it) gives the customer back; its records keep their history."""
    c = get_visible(actor, Customer, customer_id, action="edit")
    if c.owner_id is None:
        raise Conflict("该客户已在公海中。", code="in_pool")
    if c.owner_id != actor.employee_id and not actor.can("customer", "assign"):
        raise PermissionDenied("只有负责人或有分配权限的人可以把客户退回公海。")
    _end(c, "released", (reason or "").strip()[:500] or None)
    return c


def _end(c: Customer, why: str, note: str | None = None) -> None:
    now = utcnow()
    held = db.session.scalars(select(CustomerHolding).where(CustomerHolding.customer_id == c.id,
                                                            CustomerHolding.ended_at.is_(None))).first()
    if held is None:  # owned before the pool kept holdings (registered, imported, assigned): its holding starts then
        held = CustomerHolding(org_id=c.org_id, customer_id=c.id, employee_id=c.owner_id, started_at=c.created_at,
                               how="assigned")
        db.session.add(held)
    held.ended_at, held.end_reason, held.note = now, why, note
    c.owner_id = None
    db.session.flush()


def holdings(actor: Actor, customer_id: int) -> list[dict]:
    """Who held the customer, newest first."""
    return _holders_section(actor, get_visible(actor, Customer, customer_id))


def _last_follow_up():
    return (select(Activity.customer_id, func.max(func.coalesce(Activity.actual_end, Activity.updated_at)).label("at"))
            .where(Activity.status == "done", Activity.customer_id.is_not(None)).group_by(Activity.customer_id).subquery())


@jobs.periodic(every=3600)
def recycle_customers() -> int:
    """The pool's rule, hourly: an owned customer with no follow-up (a done activity) in ``return_after_days`` since
    the later of its last follow-up and the start of its holding goes back to the pool; the owner is told."""
    now, returned = utcnow(), 0
    for org_id in db.session.scalars(select(Organization.id)):
        cfg = settings(org_id)
        days = int(cfg.get("return_after_days") or 0)
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        follow = _last_follow_up()
        start = (select(func.max(CustomerHolding.started_at)).where(CustomerHolding.customer_id == Customer.id,
                                                                   CustomerHolding.ended_at.is_(None))
                 .correlate(Customer).scalar_subquery())
        stmt = (select(Customer).outerjoin(follow, follow.c.customer_id == Customer.id)
                .where(Customer.org_id == org_id, Customer.owner_id.is_not(None), Customer.status == "active",
                       func.coalesce(follow.c.at, start, Customer.created_at) < cutoff,
                       or_(start.is_(None), start < cutoff)))
        if cfg.get("exempt_trading", True):
            stmt = stmt.where(Customer.trading.is_(False))
        for c in db.session.scalars(stmt.limit(1000)).all():
            owner = c.owner_id
            _end(c, "recycled", f"{days} 天未跟进")
            outbox.notify_staff(owner, "customer_recycled", f"客户「{c.name}」{days} 天未跟进，已收回公海。", org_id=org_id,
                                dedupe_key=f"customer-recycled:{c.id}:{now.date().isoformat()}", customer_id=c.id)
            returned += 1
    db.session.flush()
    return returned


def _holders_section(actor: Actor, customer: Customer) -> list[dict]:
    rows = db.session.scalars(select(CustomerHolding).where(CustomerHolding.customer_id == customer.id)
                              .order_by(CustomerHolding.started_at.desc(), CustomerHolding.id.desc()).limit(20)).all()
    names = employee_names(h.employee_id for h in rows)
    return [{"employee": names.get(h.employee_id), "how": HOW_LABELS.get(h.how, h.how), "started_at": _iso(h.started_at),
             "ended_at": _iso(h.ended_at), "end_reason": END_LABELS.get(h.end_reason) if h.end_reason else None,
             "note": h.note} for h in rows]


register_360_section("holders", _holders_section)
