"""活动 in the console (#16 item 3): a follow-up logged from the customer's 360 page (a visit, a call, a meeting...),
and one activity's page — changed (subject, times, result, who does it), started, finished with its result, or
cancelled — through the same services as the API and the phone (times typed are China time, as everywhere)."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.activities import activities as svc
from crm_core.activities.models import Activity
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.labels import LABELS
from crm_core.org.models import Employee
from crm_core.org.organization import employee_names
from crm_core.org.permissions import get_visible
from wxapp.api.activities import ActivityIn, ActivityPatch
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.forms import form_values, text_fields
from wxapp.pages import act, denied, form_int

LABELS_ = {"subject": "主题", "kind": "类型", "planned_start": "计划开始", "planned_end": "计划结束", "result": "结果",
           "assignee_id": "执行人"}
NEXT = {"planned": ("in_progress", "done", "cancelled"), "in_progress": ("done", "cancelled"), "done": (), "cancelled": ("planned",)}
MOVE_LABELS = {"in_progress": "开始", "done": "完成", "cancelled": "取消", "planned": "恢复为计划"}


def _local(raw: str | None) -> str | None:
    """A datetime-local value (what the person typed, in the organisation's zone) with its offset, for the model."""
    if not raw:
        return None
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from crm_core.org.settings import org_timezone

    try:
        return datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(org_timezone(g.actor.org_id))).isoformat()
    except ValueError:
        return raw  # the model names what is wrong with it


def _form() -> dict:
    data = text_fields(request.form, ("subject", "planned_start", "planned_end", "result"),
                       none_if_empty=("planned_start", "planned_end", "result"))
    data["planned_start"], data["planned_end"] = _local(data["planned_start"]), _local(data["planned_end"])
    if request.form.get("assignee_id", "").isdigit():
        data["assignee_id"] = int(request.form["assignee_id"])
    return data


@bp.post("/customers/<int:customer_id>/activities")
@console_login_required
def activity_add(customer_id: int):
    def add():
        get_visible(g.actor, Customer, customer_id)
        data = _form()
        data["kind"] = request.form.get("kind") or "visit"
        data["customer_id"] = customer_id
        body = form_values(ActivityIn, data, LABELS_)
        return svc.create_activity(g.actor, body.model_dump(exclude_none=True))

    return act(add, "活动已记录。", url_for("console.customer_360", customer_id=customer_id) + "#activities")


@bp.get("/activities/<int:activity_id>")
@console_login_required
def activity_page(activity_id: int):
    try:
        a = get_visible(g.actor, Activity, activity_id)
    except DomainError as exc:
        return denied(exc)
    customer = db.session.get(Customer, a.customer_id) if a.customer_id else None
    employees = list(db.session.scalars(select(Employee).where(Employee.org_id == g.actor.org_id, Employee.active.is_(True))
                                        .order_by(Employee.name))) if g.actor.can("activity", "assign") else []
    return render_template("console/activity.html", a=a, customer=customer, names=employee_names([a.owner_id, a.assignee_id]),
                           moves=[(m, MOVE_LABELS[m]) for m in NEXT[a.status]], employees=employees,
                           kinds=LABELS["activity_kind"], statuses=LABELS["activity_status"])


@bp.post("/activities/<int:activity_id>")
@console_login_required
def activity_save(activity_id: int):
    def save():
        body = form_values(ActivityPatch, _form(), LABELS_)
        return svc.update_activity(g.actor, activity_id, body.model_dump(exclude_unset=True, exclude_none=True))

    return act(save, "活动已保存。", url_for("console.activity_page", activity_id=activity_id))


@bp.post("/activities/<int:activity_id>/status")
@console_login_required
def activity_move(activity_id: int):
    def move():
        status = request.form.get("status", "")
        result = (request.form.get("result") or "").strip()[:2000] or None
        if status == "done" and not result:
            raise ValidationFailed("完成活动时请填写结果（如：客户同意下周签约）。", fields={"result": "required"})
        return svc.set_activity_status(g.actor, activity_id, status, result)

    return act(move, lambda: "活动状态已更新。", url_for("console.activity_page", activity_id=activity_id))



@bp.get("/activities")
@console_login_required
def activities():
    """活动: every activity the user's scope covers — filtered by status, who does it and the planned day (China time),
    the same filters the 导出 links carry to the API's export."""
    from datetime import date

    from crm_core.customers.customers import customer_names

    args = request.args
    status = args.get("status") if args.get("status") in LABELS["activity_status"] else None
    assignee_id = form_int(args.get("assignee_id"))
    days = {}
    for key in ("date_from", "date_to"):
        try:
            days[key] = date.fromisoformat(args[key]) if args.get(key) else None
        except ValueError:
            days[key] = None
    page = max(1, min(form_int(args.get("page")) or 1, 10_000))
    try:
        rows, total = svc.list_activities(g.actor, status=status, assignee_id=assignee_id, page=page, per_page=20, **days)
    except DomainError as exc:
        return denied(exc)
    people = list(db.session.scalars(select(Employee).where(Employee.org_id == g.actor.org_id, Employee.active.is_(True))
                                     .order_by(Employee.name)))
    filters = {k: v for k, v in {"status": status, "assignee_id": assignee_id,
                                 **{k: d.isoformat() for k, d in days.items() if d}}.items() if v}
    return render_template("console/activities.html", rows=rows, total=total, page=page, filters=filters,
                           people=people, names=employee_names(r.assignee_id or r.owner_id for r in rows),
                           customers=customer_names(r.customer_id for r in rows),
                           kinds=LABELS["activity_kind"], statuses=LABELS["activity_status"])
