"""Service reports (服务管理-报表分析), within the caller's data scope on tickets:

- 服务请求跟踪: each request from submission through every handling step, with durations
  (one page of tickets; handling-record aggregates for just that page in one grouped query);
- 服务派工日程: work orders and visits per engineer and day;
- satisfaction: average, distribution, by engineer and by kind;
- SLA compliance: first response and resolution met, per kind.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from crm_core.clock import local_date_of, local_str, report_days
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import ValidationFailed
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor, visible_clause
from crm_core.org.settings import org_timezone
from crm_core.service.models import HandlingRecord, Rating, Ticket, WorkOrder
from crm_core.service.tickets import KIND_LABELS, STAFF_LABELS, sla


def _range(actor: Actor, date_from: date | None, date_to: date | None, default_days: int = 30):
    """The stored span and the local days of a service report, in the organisation's zone."""
    tz = org_timezone(actor.org_id)
    d0, d1, start, end = report_days(date_from, date_to, tz, default_days=default_days, max_days=367)
    return start, end, d0, d1, tz


def _hours(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds() / 3600, 2) if a and b else None


def tracking(actor: Actor, date_from: date | None = None, date_to: date | None = None, *, status: str | None = None,
             page: int = 1, per_page: int = 50) -> dict:
    actor.require("ticket", "view")
    start, end, d0, d1, tz = _range(actor, date_from, date_to)
    base = select(Ticket).where(visible_clause(actor, Ticket), Ticket.created_at >= start, Ticket.created_at < end)
    if status:
        base = base.where(Ticket.status == status)
    total = db.session.scalar(select(func.count()).select_from(base.subquery()))
    tickets = db.session.scalars(base.order_by(Ticket.created_at.desc(), Ticket.id.desc())
                                 .limit(per_page).offset((page - 1) * per_page)).all()
    ids = [t.id for t in tickets]
    steps = {}
    if ids:
        for tid, n, first, last, minutes, people in db.session.execute(
                select(HandlingRecord.ticket_id, func.count(HandlingRecord.id), func.min(HandlingRecord.visited_at),
                       func.max(HandlingRecord.visited_at), func.coalesce(func.sum(HandlingRecord.minutes), 0),
                       func.count(func.distinct(HandlingRecord.employee_id)))
                .where(HandlingRecord.ticket_id.in_(ids)).group_by(HandlingRecord.ticket_id)):
            steps[tid] = (n, first, last, int(minutes or 0), people)
        wos = dict(db.session.execute(select(WorkOrder.ticket_id, func.count(WorkOrder.id))
                                      .where(WorkOrder.ticket_id.in_(ids)).group_by(WorkOrder.ticket_id)).all())
        customers = dict(db.session.execute(select(Customer.id, Customer.name)
                                            .where(Customer.id.in_({t.customer_id for t in tickets}))).all())
        names = employee_names(t.handler_id for t in tickets)
    else:
        wos, customers, names = {}, {}, {}
    rows = []
    for t in tickets:
        n, first, last, minutes, people = steps.get(t.id, (0, None, None, 0, 0))
        rows.append({"id": t.id, "number": t.number, "kind": KIND_LABELS[t.kind], "status": STAFF_LABELS[t.status],
                     "customer": customers.get(t.customer_id), "handler": names.get(t.handler_id),
                     "created_at": t.created_at.isoformat() + "Z", "first_response_h": _hours(t.created_at, t.first_response_at),
                     "work_orders": wos.get(t.id, 0), "records": n, "engineers": people, "minutes_on_site": minutes,
                     "first_visit_h": _hours(t.created_at, first), "last_visit_at": last.isoformat() + "Z" if last else None,
                     "resolution_h": _hours(t.created_at, t.completed_at),
                     "waiting_h": round((t.sla_paused_seconds or 0) / 3600, 2)})
    return {"date_from": d0.isoformat(), "date_to": d1.isoformat(), "total": total, "page": page, "per_page": per_page,
            "rows": rows}


def tracking_summary(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """For the tracking chart: requests in the range by status, and resolved ones by how long
    they took (one grouped query each)."""
    actor.require("ticket", "view")
    start, end, _, _, _ = _range(actor, date_from, date_to)
    scope = (visible_clause(actor, Ticket), Ticket.created_at >= start, Ticket.created_at < end)
    by_status = dict(db.session.execute(select(Ticket.status, func.count(Ticket.id)).where(*scope).group_by(Ticket.status)).all())
    buckets = {"4 小时内": 0, "4–24 小时": 0, "1–3 天": 0, "3 天以上": 0}
    for created, done in db.session.execute(select(Ticket.created_at, Ticket.completed_at).where(
            *scope, Ticket.completed_at.is_not(None)).limit(50000)):
        h = (done - created).total_seconds() / 3600
        buckets["4 小时内" if h <= 4 else "4–24 小时" if h <= 24 else "1–3 天" if h <= 72 else "3 天以上"] += 1
    return {"by_status": {STAFF_LABELS[k]: v for k, v in by_status.items()}, "resolution": buckets}


TRACKING_COLUMNS = [("number", "单号"), ("kind", "类型"), ("status", "状态"), ("customer", "客户"), ("handler", "处理人"),
                    ("created_at", "提交时间"), ("first_response_h", "首次响应(小时)"), ("work_orders", "工单数"),
                    ("records", "处理记录"), ("engineers", "参与工程师"), ("minutes_on_site", "现场(分钟)"),
                    ("first_visit_h", "首次上门(小时)"), ("resolution_h", "解决用时(小时)"), ("waiting_h", "等待(小时)")]


def dispatch_calendar(actor: Actor, date_from: date | None = None, date_to: date | None = None,
                      engineer_id: int | None = None) -> dict:
    """服务派工日程: each engineer's work orders by planned day, and their visits."""
    actor.require("work_order", "view")
    start, end, d0, d1, tz = _range(actor, date_from, date_to, default_days=7)
    if (d1 - d0).days > 62:
        raise ValidationFailed("日程一次最多显示 63 天。", fields={"date_to": "range too long"})
    when = func.coalesce(WorkOrder.planned_at, WorkOrder.created_at)
    stmt = select(WorkOrder, Ticket.number, Ticket.kind, Customer.name).join(Ticket, Ticket.id == WorkOrder.ticket_id) \
        .join(Customer, Customer.id == Ticket.customer_id) \
        .where(visible_clause(actor, WorkOrder), when >= start, when < end, WorkOrder.status != "cancelled")
    if engineer_id:
        stmt = stmt.where(WorkOrder.engineer_id == engineer_id)
    items = db.session.execute(stmt.order_by(when)).all()
    names = employee_names(w.engineer_id for w, *_ in items)
    engineers: dict[int, dict] = {}
    for wo, number, kind, customer in items:
        ts = wo.planned_at or wo.created_at
        eng = engineers.setdefault(wo.engineer_id, {"engineer_id": wo.engineer_id, "engineer": names.get(wo.engineer_id),
                                                     "days": {}})
        eng["days"].setdefault(local_date_of(ts, tz).isoformat(), []).append({
            "work_order_id": wo.id, "ticket": number, "kind": KIND_LABELS[kind], "customer": customer,
            "time": local_str(ts, "%H:%M", tz), "status": wo.status})
    return {"date_from": d0.isoformat(), "date_to": d1.isoformat(),
            "days": [(d0 + timedelta(days=i)).isoformat() for i in range((d1 - d0).days + 1)],
            "engineers": sorted(engineers.values(), key=lambda e: e["engineer"] or "")}


def satisfaction(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    actor.require("ticket", "view")
    start, end, d0, d1, tz = _range(actor, date_from, date_to)
    base = select(Rating.score, Rating.engineer_id, Rating.kind).join(Ticket, Ticket.id == Rating.ticket_id) \
        .where(visible_clause(actor, Ticket), Rating.created_at >= start, Rating.created_at < end)
    rows = db.session.execute(base).all()
    dist = {s: 0 for s in range(1, 6)}
    by_eng: dict[int | None, list[int]] = {}
    by_kind: dict[str, list[int]] = {}
    for score, eng, kind in rows:
        dist[score] += 1
        by_eng.setdefault(eng, []).append(score)
        by_kind.setdefault(kind, []).append(score)
    names = employee_names(by_eng)
    avg = lambda xs: round(sum(xs) / len(xs), 2) if xs else None  # noqa: E731
    return {"date_from": d0.isoformat(), "date_to": d1.isoformat(), "count": len(rows),
            "average": avg([r[0] for r in rows]), "distribution": dist,
            "satisfied_rate": round(sum(dist[s] for s in (4, 5)) / len(rows), 3) if rows else None,
            "by_engineer": sorted(({"engineer_id": e, "engineer": names.get(e, "未指派"), "count": len(v), "average": avg(v)}
                                   for e, v in by_eng.items()), key=lambda r: (-(r["average"] or 0), r["engineer"])),
            "by_kind": [{"kind": k, "label": KIND_LABELS[k], "count": len(v), "average": avg(v)} for k, v in sorted(by_kind.items())]}


def sla_compliance(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    actor.require("ticket", "view")
    start, end, d0, d1, tz = _range(actor, date_from, date_to)
    tickets = db.session.scalars(select(Ticket).where(visible_clause(actor, Ticket), Ticket.created_at >= start,
                                                      Ticket.created_at < end).limit(20000)).all()
    per: dict[str, dict] = {}
    for t in tickets:
        s = sla(t)
        row = per.setdefault(t.kind, {"kind": t.kind, "label": KIND_LABELS[t.kind], "tickets": 0, "response_met": 0,
                                      "response_missed": 0, "resolution_met": 0, "resolution_missed": 0, "open_in_time": 0})
        row["tickets"] += 1
        for key in ("response", "resolution"):
            met = s[f"{key}_met"]
            if met is True:
                row[f"{key}_met"] += 1
            elif met is False:
                row[f"{key}_missed"] += 1
            elif key == "resolution":
                row["open_in_time"] += 1
    rows = list(per.values())
    for row in rows:
        for key in ("response", "resolution"):
            judged = row[f"{key}_met"] + row[f"{key}_missed"]
            row[f"{key}_rate"] = round(row[f"{key}_met"] / judged, 3) if judged else None
    total = {k: sum(r[k] for r in rows) for k in ("tickets", "response_met", "response_missed", "resolution_met",
                                                    "resolution_missed", "open_in_time")}
    for key in ("response", "resolution"):
        judged = total[f"{key}_met"] + total[f"{key}_missed"]
        total[f"{key}_rate"] = round(total[f"{key}_met"] / judged, 3) if judged else None
    return {"date_from": d0.isoformat(), "date_to": d1.isoformat(), "rows": rows, "total": total}


def trend(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """Per day of the range: requests received, the share of that day's requests resolved within their SLA (of
    those already judged: resolved, or past their deadline), and the average rating given that day. The days
    and the range are the organisation's local ones (as the other service reports); within the data scope on tickets."""
    actor.require("ticket", "view")
    start, end, d0, d1, tz = _range(actor, date_from, date_to)
    days = [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]
    per = {d: {"tickets": 0, "met": 0, "missed": 0, "scores": []} for d in days}
    for t in db.session.scalars(select(Ticket).where(visible_clause(actor, Ticket), Ticket.created_at >= start,
                                                     Ticket.created_at < end).limit(20000)):
        row = per.get(local_date_of(t.created_at, tz))
        if row is None:
            continue
        row["tickets"] += 1
        met = sla(t)["resolution_met"]
        if met is True:
            row["met"] += 1
        elif met is False:
            row["missed"] += 1
    for score, at in db.session.execute(select(Rating.score, Rating.created_at).join(Ticket, Ticket.id == Rating.ticket_id)
                                        .where(visible_clause(actor, Ticket), Rating.created_at >= start, Rating.created_at < end)):
        row = per.get(local_date_of(at, tz))
        if row is not None:
            row["scores"].append(score)
    return {"date_from": d0.isoformat(), "date_to": d1.isoformat(), "days": [d.isoformat() for d in days],
            "tickets": [per[d]["tickets"] for d in days],
            "resolution_rate": [round(per[d]["met"] * 100 / (per[d]["met"] + per[d]["missed"]), 1)
                                if per[d]["met"] + per[d]["missed"] else None for d in days],
            "satisfaction": [round(sum(per[d]["scores"]) / len(per[d]["scores"]), 2) if per[d]["scores"] else None
                             for d in days]}


SLA_COLUMNS = [("label", "类型"), ("tickets", "请求数"), ("response_met", "响应达标"), ("response_missed", "响应超时"),
               ("response_rate", "响应达标率"), ("resolution_met", "解决达标"), ("resolution_missed", "解决超时"),
               ("resolution_rate", "解决达标率"), ("open_in_time", "处理中未超时")]


def bar_chart_svg(title: str, bars: list[tuple[str, float]], unit: str = "", width: int = 560) -> str:
    """A small horizontal bar chart as inline SVG (the console's charts; no script needed)."""
    from html import escape

    height = 40 + 28 * max(len(bars), 1)
    top = max([v for _, v in bars] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" role="img" '
           f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
           f'<text x="0" y="16" font-size="14" fill="#1f2329">{escape(title)}</text>']
    for i, (label, value) in enumerate(bars):
        y = 30 + 28 * i
        w = (width - 200) * (value / top) if top else 0
        out.append(f'<text x="0" y="{y + 14}" fill="#4e5969">{escape(label)}</text>'
                   f'<rect class="bar" x="110" y="{y}" width="{w:.1f}" height="18" fill="#07c160" rx="2"/>'
                   f'<text x="{116 + w:.1f}" y="{y + 14}" fill="#1f2329">{value:g}{escape(unit)}</text>')
    return "".join(out) + "</svg>"
