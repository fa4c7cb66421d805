"""The manager's phone pages: 我的团队今天 (who checked in where, each person's open and overdue activities), the
check-in and activity reports for today, this week or this month, and 批阅 of the work plans submitted to me (listed
in 待我审批 beside the opportunity stages). The figures are the report services' own (``crm_core.field.reports``)."""
from __future__ import annotations

from datetime import timedelta

from flask import render_template, request

from crm_core.activities import activities as act_svc
from crm_core.clock import local_today
from crm_core.field import reports
from crm_core.org.permissions import Actor
from crm_core.org.settings import org_timezone
from wxapp.api.activities import ReviewIn
from wxapp.auth import staff_user_required
from wxapp.openapi import h5_api, parse_json_body
from wxapp.staff.h5 import _actor, _json, bp, staff_page

RANGES = (("today", "今天"), ("week", "本周"), ("month", "本月"))
REPORTS = (("checkins", "签到"), ("activities", "活动"))


def leads_a_team(actor: Actor) -> bool:
    """The team pages are for whoever sees more check-ins and activities than their own."""
    return (actor.can("checkin", "view") and actor.can("activity", "view")
            and actor.widest_scope("checkin") not in ("self", "listed"))


@bp.get("/staff/team")
@staff_page
def team_page(actor: Actor):
    return render_template("h5/staff/team.html", t=reports.team_today(actor))


def _range(actor: Actor, key: str):
    today = local_today(org_timezone(actor.org_id))
    if key == "week":
        return today - timedelta(days=today.weekday()), today
    if key == "month":
        return today.replace(day=1), today
    return today, today


@bp.get("/staff/reports")
@staff_page
def reports_page(actor: Actor):
    kind = request.args.get("report", "checkins")
    kind = kind if kind in dict(REPORTS) else "checkins"
    period = request.args.get("range", "today")
    period = period if period in dict(RANGES) else "today"
    date_from, date_to = _range(actor, period)
    data = (reports.checkin_report(actor, date_from, date_to) if kind == "checkins"
            else reports.activity_stats(actor, date_from, date_to))
    return render_template("h5/staff/reports.html", kind=kind, period=period, ranges=RANGES, kinds=REPORTS, r=data)


@h5_api.describe("/h5/api/staff/plans/<int:plan_id>/review", "POST", summary="Manager: 批阅 a work plan submitted to me",
                 tags=("staff",), body=ReviewIn)
@bp.post("/api/staff/plans/<int:plan_id>/review")
@staff_user_required
def review_plan(plan_id: int):
    return _json(act_svc.plan_dict(act_svc.review_plan(_actor(), plan_id, parse_json_body(ReviewIn).comment)))


def plan_link(payload: dict) -> str | None:
    """A plan submitted for 批阅 opens 待我审批 at the plan."""
    if payload.get("kind") == "plan_submitted" and payload.get("plan_id"):
        return f"/h5/staff/approvals#plan-{int(payload['plan_id'])}"
    return None
