"""Followers (粉丝): follow, unfollow, re-follow, location, binding to a contact."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from crm_core.clock import utcnow
from crm_core.customers.models import Contact
from crm_core.db import db
from crm_core.errors import NotFound
from crm_core.wechat.models import Follower

CS_WINDOW = timedelta(hours=48)  # customer-service messages only this long after the user's last interaction


def get_or_create(appid: str, openid: str, org_id: int | None = None) -> Follower:
    follower = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == openid)).first()
    if follower is None:
        follower = Follower(appid=appid, openid=openid, org_id=org_id, subscribed=False, subscribe_count=0)
        db.session.add(follower)
        db.session.flush()
    return follower


def find(appid: str, openid: str) -> Follower | None:
    return db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == openid)).first()


def record_interaction(follower: Follower) -> None:
    follower.last_interaction_at = utcnow()


def follow(follower: Follower, scene: str | None) -> bool:
    """A (re-)follow. Returns True when this is the first follow ever."""
    now = utcnow()
    first = follower.first_subscribed_at is None
    follower.subscribed, follower.subscribed_at, follower.unsubscribed_at = True, now, None
    follower.subscribe_count = (follower.subscribe_count or 0) + 1
    follower.scene = scene
    if first:
        follower.first_subscribed_at, follower.first_scene = now, scene
    return first


def unfollow(follower: Follower) -> None:
    follower.subscribed, follower.unsubscribed_at = False, utcnow()


def record_location(follower: Follower, lat: float, lng: float, precision: float | None) -> None:
    follower.last_lat, follower.last_lng, follower.last_precision = lat, lng, precision
    follower.last_location_at = utcnow()


def in_cs_window(follower: Follower | None) -> bool:
    return bool(follower and follower.last_interaction_at and utcnow() - follower.last_interaction_at < CS_WINDOW)


def bind_contact(follower: Follower, contact: Contact) -> Follower:
    """Bind a verified WeChat user to a contact (and its customer)."""
    follower.contact_id, follower.customer_id, follower.bound_at = contact.id, contact.customer_id, utcnow()
    follower.org_id = contact.org_id
    db.session.flush()
    return follower


def unbind_contact(actor, appid: str, openid: str) -> Follower:
    """Staff undo a binding (a wrong phone, a phone that changed hands): the WeChat user verifies again."""
    actor.require("follower", "edit")
    follower = require(appid, openid)
    if follower.org_id is not None and follower.org_id != actor.org_id:
        raise NotFound("粉丝不存在。")
    follower.contact_id = follower.customer_id = follower.bound_at = None
    db.session.flush()
    return follower


def follower_dict(f: Follower) -> dict:
    iso = lambda d: d.isoformat() + "Z" if d else None  # noqa: E731
    return {"openid": f.openid, "appid": f.appid, "subscribed": f.subscribed, "scene": f.scene, "first_scene": f.first_scene,
            "subscribed_at": iso(f.subscribed_at), "unsubscribed_at": iso(f.unsubscribed_at),
            "first_subscribed_at": iso(f.first_subscribed_at), "subscribe_count": f.subscribe_count,
            "nickname": f.nickname, "avatar_url": f.avatar_url, "contact_id": f.contact_id, "customer_id": f.customer_id,
            "last_interaction_at": iso(f.last_interaction_at), "in_service_window": in_cs_window(f),
            "location": ({"lat": f.last_lat, "lng": f.last_lng, "precision": f.last_precision, "at": iso(f.last_location_at)}
                         if f.last_location_at else None)}


def require(appid: str, openid: str) -> Follower:
    f = find(appid, openid)
    if f is None:
        raise NotFound("粉丝不存在。")
    return f


def search(appid: str, q: str | None = None, subscribed: bool | None = None):
    """The followers query behind the console list and the API: by openid or nickname."""
    stmt = select(Follower).where(Follower.appid == appid)
    if q:
        stmt = stmt.where(or_(Follower.openid.like(f"%{q}%"), Follower.nickname.like(f"%{q}%")))
    if subscribed is not None:
        stmt = stmt.where(Follower.subscribed.is_(subscribed))
    return stmt


def bind_staff(appid: str, openid: str, user) -> Follower:
    """A member of staff signed in on their phone: this WeChat user acts as their employee
    on staff pages (check-ins) and receives their staff notices."""
    from crm_core.errors import ValidationFailed

    if user.employee_id is None:
        raise ValidationFailed("该账号没有关联职员，不能在手机上签到。请联系管理员。", code="no_employee_linked")
    follower = get_or_create(appid, openid, org_id=user.org_id)
    follower.org_id = follower.org_id or user.org_id
    follower.employee_id, follower.staff_bound_at = user.employee_id, utcnow()
    db.session.flush()
    return follower


def staff_user(appid: str, openid: str):
    """The active user of the employee this WeChat user is bound to, or None."""
    from crm_core.org.models import User

    follower = find(appid, openid)
    if follower is None or follower.employee_id is None:
        return None
    return db.session.scalars(select(User).where(User.employee_id == follower.employee_id, User.active.is_(True))
                              .order_by(User.id)).first()


def touch_many(items: list[dict]) -> None:
    """Bulk follower bookkeeping for the callback's fast path and its batch writer: create
    unknown followers and set their last interaction (and last reported location), one
    statement per kind. ``items``: dicts with appid, openid, at, and optionally lat, lng,
    precision. Not audited: these are the high-frequency columns ``Follower`` ignores anyway."""
    from crm_core.db import insert_for

    latest: dict[tuple[str, str], dict] = {}
    for it in items:
        cur = latest.setdefault((it["appid"], it["openid"]), {"at": it["at"], "loc": None})
        cur["at"] = max(cur["at"], it["at"])
        if it.get("lat") is not None and (cur["loc"] is None or it["at"] >= cur["loc"]["at"]):
            cur["loc"] = it
    plain, located = [], []
    for (appid, openid), cur in latest.items():
        row = {"appid": appid, "openid": openid, "subscribed": False, "subscribe_count": 0,
               "last_interaction_at": cur["at"], "created_at": cur["at"], "updated_at": cur["at"]}
        loc = cur["loc"]
        if loc is not None:
            row.update(last_lat=loc["lat"], last_lng=loc["lng"], last_precision=loc.get("precision"),
                       last_location_at=loc["at"])
            located.append(row)
        else:
            plain.append(row)
    for rows, cols in ((plain, ("last_interaction_at",)),
                       (located, ("last_interaction_at", "last_lat", "last_lng", "last_precision", "last_location_at"))):
        if not rows:
            continue
        stmt = insert_for(Follower.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["appid", "openid"],
                                          set_={c: getattr(stmt.excluded, c) for c in cols})
        db.session.execute(stmt, rows)
