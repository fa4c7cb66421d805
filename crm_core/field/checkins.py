"""Field check-ins (移动签到): record, check, pair, review; nearby customers.

Every check-in is kept — checks only decide its ``status`` and ``flags``:

- ``status``: ``normal``; ``out_of_range`` (farther from the customer's site than the radius);
  ``rejected`` (a spoofing sign). A manager's review can dismiss a flag, which recomputes it.
- ``flags``: ``out_of_range``, ``low_accuracy``, ``suspicious`` (impossible travel),
  ``spoof_mock`` (the client says the location is mocked), ``spoof_repeat`` (exactly the
  same coordinates and accuracy as an earlier check-in: real receivers never repeat),
  ``spoof_accuracy`` (an accuracy a real receiver never reports: under 1 m), ``late`` (sent
  after the fact, offline), ``unpaired`` (a check-out without a check-in),
  ``no_site`` (the customer has no site to compare with), ``no_customer`` (checked in without
  choosing a customer, a visible choice on the page). The same fix again within 30 minutes is the
  phone's cached position, not ``spoof_repeat``.

Refused outright (nothing stored): no location at all, coordinates that are not numbers or
out of range, an unknown coordinate system, a customer outside the caller's data scope, a
client time in the future or older than the allowed delay, and the same kind at the same
customer by the same person within 60 seconds (409).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from crm_core import geo, jobs, media
from crm_core.activities.models import Activity
from crm_core.clock import local_date_of, utcnow
from crm_core.context import service
from crm_core.customers.models import Customer
from crm_core.db import db, paginate
from crm_core.errors import Conflict, NoEmployeeLinked, PermissionDenied, ValidationFailed
from crm_core.field.models import CHECKIN_KINDS, SPOOF_FLAGS, CheckIn
from crm_core.org.models import EmployeePosition, Position
from crm_core.org.permissions import NO_EMPLOYEE_MESSAGE, Actor, get_visible, scoped_select, visible_clause
from crm_core.org.settings import get_setting, org_timezone
from crm_core.wechat.models import Follower

DUPLICATE_WINDOW = timedelta(seconds=60)
# WeChat's getLocation and Android's fused provider hand out their cached fix for a while: the same
# coordinates and accuracy again within this window is one real fix, not a replayed one
REPEAT_GRACE = timedelta(minutes=30)
FUTURE_TOLERANCE = timedelta(minutes=2)  # phone clocks drift a little
FLAG_LABELS = {
    "out_of_range": "超出范围", "low_accuracy": "定位精度低", "suspicious": "移动速度异常", "spoof_mock": "模拟定位",
    "spoof_repeat": "坐标完全重复", "spoof_accuracy": "精度值异常", "late": "离线补签", "unpaired": "签退无对应签到",
    "no_site": "客户无位置", "no_customer": "未关联客户",
}
STATUS_LABELS = {"normal": "正常", "out_of_range": "超出范围", "rejected": "疑似作弊"}
# flags a manager reviews (the others only inform: late, unpaired, no_site, no_customer)
REVIEW_FLAGS = ("out_of_range", "low_accuracy", "suspicious") + SPOOF_FLAGS


def local_date(ts: datetime, org_id: int):
    """The organisation's local day of a stored time: what the reports group check-ins by."""
    return local_date_of(ts, org_timezone(org_id))


def settings(org_id: int) -> dict:
    return get_setting(org_id, "checkin")


def _unknown_system() -> ValidationFailed:
    return ValidationFailed("坐标系只能是 wgs84、gcj02 或 bd09。", fields={"coord_system": "unknown"})


def _coords(lat, lng, system: str) -> tuple[float, float]:
    try:
        return geo.check(lat, lng, system)
    except geo.CoordinateError as exc:
        reason = str(exc)
        if reason == "coord_system":
            raise _unknown_system() from None
        if reason == "out_of_range":
            raise ValidationFailed("经纬度超出范围：纬度在 -90~90，经度在 -180~180 之间。",
                                   fields={"lat": "out_of_range", "lng": "out_of_range"}) from None
        raise ValidationFailed("经纬度必须是数字。", fields={"lat": "not_a_number", "lng": "not_a_number"}) from None


def _employee_id(actor: Actor) -> int:
    if actor.employee_id is None:
        raise NoEmployeeLinked(NO_EMPLOYEE_MESSAGE)
    return actor.employee_id


def _location(actor: Actor, data: dict, cfg: dict, now: datetime) -> tuple[float, float, str, float | None, str]:
    """Where the check-in happened: the device's fix, else the user's recent LOCATION event."""
    lat, lng = data.get("lat"), data.get("lng")
    system = data.get("coord_system") or "wgs84"
    if lat is not None or lng is not None:
        if lat is None or lng is None:
            raise ValidationFailed("纬度和经度必须同时提供。", fields={"lat" if lat is None else "lng": "required"})
        lat, lng = _coords(lat, lng, system)
        return lat, lng, system, data.get("accuracy_m"), "device"
    return recent_wechat_location(actor, cfg, now)


def recent_wechat_location(actor: Actor, cfg: dict | None = None, now: datetime | None = None):
    """The caller's latest WeChat LOCATION event if it is recent enough, as
    ``(lat, lng, coord_system, accuracy, "wechat_event")``; 422 ``location_required`` otherwise."""
    cfg = cfg or settings(actor.org_id)
    since = (now or utcnow()) - timedelta(seconds=int(cfg["location_max_age_s"]))
    follower = db.session.scalars(
        select(Follower).where(Follower.employee_id == actor.employee_id, Follower.last_location_at >= since,
                               Follower.last_lat.is_not(None)).order_by(Follower.last_location_at.desc())).first()
    if follower is None:
        raise ValidationFailed(
            "没有获取到位置，不能签到。请允许微信使用定位后重试，或在公众号中开启「提供位置信息」。",
            code="location_required", fields={"lat": "required", "lng": "required"})
    lat, lng = _coords(follower.last_lat, follower.last_lng, cfg["location_event_coord_system"])
    return lat, lng, cfg["location_event_coord_system"], follower.last_precision, "wechat_event"


def _client_time(data: dict, cfg: dict, now: datetime) -> tuple[datetime, bool]:
    ts = data.get("client_time") or now
    if ts > now + FUTURE_TOLERANCE:
        raise ValidationFailed("签到时间不能晚于当前时间，请检查手机时间设置。", fields={"client_time": "in_future"})
    if ts < now - timedelta(hours=int(cfg["max_delay_h"])):
        raise ValidationFailed(f"离线签到只能在 {cfg['max_delay_h']} 小时内补交。", fields={"client_time": "too_old"})
    return ts, (now - ts).total_seconds() > int(cfg["late_after_s"])


def _status(flags: list[str], reviews: dict) -> tuple[str, bool]:
    """Status and "flagged" (some review flag not dismissed) from the flags and their reviews."""
    live = [f for f in flags if (reviews.get(f) or {}).get("decision") != "dismissed"]
    flagged = any(f in REVIEW_FLAGS for f in live)
    if any(f in SPOOF_FLAGS for f in live):
        return "rejected", flagged
    if "out_of_range" in live:
        return "out_of_range", flagged
    return "normal", flagged


def _neighbours(employee_id: int, ts: datetime):
    """The employee's check-ins just before and just after ``ts`` by client time (rows of
    id, client_time, local_date, lat, lng; two indexed one-row lookups)."""
    cols = (CheckIn.id, CheckIn.client_time, CheckIn.local_date, CheckIn.lat, CheckIn.lng)
    prev = db.session.execute(select(*cols).where(CheckIn.owner_id == employee_id, CheckIn.client_time <= ts)
                              .order_by(CheckIn.client_time.desc(), CheckIn.id.desc()).limit(1)).first()
    nxt = db.session.execute(select(*cols).where(CheckIn.owner_id == employee_id, CheckIn.client_time > ts)
                             .order_by(CheckIn.client_time, CheckIn.id).limit(1)).first()
    return prev, nxt


def _travel(a, b) -> float:
    """Distance counted for ``b``: from the previous check-in ``a`` of the same day."""
    if a is None or a.local_date != b.local_date:
        return 0.0
    return geo.distance_m((a.lat, a.lng), (b.lat, b.lng))


@service
def record(actor: Actor, data: dict) -> CheckIn:
    """Check in or out. ``data``: kind, lat, lng, coord_system, accuracy_m, client_time,
    customer_id, activity_id, photo_id, note, mock_location."""
    actor.require("checkin", "create")
    employee_id = _employee_id(actor)
    kind = data.get("kind")
    if kind not in CHECKIN_KINDS:
        raise ValidationFailed("签到类型只能是 in（签到）或 out（签退）。", fields={"kind": "one of in, out"})
    cfg = settings(actor.org_id)
    now = utcnow()
    if (data.get("coord_system") or "wgs84") not in geo.COORD_SYSTEMS:
        raise _unknown_system()
    accuracy = data.get("accuracy_m")
    if accuracy is not None and (isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or accuracy < 0
                                 or accuracy != accuracy):
        raise ValidationFailed("定位精度必须是不小于 0 的数字（米）。", fields={"accuracy_m": "invalid"})
    raw_lat, raw_lng, system, accuracy, source = _location(actor, data, cfg, now)
    client_time, late = _client_time(data, cfg, now)
    customer = get_visible(actor, Customer, data["customer_id"]) if data.get("customer_id") else None
    activity = get_visible(actor, Activity, data["activity_id"]) if data.get("activity_id") else None
    if activity is not None and customer is None and activity.customer_id:
        customer = get_visible(actor, Customer, activity.customer_id)
    photo_id = None
    if data.get("photo_id"):
        from crm_core.media import owned_media

        photo_id = owned_media(data["photo_id"], org_id=actor.org_id, employee_id=employee_id).id
    note = (data.get("note") or "").strip()[:500] or None

    # one query for both: the same kind within 60 s (judged on the phone's clock, so a batch of
    # offline check-ins sent together is not a duplicate), and exactly these coordinates before
    same_spot = and_(CheckIn.raw_lat == raw_lat, CheckIn.raw_lng == raw_lng, CheckIn.location_source == "device",
                     CheckIn.client_time >= client_time - timedelta(days=30))
    near_time = and_(CheckIn.kind == kind, CheckIn.client_time > client_time - DUPLICATE_WINDOW,
                     CheckIn.client_time < client_time + DUPLICATE_WINDOW)
    recent = db.session.execute(
        select(CheckIn.kind, CheckIn.customer_id, CheckIn.client_time, CheckIn.raw_lat, CheckIn.raw_lng, CheckIn.accuracy_m)
        .where(CheckIn.owner_id == employee_id, or_(near_time, same_spot) if source == "device" else near_time)
        .limit(200)).all()
    customer_key = customer.id if customer else None
    if any(r.kind == kind and r.customer_id == customer_key and abs(r.client_time - client_time) < DUPLICATE_WINDOW
           for r in recent):
        where = f"在「{customer.name}」" if customer else ""
        raise Conflict(f"1 分钟内已{where}{'签到' if kind == 'in' else '签退'}过，请勿重复提交。", code="duplicate_checkin")
    repeated = source == "device" and any(r.raw_lat == raw_lat and r.raw_lng == raw_lng and r.accuracy_m == accuracy
                                          and abs(r.client_time - client_time) > REPEAT_GRACE for r in recent)

    lat, lng = geo.to_wgs84(raw_lat, raw_lng, system)
    flags: list[str] = []
    distance = radius = None
    if customer is not None:
        if customer.site_wgs_lat is not None:
            radius = int(customer.checkin_radius_m or cfg["radius_m"])
            distance = round(geo.distance_m((lat, lng), (customer.site_wgs_lat, customer.site_wgs_lng)), 1)
            if distance > radius:
                flags.append("out_of_range")
        else:
            flags.append("no_site")
    else:
        flags.append("no_customer")  # a visible choice on the page ("不关联客户"), shown on the record too
    if accuracy is not None and accuracy > float(cfg["accuracy_threshold_m"]):
        flags.append("low_accuracy")
    if accuracy is not None and accuracy < 1:
        flags.append("spoof_accuracy")
    if data.get("mock_location"):
        flags.append("spoof_mock")
    if repeated:
        flags.append("spoof_repeat")
    prev, nxt = _neighbours(employee_id, client_time)
    if prev is not None:
        metres = geo.distance_m((prev.lat, prev.lng), (lat, lng))
        hours = (client_time - prev.client_time).total_seconds() / 3600
        if metres > 1000 and (hours <= 0 or metres / 1000 / hours > float(cfg["max_speed_kmh"])):
            flags.append("suspicious")
    if late:
        flags.append("late")

    ci = CheckIn(org_id=actor.org_id, owner_id=employee_id, department_id=_department(employee_id), kind=kind,
                 lat=lat, lng=lng, coord_system=system, raw_lat=raw_lat, raw_lng=raw_lng, accuracy_m=accuracy,
                 location_source=source, client_time=client_time, local_date=local_date(client_time, actor.org_id),
                 customer_id=customer.id if customer else None, activity_id=activity.id if activity else None,
                 photo_id=photo_id, note=note, distance_m=distance, radius_m=radius, late=late,
                 mock_location=bool(data.get("mock_location")), flag_reviews={}, created_at=now)
    ci.travel_m = round(_travel(prev, ci), 1)
    if kind == "out":
        _pair(ci, flags)
    ci.flags = flags
    ci.status, ci.flagged = _status(flags, {})
    db.session.add(ci)
    db.session.flush()
    if nxt is not None and nxt.local_date == ci.local_date:  # a late check-in lands between two others
        db.session.get(CheckIn, nxt.id).travel_m = round(_travel(ci, nxt), 1)
    _touch_activity(actor, ci)
    jobs.enqueue(reverse_geocode, ci.id)
    db.session.flush()
    return ci


def _department(employee_id: int) -> int | None:
    """The employee's home department (primary position first), in one query."""
    return db.session.scalar(select(Position.department_id).join(EmployeePosition, EmployeePosition.position_id == Position.id)
                             .where(EmployeePosition.employee_id == employee_id)
                             .order_by(EmployeePosition.primary.desc()).limit(1))


def _pair(out: CheckIn, flags: list[str]) -> None:
    """A check-out closes the latest open check-in of the same person (and customer) within a day."""
    q = select(CheckIn).where(CheckIn.owner_id == out.owner_id, CheckIn.kind == "in", CheckIn.pair_id.is_(None),
                              CheckIn.client_time <= out.client_time,
                              CheckIn.client_time >= out.client_time - timedelta(hours=24))
    q = q.where(CheckIn.customer_id == out.customer_id) if out.customer_id else q
    opened = db.session.scalars(q.order_by(CheckIn.client_time.desc()).limit(1)).first()
    if opened is None:
        flags.append("unpaired")
        return
    db.session.add(out)
    db.session.flush()
    out.pair_id, opened.pair_id = opened.id, out.id
    out.duration_s = int((out.client_time - opened.client_time).total_seconds())
    out.customer_id = out.customer_id or opened.customer_id
    out.activity_id = out.activity_id or opened.activity_id


def _touch_activity(actor: Actor, ci: CheckIn) -> None:
    """A check-in starts the linked activity; the check-out that ends the visit completes it."""
    if ci.activity_id is None:
        return
    from crm_core.activities.activities import set_activity_status

    activity = db.session.get(Activity, ci.activity_id)
    if activity.status in ("done", "cancelled"):
        return
    if ci.kind == "in":
        set_activity_status(actor, activity.id, "in_progress", at=ci.client_time)
    elif ci.pair_id is not None:
        opened = db.session.get(CheckIn, ci.pair_id)
        activity.actual_start = activity.actual_start or opened.client_time
        set_activity_status(actor, activity.id, "done", at=ci.client_time,
                            result=None if activity.result else f"拜访 {ci.duration_s // 60} 分钟（签到/签退）")


@jobs.job
def reverse_geocode(checkin_id: int) -> None:
    from crm_core.field import geocoding

    ci = db.session.get(CheckIn, checkin_id)
    if ci is None or ci.address:
        return
    ci.address = geocoding.reverse(ci.org_id, ci.lat, ci.lng)


# --- reading ------------------------------------------------------------------------------
def get(actor: Actor, checkin_id: int) -> CheckIn:
    return get_visible(actor, CheckIn, checkin_id)


def list_checkins(actor: Actor, *, employee_id: int | None = None, date_from=None, date_to=None,
                  flagged: bool | None = None, status: str | None = None, page: int = 1, per_page: int = 20):
    stmt = scoped_select(actor, CheckIn)
    if employee_id:
        stmt = stmt.where(CheckIn.owner_id == employee_id)
    if date_from:
        stmt = stmt.where(CheckIn.local_date >= date_from)
    if date_to:
        stmt = stmt.where(CheckIn.local_date <= date_to)
    if flagged is not None:
        stmt = stmt.where(CheckIn.flagged.is_(flagged))
    if status:
        stmt = stmt.where(CheckIn.status == status)
    return paginate(stmt, CheckIn.client_time.desc(), CheckIn.id.desc(), page=page, per_page=per_page)


@service
def review_flag(actor: Actor, checkin_id: int, flag: str, decision: str, note: str | None = None) -> CheckIn:
    """A manager confirms or dismisses one flag; the status follows. Nobody reviews their own."""
    actor.require("checkin", "approve")
    ci = get_visible(actor, CheckIn, checkin_id)
    if ci.owner_id == actor.employee_id:
        raise PermissionDenied("不能复核自己的签到记录。")
    if flag not in (ci.flags or []):
        raise ValidationFailed("这条签到没有该标记。", fields={"flag": "not on this check-in"})
    if decision not in ("confirmed", "dismissed"):
        raise ValidationFailed("复核结果只能是 confirmed（确认）或 dismissed（驳回标记）。", fields={"decision": "invalid"})
    reviews = dict(ci.flag_reviews or {})
    reviews[flag] = {"decision": decision, "by": actor.employee_id, "by_name": actor.label,
                     "at": utcnow().isoformat(timespec="seconds"), "note": (note or "")[:200] or None}
    ci.flag_reviews = reviews
    ci.status, ci.flagged = _status(ci.flags or [], reviews)
    db.session.flush()
    return ci


def nearby(actor: Actor, lat, lng, coord_system: str = "wgs84", radius_m: int | None = None, limit: int = 10) -> list[dict]:
    """Customers in the caller's data scope whose sites lie within the radius, nearest first.

    H3 cells narrow the search to a handful of rows through an index; geopy measures those."""
    actor.require("customer", "view")
    raw_lat, raw_lng = _coords(lat, lng, coord_system)
    wlat, wlng = geo.to_wgs84(raw_lat, raw_lng, coord_system)
    radius = min(int(radius_m or settings(actor.org_id)["radius_m"]), geo.MAX_RADIUS_M)
    rows = db.session.execute(
        select(Customer.id, Customer.name, Customer.address, Customer.site_wgs_lat, Customer.site_wgs_lng,
               Customer.checkin_radius_m)
        .where(visible_clause(actor, Customer), Customer.status == "active",
               Customer.site_cell.in_(geo.cells_within(wlat, wlng, radius)))).all()
    return [{"customer_id": cid, "name": name, "address": address, "distance_m": round(d, 1), "radius_m": own_radius or radius}
            for d, (cid, name, address, _, _, own_radius) in geo.within((wlat, wlng), rows, radius, lambda r: (r[3], r[4]))[:limit]]


def to_dict(ci: CheckIn, out_system: str = "wgs84") -> dict:
    lat, lng = geo.from_wgs84(ci.lat, ci.lng, out_system)
    return {
        "id": ci.id, "kind": ci.kind, "employee_id": ci.owner_id, "lat": round(lat, 7), "lng": round(lng, 7),
        "coord_system": out_system, "received_coord_system": ci.coord_system, "accuracy_m": ci.accuracy_m,
        "location_source": ci.location_source, "client_time": ci.client_time.isoformat() + "Z",
        "server_time": ci.created_at.isoformat() + "Z",
        "customer_id": ci.customer_id, "activity_id": ci.activity_id, "photo_id": ci.photo_id, "note": ci.note,
        "distance_m": ci.distance_m, "radius_m": ci.radius_m, "status": ci.status,
        "status_label": STATUS_LABELS[ci.status], "flags": list(ci.flags or []),
        "flag_labels": [FLAG_LABELS.get(f, f) for f in ci.flags or []], "flag_reviews": ci.flag_reviews or {},
        "flagged": ci.flagged, "late": ci.late, "pair_id": ci.pair_id, "duration_s": ci.duration_s,
        "address": ci.address, "travel_m": ci.travel_m, "badge": badge(ci),
    }


def badge(ci: CheckIn) -> dict:
    """What the record's badge says, agreeing with its status and flags: red for a spoofing sign,
    orange for out of range or anything waiting for a manager's review, green only when clean."""
    if ci.status == "rejected":
        return {"tone": "bad", "text": STATUS_LABELS["rejected"]}
    if ci.status == "out_of_range":
        return {"tone": "warn", "text": STATUS_LABELS["out_of_range"]}
    if not ci.flagged:  # no review flag left standing (see _status)
        return {"tone": "ok", "text": STATUS_LABELS["normal"]}
    reviews = ci.flag_reviews or {}
    if any((reviews.get(f) or {}).get("decision") == "confirmed" for f in ci.flags or [] if f in REVIEW_FLAGS):
        return {"tone": "bad", "text": "异常（已确认）"}
    return {"tone": "warn", "text": "待复核"}


def today(actor: Actor) -> list[CheckIn]:
    """The caller's own check-ins of the current local day, in order."""
    employee_id = _employee_id(actor)
    return list(db.session.scalars(select(CheckIn).where(CheckIn.owner_id == employee_id,
                                                         CheckIn.local_date == local_date(utcnow(), actor.org_id))
                                   .order_by(CheckIn.client_time)))


def visits_section(actor: Actor, customer: Customer) -> dict:
    """The customer 360 view's 拜访签到 section: the latest visible check-ins at this customer."""
    if not actor.can("checkin", "view"):
        return {"count": None, "latest": []}
    stmt = scoped_select(actor, CheckIn).where(CheckIn.customer_id == customer.id)
    rows = db.session.scalars(stmt.order_by(CheckIn.client_time.desc()).limit(10)).all()
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    return {"count": total, "latest": [{"id": c.id, "kind": c.kind, "employee_id": c.owner_id,
                                        "client_time": c.client_time.isoformat() + "Z", "status": c.status,
                                        "distance_m": c.distance_m, "duration_s": c.duration_s} for c in rows]}



def _holds_photo(actor: Actor, row) -> bool:
    """A check-in the actor may see shows this photo."""
    return db.session.scalar(scoped_select(actor, CheckIn).where(CheckIn.photo_id == row.id).limit(1)) is not None


media.register_holder(_holds_photo)
