"""客户细分 (console, #16 items 3 and 4): the segments campaigns are pushed to, built from conditions picked in
a form — field, operator, value, all or any of them — with the live count of the customers (or contacts) they
pick within the user's data scope, then saved or changed. The marketer's own role builds them."""
from __future__ import annotations

import json

from flask import g, jsonify, render_template, request, url_for
from sqlalchemy import select

from crm_core.customers import segments as svc
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.labels import LABELS
from crm_core.org.models import Employee
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act, denied

FIELD_LABELS = {
    "customer": {"name": "客户名称", "kind": "类型", "trading": "交易客户", "source": "来源", "industry": "行业",
                 "value_level": "价值等级", "value_score": "价值得分", "tags": "标签", "address": "地址", "owner_id": "负责人",
                 "created_at": "登记时间"},
    "contact": {"name": "姓名", "title": "职务", "gender": "性别", "interests": "兴趣", "birthday_month": "生日月份",
                "customer_value_level": "所属客户价值等级", "customer_trading": "所属客户是交易客户", "customer_source": "所属客户来源"},
}
OP_LABELS = {"eq": "等于", "ne": "不等于", "in": "属于其中之一", "contains": "包含", "empty": "为空", "gte": "不低于",
             "lte": "不高于", "within_days": "最近几天内", "before_days": "几天以前"}


def _spec() -> dict:
    """What the builder offers: per target, each field's label, operators and (for closed lists) the choices."""
    owners = [[str(e.id), e.name] for e in db.session.scalars(select(Employee).where(
        Employee.org_id == g.actor.org_id, Employee.active.is_(True)).order_by(Employee.name))]
    choices = {"kind": [["company", "企业"], ["person", "个人"]], "gender": [["male", "男"], ["female", "女"]],
               "source": [[k, v] for k, v in LABELS["source"].items()], "customer_source": [[k, v] for k, v in LABELS["source"].items()],
               "trading": [["true", "是"], ["false", "否"]], "customer_trading": [["true", "是"], ["false", "否"]],
               "owner_id": owners, "birthday_month": [[str(m), f"{m} 月"] for m in range(1, 13)]}
    out = {}
    for target, fields in svc.FIELDS.items():
        out[target] = [{"field": name, "label": FIELD_LABELS[target][name],
                        "ops": [[op, OP_LABELS[op]] for op in svc.OPS[kind]], "choices": choices.get(name)}
                       for name, (_, kind) in fields.items()]
    return out


def _posted() -> tuple[str, dict]:
    try:
        conditions = json.loads(request.form.get("conditions_json") or "[]")
        if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
            raise ValueError
    except ValueError:
        raise ValidationFailed("细分条件格式不正确，请重新选择。", fields={"conditions": "invalid"}) from None
    if len(conditions) > 20:
        raise ValidationFailed("最多 20 个条件。", fields={"conditions": "too many"})
    name = (request.form.get("name") or "").strip()
    if not name:
        raise ValidationFailed("请填写细分名称。", fields={"name": "required"})
    if len(name) > 100:
        raise ValidationFailed("细分名称最多 100 个字。", fields={"name": "too_long"})
    return name, {"name": name, "target": request.form.get("target", "customer"),
                  "match": "any" if request.form.get("match") == "any" else "all", "conditions": conditions}


def _page(segment=None):
    rows = []
    for s in svc.list_segments(g.actor):
        try:
            n = svc.count_matching(g.actor, s.target, s.match, s.conditions or [])
        except DomainError:
            n = None
        rows.append((s, n))
    return render_template("console/segments.html", rows=rows, segment=segment, spec=_spec(),
                           targets={"customer": "客户", "contact": "联系人"})


@bp.get("/segments")
@console_login_required
def segments():
    try:
        g.actor.require("customer", "view")
    except DomainError as exc:
        return denied(exc)
    return _page()


@bp.get("/segments/<int:segment_id>")
@console_login_required
def segment(segment_id: int):
    try:
        return _page(svc.get_segment(g.actor, segment_id))
    except DomainError as exc:
        return denied(exc)


@bp.get("/segments/count")
@console_login_required
def segment_count():
    """The live count while building (read-only, so a GET): ``target``, ``match``, ``conditions`` (JSON)."""
    target = request.args.get("target", "customer")
    try:
        conditions = json.loads(request.args.get("conditions") or "[]")
        if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
            raise ValueError
        n = svc.count_matching(g.actor, target, "any" if request.args.get("match") == "any" else "all", conditions)
    except ValueError:
        return jsonify({"error": "细分条件格式不正确。"}), 422
    except DomainError as exc:
        db.session.rollback()
        return jsonify({"error": exc.message}), exc.status
    return jsonify({"count": n, "target": target})


@bp.post("/segments")
@console_login_required
def segment_create():
    def create():
        return svc.create_segment(g.actor, _posted()[1])

    return act(create, "细分已保存，营销方案可以选用它了。", url_for("console.segments"),
               then=lambda s: url_for("console.segment", segment_id=s.id))


@bp.post("/segments/<int:segment_id>")
@console_login_required
def segment_save(segment_id: int):
    def save():
        return svc.update_segment(g.actor, segment_id, _posted()[1])

    return act(save, "细分已保存。", url_for("console.segment", segment_id=segment_id))
