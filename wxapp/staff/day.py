"""今日计划 on the phone: my activities of today (start, finish with the result, overdue ones first), a new one added
to today, and my daily work plan (write it, name the reviewer, submit it with the day's summary). The reviewer 批阅s
it from 待我审批 (:mod:`wxapp.staff.team`). Each action is the API's own service call (``crm_core.activities``)."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from crm_core.activities import activities as act_svc
from crm_core.customers import customers as customer_svc
from crm_core.db import db
from crm_core.org.models import Employee
from crm_core.org.organization import manager_of
from crm_core.org.permissions import Actor
from wxapp.api.activities import ActivityIn, PlanIn, StatusIn, SubmitIn
from wxapp.auth import staff_user_required
from wxapp.openapi import h5_api, parse_json_body
from wxapp.staff.h5 import _actor, _json, bp, staff_page


@bp.get("/staff/today")
@staff_page
def today_page(actor: Actor):
    day = act_svc.my_day(actor)
    items = day["overdue"] + day["today"] + day["done"]
    names = customer_svc.customer_names({a.customer_id for a in items if a.customer_id})
    can_create = actor.can("activity", "create")
    customers = customer_svc.list_customers(actor, page=1, per_page=50)[0] if can_create and actor.can("customer", "view") else []
    colleagues = db.session.scalars(select(Employee).where(Employee.org_id == actor.org_id, Employee.id != actor.employee_id,
                                                           Employee.active.is_(True)).order_by(Employee.name).limit(200)).all()
    plan = day["plan"]
    reviewer = db.session.get(Employee, plan.reviewer_id) if plan and plan.reviewer_id else None
    return render_template("h5/staff/today.html", day=day, names=names, can_create=can_create, customers=customers,
                           colleagues=colleagues, plan=plan, reviewer=reviewer,
                           progress=act_svc.plan_vs_actual(actor, plan.id) if plan else None,
                           default_reviewer=manager_of(actor.employee_id) if actor.employee_id else None)


@h5_api.describe("/h5/api/staff/activities", "POST", summary="Staff: add an activity (to today's plan)", tags=("staff",),
                 body=ActivityIn, status=201)
@bp.post("/api/staff/activities")
@staff_user_required
def add_activity():
    return _json(act_svc.activity_dict(act_svc.create_activity(_actor(), parse_json_body(ActivityIn).model_dump())), 201)


@h5_api.describe("/h5/api/staff/activities/<int:activity_id>/status", "POST", summary="Staff: start, finish or cancel an activity",
                 tags=("staff",), body=StatusIn)
@bp.post("/api/staff/activities/<int:activity_id>/status")
@staff_user_required
def activity_status(activity_id: int):
    body = parse_json_body(StatusIn)
    return _json(act_svc.activity_dict(act_svc.set_activity_status(_actor(), activity_id, body.status, body.result)))


@h5_api.describe("/h5/api/staff/plans", "POST", summary="Staff: write my work plan (and its activities)", tags=("staff",),
                 body=PlanIn, status=201)
@bp.post("/api/staff/plans")
@staff_user_required
def add_plan():
    return _json(act_svc.plan_dict(act_svc.create_plan(_actor(), parse_json_body(PlanIn).model_dump())), 201)


@h5_api.describe("/h5/api/staff/plans/<int:plan_id>/submit", "POST", summary="Staff: submit my plan with its summary for 批阅",
                 tags=("staff",), body=SubmitIn)
@bp.post("/api/staff/plans/<int:plan_id>/submit")
@staff_user_required
def submit_plan(plan_id: int):
    return _json(act_svc.plan_dict(act_svc.submit_plan(_actor(), plan_id, parse_json_body(SubmitIn).summary)))


def activity_link(payload: dict) -> str | None:
    """An activity notice (assigned, about to start, overdue) opens today's plan at the activity."""
    if payload.get("kind") in ("activity_assigned", "activity_start", "activity_overdue") and payload.get("activity_id"):
        return f"/h5/staff/today#activity-{int(payload['activity_id'])}"
    return None
