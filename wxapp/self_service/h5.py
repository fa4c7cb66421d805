"""The customer's pages inside WeChat (自助式服务): verify, new request, my requests,
progress, rating — and the calls they make (``/h5/api/...``, session + CSRF header).
A customer only ever reaches their own tickets: every id goes through ``tickets.own_ticket``."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, jsonify, render_template, request
from pydantic import Field

from crm_core import jobs, media
from crm_core.clock import local_today
from crm_core.customers.models import ProductArchive
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.org.settings import org_timezone
from crm_core.service import queries, verification
from crm_core.service import tickets as svc
from crm_core.service.models import TICKET_KINDS
from crm_core.wechat.models import Follower
from wxapp import idempotency
from wxapp.auth import wechat_openid, wechat_user_required
from wxapp.config import wechat_appid, wechat_org_id
from wxapp.openapi import Model, UtcDateTime, h5_api, parse_json_body, parse_query

bp = Blueprint("service_h5", __name__, url_prefix="/h5")


def _org_id() -> int:
    org_id = wechat_org_id()
    if org_id is None:
        raise DomainError("服务暂不可用（未配置组织）。", code="no_organization")
    return org_id


def _follower() -> Follower | None:
    return db.session.scalars(db.select(Follower).where(Follower.appid == wechat_appid(),
                                                        Follower.openid == wechat_openid())).first()


def _bound() -> Follower:
    return svc.bound_follower(wechat_appid(), wechat_openid())


# --- pages ---------------------------------------------------------------------------------
@bp.get("/service")
@wechat_user_required
def home():
    f = _follower()
    reverify = request.args.get("reverify") == "1"  # 更换手机号: verify again; the new phone moves the binding
    return render_template("h5/service.html", bound=bool(f and f.contact_id) and not reverify, view="list",
                           reverify=reverify)


@bp.get("/service/new")
@wechat_user_required
def new():
    f = _follower()
    phone = None
    if f and f.contact_id:  # the verified phone, so the customer need not type it again
        from crm_core.customers.models import Contact

        contact = db.session.get(Contact, f.contact_id)
        phone = contact.phone if contact else None
    return render_template("h5/service.html", bound=bool(f and f.contact_id), view="new", contact_phone=phone,
                           kind=request.args.get("kind") if request.args.get("kind") in TICKET_KINDS else "repair")


@bp.get("/service/tickets/<int:ticket_id>")
@wechat_user_required
def detail(ticket_id: int):
    f = _follower()
    return render_template("h5/service.html", bound=bool(f and f.contact_id), view="detail", ticket_id=ticket_id)


@bp.get("/service/products")
@wechat_user_required
def products_page():
    f = _follower()
    return render_template("h5/service.html", bound=bool(f and f.contact_id), view="products")


# --- verification ------------------------------------------------------------------------------
class VerifyStart(Model):
    phone: str = Field(min_length=5, max_length=32)


class VerifyConfirm(Model):
    phone: str = Field(min_length=5, max_length=32)
    code: str = Field(min_length=4, max_length=8)


@h5_api.describe("/h5/api/verify/start", "POST", summary="Send a verification code to a phone (bind WeChat to a contact)", tags=("self-service",), body=VerifyStart)
@bp.post("/api/verify/start")
@wechat_user_required
def verify_start():
    body = parse_json_body(VerifyStart)
    result = verification.start(wechat_openid(), body.phone)
    db.session.commit()
    return jsonify(result)


@h5_api.describe("/h5/api/verify/confirm", "POST", summary="Confirm the code: the WeChat user is bound to the contact", tags=("self-service",), body=VerifyConfirm)
@bp.post("/api/verify/confirm")
@wechat_user_required
def verify_confirm():
    body = parse_json_body(VerifyConfirm)
    try:
        f = verification.confirm(_org_id(), wechat_appid(), wechat_openid(), body.phone, body.code)
    except verification.WrongCode:
        db.session.commit()  # the failed attempt counts
        raise
    db.session.commit()
    from crm_core.customers.models import Contact

    contact = db.session.get(Contact, f.contact_id)
    return jsonify({"bound": True, "contact_id": f.contact_id, "customer_id": f.customer_id, "name": contact.name})


# --- products and tickets ----------------------------------------------------------------------
@h5_api.describe("/h5/api/products", "GET", summary="The customer's product archives with warranty_until", tags=("self-service",))
@bp.get("/api/products")
@wechat_user_required
def products():
    f = _bound()
    rows = db.session.scalars(db.select(ProductArchive).where(ProductArchive.customer_id == f.customer_id)
                              .order_by(ProductArchive.sold_on.desc())).all()
    today = local_today(org_timezone(f.org_id))
    return jsonify({"items": [{"id": a.id, "serial_no": a.serial_no, "product_id": a.product_id, "product_name": a.product.name,
                               "model": a.product.model, "sold_on": a.sold_on.isoformat(),
                               "warranty_until": a.warranty_until.isoformat(), "in_warranty": a.warranty_until >= today}
                              for a in rows]})


class TicketIn(Model):
    kind: Literal[TICKET_KINDS]  # type: ignore[valid-type]
    description: str = Field(min_length=1, max_length=2000)
    product_archive_id: int | None = None
    product_id: int | None = None
    product_note: str | None = Field(default=None, max_length=200)
    required_by: UtcDateTime | None = None
    contact_phone: str | None = Field(default=None, max_length=32)
    photo_ids: list[int] = Field(default_factory=list, max_length=9, description="ids from POST /h5/api/photos")
    photo_media_ids: list[str] = Field(default_factory=list, max_length=9, description="wx.uploadImage serverIds")


@h5_api.describe("/h5/api/tickets", "POST", summary="Submit a service request (报修/投诉/建议/咨询)", tags=("self-service",), body=TicketIn, status=201)
@bp.post("/api/tickets")
@wechat_user_required
def create_ticket():
    f = _bound()
    body = parse_json_body(TicketIn)
    data = body.model_dump()
    if len(body.photo_ids) + len(body.photo_media_ids) > svc.MAX_PHOTOS:
        from crm_core.errors import ValidationFailed

        raise ValidationFailed(f"最多上传 {svc.MAX_PHOTOS} 张照片。", fields={"photo_ids": "too_many"})
    pending = []
    for media_id in body.photo_media_ids:  # downloaded from WeChat by a job
        row = media.register_wechat_media(media_id, "ticket", org_id=f.org_id, openid=f.openid)
        pending.append(row.id)
    data["photo_ids"] = list(body.photo_ids) + pending
    t = svc.submit(f, data)
    from wxapp.official_account.jobs import download_media

    for media_row_id in pending:
        jobs.enqueue(download_media, media_row_id)
    answer = jsonify({"id": t.id, "number": t.number, "status": t.status, "status_label": svc.CUSTOMER_LABELS[t.status]})
    answer.status_code = 201
    return idempotency.commit(answer)


class ListQuery(Model):
    status: Literal["open", "completed", "closed", "cancelled"] | None = None
    page: int = Field(default=1, ge=1)


@h5_api.describe("/h5/api/tickets", "GET", summary="My service requests", tags=("self-service",), query=ListQuery)
@bp.get("/api/tickets")
@wechat_user_required
def list_tickets():
    f = _follower()
    if f is None:
        return jsonify({"items": [], "total": 0})
    q = parse_query(ListQuery)
    rows, total = svc.customer_tickets(f, status=q.status, page=q.page)
    return jsonify({"items": [{"id": t.id, "number": t.number, "kind": t.kind, "kind_label": svc.KIND_LABELS[t.kind],
                               "status": t.status, "status_label": svc.CUSTOMER_LABELS[t.status],
                               "description": t.description[:80], "created_at": t.created_at.isoformat() + "Z"}
                              for t in rows], "total": total})


@h5_api.describe("/h5/api/tickets/<int:ticket_id>", "GET", summary="One of my requests with its timeline and handler", tags=("self-service",))
@bp.get("/api/tickets/<int:ticket_id>")
@wechat_user_required
def get_ticket(ticket_id: int):
    f = _follower()
    if f is None:
        from crm_core.errors import NotFound

        raise NotFound("服务请求不存在。")
    return jsonify(queries.ticket_dict(svc.own_ticket(f, ticket_id), for_customer=True))


class RatingIn(Model):
    score: int = Field(ge=1, le=5)
    tags: list[str] = Field(default_factory=list, max_length=10)
    comment: str | None = Field(default=None, max_length=1000)


@h5_api.describe("/h5/api/tickets/<int:ticket_id>/rating", "POST", summary="Rate a completed request (once)", tags=("self-service",), body=RatingIn, status=201)
@bp.post("/api/tickets/<int:ticket_id>/rating")
@wechat_user_required
def rate(ticket_id: int):
    f = _bound()
    body = parse_json_body(RatingIn)
    r = svc.rate(f, ticket_id, body.score, body.tags, body.comment)
    db.session.commit()
    return jsonify({"ticket_id": ticket_id, "score": r.score, "tags": r.tags, "comment": r.comment}), 201


class ReasonIn(Model):
    reason: str | None = Field(default=None, max_length=500)


@h5_api.describe("/h5/api/tickets/<int:ticket_id>/cancel", "POST", summary="Cancel my request", tags=("self-service",), body=ReasonIn)
@bp.post("/api/tickets/<int:ticket_id>/cancel")
@wechat_user_required
def cancel(ticket_id: int):
    t = svc.customer_cancel(_bound(), ticket_id, parse_json_body(ReasonIn).reason)
    db.session.commit()
    return jsonify(queries.ticket_dict(t, for_customer=True))


@h5_api.describe("/h5/api/tickets/<int:ticket_id>/reopen", "POST", summary="Reopen a completed request", tags=("self-service",), body=ReasonIn)
@bp.post("/api/tickets/<int:ticket_id>/reopen")
@wechat_user_required
def reopen(ticket_id: int):
    t = svc.customer_reopen(_bound(), ticket_id, parse_json_body(ReasonIn).reason or "")
    db.session.commit()
    return jsonify(queries.ticket_dict(t, for_customer=True))


@h5_api.describe("/h5/api/photos", "POST", summary="Upload a photo (multipart: file)", tags=("self-service",), status=201)
@bp.post("/api/photos")
@wechat_user_required
def upload_photo():
    """A photo chosen on the page outside WeChat: checked, cleaned (EXIF removed), stored."""
    from wxapp.pages import photo_upload

    f = _bound()
    return photo_upload("ticket", org_id=f.org_id, openid=f.openid)


@h5_api.describe("/h5/api/photos/<int:photo_id>", "GET", summary="A photo I uploaded", tags=("self-service",))
@bp.get("/api/photos/<int:photo_id>")
@wechat_user_required
def photo(photo_id: int):
    """A photo of one of the customer's own tickets (or one they uploaded)."""
    from flask import Response

    from crm_core.errors import NotFound
    from crm_core.media import MediaFile

    f = _follower()
    row = db.session.get(MediaFile, photo_id)
    allowed = row is not None and f is not None and (row.uploaded_by_openid == f.openid)
    if not allowed:
        raise NotFound("图片不存在。")
    data, ctype = media.read(row, thumb=request.args.get("thumb") == "1")
    return Response(data, mimetype=ctype, headers={"Cache-Control": "private, max-age=86400"})
