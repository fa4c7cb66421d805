"""The service desk's read side: ticket and work-order lists, the timeline, and the dicts that pages and the
API answer with."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import String, cast, func, or_, select

from crm_core import media
from crm_core.clock import utcnow
from crm_core.customers.models import Customer, Product, ProductArchive
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
    WorkOrderSignature,
)
from crm_core.service.tickets import CUSTOMER_LABELS, KIND_LABELS, OPEN_STATES, STAFF_LABELS, WO_OPEN, settings, sla


# --- views -----------------------------------------------------------------------------------------
def list_tickets(actor: Actor, *, status: str | None = None, kind: str | None = None, customer_id: int | None = None,
                 q: str | None = None, page: int = 1, per_page: int = 20):
    """Tickets within the actor's scope; ``q`` matches the number, the description or the customer's name."""
    actor.require("ticket", "view")
    stmt = scoped_select(actor, Ticket)
    if q and q.strip():
        like = f"%{q.strip()[:100]}%"
        stmt = stmt.where(or_(Ticket.number.like(like), Ticket.description.like(like),
                              Ticket.customer_id.in_(select(Customer.id).where(Customer.org_id == actor.org_id,
                                                                               Customer.name.like(like)))))
    if status == "open":
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES))
    elif status:
        stmt = stmt.where(Ticket.status == status)
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if customer_id:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    return paginate(stmt, Ticket.id.desc(), page=page, per_page=per_page)


def my_work_orders(actor: Actor, *, open_only: bool = True, mine: bool = True, page: int = 1, per_page: int = 20):
    """The actor's work orders (main engineer or collaborator); ``mine=False``: every work order the actor's data
    scope covers (the dispatcher's view, and its 导出)."""
    if mine:
        actor.require("work_order", "view")
        shared = select(RecordShare.object_id).where(RecordShare.object_type == "work_order",
                                                     RecordShare.employee_id == actor.employee_id)
        stmt = select(WorkOrder).where(WorkOrder.org_id == actor.org_id,
                                       or_(WorkOrder.engineer_id == actor.employee_id, WorkOrder.id.in_(shared)))
    else:
        stmt = scoped_select(actor, WorkOrder)
    if open_only:
        stmt = stmt.where(WorkOrder.status.in_(WO_OPEN))
    return paginate(stmt, WorkOrder.id.desc(), page=page, per_page=per_page)


def work_order_rows(orders: list[WorkOrder]) -> list[dict]:
    """Work orders for a sheet: each with its ticket's number, kind, customer and problem."""
    out = work_order_dicts(orders)
    tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.id.in_({wo.ticket_id for wo in orders})))} if orders else {}
    for row in out:
        t = tickets[row["ticket_id"]]
        row.update(number=t.number, kind=t.kind, customer_id=t.customer_id, description=t.description,
                   collaborator_names=[c["name"] for c in row["collaborators"]])
    return out


def _iso(d):
    return d.isoformat() + "Z" if d else None


def _names(ids) -> dict[int, Employee]:
    ids = {i for i in ids if i}
    return {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(ids)))} if ids else {}


def timeline(t: Ticket, public_only: bool) -> list[dict]:
    """The ticket's timeline. For the customer (``public_only``): public entries, the customer's
    labels, and only what staff chose to share (``public_note``); for staff: everything, each entry
    saying whether the customer sees it."""
    return _timelines([t.id], public_only)[t.id]


def _timelines(ticket_ids: list[int], public_only: bool) -> dict[int, list[dict]]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids))
    if public_only:
        stmt = stmt.where(TicketEvent.public.is_(True))
    out: dict[int, list[dict]] = {i: [] for i in ticket_ids}
    for e in db.session.scalars(stmt.order_by(TicketEvent.id)):
        entry = {"at": _iso(e.at), "kind": e.kind, "from": e.from_status, "to": e.to_status,
                 "label": (CUSTOMER_LABELS if public_only else STAFF_LABELS).get(e.to_status) if e.to_status else None,
                 "by": e.actor_label if not public_only or e.employee_id is None else None,
                 "note": e.public_note if public_only else e.note}
        if not public_only:
            entry.update(public=e.public, public_note=e.public_note)
        out[e.ticket_id].append(entry)
    return out


def _by_id(model, ids) -> dict:
    ids = {i for i in ids if i}
    return {r.id: r for r in db.session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}


def ticket_dict(t: Ticket, *, for_customer: bool = False) -> dict:
    return ticket_dicts([t], for_customer=for_customer)[0]


def ticket_dicts(tickets: list[Ticket], *, for_customer: bool = False) -> list[dict]:
    """The tickets as pages and the API show them; a page of them costs a fixed number of queries."""
    if not tickets:
        return []
    ids = [t.id for t in tickets]
    emps = _names(t.handler_id for t in tickets)
    archives = _by_id(ProductArchive, (t.product_archive_id for t in tickets))
    products = _by_id(Product, (t.product_id for t in tickets))
    planned = dict(db.session.execute(select(WorkOrder.ticket_id, func.min(WorkOrder.planned_at))
                                      .where(WorkOrder.ticket_id.in_(ids), WorkOrder.status.in_(WO_OPEN))
                                      .group_by(WorkOrder.ticket_id)).all())
    ratings = {r.ticket_id: r for r in db.session.scalars(select(Rating).where(Rating.ticket_id.in_(ids)))}
    timelines = _timelines(ids, for_customer)
    orders: dict[int, list[dict]] = {i: [] for i in ids}
    if not for_customer:
        wos = db.session.scalars(select(WorkOrder).where(WorkOrder.ticket_id.in_(ids)).order_by(WorkOrder.id)).all()
        for wo, d in zip(wos, work_order_dicts(wos)):
            orders[wo.ticket_id].append(d)
    cfg = {org: settings(org) for org in {t.org_id for t in tickets}}
    now = utcnow()
    out = []
    for t in tickets:
        handler, archive, product, r = emps.get(t.handler_id), archives.get(t.product_archive_id), products.get(t.product_id), ratings.get(t.id)
        s = sla(t, now, cfg[t.org_id])
        d = {"id": t.id, "number": t.number, "kind": t.kind, "kind_label": KIND_LABELS[t.kind], "status": t.status,
             "status_label": (CUSTOMER_LABELS if for_customer else STAFF_LABELS)[t.status], "priority": t.priority,
             "description": t.description, "customer_id": t.customer_id, "contact_id": t.contact_id,
             "product_archive_id": t.product_archive_id, "product_id": t.product_id,
             "product_name": product.name if product else t.product_note, "serial_no": archive.serial_no if archive else None,
             "in_warranty": t.in_warranty, "required_by": _iso(t.required_by), "contact_phone": t.contact_phone,
             "created_at": _iso(t.created_at), "completed_at": _iso(t.completed_at), "closed_at": _iso(t.closed_at),
             "photo_ids": list(t.photo_ids or []), "reason": t.reason,
             "handler": {"name": handler.name, "phone": handler.phone} if handler else None,
             "expected_at": _iso(planned.get(t.id) or t.required_by) or s["resolution_due"],
             "rating": {"score": r.score, "tags": r.tags, "comment": r.comment} if r else None,
             "can_rate": t.status == "completed" and r is None, "can_reopen": False,
             "timeline": timelines[t.id]}
        if t.status == "completed" and t.completed_at:
            d["can_reopen"] = now - t.completed_at <= timedelta(days=int(cfg[t.org_id]["reopen_days"]))
        if not for_customer:
            d.update(source=t.source, openid=t.openid, dispatcher_id=t.dispatcher_id, handler_id=t.handler_id, sla=s,
                     reopen_count=t.reopen_count, closed_automatically=t.closed_automatically, work_orders=orders[t.id])
        out.append(d)
    return out


def work_order_dict(wo: WorkOrder) -> dict:
    return work_order_dicts([wo])[0]


def work_order_dicts(orders: list[WorkOrder]) -> list[dict]:
    """Work orders with their handling records, collaborators, parts and fees, in a fixed number of queries."""
    if not orders:
        return []
    ids = [wo.id for wo in orders]
    records: dict[int, list] = {i: [] for i in ids}
    for r in db.session.scalars(select(HandlingRecord).where(HandlingRecord.work_order_id.in_(ids)).order_by(HandlingRecord.id)):
        records[r.work_order_id].append(r)
    collaborators: dict[int, list[int]] = {i: [] for i in ids}
    for oid, emp in db.session.execute(select(RecordShare.object_id, RecordShare.employee_id).where(
            RecordShare.object_type == "work_order", RecordShare.object_id.in_(ids)).order_by(RecordShare.id)):
        collaborators[oid].append(emp)
    parts: dict[int, list] = {i: [] for i in ids}
    for p in db.session.scalars(select(PartRequest).where(PartRequest.work_order_id.in_(ids)).order_by(PartRequest.id)):
        parts[p.work_order_id].append(p)
    fees: dict[int, list] = {i: [] for i in ids}
    for f in db.session.scalars(select(FeeLine).where(FeeLine.work_order_id.in_(ids)).order_by(FeeLine.id)):
        fees[f.work_order_id].append(f)
    signatures: dict[int, list] = {i: [] for i in ids}
    for sg in db.session.scalars(select(WorkOrderSignature).where(WorkOrderSignature.work_order_id.in_(ids))
                                 .order_by(WorkOrderSignature.id)):
        signatures[sg.work_order_id].append(sg)
    emps = _names([*(wo.engineer_id for wo in orders), *(c for cs in collaborators.values() for c in cs),
                   *(r.employee_id for rs in records.values() for r in rs)])
    out = []
    for wo in orders:
        fs = fees[wo.id]
        out.append({
            "id": wo.id, "ticket_id": wo.ticket_id, "status": wo.status, "engineer_id": wo.engineer_id,
            "engineer": emps[wo.engineer_id].name if wo.engineer_id in emps else None,
            "collaborators": [{"id": c, "name": emps[c].name} for c in collaborators[wo.id] if c in emps and c != wo.engineer_id],
            "planned_at": _iso(wo.planned_at), "started_at": _iso(wo.started_at), "completed_at": _iso(wo.completed_at),
            "summary": wo.summary, "auto_assigned": wo.auto_assigned, "accepted_at": _iso(wo.accepted_at),
            "arrived_at": _iso(wo.arrived_at), "arrival_checkin_id": wo.arrival_checkin_id,
            "arrival_distance_m": wo.arrival_distance_m,
            "signatures": [{"purpose": sg.purpose, "media_id": sg.media_id, "signer_name": sg.signer_name,
                            "signed_at": _iso(sg.signed_at)} for sg in signatures[wo.id]],
            "records": [{"id": r.id, "employee": emps[r.employee_id].name if r.employee_id in emps else None,
                         "visited_at": _iso(r.visited_at), "minutes": r.minutes, "note": r.note, "photo_ids": r.photo_ids}
                        for r in records[wo.id]],
            "parts": [{"id": p.id, "code": p.part_code, "name": p.part_name, "quantity": p.quantity, "status": p.status}
                      for p in parts[wo.id]],
            "fees": [{"id": f.id, "kind": f.kind, "item": f.item, "amount": float(f.amount), "note": f.note} for f in fs],
            "fee_total": round(sum(float(f.amount) for f in fs if f.kind == "fee"), 2),
            "income_total": round(sum(float(f.amount) for f in fs if f.kind == "income"), 2)})
    return out


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
    for wo_id in db.session.scalars(select(WorkOrderSignature.work_order_id).where(WorkOrderSignature.media_id == row.id)):
        if db.session.scalar(scoped_select(actor, WorkOrder).where(WorkOrder.id == wo_id)) is not None:
            return True
    return False


media.register_holder(_holds_photo)
