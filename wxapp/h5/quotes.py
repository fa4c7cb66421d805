"""The customer's quote page inside WeChat (#19 item 2): the quote a salesperson sent, read on the
phone with its lines and totals, accepted or declined there. Only the customer's verified WeChat
users see it (the follower bound to a contact of that customer); drafts never."""
from __future__ import annotations

from flask import jsonify, render_template

from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.sales import documents as svc
from crm_core.wechat.models import Follower
from wxapp.auth import wechat_openid, wechat_user_required
from wxapp.config import wechat_appid
from wxapp.h5 import bp
from wxapp.openapi import h5_api


def _follower() -> Follower | None:
    return db.session.scalars(db.select(Follower).where(Follower.appid == wechat_appid(),
                                                        Follower.openid == wechat_openid())).first()


def _verified() -> Follower:
    f = _follower()
    if f is None or f.contact_id is None:
        from crm_core.errors import PermissionDenied

        raise PermissionDenied("请先在「自助服务」中验证手机号，绑定您的客户信息后查看报价单。", code="verification_required")
    return f


@bp.get("/quotes/<int:quote_id>")
@wechat_user_required
def quote_page(quote_id: int):
    try:
        q = svc.customer_quote(_verified().customer_id, quote_id)
    except DomainError as exc:
        return render_template("h5/message.html", title="报价单", text=exc.message), exc.status
    from crm_core.org.models import Organization

    return render_template("h5/quote.html", q=svc.customer_quote_dict(q), customer=db.session.get(Customer, q.customer_id),
                           company=db.session.get(Organization, q.org_id).name)


def _answer(quote_id: int, accept: bool):
    from crm_core.customers.models import Contact
    from wxapp import idempotency

    f = _verified()
    contact = db.session.get(Contact, f.contact_id)
    q = svc.customer_answer(f.customer_id, quote_id, accept, f"{contact.name if contact else '客户'}（微信确认）")
    return idempotency.commit(jsonify(svc.customer_quote_dict(q)))


@h5_api.describe("/h5/api/quotes/<int:quote_id>/accept", "POST", summary="The customer accepts the quote sent to them",
                 tags=("sales",))
@bp.post("/api/quotes/<int:quote_id>/accept")
@wechat_user_required
def accept_quote(quote_id: int):
    return _answer(quote_id, True)


@h5_api.describe("/h5/api/quotes/<int:quote_id>/reject", "POST", summary="The customer declines the quote", tags=("sales",))
@bp.post("/api/quotes/<int:quote_id>/reject")
@wechat_user_required
def reject_quote(quote_id: int):
    return _answer(quote_id, False)
