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
    validate_conditions(target, seg.conditions or [])  # a stored segment edited by hand still answers cleanly
    conds = [_condition(target, c) for c in seg.conditions]
    if target == "contact" and any(c["field"].startswith("customer_") for c in seg.conditions):
        inner = select(Customer.id).where(and_(*[_condition(target, c) for c in seg.conditions if c["field"].startswith("customer_")]))
        conds = [_condition(target, c) for c in seg.conditions if not c["field"].startswith("customer_")]
        conds.append(Contact.customer_id.in_(inner))
    if not conds:
        return Customer.id.is_not(None) if target == "customer" else Contact.id.is_not(None)
    return and_(*conds) if seg.match == "all" else or_(*conds)


@service
def create_segment(actor: Actor, data: dict) -> Segment:
    actor.require("customer", "view")
    validate_conditions(data.get("target", "customer"), data.get("conditions") or [])
    if db.session.scalars(select(Segment).where(Segment.org_id == actor.org_id, Segment.name == data["name"])).first():
        raise Conflict(f"细分名称已存在：{data['name']}", fields={"name": "taken"})
    seg = Segment(org_id=actor.org_id, name=data["name"], target=data.get("target", "customer"),
                  match=data.get("match", "all"), conditions=data.get("conditions") or [], created_by_id=actor.employee_id)
    db.session.add(seg)
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


__all__ = ["create_segment", "segment_clause", "get_segment", "list_segments", "segment_dict"]
