"""群发 (mass sends): a text to a follower tag, to the followers of a customer segment, or to every follower — after a
preview to one follower, within the account's allowance (a service account 4 a calendar month, a subscription account
one a day), sent through the outbox (``wechat_mass``) and closed by WeChat's MASSSENDJOBFINISH report.

WeChat de-duplicates a mass send by its ``clientmsgid`` (45065 names the earlier send), so the channel may send a
request whose outcome is unknown again without sending it twice."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from crm_core import outbox
from crm_core.clock import local_today, to_local, utcnow
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.permissions import Actor
from crm_core.wechat.models import Follower, FollowerTag, FollowerTagLink, MassSend

MAX_TEXT = 600  # WeChat allows more; a mass text people read on a phone stays short
MAX_OPENIDS = 10_000  # message/mass/send takes 2–10,000 openids
ALLOWANCE = {"service": ("month", 4), "subscription": ("day", 1)}


def allowance(appid: str, account_type: str, tz: str | None = None) -> dict:
    """How many mass sends the account has left in the period (a calendar month or day, in the organisation's zone)."""
    period, limit = ALLOWANCE.get(account_type, ALLOWANCE["service"])
    today = local_today(tz)
    first = today.replace(day=1) if period == "month" else today
    start = datetime.combine(first, datetime.min.time())
    # the period's start in UTC: the local midnight less its offset
    offset = to_local(utcnow(), tz).utcoffset() or timedelta(0)
    used = db.session.scalar(select(func.count(MassSend.id)).where(
        MassSend.appid == appid, MassSend.status.in_(("queued", "sending", "sent")), MassSend.created_at >= start - offset)) or 0
    return {"period": period, "limit": limit, "used": used, "left": max(limit - used, 0),
            "label": f"{'本月' if period == 'month' else '今天'}已群发 {used} / {limit} 次"}


def _text(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("请输入群发内容。", fields={"text": "required"})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"群发内容最多 {MAX_TEXT} 字。", fields={"text": f"at most {MAX_TEXT} characters"})
    return text


def segment_members(actor: Actor, seg):
    """A segment's members as a SELECT of their ids, and the follower column that binds a follower to one (a customer
    segment: ``Follower.customer_id``; a contact segment: ``Follower.contact_id``) — for pushes and mass sends."""
    from crm_core.customers.models import Contact, Customer
    from crm_core.customers.segments import segment_clause

    if seg.target == "customer":
        return (select(Customer.id).where(Customer.org_id == actor.org_id, segment_clause(actor, seg.id, "customer")),
                Follower.customer_id)
    return select(Contact.id).where(Contact.org_id == actor.org_id, segment_clause(actor, seg.id, "contact")), Follower.contact_id


def audience(actor: Actor, appid: str, target: str, tag_id: int | None = None, segment_id: int | None = None) -> dict:
    """Who a mass send would reach: ``{target, label, tag, segment_id, openids, count}``."""
    if target == "tag":
        tag = db.session.get(FollowerTag, tag_id) if tag_id else None
        if tag is None or tag.appid != appid:
            raise ValidationFailed("请选择粉丝标签。", fields={"tag_id": "required"})
        if tag.wechat_id is None:
            raise Conflict("该标签尚未同步到微信，无法按标签群发。", code="tag_not_synced")
        count = db.session.scalar(select(func.count(FollowerTagLink.follower_id)).join(
            Follower, Follower.id == FollowerTagLink.follower_id).where(FollowerTagLink.tag_id == tag.id,
                                                                       Follower.subscribed.is_(True))) or 0
        return {"target": "tag", "label": f"标签「{tag.name}」", "tag": tag, "segment_id": None, "openids": None, "count": count}
    if target == "segment":
        from crm_core.customers.models import Segment
        from crm_core.customers.segments import get_segment

        if not segment_id:
            raise ValidationFailed("请选择客户细分。", fields={"segment_id": "required"})
        seg: Segment = get_segment(actor, segment_id)
        members, link = segment_members(actor, seg)
        openids = sorted(set(db.session.scalars(select(Follower.openid).where(
            Follower.appid == appid, Follower.subscribed.is_(True), link.in_(members)))))
        return {"target": "segment", "label": f"客户细分「{seg.name}」", "tag": None, "segment_id": seg.id,
                "openids": openids, "count": len(openids)}
    if target == "all":
        count = db.session.scalar(select(func.count(Follower.id)).where(Follower.appid == appid,
                                                                       Follower.subscribed.is_(True))) or 0
        return {"target": "all", "label": "全部粉丝", "tag": None, "segment_id": None, "openids": None, "count": count}
    raise ValidationFailed("请选择群发对象。", fields={"target": "tag, segment or all"})


def preview(actor: Actor, appid: str, openid: str, text: str) -> None:
    """预览: the text to one follower first (WeChat's preview call; it uses none of the allowance)."""
    actor.require("campaign", "edit")
    text = _text(text)
    f = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == (openid or "").strip())).first()
    if f is None or not f.subscribed:
        raise ValidationFailed("预览对象必须是公众号的粉丝。", fields={"openid": "not a follower"})
    outbox.queue_message("wechat_mass", f.openid, {"preview": True, "text": text}, org_id=actor.org_id)


def send(actor: Actor, appid: str, account_type: str, target: str, text: str, *, tag_id: int | None = None,
         segment_id: int | None = None, tz: str | None = None) -> MassSend:
    """群发: refused when the allowance is used up (409 ``mass_quota``) or nobody would get it; else queued once."""
    actor.require("campaign", "edit")
    text = _text(text)
    who = audience(actor, appid, target, tag_id, segment_id)
    if who["count"] == 0:
        raise Conflict(f"{who['label']}中没有关注公众号的粉丝，无需群发。", code="no_audience")
    if who["openids"] is not None and not 2 <= len(who["openids"]) <= MAX_OPENIDS:
        raise Conflict("按客户细分群发需要 2 到 10,000 位粉丝（微信的限制）；只有 1 位时请改用在线客服发送。",
                       code="audience_size")
    left = allowance(appid, account_type, tz)
    if left["left"] <= 0:
        raise Conflict(f"{left['label']}，已达到微信的群发次数上限。", code="mass_quota")
    row = MassSend(org_id=actor.org_id, appid=appid, target=who["target"], tag_id=who["tag"].id if who["tag"] else None,
                   segment_id=who["segment_id"], target_label=who["label"], text=text, openids=who["openids"],
                   status="queued", total_count=who["count"], created_by_id=actor.employee_id, created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    outbox.queue_message("wechat_mass", who["label"][:64], {"mass_id": row.id}, org_id=actor.org_id,
                         dedupe_key=f"mass:{row.id}")
    return row


def touch() -> None:
    """After the send call: the row's msg_id is kept before WeChat's report can arrive (the report finds it by it)."""
    db.session.commit()


def job_finished(msg_id: str, status: str, counts: dict) -> bool:
    """MASSSENDJOBFINISH: WeChat's report of a send (``send success``, ``send fail``, ``err(…)``) and its counts."""
    row = db.session.scalars(select(MassSend).where(MassSend.msg_id == str(msg_id))).first()
    if row is None:
        return False
    row.wechat_status = (status or "")[:100]
    row.status = "sent" if (status or "").strip().lower() == "send success" else "failed"
    for key in ("total_count", "filter_count", "sent_count", "error_count"):
        if counts.get(key) is not None:
            setattr(row, key, int(counts[key]))
    row.finished_at = utcnow()
    return True


def history(actor: Actor, appid: str, limit: int = 50) -> list[MassSend]:
    actor.require("campaign", "view")
    return list(db.session.scalars(select(MassSend).where(MassSend.appid == appid, MassSend.org_id == actor.org_id)
                                   .order_by(MassSend.id.desc()).limit(limit)))


def get(actor: Actor, mass_id: int) -> MassSend:
    row = db.session.get(MassSend, mass_id)
    if row is None or row.org_id != actor.org_id:
        raise NotFound("群发记录不存在。")
    return row
