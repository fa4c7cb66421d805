"""Check-in JSON API for phones and the mobile app, and the managers' field reports."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import Response, g
from pydantic import Field

from crm_core.field import checkins as svc
from crm_core.field import reports as reports
from wxapp import exports
from wxapp.api import bp
from wxapp.csv_export import csv_response
from wxapp.openapi import Model, PageQuery, UtcDateTime, api, page_of

CoordSystem = Literal["wgs84", "gcj02", "bd09"]


class CheckinIn(Model):
    kind: Literal["in", "out"]
    lat: float | None = Field(default=None, ge=-90, le=90, description="omit lat and lng to use your latest WeChat location")
    lng: float | None = Field(default=None, ge=-180, le=180)
    coord_system: CoordSystem = "wgs84"
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    client_time: UtcDateTime | None = Field(default=None, description="when it happened on the phone (offline: up to 24 h ago)")
    customer_id: int | None = None
    activity_id: int | None = None
    photo_id: int | None = Field(default=None, description="an image you uploaded with POST /api/v1/media")
    note: str | None = Field(default=None, max_length=500)
    mock_location: bool = Field(default=False, description="the phone reports a mock-location provider")


class CheckinOut(Model):
    id: int
    kind: str
    employee_id: int | None
    lat: float
    lng: float
    coord_system: str
    received_coord_system: str
    accuracy_m: float | None
    location_source: str
    client_time: str
    server_time: str
    customer_id: int | None
    activity_id: int | None
    photo_id: int | None
    note: str | None
    distance_m: float | None
    radius_m: int | None
    status: Literal["normal", "out_of_range", "rejected"]
    status_label: str
    flags: list[str]
    flag_labels: list[str]
    flag_reviews: dict
    flagged: bool
    late: bool
    pair_id: int | None
    duration_s: int | None
    address: str | None
    travel_m: float


class CheckinQuery(PageQuery):
    employee_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    flagged: bool | None = None
    status: Literal["normal", "out_of_range", "rejected"] | None = None
    coord_system: CoordSystem = Field(default="wgs84", description="the system coordinates are answered in")


class NearbyQuery(Model):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord_system: CoordSystem = "wgs84"
    radius_m: int | None = Field(default=None, ge=10, le=5000)
    limit: int = Field(default=10, ge=1, le=50)


class FlagReview(Model):
    decision: Literal["confirmed", "dismissed"]
    note: str | None = Field(default=None, max_length=200)


def _out(ci, system: str = "wgs84") -> dict:
    return svc.to_dict(ci, system)


@api.operation(bp, "/checkins", "POST", summary="Check in or out at a customer (签到/签退)", tags=("checkins",),
               body=CheckinIn, response=CheckinOut, status=201)
def create_checkin(body: CheckinIn):
    """Every check-in is kept; `status` (normal, out_of_range, rejected) and `flags` say what the
    checks found. 409 for the same kind at the same customer within 60 seconds."""
    return _out(svc.record(g.actor, body.model_dump()), body.coord_system)


@api.operation(bp, "/checkins", "GET", summary="Check-ins within your data scope", tags=("checkins",),
               query=CheckinQuery, response=page_of(CheckinOut))
def list_checkins(query: CheckinQuery):
    rows, total = svc.list_checkins(g.actor, **query.model_dump(exclude={"page", "per_page", "coord_system"}),
                                    page=query.page, per_page=query.per_page)
    return {"items": [_out(c, query.coord_system) for c in rows], "total": total}


@api.operation(bp, "/checkins/nearby", "GET", summary="Customers near a position, nearest first", tags=("checkins",),
               query=NearbyQuery)
def nearby_customers(query: NearbyQuery):
    return {"items": svc.nearby(g.actor, query.lat, query.lng, query.coord_system, query.radius_m, query.limit)}


@api.operation(bp, "/checkins/<int:checkin_id>", "GET", summary="One check-in", tags=("checkins",), response=CheckinOut)
def get_checkin(checkin_id: int):
    return _out(svc.get(g.actor, checkin_id))


@api.operation(bp, "/checkins/<int:checkin_id>/flags/<flag>", "POST", summary="Confirm or dismiss a flag (managers)",
               tags=("checkins",), body=FlagReview, response=CheckinOut)
def review_flag(checkin_id: int, flag: str, body: FlagReview):
    return _out(svc.review_flag(g.actor, checkin_id, flag[:32], body.decision, body.note))


class ReportQuery(Model):
    date_from: date | None = None
    date_to: date | None = None
    employee_id: int | None = None
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/checkins", "GET", summary="Mobile check-in report per employee and day (移动签到报表)",
               tags=("reports",), query=ReportQuery)
def checkin_report(query: ReportQuery):
    """Managers see their reporting subtree; a salesperson sees their own days."""
    data = reports.checkin_report(g.actor, query.date_from, query.date_to, query.employee_id)
    if query.format in ("csv", "xlsx"):
        return csv_response(f"移动签到报表_{data['date_from']}_{data['date_to']}.csv", reports.CHECKIN_REPORT_COLUMNS,
                            data["rows"] + [{"employee": "合计", **data["totals"]}])
    return data


class StatsQuery(Model):
    date_from: date | None = None
    date_to: date | None = None
    format: Literal["json", "csv", "xlsx"] = "json"


@api.operation(bp, "/reports/activities", "GET", summary="Activity statistics by status (活动统计报表)",
               tags=("reports",), query=StatsQuery)
def activity_report(query: StatsQuery):
    data = reports.activity_stats(g.actor, query.date_from, query.date_to)
    if query.format in ("csv", "xlsx"):
        return csv_response(f"活动统计报表_{data['date_from']}_{data['date_to']}.csv", reports.ACTIVITY_STATS_COLUMNS,
                            reports.activity_stats_rows(data))
    return data


@api.operation(bp, "/reports/team-today", "GET", summary="My team today (我的团队今天): check-ins, open and overdue activities per person",
               tags=("reports",))
def team_today():
    return reports.team_today(g.actor)


class RouteQuery(Model):
    employee_id: int
    date: date
    format: Literal["json", "svg", "csv", "xlsx"] = "json"


ROUTE_COLUMNS = [("seq", "序号"), ("time", "时间"), ("kind", "类型"), ("customer", "客户"), ("lat", "纬度(WGS-84)"),
                 ("lng", "经度(WGS-84)"), ("status", "状态")]


@api.operation(bp, "/reports/checkins/route", "GET", summary="A day's route of one employee (JSON, SVG or CSV)",
               tags=("reports",), query=RouteQuery)
def checkin_route(query: RouteQuery):
    data = reports.route(g.actor, query.employee_id, query.date)
    if query.format == "svg":
        return Response(reports.route_svg(data), mimetype="image/svg+xml")
    if query.format in ("csv", "xlsx"):
        return csv_response(f"拜访路线_{data['employee']}_{data['date']}.csv", ROUTE_COLUMNS, data["points"])
    return data


class CalendarQuery(Model):
    date_from: date | None = None
    date_to: date | None = None
    employee_id: int | None = None
    format: Literal["json", "csv", "xlsx"] = "json"


CALENDAR_COLUMNS = [("date", "日期"), ("time", "时间"), ("type", "类型"), ("employee", "职员"), ("title", "内容"),
                    ("customer", "客户"), ("status", "状态")]


@api.operation(bp, "/reports/calendar", "GET", summary="Team calendar: activities and visits by day (日历视图)",
               tags=("reports",), query=CalendarQuery)
def team_calendar(query: CalendarQuery):
    data = reports.team_calendar(g.actor, query.date_from, query.date_to, query.employee_id)
    if query.format in ("csv", "xlsx"):
        rows = [{"date": d["date"], **item} for d in data["days"] for item in d["items"]]
        return csv_response(f"日历_{data['date_from']}_{data['date_to']}.csv", CALENDAR_COLUMNS, rows)
    return data


exports.register(bp, api, "/checkins", "移动签到", "checkin", CheckinQuery, svc.list_checkins,
                 lambda rows: [svc.to_dict(c) for c in rows], [
                     exports.Column("employee_id", "职员", "employee"), exports.Column("kind", "类型", "label:checkin_kind"),
                     exports.Column("client_time", "时间", "time"), exports.Column("customer_id", "客户", "customer"),
                     exports.Column("distance_m", "距离(米)"), exports.Column("status", "状态", "label:checkin_status"),
                     exports.Column("flags", "标记", "list"), exports.Column("lat", "纬度"), exports.Column("lng", "经度")],
                 exclude=("coord_system",))
