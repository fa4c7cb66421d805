"""Organisation settings: collision rules (撞单参数), value pyramid, conversion mapping, approvals."""
from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import Field
from sqlalchemy import select

from crm_core.customers import collision
from crm_core.customers import value as value_svc
from crm_core.customers.models import CollisionRule
from crm_core.db import db
from crm_core.errors import NotFound
from crm_core.org import settings as settings_svc
from wxapp.api import bp
from wxapp.openapi import Model, api, page_of


class RuleField(Model):
    field: str = Field(min_length=1, max_length=32)
    method: Literal["exact", "phone", "company", "similar"]
    threshold: float | None = Field(default=None, ge=0.3, le=1)


class RuleIn(Model):
    object_type: Literal["lead", "customer", "opportunity"]
    name: str = Field(min_length=1, max_length=100)
    fields: list[RuleField] = Field(min_length=1, max_length=10)
    match: Literal["any", "all"] = "any"
    targets: list[Literal["lead", "customer", "opportunity"]] = []
    result_fields: list[str] = Field(default_factory=list, max_length=20)
    action: Literal["warn", "block"] = "warn"
    active: bool = True


class RuleOut(Model):
    id: int
    object_type: str
    name: str
    fields: list[dict]
    match: str
    targets: list[str]
    result_fields: list[str]
    action: str
    active: bool


def _rule(r: CollisionRule) -> dict:
    return {"id": r.id, "object_type": r.object_type, "name": r.name, "fields": r.fields, "match": r.match,
            "targets": r.targets or collision.DEFAULT_TARGETS[r.object_type], "result_fields": r.result_fields,
            "action": r.action, "active": r.active}


def _clean(body: RuleIn) -> dict:
    data = body.model_dump()
    data["fields"] = [{k: v for k, v in f.items() if v is not None} for f in data["fields"]]
    return collision.validate_rule(data)


@api.operation(bp, "/settings/collision-rules", "GET", summary="Collision rules (撞单参数)", tags=("settings",),
               response=page_of(RuleOut))
def list_rules():
    g.actor.require("organization", "view")
    collision.ensure_default_rules(g.actor.org_id)
    rows = db.session.scalars(select(CollisionRule).where(CollisionRule.org_id == g.actor.org_id).order_by(CollisionRule.id))
    items = [_rule(r) for r in rows]
    return {"items": items, "total": len(items)}


@api.operation(bp, "/settings/collision-rules", "POST", summary="Add a collision rule", tags=("settings",),
               body=RuleIn, response=RuleOut, status=201)
def create_rule(body: RuleIn):
    g.actor.require("organization", "edit")
    collision.ensure_default_rules(g.actor.org_id)
    rule = CollisionRule(org_id=g.actor.org_id, **_clean(body))
    db.session.add(rule)
    db.session.flush()
    return _rule(rule)


@api.operation(bp, "/settings/collision-rules/<int:rule_id>", "PUT", summary="Replace a collision rule",
               tags=("settings",), body=RuleIn, response=RuleOut)
def update_rule(rule_id: int, body: RuleIn):
    g.actor.require("organization", "edit")
    rule = db.session.get(CollisionRule, rule_id)
    if rule is None or rule.org_id != g.actor.org_id:
        raise NotFound("撞单规则不存在。")
    for k, v in _clean(body).items():
        setattr(rule, k, v)
    db.session.flush()
    return _rule(rule)


class CheckIn(Model):
    object_type: Literal["lead", "customer", "opportunity"]
    data: dict


@api.operation(bp, "/collisions/check", "POST", summary="Check for collisions without saving", tags=("settings",),
               body=CheckIn)
def check(body: CheckIn):
    """What saving `data` as `object_type` would hit, for forms that warn as you type."""
    return precheck(g.actor, body)


def precheck(actor, body: CheckIn) -> dict:
    """The collision check without saving (the API and the staff phone's 客户备案)."""
    actor.require(body.object_type, "view")
    allowed = set(collision.FIELDS[body.object_type]) | {"kind", "contact_phones"}
    data = {k: v for k, v in body.data.items() if k in allowed and isinstance(v, (str, int, list))}
    hits = collision.check(actor, body.object_type, data)
    return {"items": [h.to_dict() for h in hits], "total": len(hits),
            "blocked": any(h.action == "block" for h in hits)}


class IndicatorIn(Model):
    code: Literal[tuple(value_svc.INDICATOR_KINDS)]  # type: ignore[valid-type]
    name: str | None = Field(default=None, max_length=64)
    weight: float = Field(default=1, gt=0, le=1000)
    full_marks_at: float = Field(default=1, gt=0)


class LevelIn(Model):
    code: str = Field(min_length=1, max_length=8)
    name: str = Field(min_length=1, max_length=32)
    min_score: float = Field(ge=0, le=100)


class ValueConfigIn(Model):
    indicators: list[IndicatorIn] = Field(min_length=1, max_length=20)
    levels: list[LevelIn] = Field(min_length=1, max_length=10)


@api.operation(bp, "/settings/customer-value", "GET", summary="Value indicators and levels (客户金字塔)", tags=("settings",))
def get_value_config():
    g.actor.require("organization", "view")
    inds, levels = value_svc.ensure_defaults(g.actor.org_id)
    return {"indicators": [{"code": i.code, "name": i.name, "weight": i.weight, "full_marks_at": i.full_marks_at} for i in inds],
            "levels": [{"code": lv.code, "name": lv.name, "min_score": lv.min_score} for lv in levels],
            "kinds": value_svc.INDICATOR_KINDS}


@api.operation(bp, "/settings/customer-value", "PUT", summary="Replace value indicators and levels; scores recompute",
               tags=("settings",), body=ValueConfigIn)
def put_value_config(body: ValueConfigIn):
    value_svc.configure(g.actor, [i.model_dump() for i in body.indicators], [lv.model_dump() for lv in body.levels])
    return get_value_config.__wrapped__()


class MappingIn(Model):
    mapping: dict[str, str] = Field(description='lead field -> "customer|contact|opportunity|activity.field"')


@api.operation(bp, "/settings/lead-conversion", "PUT", summary="Field mapping used when converting leads",
               tags=("settings",), body=MappingIn)
def put_mapping(body: MappingIn):
    from crm_core.errors import ValidationFailed
    from crm_core.sales.leads import LEAD_FIELDS

    errors = {}
    for src, dest in body.mapping.items():
        obj, _, fname = dest.partition(".")
        if src not in LEAD_FIELDS:
            errors[f"mapping.{src}"] = "unknown lead field"
        elif obj not in ("customer", "contact", "opportunity", "activity") or not fname:
            errors[f"mapping.{src}"] = "target must be customer.x, contact.x, opportunity.x or activity.x"
    if errors:
        raise ValidationFailed("字段映射有误。", fields=errors)
    return settings_svc.put_setting(g.actor, "lead_conversion", {"mapping": body.mapping})


class ApprovalSettingIn(Model):
    approver: Literal["manager", "employee"] = "manager"
    employee_id: int | None = None


@api.operation(bp, "/settings/opportunity-approval", "PUT", summary="Who approves opportunity stages",
               tags=("settings",), body=ApprovalSettingIn)
def put_approval(body: ApprovalSettingIn):
    from crm_core.errors import ValidationFailed

    if body.approver == "employee" and not body.employee_id:
        raise ValidationFailed("请指定审批人。", fields={"employee_id": "required when approver is employee"})
    return settings_svc.put_setting(g.actor, "opportunity_approval", body.model_dump())


class PoolSettingIn(Model):
    return_after_days: int = Field(default=30, ge=0, le=3650, description="0: owned customers are never returned by the rule")
    exempt_trading: bool = True
    claim_limit: int = Field(default=50, ge=0, le=100_000, description="0: no limit")
    reclaim_after_days: int = Field(default=7, ge=0, le=3650)


@api.operation(bp, "/settings/customer-pool", "PUT", summary="公海 rules: return after N days without follow-up, claim limit",
               tags=("settings",), body=PoolSettingIn)
def put_pool(body: PoolSettingIn):
    return settings_svc.put_setting(g.actor, "customer_pool", body.model_dump())
