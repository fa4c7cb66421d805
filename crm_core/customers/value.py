"""Customer value pyramid (客户金字塔): weighted indicators, scores and levels."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers.models import Contact, Customer, ProductArchive, ValueIndicator, ValueLevel
from crm_core.db import db
from crm_core.errors import ValidationFailed
from crm_core.org.models import Organization
from crm_core.org.permissions import Actor, visible_clause

INDICATOR_KINDS = {
    "won_amount": "赢单金额",
    "open_pipeline": "在谈商机金额",
    "won_count": "赢单次数",
    "activity_count_90d": "近90天活动数",
    "contact_count": "联系人数",
    "archive_count": "产品档案数",
    "trading": "交易客户",
}
DEFAULT_INDICATORS = [("won_amount", 5, 500000), ("won_count", 2, 5), ("open_pipeline", 2, 300000),
                      ("activity_count_90d", 1, 12), ("archive_count", 1, 10), ("trading", 1, 1)]
# Indicators measured outside this area (opportunities, activities) come from measures those areas
# register: ``measure(customer_ids, since) -> [(select(customer_id, v1, ...), (name1, ...)), ...]``.
_measures_registry: list = []


def register_measure(measure) -> None:
    """Add a measure: a function of (customer ids, 90-day cut-off) giving (statement, indicator names) pairs."""
    _measures_registry.append(measure)


DEFAULT_LEVELS = [("A", "重要客户", 50), ("B", "主要客户", 25), ("C", "普通客户", 10), ("D", "小客户", 0)]


def ensure_defaults(org_id: int) -> tuple[list[ValueIndicator], list[ValueLevel]]:
    inds = list(db.session.scalars(select(ValueIndicator).where(ValueIndicator.org_id == org_id).order_by(ValueIndicator.id)))
    if not inds:
        inds = [ValueIndicator(org_id=org_id, code=c, name=INDICATOR_KINDS[c], weight=w, full_marks_at=f)
                for c, w, f in DEFAULT_INDICATORS]
        db.session.add_all(inds)
    levels = list(db.session.scalars(select(ValueLevel).where(ValueLevel.org_id == org_id).order_by(ValueLevel.min_score.desc())))
    if not levels:
        levels = [ValueLevel(org_id=org_id, code=c, name=n, min_score=m) for c, n, m in DEFAULT_LEVELS]
        db.session.add_all(levels)
    db.session.flush()
    return inds, sorted(levels, key=lambda lv: -lv.min_score)


@service
def configure(actor: Actor, indicators: list[dict], levels: list[dict]) -> None:
    """Replace the value indicators (code, weight, full_marks_at) and levels (code, name, min_score)."""
    actor.require("organization", "edit")
    errors = {}
    for i, ind in enumerate(indicators):
        if ind["code"] not in INDICATOR_KINDS:
            errors[f"indicators.{i}.code"] = f"one of {', '.join(INDICATOR_KINDS)}"
        if ind.get("weight", 1) <= 0 or ind.get("full_marks_at", 1) <= 0:
            errors[f"indicators.{i}"] = "weight and full_marks_at must be positive"
    if not levels or not any(lv["min_score"] == 0 for lv in levels):
        errors["levels"] = "need a level with min_score 0 (everyone else)"
    if errors:
        raise ValidationFailed("客户价值设置有误。", fields=errors)
    for model in (ValueIndicator, ValueLevel):
        for row in db.session.scalars(select(model).where(model.org_id == actor.org_id)):
            db.session.delete(row)
    db.session.flush()
    for ind in indicators:
        db.session.add(ValueIndicator(org_id=actor.org_id, code=ind["code"], name=ind.get("name") or INDICATOR_KINDS[ind["code"]],
                                      weight=ind.get("weight", 1), full_marks_at=ind.get("full_marks_at", 1)))
    for lv in levels:
        db.session.add(ValueLevel(org_id=actor.org_id, code=lv["code"], name=lv["name"], min_score=lv["min_score"]))
    db.session.flush()
    jobs.enqueue(recompute_org_values, actor.org_id)


def _measures(org_id: int, customer_ids: list[int] | None) -> dict[int, dict[str, float]]:
    since = utcnow() - timedelta(days=90)
    cust = select(Customer.id, Customer.trading).where(Customer.org_id == org_id, Customer.status == "active")
    if customer_ids is not None:
        cust = cust.where(Customer.id.in_(customer_ids))
    out = {cid: {"trading": 1.0 if trading else 0.0} for cid, trading in db.session.execute(cust)}
    if not out:
        return out
    ids = list(out)

    def add(stmt, *names):
        for row in db.session.execute(stmt):
            for i, name in enumerate(names, start=1):
                out[row[0]][name] = float(row[i] or 0)

    for measure in _measures_registry:
        for stmt, names in measure(ids, since):
            add(stmt, *names)
    add(select(Contact.customer_id, func.count()).where(Contact.customer_id.in_(ids)).group_by(Contact.customer_id), "contact_count")
    add(select(ProductArchive.customer_id, func.count()).where(ProductArchive.customer_id.in_(ids))
        .group_by(ProductArchive.customer_id), "archive_count")
    return out


def score_customers(org_id: int, customer_ids: list[int] | None = None) -> int:
    """Score = Σ weight × min(value / full_marks_at, 1) ÷ Σ weight × 100; level = the highest
    whose min_score the score reaches."""
    indicators, levels = ensure_defaults(org_id)
    total_weight = sum(i.weight for i in indicators) or 1
    measures = _measures(org_id, customer_ids)
    for cid, m in measures.items():
        score = sum(i.weight * min(m.get(i.code, 0.0) / i.full_marks_at, 1.0) for i in indicators) / total_weight * 100
        level = next((lv.code for lv in levels if score >= lv.min_score), levels[-1].code if levels else None)
        db.session.execute(update(Customer).where(Customer.id == cid).values(value_score=round(score, 2), value_level=level))
    return len(measures)


@jobs.job
def recompute_org_values(org_id: int) -> int:
    return score_customers(org_id)


@jobs.periodic(every=24 * 3600)
def recompute_all_values() -> int:
    """Nightly: activity counts age, so every score is refreshed once a day."""
    return sum(score_customers(org_id) for org_id in db.session.scalars(select(Organization.id)))


def pyramid(actor: Actor, level: str | None = None, page: int = 1, per_page: int = 20) -> dict:
    """Counts per value level within the actor's data scope, and the customers of one level."""
    actor.require("customer", "view")
    _, levels = ensure_defaults(actor.org_id)
    scope = visible_clause(actor, Customer)
    counts = dict(db.session.execute(select(Customer.value_level, func.count()).where(scope, Customer.status == "active")
                                     .group_by(Customer.value_level)).all())
    out = {"levels": [{"code": lv.code, "name": lv.name, "min_score": lv.min_score, "count": counts.get(lv.code, 0)}
                      for lv in levels],
           "unscored": counts.get(None, 0)}
    if level:
        stmt = select(Customer).where(scope, Customer.status == "active", Customer.value_level == level)
        out["customers"] = [{"id": c.id, "name": c.name, "value_score": c.value_score} for c in db.session.scalars(
            stmt.order_by(Customer.value_score.desc(), Customer.id).limit(per_page).offset((page - 1) * per_page))]
    return out
