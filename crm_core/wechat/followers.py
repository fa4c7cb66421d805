"""Followers (粉丝): follow, unfollow, re-follow, location, binding to a contact."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from crm_core.clock import utcnow
from crm_core.customers.models import Contact
from crm_core.db import db
from crm_core.errors import NotFound
from crm_core.wechat.models import Follower

CS_WINDOW = timedelta(hours=48)  # the longest grant: a message the user sent

# What a user's action allows (WeChat's rules since 2023, docs/wechat.md): messages of these
# types grant 5 customer-service messages within 48 hours; these events 3 within a minute.
# Everything else (LOCATION, VIEW, job-finish events, unsubscribe...) grants nothing.
MESSAGE_GRANT = (CS_WINDOW, 5)
EVENT_GRANT = (timedelta(minutes=1), 3)
OPENING_MESSAGES = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "file"})
OPENING_EVENTS = frozenset({"click", "scancode_push", "scancode_waitmsg", "subscribe", "scan"})


def get_or_create(appid: str, openid: str, org_id: int | None = None) -> Follower:
    follower = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == openid)).first()
    if follower is None:
        follower = Follower(appid=appid, openid=openid, org_id=org_id, subscribed=False, subscribe_count=0)
        db.session.add(follower)
        db.session.flush()
    return follower


def find(appid: str, openid: str) -> Follower | None:
    return db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == openid)).first()


def record_interaction(follower: Follower, msg_type: str | None = None, event: str | None = None,
                       sent_at=None) -> None:
    """The user did something: their last interaction, and the quota it opens, if any. ``sent_at``
    (the message's CreateTime): a message handled after a later unfollow does not re-subscribe."""
    now = utcnow()
    follower.last_interaction_at = now
    grant = opened_grant(msg_type, event)
    later_unfollow = follower.unsubscribed_at is not None and sent_at is not None and follower.unsubscribed_at > sent_at
    if grant and not follower.subscribed and not later_unfollow:  # only followers can message or tap the menu
        follower.subscribed = True
    if grant == "message":
        follower.window_message_at, follower.window_message_used = now, 0
    elif grant == "event":
        follower.window_event_at, follower.window_event_used = now, 0


def opened_grant(msg_type: str | None, event: str | None) -> str | None:
    """Which grant a message or event opens: "message", "event" or None."""
    if msg_type == "event":
        return "event" if (event or "").lower() in OPENING_EVENTS else None
    return "message" if msg_type in OPENING_MESSAGES else None


def cs_quota(follower: Follower | None, now=None) -> dict:
    """How many customer-service messages WeChat would still take for this follower, until when,
    and which action opened them: ``{remaining, until, opened_by}``. A message sent counts against
    every grant still open (as the sandbox counts it), so what is left is the larger remainder."""
    now = now or utcnow()
    out = {"remaining": 0, "until": None, "opened_by": None}
    if follower is None or not follower.subscribed or follower.invalid_at is not None:
        return out
    for kind, at, used, (span, allowed) in (
            ("event", follower.window_event_at, follower.window_event_used, EVENT_GRANT),
            ("message", follower.window_message_at, follower.window_message_used, MESSAGE_GRANT)):
        left = allowed - (used or 0)
        if at is not None and now - at < span and left > out["remaining"]:
            out.update(remaining=left, until=at + span, opened_by=kind)
    return out


def use_cs_quota(follower_id: int, now=None) -> bool:
    """Take one customer-service message from the follower's quota — one conditional UPDATE that
    counts it against every open grant, so concurrent senders never take more than WeChat allows.
    False: no grant has room left."""
    from sqlalchemy import case, update

    now = now or utcnow()
    (ev_span, ev_allowed), (msg_span, msg_allowed) = EVENT_GRANT, MESSAGE_GRANT
    ev_open = Follower.window_event_at > now - ev_span
    msg_open = Follower.window_message_at > now - msg_span
    res = db.session.execute(update(Follower).where(
        Follower.id == follower_id, Follower.subscribed.is_(True), Follower.invalid_at.is_(None),
        (ev_open & (Follower.window_event_used < ev_allowed)) | (msg_open & (Follower.window_message_used < msg_allowed)))
        .values(window_event_used=case((ev_open, Follower.window_event_used + 1), else_=Follower.window_event_used),
                window_message_used=case((msg_open, Follower.window_message_used + 1), else_=Follower.window_message_used))
        .execution_options(synchronize_session=False))
    return bool(res.rowcount)


def give_back_cs_quota(follower_id: int) -> None:
    """A customer-service message that provably did not go out (WeChat refused it, or the
    connection never opened) used nothing: the grants it was counted against get it back."""
    from sqlalchemy import case, update

    db.session.execute(update(Follower).where(Follower.id == follower_id).values(
        window_event_used=case((Follower.window_event_used > 0, Follower.window_event_used - 1), else_=0),
        window_message_used=case((Follower.window_message_used > 0, Follower.window_message_used - 1), else_=0))
        .execution_options(synchronize_session=False))


def mark_unsubscribed(appid: str, openid: str) -> None:
    """WeChat says the user does not follow (43004): the follower row agrees."""
    f = find(appid, openid)
    if f is not None and f.subscribed:
        unfollow(f)


def mark_invalid(appid: str, openid: str) -> None:
    """WeChat says the openid is not one of this account's (40003): nothing more is sent to it."""
    f = get_or_create(appid, openid)
    f.invalid_at = f.invalid_at or utcnow()


def display_name(follower: Follower | None, openid: str | None = None) -> str:
    """How a follower is named (user/info has returned no nickname since 2021-12-27): the bound
    contact's name, else 微信用户 and the openid's last four characters."""
    if follower is not None and follower.contact_id:
        contact = db.session.get(Contact, follower.contact_id)
        if contact is not None and contact.name:
            return contact.name
    oid = openid or (follower.openid if follower is not None else "") or ""
    return f"微信用户{oid[-4:]}"


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


def display_names(openids) -> dict[str, str]:
    """:func:`display_name` for many openids at once (rankings, share trees, lists)."""
    openids = list(dict.fromkeys(o for o in openids if o))
    if not openids:
        return {}
    rows = db.session.execute(select(Follower.openid, Contact.name).join(Contact, Contact.id == Follower.contact_id,
                                                                         isouter=True)
                              .where(Follower.openid.in_(openids))).all()
    named = {o: n for o, n in rows if n}
    return {o: named.get(o) or f"微信用户{o[-4:]}" for o in openids}


def in_cs_window(follower: Follower | None) -> bool:
    """WeChat would take a customer-service message for this follower now."""
    return cs_quota(follower)["remaining"] > 0


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
            "display_name": display_name(f), "invalid": f.invalid_at is not None,
            "service_window": {**(q := cs_quota(f)), "until": iso(q["until"])},
            "location": ({"lat": f.last_lat, "lng": f.last_lng, "precision": f.last_precision, "at": iso(f.last_location_at)}
                         if f.last_location_at else None)}


def require(appid: str, openid: str) -> Follower:
    f = find(appid, openid)
    if f is None:
        raise NotFound("粉丝不存在。")
    return f


def search(appid: str, q: str | None = None, subscribed: bool | None = None):
    """The followers query behind the console list and the API."""
    stmt = select(Follower).where(Follower.appid == appid)
    if q:  # by openid, or the bound contact's name or phone (nicknames no longer come from WeChat)
        contacts = select(Contact.id).where(or_(Contact.name.like(f"%{q}%"), Contact.phone.like(f"%{q}%")))
        stmt = stmt.where(or_(Follower.openid.like(f"%{q}%"), Follower.nickname.like(f"%{q}%"),
                              Follower.contact_id.in_(contacts)))
    if subscribed is not None:
        stmt = stmt.where(Follower.subscribed.is_(subscribed))
    return stmt


def list_followers(actor, appid: str, *, q: str | None = None, subscribed: bool | None = None, tag_id: int | None = None,
                   page: int = 1, per_page: int = 20) -> tuple[list[Follower], int]:
    """微信粉丝 of the account, newest first: the console list, the API and their 导出."""
    from crm_core.db import paginate
    from crm_core.wechat.models import FollowerTagLink

    actor.require("follower", "view")
    stmt = search(appid, q, subscribed)
    if tag_id:
        stmt = stmt.where(Follower.id.in_(select(FollowerTagLink.follower_id).where(FollowerTagLink.tag_id == tag_id)))
    return paginate(stmt, Follower.id.desc(), page=page, per_page=per_page)


def follower_rows(rows: list[Follower]) -> list[dict]:
    """Followers as dicts with their tags (the API list and its export)."""
    from crm_core.wechat import tags

    named = tags.tags_of([f.id for f in rows])
    return [{**follower_dict(f), "tags": named.get(f.id, [])} for f in rows]


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
    unknown followers and set their last interaction, the message grant a user message opens
    (``grant: "message"``), and the last reported location; one statement per set of columns.
    ``items``: dicts with appid, openid, at, and optionally grant, lat, lng, precision. Not
    audited: these are the high-frequency columns ``Follower`` ignores anyway."""
    from crm_core.db import insert_for

    latest: dict[tuple[str, str], dict] = {}
    for it in items:
        cur = latest.setdefault((it["appid"], it["openid"]), {"at": it["at"], "loc": None, "opened": None})
        cur["at"] = max(cur["at"], it["at"])
        if it.get("lat") is not None and (cur["loc"] is None or it["at"] >= cur["loc"]["at"]):
            cur["loc"] = it
        if it.get("grant") == "message" and (cur["opened"] is None or it["at"] > cur["opened"]):
            cur["opened"] = it["at"]
    groups: dict[tuple[str, ...], list[dict]] = {}
    for (appid, openid), cur in latest.items():
        row = {"appid": appid, "openid": openid, "subscribed": False, "subscribe_count": 0,
               "last_interaction_at": cur["at"], "created_at": cur["at"], "updated_at": cur["at"]}
        cols = ["last_interaction_at"]
        if cur["opened"] is not None:  # a message from the user: they follow, and 5 replies within 48 h
            row.update(subscribed=True, window_message_at=cur["opened"], window_message_used=0)
            cols += ["subscribed", "window_message_at", "window_message_used"]
        loc = cur["loc"]
        if loc is not None:
            row.update(last_lat=loc["lat"], last_lng=loc["lng"], last_precision=loc.get("precision"),
                       last_location_at=loc["at"])
            cols += ["last_lat", "last_lng", "last_precision", "last_location_at"]
        groups.setdefault(tuple(cols), []).append(row)
    from sqlalchemy import case

    table = Follower.__table__
    for cols, rows in groups.items():
        stmt = insert_for(table)
        set_ = {c: getattr(stmt.excluded, c) for c in cols}
        if "subscribed" in set_:  # a message means they follow — unless they unfollowed after writing it
            set_["subscribed"] = case((table.c.unsubscribed_at.is_(None) | (table.c.unsubscribed_at < stmt.excluded.window_message_at),
                                       True), else_=table.c.subscribed)
        stmt = stmt.on_conflict_do_update(index_elements=["appid", "openid"], set_=set_)
        db.session.execute(stmt, rows)
