"""Activities (活动) and work plans (工作计划) — seed 3: 日程管理."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select

from crm_core import jobs, outbox
from crm_core.activities.models import ACTIVITY_KINDS, PLAN_PERIODS, Activity, WorkPlan
from crm_core.clock import local_str, to_utc, utcnow
from crm_core.context import service
from crm_core.customers import value
from crm_core.customers.customers import register_360_section
from crm_core.db import db, paginate
from crm_core.errors import Conflict, PermissionDenied, ValidationFailed
from crm_core.org.models import Employee, RecordShare
from crm_core.org.permissions import Actor, get_visible, resolve_reference, scoped_select, visible_clause
from crm_core.org.settings import org_timezone


def _employee(actor: Actor, employee_id: int | None, field: str) -> Employee | None:
    if employee_id is None:
        return None
    emp = db.session.get(Employee, employee_id)
    if emp is None or emp.org_id != actor.org_id:
        raise ValidationFailed("职员不存在。", fields={field: "unknown employee"})
    return emp


@service
def create_activity(actor: Actor, data: dict) -> Activity:
    """An activity linked to a customer, contact, opportunity, lead or ticket, assigned to
    someone (default: the creator), with planned start and end and collaborators."""
    actor.require("activity", "create")
    if not (data.get("subject") or "").strip():
        raise ValidationFailed("活动主题不能为空。", fields={"subject": "required"})
    kind = data.get("kind") or "task"
    if kind not in ACTIVITY_KINDS:
        raise ValidationFailed("活动类型不正确。", fields={"kind": f"one of {', '.join(ACTIVITY_KINDS)}"})
    start, end = data.get("planned_start"), data.get("planned_end")
    if start and end and end < start:
        raise ValidationFailed("计划结束时间不能早于开始时间。", fields={"planned_end": "before planned_start"})
    owner = _employee(actor, actor.employee_id, "owner_id") or _employee(actor, data.get("assignee_id"), "assignee_id")
    if owner is None:
        raise ValidationFailed("当前用户没有关联职员，请指定执行人。", fields={"assignee_id": "required"})
    assignee = _employee(actor, data.get("assignee_id"), "assignee_id") or owner
    if assignee.id != owner.id:
        actor.require("activity", "assign")
    links, linked = {}, {}
    for key in ("customer_id", "contact_id", "opportunity_id", "lead_id"):
        if data.get(key) is not None:
            linked[key] = resolve_reference(actor, key, data[key])
            links[key] = linked[key].id
    if links.get("contact_id") and not links.get("customer_id"):
        links["customer_id"] = linked["contact_id"].customer_id
    if links.get("opportunity_id") and not links.get("customer_id"):
        links["customer_id"] = linked["opportunity_id"].customer_id
    plan_id = data.get("plan_id")
    if plan_id is not None:
        resolve_reference(actor, "plan_id", plan_id, model=WorkPlan, object_type="activity")
    # a sub-activity reports back to its parent, so the parent must be one the actor may see;
    # the ticket it serves likewise (registered by the service area)
    parent_id, ticket_id = data.get("parent_id"), data.get("ticket_id")
    if parent_id is not None:
        resolve_reference(actor, "parent_id", parent_id, model=Activity)
    if ticket_id is not None:
        resolve_reference(actor, "ticket_id", ticket_id)
    activity = Activity(org_id=actor.org_id, owner_id=owner.id, department_id=owner.department_id, subject=data["subject"].strip(),
                        kind=kind, status="planned", assignee_id=assignee.id, planned_start=start, planned_end=end,
                        warn_before_minutes=data.get("warn_before_minutes") or 30, ticket_id=ticket_id,
                        plan_id=plan_id, parent_id=parent_id, result=data.get("result"), **links)
    db.session.add(activity)
    db.session.flush()
    for emp_id in data.get("collaborator_ids") or []:
        _employee(actor, emp_id, "collaborator_ids")
        db.session.add(RecordShare(object_type="activity", object_id=activity.id, employee_id=emp_id,
                                   shared_by_user_id=actor.user_id, created_at=utcnow()))
    if assignee.id != actor.employee_id:
        outbox.notify_staff(assignee.id, "activity_assigned", f"您有新的活动：{activity.subject}", org_id=actor.org_id,
                            activity_id=activity.id)
    db.session.flush()
    return activity


_TRANSITIONS = {"planned": {"in_progress", "done", "cancelled"}, "in_progress": {"done", "cancelled"},
                "done": set(), "cancelled": {"planned"}}
_STATUS_LABELS = {"planned": "计划中", "in_progress": "进行中", "done": "已完成", "cancelled": "已取消"}


@service
def set_activity_status(actor: Actor, activity_id: int, status: str, result: str | None = None,
                        at: datetime | None = None) -> Activity:
    """Move an activity through planned → in progress → done (or cancelled)."""
    activity = get_visible(actor, Activity, activity_id, action="edit")
    if status not in _TRANSITIONS:
        raise ValidationFailed("活动状态不正确。", fields={"status": "one of planned, in_progress, done, cancelled"})
    if status == activity.status:
        return activity
    if status not in _TRANSITIONS[activity.status]:
        raise Conflict(f"活动当前为「{_STATUS_LABELS[activity.status]}」，不能改为「{_STATUS_LABELS[status]}」。",
                       code="illegal_transition")
    now = at or utcnow()
    if status == "in_progress":
        activity.actual_start = activity.actual_start or now
    if status == "done":
        activity.actual_start = activity.actual_start or now
        activity.actual_end = now
    if result:
        activity.result = result
    activity.status = status
    db.session.flush()
    if activity.parent_id and status == "done":  # assigned sub-activities report back to the main one
        parent = db.session.get(Activity, activity.parent_id)
        if parent is not None and parent.org_id == activity.org_id:
            note = f"[{activity.subject}] {result or '已完成'}"
            parent.result = f"{parent.result}\n{note}" if parent.result else note
    return activity


@service
def update_activity(actor: Actor, activity_id: int, data: dict) -> Activity:
    activity = get_visible(actor, Activity, activity_id, action="edit")
    for key in ("subject", "planned_start", "planned_end", "result", "warn_before_minutes"):
        if data.get(key) is not None:
            setattr(activity, key, data[key])
    if activity.planned_start and activity.planned_end and activity.planned_end < activity.planned_start:
        raise ValidationFailed("计划结束时间不能早于开始时间。", fields={"planned_end": "before planned_start"})
    if data.get("planned_start") is not None:
        activity.start_warned_at = None
    if data.get("planned_end") is not None:
        activity.overdue_warned_at = None
    if data.get("assignee_id"):
        actor.require("activity", "assign")
        activity.assignee_id = _employee(actor, data["assignee_id"], "assignee_id").id
    db.session.flush()
    return activity


def list_activities(actor: Actor, *, status: str | None = None, customer_id: int | None = None,
                    opportunity_id: int | None = None, assignee_id: int | None = None, date_from: date | None = None,
                    date_to: date | None = None, page: int = 1, per_page: int = 20) -> tuple[list[Activity], int]:
    stmt = scoped_select(actor, Activity)
    if status:
        stmt = stmt.where(Activity.status == status)
    if customer_id:
        stmt = stmt.where(Activity.customer_id == customer_id)
    if opportunity_id:
        stmt = stmt.where(Activity.opportunity_id == opportunity_id)
    if assignee_id:
        stmt = stmt.where(Activity.assignee_id == assignee_id)
    if date_from:
        stmt = stmt.where(func.coalesce(Activity.planned_start, Activity.created_at) >= datetime.combine(date_from, datetime.min.time()))
    if date_to:
        stmt = stmt.where(func.coalesce(Activity.planned_start, Activity.created_at) < datetime.combine(date_to + timedelta(days=1), datetime.min.time()))
    newest = Activity.planned_start.desc().nulls_last() if db.engine.dialect.name != "sqlite" else Activity.planned_start.desc()
    return paginate(stmt, newest, Activity.id.desc(), page=page, per_page=per_page)


def calendar(actor: Actor, employee_id: int | None, date_from: date, date_to: date) -> list[Activity]:
    """Activities of one employee (owner or assignee) planned in the range. Another
    employee's calendar shows only what the actor's data scope covers."""
    actor.require("activity", "view")
    emp_id = employee_id or actor.employee_id
    if emp_id is None:
        raise ValidationFailed("请指定职员。", fields={"employee_id": "required"})
    if (date_to - date_from).days > 92:
        raise ValidationFailed("日历范围最长 92 天。", fields={"date_to": "range too long"})
    stmt = select(Activity).where(
        visible_clause(actor, Activity),
        or_(Activity.assignee_id == emp_id, Activity.owner_id == emp_id),
        Activity.planned_start >= datetime.combine(date_from, datetime.min.time()),
        Activity.planned_start < datetime.combine(date_to + timedelta(days=1), datetime.min.time()),
    ).order_by(Activity.planned_start)
    return list(db.session.scalars(stmt))


def to_ics(activities: list[Activity], name: str) -> str:
    """An iCalendar feed (phones subscribe to it)."""
    def esc(s: str) -> str:
        return (s or "").replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")

    def ts(d: datetime) -> str:
        return d.strftime("%Y%m%dT%H%M%SZ")

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//lanyun//wxcrm//ZH", f"X-WR-CALNAME:{esc(name)}"]
    for a in activities:
        end = a.planned_end or (a.planned_start + timedelta(hours=1))
        lines += ["BEGIN:VEVENT", f"UID:activity-{a.id}@wxcrm", f"DTSTAMP:{ts(a.updated_at or a.created_at)}",
                  f"DTSTART:{ts(a.planned_start)}", f"DTEND:{ts(end)}", f"SUMMARY:{esc(a.subject)}",
                  f"STATUS:{'COMPLETED' if a.status == 'done' else ('CANCELLED' if a.status == 'cancelled' else 'CONFIRMED')}",
                  "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


@jobs.periodic(every=300)
def activity_warnings() -> int:
    """Early warning before planned start, overdue warning after planned end (once each)."""
    now = utcnow()
    sent = 0
    upcoming = db.session.scalars(select(Activity).where(
        Activity.status == "planned", Activity.start_warned_at.is_(None), Activity.planned_start.is_not(None),
        Activity.planned_start > now, Activity.planned_start <= now + timedelta(days=1))).all()
    for a in upcoming:
        if a.planned_start - timedelta(minutes=a.warn_before_minutes) <= now:
            outbox.notify_staff(a.assignee_id or a.owner_id, "activity_start",
                                f"活动「{a.subject}」将于 {local_str(a.planned_start, '%m-%d %H:%M', org_timezone(a.org_id))} 开始。", org_id=a.org_id,
                                dedupe_key=f"activity:{a.id}:start:{a.planned_start.isoformat()}", activity_id=a.id)
            a.start_warned_at = now
            sent += 1
    overdue = db.session.scalars(select(Activity).where(
        Activity.status.in_(("planned", "in_progress")), Activity.overdue_warned_at.is_(None),
        Activity.planned_end.is_not(None), Activity.planned_end < now)).all()
    for a in overdue:
        for recipient in {a.assignee_id or a.owner_id, a.owner_id}:
            outbox.notify_staff(recipient, "activity_overdue", f"活动「{a.subject}」已超过计划完成时间，请处理。",
                                org_id=a.org_id, dedupe_key=f"activity:{a.id}:overdue:{recipient}:{a.planned_end.isoformat()}",
                                activity_id=a.id)
        a.overdue_warned_at = now
        sent += 1
    db.session.flush()
    return sent


def my_day(actor: Actor) -> dict:
    """今日计划: what the employee has today — open activities planned for today (in time order), open ones overdue
    (past their planned end, or planned before today with no end), what they finished today — and their daily work
    plan for today, if any. "Today" is the organisation's day; only activities they own or are assigned."""
    from zoneinfo import ZoneInfo

    from crm_core.clock import local_today

    actor.require("activity", "view")
    if actor.employee_id is None:
        return {"date": None, "today": [], "overdue": [], "done": [], "plan": None}
    tz = org_timezone(actor.org_id)
    day = local_today(tz)
    start = to_utc(datetime.combine(day, datetime.min.time()), ZoneInfo(tz))
    end = start + timedelta(days=1)
    now, me = utcnow(), actor.employee_id
    mine = or_(Activity.assignee_id == me, (Activity.assignee_id.is_(None)) & (Activity.owner_id == me))
    is_open = Activity.status.in_(("planned", "in_progress"))
    late = or_(Activity.planned_end < now, (Activity.planned_end.is_(None)) & (Activity.planned_start < start))
    rows = db.session.scalars(select(Activity).where(
        visible_clause(actor, Activity), mine,
        or_(is_open & (((Activity.planned_start >= start) & (Activity.planned_start < end)) | late),
            (Activity.status == "done") & (Activity.actual_end >= start) & (Activity.actual_end < end)))
        .order_by(Activity.planned_start, Activity.id).limit(500)).all()
    out: dict[str, list] = {"today": [], "overdue": [], "done": []}
    for a in rows:
        overdue = a.status != "done" and ((a.planned_end is not None and a.planned_end < now)
                                          or (a.planned_end is None and a.planned_start is not None and a.planned_start < start))
        out["done" if a.status == "done" else "overdue" if overdue else "today"].append(a)
    plan = db.session.scalars(select(WorkPlan).where(
        WorkPlan.owner_id == me, WorkPlan.period == "daily", WorkPlan.start_date <= day, WorkPlan.end_date >= day)
        .order_by(WorkPlan.id.desc())).first()
    return {"date": day, **out, "plan": plan}


# --- work plans ----------------------------------------------------------------------------
@service
def create_plan(actor: Actor, data: dict) -> WorkPlan:
    """A daily, weekly or monthly plan; the reviewer may be anyone, not only the manager."""
    actor.require("activity", "create")
    if data.get("period") not in PLAN_PERIODS:
        raise ValidationFailed("计划类型不正确。", fields={"period": "daily, weekly or monthly"})
    if data["end_date"] < data["start_date"]:
        raise ValidationFailed("结束日期不能早于开始日期。", fields={"end_date": "before start_date"})
    if actor.employee_id is None:
        from crm_core.errors import NoEmployeeLinked
        from crm_core.org.permissions import NO_EMPLOYEE_MESSAGE

        raise NoEmployeeLinked(NO_EMPLOYEE_MESSAGE)
    me = db.session.get(Employee, actor.employee_id)
    reviewer = _employee(actor, data.get("reviewer_id"), "reviewer_id")
    _not_own_reviewer(me.id, reviewer)
    plan = WorkPlan(org_id=actor.org_id, owner_id=me.id, department_id=me.department_id, period=data["period"],
                    start_date=data["start_date"], end_date=data["end_date"], title=data["title"],
                    content=data.get("content"), reviewer_id=reviewer.id if reviewer else None, review_status="draft")
    db.session.add(plan)
    db.session.flush()
    for item in data.get("activities") or []:  # break the plan into activities
        create_activity(actor, {**item, "plan_id": plan.id})
    return plan


@service
def submit_plan(actor: Actor, plan_id: int, summary: str | None = None) -> WorkPlan:
    plan = get_visible(actor, WorkPlan, plan_id, object_type="activity", action="edit")
    if plan.owner_id != actor.employee_id:
        raise PermissionDenied("只有计划的制定人可以提交。")
    if plan.reviewer_id is None:
        raise ValidationFailed("请先指定批阅人。", fields={"reviewer_id": "required"})
    plan.summary = summary or plan.summary
    plan.review_status = "submitted"
    db.session.flush()
    outbox.notify_staff(plan.reviewer_id, "plan_submitted", f"工作计划「{plan.title}」待您批阅。", org_id=plan.org_id,
                        plan_id=plan.id)
    return plan


@service
def review_plan(actor: Actor, plan_id: int, comment: str) -> WorkPlan:
    """批阅: only the chosen reviewer."""
    plan = get_visible(actor, WorkPlan, plan_id, object_type="activity")
    if plan.reviewer_id != actor.employee_id:
        raise PermissionDenied("只有指定的批阅人可以批阅该计划。")
    if plan.review_status != "submitted":
        raise Conflict("计划尚未提交或已批阅。")
    plan.review_status, plan.review_comment, plan.reviewed_at = "reviewed", comment, utcnow()
    db.session.flush()
    return plan


@service
def return_plan(actor: Actor, plan_id: int, comment: str) -> WorkPlan:
    """退回: the reviewer sends a submitted plan back to its owner with a comment; it is a draft again, to be
    corrected and submitted anew."""
    plan = get_visible(actor, WorkPlan, plan_id, object_type="activity")
    if plan.reviewer_id != actor.employee_id:
        raise PermissionDenied("只有指定的批阅人可以退回该计划。")
    if plan.review_status != "submitted":
        raise Conflict("计划尚未提交或已批阅。")
    plan.review_status, plan.review_comment = "draft", (comment or "").strip()[:2000] or None
    db.session.flush()
    outbox.notify_staff(plan.owner_id, "plan_returned", f"工作计划「{plan.title}」被退回：{plan.review_comment or ''}",
                        org_id=plan.org_id, plan_id=plan.id)
    return plan


def _not_own_reviewer(owner_id: int, reviewer: Employee | None) -> None:
    if reviewer is not None and (reviewer.id == owner_id or not reviewer.active):
        raise ValidationFailed("批阅人不能是自己，也不能是已离职的职员。", fields={"reviewer_id": "invalid"})


def _own_plan(actor: Actor, plan_id: int) -> WorkPlan:
    plan = get_visible(actor, WorkPlan, plan_id, object_type="activity", action="edit")
    if plan.owner_id != actor.employee_id:
        raise PermissionDenied("只有计划的制定人可以修改。")
    return plan


@service
def update_plan(actor: Actor, plan_id: int, data: dict) -> WorkPlan:
    """The owner changes a plan not yet submitted (or sent back): title, content, dates, summary."""
    plan = _own_plan(actor, plan_id)
    if plan.review_status != "draft":
        raise Conflict("已提交的计划不能修改；请批阅人退回后再改。")
    title = (data.get("title") or plan.title).strip()
    if not title:
        raise ValidationFailed("请填写计划标题。", fields={"title": "required"})
    start, end = data.get("start_date") or plan.start_date, data.get("end_date") or plan.end_date
    if end < start:
        raise ValidationFailed("结束日期不能早于开始日期。", fields={"end_date": "before start_date"})
    plan.title, plan.start_date, plan.end_date = title[:200], start, end
    for key in ("content", "summary"):
        if data.get(key) is not None:
            setattr(plan, key, data[key].strip()[:4000] or None)
    db.session.flush()
    return plan


@service
def change_reviewer(actor: Actor, plan_id: int, reviewer_id: int) -> WorkPlan:
    """换批阅人: the owner hands a plan not yet reviewed to another reviewer — anyone in the organisation; a
    submitted plan goes to the new reviewer's 待我审批 at once (and leaves the old one's)."""
    plan = _own_plan(actor, plan_id)
    if plan.review_status == "reviewed":
        raise Conflict("计划已批阅，不能再换批阅人。")
    reviewer = _employee(actor, reviewer_id, "reviewer_id")
    if reviewer is None:
        raise ValidationFailed("请选择批阅人。", fields={"reviewer_id": "required"})
    _not_own_reviewer(plan.owner_id, reviewer)
    if reviewer.id == plan.reviewer_id:
        return plan
    plan.reviewer_id = reviewer.id
    db.session.flush()
    if plan.review_status == "submitted":
        outbox.notify_staff(reviewer.id, "plan_submitted", f"工作计划「{plan.title}」待您批阅。", org_id=plan.org_id,
                            plan_id=plan.id)
    return plan


def my_plans(actor: Actor, limit: int = 50) -> list[WorkPlan]:
    """The plans I made, newest first."""
    if actor.employee_id is None:
        return []
    return list(db.session.scalars(select(WorkPlan).where(WorkPlan.org_id == actor.org_id, WorkPlan.owner_id == actor.employee_id)
                                   .order_by(WorkPlan.start_date.desc(), WorkPlan.id.desc()).limit(limit)))


def plans_to_review(actor: Actor) -> list[WorkPlan]:
    """The work plans submitted to me for 批阅, oldest first."""
    if actor.employee_id is None:
        return []
    return list(db.session.scalars(select(WorkPlan).where(
        WorkPlan.org_id == actor.org_id, WorkPlan.reviewer_id == actor.employee_id, WorkPlan.review_status == "submitted")
        .order_by(WorkPlan.updated_at, WorkPlan.id)))


def plan_vs_actual(actor: Actor, plan_id: int) -> dict:
    """Planned activities against what was done, with an on-time figure."""
    plan = get_visible(actor, WorkPlan, plan_id, object_type="activity")
    acts = db.session.scalars(select(Activity).where(Activity.plan_id == plan.id)).all()
    done = [a for a in acts if a.status == "done"]
    on_time = [a for a in done if a.planned_end is None or (a.actual_end and a.actual_end <= a.planned_end)]
    by_kind: dict[str, dict] = {}
    for a in acts:
        k = by_kind.setdefault(a.kind, {"planned": 0, "done": 0})
        k["planned"] += 1
        k["done"] += a.status == "done"
    return {"plan_id": plan.id, "planned": len(acts), "done": len(done), "cancelled": sum(a.status == "cancelled" for a in acts),
            "open": sum(a.status in ("planned", "in_progress") for a in acts), "on_time": len(on_time),
            "completion_rate": round(len(done) / len(acts), 3) if acts else None, "by_kind": by_kind}


def activity_dict(a: Activity) -> dict:
    iso = lambda d: d.isoformat() + "Z" if d else None  # noqa: E731
    return {"id": a.id, "subject": a.subject, "kind": a.kind, "status": a.status, "owner_id": a.owner_id,
            "assignee_id": a.assignee_id, "customer_id": a.customer_id, "contact_id": a.contact_id,
            "opportunity_id": a.opportunity_id, "lead_id": a.lead_id, "ticket_id": a.ticket_id, "plan_id": a.plan_id,
            "parent_id": a.parent_id, "planned_start": iso(a.planned_start), "planned_end": iso(a.planned_end),
            "actual_start": iso(a.actual_start), "actual_end": iso(a.actual_end), "result": a.result,
            "collaborator_ids": list(db.session.scalars(select(RecordShare.employee_id).where(
                RecordShare.object_type == "activity", RecordShare.object_id == a.id)))}


def plan_dict(p: WorkPlan) -> dict:
    return {"id": p.id, "period": p.period, "start_date": p.start_date.isoformat(), "end_date": p.end_date.isoformat(),
            "title": p.title, "content": p.content, "summary": p.summary, "owner_id": p.owner_id,
            "reviewer_id": p.reviewer_id, "review_status": p.review_status, "review_comment": p.review_comment}


# --- the customer 360 view's activity section ------------------------------------------------
def activity_brief(a: Activity) -> dict:
    return {"id": a.id, "subject": a.subject, "kind": a.kind, "status": a.status,
            "planned_start": a.planned_start.isoformat() + "Z" if a.planned_start else None,
            "actual_end": a.actual_end.isoformat() + "Z" if a.actual_end else None}


def _recent_activities(actor: Actor, customer) -> list[dict]:
    rows = db.session.scalars(select(Activity).where(Activity.customer_id == customer.id)
                              .order_by(Activity.id.desc()).limit(20)).all()
    return [activity_brief(a) for a in rows]


def _value_measures(customer_ids: list[int], since) -> list:
    """The value pyramid's activity indicator: activities in the last 90 days."""
    return [(select(Activity.customer_id, func.count()).where(Activity.customer_id.in_(customer_ids), Activity.created_at >= since)
             .group_by(Activity.customer_id), ("activity_count_90d",))]


register_360_section("recent_activities", _recent_activities)
value.register_measure(_value_measures)
