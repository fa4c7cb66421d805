"""审批流程与委托 (console): each document type's approval flow — steps with their approvers, 或签/会签 and conditions
such as 金额 > 500000 or 折扣率 > 10 — the reminder period (for an administrator), and everyone's own delegations
while away (审批委托). The same engine calls as ``/api/v1/approval-flows`` and ``/api/v1/approval-delegations``."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.db import db
from crm_core.errors import ValidationFailed
from crm_core.org import approvals_engine as engine
from crm_core.org.models import Employee, Role
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act

FORM_STEPS = 5  # rows the page offers; the engine allows MAX_STEPS through the API


def _employees() -> list[Employee]:
    return list(db.session.scalars(select(Employee).where(Employee.org_id == g.actor.org_id, Employee.active.is_(True))
                                   .order_by(Employee.name)))


@bp.get("/settings/approvals")
@console_login_required
def approval_settings():
    can_edit = g.actor.can("organization", "edit")
    data = engine.flows(g.actor.org_id) if can_edit else None
    roles = list(db.session.scalars(select(Role).where((Role.org_id == g.actor.org_id) | Role.org_id.is_(None))
                                    .order_by(Role.id))) if can_edit else []
    return render_template("console/approval_settings.html", data=data, can_edit=can_edit, roles=roles,
                           employees=_employees(), describe=engine.describe_step, form_steps=FORM_STEPS,
                           kinds=engine.APPROVER_KINDS, modes=engine.MODES, ops=engine.OPS, facts=engine.FACT_LABELS,
                           delegations=[engine.delegation_dict(d) for d in engine.list_delegations(g.actor)])


def _steps_from_form(form) -> list[dict]:
    steps = []
    for i in range(FORM_STEPS):
        kind = form.get(f"s{i}_approver") or ""
        if not kind:
            continue  # an empty row
        step: dict = {"name": form.get(f"s{i}_name", "")[:30], "approver": kind, "mode": form.get(f"s{i}_mode") or "any"}
        if kind == "manager":
            step["levels"] = form.get(f"s{i}_levels") or 1
        elif kind == "employees":
            step["employee_ids"] = [v for v in form.getlist(f"s{i}_employees") if v.strip()]
        elif kind == "role":
            step["role"] = form.get(f"s{i}_role", "")[:64]
        when = []
        for c in (1, 2):
            field, value = form.get(f"s{i}_c{c}_field") or "", (form.get(f"s{i}_c{c}_value") or "").strip()
            if field or value:
                if not (field and value):
                    raise ValidationFailed(f"第 {len(steps) + 1} 步的条件请同时填写字段和数值。",
                                           fields={f"s{i}_c{c}_value": "required"})
                when.append({"field": field, "op": form.get(f"s{i}_c{c}_op") or "gt", "value": value[:20]})
        if when:
            step["when"], step["match"] = when, form.get(f"s{i}_match") or "any"
        steps.append(step)
    return steps


@bp.post("/settings/approvals/<doc_type>")
@console_login_required
def approval_flow_save(doc_type: str):
    back = url_for("console.approval_settings") + f"#flow-{doc_type[:32]}"
    if request.form.get("reset"):
        return act(lambda: engine.put_flow(g.actor, doc_type[:32], None), "已恢复默认审批流程。", back)
    label = engine.doc_types().get(doc_type[:32])
    return act(lambda: engine.put_flow(g.actor, doc_type[:32], _steps_from_form(request.form)),
               f"{label.label if label else ''}审批流程已保存。", back)


@bp.post("/settings/approvals-reminders")
@console_login_required
def approval_reminders_save():
    def save():
        raw = (request.form.get("remind_hours") or "").strip()
        if not raw.isdigit():
            raise ValidationFailed("催办间隔请填写 0 到 720 之间的整数（小时）。", fields={"remind_hours": "an integer"})
        return engine.put_remind_hours(g.actor, int(raw))
    return act(save, "催办设置已保存。", url_for("console.approval_settings") + "#reminders")


@bp.post("/settings/approval-delegations")
@console_login_required
def approval_delegation_create():
    form = request.form
    data = {"delegate_id": form.get("delegate_id") or None, "starts_on": form.get("starts_on") or None,
            "ends_on": form.get("ends_on") or None, "note": form.get("note", "")[:200]}
    if form.get("employee_id"):
        data["employee_id"] = form.get("employee_id")
    return act(lambda: engine.create_delegation(g.actor, data), "委托已设置：受托人会收到通知，并在委托期内代您审批。",
               url_for("console.approval_settings") + "#delegations")


@bp.post("/settings/approval-delegations/<int:delegation_id>/revoke")
@console_login_required
def approval_delegation_revoke(delegation_id: int):
    return act(lambda: engine.revoke_delegation(g.actor, delegation_id), "委托已撤销。",
               url_for("console.approval_settings") + "#delegations")
