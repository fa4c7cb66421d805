"""Service work orders (服务工单): dispatch to one or more engineers, auto-assignment, undo, handling records with
parts and fees, reassign, collaborators and completion. Ticket states move through :mod:`crm_core.service.tickets`."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from crm_core import outbox
from crm_core.clock import local_str, utcnow
from crm_core.context import service
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.errors import Conflict, PermissionDenied, ValidationFailed
from crm_core.org.models import Employee, RecordShare
from crm_core.org.organization import employees_with_role
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import org_timezone
from crm_core.service.models import (
    FeeLine,
    HandlingRecord,
    Ticket,
    WorkOrder,
    WorkOrderSignature,
)
from crm_core.service.tickets import (
    KIND_LABELS,
    OPEN_STATES,
    PAUSED_STATES,
    STAFF_LABELS,
    WO_OPEN,
    _complete_ticket,
    _event,
    _move,
    _notify_customer,
    _open_work_orders,
    _photos,
    settings,
)


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
def dispatch(actor: Actor, ticket_id: int, engineer_ids: list[int] | None = None, *, auto: bool = False,
             planned_at: datetime | None = None, note: str | None = None, public_url: str | None = None,
             append: bool = False) -> WorkOrder:
    """Dispatch as a work order to one or more engineers (the first is the main engineer;
    the others collaborate). Without engineers and with ``auto``: least open work.

    A ticket that already has an open work order takes another one only when the dispatcher says so
    (``append``, 追加派工): two dispatchers who both saw a new ticket and picked different engineers
    must not both send someone — the second is told who has it (409 ``already_dispatched``)."""
    actor.require("ticket", "dispatch")
    t = get_visible(actor, Ticket, ticket_id)
    if t.status not in OPEN_STATES:
        raise Conflict(f"工单当前为「{STAFF_LABELS[t.status]}」，不能派工。", code="illegal_transition")
    open_now = _open_work_orders(t)
    if open_now and append and not engineer_ids:  # another engineer on purpose: which one is the dispatcher's choice
        raise ValidationFailed("追加派工请选择工程师。", fields={"engineer_ids": "required"})
    if open_now and not append:
        names = "、".join(sorted({e.name for e in db.session.scalars(select(Employee).where(
            Employee.id.in_([w.engineer_id for w in open_now])))}))
        raise Conflict(f"这张工单已派给 {names}，请刷新后查看；如需再派一位工程师，请使用「追加派工」。",
                       code="already_dispatched", extra={"engineers": names})
    ids = list(dict.fromkeys(engineer_ids or []))
    if not ids:
        if not auto:
            raise ValidationFailed("请选择工程师，或使用自动派工。", fields={"engineer_ids": "required"})
        pick = suggest_engineer(actor.org_id)
        if pick is None:
            raise Conflict("没有可派工的工程师。", code="no_engineer")
        ids = [pick.id]
    team = [_employee(actor, i, "engineer_ids") for i in ids]
    _refuse_second_open(t, team[0])
    wo = WorkOrder(org_id=t.org_id, owner_id=actor.employee_id, department_id=t.department_id, ticket_id=t.id,
                   status="assigned", engineer_id=team[0].id, planned_at=planned_at or t.required_by,
                   auto_assigned=not engineer_ids)
    db.session.add(wo)
    db.session.flush()
    for emp in team[1:]:
        _share("work_order", wo.id, emp.id, actor)
        _share("ticket", t.id, emp.id, actor)
    for emp in team:  # whoever goes to the customer may read the customer (address, phone) and check in there
        _share("customer", t.customer_id, emp.id, actor)
    t.handler_id, t.dispatcher_id = team[0].id, actor.employee_id or t.dispatcher_id
    names = "、".join(e.name for e in team)
    if t.status == "submitted":
        _move(t, "dispatched", actor=actor, note=f"派工给 {names}" + (f"（{note}）" if note else ""),
              public_note=f"已安排工程师 {team[0].name} 为您服务")
    else:
        _event(t, "dispatch", f"追加工单，派给 {names}", actor=actor, work_order_id=wo.id)
    customer = db.session.get(Customer, t.customer_id)
    for emp in team:
        outbox.notify_staff(emp.id, "work_order_assigned",
                            f"新服务工单：{customer.name}，{KIND_LABELS[t.kind]} — {t.description[:40]}" +
                            (f"，要求 {local_str(t.required_by, '%m-%d %H:%M', org_timezone(t.org_id))} 前完成" if t.required_by else ""),
                            org_id=t.org_id, dedupe_key=f"wo-assigned:{wo.id}:{emp.id}", ticket_id=t.id, work_order_id=wo.id)
    _notify_customer(t, f"已安排工程师 {team[0].name} 为您服务，请保持电话畅通。", key=f"dispatched:{wo.id}", url=public_url)
    db.session.flush()
    return wo


def _refuse_second_open(t: Ticket, engineer: Employee) -> None:
    """One open work order per engineer and ticket (also a unique partial index)."""
    if db.session.scalar(select(WorkOrder.id).where(WorkOrder.ticket_id == t.id, WorkOrder.engineer_id == engineer.id,
                                                    WorkOrder.status.in_(WO_OPEN))) is not None:
        raise Conflict(f"{engineer.name} 已有这张工单未完成的服务工单，无需重复派工。", code="duplicate_work_order")


def _work_order(actor: Actor, wo_id: int, action: str = "view") -> WorkOrder:
    return get_visible(actor, WorkOrder, wo_id, action=action)


@service
def resume(actor: Actor, wo_id: int) -> WorkOrder:
    """The engineer resumes a ticket that waited for parts or for the customer."""
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    _member(actor, wo)
    t = db.session.get(Ticket, wo.ticket_id)
    if t.status not in PAUSED_STATES:
        raise Conflict(f"工单当前为「{STAFF_LABELS[t.status]}」，无需恢复。", code="not_waiting")
    _move(t, "in_progress", actor=actor, note="恢复处理", public_note="工程师已恢复处理")
    db.session.flush()
    return wo


@service
def cancel_work_order(actor: Actor, wo_id: int, reason: str) -> WorkOrder:
    """Cancel an open work order (a duplicate, a dispatch by mistake) even after work started — the
    dispatcher's call, with a reason that stays internal. The ticket keeps its other work orders; with
    none left it goes back to the queue (dispatched) or can be completed directly (in progress)."""
    actor.require("ticket", "dispatch")
    wo = _work_order(actor, wo_id)
    if wo.status not in WO_OPEN:
        raise Conflict("工单已结束。", code="work_order_closed")
    if not (reason or "").strip():
        raise ValidationFailed("请填写取消原因。", fields={"reason": "必填"})
    _withdraw(actor, wo, ("work_order", f"取消服务工单 #{wo.id}：{reason.strip()[:200]}"), "服务工单已取消，待重新派工",
              f"服务工单 #{wo.id} 已取消。")
    return wo


@service
def undo_dispatch(actor: Actor, wo_id: int, reason: str | None = None) -> WorkOrder:
    actor.require("ticket", "dispatch")
    wo = _work_order(actor, wo_id)
    if wo.status != "assigned":
        raise Conflict("工程师已开始处理，不能撤销派工；请改用转派。", code="work_started")
    _withdraw(actor, wo, ("dispatch", "撤销派工" + (f"：{reason}" if reason else "")), "撤销派工，待重新派工", "派工已撤销。")
    return wo


def _withdraw(actor: Actor, wo: WorkOrder, event: tuple[str, str], requeue_note: str, notice: str) -> None:
    """Cancel ``wo`` (undo or cancel): an internal timeline entry, the ticket's handler passes to
    another open work order, or — with none left on a dispatched ticket — the ticket goes back to
    the queue; the engineer is told."""
    wo.status = "cancelled"
    t = db.session.get(Ticket, wo.ticket_id)
    others = [w for w in _open_work_orders(t) if w.id != wo.id]
    _event(t, event[0], event[1], actor=actor, work_order_id=wo.id)
    if others:
        t.handler_id = others[0].engineer_id
    elif t.status == "dispatched":
        t.handler_id = None
        _move(t, "submitted", actor=actor, note=requeue_note)
    outbox.notify_staff(wo.engineer_id, "work_order_cancelled", f"工单 {t.number} 的{notice}", org_id=t.org_id,
                        ticket_id=t.id, work_order_id=wo.id)
    db.session.flush()


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
    from crm_core.service import stock

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
    _start(actor, wo, t, now)
    if data.get("signature"):  # the customer confirmed the charges on the engineer's phone before the work
        _sign(actor, wo, t, "fees", data["signature"])
    shortages = []
    for p in parts:
        pr = stock.request_part(actor.org_id, wo.id, p["code"].strip(), p["quantity"], actor.employee_id)
        if pr.status == "short":
            shortages.append(f"{pr.part_name or pr.part_code}×{pr.quantity}")
    for f in fees:
        db.session.add(FeeLine(work_order_id=wo.id, kind=f["kind"], item=f["item"].strip()[:200], amount=round(float(f["amount"]), 2),
                               note=(f.get("note") or None), employee_id=actor.employee_id))
    db.session.flush()
    share = bool(data.get("share_with_customer"))  # engineers' working notes are internal unless shared
    _event(t, "record", note[:1000], actor=actor, work_order_id=wo.id, public=share, public_note=note[:1000] if share else None)
    if shortages and t.status == "in_progress":
        _move(t, "waiting_parts", actor=actor, note="配件缺货：" + "、".join(shortages))
        _notify_customer(t, "所需配件正在调配中，到货后工程师会尽快与您联系。", key=f"parts:{rec.id}")
    db.session.flush()
    return rec


def _start(actor: Actor, wo: WorkOrder, t: Ticket, now: datetime) -> None:
    """The first arrival or record starts the work: the work order and the ticket move to 处理中."""
    if wo.status == "assigned":
        wo.status, wo.started_at = "in_progress", now
    if t.status == "dispatched":
        _move(t, "in_progress", actor=actor, note="工程师开始处理", public_note="工程师开始处理")
        _notify_customer(t, f"工程师 {actor.label} 已开始处理您的请求。", key=f"started:{wo.id}")


def _open_own(actor: Actor, wo_id: int, closed: str) -> tuple[WorkOrder, Ticket]:
    actor.require("work_order", "edit")
    wo = _work_order(actor, wo_id, "edit")
    _member(actor, wo)
    if wo.status not in WO_OPEN:
        raise Conflict(closed, code="work_order_closed")
    return wo, db.session.get(Ticket, wo.ticket_id)


@service
def accept(actor: Actor, wo_id: int) -> WorkOrder:
    """接单: the engineer takes the work order on; the customer hears who is coming. Accepting twice is one acceptance."""
    wo, t = _open_own(actor, wo_id, "工单已结束，不能接单。")
    if wo.accepted_at is not None:
        return wo
    wo.accepted_at = utcnow()
    me = db.session.get(Employee, actor.employee_id) if actor.employee_id else None
    phone = f"（电话 {me.phone}）" if me is not None and me.phone else ""
    _event(t, "accept", "工程师已接单", actor=actor, work_order_id=wo.id, public=True,
           public_note=f"工程师 {actor.label} 已接单，将尽快与您联系上门时间")
    _notify_customer(t, f"工程师 {actor.label}{phone} 已接单，将尽快与您联系上门时间。", key=f"accepted:{wo.id}")
    db.session.flush()
    return wo


@service
def record_arrival(actor: Actor, wo_id: int, checkin_id: int, distance_m: float | None, flags: list[str]) -> WorkOrder:
    """到达现场: the engineer's check-in at the customer's site (recorded by :func:`crm_core.field.checkins.record`
    in the same transaction) becomes the work order's arrival; it starts the work and tells the customer.
    Each visit of several is one arrival on the timeline; the work order keeps the latest."""
    wo, t = _open_own(actor, wo_id, "工单已结束，不能再签到。")
    now = utcnow()
    if wo.accepted_at is None:
        wo.accepted_at = now  # arriving is accepting
    wo.arrived_at, wo.arrival_checkin_id, wo.arrival_distance_m = now, checkin_id, distance_m
    where = f"距客户 {round(distance_m)} 米" if distance_m is not None else "客户未设置位置"
    warn = "（超出签到范围）" if "out_of_range" in flags else ""
    _event(t, "arrival", f"工程师到达现场：{where}{warn}", actor=actor, work_order_id=wo.id, public=True,
           public_note="工程师已到达现场")
    _start(actor, wo, t, now)
    _notify_customer(t, f"工程师 {actor.label} 已到达现场。", key=f"arrived:{wo.id}:{checkin_id}")
    db.session.flush()
    return wo


def _sign(actor: Actor, wo: WorkOrder, t: Ticket, purpose: str, sig: dict) -> WorkOrderSignature:
    """Keep the customer's signature (an image uploaded from the engineer's phone) for ``purpose``; signing
    again replaces it."""
    from crm_core.media import owned_media

    if not isinstance(sig, dict) or not isinstance(sig.get("media_id"), int) or isinstance(sig.get("media_id"), bool):
        raise ValidationFailed("请让客户在屏幕上签字。", fields={"signature": "required"})
    media = owned_media(sig["media_id"], org_id=actor.org_id, employee_id=actor.employee_id)
    name = (sig.get("signer_name") or "").strip()[:64] or None
    row = db.session.scalars(select(WorkOrderSignature).where(WorkOrderSignature.work_order_id == wo.id,
                                                              WorkOrderSignature.purpose == purpose)).first()
    if row is None:
        row = WorkOrderSignature(work_order_id=wo.id, purpose=purpose)
        db.session.add(row)
    row.media_id, row.signer_name, row.employee_id, row.signed_at = media.id, name, actor.employee_id, utcnow()
    label = "确认收费" if purpose == "fees" else "完工确认"
    _event(t, "signature", f"客户签字{label}" + (f"：{name}" if name else ""), actor=actor, work_order_id=wo.id)
    db.session.flush()
    return row


def signature_needed(wo: WorkOrder) -> bool:
    """Whether completing ``wo`` needs the customer's signature (the ``completion_signature`` setting)."""
    policy = settings(db.session.get(Ticket, wo.ticket_id).org_id).get("completion_signature", "paid")
    if policy == "always":
        return True
    if policy == "paid":
        return db.session.scalar(select(func.count(FeeLine.id)).where(FeeLine.work_order_id == wo.id,
                                                                      FeeLine.kind == "income")) > 0
    return False


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
    _refuse_second_open(db.session.get(Ticket, wo.ticket_id), new)
    old = wo.engineer_id
    wo.engineer_id = new.id
    _share("work_order", wo.id, old, actor)  # the previous engineer keeps read access to what they did
    t = db.session.get(Ticket, wo.ticket_id)
    _share("customer", t.customer_id, new.id, actor)
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
        _share("customer", t.customer_id, emp.id, actor)
        outbox.notify_staff(emp.id, "work_order_collaborate", f"请协助处理工单 {t.number}。", org_id=t.org_id,
                            ticket_id=t.id, work_order_id=wo.id)
    db.session.flush()
    return wo


@service
def complete_work_order(actor: Actor, wo_id: int, summary: str | None = None, public_url: str | None = None,
                        share: bool = False, signature: dict | None = None) -> WorkOrder:
    """Finish a work order: with its handling records, or with a summary that becomes its record; a ticket
    waiting for parts or the customer resumes first. The last open work order completes the ticket.
    ``signature`` (``media_id``, ``signer_name``) is the customer's 完工确认, required by the
    ``completion_signature`` setting (by default when the work order has paid-service income)."""
    wo, t = _open_own(actor, wo_id, "工单已结束。")
    summary = (summary or "").strip()[:2000] or None
    if signature:
        _sign(actor, wo, t, "completion", signature)
    elif signature_needed(wo):
        raise Conflict("有偿服务需要客户签字确认后才能完成工单，请让客户在手机上签字。", code="signature_required")
    if db.session.scalar(select(func.count(HandlingRecord.id)).where(HandlingRecord.work_order_id == wo.id)) == 0:
        if not summary:
            raise Conflict("请填写处理总结，或先添加处理记录，再完成工单。", code="no_records")
        # a short job (a call, a reset) needs no separate record: the summary is the record
        db.session.add(HandlingRecord(work_order_id=wo.id, ticket_id=t.id, employee_id=actor.employee_id or wo.engineer_id,
                                      visited_at=utcnow(), note=summary[:2000], photo_ids=[]))
    if t.status in PAUSED_STATES:  # the engineer finishing is the end of the wait (parts arrived, customer answered)
        _move(t, "in_progress", actor=actor, note="工程师完成工单，结束等待")
    wo.status, wo.completed_at, wo.summary = "completed", utcnow(), summary
    db.session.flush()
    from crm_core.sales import other_receivables
    from crm_core.service import stock

    stock.issue_reserved(actor.org_id, wo.id)  # the parts it used leave the shelf
    income = db.session.scalar(select(func.coalesce(func.sum(FeeLine.amount), 0)).where(
        FeeLine.work_order_id == wo.id, FeeLine.kind == "income"))
    if income and income > 0:  # paid service: what the customer owes becomes 其他应收
        other_receivables.raise_for_work_order(actor.org_id, customer=db.session.get(Customer, t.customer_id), work_order_id=wo.id,
                                               amount=income, description=f"有偿服务 {t.number}")
    _event(t, "work_order", "工单完成" + (f"：{wo.summary}" if wo.summary else ""), actor=actor, work_order_id=wo.id)
    if not _open_work_orders(t):
        if t.status == "dispatched":
            _move(t, "in_progress", actor=actor)
        _complete_ticket(t, actor, wo.summary, public_url, share)
    db.session.flush()
    return wo


@service
def expense_from_work_order(actor: Actor, wo_id: int):
    """费用申请 from a work order (#19 item 8): the caller's fee lines (kind ``fee``: travel, parking, materials bought)
    not yet claimed by a request that stands, as one 服务费用 request for the ticket's customer, through the approval
    engine. Paid-service income (``income``) is what the customer owes, not a cost, and is left out."""
    from crm_core.sales import expenses

    wo = _work_order(actor, wo_id)
    mine = list(db.session.scalars(select(FeeLine).where(FeeLine.work_order_id == wo.id, FeeLine.employee_id == actor.employee_id)
                                   .order_by(FeeLine.id))) if actor.employee_id else []
    if actor.employee_id is None or (actor.employee_id != wo.engineer_id and not mine):
        raise PermissionDenied("只有处理该工单的工程师可以申请其费用。", code="not_on_work_order")
    fees = [f for f in mine if f.kind == "fee"]
    claimed = expenses.claimed_fee_lines(f.id for f in fees)
    fees = [f for f in fees if f.id not in claimed and f.amount and f.amount > 0]
    if not fees:
        raise Conflict("这张派工单没有待申请的费用（费用行已申请过，或还没有登记费用）。", code="nothing_to_claim")
    t = db.session.get(Ticket, wo.ticket_id)
    customer = db.session.get(Customer, t.customer_id) if t.customer_id else None
    tz = org_timezone(actor.org_id)
    from crm_core.clock import to_local

    return expenses.create_expense(actor, {
        "category": "service", "title": f"服务费用 {t.number}" + (f"（{customer.name}）" if customer else ""),
        "lines": [{"item": f.item, "amount": str(f.amount), "incurred_on": to_local(f.created_at, tz).date().isoformat(),
                   "note": f.note, "fee_line_id": f.id} for f in fees]}, work_order_id=wo.id, service_customer=customer)
