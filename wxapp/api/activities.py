"""Activities, the calendar feed and work plans (日程管理)."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import Response, g
from pydantic import Field

from crm_core.activities import activities as svc
from crm_core.activities.models import ACTIVITY_KINDS, Activity, WorkPlan
from crm_core.db import db, paginate
from crm_core.org.models import Employee
from crm_core.org.permissions import get_visible
from wxapp import exports
from wxapp.api import bp
from wxapp.openapi import Model, PageQuery, UtcDateTime, api, page_of


class ActivityIn(Model):
    subject: str = Field(min_length=1, max_length=200)
    kind: Literal[ACTIVITY_KINDS] = "task"  # type: ignore[valid-type]
    assignee_id: int | None = None
    customer_id: int | None = None
    contact_id: int | None = None
    opportunity_id: int | None = None
    lead_id: int | None = None
    ticket_id: int | None = None
    plan_id: int | None = None
    parent_id: int | None = None
    planned_start: UtcDateTime | None = None
    planned_end: UtcDateTime | None = None
    warn_before_minutes: int | None = Field(default=None, ge=0, le=10080)
    collaborator_ids: list[int] = Field(default_factory=list, max_length=20)
    result: str | None = Field(default=None, max_length=2000)


class ActivityPatch(Model):
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    assignee_id: int | None = None
    planned_start: UtcDateTime | None = None
    planned_end: UtcDateTime | None = None
    warn_before_minutes: int | None = Field(default=None, ge=0, le=10080)
    result: str | None = Field(default=None, max_length=2000)


class ActivityOut(Model):
    id: int
    subject: str
    kind: str
    status: str
    owner_id: int | None
    assignee_id: int | None
    customer_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    lead_id: int | None
    ticket_id: int | None
    plan_id: int | None
    parent_id: int | None
    planned_start: str | None
    planned_end: str | None
    actual_start: str | None
    actual_end: str | None
    result: str | None
    collaborator_ids: list[int]


class ActivityQuery(PageQuery):
    per_page: int = Field(default=20, ge=1, le=100)
    status: Literal["planned", "in_progress", "done", "cancelled"] | None = None
    customer_id: int | None = None
    opportunity_id: int | None = None
    assignee_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None


@api.operation(bp, "/activities", "GET", summary="Activities within the caller's data scope", tags=("activities",),
               query=ActivityQuery, response=page_of(ActivityOut))
def list_activities(query: ActivityQuery):
    rows, total = svc.list_activities(g.actor, **query.model_dump(exclude={"page", "per_page"}), page=query.page,
                                      per_page=query.per_page)
    return {"items": [svc.activity_dict(a) for a in rows], "total": total}


@api.operation(bp, "/activities", "POST", summary="Plan an activity (活动跟踪)", tags=("activities",),
               body=ActivityIn, response=ActivityOut, status=201)
def create_activity(body: ActivityIn):
    """Times without an offset are China Standard Time; answers are UTC (`Z`)."""
    return svc.activity_dict(svc.create_activity(g.actor, body.model_dump()))


@api.operation(bp, "/activities/<int:activity_id>", "GET", summary="One activity", tags=("activities",),
               response=ActivityOut)
def get_activity(activity_id: int):
    return svc.activity_dict(get_visible(g.actor, Activity, activity_id))


@api.operation(bp, "/activities/<int:activity_id>", "PATCH", summary="Change an activity", tags=("activities",),
               body=ActivityPatch, response=ActivityOut)
def update_activity(activity_id: int, body: ActivityPatch):
    return svc.activity_dict(svc.update_activity(g.actor, activity_id, body.model_dump(exclude_unset=True)))


class StatusIn(Model):
    status: Literal["planned", "in_progress", "done", "cancelled"]
    result: str | None = Field(default=None, max_length=2000)


@api.operation(bp, "/activities/<int:activity_id>/status", "POST", summary="Start, finish or cancel",
               tags=("activities",), body=StatusIn, response=ActivityOut)
def set_status(activity_id: int, body: StatusIn):
    return svc.activity_dict(svc.set_activity_status(g.actor, activity_id, body.status, body.result))


class CalendarQuery(Model):
    employee_id: int | None = None
    date_from: date
    date_to: date
    format: Literal["json", "ics"] = "json"


@api.operation(bp, "/calendar", "GET", summary="Calendar of one employee's activities (JSON or iCalendar)",
               tags=("activities",), query=CalendarQuery)
def calendar(query: CalendarQuery):
    """Another employee's calendar shows only what your data scope covers."""
    items = svc.calendar(g.actor, query.employee_id, query.date_from, query.date_to)
    if query.format == "ics":
        emp = db.session.get(Employee, query.employee_id or g.actor.employee_id)
        return Response(svc.to_ics(items, f"{emp.name if emp else ''}的日程"), mimetype="text/calendar")
    return {"items": [svc.activity_dict(a) for a in items], "total": len(items)}


class PlanActivity(Model):
    subject: str = Field(min_length=1, max_length=200)
    kind: Literal[ACTIVITY_KINDS] = "task"  # type: ignore[valid-type]
    customer_id: int | None = None
    opportunity_id: int | None = None
    planned_start: UtcDateTime | None = None
    planned_end: UtcDateTime | None = None


class PlanIn(Model):
    period: Literal["daily", "weekly", "monthly"]
    start_date: date
    end_date: date
    title: str = Field(min_length=1, max_length=200)
    content: str | None = Field(default=None, max_length=4000)
    reviewer_id: int | None = None
    activities: list[PlanActivity] = Field(default_factory=list, max_length=100)


class PlanOut(Model):
    id: int
    period: str
    start_date: str
    end_date: str
    title: str
    content: str | None
    summary: str | None
    owner_id: int | None
    reviewer_id: int | None
    review_status: str
    review_comment: str | None


@api.operation(bp, "/work-plans", "POST", summary="A work plan, broken into activities", tags=("activities",),
               body=PlanIn, response=PlanOut, status=201)
def create_plan(body: PlanIn):
    return svc.plan_dict(svc.create_plan(g.actor, body.model_dump()))


def _plans(actor, page: int = 1, per_page: int = 20):
    from crm_core.org.permissions import scoped_select

    return paginate(scoped_select(actor, WorkPlan, "activity"), WorkPlan.id.desc(), page=page, per_page=per_page)


@api.operation(bp, "/work-plans", "GET", summary="Work plans I own or review, and my team's",
               tags=("activities",), query=PageQuery, response=page_of(PlanOut))
def list_plans(query: PageQuery):
    rows, total = _plans(g.actor, query.page, min(query.per_page, 100))
    return {"items": [svc.plan_dict(p) for p in rows], "total": total}


exports.register(bp, api, "/work-plans", "工作计划", "activity", PageQuery, _plans, lambda rows: [svc.plan_dict(p) for p in rows], [
    exports.Column("period", "类型", "label:plan_period"), exports.Column("start_date", "开始日期"),
    exports.Column("end_date", "结束日期"), exports.Column("title", "标题"), exports.Column("content", "计划内容"),
    exports.Column("summary", "总结"), exports.Column("owner_id", "填写人", "employee"),
    exports.Column("reviewer_id", "批阅人", "employee"), exports.Column("review_status", "状态", "label:plan_review_status"),
    exports.Column("review_comment", "批阅意见")])


class SubmitIn(Model):
    summary: str | None = Field(default=None, max_length=4000)


@api.operation(bp, "/work-plans/<int:plan_id>/submit", "POST", summary="Submit the plan (with its summary) for review",
               tags=("activities",), body=SubmitIn, response=PlanOut)
def submit_plan(plan_id: int, body: SubmitIn):
    return svc.plan_dict(svc.submit_plan(g.actor, plan_id, body.summary))


class ReviewIn(Model):
    comment: str = Field(min_length=1, max_length=2000)


@api.operation(bp, "/work-plans/<int:plan_id>/review", "POST", summary="Review (批阅) — the chosen reviewer only",
               tags=("activities",), body=ReviewIn, response=PlanOut)
def review_plan(plan_id: int, body: ReviewIn):
    return svc.plan_dict(svc.review_plan(g.actor, plan_id, body.comment))


@api.operation(bp, "/work-plans/<int:plan_id>/progress", "GET", summary="Plan versus actual", tags=("activities",))
def plan_progress(plan_id: int):
    return svc.plan_vs_actual(g.actor, plan_id)


exports.register(bp, api, "/activities", "活动", "activity", ActivityQuery, svc.list_activities,
                 lambda rows: [svc.activity_dict(a) for a in rows], [
                     exports.Column("subject", "主题"), exports.Column("kind", "类型", "label:activity_kind"),
                     exports.Column("status", "状态", "label:activity_status"), exports.Column("customer_id", "客户", "customer"),
                     exports.Column("planned_start", "计划开始", "time"), exports.Column("actual_end", "完成时间", "time"),
                     exports.Column("assignee_id", "执行人", "employee"), exports.Column("result", "结果")])
