"""Staff API for tickets (客户反馈) and work orders (服务工单), and the service reports."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import current_app, g
from pydantic import Field

from crm_core.org.permissions import get_visible
from crm_core.service import queries, work_orders
from crm_core.service import reports as reports
from crm_core.service import tickets as svc
from crm_core.service.models import TICKET_KINDS, TICKET_PRIORITIES, Ticket
from wxapp import exports
from wxapp.api import bp
from wxapp.checkin.api import CoordSystem
from wxapp.csv_export import csv_response
from wxapp.openapi import Model, PageQuery, UtcDateTime, api

TicketKind = Literal[TICKET_KINDS]  # type: ignore[valid-type]


def ticket_url(ticket_id: int) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/h5/service/tickets/{ticket_id}"


class TicketQuery(PageQuery):
    per_page: int = Field(default=20, ge=1, le=100)
    status: Literal["open", "submitted", "dispatched", "in_progress", "waiting_customer", "waiting_parts", "completed",
                    "closed", "cancelled", "rejected"] | None = None
    kind: TicketKind | None = None
    customer_id: int | None = None


@api.operation(bp, "/tickets", "GET", summary="Feedback queue (客户反馈) within your scope", tags=("tickets",), query=TicketQuery)
def list_tickets(query: TicketQuery):
    rows, total = queries.list_tickets(g.actor, status=query.status, kind=query.kind, customer_id=query.customer_id,
                                   page=query.page, per_page=query.per_page)
    return {"items": queries.ticket_dicts(rows), "total": total}


class StaffTicketIn(Model):
    customer_id: int
    contact_id: int | None = None
    kind: TicketKind
    priority: Literal[TICKET_PRIORITIES] = "normal"  # type: ignore[valid-type]
    description: str = Field(min_length=1, max_length=2000)
    product_archive_id: int | None = None
    product_id: int | None = None
    product_note: str | None = Field(default=None, max_length=200)
    required_by: UtcDateTime | None = None
    contact_phone: str | None = Field(default=None, max_length=32)
    photo_ids: list[int] = Field(default_factory=list, max_length=9)


class ConversationTicketIn(Model):
    kind: TicketKind
    description: str = Field(min_length=1, max_length=2000)
    priority: Literal[TICKET_PRIORITIES] = "normal"  # type: ignore[valid-type]
    product_archive_id: int | None = None


@api.operation(bp, "/conversations/<int:conversation_id>/ticket", "POST", summary="转为工单: a ticket from a 在线客服 conversation",
               tags=("conversations",), body=ConversationTicketIn, status=201)
def ticket_from_conversation(conversation_id: int, body: ConversationTicketIn):
    """For the contact the follower is bound to (422 ``not_verified`` when they are not); the
    follower then follows it in WeChat."""
    from wxapp.config import wechat_appid

    return queries.ticket_dict(svc.create_from_conversation(g.actor, wechat_appid(), conversation_id, body.model_dump()))


@api.operation(bp, "/tickets", "POST", summary="Take a request at the desk or by phone", tags=("tickets",),
               body=StaffTicketIn, status=201)
def create_ticket(body: StaffTicketIn):
    return queries.ticket_dict(svc.create_for_customer(g.actor, body.model_dump()))


class OpportunityTicketIn(Model):
    kind: TicketKind
    priority: Literal[TICKET_PRIORITIES] = "normal"  # type: ignore[valid-type]
    description: str = Field(min_length=1, max_length=2000)
    required_by: UtcDateTime | None = None


@api.operation(bp, "/opportunities/<int:opp_id>/ticket", "POST", summary="商机下推服务请求: a service request for the deal's customer",
               tags=("tickets",), body=OpportunityTicketIn, status=201)
def ticket_from_opportunity(opp_id: int, body: OpportunityTicketIn):
    t = svc.create_for_opportunity(g.actor, opp_id, body.model_dump())
    return {"id": t.id, "number": t.number, "status": t.status, "kind": t.kind, "opportunity_id": t.opportunity_id,
            "customer_id": t.customer_id}


@api.operation(bp, "/tickets/<int:ticket_id>", "GET", summary="One ticket with timeline, work orders and SLA", tags=("tickets",))
def get_ticket(ticket_id: int):
    return queries.ticket_dict(get_visible(g.actor, Ticket, ticket_id))


class DispatchIn(Model):
    engineer_ids: list[int] = Field(default_factory=list, max_length=10, description="first = main engineer; empty + auto = least open work")
    auto: bool = False
    planned_at: UtcDateTime | None = None
    note: str | None = Field(default=None, max_length=500)
    append: bool = Field(default=False, description="追加派工: another work order on a ticket that already has an open one "
                                                    "(without it: 409 already_dispatched)")


@api.operation(bp, "/tickets/<int:ticket_id>/dispatch", "POST", summary="Dispatch as a work order (派工)", tags=("tickets",),
               body=DispatchIn, status=201)
def dispatch_ticket(ticket_id: int, body: DispatchIn):
    wo = work_orders.dispatch(g.actor, ticket_id, body.engineer_ids, auto=body.auto, planned_at=body.planned_at, note=body.note,
                              public_url=ticket_url(ticket_id), append=body.append)
    return queries.work_order_dict(wo)


@api.operation(bp, "/tickets/suggested-engineer", "GET", summary="Auto-assignment suggestion: least open work", tags=("tickets",))
def suggested_engineer():
    g.actor.require("ticket", "dispatch")
    team = work_orders.engineers(g.actor.org_id)
    counts = work_orders.open_work_counts(g.actor.org_id, [e.id for e in team])
    pick = work_orders.suggest_engineer(g.actor.org_id)
    return {"suggested": {"id": pick.id, "name": pick.name} if pick else None,
            "engineers": [{"id": e.id, "name": e.name, "open_work_orders": counts[e.id]} for e in team]}


class NoteIn(Model):
    note: str = Field(min_length=1, max_length=1000)
    share_with_customer: bool = Field(default=False, description="the customer's timeline shows this text (default: internal)")


class ReasonIn(Model):
    reason: str = Field(min_length=1, max_length=500)
    share_with_customer: bool = Field(default=False, description="the customer's timeline shows this text (default: internal)")


@api.operation(bp, "/tickets/<int:ticket_id>/complete", "POST", summary="Complete without a work order", tags=("tickets",), body=NoteIn)
def complete_ticket(ticket_id: int, body: NoteIn):
    return queries.ticket_dict(svc.complete_directly(g.actor, ticket_id, body.note, public_url=ticket_url(ticket_id),
                                                     share=body.share_with_customer))


@api.operation(bp, "/tickets/<int:ticket_id>/cancel", "POST", summary="Cancel with a reason", tags=("tickets",), body=ReasonIn)
def cancel_ticket(ticket_id: int, body: ReasonIn):
    return queries.ticket_dict(svc.staff_cancel_or_reject(g.actor, ticket_id, "cancelled", body.reason,
                                                          share=body.share_with_customer))


@api.operation(bp, "/tickets/<int:ticket_id>/reject", "POST", summary="Reject with a reason", tags=("tickets",), body=ReasonIn)
def reject_ticket(ticket_id: int, body: ReasonIn):
    return queries.ticket_dict(svc.staff_cancel_or_reject(g.actor, ticket_id, "rejected", body.reason,
                                                          share=body.share_with_customer))


class StatusIn(Model):
    status: Literal["waiting_customer", "waiting_parts", "in_progress"]
    note: str | None = Field(default=None, max_length=500)
    share_with_customer: bool = Field(default=False, description="the customer's timeline shows this text (default: internal)")


@api.operation(bp, "/tickets/<int:ticket_id>/status", "POST", summary="Waiting for the customer / parts, or back in progress",
               tags=("tickets",), body=StatusIn)
def ticket_status(ticket_id: int, body: StatusIn):
    return queries.ticket_dict(svc.set_waiting(g.actor, ticket_id, body.status, body.note, share=body.share_with_customer))


@api.operation(bp, "/tickets/<int:ticket_id>/close", "POST", summary="Close a completed ticket now", tags=("tickets",))
def close_ticket(ticket_id: int):
    return queries.ticket_dict(svc.close(g.actor, ticket_id))


class WorkOrderQuery(PageQuery):
    per_page: int = Field(default=20, ge=1, le=100)
    open_only: bool = True
    mine: bool = Field(default=True, description="false: every work order within the caller's data scope (the dispatcher's view)")


@api.operation(bp, "/work-orders", "GET", summary="My work orders (main engineer or collaborator), or all within scope",
               tags=("work-orders",), query=WorkOrderQuery)
def my_work_orders(query: WorkOrderQuery):
    rows, total = queries.my_work_orders(g.actor, open_only=query.open_only, mine=query.mine, page=query.page,
                                         per_page=query.per_page)
    return {"items": queries.work_order_dicts(rows), "total": total}


exports.register(bp, api, "/work-orders", "服务工单", "work_order", WorkOrderQuery, queries.my_work_orders, queries.work_order_rows, [
    exports.Column("id", "派工单"), exports.Column("number", "反馈单号"), exports.Column("kind", "类型", "label:ticket_kind"),
    exports.Column("status", "状态", "label:work_order_status"), exports.Column("customer_id", "客户", "customer"),
    exports.Column("description", "问题"), exports.Column("engineer_id", "工程师", "employee"),
    exports.Column("collaborator_names", "协作人", "list"), exports.Column("accepted_at", "接单时间", "time"),
    exports.Column("arrived_at", "到达时间", "time"), exports.Column("completed_at", "完工时间", "time"),
    exports.Column("summary", "完工说明"), exports.Column("fee_total", "收费合计"), exports.Column("income_total", "其他收入")])


@api.operation(bp, "/work-orders/<int:wo_id>", "GET", summary="One work order", tags=("work-orders",))
def get_work_order(wo_id: int):
    from crm_core.service.models import WorkOrder

    return queries.work_order_dict(get_visible(g.actor, WorkOrder, wo_id))


class PartIn(Model):
    code: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=1000)


class FeeIn(Model):
    kind: Literal["fee", "income"]
    item: str = Field(min_length=1, max_length=200)
    amount: float = Field(ge=0, le=10_000_000)
    note: str | None = Field(default=None, max_length=500)


class SignatureIn(Model):
    media_id: int = Field(description="the signature image (PNG) uploaded with POST /api/v1/media, purpose signature")
    signer_name: str | None = Field(default=None, max_length=64, description="the customer's name as they gave it")


class RecordIn(Model):
    note: str = Field(min_length=1, max_length=2000)
    visited_at: UtcDateTime | None = None
    minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    photo_ids: list[int] = Field(default_factory=list, max_length=9)
    parts: list[PartIn] = Field(default_factory=list, max_length=50)
    fees: list[FeeIn] = Field(default_factory=list, max_length=50)
    share_with_customer: bool = Field(default=False, description="the customer's timeline shows this text (default: internal)")
    signature: SignatureIn | None = Field(default=None, description="the customer confirms the charges (确认收费)")


@api.operation(bp, "/work-orders/<int:wo_id>/records", "POST", summary="Add a handling record (visit, parts, fees)",
               tags=("work-orders",), body=RecordIn, status=201)
def add_record(wo_id: int, body: RecordIn):
    rec = work_orders.add_record(g.actor, wo_id, body.model_dump())
    return queries.work_order_dict(work_orders._work_order(g.actor, rec.work_order_id))


class ReassignIn(Model):
    engineer_id: int
    reason: str | None = Field(default=None, max_length=500)


@api.operation(bp, "/work-orders/<int:wo_id>/reassign", "POST", summary="Reassign to another engineer (转派)",
               tags=("work-orders",), body=ReassignIn)
def reassign(wo_id: int, body: ReassignIn):
    return queries.work_order_dict(work_orders.reassign(g.actor, wo_id, body.engineer_id, body.reason))


class CollaboratorsIn(Model):
    employee_ids: list[int] = Field(min_length=1, max_length=10)


@api.operation(bp, "/work-orders/<int:wo_id>/collaborators", "POST", summary="Add collaborators", tags=("work-orders",),
               body=CollaboratorsIn)
def collaborators(wo_id: int, body: CollaboratorsIn):
    return queries.work_order_dict(work_orders.add_collaborators(g.actor, wo_id, body.employee_ids))


class NoteOnlyIn(Model):
    summary: str | None = Field(default=None, max_length=2000)


class CompleteIn(NoteOnlyIn):
    share_with_customer: bool = Field(default=False, description="the customer's timeline shows the summary (default: internal)")
    signature: SignatureIn | None = Field(default=None, description="the customer's 完工确认; required when the "
                                          "completion_signature setting asks (by default: work with paid-service income)")


def complete(actor, wo_id: int, body: CompleteIn):
    """Complete the work order (the API and the engineer's phone page)."""
    return work_orders.complete_work_order(actor, wo_id, body.summary, share=body.share_with_customer,
                                           public_url=ticket_url(work_orders._work_order(actor, wo_id).ticket_id),
                                           signature=body.signature.model_dump() if body.signature else None)


@api.operation(bp, "/work-orders/<int:wo_id>/complete", "POST", summary="Finish the work order", tags=("work-orders",),
               body=CompleteIn)
def complete_work_order(wo_id: int, body: CompleteIn):
    return queries.work_order_dict(complete(g.actor, wo_id, body))


@api.operation(bp, "/work-orders/<int:wo_id>/expense", "POST", summary="费用申请 from my unclaimed fee lines of the work order",
               tags=("work-orders",), status=201)
def expense_from_work_order(wo_id: int):
    from crm_core.sales.expenses import expense_dict

    return expense_dict(work_orders.expense_from_work_order(g.actor, wo_id))


@api.operation(bp, "/work-orders/<int:wo_id>/accept", "POST", summary="Accept the work order (接单); the customer is told",
               tags=("work-orders",))
def accept_work_order(wo_id: int):
    return queries.work_order_dict(work_orders.accept(g.actor, wo_id))


class ArrivalIn(Model):
    lat: float | None = Field(default=None, ge=-90, le=90, description="omit lat and lng to use your latest WeChat location")
    lng: float | None = Field(default=None, ge=-180, le=180)
    coord_system: CoordSystem = "wgs84"
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    client_time: UtcDateTime | None = None
    photo_id: int | None = None
    note: str | None = Field(default=None, max_length=500)
    mock_location: bool = False


def arrive(actor, wo_id: int, body: ArrivalIn):
    """到达现场: a check-in at the work order's customer (the check-in service's geofence and checks), and the
    work order's arrival, in one transaction (the API and the engineer's phone page)."""
    from crm_core.field import checkins

    wo = work_orders._work_order(actor, wo_id, "edit")
    ticket = get_visible(actor, Ticket, wo.ticket_id)
    ci = checkins.record(actor, {**body.model_dump(), "kind": "in", "customer_id": ticket.customer_id})
    work_orders.record_arrival(actor, wo_id, ci.id, ci.distance_m, list(ci.flags or []))
    return ci


@api.operation(bp, "/work-orders/<int:wo_id>/arrival", "POST", summary="Arrive at the customer's site (到达签到)",
               tags=("work-orders",), body=ArrivalIn, status=201)
def arrival(wo_id: int, body: ArrivalIn):
    from crm_core.field import checkins

    ci = arrive(g.actor, wo_id, body)
    return {"checkin": checkins.to_dict(ci, body.coord_system),
            "work_order": queries.work_order_dict(work_orders._work_order(g.actor, wo_id))}


@api.operation(bp, "/work-orders/<int:wo_id>/undo", "POST", summary="Undo a dispatch (before work starts)",
               tags=("work-orders",), body=NoteOnlyIn)
def undo_dispatch(wo_id: int, body: NoteOnlyIn):
    return queries.work_order_dict(work_orders.undo_dispatch(g.actor, wo_id, body.summary))


# --- reports ---------------------------------------------------------------------------------
class ReportRange(Model):
    date_from: date | None = None
    date_to: date | None = None
    format: Literal["json", "csv", "xlsx"] = "json"


class TrackingQuery(ReportRange):
    status: str | None = Field(default=None, max_length=20)
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=500)


EXPORT_ROWS = 50_000  # a download holds every row of the range, not a page (like the lists' exports)


def report_download(actor, name: str, date_from=None, date_to=None, *, status: str | None = None,
                    engineer_id: int | None = None):
    """A service report as the request's ``format`` asks (xlsx or csv), every row of the range: the API's and the
    console's 服务报表 downloads are this one function."""
    if name == "tracking":
        data = reports.tracking(actor, date_from, date_to, status=status, page=1, per_page=EXPORT_ROWS)
        return csv_response(f"服务请求跟踪_{data['date_from']}_{data['date_to']}.csv", reports.TRACKING_COLUMNS, data["rows"])
    if name == "dispatch-calendar":
        data = reports.dispatch_calendar(actor, date_from, date_to, engineer_id)
        rows = [{"engineer": e["engineer"], "date": d, **item} for e in data["engineers"] for d, items in e["days"].items()
                for item in items]
        return csv_response(f"派工日程_{data['date_from']}_{data['date_to']}.csv",
                            [("engineer", "工程师"), ("date", "日期"), ("time", "时间"), ("ticket", "单号"), ("kind", "类型"),
                             ("customer", "客户"), ("status", "状态")], rows)
    if name == "satisfaction":
        data = reports.satisfaction(actor, date_from, date_to)
        rows = [{"group": "工程师", "name": r["engineer"], "count": r["count"], "average": r["average"]} for r in data["by_engineer"]]
        rows += [{"group": "类型", "name": r["label"], "count": r["count"], "average": r["average"]} for r in data["by_kind"]]
        rows += [{"group": "分布", "name": f"{s} 分", "count": n} for s, n in data["distribution"].items()]
        rows.append({"group": "合计", "name": "", "count": data["count"], "average": data["average"]})
        return csv_response(f"满意度统计_{data['date_from']}_{data['date_to']}.csv",
                            [("group", "维度"), ("name", "名称"), ("count", "评价数"), ("average", "平均分")], rows)
    data = reports.sla_compliance(actor, date_from, date_to)
    return csv_response(f"SLA达成_{data['date_from']}_{data['date_to']}.csv", reports.SLA_COLUMNS,
                        data["rows"] + [{"label": "合计", **data["total"]}])


@api.operation(bp, "/reports/service-tracking", "GET", summary="Service request tracking (服务请求跟踪)", tags=("reports",),
               query=TrackingQuery)
def service_tracking(query: TrackingQuery):
    if query.format in ("csv", "xlsx"):  # every row of the range
        return report_download(g.actor, "tracking", query.date_from, query.date_to, status=query.status)
    return reports.tracking(g.actor, query.date_from, query.date_to, status=query.status, page=query.page,
                            per_page=query.per_page)


class CalendarQuery(ReportRange):
    engineer_id: int | None = None


@api.operation(bp, "/reports/dispatch-calendar", "GET", summary="Dispatch calendar per engineer (服务派工日程)",
               tags=("reports",), query=CalendarQuery)
def dispatch_calendar(query: CalendarQuery):
    if query.format in ("csv", "xlsx"):
        return report_download(g.actor, "dispatch-calendar", query.date_from, query.date_to, engineer_id=query.engineer_id)
    return reports.dispatch_calendar(g.actor, query.date_from, query.date_to, query.engineer_id)


@api.operation(bp, "/reports/satisfaction", "GET", summary="Satisfaction statistics", tags=("reports",), query=ReportRange)
def satisfaction(query: ReportRange):
    if query.format in ("csv", "xlsx"):
        return report_download(g.actor, "satisfaction", query.date_from, query.date_to)
    return reports.satisfaction(g.actor, query.date_from, query.date_to)


@api.operation(bp, "/reports/sla", "GET", summary="SLA compliance per kind", tags=("reports",), query=ReportRange)
def sla_report(query: ReportRange):
    if query.format in ("csv", "xlsx"):
        return report_download(g.actor, "sla", query.date_from, query.date_to)
    return reports.sla_compliance(g.actor, query.date_from, query.date_to)


exports.register(bp, api, "/tickets", "客户反馈", "ticket", TicketQuery, queries.list_tickets, queries.ticket_dicts, [
    exports.Column("number", "工单号"), exports.Column("kind", "类型", "label:ticket_kind"),
    exports.Column("status", "状态", "label:ticket_status"), exports.Column("customer_id", "客户", "customer"),
    exports.Column("description", "描述"), exports.Column("product_name", "产品"), exports.Column("created_at", "提交时间", "time"),
    exports.Column("handler_id", "处理人", "employee"), exports.Column("completed_at", "完成时间", "time")])
