"""Managers' console pages for field work: check-in report, activity statistics, a day's
route picture, the flag review queue and the team calendar (报表分析-日程管理)."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from crm_core.clock import local_today
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.field import checkins as svc
from crm_core.field import reports as reports
from crm_core.org.settings import org_timezone
from wxapp.auth import console_login_required
from wxapp.console import NAV, bp
from wxapp.console.crm import _names, _page
from wxapp.csv_export import csv_response
from wxapp.pages import denied as _denied

NAV.extend([
    ("移动签到报表", "console.checkin_report", "checkin", "view"),
    ("签到异常复核", "console.checkin_flags", "checkin", "approve"),
    ("活动统计报表", "console.activity_report", "activity", "view"),
    ("日历视图", "console.team_calendar", "activity", "view"),
])


def _date(name: str, default: date | None = None) -> date | None:
    value = request.args.get(name, "")
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@bp.get("/field/checkins")
@console_login_required
def checkin_report():
    try:
        data = reports.checkin_report(g.actor, _date("date_from"), _date("date_to"),
                                      request.args.get("employee_id", type=int))
    except DomainError as exc:
        return _denied(exc)
    if request.args.get("format") in ("csv", "xlsx"):
        return csv_response(f"移动签到报表_{data['date_from']}_{data['date_to']}.csv", reports.CHECKIN_REPORT_COLUMNS,
                            data["rows"] + [{"employee": "合计", **data["totals"]}])
    return render_template("console/checkin_report.html", r=data, charts=activity_charts(data))


def activity_charts(data: dict) -> dict:
    """签到活动 per day of the range (every day, none left out): check-ins, customer visits and those out of range, and
    the people who checked in — from the report's own rows (ECharts, static/charts.js)."""
    from datetime import timedelta

    d0, d1 = date.fromisoformat(data["date_from"]), date.fromisoformat(data["date_to"])
    days = [(d0 + timedelta(days=i)).isoformat() for i in range((d1 - d0).days + 1)]
    per = {d: {"checkins": 0, "visits": 0, "out_of_range": 0, "people": set()} for d in days}
    for row in data["rows"]:
        p = per.get(row["date"])
        if p is not None:
            p["checkins"] += row["checkins"]
            p["visits"] += row["visits"]
            p["out_of_range"] += row["out_of_range"]
            p["people"].add(row["employee_id"])
    return {"activity": {"kind": "bar", "x": [d[5:] for d in days], "unit": "次", "unit2": "人", "integer": True,
                         "series": [{"name": "签到", "data": [per[d]["checkins"] for d in days]},
                                    {"name": "拜访", "data": [per[d]["visits"] for d in days]},
                                    {"name": "超出范围", "data": [per[d]["out_of_range"] for d in days]},
                                    {"name": "签到人数", "type": "line", "axis": 1, "data": [len(per[d]["people"]) for d in days]}]}}


@bp.get("/field/route")
@console_login_required
def checkin_route():
    employee_id = request.args.get("employee_id", type=int)
    day = _date("date")
    if not employee_id or day is None:
        return _denied(DomainError("请指定职员和日期。"))
    try:
        data = reports.route(g.actor, employee_id, day)
    except DomainError as exc:
        return _denied(exc)
    if request.args.get("format") == "svg":
        return Response(reports.route_svg(data), mimetype="image/svg+xml")
    return render_template("console/checkin_route.html", r=data, prev=day - timedelta(days=1), next=day + timedelta(days=1))


@bp.get("/field/flags")
@console_login_required
def checkin_flags():
    try:
        g.actor.require("checkin", "approve")
        # a page shows 20; its 导出 (wxapp/console/table_export.py) takes them all
        rows, total = svc.list_checkins(g.actor, flagged=True, page=_page(),
                                        per_page=50_000 if request.args.get("export_table") == "flags" else 20)
    except DomainError as exc:
        return _denied(exc)
    from crm_core.customers.models import Customer

    customers = {c.id: c.name for c in db.session.query(Customer).filter(Customer.id.in_({r.customer_id for r in rows if r.customer_id}))}
    return render_template("console/checkin_flags.html", rows=[svc.to_dict(r) for r in rows], total=total, page=_page(),
                           names=_names(r.owner_id for r in rows), customers=customers, labels=svc.FLAG_LABELS,
                           review_flags=svc.REVIEW_FLAGS)


@bp.post("/field/checkins/<int:checkin_id>/flags/<flag>")
@console_login_required
def review_checkin_flag(checkin_id: int, flag: str):
    try:
        svc.review_flag(g.actor, checkin_id, flag[:32], request.form.get("decision", ""), request.form.get("note"))
        db.session.commit()
        flash("已复核。", "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("console.checkin_flags", page=_page()))


@bp.get("/field/activities")
@console_login_required
def activity_report():
    try:
        data = reports.activity_stats(g.actor, _date("date_from"), _date("date_to"))
    except DomainError as exc:
        return _denied(exc)
    if request.args.get("format") in ("csv", "xlsx"):
        return csv_response(f"活动统计报表_{data['date_from']}_{data['date_to']}.csv", reports.ACTIVITY_STATS_COLUMNS,
                            reports.activity_stats_rows(data))
    return render_template("console/activity_report.html", r=data)


@bp.get("/field/calendar")
@console_login_required
def team_calendar():
    view = "month" if request.args.get("view") == "month" else "week"
    anchor = _date("date", local_today(org_timezone(g.actor.org_id)))
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        end = start + timedelta(days=6)
    else:
        start = anchor.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    try:
        data = reports.team_calendar(g.actor, start, end, request.args.get("employee_id", type=int))
    except (DomainError, ValidationError) as exc:
        return _denied(exc if isinstance(exc, DomainError) else DomainError("参数有误。"))
    step = timedelta(days=7) if view == "week" else timedelta(days=31)
    return render_template("console/team_calendar.html", r=data, view=view, prev=(start - step).isoformat(),
                           next=(start + step).isoformat(), lead_blanks=start.weekday() if view == "month" else 0)
