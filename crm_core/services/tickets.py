"""Self-service tickets (客户反馈) and service work orders (服务工单), seed 自助式服务 steps 3–6.

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
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from crm_core import jobs, outbox
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.db import db, paginate
from crm_core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_core.models import (Activity, Contact, Customer, Employee, EmployeePosition, FeeLine, Follower, HandlingRecord,
                             PartRequest, Position, Product, ProductArchive, Rating, RecordShare, Ticket, TicketEvent,
                             WorkOrder)
from crm_core.models.ticket import TICKET_KINDS, TICKET_PRIORITIES
from crm_core.permissions import Actor, get_visible, scoped_select
from crm_core.services.org import employees_with_role
from crm_core.services.settings import get_setting

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
           frm: str | None = None, to: str | None = None, public: bool = True, work_order_id: int | None = None) -> None:
    db.session.add(TicketEvent(ticket_id=t.id, at=utcnow(), kind=kind, from_status=frm, to_status=to,
                               employee_id=actor.employee_id if actor else None,
                               actor_label=label or (actor.label if actor else None), note=note, public=public,
                               work_order_id=work_order_id))


def _move(t: Ticket, to: str, *, actor: Actor | None = None, label: str | None = None, note: str | None = None) -> None:
    frm = t.status
    if to == frm:
        return
    if to not in TRANSITIONS[frm]:
        raise Conflict(f"工单当前为「{STAFF_LABELS[frm]}」，不能变为「{STAFF_LABELS[to]}」。", code="illegal_transition",
                       extra={"from": frm, "to": to})
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
    _event(t, "status", note, actor=actor, label=label, frm=frm, to=to)


def _notify_customer(t: Ticket, text: str, *, title: str = "服务进度通知", key: str | None = None, url: str | None = None) -> None:
    if not t.openid:
        return
    outbox.queue_message("wechat_notice", t.openid, {"title": title, "text": f"【{t.number}】{text}", "url": url,
                                                     "ticket_id": t.id},
                         org_id=t.org_id, dedupe_key=f"ticket:{t.id}:{key}" if key else None)


def _open_work_orders(t: Ticket) -> list[WorkOrder]:
    return list(db.session.scalars(select(WorkOrder).where(WorkOrder.ticket_id == t.id, WorkOrder.status.in_(WO_OPEN))))


def _complete_ticket(t: Ticket, actor: Actor | None, note: str | None, public_url: str | None = None) -> None:
    if _open_work_orders(t):
        raise Conflict("还有未完成的服务工单，不能完成客户反馈。", code="open_work_orders")
    _move(t, "completed", actor=actor, note=note)
    _notify_customer(t, "您的服务请求已处理完成，请为本次服务评分，感谢您的支持！", title="服务完成，邀请评价", key=f"completed:{t.reopen_count}",
                     url=public_url)


# --- customers (H5) -----------------------------------------------------------------------------
def _number(org_id: int) -> str:
    """FW + China date + a daily sequence: the highest of the day plus one, found with a range
    on the (org_id, number) unique index (a LIKE prefix would not use it under every collation)."""
    today = utcnow() + timedelta(hours=8)
    prefix = f"FW{today:%Y%m%d}"
    top = db.session.scalar(select(func.max(Ticket.number)).where(Ticket.org_id == org_id, Ticket.number >= f"{prefix}0000",
                                                                   Ticket.number <= f"{prefix}99999"))
    seq = int(top[len(prefix):]) + 1 if top and top[len(prefix):].isdigit() else 1
    return f"{prefix}{seq:04d}"


def _save_numbered(t: Ticket) -> None:
    """Insert with the next number; two requests racing for it retry with the one after."""
    from sqlalchemy.exc import IntegrityError

    for _ in range(5):
        t.number = _number(t.org_id)
        try:
            with db.session.begin_nested():
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
                   in_warranty=archive.warranty_until >= (utcnow() + timedelta(hours=8)).date())
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
    _event(t, "status", "客户通过微信提交", label=contact.name, to="submitted")
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
    _move(t, "cancelled", label="客户", note=t.reason)
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
    _move(t, "in_progress", label="客户", note=f"客户重新打开：{t.reason}")
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
    _event(t, "rating", f"客户评分 {score} 分" + (f"：{r.comment}" if r.comment else ""), label="客户")
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


def engineers(org_id: int) -> list[Employee]:
    return employees_with_role(org_id, "engineer")


def open_work_counts(org_id: int, employee_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(select(WorkOrder.engineer_id, func.count(WorkOrder.id)).where(
        WorkOrder.org_id == org_id, WorkOrder.status.in_(WO_OPEN), WorkOrder.engineer_id.in_(employee_ids))
        .group_by(WorkOrder.engineer_id)).all()
    counts = {e: 0 for e in employee_ids}
    counts.update(dict(rows))
    return counts


def suggest_engineer(org_id: int) -> Employee | None:
    """Auto-assignment: the engineer with the least open work (ties: longest on the team)."""
    team = engineers(org_id)
    if not team:
        return None
    counts = open_work_counts(org_id, [e.id for e in team])
    return min(team, key=lambda e: (counts[e.id], e.id))


def _employee(actor: Actor, employee_id: int, field: str) -> Employee:
    emp = db.session.get(Employee, employee_id)
    if emp is None or emp.org_id != actor.org_id or not emp.active:
        raise ValidationFailed("职员不存在或已停用。", fields={field: "unknown employee"})
    return emp


def _share(object_type: str, object_id: int, employee_id: int, actor: Actor) -> None:
    exists = db.session.scalar(select(RecordShare.id).where(RecordShare.object_type == object_type,
                                                             RecordShare.object_id == object_id,
                                                             RecordShare.employee_id == employee_id))
    if exists is None:
        db.session.add(RecordShare(object_type=object_type, object_id=object_id, employee_id=employee_id,
                                   shared_by_user_id=actor.user_id, created_at=utcnow()))


@service
def create_for_customer(actor: Actor, data: dict) -> Ticket:
    """A ticket taken by phone or at the desk (console / API)."""
    actor.require("ticket", "create")
    _validate(data)
    customer = get_visible(actor, Customer, data.get("customer_id") or 0)
    contact = get_visible(actor, Contact, data["contact_id"]) if data.get("contact_id") else None
    if contact is not None and contact.customer_id != customer.id:
        raise ValidationFailed("联系人不属于该客户。", fields={"contact_id": "other customer"})
    t = Ticket(org_id=actor.org_id, owner_id=customer.owner_id, department_id=customer.department_id,
               number="", kind=data["kind"], priority=data.get("priority") or "normal",
               status="submitted", source="console", description=data["description"].strip()[:2000],
               customer_id=customer.id, contact_id=contact.id if contact else None, required_by=data.get("required_by"),
               contact_phone=data.get("contact_phone") or (contact.phone if contact else customer.phone),
               photo_ids=_photos(data, org_id=actor.org_id, employee_id=actor.employee_id),
               **_product(actor.org_id, customer.id, data))
    bound = db.session.scalars(select(Follower.openid).where(Follower.contact_id == t.contact_id)).first() if t.contact_id else None
    t.openid = bound
    _save_numbered(t)
    _event(t, "status", "客服受理", actor=actor, to="submitted")
    return t


@service
def dispatch(actor: Actor, ticket_id: int, engineer_ids: list[int] | None = None, *, auto: bool = False,
             planned_at: datetime | None = None, note: str | None = None, public_url: str | None = None) -> WorkOrder:
    """Dispatch as a work order to one or more engineers (the first is the main engineer;
    the others collaborate). Without engineers and with ``auto``: least open work."""
    actor.require("ticket", "dispatch")
    t = get_visible(actor, Ticket, ticket_id)
    if t.status not in OPEN_STATES:
        raise Conflict(f"工单当前为「{STAFF_LABELS[t.status]}」，不能派工。", code="illegal_transition")
    ids = list(dict.fromkeys(engineer_ids or []))
    if not ids:
        if not auto:
            raise ValidationFailed("请选择工程师，或使用自动派工。", fields={"engineer_ids": "required"})
        pick = suggest_engineer(actor.org_id)
        if pick is None:
            raise Conflict("没有可派工的工程师。", code="no_engineer")
        ids = [pick.id]
    team = [_employee(actor, i, "engineer_ids") for i in ids]
    wo = WorkOrder(org_id=t.org_id, owner_id=actor.employee_id, department_id=t.department_id, ticket_id=t.id,
                   status="assigned", engineer_id=team[0].id, planned_at=planned_at or t.required_by,
                   auto_assigned=not engineer_ids)
    db.session.add(wo)
    db.session.flush()
    for emp in team[1:]:
        _share("work_order", wo.id, emp.id, actor)
        _share("ticket", t.id, emp.id, actor)
    t.handler_id, t.dispatcher_id = team[0].id, actor.employee_id or t.dispatcher_id
    names = "、".join(e.name for e in team)
    if t.status == "submitted":
        _move(t, "dispatched", actor=actor, note=f"派工给 {names}" + (f"（{note}）" if note else ""))
    else:
        _event(t, "dispatch", f"追加工单，派给 {names}", actor=actor, work_order_id=wo.id)
    customer = db.session.get(Customer, t.customer_id)
    for emp in team:
        outbox.notify_staff(emp.id, "work_order_assigned",
                            f"新服务工单：{customer.name}，{KIND_LABELS[t.kind]} — {t.description[:40]}" +
                            (f"，要求 {(t.required_by + timedelta(hours=8)):%m-%d %H:%M} 前完成" if t.required_by else ""),
                            org_id=t.org_id, dedupe_key=f"wo-assigned:{wo.id}:{emp.id}", ticket_id=t.id, work_order_id=wo.id)
    _notify_customer(t, f"已安排工程师 {team[0].name} 为您服务，请保持电话畅通。", key=f"dispatched:{wo.id}", url=public_url)
    db.session.flush()
    return wo


def _work_order(actor: Actor, wo_id: int, action: str = "view") -> WorkOrder:
    return get_visible(actor, WorkOrder, wo_id, action=action)


@service
def undo_dispatch(actor: Actor, wo_id: int, reason: str | None = None) -> WorkOrder:
    actor.require("ticket", "dispatch")
    wo = _work_order(actor, wo_id)
    if wo.status != "assigned":
        raise Conflict("工程师已开始处理，不能撤销派工；请改用转派。", code="work_started")
    wo.status = "cancelled"
    t = db.session.get(Ticket, wo.ticket_id)
    others = [w for w in _open_work_orders(t) if w.id != wo.id]
    _event(t, "dispatch", "撤销派工" + (f"：{reason}" if reason else ""), actor=actor, public=False, work_order_id=wo.id)
    if not others and t.status == "dispatched":
        t.handler_id = None
        _move(t, "submitted", actor=actor, note="撤销派工，待重新派工")
    elif others:
        t.handler_id = others[0].engineer_id
    outbox.notify_staff(wo.engineer_id, "work_order_cancelled", f"工单 {t.number} 的派工已撤销。", org_id=t.org_id,
                        ticket_id=t.id, work_order_id=wo.id)
    db.session.flush()
    return wo


@service
def complete_directly(actor: Actor, ticket_id: int, note: str, public_url: str | None = None) -> Ticket:
    """Finish without a work order (a consultation answered on the phone, a suggestion noted)."""
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    if not (note or "").strip():
        raise ValidationFailed("请填写处理说明。", fields={"note": "required"})
    _complete_ticket(t, actor, note.strip()[:1000], public_url)
    db.session.flush()
    return t


@service
def staff_cancel_or_reject(actor: Actor, ticket_id: int, to: str, reason: str) -> Ticket:
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    if not (reason or "").strip():
        raise ValidationFailed("请填写原因。", fields={"reason": "required"})
    t.reason = reason.strip()[:500]
    _move(t, to, actor=actor, note=t.reason)
    for wo in _open_work_orders(t):
        wo.status = "cancelled"
    _notify_customer(t, f"您的服务请求{'已取消' if to == 'cancelled' else '未能受理'}：{t.reason}", key=to)
    db.session.flush()
    return t


@service
def set_waiting(actor: Actor, ticket_id: int, to: str, note: str | None = None) -> Ticket:
    """in progress ⇄ waiting for the customer / for parts (the SLA clock pauses while waiting)."""
    actor.require("ticket", "edit")
    if to not in ("waiting_customer", "waiting_parts", "in_progress"):
        raise ValidationFailed("状态只能是 waiting_customer、waiting_parts 或 in_progress。", fields={"status": "invalid"})
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    _move(t, to, actor=actor, note=note)
    if to == "waiting_customer":
        _notify_customer(t, f"工程师需要您的确认：{note or '请留意工程师的电话'}")  # each wait is its own notice
    db.session.flush()
    return t


def _member(actor: Actor, wo: WorkOrder) -> None:
    if actor.grants_all or actor.can("work_order", "dispatch"):
        return
    if wo.engineer_id == actor.employee_id:
        return
    shared = db.session.scalar(select(RecordShare.id).where(RecordShare.object_type == "work_order",
                                                             RecordShare.object_id == wo.id,
                                                             RecordShare.employee_id == actor.employee_id))
    if shared is None:
        raise PermissionDenied("只有该工单的工程师或协作人可以处理。")


@service
def add_record(actor: Actor, wo_id: int, data: dict) -> HandlingRecord:
    """A handling record (visit, notes, photos) with parts requests and fee lines."""
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    _member(actor, wo)
    if wo.status not in WO_OPEN:
        raise Conflict("工单已结束，不能再添加处理记录。", code="work_order_closed")
    note = (data.get("note") or "").strip()
    if not note:
        raise ValidationFailed("请填写处理情况。", fields={"note": "required"})
    from crm_core.services import stock

    t = db.session.get(Ticket, wo.ticket_id)
    photos = _photos(data, org_id=actor.org_id, employee_id=actor.employee_id)
    parts, fees = data.get("parts") or [], data.get("fees") or []
    for p in parts:
        if not (p.get("code") or "").strip() or not isinstance(p.get("quantity"), int) or p["quantity"] < 1:
            raise ValidationFailed("配件需要编码和数量（正整数）。", fields={"parts": "invalid"})
    for f in fees:
        if f.get("kind") not in ("fee", "income") or not (f.get("item") or "").strip() or not isinstance(
                f.get("amount"), (int, float)) or isinstance(f.get("amount"), bool) or f["amount"] < 0:
            raise ValidationFailed("费用行需要类型（fee 费用 / income 有偿收入）、项目和不小于 0 的金额。", fields={"fees": "invalid"})
    now = utcnow()
    rec = HandlingRecord(work_order_id=wo.id, ticket_id=t.id, employee_id=actor.employee_id, visited_at=data.get("visited_at") or now,
                         minutes=data.get("minutes"), note=note[:2000], photo_ids=photos)
    db.session.add(rec)
    if wo.status == "assigned":
        wo.status, wo.started_at = "in_progress", now
    if t.status == "dispatched":
        _move(t, "in_progress", actor=actor, note="工程师开始处理")
        _notify_customer(t, f"工程师 {actor.label} 已开始处理您的请求。", key=f"started:{wo.id}")
    shortages = []
    for p in parts:
        pr = stock.request_part(actor.org_id, wo.id, p["code"].strip(), p["quantity"], actor.employee_id)
        if pr.status == "short":
            shortages.append(f"{pr.part_name or pr.part_code}×{pr.quantity}")
    for f in fees:
        db.session.add(FeeLine(work_order_id=wo.id, kind=f["kind"], item=f["item"].strip()[:200], amount=round(float(f["amount"]), 2),
                               note=(f.get("note") or None), employee_id=actor.employee_id))
    db.session.flush()
    _event(t, "record", note[:1000], actor=actor, work_order_id=wo.id)
    if shortages and t.status == "in_progress":
        _move(t, "waiting_parts", actor=actor, note="配件缺货：" + "、".join(shortages))
        _notify_customer(t, "所需配件正在调配中，到货后工程师会尽快与您联系。", key=f"parts:{rec.id}")
    db.session.flush()
    return rec


@service
def reassign(actor: Actor, wo_id: int, engineer_id: int, reason: str | None = None) -> WorkOrder:
    """转派: a new main engineer (dispatcher, or the current engineer handing over)."""
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    if not (actor.can("work_order", "dispatch") or wo.engineer_id == actor.employee_id):
        raise PermissionDenied("只有调度或当前工程师可以转派。")
    if wo.status not in WO_OPEN:
        raise Conflict("工单已结束，不能转派。", code="work_order_closed")
    new = _employee(actor, engineer_id, "engineer_id")
    if new.id == wo.engineer_id:
        raise Conflict("已经是该工程师负责。", code="same_engineer")
    old = wo.engineer_id
    wo.engineer_id = new.id
    _share("work_order", wo.id, old, actor)  # the previous engineer keeps read access to what they did
    t = db.session.get(Ticket, wo.ticket_id)
    t.handler_id = new.id
    _event(t, "reassign", f"转派给 {new.name}" + (f"：{reason}" if reason else ""), actor=actor, work_order_id=wo.id)
    outbox.notify_staff(new.id, "work_order_assigned", f"工单 {t.number} 转派给您" + (f"：{reason}" if reason else ""),
                        org_id=t.org_id, dedupe_key=f"wo-assigned:{wo.id}:{new.id}", ticket_id=t.id, work_order_id=wo.id)
    _notify_customer(t, f"您的服务请求已由工程师 {new.name} 继续处理。", key=f"reassigned:{wo.id}:{new.id}")
    db.session.flush()
    return wo


@service
def add_collaborators(actor: Actor, wo_id: int, employee_ids: list[int]) -> WorkOrder:
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    _member(actor, wo)
    t = db.session.get(Ticket, wo.ticket_id)
    for i in employee_ids:
        emp = _employee(actor, i, "employee_ids")
        _share("work_order", wo.id, emp.id, actor)
        _share("ticket", t.id, emp.id, actor)
        outbox.notify_staff(emp.id, "work_order_collaborate", f"请协助处理工单 {t.number}。", org_id=t.org_id,
                            ticket_id=t.id, work_order_id=wo.id)
    db.session.flush()
    return wo


@service
def complete_work_order(actor: Actor, wo_id: int, summary: str | None = None, public_url: str | None = None) -> WorkOrder:
    """Finish a work order (at least one handling record); the last one completes the ticket."""
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    _member(actor, wo)
    if wo.status not in WO_OPEN:
        raise Conflict("工单已结束。", code="work_order_closed")
    if db.session.scalar(select(func.count(HandlingRecord.id)).where(HandlingRecord.work_order_id == wo.id)) == 0:
        raise Conflict("请先添加处理记录，再完成工单。", code="no_records")
    t = db.session.get(Ticket, wo.ticket_id)
    if t.status in PAUSED_STATES:
        raise Conflict(f"工单当前为「{STAFF_LABELS[t.status]}」，请先恢复处理。", code="illegal_transition")
    wo.status, wo.completed_at, wo.summary = "completed", utcnow(), (summary or "").strip()[:2000] or None
    db.session.flush()
    _event(t, "work_order", "工单完成" + (f"：{wo.summary}" if wo.summary else ""), actor=actor, work_order_id=wo.id)
    if not _open_work_orders(t):
        if t.status == "dispatched":
            _move(t, "in_progress", actor=actor)
        _complete_ticket(t, actor, wo.summary, public_url)
    db.session.flush()
    return wo


@service
def close(actor: Actor, ticket_id: int, note: str | None = None) -> Ticket:
    actor.require("ticket", "edit")
    t = get_visible(actor, Ticket, ticket_id, action="edit")
    _move(t, "closed", actor=actor, note=note)
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


def sla_targets(t: Ticket) -> tuple[timedelta, timedelta]:
    cfg = settings(t.org_id)["sla_hours"]
    response, resolution = cfg.get(t.kind, cfg["repair"])
    factor = {"urgent": 0.25, "high": 0.5, "normal": 1.0, "low": 2.0}[t.priority]
    return timedelta(hours=response * factor), timedelta(hours=resolution * factor)


def sla(t: Ticket, now: datetime | None = None) -> dict:
    """First response and resolution against their targets, with the waiting time taken out."""
    now = now or utcnow()
    response_target, resolution_target = sla_targets(t)
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
            text, kind = f"{t.number} 将于 {(t.required_by + timedelta(hours=8)):%m-%d %H:%M} 到达客户要求的完成时间。", "ticket_due"
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


# --- views -----------------------------------------------------------------------------------------
def list_tickets(actor: Actor, *, status: str | None = None, kind: str | None = None, customer_id: int | None = None,
                 page: int = 1, per_page: int = 20):
    actor.require("ticket", "view")
    stmt = scoped_select(actor, Ticket)
    if status == "open":
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES))
    elif status:
        stmt = stmt.where(Ticket.status == status)
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if customer_id:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    return paginate(stmt, Ticket.id.desc(), page=page, per_page=per_page)


def my_work_orders(actor: Actor, *, open_only: bool = True, page: int = 1, per_page: int = 20):
    actor.require("work_order", "view")
    shared = select(RecordShare.object_id).where(RecordShare.object_type == "work_order",
                                                 RecordShare.employee_id == actor.employee_id)
    stmt = select(WorkOrder).where(WorkOrder.org_id == actor.org_id,
                                   or_(WorkOrder.engineer_id == actor.employee_id, WorkOrder.id.in_(shared)))
    if open_only:
        stmt = stmt.where(WorkOrder.status.in_(WO_OPEN))
    return paginate(stmt, WorkOrder.id.desc(), page=page, per_page=per_page)


def _iso(d):
    return d.isoformat() + "Z" if d else None


def _names(ids) -> dict[int, Employee]:
    ids = {i for i in ids if i}
    return {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(ids)))} if ids else {}


def timeline(t: Ticket, public_only: bool) -> list[dict]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == t.id)
    if public_only:
        stmt = stmt.where(TicketEvent.public.is_(True))
    return [{"at": _iso(e.at), "kind": e.kind, "from": e.from_status, "to": e.to_status,
             "label": (CUSTOMER_LABELS if public_only else STAFF_LABELS).get(e.to_status) if e.to_status else None,
             "by": e.actor_label, "note": e.note} for e in db.session.scalars(stmt.order_by(TicketEvent.id))]


def ticket_dict(t: Ticket, *, for_customer: bool = False) -> dict:
    emps = _names([t.handler_id])
    handler = emps.get(t.handler_id)
    archive = db.session.get(ProductArchive, t.product_archive_id) if t.product_archive_id else None
    product = db.session.get(Product, t.product_id) if t.product_id else None
    planned = db.session.scalar(select(func.min(WorkOrder.planned_at)).where(WorkOrder.ticket_id == t.id,
                                                                               WorkOrder.status.in_(WO_OPEN)))
    s = sla(t)
    out = {"id": t.id, "number": t.number, "kind": t.kind, "kind_label": KIND_LABELS[t.kind], "status": t.status,
           "status_label": (CUSTOMER_LABELS if for_customer else STAFF_LABELS)[t.status], "priority": t.priority,
           "description": t.description, "customer_id": t.customer_id, "contact_id": t.contact_id,
           "product_archive_id": t.product_archive_id, "product_id": t.product_id,
           "product_name": product.name if product else t.product_note, "serial_no": archive.serial_no if archive else None,
           "in_warranty": t.in_warranty, "required_by": _iso(t.required_by), "contact_phone": t.contact_phone,
           "created_at": _iso(t.created_at), "completed_at": _iso(t.completed_at), "closed_at": _iso(t.closed_at),
           "photo_ids": list(t.photo_ids or []), "reason": t.reason,
           "handler": {"name": handler.name, "phone": handler.phone} if handler else None,
           "expected_at": _iso(planned or t.required_by) or s["resolution_due"],
           "rating": None, "can_rate": False, "can_reopen": False,
           "timeline": timeline(t, public_only=for_customer)}
    r = db.session.scalars(select(Rating).where(Rating.ticket_id == t.id)).first()
    if r:
        out["rating"] = {"score": r.score, "tags": r.tags, "comment": r.comment}
    out["can_rate"] = t.status == "completed" and r is None
    if t.status == "completed" and t.completed_at:
        out["can_reopen"] = utcnow() - t.completed_at <= timedelta(days=int(settings(t.org_id)["reopen_days"]))
    if not for_customer:
        out.update(source=t.source, openid=t.openid, dispatcher_id=t.dispatcher_id, handler_id=t.handler_id, sla=s,
                   reopen_count=t.reopen_count, closed_automatically=t.closed_automatically,
                   work_orders=[work_order_dict(w) for w in db.session.scalars(
                       select(WorkOrder).where(WorkOrder.ticket_id == t.id).order_by(WorkOrder.id))])
    return out


def work_order_dict(wo: WorkOrder) -> dict:
    records = db.session.scalars(select(HandlingRecord).where(HandlingRecord.work_order_id == wo.id).order_by(HandlingRecord.id)).all()
    collaborators = list(db.session.scalars(select(RecordShare.employee_id).where(
        RecordShare.object_type == "work_order", RecordShare.object_id == wo.id)))
    emps = _names([wo.engineer_id, *collaborators, *(r.employee_id for r in records)])
    parts = db.session.scalars(select(PartRequest).where(PartRequest.work_order_id == wo.id)).all()
    fees = db.session.scalars(select(FeeLine).where(FeeLine.work_order_id == wo.id)).all()
    return {"id": wo.id, "ticket_id": wo.ticket_id, "status": wo.status, "engineer_id": wo.engineer_id,
            "engineer": emps[wo.engineer_id].name if wo.engineer_id in emps else None,
            "collaborators": [{"id": c, "name": emps[c].name} for c in collaborators if c in emps and c != wo.engineer_id],
            "planned_at": _iso(wo.planned_at), "started_at": _iso(wo.started_at), "completed_at": _iso(wo.completed_at),
            "summary": wo.summary, "auto_assigned": wo.auto_assigned,
            "records": [{"id": r.id, "employee": emps[r.employee_id].name if r.employee_id in emps else None,
                         "visited_at": _iso(r.visited_at), "minutes": r.minutes, "note": r.note, "photo_ids": r.photo_ids}
                        for r in records],
            "parts": [{"id": p.id, "code": p.part_code, "name": p.part_name, "quantity": p.quantity, "status": p.status}
                      for p in parts],
            "fees": [{"id": f.id, "kind": f.kind, "item": f.item, "amount": float(f.amount), "note": f.note} for f in fees],
            "fee_total": round(sum(float(f.amount) for f in fees if f.kind == "fee"), 2),
            "income_total": round(sum(float(f.amount) for f in fees if f.kind == "income"), 2)}
