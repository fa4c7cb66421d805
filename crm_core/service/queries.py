"""The service desk's read side: ticket and work-order lists, the timeline, and the dicts that pages and the
API answer with."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import String, cast, func, or_, select

from crm_core import media
from crm_core.clock import utcnow
from crm_core.customers.models import Product, ProductArchive
from crm_core.db import db, paginate
from crm_core.org.models import Employee, RecordShare
from crm_core.org.permissions import Actor, scoped_select
from crm_core.service.models import (
    FeeLine,
    HandlingRecord,
    PartRequest,
    Rating,
    Ticket,
    TicketEvent,
    WorkOrder,
)
from crm_core.service.tickets import CUSTOMER_LABELS, KIND_LABELS, OPEN_STATES, STAFF_LABELS, WO_OPEN, settings, sla


# --- views -----------------------------------------------------------------------------------------
def list_tickets(actor: Actor, *, status: str | None = None, kind: str | None = None, customer_id: int | None = None,
                 page: int = 1, per_page: int = 20):
    actor.require("ticket", "view")
    stmt = scoped_select(actor, Ticket)
    if status == "open":
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES))
    elif status:
        stmt = stmt.where(Ticket.status == status)
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if customer_id:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    return paginate(stmt, Ticket.id.desc(), page=page, per_page=per_page)


def my_work_orders(actor: Actor, *, open_only: bool = True, page: int = 1, per_page: int = 20):
    actor.require("work_order", "view")
    shared = select(RecordShare.object_id).where(RecordShare.object_type == "work_order",
                                                 RecordShare.employee_id == actor.employee_id)
    stmt = select(WorkOrder).where(WorkOrder.org_id == actor.org_id,
                                   or_(WorkOrder.engineer_id == actor.employee_id, WorkOrder.id.in_(shared)))
    if open_only:
        stmt = stmt.where(WorkOrder.status.in_(WO_OPEN))
    return paginate(stmt, WorkOrder.id.desc(), page=page, per_page=per_page)


def _iso(d):
    return d.isoformat() + "Z" if d else None


def _names(ids) -> dict[int, Employee]:
    ids = {i for i in ids if i}
    return {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(ids)))} if ids else {}


def timeline(t: Ticket, public_only: bool) -> list[dict]:
    """The ticket's timeline. For the customer (``public_only``): public entries, the customer's
    labels, and only what staff chose to share (``public_note``); for staff: everything, each entry
    saying whether the customer sees it."""
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == t.id)
    if public_only:
        stmt = stmt.where(TicketEvent.public.is_(True))
    out = []
    for e in db.session.scalars(stmt.order_by(TicketEvent.id)):
        entry = {"at": _iso(e.at), "kind": e.kind, "from": e.from_status, "to": e.to_status,
                 "label": (CUSTOMER_LABELS if public_only else STAFF_LABELS).get(e.to_status) if e.to_status else None,
                 "by": e.actor_label if not public_only or e.employee_id is None else None,
                 "note": e.public_note if public_only else e.note}
        if not public_only:
            entry.update(public=e.public, public_note=e.public_note)
        out.append(entry)
    return out


def ticket_dict(t: Ticket, *, for_customer: bool = False) -> dict:
    emps = _names([t.handler_id])
    handler = emps.get(t.handler_id)
    archive = db.session.get(ProductArchive, t.product_archive_id) if t.product_archive_id else None
    product = db.session.get(Product, t.product_id) if t.product_id else None
    planned = db.session.scalar(select(func.min(WorkOrder.planned_at)).where(WorkOrder.ticket_id == t.id,
                                                                               WorkOrder.status.in_(WO_OPEN)))
    s = sla(t)
    out = {"id": t.id, "number": t.number, "kind": t.kind, "kind_label": KIND_LABELS[t.kind], "status": t.status,
           "status_label": (CUSTOMER_LABELS if for_customer else STAFF_LABELS)[t.status], "priority": t.priority,
           "description": t.description, "customer_id": t.customer_id, "contact_id": t.contact_id,
           "product_archive_id": t.product_archive_id, "product_id": t.product_id,
           "product_name": product.name if product else t.product_note, "serial_no": archive.serial_no if archive else None,
           "in_warranty": t.in_warranty, "required_by": _iso(t.required_by), "contact_phone": t.contact_phone,
           "created_at": _iso(t.created_at), "completed_at": _iso(t.completed_at), "closed_at": _iso(t.closed_at),
           "photo_ids": list(t.photo_ids or []), "reason": t.reason,
           "handler": {"name": handler.name, "phone": handler.phone} if handler else None,
           "expected_at": _iso(planned or t.required_by) or s["resolution_due"],
           "rating": None, "can_rate": False, "can_reopen": False,
           "timeline": timeline(t, public_only=for_customer)}
    r = db.session.scalars(select(Rating).where(Rating.ticket_id == t.id)).first()
    if r:
        out["rating"] = {"score": r.score, "tags": r.tags, "comment": r.comment}
    out["can_rate"] = t.status == "completed" and r is None
    if t.status == "completed" and t.completed_at:
        out["can_reopen"] = utcnow() - t.completed_at <= timedelta(days=int(settings(t.org_id)["reopen_days"]))
    if not for_customer:
        out.update(source=t.source, openid=t.openid, dispatcher_id=t.dispatcher_id, handler_id=t.handler_id, sla=s,
                   reopen_count=t.reopen_count, closed_automatically=t.closed_automatically,
                   work_orders=[work_order_dict(w) for w in db.session.scalars(
                       select(WorkOrder).where(WorkOrder.ticket_id == t.id).order_by(WorkOrder.id))])
    return out


def work_order_dict(wo: WorkOrder) -> dict:
    records = db.session.scalars(select(HandlingRecord).where(HandlingRecord.work_order_id == wo.id).order_by(HandlingRecord.id)).all()
    collaborators = list(db.session.scalars(select(RecordShare.employee_id).where(
        RecordShare.object_type == "work_order", RecordShare.object_id == wo.id)))
    emps = _names([wo.engineer_id, *collaborators, *(r.employee_id for r in records)])
    parts = db.session.scalars(select(PartRequest).where(PartRequest.work_order_id == wo.id)).all()
    fees = db.session.scalars(select(FeeLine).where(FeeLine.work_order_id == wo.id)).all()
    return {"id": wo.id, "ticket_id": wo.ticket_id, "status": wo.status, "engineer_id": wo.engineer_id,
            "engineer": emps[wo.engineer_id].name if wo.engineer_id in emps else None,
            "collaborators": [{"id": c, "name": emps[c].name} for c in collaborators if c in emps and c != wo.engineer_id],
            "planned_at": _iso(wo.planned_at), "started_at": _iso(wo.started_at), "completed_at": _iso(wo.completed_at),
            "summary": wo.summary, "auto_assigned": wo.auto_assigned,
            "records": [{"id": r.id, "employee": emps[r.employee_id].name if r.employee_id in emps else None,
                         "visited_at": _iso(r.visited_at), "minutes": r.minutes, "note": r.note, "photo_ids": r.photo_ids}
                        for r in records],
            "parts": [{"id": p.id, "code": p.part_code, "name": p.part_name, "quantity": p.quantity, "status": p.status}
                      for p in parts],
            "fees": [{"id": f.id, "kind": f.kind, "item": f.item, "amount": float(f.amount), "note": f.note} for f in fees],
            "fee_total": round(sum(float(f.amount) for f in fees if f.kind == "fee"), 2),
            "income_total": round(sum(float(f.amount) for f in fees if f.kind == "income"), 2)}


# --- photos: whoever may see the ticket (or the work order of the handling record) sees its photos ---
def _holds_photo(actor: Actor, row) -> bool:
    like = f"%{row.id}%"  # narrows the JSON lists by text; membership is checked exactly below
    for t in db.session.scalars(scoped_select(actor, Ticket).where(cast(Ticket.photo_ids, String).like(like))):
        if row.id in (t.photo_ids or []):
            return True
    records = db.session.scalars(select(HandlingRecord).join(Ticket, Ticket.id == HandlingRecord.ticket_id).where(
        Ticket.org_id == actor.org_id, cast(HandlingRecord.photo_ids, String).like(like))).all()
    for rec in records:
        if row.id not in (rec.photo_ids or []):
            continue
        for model, rid in ((WorkOrder, rec.work_order_id), (Ticket, rec.ticket_id)):
            if db.session.scalar(scoped_select(actor, model).where(model.id == rid)) is not None:
                return True
    return False


media.register_holder(_holds_photo)
