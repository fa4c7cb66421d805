"""Console pages for the service desk (dispatchers) and engineers: the feedback queue,
dispatch, work orders with handling records, the dispatch calendar, and the reports."""
from __future__ import annotations

from datetime import date, timedelta

from flask import flash, g, redirect, render_template, request, url_for

from crm_core.clock import local_today
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.org.organization import employee_names
from crm_core.org.permissions import get_visible
from crm_core.org.settings import org_timezone
from crm_core.service import queries, work_orders
from crm_core.service import reports as reports
from crm_core.service import tickets as svc
from crm_core.service.models import Ticket, WorkOrder
from wxapp.auth import console_login_required
from wxapp.console import NAV, bp
from wxapp.console.crm import _page
from wxapp.forms import parse_amount
from wxapp.pages import act as _act
from wxapp.pages import denied as _denied
from wxapp.self_service.api import ticket_url

NAV.extend([
    ("客户反馈", "console.ticket_queue", "ticket", "view"),
    ("我的服务工单", "console.my_work_orders", "work_order", "edit"),
    ("派工日程", "console.dispatch_calendar", "work_order", "view"),
    ("服务报表", "console.service_reports", "ticket", "view"),
])


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, "")) if request.args.get(name) else None
    except ValueError:
        return None


@bp.get("/service/tickets")
@console_login_required
def ticket_queue():
    status = request.args.get("status") or "open"
    try:
        rows, total = queries.list_tickets(g.actor, status=None if status == "all" else status, page=_page())
    except DomainError as exc:
        return _denied(exc)
    customers = {c.id: c.name for c in db.session.query(Customer).filter(Customer.id.in_({t.customer_id for t in rows}))}
    return render_template("console/service_tickets.html", rows=rows, total=total, status=status, page=_page(),
                           customers=customers, labels=svc.STAFF_LABELS, kinds=svc.KIND_LABELS)


@bp.get("/service/tickets/<int:ticket_id>")
@console_login_required
def ticket_detail(ticket_id: int):
    try:
        t = get_visible(g.actor, Ticket, ticket_id)
    except DomainError as exc:
        return _denied(exc)
    data = queries.ticket_dict(t)
    customer = db.session.get(Customer, t.customer_id)
    team, suggestion = [], None
    if g.actor.can("ticket", "dispatch"):
        team = work_orders.engineers(g.actor.org_id)
        counts = work_orders.open_work_counts(g.actor.org_id, [e.id for e in team])
        team = [(e, counts[e.id]) for e in team]
        suggestion = work_orders.suggest_engineer(g.actor.org_id)
    from crm_core.service.tickets import TRANSITIONS

    actions = [(action, text) for action, to, text in TICKET_ACTIONS if to in TRANSITIONS[t.status]]
    return render_template("console/service_ticket.html", t=data, customer=customer, team=team, suggestion=suggestion,
                           actions=actions)


# the desk's buttons on a ticket, each shown only when the ticket's state allows its move
TICKET_ACTIONS = [("complete", "completed", "直接完成"), ("waiting_customer", "waiting_customer", "等待客户"),
                  ("waiting_parts", "waiting_parts", "等待配件"), ("in_progress", "in_progress", "恢复处理"),
                  ("cancel", "cancelled", "取消"), ("reject", "rejected", "驳回"), ("close", "closed", "关闭")]


@bp.post("/service/tickets/<int:ticket_id>/dispatch")
@console_login_required
def console_dispatch(ticket_id: int):
    ids = [int(x) for x in request.form.getlist("engineer_ids") if x.isdigit()]
    auto = request.form.get("auto") == "1"
    return _act(lambda: work_orders.dispatch(g.actor, ticket_id, ids, auto=auto or not ids, note=request.form.get("note") or None,
                                             public_url=ticket_url(ticket_id), append=request.form.get("append") == "1"),
                "已派工，工程师会收到通知。", url_for("console.ticket_detail", ticket_id=ticket_id))


@bp.post("/service/tickets/<int:ticket_id>/action")
@console_login_required
def ticket_action(ticket_id: int):
    action, note = request.form.get("action"), request.form.get("note", "")
    share = request.form.get("share_with_customer") == "1"  # the form's "对客户可见" box; internal otherwise
    actions = {
        "complete": lambda: svc.complete_directly(g.actor, ticket_id, note, public_url=ticket_url(ticket_id), share=share),
        "cancel": lambda: svc.staff_cancel_or_reject(g.actor, ticket_id, "cancelled", note, share=share),
        "reject": lambda: svc.staff_cancel_or_reject(g.actor, ticket_id, "rejected", note, share=share),
        "waiting_customer": lambda: svc.set_waiting(g.actor, ticket_id, "waiting_customer", note or None, share=share),
        "waiting_parts": lambda: svc.set_waiting(g.actor, ticket_id, "waiting_parts", note or None, share=share),
        "in_progress": lambda: svc.set_waiting(g.actor, ticket_id, "in_progress", note or None, share=share),
        "close": lambda: svc.close(g.actor, ticket_id, note or None, share=share),
    }
    if action not in actions:
        flash("未知操作。", "error")
        return redirect(url_for("console.ticket_detail", ticket_id=ticket_id))
    return _act(actions[action], "已更新。", url_for("console.ticket_detail", ticket_id=ticket_id))


@bp.get("/service/work-orders")
@console_login_required
def my_work_orders():
    """我的服务工单; a dispatcher also sees 全部派工单 (every work order of the scope: mine=0); 含已完成 adds the done ones."""
    open_only = request.args.get("all") != "1"
    mine = request.args.get("mine") != "0" or not g.actor.can("work_order", "dispatch")
    try:
        rows, total = queries.my_work_orders(g.actor, open_only=open_only, mine=mine, page=_page())
    except DomainError as exc:
        return _denied(exc)
    items = []
    for wo in rows:
        t = db.session.get(Ticket, wo.ticket_id)
        items.append((wo, t, db.session.get(Customer, t.customer_id)))
    return render_template("console/service_work_orders.html", items=items, total=total, kinds=svc.KIND_LABELS,
                           mine=mine, open_only=open_only, page=_page(), engineers=employee_names(wo.engineer_id for wo in rows))


@bp.get("/service/work-orders/<int:wo_id>")
@console_login_required
def work_order_detail(wo_id: int):
    try:
        wo = get_visible(g.actor, WorkOrder, wo_id)
    except DomainError as exc:
        return _denied(exc)
    t = db.session.get(Ticket, wo.ticket_id)
    return render_template("console/service_work_order.html", wo=queries.work_order_dict(wo), t=queries.ticket_dict(t),
                           customer=db.session.get(Customer, t.customer_id), team=work_orders.engineers(g.actor.org_id),
                           paused=t.status in svc.PAUSED_STATES, can_dispatch=g.actor.can("ticket", "dispatch"))


@bp.post("/service/work-orders/<int:wo_id>/records")
@console_login_required
def console_record(wo_id: int):
    f = request.form
    parts, fees = [], []
    if f.get("part_code"):
        parts.append({"code": f["part_code"].strip(), "quantity": int(f.get("part_qty") or 1) if (f.get("part_qty") or "1").isdigit() else 0})
    minutes = int(f["minutes"]) if (f.get("minutes") or "").isdigit() else None

    def run():
        if f.get("fee_item"):
            amount = parse_amount(f.get("fee_amount"), "fee_amount", "费用金额")
            if amount is None:
                raise ValidationFailed("请填写费用金额。", fields={"fee_amount": "必填"})
            fees.append({"kind": f.get("fee_kind") or "fee", "item": f["fee_item"].strip(), "amount": float(amount)})
        return work_orders.add_record(g.actor, wo_id, {"note": f.get("note", ""), "minutes": minutes, "parts": parts,
                                                       "fees": fees, "share_with_customer": f.get("share_with_customer") == "1"})

    return _act(run, "已添加处理记录。", url_for("console.work_order_detail", wo_id=wo_id))


@bp.post("/service/work-orders/<int:wo_id>/complete")
@console_login_required
def console_complete_wo(wo_id: int):
    def run():
        wo = work_orders.complete_work_order(g.actor, wo_id, request.form.get("summary"), public_url=None,
                                             share=request.form.get("share_with_customer") == "1")
        db.session.flush()
        return wo
    return _act(run, "工单已完成。", url_for("console.work_order_detail", wo_id=wo_id))


@bp.post("/service/work-orders/<int:wo_id>/reassign")
@console_login_required
def console_reassign(wo_id: int):
    eng = request.form.get("engineer_id", "")
    return _act(lambda: work_orders.reassign(g.actor, wo_id, int(eng) if eng.isdigit() else 0, request.form.get("reason") or None),
                "已转派。", url_for("console.work_order_detail", wo_id=wo_id))


@bp.post("/service/work-orders/<int:wo_id>/resume")
@console_login_required
def console_resume_wo(wo_id: int):
    """The parts arrived / the customer answered: the ticket is in progress again."""
    def run():
        wo = get_visible(g.actor, WorkOrder, wo_id, action="edit")
        work_orders.resume(g.actor, wo.id)
    return _act(run, "已恢复处理。", url_for("console.work_order_detail", wo_id=wo_id))


@bp.post("/service/work-orders/<int:wo_id>/cancel")
@console_login_required
def console_cancel_wo(wo_id: int):
    return _act(lambda: work_orders.cancel_work_order(g.actor, wo_id, request.form.get("reason", "")), "服务工单已取消。",
                url_for("console.work_order_detail", wo_id=wo_id))


@bp.get("/service/calendar")
@console_login_required
def dispatch_calendar():
    start = _date("date") or local_today(org_timezone(g.actor.org_id))
    start = start - timedelta(days=start.weekday())
    try:
        data = reports.dispatch_calendar(g.actor, start, start + timedelta(days=6))
    except DomainError as exc:
        return _denied(exc)
    chart = reports.bar_chart_svg("本周派工（工单数）", [(e["engineer"] or "—", sum(len(v) for v in e["days"].values()))
                                                    for e in data["engineers"]])
    return render_template("console/service_calendar.html", r=data, prev=(start - timedelta(days=7)).isoformat(),
                           next=(start + timedelta(days=7)).isoformat(), chart=chart)


@bp.get("/service/reports")
@console_login_required
def service_reports():
    d0, d1 = _date("date_from"), _date("date_to")
    download = request.args.get("export")
    if download in ("tracking", "satisfaction", "sla", "dispatch-calendar") and request.args.get("format") in ("xlsx", "csv"):
        from wxapp.self_service.api import report_download

        try:
            return report_download(g.actor, download, d0, d1)
        except DomainError as exc:
            return _denied(exc)
    try:
        tracking = reports.tracking(g.actor, d0, d1, page=_page(), per_page=50)
        sat = reports.satisfaction(g.actor, d0, d1)
        sla = reports.sla_compliance(g.actor, d0, d1)
    except DomainError as exc:
        return _denied(exc)
    summary = reports.tracking_summary(g.actor, d0, d1)
    trend = reports.trend(g.actor, d0, d1)
    charts = {  # ECharts (static/charts.js), the figures in the tables below each
        "trend": {"kind": "bar", "x": [d[5:] for d in trend["days"]], "unit": "请求数", "unit2": "%", "integer": True,
                  "series": [{"name": "服务请求", "data": trend["tickets"]},
                             {"name": "解决时限达标率（%）", "type": "line", "axis": 1, "data": trend["resolution_rate"]}]},
        "satisfaction_trend": {"kind": "line", "x": [d[5:] for d in trend["days"]], "unit": "分",
                               "series": [{"name": "当日平均满意度", "data": trend["satisfaction"]}]},
        "satisfaction": {"kind": "bar", "x": [f"{k} 分" for k in sat["distribution"]], "unit": "评价数", "integer": True,
                         "series": [{"name": "评价数", "data": list(sat["distribution"].values())}]},
        "engineers": {"kind": "bar", "x": [r["engineer"] for r in sat["by_engineer"]], "unit": "分",
                      "series": [{"name": "平均分", "data": [r["average"] for r in sat["by_engineer"]]}]},
        "sla": {"kind": "bar", "x": [r["label"] for r in sla["rows"]], "unit": "%",
                "series": [{"name": "响应达标率（%）", "data": [_pct(r["response_rate"]) for r in sla["rows"]]},
                           {"name": "解决达标率（%）", "data": [_pct(r["resolution_rate"]) for r in sla["rows"]]}]},
        "status": {"kind": "bar", "x": [label for label in summary["by_status"]], "unit": "请求数", "integer": True,
                   "series": [{"name": "服务请求", "data": list(summary["by_status"].values())}]},
        "resolution": {"kind": "bar", "x": list(summary["resolution"]), "unit": "请求数", "integer": True,
                       "series": [{"name": "已解决", "data": list(summary["resolution"].values())}]},
    }
    return render_template("console/service_reports.html", tracking=tracking, sat=sat, sla=sla, trend=trend, summary=summary,
                           charts=charts, page=_page())


def _pct(rate: float | None) -> float | None:
    return round(rate * 100, 1) if rate is not None else None


@bp.get("/service/photos/<int:photo_id>")
@console_login_required
def photo(photo_id: int):
    from flask import Response

    from crm_core import media

    try:
        row = media.visible_media(g.actor, photo_id)
        data, ctype = media.read(row, thumb=True)
    except DomainError as exc:
        return _denied(exc)
    return Response(data, mimetype=ctype, headers={"Cache-Control": "private, max-age=86400"})


@bp.post("/conversations/<int:conversation_id>/ticket")
@console_login_required
def conversation_ticket(conversation_id: int):
    """转为工单 from the 在线客服 page."""
    from crm_core.service import tickets
    from wxapp.config import wechat_appid
    from wxapp.pages import act

    holder = {}
    f = request.form

    def run():
        archive = f.get("product_archive_id", "")
        holder["t"] = tickets.create_from_conversation(g.actor, wechat_appid(), conversation_id, {
            "kind": f.get("kind") or "consultation", "description": f.get("description", ""),
            "product_archive_id": int(archive) if archive.isascii() and archive.isdecimal() else None})

    back = url_for("console.conversation", conversation_id=conversation_id)
    resp = act(run, lambda: f"已转为工单 {holder['t'].number}，可在客户反馈中派工。", back)
    return redirect(url_for("console.ticket_detail", ticket_id=holder["t"].id)) if "t" in holder else resp
