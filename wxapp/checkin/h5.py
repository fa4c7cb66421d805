"""The salesperson's check-in page inside WeChat (``/h5/checkin``) and the calls it makes.

The WeChat user is identified by OAuth; the first time, they sign in with their CRM
account once and that WeChat user is bound to their employee (``followers.bind_staff``).
Location comes from ``wx.getLocation`` (GCJ-02) inside WeChat, the browser's geolocation
(WGS-84) elsewhere, or — when both fail — the user's recent WeChat LOCATION event.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from pydantic import Field

from crm_core import jobs, media
from crm_core.db import db
from crm_core.errors import NotAuthenticated
from crm_core.field import checkins as svc
from crm_core.org.auth import authenticate
from crm_core.wechat import followers
from wxapp.auth import jssdk_client, staff_actor, staff_user_required, wechat_openid, wechat_user_required
from wxapp.checkin.api import CheckinIn, NearbyQuery
from wxapp.config import wechat_appid
from wxapp.extensions import login_throttle
from wxapp.openapi import Model, h5_api, parse_json_body, parse_query

bp = Blueprint("checkin_h5", __name__, url_prefix="/h5")


def _actor():
    actor = staff_actor()
    if actor is None:
        raise NotAuthenticated("请先用公司账号登录后再签到。", code="staff_login_required")
    return actor


@bp.get("/checkin")
@staff_user_required
def page():
    actor = staff_actor()
    from crm_core.org.settings import get_setting

    threshold = get_setting(actor.org_id, "checkin")["accuracy_threshold_m"] if actor else 200
    return render_template("h5/checkin.html", bound=actor is not None, name=actor.label if actor else None,
                           in_wechat=jssdk_client() is not None, accuracy_threshold=threshold)


class StaffLogin(Model):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


@h5_api.describe("/h5/api/staff/bind", "POST", summary="Staff: sign in once to bind this WeChat to the employee", tags=("staff",), body=StaffLogin)
@bp.post("/api/staff/bind")
@wechat_user_required
@login_throttle
def bind():
    body = parse_json_body(StaffLogin)
    user = authenticate(body.username, body.password)
    followers.bind_staff(wechat_appid(), wechat_openid(), user)
    db.session.commit()
    return jsonify({"bound": True, "employee_id": user.employee_id})


@h5_api.describe("/h5/api/checkins/nearby", "GET", summary="Customers near a position (or the last WeChat location)", tags=("staff",), query=NearbyQuery)
@bp.get("/api/checkins/nearby")
@staff_user_required
def nearby():
    """Near the given position, or — without ``lat``/``lng`` — near the user's recent WeChat location."""
    actor = _actor()
    if "lat" not in request.args and "lng" not in request.args:
        lat, lng, system, accuracy, _ = svc.recent_wechat_location(actor)
        return jsonify({"items": svc.nearby(actor, lat, lng, system), "location": {
            "lat": lat, "lng": lng, "coord_system": system, "accuracy_m": accuracy, "source": "wechat_event"}})
    q = parse_query(NearbyQuery)
    return jsonify({"items": svc.nearby(actor, q.lat, q.lng, q.coord_system, q.radius_m, q.limit)})


class H5Checkin(CheckinIn):
    photo_media_id: str | None = Field(default=None, max_length=128, description="wx.uploadImage serverId")


@h5_api.describe("/h5/api/checkins", "POST", summary="Check in or out (签到/签退)", tags=("staff",), body=H5Checkin, status=201)
@bp.post("/api/checkins")
@staff_user_required
def create():
    actor = _actor()
    body = parse_json_body(H5Checkin)
    data = body.model_dump()
    if body.photo_media_id and not body.photo_id:
        row = media.register_wechat_media(body.photo_media_id, "checkin", org_id=actor.org_id, employee_id=actor.employee_id)
        from wxapp.official_account.jobs import download_media

        jobs.enqueue(download_media, row.id)
        data["photo_id"] = row.id
    ci = svc.record(actor, data)
    db.session.commit()
    return jsonify(svc.to_dict(ci, body.coord_system)), 201


@h5_api.describe("/h5/api/checkins/today", "GET", summary="My check-ins today", tags=("staff",))
@bp.get("/api/checkins/today")
@staff_user_required
def today():
    return jsonify({"items": [_today_row(c) for c in svc.today(_actor())]})


def _today_row(c) -> dict:
    from crm_core.customers.models import Customer

    d = svc.to_dict(c)
    customer = db.session.get(Customer, c.customer_id) if c.customer_id else None
    d["customer_name"] = customer.name if customer else None
    return d


@h5_api.describe("/h5/api/checkins/photo", "POST", summary="Upload a check-in photo (multipart: file)", tags=("staff",), status=201)
@bp.post("/api/checkins/photo")
@staff_user_required
def upload_photo():
    """A photo taken on the page outside WeChat (``<input type=file capture>``)."""
    from wxapp.pages import photo_upload

    actor = _actor()
    return photo_upload("checkin", org_id=actor.org_id, employee_id=actor.employee_id)
