"""The staff phone workbench (移动工作台, ``/h5/staff/``): WeUI pages inside WeChat and the calls they make.

The WeChat user is the employee they signed in as once (``followers.bind_staff``, the same binding as the check-in
page). Every action calls the same service function as the console and the API (``crm_core.service.work_orders``,
``crm_core.field.checkins``, and the API's own helpers for what combines two of them), so a page holds no rule.
"""
from __future__ import annotations

import functools
from datetime import datetime

from flask import Blueprint, jsonify, render_template, request, url_for
from pydantic import Field
from sqlalchemy import select

from crm_core import jobs, media
from crm_core.activities.activities import my_day
from crm_core.clock import local_today, to_local
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.errors import NotAuthenticated
from crm_core.geo import from_wgs84
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import org_timezone
from crm_core.sales.approvals import inbox as approval_inbox
from crm_core.service import queries, work_orders
from crm_core.service.models import StockItem, Ticket, WorkOrder
from crm_core.service.tickets import WO_OPEN
from wxapp import idempotency
from wxapp.auth import jssdk_client, staff_actor, staff_user_required
from wxapp.openapi import h5_api, parse_json_body
from wxapp.self_service.api import ArrivalIn, CompleteIn, RecordIn, arrive, complete

bp = Blueprint("staff_h5", __name__, url_prefix="/h5")

TABS = (("today", "今天"), ("upcoming", "待上门"), ("done", "已完成"))


def staff_page(view):
    """A staff page: the WeChat user must be bound to an employee; the first time they sign in on the page."""

    @functools.wraps(view)
    @staff_user_required
    def wrapper(*args, **kwargs):
        actor = staff_actor()
        if actor is None:
            return render_template("h5/staff/bind.html", next=request.full_path.rstrip("?"))
        return view(actor, *args, **kwargs)

    return wrapper


def _actor() -> Actor:
    actor = staff_actor()
    if actor is None:
        raise NotAuthenticated("请先用公司账号登录移动工作台。", code="staff_login_required")
    return actor


@bp.get("/staff/")
@staff_page
def home(actor: Actor):
    """The workbench: what is waiting for me today, and the tools of my roles."""
    cards = _cards(actor)
    counts = {tab: len(rows) for tab, rows in cards.items()}
    can_service = actor.can("work_order", "view")
    from wxapp.staff.team import leads_a_team  # team.py builds on this module's blueprint

    day = my_day(actor) if actor.can("activity", "view") else None
    return render_template("h5/staff/home.html", actor=actor, counts=counts, can_service=can_service, day=day,
                           can_checkin=actor.can("checkin", "create"), can_customers=actor.can("customer", "create"),
                           team=leads_a_team(actor), desk=_waiting(actor),
                           approvals=len(approval_inbox(actor)) if actor.employee_id else 0)


def _waiting(actor: Actor) -> int | None:
    """How many followers wait for a person in 在线客服 (None: not an agent)."""
    if not actor.can("follower", "edit"):
        return None
    from crm_core.wechat.conversations import list_conversations
    from wxapp.config import wechat_appid

    return list_conversations(actor, wechat_appid(), status="waiting", per_page=1)[1]


@bp.get("/staff/work-orders")
@staff_page
def work_order_list(actor: Actor):
    tab = request.args.get("tab", "today")
    if tab not in dict(TABS):
        tab = "today"
    cards = _cards(actor)
    return render_template("h5/staff/work_orders.html", tabs=TABS, tab=tab, cards=cards[tab],
                           counts={t: len(rows) for t, rows in cards.items()})


def _cards(actor: Actor) -> dict[str, list[dict]]:
    """My work orders as the list shows them: today (planned today, overdue or not yet planned), upcoming, done."""
    if not actor.can("work_order", "view"):
        return {"today": [], "upcoming": [], "done": []}
    # every open one (an engineer has tens at most), and the latest finished ones
    open_rows, _ = queries.my_work_orders(actor, open_only=True, page=1, per_page=100)
    recent, _ = queries.my_work_orders(actor, open_only=False, page=1, per_page=60)
    rows = open_rows + [w for w in recent if w.status not in WO_OPEN][:30]
    tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.id.in_({w.ticket_id for w in rows})))} if rows else {}
    t_dicts = {d["id"]: d for d in queries.ticket_dicts(list(tickets.values()))} if tickets else {}
    customers = {c.id: c for c in db.session.scalars(select(Customer).where(
        Customer.id.in_({t.customer_id for t in tickets.values()})))} if tickets else {}
    tz = org_timezone(actor.org_id)
    today = local_today(tz)
    out: dict[str, list[dict]] = {"today": [], "upcoming": [], "done": []}
    for wo in rows:
        t = t_dicts[wo.ticket_id]
        c = customers.get(tickets[wo.ticket_id].customer_id)
        card = {"id": wo.id, "status": wo.status, "number": t["number"], "kind_label": t["kind_label"],
                "priority": t["priority"], "customer": c.name if c else "", "address": c.address if c else None,
                "product": t["product_name"], "description": t["description"], "planned_at": wo.planned_at,
                "accepted": wo.accepted_at is not None, "arrived": wo.arrived_at is not None,
                "due": t["sla"]["resolution_due"], "required_by": t["required_by"], "completed_at": wo.completed_at}
        if wo.status not in WO_OPEN:
            out["done"].append(card)
        elif wo.planned_at is not None and to_local(wo.planned_at, tz).date() > today:
            out["upcoming"].append(card)
        else:
            out["today"].append(card)
    out["today"].sort(key=lambda c: (c["planned_at"] or datetime.max, c["due"]))
    out["upcoming"].sort(key=lambda c: c["planned_at"])
    return out


@bp.get("/staff/work-orders/<int:wo_id>")
@staff_page
def work_order_page(actor: Actor, wo_id: int):
    wo = get_visible(actor, WorkOrder, wo_id)
    ticket = db.session.get(Ticket, wo.ticket_id)
    t = queries.ticket_dict(ticket)
    w = queries.work_order_dict(wo)
    customer = db.session.get(Customer, ticket.customer_id)
    contact = db.session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    site = None
    if customer.site_wgs_lat is not None:  # map apps in China (Tencent, AMap) and wx.openLocation take GCJ-02
        lat, lng = from_wgs84(customer.site_wgs_lat, customer.site_wgs_lng, "gcj02")
        site = {"lat": round(lat, 6), "lng": round(lng, 6)}
    stock = db.session.scalars(select(StockItem).where(StockItem.org_id == actor.org_id).order_by(StockItem.code).limit(500)).all()
    return render_template("h5/staff/work_order.html", wo=w, t=t, customer=customer, contact=contact, site=site,
                           phone=ticket.contact_phone or (contact.phone if contact else None) or customer.phone,
                           stock=stock, open=wo.status in WO_OPEN, signature_needed=work_orders.signature_needed(wo),
                           is_engineer=wo.engineer_id == actor.employee_id, in_wechat=jssdk_client() is not None,
                           back=url_for("staff_h5.work_order_list"))


def _json(data, status: int = 200):
    """``data`` as the answer, committed with the request's work and its idempotent answer."""
    resp = jsonify(data)
    resp.status_code = status
    return idempotency.commit(resp)


def _commit(wo: WorkOrder, status: int):
    """The work order as it now is."""
    return _json(queries.work_order_dict(wo), status)


@h5_api.describe("/h5/api/staff/work-orders/<int:wo_id>/accept", "POST", summary="Engineer: accept (接单)", tags=("staff",))
@bp.post("/api/staff/work-orders/<int:wo_id>/accept")
@staff_user_required
def accept(wo_id: int):
    actor = _actor()
    return _commit(work_orders.accept(actor, wo_id), 200)


class PhoneArrivalIn(ArrivalIn):
    photo_media_id: str | None = Field(default=None, max_length=128, description="wx.uploadImage serverId")


@h5_api.describe("/h5/api/staff/work-orders/<int:wo_id>/arrival", "POST", summary="Engineer: arrival check-in at the customer's site",
                 tags=("staff",), body=PhoneArrivalIn, status=201)
@bp.post("/api/staff/work-orders/<int:wo_id>/arrival")
@staff_user_required
def arrival(wo_id: int):
    from crm_core.field import checkins

    actor = _actor()
    body = parse_json_body(PhoneArrivalIn)
    if body.photo_media_id and not body.photo_id:
        body.photo_id = _wechat_photos(actor, [body.photo_media_id], "checkin")[0]
    ci = arrive(actor, wo_id, ArrivalIn(**body.model_dump(exclude={"photo_media_id"})))
    return _json({"checkin": checkins.to_dict(ci), "work_order": queries.work_order_dict(db.session.get(WorkOrder, wo_id))}, 201)


class PhoneRecordIn(RecordIn):
    photo_media_ids: list[str] = Field(default_factory=list, max_length=9, description="wx.uploadImage serverIds")


@h5_api.describe("/h5/api/staff/work-orders/<int:wo_id>/records", "POST", summary="Engineer: a handling record with photos, parts, fees",
                 tags=("staff",), body=PhoneRecordIn, status=201)
@bp.post("/api/staff/work-orders/<int:wo_id>/records")
@staff_user_required
def add_record(wo_id: int):
    actor = _actor()
    body = parse_json_body(PhoneRecordIn)
    data = body.model_dump(exclude={"photo_media_ids"})
    data["photo_ids"] = [*data["photo_ids"], *_wechat_photos(actor, body.photo_media_ids, "work_order")]
    work_orders.add_record(actor, wo_id, data)
    return _commit(db.session.get(WorkOrder, wo_id), 201)


@h5_api.describe("/h5/api/staff/work-orders/<int:wo_id>/expense", "POST", summary="Engineer: my unclaimed fees of the work order as a 费用申请",
                 tags=("staff",), status=201)
@bp.post("/api/staff/work-orders/<int:wo_id>/expense")
@staff_user_required
def claim_fees(wo_id: int):
    from crm_core.sales.expenses import expense_dict

    return _json(expense_dict(work_orders.expense_from_work_order(_actor(), wo_id)), 201)


@h5_api.describe("/h5/api/staff/work-orders/<int:wo_id>/complete", "POST", summary="Engineer: complete, with the customer's signature",
                 tags=("staff",), body=CompleteIn)
@bp.post("/api/staff/work-orders/<int:wo_id>/complete")
@staff_user_required
def complete_work_order(wo_id: int):
    actor = _actor()
    wo = complete(actor, wo_id, parse_json_body(CompleteIn))
    return _commit(wo, 200)


@h5_api.describe("/h5/api/staff/uploads", "POST", summary="Upload a photo or a signature from the phone (multipart: file, purpose)",
                 tags=("staff",), status=201)
@bp.post("/api/staff/uploads")
@staff_user_required
def upload():
    """A photo taken on the page outside WeChat (``<input type=file capture>``), or the signature pad's PNG."""
    from wxapp.pages import photo_upload

    actor = _actor()
    purpose = request.form.get("purpose", "work_order")
    return photo_upload("signature" if purpose == "signature" else "work_order", org_id=actor.org_id,
                        employee_id=actor.employee_id)


def _wechat_photos(actor: Actor, media_ids: list[str], purpose: str) -> list[int]:
    """Photos chosen with wx.chooseImage and uploaded to WeChat: recorded now, downloaded by a job."""
    from wxapp.official_account.jobs import download_media

    ids = []
    for media_id in media_ids:
        row = media.register_wechat_media(media_id, purpose, org_id=actor.org_id, employee_id=actor.employee_id)
        jobs.enqueue(download_media, row.id)
        ids.append(row.id)
    return ids


def work_order_link(payload: dict) -> str | None:
    """Staff notices about a work order open its phone page."""
    return f"/h5/staff/work-orders/{payload['work_order_id']}" if payload.get("work_order_id") else None



@h5_api.describe("/h5/api/staff/media/<int:media_id>", "GET", summary="A photo or signature the employee may see (?thumb=1)",
                 tags=("staff",))
@bp.get("/api/staff/media/<int:media_id>")
@staff_user_required
def staff_media(media_id: int):
    """A photo or signature the employee may see (the customer's photos on the ticket, the handling records')."""
    from flask import Response

    row = media.visible_media(_actor(), media_id)
    data, content_type = media.read(row, thumb=request.args.get("thumb") == "1")
    resp = Response(data, mimetype=content_type)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    return resp
