"""在线客服: a conversation per WeChat user — what they sent (the inbound rows), what was sent to
them (the outbox rows), who answers, what the agent has read, and the reply window.

The callback writes no extra row per message: the conversation's ``last_message_at`` is kept by
the callback's bookkeeping and the fast path's batch writer (:func:`touch_many`), and the
messages are read from the inbound and outbox tables.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from crm_core.clock import utcnow
from crm_core.customers.models import Contact, Customer
from crm_core.db import db, insert_for, paginate
from crm_core.errors import NotFound, ValidationFailed
from crm_core.org.permissions import Actor, scoped_select
from crm_core.wechat import followers, tags
from crm_core.wechat.models import AgentPresence, Conversation, ConversationSession, Follower, InboundMessage

# events a conversation shows as grey lines (and that bring it to the top); LOCATION and VIEW do not
SHOWN_EVENTS = ("subscribe", "unsubscribe", "scan", "click", "scancode_push", "scancode_waitmsg")
EVENT_TEXT = {"subscribe": "关注了公众号", "unsubscribe": "取消了关注", "scan": "扫描了二维码", "click": "点击了菜单",
              "scancode_push": "扫码", "scancode_waitmsg": "扫码"}
KIND_TEXT = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "shortvideo": "[小视频]", "location": "[位置]",
             "link": "[链接]", "file": "[文件]"}
MENU_LABELS = {"MENU_REPAIR": "在线报修", "MENU_PROGRESS": "服务进度", "MENU_PRODUCTS": "我的产品", "MENU_CHECKIN": "签到"}
STATUSES = ("open", "waiting", "closed")  # waiting: asked for a person (人工客服) and nobody has taken it yet
QUIET_CLOSE = timedelta(minutes=30)  # default: a conversation nobody writes in for this long closes (the next message reopens it)
ONLINE_FOR = timedelta(seconds=60)  # an agent whose 在线客服 page polled within this is online
MAX_REPLY = 600  # characters: WeChat takes 2,048 bytes of text in a customer-service message


def shown(msg_type: str | None, event: str | None) -> bool:
    return msg_type != "event" or (event or "") in SHOWN_EVENTS


def touch_many(items: list[tuple[str, str, datetime]]) -> None:
    """``(appid, openid, at)`` of messages people sent: their conversations come (back) to the top
    and open again; one upsert per batch."""
    latest: dict[tuple[str, str], datetime] = {}
    for appid, openid, at in items:
        key = (appid, openid)
        latest[key] = max(latest.get(key, at), at)
    if not latest:
        return
    rows = [{"appid": a, "openid": o, "status": "open", "last_message_at": at, "last_read_id": 0, "created_at": at,
             "session_started_at": at} for (a, o), at in latest.items()]
    stmt = insert_for(Conversation.__table__)
    from sqlalchemy import case, null

    table = Conversation.__table__
    closed = table.c.status == "closed"
    stmt = stmt.on_conflict_do_update(index_elements=["appid", "openid"], set_={  # a closed conversation opens again
        "last_message_at": stmt.excluded.last_message_at,
        "status": case((closed, "open"), else_=table.c.status),
        # ... as a new session: its response times start again
        "session_started_at": case((closed, stmt.excluded.last_message_at),
                                   else_=func.coalesce(table.c.session_started_at, stmt.excluded.last_message_at)),
        "requested_at": case((closed, null()), else_=table.c.requested_at),
        "first_response_at": case((closed, null()), else_=table.c.first_response_at),
        "first_response_by_id": case((closed, null()), else_=table.c.first_response_by_id)})
    db.session.execute(stmt, rows)


def _unread(openid: str, last_read_id: int) -> int:
    return db.session.scalar(select(func.count(InboundMessage.id)).where(
        InboundMessage.openid == openid, InboundMessage.id > last_read_id, InboundMessage.msg_type != "event")) or 0


def window(follower: Follower | None) -> dict:
    q = followers.cs_quota(follower)
    return {"open": q["remaining"] > 0, "expires_at": q["until"].isoformat() + "Z" if q["until"] else None,
            "quota_left": q["remaining"], "opened_by": q["opened_by"]}


def window_for(c: Conversation) -> dict:
    return window(followers.find(c.appid, c.openid))


def _unread_many(rows: list[Conversation]) -> dict[str, int]:
    """:func:`_unread` of a page of conversations in one query (an index range per conversation, OR-ed)."""
    if not rows:
        return {}
    counted = db.session.execute(select(InboundMessage.openid, func.count(InboundMessage.id)).where(
        or_(*[(InboundMessage.openid == c.openid) & (InboundMessage.id > c.last_read_id) for c in rows]),
        InboundMessage.msg_type != "event").group_by(InboundMessage.openid)).all()
    return dict(counted)


def conversation_dict(c: Conversation, follower: Follower | None = None, name: str | None = None,
                      unread: int | None = None) -> dict:
    follower = follower if follower is not None else followers.find(c.appid, c.openid)
    return {"id": c.id, "openid": c.openid, "contact_id": follower.contact_id if follower else None,
            "customer_id": follower.customer_id if follower else None,
            "name": name or followers.display_name(follower, c.openid), "status": c.status,
            "assignee_id": c.assignee_id, "unread": _unread(c.openid, c.last_read_id) if unread is None else unread,
            "last_message_at": c.last_message_at.isoformat() + "Z", "window": window(follower)}


def list_conversations(actor: Actor, appid: str, *, status: str | None = None, mine: bool = False, q: str | None = None,
                       page: int = 1, per_page: int = 20) -> tuple[list[dict], int]:
    actor.require("follower", "view")
    # this organisation's followers, or not yet anyone's (one follower row per appid and openid, or none)
    stmt = select(Conversation).outerjoin(Follower, (Follower.appid == Conversation.appid)
                                          & (Follower.openid == Conversation.openid)).where(
        Conversation.appid == appid, or_(Follower.org_id == actor.org_id, Follower.org_id.is_(None)))
    if status in STATUSES:
        stmt = stmt.where(Conversation.status == status)
    if mine:
        stmt = stmt.where(Conversation.assignee_id == actor.employee_id)
    if q:
        like = f"%{q.strip()}%"
        found = [Conversation.openid.like(like)]
        if not q.strip().isascii():  # words (中文): what they wrote, the last 90 days of text messages — a scan, so an
            found.append(Conversation.openid.in_(select(InboundMessage.openid).where(  # openid or phone skips it
                InboundMessage.appid == appid, InboundMessage.msg_type == "text",
                InboundMessage.received_at >= utcnow() - timedelta(days=90),
                InboundMessage.summary["content"].as_string().like(like))))
        if actor.can("contact", "view"):  # by the bound contact's name or phone, within the agent's data scope
            visible = scoped_select(actor, Contact).where(or_(Contact.name.like(like), Contact.phone.like(like)))
            found.append(Conversation.openid.in_(select(Follower.openid).where(
                Follower.contact_id.in_(visible.with_only_columns(Contact.id)))))
        stmt = stmt.where(or_(*found))
    rows, total = paginate(stmt, Conversation.last_message_at.desc(), page=page, per_page=per_page)
    names = followers.display_names(c.openid for c in rows)
    fs = {f.openid: f for f in db.session.scalars(select(Follower).where(
        Follower.appid == appid, Follower.openid.in_([c.openid for c in rows])))} if rows else {}
    unread = _unread_many(rows)
    return [conversation_dict(c, fs.get(c.openid), names.get(c.openid), unread.get(c.openid, 0)) for c in rows], total


def get_conversation(actor: Actor, appid: str, conversation_id: int) -> Conversation:
    actor.require("follower", "view")
    c = db.session.get(Conversation, conversation_id)
    if c is None or c.appid != appid:
        raise NotFound("会话不存在。")
    f = followers.find(appid, c.openid)
    if f is not None and f.org_id is not None and f.org_id != actor.org_id:
        raise NotFound("会话不存在。")
    return c


def _inbound_text(m: InboundMessage) -> str:
    s = m.summary or {}
    if m.msg_type == "text":
        return s.get("content") or ""
    if m.msg_type == "event":
        text = EVENT_TEXT.get(m.event or "", m.event or "")
        if m.event == "click" and m.event_key:
            text += f"「{MENU_LABELS.get(m.event_key, m.event_key)}」"
        if s.get("scene"):
            text += f"「{s['scene']}」"
        return text
    if m.msg_type == "voice" and s.get("recognition"):
        return f"[语音] {s['recognition']}"
    if m.msg_type == "location":
        return f"[位置] {s.get('label') or ''}".strip()
    if m.msg_type == "link" and (s.get("title") or s.get("url")):
        return f"[链接] {s.get('title') or s.get('url')}"
    return KIND_TEXT.get(m.msg_type, f"[{m.msg_type}]")


MEDIA_TYPES = ("image", "voice", "video", "shortvideo")


def _inbound_extra(m: InboundMessage) -> dict:
    """What a page needs to show the message as itself: ``media`` (image / voice / video: the page asks its media
    route for it), ``location`` (lat, lng, label) or ``link`` (title, description, an http(s) url only)."""
    s = m.summary or {}
    if m.msg_type in MEDIA_TYPES and s.get("media_id"):
        return {"media": "video" if m.msg_type == "shortvideo" else m.msg_type, "recognition": s.get("recognition")}
    if m.msg_type == "location":
        try:
            return {"location": {"lat": float(s["location_x"]), "lng": float(s["location_y"]), "label": s.get("label") or ""}}
        except (KeyError, TypeError, ValueError):
            return {}
    if m.msg_type == "link":
        url = str(s.get("url") or "")
        return {"link": {"title": s.get("title") or url, "description": s.get("description") or "",
                         "url": url if url.startswith(("https://", "http://")) else None}}
    return {}


def _outbound_text(payload: dict) -> str:
    if "text" in payload and isinstance(payload["text"], str):
        return payload["text"]
    data = payload.get("data") or (payload.get("template") or {}).get("data") or {}
    return "；".join(v.get("value", "") for k, v in data.items() if k in ("first", "keyword1") and isinstance(v, dict))


def messages(actor: Actor, appid: str, conversation_id: int, limit: int = 100, mark_read: bool = False) -> list[dict]:
    """The conversation's last ``limit`` messages both ways, oldest first. Reading marks it read."""
    return messages_of(get_conversation(actor, appid, conversation_id), limit=limit, mark_read=mark_read)


def messages_of(c: Conversation, limit: int = 100, mark_read: bool = False) -> list[dict]:
    """:func:`messages` of a conversation already loaded through :func:`get_conversation`."""
    from crm_core.outbox import OutboxMessage

    appid = c.appid
    inbound = db.session.scalars(select(InboundMessage).where(  # LOCATION reports must not crowd the thread out
        InboundMessage.appid == appid, InboundMessage.openid == c.openid,
        or_(InboundMessage.msg_type != "event", InboundMessage.event.in_(SHOWN_EVENTS)))
        .order_by(InboundMessage.id.desc()).limit(limit)).all()
    outbound = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == c.openid,
                                                              OutboxMessage.channel.like("wechat%"))
                                  .order_by(OutboxMessage.id.desc()).limit(limit)).all()
    out = [{"id": m.id, "direction": "in", "kind": "event" if m.msg_type == "event" else m.msg_type,
            "text": _inbound_text(m), "at": m.received_at.isoformat() + "Z", "status": None, **_inbound_extra(m)}
           for m in inbound if shown(m.msg_type, m.event)]
    out += [{"id": m.id, "direction": "out", "kind": (m.payload or {}).get("msgtype") or "text", "text": _outbound_text(m.payload or {}),
             **({"media": "image"} if (m.payload or {}).get("msgtype") == "image" else {}),
             **({"link": {"title": m.payload["article"]["title"], "description": m.payload["article"].get("description") or "",
                          "url": m.payload["article"]["url"]}} if (m.payload or {}).get("msgtype") == "news" else {}),
             "at": m.created_at.isoformat() + "Z", "status": m.status, "error": m.last_error,
             "channel": "template" if m.channel == "wechat_template" or (m.provider_message_id and m.channel != "log")
             else "customer_service", "agent_id": (m.payload or {}).get("agent_id")} for m in outbound]
    out.sort(key=lambda x: x["at"])
    if mark_read and inbound and inbound[0].id > c.last_read_id:
        c.last_read_id = inbound[0].id
        db.session.flush()
    return out[-limit:]


def reply(actor: Actor, appid: str, conversation_id: int, text: str) -> dict:
    """An agent's answer: a customer-service message while the user's actions allow one, else the
    template notice (decided when it is sent; the answer says which is expected now)."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("请输入回复内容。", fields={"text": "required"})
    if len(text) > MAX_REPLY:
        raise ValidationFailed(f"回复最多 {MAX_REPLY} 字。", fields={"text": f"at most {MAX_REPLY} characters"})
    return _queue_reply(actor, appid, conversation_id, {"msgtype": "text", "text": text, "title": "客服回复"})


def reply_image(actor: Actor, appid: str, conversation_id: int, media_file_id: int) -> dict:
    """A picture the agent uploaded (:func:`crm_core.media.save_upload`, purpose ``chat_reply``, by this agent), sent
    as a customer-service image (uploaded to WeChat as temporary media when it goes). A picture cannot travel as a
    template message: outside the 48-hour window it is refused now (409 ``window_closed``), not sent as something else."""
    from crm_core import media

    row = media.owned_media(media_file_id, org_id=actor.org_id, employee_id=actor.employee_id)
    if row.status != "ready":
        raise ValidationFailed("图片尚未就绪。", fields={"media_file_id": "not ready"})
    return _queue_reply(actor, appid, conversation_id, {"msgtype": "image", "media_file_id": row.id, "text": "[图片]",
                                                        "title": "客服回复"}, template_ok=False)


def reply_news(actor: Actor, appid: str, conversation_id: int, article: dict) -> dict:
    """A news card (图文: title, summary, cover, link) — a material with the agent's share link. WeChat takes one
    article per customer-service news message. Outside the window it goes as the template notice with the link."""
    title = str(article.get("title") or "").strip()[:64]
    url = str(article.get("url") or "")
    if not title or not url.startswith(("https://", "http://")):
        raise ValidationFailed("图文需要标题和链接。", fields={"article": "title and an http(s) url"})
    card = {"title": title, "description": str(article.get("description") or "")[:120], "url": url,
            "picurl": article.get("picurl") or None}
    return _queue_reply(actor, appid, conversation_id, {"msgtype": "news", "article": card, "text": f"[图文] {title}",
                                                        "title": "客服为您推荐", "url": url})


def _queue_reply(actor: Actor, appid: str, conversation_id: int, payload: dict, template_ok: bool = True) -> dict:
    from crm_core import outbox
    from crm_core.errors import Conflict
    from crm_core.outbox import OutboxMessage

    actor.require("follower", "edit")
    c = get_conversation(actor, appid, conversation_id)
    follower = followers.find(appid, c.openid)
    if follower is None or not follower.subscribed:
        raise ValidationFailed("对方未关注公众号，无法发送消息。", code="not_following")
    queued = db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.recipient == c.openid, OutboxMessage.channel == "wechat_custom",
        OutboxMessage.status.in_(("pending", "sending")))) or 0
    now_open = window(follower)["quota_left"] > queued  # what is still queued will use the quota first
    if not now_open and not template_ok:
        raise Conflict("对方 48 小时内没有可回复的互动，图片无法送达；请发送文字，将以模板消息通知对方。", code="window_closed")
    # without a quota left when it is sent, the channel sends its template notice ("客服回复") instead
    msg = outbox.queue_message("wechat_custom", c.openid, {**payload, "agent_id": actor.employee_id}, org_id=actor.org_id)
    if c.assignee_id is None and actor.employee_id:
        c.assignee_id = actor.employee_id  # who answers first takes the conversation
    if c.status == "waiting":
        c.status = "open"
    if c.first_response_at is None:  # the session's first answer: the response time
        c.first_response_at, c.first_response_by_id = utcnow(), actor.employee_id
    c.last_message_at = utcnow()
    db.session.flush()
    return {"id": msg.id, "status": msg.status, "channel": "customer_service" if now_open else "template"}


def _visible(actor: Actor, model, record_id: int | None):
    from crm_core.errors import DomainError
    from crm_core.org.permissions import get_visible

    if not record_id:
        return None
    try:
        return get_visible(actor, model, record_id)
    except DomainError:  # outside the agent's scope: the card says only that the follower is bound
        return None


def follower_card(actor: Actor, appid: str, openid: str) -> dict:
    """Beside the conversation: who this is — bound contact and customer (as far as the agent's data
    scope shows them), last location, window."""
    f = followers.find(appid, openid)
    contact = _visible(actor, Contact, f.contact_id) if f and f.contact_id else None
    customer = _visible(actor, Customer, f.customer_id) if f and f.customer_id else None
    return {"name": followers.display_name(f, openid), "openid": openid, "subscribed": bool(f and f.subscribed),
            "bound": bool(f and f.contact_id),
            "contact": {"id": contact.id, "name": contact.name, "phone": contact.phone} if contact else None,
            "customer": {"id": customer.id, "name": customer.name} if customer else None,
            "location": {"lat": f.last_lat, "lng": f.last_lng} if f and f.last_location_at else None,
            "tags": tags.tags_of([f.id]).get(f.id, []) if f else [], "window": window(f)}


def ask_for_agent(appid: str, openid: str, account_org_id: int | None = None) -> tuple[Conversation, int | None]:
    """人工客服: the user asked for a person. The conversation goes to the online agent (console open
    within a minute, accepting) with the fewest open conversations, the longest unassigned first on
    a tie (round-robin); its assignee keeps it while online. With nobody online it waits in the
    queue (待接入) until an agent takes it, and the agents are told on their phones (``account_org_id``: the
    organisation running the account, for a follower not yet bound to one). Returns the conversation and the agent
    chosen, if any."""
    now = utcnow()
    touch_many([(appid, openid, now)])
    c = db.session.scalars(select(Conversation).where(Conversation.appid == appid, Conversation.openid == openid)).one()
    if c.requested_at is None:
        c.requested_at = now
    follower = followers.find(appid, openid)
    online = _online(follower.org_id if follower is not None else None, now)
    if c.assignee_id is not None and c.assignee_id in online:
        db.session.flush()
        return c, c.assignee_id
    agent = _next_agent(online)
    if agent is None:
        c.status = "waiting"
        if c.assignee_id is not None and c.assignee_id not in online:
            c.assignee_id = None  # their agent has gone: anyone who comes may take it
        org_id = follower.org_id if follower is not None and follower.org_id is not None else account_org_id
        if org_id is not None:
            _tell_agents_someone_waits(c, org_id, followers.display_name(follower, openid))
    else:
        c.assignee_id, c.status = agent.employee_id, "open"
        agent.last_assigned_at = now
    db.session.flush()
    return c, c.assignee_id if agent is not None else None


def _tell_agents_someone_waits(c: Conversation, org_id: int, who: str) -> None:
    """Nobody is online to take a 人工客服 request: the organisation's agents (those accepting conversations, else its
    dispatchers) get a staff notice on their phones that opens the conversation, once per request."""
    from crm_core import outbox
    from crm_core.org.organization import employees_with_role

    agents = list(db.session.scalars(select(AgentPresence.employee_id).where(
        AgentPresence.org_id == org_id, AgentPresence.accepting.is_(True))))
    if not agents:
        agents = [e.id for e in employees_with_role(org_id, "dispatcher")]
    for emp_id in agents[:20]:
        outbox.notify_staff(emp_id, "conversation_waiting", f"{who} 在公众号请求人工客服，正在排队等待接入。",
                            org_id=org_id, conversation_id=c.id,
                            dedupe_key=f"conversation-waiting:{c.id}:{c.requested_at.isoformat()}:{emp_id}")


def _online(org_id: int | None, now: datetime) -> dict[int, AgentPresence]:
    stmt = select(AgentPresence).where(AgentPresence.accepting.is_(True), AgentPresence.last_seen_at >= now - ONLINE_FOR)
    if org_id is not None:
        stmt = stmt.where(AgentPresence.org_id == org_id)
    return {p.employee_id: p for p in db.session.scalars(stmt)}


def _next_agent(online: dict[int, AgentPresence]) -> AgentPresence | None:
    if not online:
        return None
    load = dict(db.session.execute(select(Conversation.assignee_id, func.count(Conversation.id)).where(
        Conversation.assignee_id.in_(list(online)), Conversation.status != "closed").group_by(Conversation.assignee_id)).all())
    epoch = datetime(1970, 1, 1)
    return min(online.values(), key=lambda p: (load.get(p.employee_id, 0), p.last_assigned_at or epoch, p.employee_id))


def seen_online(actor: Actor, accepting: bool | None = None) -> AgentPresence | None:
    """The agent has the 在线客服 console open (its pages and the open conversation's poll say so);
    ``accepting`` switches 接待中 / 暂停接待."""
    if not actor.employee_id or not actor.can("follower", "edit"):
        return None
    p = db.session.get(AgentPresence, actor.employee_id)
    now = utcnow()
    if p is None:
        p = AgentPresence(employee_id=actor.employee_id, org_id=actor.org_id, last_seen_at=now, accepting=True)
        db.session.add(p)
    p.last_seen_at = now
    if accepting is not None:
        p.accepting = accepting
    db.session.flush()
    return p


def presence(actor: Actor) -> dict:
    p = db.session.get(AgentPresence, actor.employee_id) if actor.employee_id else None
    now = utcnow()
    return {"accepting": bool(p and p.accepting), "online": len(_online(actor.org_id, now)),
            "waiting": db.session.scalar(select(func.count(Conversation.id)).where(Conversation.status == "waiting")) or 0}


def assign(actor: Actor, appid: str, conversation_id: int, employee_id: int | None = None) -> Conversation:
    """Take a conversation (接入: ``employee_id`` left out) or hand it to a colleague (转接)."""
    from crm_core.org.models import Employee

    actor.require("follower", "edit")
    c = get_conversation(actor, appid, conversation_id)
    target = employee_id or actor.employee_id
    emp = db.session.get(Employee, target) if target else None
    if emp is None or emp.org_id != actor.org_id:
        raise ValidationFailed("接待人不存在。", fields={"employee_id": "unknown employee"})
    c.assignee_id = emp.id
    if c.status != "closed":
        c.status = "open"
    db.session.flush()
    return c


def _end_session(c: Conversation, now: datetime, by: str) -> None:
    """Keep the session's figures (for 客服统计) and close it."""
    if c.session_started_at is not None:
        db.session.add(ConversationSession(conversation_id=c.id, assignee_id=c.assignee_id, started_at=c.session_started_at,
                                           requested_at=c.requested_at, first_response_at=c.first_response_at,
                                           first_response_by_id=c.first_response_by_id, closed_at=now, closed_by=by))
    c.status = "closed"
    c.session_started_at = c.requested_at = c.first_response_at = c.first_response_by_id = None


def close(actor: Actor, appid: str, conversation_id: int) -> Conversation:
    actor.require("follower", "edit")
    c = get_conversation(actor, appid, conversation_id)
    if c.status != "closed":
        _end_session(c, utcnow(), "agent")
    db.session.flush()
    return c


def close_quiet(now: datetime | None = None, quiet: timedelta = QUIET_CLOSE) -> int:
    """Conversations nobody wrote in for ``quiet`` close (their session's figures kept); the user's
    next message opens them again."""
    now = now or utcnow()
    rows = db.session.scalars(select(Conversation).where(Conversation.status != "closed",
                                                         Conversation.last_message_at < now - quiet).limit(5000)).all()
    for c in rows:
        _end_session(c, now, "quiet")
    db.session.flush()
    return len(rows)


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 1) if values else None


def last_days(org_id: int, days: int):
    """The last ``days`` days, today included, where the organisation is: (first day, last day, and
    their bounds in UTC as stored)."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from crm_core.clock import local_today, to_utc
    from crm_core.org.settings import org_timezone

    tz = org_timezone(org_id)
    end = local_today(tz)
    start = end - timedelta(days=days - 1)
    zone = ZoneInfo(tz)
    return (start, end, to_utc(datetime.combine(start, time.min), zone),
            to_utc(datetime.combine(end + timedelta(days=1), time.min), zone))


def response_stats(actor: Actor, date_from: datetime, date_to: datetime) -> dict:
    """客服统计: per agent, the sessions closed in [date_from, date_to): how many, how many answered,
    the median first response (from the request for a person, else the session's first message)
    and the median time to close, in seconds; and the same for everyone."""
    from crm_core.org.models import Employee

    actor.require("follower", "view")
    rows = db.session.execute(select(ConversationSession).join(Conversation, Conversation.id == ConversationSession.conversation_id)
                              .join(Employee, Employee.id == ConversationSession.assignee_id, isouter=True)
                              .where(ConversationSession.closed_at >= date_from, ConversationSession.closed_at < date_to,
                                     or_(Employee.org_id == actor.org_id, ConversationSession.assignee_id.is_(None)))
                              .limit(20000)).scalars().all()
    per: dict[int | None, dict] = {}
    for r in rows:
        d = per.setdefault(r.assignee_id, {"sessions": 0, "answered": 0, "first": [], "resolve": []})
        d["sessions"] += 1
        if r.first_response_at is not None:
            d["answered"] += 1
            d["first"].append((r.first_response_at - (r.requested_at or r.started_at)).total_seconds())
        d["resolve"].append((r.closed_at - r.started_at).total_seconds())
    from crm_core.org.organization import employee_names

    names = employee_names([k for k in per if k])

    def figures(d):
        return {"sessions": d["sessions"], "answered": d["answered"], "median_first_response_s": _median(d["first"]),
                "median_resolution_s": _median(d["resolve"])}

    total = {"sessions": 0, "answered": 0, "first": [], "resolve": []}
    for d in per.values():
        for k in total:
            total[k] += d[k]
    agents = [{"employee_id": k, "name": names.get(k) if k else "未分配", **figures(d)} for k, d in per.items()]
    agents.sort(key=lambda a: (-a["sessions"], a["name"] or ""))
    return {"agents": agents, "all": figures(total)}



# --- 快捷回复 ----------------------------------------------------------------------------------
CANNED_VARIABLES = ("客户名称", "联系人", "工单号", "客服")
MAX_CANNED = 50


def canned_replies(org_id: int) -> list[dict]:
    from crm_core.org.settings import get_setting

    return list(get_setting(org_id, "canned_replies").get("items") or [])


def save_canned_replies(actor: Actor, items: list[dict]) -> list[dict]:
    """Replace the team's canned replies (agents who may answer followers keep them)."""
    import re

    from crm_core.org.settings import remember

    actor.require("follower", "edit")
    if len(items) > MAX_CANNED:
        raise ValidationFailed(f"快捷回复最多 {MAX_CANNED} 条。", fields={"items": "too_many"})
    clean = []
    for i, item in enumerate(items):
        title, text = (item.get("title") or "").strip(), (item.get("text") or "").strip()
        if not title or not text:
            raise ValidationFailed("每条快捷回复都需要标题和内容。", fields={f"items[{i}]": "required"})
        if len(title) > 20 or len(text) > MAX_REPLY:
            raise ValidationFailed(f"标题最多 20 字，内容最多 {MAX_REPLY} 字。", fields={f"items[{i}]": "too_long"})
        unknown = [v for v in re.findall(r"\{([^{}]{1,10})\}", text) if v not in CANNED_VARIABLES]
        if unknown:
            raise ValidationFailed(f"不认识的变量：{{{unknown[0]}}}；可用：" + "、".join("{%s}" % v for v in CANNED_VARIABLES),
                                   fields={f"items[{i}]": "unknown_variable"})
        clean.append({"title": title, "text": text})
    remember(actor.org_id, "canned_replies", items=clean)
    return clean


def fill_canned(text: str, values: dict[str, str | None]) -> str:
    """A canned reply with this conversation's values in place (an unknown value reads as empty)."""
    for name in CANNED_VARIABLES:
        text = text.replace("{" + name + "}", values.get(name) or "")
    return text


def filled_canned(actor: Actor, card: dict) -> list[dict]:
    """The organisation's canned replies with this conversation's values in place: the follower card's customer and
    contact, its newest ticket's number (when the card lists tickets) and the agent's own name."""
    from crm_core.org.organization import employee_names

    values = {"客户名称": (card.get("customer") or {}).get("name"), "联系人": (card.get("contact") or {}).get("name"),
              "工单号": next((t["number"] for t in card.get("tickets") or []), None),
              "客服": employee_names([actor.employee_id]).get(actor.employee_id)}
    return [{"title": r["title"], "text": fill_canned(r["text"], values)} for r in canned_replies(actor.org_id)]
