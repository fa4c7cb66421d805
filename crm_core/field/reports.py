"""Managers' reports on field work (报表分析-日程管理), all within the caller's data scope:

- 移动签到报表: per employee and day — first and last check-in, visits, time at customers,
  distance travelled, out-of-range and flagged counts (one grouped query; distances are
  stored per check-in when it arrives, so nothing is recomputed here);
- 活动统计报表: activity counts by status per employee over a date range, with department
  subtotals and a grand total;
- a day's route per employee as an SVG (no map tiles: check-ins in order, customer sites);
- the team calendar: activities and visits by day;
- my team today (the manager's phone page): who checked in where, and each person's open and overdue activities.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from html import escape

from sqlalchemy import case, func, or_, select

from crm_core.activities.models import ACTIVITY_STATUSES, Activity
from crm_core.clock import day_bounds, local_date_of, local_str, report_days, utcnow
from crm_core.customers.customers import customer_names
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import NotFound, ValidationFailed
from crm_core.field.checkins import STATUS_LABELS, badge
from crm_core.field.models import CheckIn
from crm_core.org.models import Department, Employee, EmployeePosition, Position
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor, visible_clause
from crm_core.org.settings import org_timezone

MAX_RANGE_DAYS = 366
ACTIVITY_STATUS_LABELS = {"planned": "计划中", "in_progress": "进行中", "done": "已完成", "cancelled": "已取消"}


def _range(actor: Actor, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """A field report's local days (a week to today unless given), in the organisation's zone."""
    return report_days(date_from, date_to, org_timezone(actor.org_id), default_days=7, max_days=MAX_RANGE_DAYS)[:2]


_names = employee_names


def _iso_local(ts: datetime | None, tz: str) -> str | None:
    return local_str(ts, "%H:%M", tz) if ts else None


def checkin_report(actor: Actor, date_from: date | None = None, date_to: date | None = None,
                   employee_id: int | None = None) -> dict:
    actor.require("checkin", "view")
    date_from, date_to = _range(actor, date_from, date_to)
    tz = org_timezone(actor.org_id)
    is_in = CheckIn.kind == "in"
    stmt = (select(CheckIn.owner_id, CheckIn.local_date,
                   func.min(case((is_in, CheckIn.client_time))), func.max(CheckIn.client_time),
                   func.sum(case((is_in, 1), else_=0)), func.coalesce(func.sum(CheckIn.duration_s), 0),
                   func.coalesce(func.sum(CheckIn.travel_m), 0.0),
                   func.sum(case((CheckIn.status == "out_of_range", 1), else_=0)),
                   func.sum(case((CheckIn.flagged.is_(True), 1), else_=0)), func.count(CheckIn.id))
            .where(visible_clause(actor, CheckIn), CheckIn.local_date >= date_from, CheckIn.local_date <= date_to)
            .group_by(CheckIn.owner_id, CheckIn.local_date))
    if employee_id:
        stmt = stmt.where(CheckIn.owner_id == employee_id)
    rows = db.session.execute(stmt).all()
    names = _names(r[0] for r in rows)
    out = []
    for owner, day, first_in, last, visits, secs, metres, oor, flagged, count in rows:
        out.append({"employee_id": owner, "employee": names.get(owner, ""), "date": day.isoformat(),
                    "first_checkin": _iso_local(first_in, tz), "last_checkin": _iso_local(last, tz), "checkins": count,
                    "visits": int(visits or 0), "minutes_at_customers": round(int(secs or 0) / 60),
                    "distance_km": round(float(metres or 0) / 1000, 2), "out_of_range": int(oor or 0),
                    "flagged": int(flagged or 0)})
    out.sort(key=lambda r: (r["employee"], r["employee_id"], r["date"]))
    totals = {"checkins": sum(r["checkins"] for r in out), "visits": sum(r["visits"] for r in out),
              "minutes_at_customers": sum(r["minutes_at_customers"] for r in out),
              "distance_km": round(sum(r["distance_km"] for r in out), 2),
              "out_of_range": sum(r["out_of_range"] for r in out), "flagged": sum(r["flagged"] for r in out)}
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "rows": out, "totals": totals}


CHECKIN_REPORT_COLUMNS = [("employee", "职员"), ("date", "日期"), ("first_checkin", "首次签到"), ("last_checkin", "最后签到"),
                          ("checkins", "签到次数"), ("visits", "拜访数"), ("minutes_at_customers", "在客户处(分钟)"),
                          ("distance_km", "移动距离(km)"), ("out_of_range", "超出范围"), ("flagged", "异常")]


def _departments(employee_ids) -> dict[int, tuple[int | None, str]]:
    rows = db.session.execute(
        select(EmployeePosition.employee_id, Department.id, Department.name)
        .join(Position, Position.id == EmployeePosition.position_id).join(Department, Department.id == Position.department_id)
        .where(EmployeePosition.employee_id.in_(list(employee_ids)))
        .order_by(EmployeePosition.primary.desc())).all()
    out: dict[int, tuple[int | None, str]] = {}
    for emp, dept_id, name in rows:
        out.setdefault(emp, (dept_id, name))
    return out


def activity_stats(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """活动统计报表: activities planned (or, unplanned, created) in the range, by status per
    assignee, with department subtotals and the total."""
    actor.require("activity", "view")
    date_from, date_to = _range(actor, date_from, date_to)
    tz = org_timezone(actor.org_id)
    start, end = day_bounds(date_from, date_to, tz)
    when = func.coalesce(Activity.planned_start, Activity.created_at)
    who = func.coalesce(Activity.assignee_id, Activity.owner_id)
    rows = db.session.execute(
        select(who, Activity.status, func.count(Activity.id))
        .where(visible_clause(actor, Activity), when >= start, when < end).group_by(who, Activity.status)).all()
    per: dict[int, dict] = {}
    for emp, status, count in rows:
        per.setdefault(emp, {s: 0 for s in ACTIVITY_STATUSES})[status] = count
    names, depts = _names(per), _departments(per)
    groups: dict[tuple, dict] = {}
    for emp, counts in per.items():
        dept_id, dept_name = depts.get(emp, (None, "未分配部门"))
        group = groups.setdefault((dept_name, dept_id), {"department_id": dept_id, "department": dept_name, "rows": [],
                                                         "subtotal": {s: 0 for s in ACTIVITY_STATUSES}})
        row = {"employee_id": emp, "employee": names.get(emp, ""), **counts, "total": sum(counts.values())}
        group["rows"].append(row)
        for s in ACTIVITY_STATUSES:
            group["subtotal"][s] += counts[s]
    result = []
    for key in sorted(groups, key=lambda k: (k[0], k[1] or 0)):
        group = groups[key]
        group["rows"].sort(key=lambda r: (r["employee"], r["employee_id"]))
        group["subtotal"]["total"] = sum(group["subtotal"][s] for s in ACTIVITY_STATUSES)
        result.append(group)
    total = {s: sum(g["subtotal"][s] for g in result) for s in ACTIVITY_STATUSES}
    total["total"] = sum(total.values())
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "statuses": list(ACTIVITY_STATUSES),
            "status_labels": ACTIVITY_STATUS_LABELS, "departments": result, "total": total}


def activity_stats_rows(report: dict) -> list[dict]:
    """Flatten the activity report for CSV: employee rows, a subtotal per department, the total."""
    out = []
    for group in report["departments"]:
        for row in group["rows"]:
            out.append({"department": group["department"], **row})
        out.append({"department": group["department"], "employee": "小计", **group["subtotal"]})
    out.append({"department": "合计", "employee": "", **report["total"]})
    return out


ACTIVITY_STATS_COLUMNS = ([("department", "部门"), ("employee", "职员")]
                          + [(s, ACTIVITY_STATUS_LABELS[s]) for s in ACTIVITY_STATUSES] + [("total", "合计")])


# --- route ------------------------------------------------------------------------------
def route(actor: Actor, employee_id: int, day: date) -> dict:
    """One employee's check-ins of a day in order, and the sites of the customers visited."""
    actor.require("checkin", "view")
    visible_employee(actor, employee_id)
    tz = org_timezone(actor.org_id)
    checkins = db.session.scalars(
        select(CheckIn).where(visible_clause(actor, CheckIn), CheckIn.owner_id == employee_id, CheckIn.local_date == day)
        .order_by(CheckIn.client_time, CheckIn.id)).all()
    if not checkins:  # nothing visible: make sure an invisible employee is not probed
        emp = db.session.get(Employee, employee_id)
        if emp is None or emp.org_id != actor.org_id:
            raise ValidationFailed("职员不存在。", fields={"employee_id": "unknown"})
    customer_ids = {c.customer_id for c in checkins if c.customer_id}
    sites = db.session.execute(select(Customer.id, Customer.name, Customer.site_wgs_lat, Customer.site_wgs_lng)
                               .where(Customer.id.in_(customer_ids), Customer.site_wgs_lat.is_not(None))).all() if customer_ids else []
    names = customer_names(customer_ids)
    return {"employee_id": employee_id, "employee": _names([employee_id]).get(employee_id, ""), "date": day.isoformat(),
            "points": [{"seq": i + 1, "id": c.id, "kind": c.kind, "lat": c.lat, "lng": c.lng, "time": _iso_local(c.client_time, tz),
                        "customer": names.get(c.customer_id), "status": c.status, "flags": list(c.flags or [])}
                       for i, c in enumerate(checkins)],
            "sites": [{"customer_id": s[0], "name": s[1], "lat": s[2], "lng": s[3]} for s in sites],
            "distance_km": round(sum(c.travel_m or 0 for c in checkins) / 1000, 2)}


def route_svg(data: dict, width: int = 720, height: int = 480) -> str:
    """The route as a self-contained SVG: numbered check-ins joined in order, customer sites
    as squares, a scale bar. Equirectangular projection around the day's centre."""
    pad = 48
    pts = [(p["lat"], p["lng"]) for p in data["points"]] + [(s["lat"], s["lng"]) for s in data["sites"]]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="#f7f8fa"/>',
             f'<text x="12" y="20" font-size="14" fill="#1f2329">{escape(data["employee"])} {data["date"]} 拜访路线 · '
             f'{len(data["points"])} 次签到 · {data["distance_km"]} km</text>']
    if not pts:
        parts.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="#888">当天没有签到记录</text></svg>')
        return "".join(parts)
    lat0 = sum(p[0] for p in pts) / len(pts)
    kx = math.cos(math.radians(lat0)) * 111_320  # metres per degree of longitude here
    ky = 110_574
    xs = [p[1] * kx for p in pts]
    ys = [p[0] * ky for p in pts]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 200.0)  # at least 200 m across
    scale = min(width - 2 * pad, height - 2 * pad - 24) / span
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2

    def proj(lat, lng):
        return width / 2 + (lng * kx - cx) * scale, height / 2 + 12 - (lat * ky - cy) * scale

    for s in data["sites"]:
        x, y = proj(s["lat"], s["lng"])
        parts.append(f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="#1677ff" opacity="0.8">'
                     f'<title>{escape(s["name"])}</title></rect>'
                     f'<text x="{x + 9:.1f}" y="{y + 4:.1f}" fill="#1677ff">{escape(s["name"])}</text>')
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (proj(p["lat"], p["lng"]) for p in data["points"]))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#07c160" stroke-width="2.5" stroke-dasharray="6 3"/>')
    colours = {"normal": "#07c160", "out_of_range": "#fa8c16", "rejected": "#f5222d"}
    for p in data["points"]:
        x, y = proj(p["lat"], p["lng"])
        title = f'{p["seq"]}. {p["time"]} {"签到" if p["kind"] == "in" else "签退"} {p["customer"] or ""} {STATUS_LABELS[p["status"]]}'
        parts.append(f'<g class="checkin" data-seq="{p["seq"]}"><circle cx="{x:.1f}" cy="{y:.1f}" r="10" '
                     f'fill="{colours.get(p["status"], "#07c160")}"/><text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" '
                     f'fill="#fff" font-size="11">{p["seq"]}</text><title>{escape(title)}</title></g>')
    bar_m = _nice(span / 4)
    bar_px = bar_m * scale
    parts.append(f'<line x1="{pad}" y1="{height - 20}" x2="{pad + bar_px:.1f}" y2="{height - 20}" stroke="#333" stroke-width="2"/>'
                 f'<text x="{pad}" y="{height - 26}" fill="#333">{_fmt_m(bar_m)}</text></svg>')
    return "".join(parts)


def _nice(m: float) -> float:
    base = 10 ** math.floor(math.log10(max(m, 1)))
    for step in (1, 2, 5, 10):
        if step * base >= m:
            return step * base
    return 10 * base


def _fmt_m(m: float) -> str:
    return f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m"


# --- team calendar ------------------------------------------------------------------------
def team_calendar(actor: Actor, date_from: date | None = None, date_to: date | None = None,
                  employee_id: int | None = None) -> dict:
    """日历视图: the team's activities and visits (paired check-ins) per day."""
    actor.require("activity", "view")
    date_from, date_to = _range(actor, date_from, date_to)
    if (date_to - date_from).days > 62:
        raise ValidationFailed("日历一次最多显示 63 天。", fields={"date_to": "range too long"})
    tz = org_timezone(actor.org_id)
    start, end = day_bounds(date_from, date_to, tz)
    when = func.coalesce(Activity.planned_start, Activity.created_at)
    astmt = select(Activity).where(visible_clause(actor, Activity), when >= start, when < end)
    cstmt = select(CheckIn).where(visible_clause(actor, CheckIn), CheckIn.local_date >= date_from,
                                  CheckIn.local_date <= date_to, CheckIn.kind == "in")
    if employee_id:
        astmt = astmt.where(or_(Activity.assignee_id == employee_id, Activity.owner_id == employee_id))
        cstmt = cstmt.where(CheckIn.owner_id == employee_id)
    activities = db.session.scalars(astmt.order_by(when).limit(2000)).all()
    visits = db.session.scalars(cstmt.order_by(CheckIn.client_time).limit(2000)).all()
    cust_ids = {a.customer_id for a in activities if a.customer_id} | {c.customer_id for c in visits if c.customer_id}
    customers = customer_names(cust_ids)
    names = _names([a.assignee_id or a.owner_id for a in activities] + [c.owner_id for c in visits])
    days: dict[str, list] = {}
    d = date_from
    while d <= date_to:
        days[d.isoformat()] = []
        d += timedelta(days=1)
    for a in activities:
        ts = a.planned_start or a.created_at
        days[local_date_of(ts, tz).isoformat()].append({
            "type": "activity", "id": a.id, "title": a.subject, "status": a.status, "kind": a.kind,
            "time": _iso_local(ts, tz), "employee_id": who_id(a), "employee": names.get(who_id(a), ""),
            "customer": customers.get(a.customer_id)})
    for c in visits:
        days[c.local_date.isoformat()].append({
            "type": "visit", "id": c.id, "title": f"拜访 {customers.get(c.customer_id) or '（未选客户）'}", "status": c.status,
            "time": _iso_local(c.client_time, tz), "employee_id": c.owner_id, "employee": names.get(c.owner_id, ""),
            "customer": customers.get(c.customer_id), "paired": c.pair_id is not None})
    for items in days.values():
        items.sort(key=lambda i: (i["time"] or "", i["type"]))
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(),
            "days": [{"date": k, "weekday": date.fromisoformat(k).isoweekday(), "items": v} for k, v in days.items()]}


def who_id(a: Activity) -> int | None:
    return a.assignee_id or a.owner_id


def visible_employee(actor: Actor, employee_id: int) -> None:
    """Refuse a report about an employee whose check-ins the caller may not see."""
    if employee_id == actor.employee_id or actor.widest_scope("checkin") == "organization":
        return
    if employee_id not in actor.subordinate_employee_ids() and actor.widest_scope("checkin") in ("self", "subordinates"):
        raise NotFound("职员不存在或不在您的数据权限范围内。")



OPEN_ACTIVITY = ("planned", "in_progress")


def team_today(actor: Actor) -> dict:
    """我的团队今天: for each person of the caller's team (their reporting subtree, and anyone else whose records today
    the caller's data scope shows) — today's check-ins in order (time, customer, address, distance, badge), the
    activities planned for today still open, those overdue (open past their planned end, or planned before today and
    still open), and how many were done today. People with something overdue come first."""
    actor.require("checkin", "view")
    actor.require("activity", "view")
    now = utcnow()
    tz = org_timezone(actor.org_id)
    day = local_date_of(now, tz)
    start, end = day_bounds(day, day, tz)
    checkins = db.session.scalars(select(CheckIn).where(visible_clause(actor, CheckIn), CheckIn.local_date == day)
                                  .order_by(CheckIn.client_time).limit(2000)).all()
    is_open = Activity.status.in_(OPEN_ACTIVITY)
    overdue_clause = or_(Activity.planned_end < now, (Activity.planned_end.is_(None)) & (Activity.planned_start < start))
    activities = db.session.scalars(select(Activity).where(
        visible_clause(actor, Activity),
        or_(is_open & ((Activity.planned_start >= start) & (Activity.planned_start < end) | overdue_clause),
            (Activity.status == "done") & (Activity.actual_end >= start) & (Activity.actual_end < end)))
        .order_by(Activity.planned_start).limit(2000)).all()
    members = set(actor.subordinate_employee_ids()) if actor.employee_id else set()
    members |= {c.owner_id for c in checkins} | {who_id(a) for a in activities}
    members.discard(None)
    names = _names(members)
    customers = customer_names({c.customer_id for c in checkins if c.customer_id}
                               | {a.customer_id for a in activities if a.customer_id})
    people = {m: {"employee_id": m, "employee": names.get(m, ""), "checkins": [], "today": [], "overdue": [], "done": 0}
              for m in members}
    for c in checkins:
        people[c.owner_id]["checkins"].append({
            "id": c.id, "kind": c.kind, "time": _iso_local(c.client_time, tz), "customer": customers.get(c.customer_id),
            "address": c.address, "distance_m": round(c.distance_m) if c.distance_m is not None else None,
            "badge": badge(c)})
    for a in activities:
        person = people[who_id(a)]
        if a.status == "done":
            person["done"] += 1
            continue
        late = (a.planned_end is not None and a.planned_end < now) or (a.planned_end is None and a.planned_start is not None
                                                                        and a.planned_start < start)
        person["overdue" if late else "today"].append({
            "id": a.id, "subject": a.subject, "kind": a.kind, "status": a.status, "customer": customers.get(a.customer_id),
            "planned_start": a.planned_start.isoformat() + "Z" if a.planned_start else None,
            "planned_end": a.planned_end.isoformat() + "Z" if a.planned_end else None})
    rows = sorted(people.values(), key=lambda p: (not p["overdue"], not p["checkins"], p["employee"], p["employee_id"]))
    return {"date": day.isoformat(), "people": rows,
            "totals": {"people": len(rows), "checked_in": sum(bool(p["checkins"]) for p in rows),
                       "open": sum(len(p["today"]) for p in rows), "overdue": sum(len(p["overdue"]) for p in rows),
                       "done": sum(p["done"] for p in rows)}}
