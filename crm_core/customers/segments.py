"""Customer segments (客户细分): saved filters over customers or contacts, used by campaigns."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, false, func, or_, select

from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers.models import Contact, Customer, Segment
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.permissions import Actor

# field -> (model attribute, kind) per target; kind decides the allowed operators
FIELDS = {
    "customer": {"kind": (Customer.kind, "str"), "trading": (Customer.trading, "bool"), "source": (Customer.source, "str"),
                 "industry": (Customer.industry, "str"), "value_level": (Customer.value_level, "str"),
                 "address": (Customer.address, "str"), "name": (Customer.name, "str"), "tags": (Customer.tags, "list"),
                 "owner_id": (Customer.owner_id, "int"), "created_at": (Customer.created_at, "datetime"),
                 "value_score": (Customer.value_score, "num")},
    "contact": {"title": (Contact.title, "str"), "gender": (Contact.gender, "str"), "interests": (Contact.interests, "list"),
                "birthday_month": (Contact.birthday, "month"), "name": (Contact.name, "str"),
                "customer_value_level": (Customer.value_level, "str"), "customer_trading": (Customer.trading, "bool"),
                "customer_source": (Customer.source, "str")},
}
OPS = {"str": ("eq", "ne", "in", "contains", "empty"), "bool": ("eq",), "list": ("contains",), "int": ("eq", "in"),
       "num": ("gte", "lte"), "datetime": ("within_days", "before_days"), "month": ("eq", "in")}


def validate_conditions(target: str, conditions: list[dict]) -> None:
    errors = {}
    if target not in FIELDS:
        raise ValidationFailed("细分对象只能是客户或联系人。", fields={"target": "customer or contact"})
    for i, c in enumerate(conditions):
        spec = FIELDS[target].get(c.get("field"))
        if spec is None:
            errors[f"conditions.{i}.field"] = f"one of {', '.join(FIELDS[target])}"
        elif c.get("op") not in OPS[spec[1]]:
            errors[f"conditions.{i}.op"] = f"one of {', '.join(OPS[spec[1]])}"
    if errors:
        raise ValidationFailed("细分条件有误。", fields=errors)


def _condition(target: str, c: dict):
    col, kind = FIELDS[target][c["field"]]
    op, value = c["op"], c.get("value")
    if kind == "list":
        return func.cast(col, db.String).like(f'%"{value}"%')
    if kind == "month":
        months = value if isinstance(value, list) else [value]
        if db.engine.dialect.name == "sqlite":
            return func.strftime("%m", col).in_([f"{int(m):02d}" for m in months])
        return func.extract("month", col).in_([int(m) for m in months])
    if kind == "datetime":
        cutoff = utcnow() - timedelta(days=int(value))
        return col >= cutoff if op == "within_days" else col < cutoff
    if op == "eq":
        return col.is_(bool(value)) if kind == "bool" else col == value
    if op == "ne":
        return col != value
    if op == "in":
        return col.in_(value if isinstance(value, list) else [value])
    if op == "contains":
        return col.like(f"%{value}%")
    if op == "empty":
        return or_(col.is_(None), col == "") if value else and_(col.is_not(None), col != "")
    if op == "gte":
        return col >= value
    if op == "lte":
        return col <= value
    return false()


def segment_clause(actor: Actor, segment_id: int, target: str):
    """The WHERE clause of a segment, for the target's list query (customers or contacts)."""
    seg = get_segment(actor, segment_id)
    if seg.target != target:
        raise ValidationFailed("细分对象不匹配。", fields={"segment_id": f"segment targets {seg.target}"})
    return conditions_clause(target, seg.match, seg.conditions or [])


def conditions_clause(target: str, match: str, conditions: list[dict]):
    """The WHERE clause of ``conditions`` over the target (checked first, so hand-edited ones answer cleanly)."""
    conditions = clean_conditions(target, conditions)
    conds = [_condition(target, c) for c in conditions]
    if target == "contact" and any(c["field"].startswith("customer_") for c in conditions):
        inner = select(Customer.id).where(and_(*[_condition(target, c) for c in conditions if c["field"].startswith("customer_")]))
        conds = [_condition(target, c) for c in conditions if not c["field"].startswith("customer_")]
        conds.append(Contact.customer_id.in_(inner))
    if not conds:
        return Customer.id.is_not(None) if target == "customer" else Contact.id.is_not(None)
    return and_(*conds) if match == "all" else or_(*conds)


def _number(value, what: str, i: int, *, integer: bool, low: float | None = None, high: float | None = None):
    try:
        n = int(str(value).strip()) if integer else float(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationFailed(f"第 {i + 1} 个条件：{what}应为{'整数' if integer else '数字'}。",
                               fields={f"conditions.{i}.value": "number"}) from None
    if (low is not None and n < low) or (high is not None and n > high):
        raise ValidationFailed(f"第 {i + 1} 个条件：{what}应在 {low:g}–{high:g} 之间。", fields={f"conditions.{i}.value": "range"})
    return n


def clean_conditions(target: str, conditions: list[dict]) -> list[dict]:
    """Conditions checked and their values turned into what the operator compares (a console sends text):
    numbers for days, scores, months and owners, true/false for yes/no fields, lists for ``in``."""
    validate_conditions(target, conditions)
    out = []
    for i, c in enumerate(conditions):
        kind = FIELDS[target][c["field"]][1]
        op, value = c["op"], c.get("value")
        if op == "in" and isinstance(value, str):
            value = [v for v in (p.strip() for p in value.replace("，", ",").replace("、", ",").split(",")) if v]
        if kind == "bool" or op == "empty":
            value = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "是", "on")
        elif kind == "datetime":
            value = _number(value, "天数", i, integer=True, low=0, high=36500)
        elif kind == "num":
            value = _number(value, "分数", i, integer=False, low=0, high=100)
        elif kind == "month":
            value = [_number(v, "月份", i, integer=True, low=1, high=12) for v in (value if isinstance(value, list) else [value])]
        elif kind == "int":
            value = [_number(v, "编号", i, integer=True) for v in value] if isinstance(value, list) else _number(value, "编号", i, integer=True)
        elif kind in ("str", "list") and (value is None or (isinstance(value, str) and not value.strip())):
            raise ValidationFailed(f"第 {i + 1} 个条件还没有填写值。", fields={f"conditions.{i}.value": "required"})
        elif op == "in":
            if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value) or not value:
                raise ValidationFailed(f"第 {i + 1} 个条件的值应为一组文字。", fields={f"conditions.{i}.value": "list"})
            value = [str(v).strip()[:200] for v in value][:100]
        elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValidationFailed(f"第 {i + 1} 个条件的值应为文字。", fields={f"conditions.{i}.value": "text"})
        else:
            value = str(value).strip()[:200]
        out.append({"field": c["field"], "op": op, "value": value})
    return out


def count_matching(actor: Actor, target: str, match: str, conditions: list[dict]) -> int:
    """How many customers (or contacts) the conditions pick, within the actor's data scope — the live count a
    marketer sees while building a segment."""
    from crm_core.org.permissions import visible_clause

    model = Customer if target == "customer" else Contact
    actor.require(target, "view")
    stmt = select(func.count()).select_from(model).where(visible_clause(actor, model), conditions_clause(target, match, conditions))
    if target == "customer":
        stmt = stmt.where(Customer.status == "active")
    return db.session.scalar(stmt) or 0


@service
def create_segment(actor: Actor, data: dict) -> Segment:
    actor.require("customer", "view")
    target = data.get("target", "customer")
    conditions = clean_conditions(target, data.get("conditions") or [])
    if db.session.scalars(select(Segment).where(Segment.org_id == actor.org_id, Segment.name == data["name"])).first():
        raise Conflict(f"细分名称已存在：{data['name']}", fields={"name": "taken"})
    seg = Segment(org_id=actor.org_id, name=data["name"], target=target,
                  match=data.get("match", "all"), conditions=conditions, created_by_id=actor.employee_id)
    db.session.add(seg)
    db.session.flush()
    return seg


@service
def update_segment(actor: Actor, segment_id: int, data: dict) -> Segment:
    """Rename a segment or change its conditions (the target stays: campaigns sent to it name one kind)."""
    actor.require("customer", "view")
    seg = get_segment(actor, segment_id)
    if seg.created_by_id != actor.employee_id and not actor.can("campaign", "edit"):
        from crm_core.errors import PermissionDenied

        raise PermissionDenied("只有细分的创建人或营销人员可以修改它（营销方案按它推送）。")
    name = (data.get("name") or seg.name).strip()
    if name != seg.name and db.session.scalars(select(Segment).where(Segment.org_id == actor.org_id, Segment.name == name)).first():
        raise Conflict(f"细分名称已存在：{name}", fields={"name": "taken"})
    seg.name = name
    if data.get("match") in ("all", "any"):
        seg.match = data["match"]
    if data.get("conditions") is not None:
        seg.conditions = clean_conditions(seg.target, data["conditions"])
    db.session.flush()
    return seg


def list_segments(actor: Actor) -> list[Segment]:
    return list(db.session.scalars(select(Segment).where(Segment.org_id == actor.org_id).order_by(Segment.id)))


def get_segment(actor: Actor, segment_id: int) -> Segment:
    """A segment of the actor's organisation (404 otherwise)."""
    seg = db.session.get(Segment, segment_id)
    if seg is None or seg.org_id != actor.org_id:
        raise NotFound("客户细分不存在。", fields={"segment_id": "unknown"})
    return seg


def segment_dict(s: Segment) -> dict:
    return {"id": s.id, "name": s.name, "target": s.target, "match": s.match, "conditions": s.conditions}


__all__ = ["create_segment", "update_segment", "segment_clause", "conditions_clause", "clean_conditions", "count_matching",
           "get_segment", "list_segments", "segment_dict"]
