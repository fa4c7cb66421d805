"""Outbox channels that deliver through WeChat: customer-service (客服) and template messages.

A customer-service message needs a quota the user's last actions opened (5 within 48 hours after
a message, 3 within a minute after a menu tap, follow or scan; docs/wechat.md). The quota is
taken before the call (:func:`crm_core.wechat.followers.use_cs_quota`): with none left, the
notice goes out as its template message straight away, never first as a call WeChat refuses.
WeChat's answer is acted on through one table (:mod:`wxapp.official_account.errcodes`):
45015/45047 → the template; 43004 → the follower is marked unsubscribed and nothing is
retried; 40003 → marked invalid; 40037 and other configuration errors → failed and the
organisation's administrators told; 45009 → tried again after midnight; -1 → retried.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from wechatpy.exceptions import WeChatClientException

from crm_core import outbox
from crm_core.wechat import followers
from wxapp.config import wechat_appid
from wxapp.official_account import errcodes

log = logging.getLogger("wxcrm.wechat")


def _client():
    from wxapp.official_account.client import get_client

    return get_client()


def _tomorrow() -> datetime:
    """Just after the next midnight in Beijing time (WeChat's daily quotas reset then), as UTC."""
    from crm_core.clock import utcnow

    now = utcnow() + timedelta(hours=8)
    return datetime(now.year, now.month, now.day) + timedelta(days=1, minutes=5) - timedelta(hours=8)


def _wrap(exc: WeChatClientException, message) -> outbox.ChannelError:
    """WeChat refused: do what the errcode table says, and say whether to retry."""
    action = errcodes.action(exc.errcode)
    text = f"{exc.errcode}: {exc.errmsg}"
    entry = errcodes.ERRCODES.get(exc.errcode)
    if entry:
        text += f"（{entry.meaning}）"
    if action == errcodes.UNSUBSCRIBED:
        followers.mark_unsubscribed(wechat_appid(), message.recipient)
    elif action == errcodes.INVALID_USER:
        followers.mark_invalid(wechat_appid(), message.recipient)
    elif action == errcodes.ALERT:
        _alert_admins(getattr(message, "org_id", None), f"微信接口配置错误：{text}")
    elif action == errcodes.TOMORROW:
        return outbox.ChannelError(text, retryable=True, retry_at=_tomorrow())
    retryable = action in (errcodes.RETRY, errcodes.REFRESH)
    return outbox.ChannelError(text, retryable=retryable)


def _alert_admins(org_id: int | None, text: str) -> None:
    """Tell the organisation's administrators (a staff notice each, once per error text a day)."""
    from crm_core.clock import local_today
    from crm_core.db import db
    from crm_core.org.models import Role, User

    log.error("wechat configuration error", extra={"org_id": org_id, "error": text})
    if org_id is None:
        return
    admins = db.session.scalars(db.select(User.employee_id).join(User.roles).where(
        User.org_id == org_id, User.active.is_(True), Role.grants_all.is_(True), User.employee_id.is_not(None))).all()
    for employee_id in set(admins):
        outbox.notify_staff(employee_id, "wechat_error", text, org_id=org_id,
                            dedupe_key=f"wechat_error:{employee_id}:{local_today()}:{text[:80]}")


def _call(fn):
    """Call WeChat. A connection that never opened provably sent nothing (retried as usual);
    a timeout or a reset after the request went out leaves the outcome unknown: the message is
    not sent again automatically — a customer must not get the same notice twice (docs/operations.md)."""
    import requests

    try:
        return fn()
    except requests.exceptions.ConnectTimeout as exc:
        raise outbox.ChannelError(f"连接微信超时，消息未发出：{type(exc).__name__}", retryable=True) from None
    except requests.exceptions.ConnectionError as exc:
        if "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc):
            raise outbox.ChannelError(f"无法连接微信，消息未发出：{type(exc).__name__}", retryable=True) from None
        raise outbox.ChannelError("发送时连接中断，微信是否收到未知；为避免客户重复收到，未自动重发，请确认后在发件箱重发。",
                                  retryable=False) from None
    except requests.exceptions.Timeout:
        raise outbox.ChannelError("微信在 5 秒内没有答复，是否已送达未知；为避免客户重复收到，未自动重发，请确认后在发件箱重发。",
                                  retryable=False) from None


def send_custom(message) -> outbox.Delivery:
    """``wechat_custom``: a customer-service text, within the follower's quota; without one (or
    when WeChat answers 45015/45047) the payload's template (else the generic notice) goes instead, at once."""
    from crm_core.db import db

    p = message.payload
    follower = followers.find(wechat_appid(), message.recipient)
    took = follower is not None and followers.use_cs_quota(follower.id)
    db.session.commit()  # the quota is taken before the call, and WeChat is called outside any transaction
    template = p.get("template") or template_for(p["text"], p.get("title") or "服务通知", p.get("url"))
    if not took:
        if p.get("msgtype") == "image":  # a picture has no template form: it fails visibly instead
            raise outbox.ChannelError("对方 48 小时内没有可回复的互动，图片无法送达（模板消息不能带图片）。", retryable=False)
        return send_template(message, template, known=follower)
    try:
        _call(lambda: _send_kind(message.recipient, p))
    except WeChatClientException as exc:  # WeChat answered: nothing went out
        followers.give_back_cs_quota(follower.id)
        db.session.commit()
        if errcodes.action(exc.errcode) == errcodes.TEMPLATE:
            return send_template(message, template, known=follower)
        raise _wrap(exc, message) from None
    except outbox.ChannelError as exc:
        if exc.retryable:  # the connection never opened: nothing went out either
            followers.give_back_cs_quota(follower.id)
            db.session.commit()
        raise  # the outcome is unknown otherwise: the quota stays used, as WeChat may have delivered
    return outbox.Delivery(provider_message_id=None)


def _send_kind(openid: str, p: dict):
    """The customer-service call for the payload's kind: text; an agent's picture (uploaded to WeChat as temporary
    media first — it keeps it three days, so each send uploads it again); one news article (WeChat takes one)."""
    kind = p.get("msgtype") or "text"
    if kind == "image":
        import io

        from crm_core import media
        from crm_core.db import db
        from crm_core.media import MediaFile

        row = db.session.get(MediaFile, p.get("media_file_id"))
        if row is None or row.status != "ready":
            raise outbox.ChannelError("要发送的图片已不存在。", retryable=False)
        data, content_type = media.read(row)
        ext = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
        uploaded = _client().media.upload("image", (f"reply.{ext}", io.BytesIO(data), content_type))
        return _client().message.send_image(openid, uploaded["media_id"])
    if kind == "news":
        a = p["article"]
        return _client().message.send_articles(openid, [{"title": a["title"], "description": a.get("description") or "",
                                                         "url": a["url"], "picurl": a.get("picurl")}])
    return _client().message.send_text(openid, p["text"])


def send_template(message, template: dict | None = None, known=False) -> outbox.Delivery:
    """``known``: the recipient's follower row when the caller has read it already."""
    t = template or message.payload
    if known is False:
        known = followers.find(wechat_appid(), message.recipient)
    if known is not None and known.invalid_at is not None:  # WeChat said 40003 before: nothing more is sent
        raise outbox.ChannelError("40003: invalid openid（此前微信已答复该 openid 不属于本公众号，不再发送）", retryable=False)
    try:
        res = _call(lambda: _client().message.send_template(message.recipient, t["template_id"], t["data"], url=t.get("url")))
    except WeChatClientException as exc:
        raise _wrap(exc, message) from None
    return outbox.Delivery(provider_message_id=str(res.get("msgid", "")) or None)


def send_notice(message) -> outbox.Delivery:
    """``wechat_notice``: a notice to a WeChat user queued by the domain (ticket progress,
    satisfaction invitation, campaign pushes). The quota is judged when it is sent: a
    customer-service message while the user's actions allow one, the template message otherwise."""
    p = message.payload
    template = template_for(p["text"], p.get("title") or "服务通知", p.get("url"))
    text = p["text"] + (f"\n{p['url']}" if p.get("url") else "")
    body = {"text": text, "template": template}
    if p.get("article"):  # a campaign's material: a news card (title, summary, cover, link) inside the window
        body.update(msgtype="news", article=p["article"])
    return send_custom(SimpleNamespace(id=message.id, recipient=message.recipient, org_id=getattr(message, "org_id", None),
                                       payload=body))


_staff_links: list = []


def register_staff_link(resolve) -> None:
    """A feature package's page for a staff notice: ``resolve(payload)`` answers a path (``/h5/staff/...``)
    or None. The notice's template message then opens it on the employee's phone."""
    if resolve not in _staff_links:
        _staff_links.append(resolve)


def staff_link(payload: dict) -> str | None:
    for resolve in _staff_links:
        path = resolve(payload)
        if path:
            return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path
    return None


def send_staff(message) -> outbox.Delivery:
    """``staff``: notices to employees go as WeCom application messages when WeCom is configured and the employee
    has a WeCom UserID (``wxapp.wecom``); else as template messages to the WeChat user the employee signed in with
    (``followers.bind_staff``); without either they stay in the log."""
    from crm_core.db import db
    from crm_core.wechat.models import Follower
    from wxapp import wecom

    p = message.payload
    try:
        employee_id = int(message.recipient)
    except ValueError:
        return outbox._log_channel(message)
    if wecom.configured():  # the company's WeCom app, for employees who have a WeCom UserID
        userid = wecom.wecom_userid(employee_id)
        if userid:
            return outbox.Delivery(provider_message_id=wecom.send_card(userid, p.get("title") or "工作提醒", p["text"],
                                                                       p.get("url") or staff_link(p)))
    follower = db.session.scalars(db.select(Follower).where(Follower.employee_id == employee_id,
                                                            Follower.appid == wechat_appid())
                                  .order_by(Follower.staff_bound_at.desc())).first()
    if follower is None:
        return outbox._log_channel(message)
    template = template_for(p["text"], p.get("title") or "工作提醒", p.get("url") or staff_link(p))
    return send_template(SimpleNamespace(id=message.id, recipient=follower.openid, org_id=message.org_id, payload=template),
                         template, known=follower)


def template_job_finished(ib) -> None:
    """TEMPLATESENDJOBFINISH: WeChat says whether a template message reached the user (``success``,
    ``failed:user block`` when the user refused the account's notices, ``failed: system failed``);
    the outbox row that sent it (by its msgid) records it. No reply."""
    data = getattr(ib.message, "_data", None) or {}
    msg_id, status = data.get("MsgID") or data.get("MsgId"), data.get("Status") or ""
    if msg_id:
        outbox.provider_report(str(msg_id), str(status))
    return None


def send_mass(message) -> outbox.Delivery:
    """``wechat_mass``: a 群发 (``{mass_id}``: by tag or to everyone with message/mass/sendall, to a segment's followers
    with message/mass/send) or its preview to one follower (``{preview, text}``: message/mass/preview). The send carries
    ``clientmsgid`` = the row, so a request whose outcome is unknown is sent again safely: WeChat answers 45065 with
    the earlier send's msg_id instead of sending twice."""
    from crm_core.db import db
    from crm_core.wechat import mass
    from crm_core.wechat.models import FollowerTag, MassSend

    p = message.payload
    if p.get("preview"):
        try:
            _call(lambda: _client().post("message/mass/preview", data={"touser": message.recipient, "msgtype": "text",
                                                                       "text": {"content": p["text"]}}))
        except WeChatClientException as exc:  # WeChat refused: the errcode table decides, as for every other send
            raise _wrap(exc, message) from None
        return outbox.Delivery(provider_message_id=None)
    row = db.session.get(MassSend, p["mass_id"])
    if row is None or row.status not in ("queued", "sending"):
        return outbox.Delivery(provider_message_id=row.msg_id if row else None)
    data = {"msgtype": "text", "text": {"content": row.text}, "clientmsgid": f"wxcrm-mass-{row.id}", "send_ignore_reprint": 0}
    if row.target == "segment":
        endpoint, data["touser"] = "message/mass/send", list(row.openids or [])
    else:
        tag = db.session.get(FollowerTag, row.tag_id) if row.tag_id else None
        endpoint = "message/mass/sendall"
        data["filter"] = {"is_to_all": row.target == "all", **({"tag_id": tag.wechat_id} if tag else {})}
    try:
        res = _call(lambda: _client().post(endpoint, data=data))
    except WeChatClientException as exc:
        earlier = None
        if exc.errcode == 45065 and exc.response is not None:  # sent before (the same clientmsgid): that send stands
            try:
                earlier = exc.response.json().get("msg_id")
            except ValueError:
                earlier = None
        if earlier is None:
            row.status, row.error = "failed", f"{exc.errcode}: {exc.errmsg}"[:300]
            db.session.commit()
            raise _wrap(exc, message) from None
        res = {"msg_id": earlier}
    except outbox.ChannelError as exc:  # unknown outcome: WeChat's clientmsgid makes the resend safe
        raise outbox.ChannelError(str(exc), retryable=True) from None
    row.msg_id, row.status = str(res.get("msg_id")), "sending"
    mass.touch()
    return outbox.Delivery(provider_message_id=row.msg_id)


def mass_job_finished(ib) -> None:
    """MASSSENDJOBFINISH: WeChat's report of a 群发 — its status and counts go on the send's row. No reply."""
    from crm_core.wechat import mass

    data = getattr(ib.message, "_data", None) or {}
    msg_id = data.get("MsgID") or data.get("MsgId")
    if msg_id:
        mass.job_finished(str(msg_id), str(data.get("Status") or ""), {
            "total_count": data.get("TotalCount"), "filter_count": data.get("FilterCount"),
            "sent_count": data.get("SentCount"), "error_count": data.get("ErrorCount")})
    return None


def register() -> None:
    outbox.register_channel("wechat_mass", send_mass)
    outbox.register_channel("wechat_custom", send_custom)
    outbox.register_channel("wechat_template", send_template)
    outbox.register_channel("wechat_notice", send_notice)
    outbox.register_channel("staff", send_staff)


def template_for(text: str, title: str = "服务通知", url: str | None = None) -> dict:
    """The generic notice template (id from ``WECHAT_TEMPLATE_NOTICE``)."""
    return {"template_id": current_app.config.get("WECHAT_TEMPLATE_NOTICE") or "TPL_SERVICE_NOTICE", "url": url,
            "data": {"first": {"value": title}, "keyword1": {"value": text[:100]}, "remark": {"value": "蓝云服务"}}}


def message_follower(openid: str, text: str, *, title: str = "服务通知", url: str | None = None,
                     org_id: int | None = None, dedupe_key: str | None = None):
    """Queue a message to a WeChat user: a customer-service message if the user's quota still
    allows one when it is sent, else its template message (decided at send time)."""
    template = template_for(text, title, url)
    return outbox.queue_message("wechat_custom", openid, {"msgtype": "text", "text": text, "template": template},
                                org_id=org_id, dedupe_key=dedupe_key)
