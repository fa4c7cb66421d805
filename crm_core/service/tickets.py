"""Self-service tickets (客户反馈), seed 自助式服务 steps 3–6.

Internal states and the only moves between them (anything else is 409 with the reason)::

    submitted ──dispatch──▶ dispatched ──first record / start──▶ in_progress
        │                      │  ▲ undo (no open work order left)      │ ▲
        │                      ▼  │                                      ▼ │
        │                  (more work orders)          waiting_customer / waiting_parts
        ├─complete directly (no work order)──▶ completed ◀── last open work order completes
        ├─cancel (customer or staff, reason) / reject (staff, reason)
    completed ──after N days──▶ closed;   completed ──customer reopens within N days──▶ in_progress

Customers see labels (:data:`CUSTOMER_LABELS`), not the internal names. Every move is a
timeline entry; moves the customer should know about queue a ``wechat_notice`` (the gateway
sends a customer-service message inside the 48-hour window, a template message outside it).
The SLA clock (first response, resolution; per kind and priority) pauses while the ticket
waits for the customer or for parts.

Work orders (dispatch, records, reassign, completion) are in :mod:`crm_core.service.work_orders`;
lists and the dicts pages answer with are in :mod:`crm_core.service.queries`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from crm_core import jobs, outbox
from crm_core.activities.models import Activity
from crm_core.clock import local_str, local_today, utcnow
from crm_core.context import service
from crm_core.customers.models import Contact, Customer, Product, ProductArchive
from crm_core.db import begin_savepoint, db, paginate
from crm_core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_core.org.models import Employee, EmployeePosition, Position
from crm_core.org.organization import employees_with_role
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import get_setting, org_timezone
from crm_core.service.models import (
    TICKET_KINDS,
    TICKET_PRIORITIES,
    Rating,
    Ticket,
    TicketEvent,
    WorkOrder,
)
from crm_core.wechat.models import Follower

CUSTOMER_LABELS = {"submitted": "已提交", "dispatched": "已派工", "in_progress": "处理中", "waiting_customer": "待您确认",
                   "waiting_parts": "等待配件", "completed": "已完成", "closed": "已关闭", "cancelled": "已取消",
                   "rejected": "未受理"}


STAFF_LABELS = {"submitted": "待派工", "dispatched": "已派工", "in_progress": "处理中", "waiting_customer": "等待客户",
                "waiting_parts": "等待配件", "completed": "已完成", "closed": "已关闭", "cancelled": "已取消",
                "rejected": "已驳回"}


KIND_LABELS = {"repair": "报修", "complaint": "投诉", "suggestion": "建议", "consultation": "咨询"}


OPEN_STATES = ("submitted", "dispatched", "in_progress", "waiting_customer", "waiting_parts")


PAUSED_STATES = ("waiting_customer", "waiting_parts")


TRANSITIONS = {
    "submitted": {"dispatched", "completed", "cancelled", "rejected"},
    "dispatched": {"submitted", "in_progress", "waiting_customer", "waiting_parts", "completed", "cancelled"},
    "in_progress": {"waiting_customer", "waiting_parts", "completed", "cancelled"},
    "waiting_customer": {"in_progress", "completed", "cancelled", "closed"},
    "waiting_parts": {"in_progress", "completed", "cancelled"},
    "completed": {"closed", "in_progress"},
    "closed": set(), "cancelled": set(), "rejected": set(),
}


WO_OPEN = ("assigned", "in_progress")


MAX_PHOTOS = 9


def settings(org_id: int) -> dict:
    return get_setting(org_id, "self_service")


# --- transitions ----------------------------------------------------------------------------
def _event(t: Ticket, kind: str, note: str | None = None, *, actor: Actor | None = None, label: str | None = None,
           frm: str | None = None, to: str | None = None, public: bool = False, public_note: str | None = None,
           work_order_id: int | None = None) -> None:
    """A timeline entry; internal unless ``public`` (then the customer reads ``public_note``, not ``note``)."""
    db.session.add(TicketEvent(ticket_id=t.id, at=utcnow(), kind=kind, from_status=frm, to_status=to,
                               employee_id=actor.employee_id if actor else None,
                               actor_label=label or (actor.label if actor else None), note=note, public=public,
                               public_note=public_note if public else None, work_order_id=work_order_id))


def _move(t: Ticket, to: str, *, actor: Actor | None = None, label: str | None = None, note: str | None = None,
          public_note: str | None = None) -> None:
    """Move the ticket; the customer sees the new state's label, and ``public_note`` only (``note`` stays internal)."""
    frm = t.status
    if to == frm:
        return
    if to not in TRANSITIONS[frm]:
        raise Conflict(f"工单当前为「{STAFF_LABELS[frm]}」，不能变为「{STAFF_LABELS[to]}」。", code="illegal_transition",
                       extra={"from": frm, "to": to})
    # compare and set: of two people moving the same ticket at once, the second is told, not doubled
    moved = db.session.execute(update(Ticket).where(Ticket.id == t.id, Ticket.status == frm).values(status=to)
                               .execution_options(synchronize_session=False)).rowcount
    if not moved:
        db.session.refresh(t, ["status"])
        raise Conflict(f"这张工单刚被其他人处理，现在是「{STAFF_LABELS.get(t.status, t.status)}」，请刷新后再操作。",
                       code="concurrent_change", extra={"from": frm, "to": to, "now": t.status})
    now = utcnow()
    if frm in PAUSED_STATES and t.paused_since:  # the SLA clock runs again
        t.sla_paused_seconds = (t.sla_paused_seconds or 0) + int((now - t.paused_since).total_seconds())
        t.paused_since = None
    if to in PAUSED_STATES:
        t.paused_since = now
    if frm == "submitted" and t.first_response_at is None:
        t.first_response_at = now
    if to == "completed":
        t.completed_at = now
    if to == "closed":
        t.closed_at = now
    t.status = to
    _event(t, "status", note, actor=actor, label=label, frm=frm, to=to, public=True, public_note=public_note)


def _notify_customer(t: Ticket, text: str, *, title: str = "服务进度通知", key: str | None = None, url: str | None = None) -> None:
    if not t.openid:
        return
    outbox.queue_message("wechat_notice", t.openid, {"title": title, "text": f"【{t.number}】{text}", "url": url,
                                                     "ticket_id": t.id},
                         org_id=t.org_id, dedupe_key=f"ticket:{t.id}:{key}" if key else None)


def _open_work_orders(t: Ticket) -> list[WorkOrder]:
    return list(db.session.scalars(select(WorkOrder).where(WorkOrder.ticket_id == t.id, WorkOrder.status.in_(WO_OPEN))))


def _complete_ticket(t: Ticket, actor: Actor | None, note: str | None, public_url: str | None = None,
                     share: bool = False) -> None:
    if _open_work_orders(t):
        raise Conflict("还有未完成的服务工单，不能完成客户反馈。", code="open_work_orders")
    _move(t, "completed", actor=actor, note=note, public_note=note if share else None)
    _notify_customer(t, "您的服务请求已处理完成，请为本次服务评分，感谢您的支持！", title="服务完成，邀请评价", key=f"completed:{t.reopen_count}",
                     url=public_url)


# --- customers (H5) -----------------------------------------------------------------------------
def _number(org_id: int) -> str:
    """FW + China date + the day's sequence from its counter (crm_core.numbering), lifted above any
    number of the day already stored (found with a range on the (org_id, number) unique index)."""
    from crm_core.numbering import next_value

    prefix = f"FW{local_today(org_timezone(org_id)):%Y%m%d}"
    top = db.session.scalar(select(func.max(Ticket.number)).where(Ticket.org_id == org_id, Ticket.number >= f"{prefix}0000",
                                                                   Ticket.number <= f"{prefix}99999"))
    floor = int(top[len(prefix):]) if top and top[len(prefix):].isdigit() else 0
    return f"{prefix}{next_value(org_id, prefix, floor):04d}"


def _save_numbered(t: Ticket) -> None:
    """Insert with the next number of the day (a counter: concurrent requests get different ones;
    a clash with a number stored some other way takes the next)."""
    from sqlalchemy.exc import IntegrityError

    for _ in range(5):
        t.number = _number(t.org_id)
        try:
            with begin_savepoint():
                db.session.add(t)
                db.session.flush()
            return
        except IntegrityError:
            continue
    raise Conflict("系统繁忙，请稍后重试。", code="busy")


def _product(org_id: int, customer_id: int, data: dict) -> dict:
    out = {"product_archive_id": None, "product_id": None, "in_warranty": None,
           "product_note": (data.get("product_note") or "").strip()[:200] or None}
    if data.get("product_archive_id"):
        archive = db.session.get(ProductArchive, data["product_archive_id"])
        if archive is None or archive.customer_id != customer_id:
            raise NotFound("产品档案不存在。", fields={"product_archive_id": "unknown"})
        out.update(product_archive_id=archive.id, product_id=archive.product_id,
                   in_warranty=archive.warranty_until >= local_today(org_timezone(org_id)))
    elif data.get("product_id"):
        product = db.session.get(Product, data["product_id"])
        if product is None or product.org_id != org_id:
            raise NotFound("产品不存在。", fields={"product_id": "unknown"})
        out["product_id"] = product.id
    elif data.get("kind") in ("repair",) and not out["product_note"]:
        raise ValidationFailed("报修请选择产品（没有产品档案时可选择产品或填写产品名称）。", fields={"product_archive_id": "required"})
    return out


def _photos(data: dict, *, org_id: int, openid: str | None = None, employee_id: int | None = None) -> list[int]:
    from crm_core.media import owned_media

    ids = list(dict.fromkeys(data.get("photo_ids") or []))
    if len(ids) > MAX_PHOTOS:
        raise ValidationFailed(f"最多上传 {MAX_PHOTOS} 张照片。", fields={"photo_ids": "too_many"})
    return [owned_media(i, org_id=org_id, openid=openid, employee_id=employee_id).id for i in ids]


def _validate(data: dict) -> None:
    if data.get("kind") not in TICKET_KINDS:
        raise ValidationFailed("反馈类型只能是报修、投诉、建议或咨询。", fields={"kind": f"one of {', '.join(TICKET_KINDS)}"})
    if not (data.get("description") or "").strip():
        raise ValidationFailed("请描述您遇到的问题。", fields={"description": "required"})
    if data.get("priority", "normal") not in TICKET_PRIORITIES:
        raise ValidationFailed("优先级不正确。", fields={"priority": "invalid"})
    if data.get("required_by") and data["required_by"] < utcnow():
        raise ValidationFailed("要求完成时间不能早于现在。", fields={"required_by": "in_past"})


def bound_follower(appid: str, openid: str) -> Follower:
    f = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == openid)).first()
    if f is None or f.contact_id is None:
        raise PermissionDenied("请先验证手机号，绑定您的客户信息。", code="verification_required")
    return f


def submit(follower: Follower, data: dict) -> Ticket:
    """A customer's own request from WeChat (verified follower)."""
    _validate(data)
    contact = db.session.get(Contact, follower.contact_id)
    customer = db.session.get(Customer, contact.customer_id)
    product = _product(customer.org_id, customer.id, data)
    photos = _photos(data, org_id=customer.org_id, openid=follower.openid)
    phone = (data.get("contact_phone") or contact.phone or "").strip()[:32] or None
    t = Ticket(org_id=customer.org_id, owner_id=customer.owner_id, department_id=customer.department_id,
               number="", kind=data["kind"], priority=data.get("priority") or "normal",
               status="submitted", source="wechat", description=data["description"].strip()[:2000], customer_id=customer.id,
               contact_id=contact.id, openid=follower.openid, required_by=data.get("required_by"), contact_phone=phone,
               photo_ids=photos, **product)
    _save_numbered(t)
    _event(t, "status", "客户通过微信提交", label=contact.name, to="submitted", public=True, public_note="您通过微信提交了服务请求")
    for emp_id in _dispatchers(t.org_id):
        outbox.notify_staff(emp_id, "ticket_submitted", f"新的{KIND_LABELS[t.kind]}：{customer.name} — {t.description[:40]}",
                            org_id=t.org_id, dedupe_key=f"ticket-new:{t.id}:{emp_id}", ticket_id=t.id)
    db.session.flush()
    return t


def customer_tickets(follower: Follower, *, status: str | None = None, page: int = 1, per_page: int = 20):
    stmt = select(Ticket).where(_own(follower))
    if status == "open":
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES))
    elif status:
        stmt = stmt.where(Ticket.status == status)
    return paginate(stmt, Ticket.id.desc(), page=page, per_page=per_page)


def _own(follower: Follower):
    return or_(Ticket.openid == follower.openid, Ticket.contact_id == follower.contact_id) if follower.contact_id \
        else Ticket.openid == follower.openid


def own_ticket(follower: Follower, ticket_id: int) -> Ticket:
    t = db.session.scalars(select(Ticket).where(Ticket.id == ticket_id, _own(follower))).first()
    if t is None:
        raise NotFound("服务请求不存在。")
    return t


def customer_cancel(follower: Follower, ticket_id: int, reason: str | None) -> Ticket:
    t = own_ticket(follower, ticket_id)
    if t.status not in ("submitted", "dispatched", "waiting_customer"):
        raise Conflict(f"服务请求当前为「{CUSTOMER_LABELS[t.status]}」，已无法取消，请联系客服。", code="illegal_transition")
    t.reason = (reason or "客户取消").strip()[:500]
    for wo in _open_work_orders(t):
        wo.status = "cancelled"
    _move(t, "cancelled", label="客户", note=t.reason, public_note=t.reason)  # the customer's own words
    db.session.flush()
    return t


def customer_reopen(follower: Follower, ticket_id: int, reason: str) -> Ticket:
    t = own_ticket(follower, ticket_id)
    grace = timedelta(days=int(settings(t.org_id)["reopen_days"]))
    if t.status != "completed":
        raise Conflict(f"只有已完成的服务请求可以重新打开（当前：{CUSTOMER_LABELS[t.status]}）。", code="illegal_transition")
    if t.completed_at and utcnow() - t.completed_at > grace:
        raise Conflict(f"已超过 {grace.days} 天，不能重新打开，请提交新的服务请求。", code="reopen_window_passed")
    if not (reason or "").strip():
        raise ValidationFailed("请说明需要重新处理的原因。", fields={"reason": "required"})
    t.reason, t.reopen_count, t.completed_at = reason.strip()[:500], t.reopen_count + 1, None
    _move(t, "in_progress", label="客户", note=f"客户重新打开：{t.reason}", public_note=f"您重新打开了服务请求：{t.reason}")
    for emp_id in {t.handler_id, t.dispatcher_id} - {None}:
        outbox.notify_staff(emp_id, "ticket_reopened", f"{t.number} 被客户重新打开：{t.reason}", org_id=t.org_id, ticket_id=t.id)
    db.session.flush()
    return t


def rate(follower: Follower, ticket_id: int, score, tags: list[str] | None, comment: str | None) -> Rating:
    t = own_ticket(follower, ticket_id)
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ValidationFailed("评分为 1 到 5 分。", fields={"score": "1-5"})
    if t.status != "completed":
        raise Conflict(f"服务完成后才能评价（当前：{CUSTOMER_LABELS[t.status]}）。", code="not_completed")
    if db.session.scalar(select(Rating.id).where(Rating.ticket_id == t.id)) is not None:
        raise Conflict("您已经评价过这次服务了，谢谢！", code="already_rated")
    r = Rating(ticket_id=t.id, org_id=t.org_id, score=score, tags=[str(x)[:20] for x in (tags or [])][:10],
               comment=(comment or "").strip()[:1000] or None, openid=follower.openid, engineer_id=t.handler_id,
               kind=t.kind, created_at=utcnow())
    db.session.add(r)
    db.session.flush()
    text = f"客户评分 {score} 分" + (f"：{r.comment}" if r.comment else "")
    _event(t, "rating", text, label="客户", public=True, public_note=text)
    if score <= 2:
        _low_rating_follow_up(t, r)
    db.session.flush()
    return r


def _low_rating_follow_up(t: Ticket, r: Rating) -> None:
    """A 1–2 rating: a follow-up activity (回访) for the service manager."""
    manager = service_manager(t)
    if manager is None:
        return
    customer = db.session.get(Customer, t.customer_id)
    a = Activity(org_id=t.org_id, owner_id=manager.id, department_id=manager.department_id, assignee_id=manager.id,
                 subject=f"低分回访：{customer.name}（{t.number}，{r.score} 分）", kind="call", status="planned",
                 customer_id=t.customer_id, contact_id=t.contact_id, ticket_id=t.id,
                 planned_start=utcnow(), planned_end=utcnow() + timedelta(days=1), warn_before_minutes=30,
                 result=r.comment)
    db.session.add(a)
    db.session.flush()
    outbox.notify_staff(manager.id, "low_rating", f"客户对 {t.number} 评分 {r.score} 分，请尽快回访。", org_id=t.org_id,
                        ticket_id=t.id, activity_id=a.id)


def service_manager(t: Ticket) -> Employee | None:
    """The manager of the handling engineer (their position's superior), else the setting."""
    configured = settings(t.org_id).get("service_manager_id")
    if configured:
        return db.session.get(Employee, configured)
    who = t.handler_id or t.dispatcher_id
    if who is None:
        return None
    superior = db.session.scalar(select(EmployeePosition.employee_id)
                                 .join(Position, Position.id == EmployeePosition.position_id)
                                 .where(Position.id.in_(select(Position.reports_to_id).join(
                                     EmployeePosition, EmployeePosition.position_id == Position.id)
                                     .where(EmployeePosition.employee_id == who))).limit(1))
    return db.session.get(Employee, superior) if superior else None


# --- staff -------------------------------------------------------------------------------------
def _dispatchers(org_id: int) -> list[int]:
    return [e.id for e in employees_with_role(org_id, "dispatcher")]


@service
def create_for_customer(actor: Actor, data: dict) -> Ticket:
    """A ticket taken by phone or at the desk (console / API)."""
    actor.require("ticket", "create")
    _validate(data)
    customer = get_visible(actor, Customer, data.get("customer_id") or 0)
    contact = get_visible(actor, Contact, data["contact_id"]) if data.get("contact_id") else None
    if contact is not None and contact.customer_id != customer.id:
        raise ValidationFailed("联系人不属于该客户。", fields={"contact_id": "other customer"})
    return _desk_ticket(actor, customer, contact, data, "客服受理", "客服已受理您的服务请求",
                        contact_phone=data.get("contact_phone") or (contact.phone if contact else customer.phone),
                        photo_ids=_photos(data, org_id=actor.org_id, employee_id=actor.employee_id),
                        **_product(actor.org_id, customer.id, data))


def _desk_ticket(actor: Actor, customer: Customer, contact: Contact | None, data: dict, note: str, public_note: str,
                 **fields) -> Ticket:
    """A ticket taken for a customer by staff (validated ``data``): numbered, its contact's WeChat user following it,
    its first event on the timeline."""
    t = Ticket(org_id=actor.org_id, owner_id=customer.owner_id, department_id=customer.department_id,
               number="", kind=data["kind"], priority=data.get("priority") or "normal",
               status="submitted", source="console", description=data["description"].strip()[:2000],
               customer_id=customer.id, contact_id=contact.id if contact else None, required_by=data.get("required_by"),
               **fields)
    t.openid = db.session.scalars(select(Follower.openid).where(Follower.contact_id == t.contact_id)).first() if t.contact_id else None
    _save_numbered(t)
    _event(t, "status", note, actor=actor, to="submitted", public=True, public_note=public_note)
    return t


@service
def create_for_opportunity(actor: Actor, opp_id: int, data: dict) -> Ticket:
    """商机下推服务请求: a service request (a site survey, an installation, a trial) for the opportunity's customer,
    linked back to it, from whoever may edit the opportunity — the salesperson need not hold ticket rights; the
    request goes to the dispatchers' queue like one taken at the desk."""
    from crm_core.sales.models import Opportunity

    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    if not (data.get("description") or "").strip():
        raise ValidationFailed("请填写需要服务的内容（如勘查、安装的时间和要求）。", fields={"description": "required"})
    _validate(data)
    customer = db.session.get(Customer, opp.customer_id)
    contact = db.session.get(Contact, opp.contact_id) if opp.contact_id else None
    return _desk_ticket(actor, customer, contact, data, f"销售 {actor.label} 由商机「{opp.name}」提交", "已受理您的服务请求",
                        opportunity_id=opp.id, contact_phone=(contact.phone if contact else None) or customer.phone,
                        photo_ids=[])


@service
def create_from_conversation(actor: Actor, appid: str, conversation_id: int, data: dict) -> Ticket:
    """转为工单: a ticket for the contact a 在线客服 conversation's follower is bound to, with what
    they wrote; the follower follows its progress in WeChat like a ticket they submitted. A
    follower who has not verified who they are cannot have one made for them (422)."""
    from crm_core.wechat.conversations import get_conversation

    c = get_conversation(actor, appid, conversation_id)
    follower = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid == c.openid)).first()
    if follower is None or not follower.contact_id:
        raise ValidationFailed("该粉丝还没有验证身份（未绑定联系人）：请先请对方在微信中验证手机号，再转为工单。", code="not_verified")
    t = create_for_customer(actor, {**data, "customer_id": follower.customer_id, "contact_id": follower.contact_id})
    t.openid, t.source = c.openid, "wechat"
    _event(t, "conversation", f"由在线客服会话转为工单（会话 #{c.id}）", actor=actor)
    db.session.flush()
    return t


@service
def complete_directly(actor: Actor, ticket_id: int, note: str, public_url: str | None = None, share: bool = False) -> Ticket:
    """Finish without a work order (a consultation answered on the phone, a suggestion noted);
    the note reaches the customer's timeline only when ``share``."""
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    if not (note or "").strip():
        raise ValidationFailed("请填写处理说明。", fields={"note": "required"})
    _complete_ticket(t, actor, note.strip()[:1000], public_url, share)
    db.session.flush()
    return t


@service
def staff_cancel_or_reject(actor: Actor, ticket_id: int, to: str, reason: str, share: bool = False) -> Ticket:
    """Cancel or reject with a reason; the customer reads the reason only when ``share`` (else the state)."""
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    if not (reason or "").strip():
        raise ValidationFailed("请填写原因。", fields={"reason": "required"})
    t.reason = reason.strip()[:500]
    _move(t, to, actor=actor, note=t.reason, public_note=t.reason if share else None)
    for wo in _open_work_orders(t):
        wo.status = "cancelled"
    _notify_customer(t, f"您的服务请求{'已取消' if to == 'cancelled' else '未能受理'}" + (f"：{t.reason}" if share else "。"), key=to)
    db.session.flush()
    return t


@service
def set_waiting(actor: Actor, ticket_id: int, to: str, note: str | None = None, share: bool = False) -> Ticket:
    """in progress ⇄ waiting for the customer / for parts (the SLA clock pauses while waiting);
    the note reaches the customer only when ``share``."""
    actor.require("ticket", "edit")
    if to not in ("waiting_customer", "waiting_parts", "in_progress"):
        raise ValidationFailed("状态只能是 waiting_customer、waiting_parts 或 in_progress。", fields={"status": "invalid"})
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    _move(t, to, actor=actor, note=note, public_note=note if share else None)
    if to == "waiting_customer":  # each wait is its own notice
        _notify_customer(t, f"工程师需要您的确认：{note if share and note else '请留意工程师的电话'}")
    db.session.flush()
    return t


@service
def close(actor: Actor, ticket_id: int, note: str | None = None, share: bool = False) -> Ticket:
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    _move(t, "closed", actor=actor, note=note, public_note=note if share else None)
    db.session.flush()
    return t


# --- jobs ----------------------------------------------------------------------------------------
@jobs.periodic(every=3600)
def close_due() -> int:
    """Completed tickets close after ``close_after_days``; tickets left waiting for the
    customer close after ``silence_close_days`` of silence — automatically, with no
    invitation to rate."""
    now = utcnow()
    n = 0
    for org_id in db.session.scalars(select(Ticket.org_id).where(Ticket.status.in_(("completed", "waiting_customer"))).distinct()).all():
        cfg = settings(org_id)
        done = db.session.scalars(select(Ticket).where(
            Ticket.org_id == org_id, Ticket.status == "completed",
            Ticket.completed_at <= now - timedelta(days=int(cfg["close_after_days"])))).all()
        silent = db.session.scalars(select(Ticket).where(
            Ticket.org_id == org_id, Ticket.status == "waiting_customer",
            Ticket.paused_since <= now - timedelta(days=int(cfg["silence_close_days"])))).all()
        for t in done + silent:
            t.closed_automatically = True
            _move(t, "closed", label="系统", note="完成后自动关闭" if t.status == "completed" else "长时间未回复，自动关闭")
            n += 1
    db.session.flush()
    return n


def sla_targets(t: Ticket, cfg: dict | None = None) -> tuple[timedelta, timedelta]:
    cfg = (cfg or settings(t.org_id))["sla_hours"]
    response, resolution = cfg.get(t.kind, cfg["repair"])
    factor = {"urgent": 0.25, "high": 0.5, "normal": 1.0, "low": 2.0}[t.priority]
    return timedelta(hours=response * factor), timedelta(hours=resolution * factor)


def sla(t: Ticket, now: datetime | None = None, cfg: dict | None = None) -> dict:
    """First response and resolution against their targets, with the waiting time taken out
    (``cfg``: the organisation's self-service settings, when the caller has them already)."""
    now = now or utcnow()
    response_target, resolution_target = sla_targets(t, cfg)
    paused = (t.sla_paused_seconds or 0) + (int((now - t.paused_since).total_seconds()) if t.paused_since else 0)
    responded = t.first_response_at
    response_used = ((responded or now) - t.created_at).total_seconds()
    end = t.completed_at or (t.closed_at if t.status in ("cancelled", "rejected", "closed") else None) or now
    resolution_used = (end - t.created_at).total_seconds() - paused
    return {"response_target_h": round(response_target.total_seconds() / 3600, 2),
            "resolution_target_h": round(resolution_target.total_seconds() / 3600, 2),
            "response_h": round(response_used / 3600, 2), "resolution_h": round(resolution_used / 3600, 2),
            "paused_h": round(paused / 3600, 2),
            "response_met": response_used <= response_target.total_seconds() if responded else (
                None if response_used <= response_target.total_seconds() else False),
            "resolution_met": resolution_used <= resolution_target.total_seconds() if t.completed_at else (
                None if resolution_used <= resolution_target.total_seconds() else False),
            "resolution_due": (t.created_at + resolution_target + timedelta(seconds=paused)).isoformat() + "Z"}


@jobs.periodic(every=600)
def remind_due() -> int:
    """Required completion time within 2 hours or passed, and SLA resolution breached:
    the dispatcher and the engineer are reminded (once per stage)."""
    now = utcnow()
    sent = 0
    rows = db.session.scalars(select(Ticket).where(Ticket.status.in_(OPEN_STATES))).all()
    for t in rows:
        who = {t.handler_id, t.dispatcher_id} - {None} or set(_dispatchers(t.org_id))
        if t.required_by and t.required_by <= now and t.overdue_warned_at is None:
            t.overdue_warned_at = now
            text, kind = f"{t.number} 已超过客户要求的完成时间，请尽快处理。", "ticket_overdue"
        elif t.required_by and t.required_by - now <= timedelta(hours=2) and t.due_warned_at is None and t.required_by > now:
            t.due_warned_at = now
            text, kind = f"{t.number} 将于 {local_str(t.required_by, '%m-%d %H:%M', org_timezone(t.org_id))} 到达客户要求的完成时间。", "ticket_due"
        elif t.paused_since is None and t.sla_warned_at is None and sla(t, now)["resolution_met"] is False:
            t.sla_warned_at = now
            text, kind = f"{t.number} 已超出服务时限（SLA），请尽快处理。", "ticket_sla"
        else:
            continue
        for emp_id in who:
            outbox.notify_staff(emp_id, kind, text, org_id=t.org_id, dedupe_key=f"{kind}:{t.id}:{emp_id}", ticket_id=t.id)
            sent += 1
    db.session.flush()
    return sent
