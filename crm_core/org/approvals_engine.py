"""One approval engine (#19 item 5, docs/approvals.md): every document that needs a decision — an opportunity's stage, a
quote, a contract — goes through its organisation's flow for that document type.

A **flow** is a list of steps (setting ``approvals.flows[doc_type]``; without one, the document type's default, which is
what the product did before flows existed). A step applies when its conditions hold (``when``: ``amount > 500000``,
``discount_pct > 10``, any or all of them) and names its approvers: the owner's superior ``levels`` up (上级), listed
employees (指定人员), holders of a role (角色), or anyone holding the document's approve permission within their data
scope (有审批权限的人). In a step one approver decides (``any``, 或签) or everyone must approve (``all``, 会签); steps run
one after the other. A rejection by anyone ends the request. Nobody approves their own document: the submitter and the
owner are left out of a step, and a step left with nobody falls back to the permission holders (a document type
without an approve permission refuses to submit: ``no_approver``).

While an approver is away, their **delegate** (审批委托, a date range) sees and decides their tasks; the decision records
who made it. An administrator may decide any step (管理员代审). Pending tasks are **reminded** (催办) after
``approvals.remind_hours`` and again each such period, by an hourly job; the submitter may also remind by hand, once an hour.

Every decision first writes the request's row (``touched_at``, guarded on ``status = 'pending'``): concurrent decisions on
one request queue on that row, so a document cannot be approved twice and a 会签 step completes exactly once.

Areas register their document types here (``register``) with what happens on approval and rejection; org imports none
of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Callable

from sqlalchemy import func, select, update

from crm_core import jobs, outbox
from crm_core.clock import local_today, utcnow
from crm_core.db import db
from crm_core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_core.org.models import ApprovalDelegation, ApprovalRequest, ApprovalTask, Employee, Role
from crm_core.org.organization import employee_names, employees_with_role, manager_of
from crm_core.org.permissions import Actor
from crm_core.org.settings import get_setting, org_timezone

STATUS_LABELS = {"pending": "审批中", "approved": "已通过", "rejected": "已驳回", "withdrawn": "已撤回"}
TASK_LABELS = {"waiting": "未开始", "pending": "待审批", "approved": "同意", "rejected": "驳回", "skipped": "无需审批",
               "withdrawn": "已撤回"}
FACT_LABELS = {"amount": "金额（元）", "discount_pct": "整单折扣率（%）", "max_line_discount_pct": "单行最大折扣率（%）",
               "amount_change": "变更金额（元，增减的绝对值）"}
OPS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
APPROVER_KINDS = {"manager": "负责人的上级", "employees": "指定人员", "role": "角色", "permission": "有审批权限的人"}
MODES = {"any": "或签（一人同意即可）", "all": "会签（全部同意）"}
MAX_STEPS, MAX_CONDITIONS, MAX_APPROVERS = 10, 5, 20


@dataclass(frozen=True)
class DocType:
    """A kind of document the engine approves, registered by its area."""

    code: str
    label: str
    on_approved: Callable[[Actor, int, str | None], None]
    on_rejected: Callable[[Actor, int, str | None], None]
    default_steps: Callable[[int], list[dict]]  # org_id -> the steps when the organisation has set none
    permission: tuple[str, str] | None = None  # who decides a step that names nobody
    visible: Callable[[Actor, list[int]], set[int]] | None = None  # which of these documents the actor may see
    facts: tuple[str, ...] = ("amount",)  # what conditions may test
    notice_kind: str = "approval_requested"
    notice_refs: Callable[[int], dict] = field(default=lambda doc_id: {})


_TYPES: dict[str, DocType] = {}


def register(doc_type: DocType) -> None:
    _TYPES[doc_type.code] = doc_type


def doc_types() -> dict[str, DocType]:
    return dict(_TYPES)


def parse_ref(ref: str) -> tuple[str, int]:
    """An inbox item's id (``contract-5``, ``contract_change-2``) as (document type, document id); 404 otherwise."""
    kind, _, num = (ref or "")[:40].partition("-")
    if kind not in _TYPES or not num.isdigit():
        raise NotFound("审批事项不存在。")
    return kind, int(num)


def _type(code: str) -> DocType:
    if code not in _TYPES:
        raise NotFound("审批事项不存在。")
    return _TYPES[code]


# --- flows -------------------------------------------------------------------------------------------------------
def flow(org_id: int, doc_type: str) -> list[dict]:
    """The organisation's steps for ``doc_type`` (its own, else the type's default)."""
    stored = get_setting(org_id, "approvals").get("flows", {}).get(doc_type)
    return stored if stored is not None else _type(doc_type).default_steps(org_id)


def flows(org_id: int) -> dict:
    """Every registered type's flow, whether it is the default, and the reminder period (the settings page)."""
    setting = get_setting(org_id, "approvals")
    stored = setting.get("flows", {})
    return {"remind_hours": setting.get("remind_hours", 24),
            "flows": {code: {"label": t.label, "steps": flow(org_id, code), "default": code not in stored,
                             "facts": {f: FACT_LABELS[f] for f in t.facts}}
                      for code, t in _TYPES.items()}}


def _decimal(value, where: str) -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{where}：条件的数值「{value}」不是数字。", fields={"value": "not a number"})
    if not d.is_finite() or d < 0 or d > Decimal("1e12"):
        raise ValidationFailed(f"{where}：条件的数值须在 0 到 1 万亿之间。", fields={"value": "out of range"})
    return d


def validate_steps(org_id: int, doc_type: str, steps) -> list[dict]:
    """Check a flow from outside (the API, the settings page) and answer it in its stored form."""
    t = _type(doc_type)
    if not isinstance(steps, list):
        raise ValidationFailed("审批流程应为步骤列表。", fields={"steps": "must be a list"})
    if len(steps) > MAX_STEPS:
        raise ValidationFailed(f"审批流程最多 {MAX_STEPS} 步。", fields={"steps": f"at most {MAX_STEPS}"})
    out = []
    for n, step in enumerate(steps, 1):
        where = f"第 {n} 步"
        if not isinstance(step, dict):
            raise ValidationFailed(f"{where}格式不正确。", fields={f"steps[{n}]": "must be an object"})
        name = str(step.get("name") or "").strip()[:30] or f"第{n}步审批"
        kind = step.get("approver") or "manager"
        if kind not in APPROVER_KINDS:
            raise ValidationFailed(f"{where}：审批人类型无效。", fields={f"steps[{n}].approver": f"one of {', '.join(APPROVER_KINDS)}"})
        mode = step.get("mode") or "any"
        if mode not in MODES:
            raise ValidationFailed(f"{where}：审批方式应为或签或会签。", fields={f"steps[{n}].mode": "any or all"})
        clean: dict = {"name": name, "approver": kind, "mode": mode}
        if kind == "manager":
            try:
                levels = int(step.get("levels") or 1)
            except (TypeError, ValueError):
                levels = 0
            if not 1 <= levels <= 5:
                raise ValidationFailed(f"{where}：上级层级须为 1 到 5。", fields={f"steps[{n}].levels": "1..5"})
            clean["levels"] = levels
        elif kind == "employees":
            ids = step.get("employee_ids") or []
            if not isinstance(ids, list) or not ids or len(ids) > MAX_APPROVERS:
                raise ValidationFailed(f"{where}：请选择 1 到 {MAX_APPROVERS} 位审批人。", fields={f"steps[{n}].employee_ids": "required"})
            try:
                ids = list(dict.fromkeys(int(i) for i in ids))
            except (TypeError, ValueError):
                raise ValidationFailed(f"{where}：审批人无效。", fields={f"steps[{n}].employee_ids": "integers"})
            found = set(db.session.scalars(select(Employee.id).where(Employee.org_id == org_id, Employee.id.in_(ids),
                                                                     Employee.active.is_(True))))
            if set(ids) - found:
                raise ValidationFailed(f"{where}：审批人不存在或已离职。", fields={f"steps[{n}].employee_ids": "unknown employee"})
            clean["employee_ids"] = ids
        elif kind == "role":
            code = str(step.get("role") or "").strip()
            if not code:
                raise ValidationFailed(f"{where}：请选择角色。", fields={f"steps[{n}].role": "required"})
            if not db.session.scalar(select(func.count(Role.id)).where(
                    Role.code == code, (Role.org_id == org_id) | Role.org_id.is_(None))):
                raise ValidationFailed(f"{where}：角色不存在。", fields={f"steps[{n}].role": "unknown role"})
            clean["role"] = code
        elif t.permission is None:
            raise ValidationFailed(f"{where}：{t.label}没有审批权限可依，请指定审批人。", fields={f"steps[{n}].approver": "not for this type"})
        conditions = step.get("when") or []
        if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
            raise ValidationFailed(f"{where}：条件最多 {MAX_CONDITIONS} 个。", fields={f"steps[{n}].when": f"at most {MAX_CONDITIONS}"})
        when = []
        for c in conditions:
            if not isinstance(c, dict) or c.get("field") not in t.facts or c.get("op") not in OPS:
                raise ValidationFailed(f"{where}：条件无效（可用：{'、'.join(FACT_LABELS[f] for f in t.facts)}）。",
                                       fields={f"steps[{n}].when": "field and op"})
            value = _decimal(c.get("value"), where)
            if c["field"].endswith("_pct") and value > 100:
                raise ValidationFailed(f"{where}：折扣率不能超过 100%。", fields={f"steps[{n}].when": "a percentage"})
            when.append({"field": c["field"], "op": c["op"], "value": str(value)})
        if when:
            clean["when"] = when
            clean["match"] = "all" if step.get("match") == "all" else "any"
        out.append(clean)
    return out


def put_flow(actor: Actor, doc_type: str, steps, *, remind_hours: int | None = None) -> dict:
    """Set the organisation's flow for ``doc_type`` (``steps`` None: back to the default). Requests already
    submitted keep the route they were given."""
    from crm_core.org.settings import _store

    actor.require("organization", "edit")
    clean = None if steps is None else validate_steps(actor.org_id, doc_type, steps)

    def change(stored: dict) -> dict:
        flows_ = dict(stored.get("flows") or {})
        if clean is None:
            flows_.pop(doc_type, None)
        else:
            flows_[doc_type] = clean
        out = {**stored, "flows": flows_}
        if remind_hours is not None:
            out["remind_hours"] = remind_hours
        return out

    _store(actor.org_id, "approvals", change)
    return flows(actor.org_id)


def put_remind_hours(actor: Actor, hours: int) -> dict:
    from crm_core.org.settings import _store

    actor.require("organization", "edit")
    if not isinstance(hours, int) or not 0 <= hours <= 720:
        raise ValidationFailed("催办间隔须为 0 到 720 小时（0：不自动催办）。", fields={"remind_hours": "0..720"})
    _store(actor.org_id, "approvals", lambda stored: {**stored, "remind_hours": hours})
    return flows(actor.org_id)


def describe_step(step: dict) -> str:
    """A step as a person reads it: 「销售总监审批：指定人员 · 或签 · 当 金额 > 500000 或 折扣率 > 10」."""
    who = {"manager": lambda: f"第 {step.get('levels', 1)} 级上级", "employees": lambda: "、".join(
        employee_names(step.get("employee_ids", [])).get(i, f"#{i}") for i in step.get("employee_ids", [])),
        "role": lambda: "角色 " + (db.session.scalars(select(Role.name).where(Role.code == step.get("role"))).first()
                                  or str(step.get("role"))), "permission": lambda: APPROVER_KINDS["permission"]}[step["approver"]]()
    text = f"{step['name']}：{who} · {'会签' if step.get('mode') == 'all' else '或签'}"
    if step.get("when"):
        joiner = " 且 " if step.get("match") == "all" else " 或 "
        text += " · 当 " + joiner.join(f"{FACT_LABELS[c['field']]} {OPS[c['op']]} {c['value']}" for c in step["when"])
    return text


# --- submitting --------------------------------------------------------------------------------------------------
def _applies(step: dict, facts: dict) -> bool:
    conditions = step.get("when") or []
    if not conditions:
        return True
    results = []
    for c in conditions:
        value = facts.get(c["field"])
        if value is None:
            results.append(False)
            continue
        v, limit = Decimal(str(value)), Decimal(c["value"])
        results.append({"gt": v > limit, "gte": v >= limit, "lt": v < limit, "lte": v <= limit}[c["op"]])
    return all(results) if step.get("match") == "all" else any(results)


def _superior(employee_id: int | None, levels: int) -> int | None:
    for _ in range(levels):
        if employee_id is None:
            return None
        employee_id = manager_of(employee_id)
    return employee_id


def _approvers(org_id: int, t: DocType, step: dict, owner_id: int | None, requested_by: int | None) -> list[int | None]:
    kind = step["approver"]
    if kind == "manager":
        ids = [_superior(owner_id or requested_by, step.get("levels", 1))]
    elif kind == "employees":
        active = set(db.session.scalars(select(Employee.id).where(Employee.id.in_(step.get("employee_ids") or []),
                                                                  Employee.active.is_(True))))
        ids = [i for i in step.get("employee_ids") or [] if i in active]
    elif kind == "role":
        ids = [e.id for e in employees_with_role(org_id, step.get("role") or "")]
    else:
        return [None]
    ids = [i for i in dict.fromkeys(ids) if i and i not in (owner_id, requested_by)]  # nobody approves their own
    if ids:
        return ids[:MAX_APPROVERS]
    if t.permission is not None:
        return [None]
    raise Conflict(f"「{step['name']}」没有可用的审批人：请为负责人维护汇报关系，或在审批流程中指定审批人。", code="no_approver")


def needs_approval(org_id: int, doc_type: str, facts: dict) -> bool:
    """Whether a document with these facts would go through a step of its flow."""
    return any(_applies(s, facts) for s in flow(org_id, doc_type))


def submit(org_id: int, doc_type: str, doc_id: int, *, title: str, detail: str | None, facts: dict,
           requested_by: int | None, owner_id: int | None, record: tuple[str, int]) -> ApprovalRequest | None:
    """Start the document's approval; None when no step of its flow applies (it needs no approval). The first step's
    approvers (and their delegates) are told."""
    t = _type(doc_type)
    steps = [s for s in flow(org_id, doc_type) if _applies(s, facts)]
    if not steps:
        return None
    if db.session.scalar(select(ApprovalRequest.id).where(ApprovalRequest.doc_type == doc_type, ApprovalRequest.doc_id == doc_id,
                                                          ApprovalRequest.status == "pending")):
        raise Conflict(f"该{t.label}已在审批中。", code="already_pending")
    req = ApprovalRequest(org_id=org_id, doc_type=doc_type, doc_id=doc_id, record_type=record[0], record_id=record[1],
                          status="pending", step=1, steps=len(steps), title=title[:200], detail=(detail or "")[:300] or None,
                          facts={k: (str(v) if v is not None else None) for k, v in facts.items()},
                          requested_by_id=requested_by, owner_id=owner_id)
    for n, step in enumerate(steps, 1):
        for approver in _approvers(org_id, t, step, owner_id, requested_by):
            req.tasks.append(ApprovalTask(org_id=org_id, step=n, step_name=step["name"], mode=step.get("mode", "any"),
                                          approver_id=approver, status="waiting"))
    db.session.add(req)
    db.session.flush()
    _activate(req, 1)
    return req


def _activate(req: ApprovalRequest, step: int) -> None:
    now = utcnow()
    req.step = step
    t = _TYPES[req.doc_type]
    for task in req.tasks:
        if task.step == step and task.status == "waiting":
            task.status, task.activated_at = "pending", now
            if task.approver_id:
                _tell(req, task, t, f"{t.label}「{req.title}」" + (f"（{req.detail}）" if req.detail else "")
                      + f"待您审批 · {task.step_name}。")
    db.session.flush()


def _tell(req: ApprovalRequest, task: ApprovalTask, t: DocType, text: str, key: str = "requested") -> None:
    refs = {"approval_ref": f"{req.doc_type}-{req.doc_id}", **t.notice_refs(req.doc_id)}
    outbox.notify_staff(task.approver_id, t.notice_kind, text, org_id=req.org_id,
                        dedupe_key=f"approval-task:{task.id}:{key}", **refs)
    delegate = _delegate_of(req.org_id, task.approver_id)
    if delegate:
        name = employee_names([task.approver_id]).get(task.approver_id, "")
        outbox.notify_staff(delegate, t.notice_kind, f"{text}（您受 {name} 委托审批）", org_id=req.org_id,
                            dedupe_key=f"approval-task:{task.id}:{key}:delegate", **refs)


# --- deciding ----------------------------------------------------------------------------------------------------
def pending_request(org_id: int, doc_type: str, doc_id: int) -> ApprovalRequest | None:
    return db.session.scalars(select(ApprovalRequest).where(
        ApprovalRequest.org_id == org_id, ApprovalRequest.doc_type == doc_type, ApprovalRequest.doc_id == doc_id,
        ApprovalRequest.status == "pending")).first()


def _own(actor: Actor, req: ApprovalRequest) -> bool:
    """The caller submitted or owns the document (and is not an administrator): not theirs to approve."""
    return actor.employee_id is not None and actor.employee_id in (req.requested_by_id, req.owner_id) and not actor.grants_all


def _may_take_open(actor: Actor, req: ApprovalRequest, t: DocType) -> bool:
    if t.permission is None or not actor.can(*t.permission) or _own(actor, req):
        return False
    return t.visible is None or req.doc_id in t.visible(actor, [req.doc_id])


def _mine(actor: Actor, req: ApprovalRequest, tasks: list[ApprovalTask]) -> list[ApprovalTask]:
    t = _TYPES[req.doc_type]
    own = [x for x in tasks if x.approver_id is not None and x.approver_id == actor.employee_id]
    if own:
        return own[:1]
    delegators = set(delegators_of(actor))
    on_behalf = [x for x in tasks if x.approver_id in delegators]
    if on_behalf:
        return on_behalf[:1]
    open_ = [x for x in tasks if x.approver_id is None]
    if open_ and _may_take_open(actor, req, t):
        return open_[:1]
    if actor.grants_all:  # 管理员代审: the administrator decides the whole step
        return tasks
    return []


def decide(actor: Actor, doc_type: str, doc_id: int, approve: bool, comment: str | None = None) -> ApprovalRequest:
    """Approve or reject the caller's task on the document's pending request. The last approval runs the type's
    ``on_approved``; a rejection ends the request and runs ``on_rejected``."""
    t = _type(doc_type)
    comment = (comment or "").strip()[:500] or None
    req = pending_request(actor.org_id, doc_type, doc_id)
    if req is None:
        last = db.session.scalars(select(ApprovalRequest).where(
            ApprovalRequest.org_id == actor.org_id, ApprovalRequest.doc_type == doc_type, ApprovalRequest.doc_id == doc_id)
            .order_by(ApprovalRequest.id.desc())).first()
        if last is None:
            raise NotFound("审批事项不存在。")
        raise Conflict(f"该审批已处理（{STATUS_LABELS[last.status]}），无需再审批。", code="already_decided")
    now = utcnow()
    # the row lock every decision on this request takes first: the rest of this runs one decision at a time
    if not db.session.execute(update(ApprovalRequest).where(ApprovalRequest.id == req.id, ApprovalRequest.status == "pending")
                              .values(touched_at=now)).rowcount:
        raise Conflict("该审批刚被他人处理，请刷新。", code="already_decided")
    db.session.refresh(req)
    list(db.session.scalars(select(ApprovalTask).where(ApprovalTask.request_id == req.id)
                            .execution_options(populate_existing=True)))  # what others decided before the lock
    current = [x for x in req.tasks if x.step == req.step and x.status == "pending"]
    chosen = _mine(actor, req, current)
    if not chosen:
        if any(x.approver_id == actor.employee_id and x.status == "waiting" for x in req.tasks):
            raise PermissionDenied("还没轮到您审批：前一步尚未通过。", code="not_your_turn")
        if _own(actor, req):
            raise PermissionDenied(f"不能审批自己负责或提交的{t.label}，请由上级或指定的审批人审批。", code="own_document")
        raise PermissionDenied(f"您不是这一步（{current[0].step_name if current else ''}）的审批人。", code="not_approver")
    for task in chosen:
        task.status, task.comment, task.decided_at = ("approved" if approve else "rejected"), comment, now
        task.decided_by_id = actor.employee_id
    if not approve:
        for task in req.tasks:
            if task.status in ("waiting", "pending"):
                task.status = "skipped"
        req.status, req.decided_at = "rejected", now
        db.session.flush()
        t.on_rejected(actor, doc_id, comment)
        return req
    if chosen[0].mode == "any":
        for task in current:
            if task.status == "pending":
                task.status = "skipped"
    if any(x.status == "pending" for x in current):  # 会签: others still to approve
        db.session.flush()
        return req
    later = sorted({x.step for x in req.tasks if x.status == "waiting"})
    if later:
        _activate(req, later[0])
        return req
    req.status, req.decided_at = "approved", now
    db.session.flush()
    t.on_approved(actor, doc_id, comment)
    return req


def withdraw(org_id: int, doc_type: str, doc_id: int) -> bool:
    """The document no longer waits (revised, expired, cancelled, recalled by its submitter): its request ends."""
    req = pending_request(org_id, doc_type, doc_id)
    if req is None:
        return False
    if not db.session.execute(update(ApprovalRequest).where(ApprovalRequest.id == req.id, ApprovalRequest.status == "pending")
                              .values(status="withdrawn", decided_at=utcnow(), touched_at=utcnow())).rowcount:
        return False
    db.session.execute(update(ApprovalTask).where(ApprovalTask.request_id == req.id,
                                                  ApprovalTask.status.in_(("waiting", "pending"))).values(status="withdrawn"))
    db.session.expire(req)
    return True


# --- the inbox -----------------------------------------------------------------------------------------------------
def pending_items(actor: Actor, limit: int = 200) -> list[dict]:
    """The requests waiting for the caller's decision: theirs, those of whom they stand in for, and open steps of
    documents they may approve. ``{id, kind, kind_label, title, detail, requested_by, requested_at, record, step,
    on_behalf_of}``."""
    if actor.employee_id is None and not actor.grants_all:
        return []
    delegators = delegators_of(actor)
    who = [x for x in [actor.employee_id, *delegators] if x]
    open_types = [code for code, t in _TYPES.items() if t.permission and actor.can(*t.permission)]
    cond = ApprovalTask.approver_id.in_(who) if who else None
    if open_types:
        open_cond = ApprovalTask.approver_id.is_(None) & ApprovalRequest.doc_type.in_(open_types)
        cond = open_cond if cond is None else (cond | open_cond)
    if cond is None:
        return []
    rows = db.session.execute(select(ApprovalTask, ApprovalRequest).join(ApprovalRequest, ApprovalRequest.id == ApprovalTask.request_id)
                              .where(ApprovalTask.org_id == actor.org_id, ApprovalTask.status == "pending",
                                     ApprovalRequest.status == "pending", cond)
                              .order_by(ApprovalRequest.id).limit(limit * 2)).all()
    by_request: dict[int, tuple[ApprovalRequest, ApprovalTask]] = {}
    open_ids: dict[str, list[int]] = {}
    for task, req in rows:
        held = by_request.get(req.id)
        if held is None or (held[1].approver_id is None and task.approver_id is not None) or task.approver_id == actor.employee_id:
            by_request[req.id] = (req, task)
    for req, task in by_request.values():
        if task.approver_id is None:
            open_ids.setdefault(req.doc_type, []).append(req.doc_id)
    seen = {code: (_TYPES[code].visible(actor, ids) if _TYPES[code].visible else set(ids)) for code, ids in open_ids.items()}
    names = employee_names({r.requested_by_id for r, _ in by_request.values()} | set(delegators))
    items = []
    for req, task in by_request.values():
        if task.approver_id is None and (req.doc_id not in seen.get(req.doc_type, set()) or _own(actor, req)):
            continue
        items.append({"id": f"{req.doc_type}-{req.doc_id}", "kind": req.doc_type, "kind_label": _TYPES[req.doc_type].label,
                      "title": req.title, "detail": req.detail or "", "requested_by": names.get(req.requested_by_id),
                      "requested_at": req.created_at.isoformat() + "Z", "record": {"type": req.record_type, "id": req.record_id},
                      "step": f"第 {req.step}/{req.steps} 步 · {task.step_name}",
                      "on_behalf_of": names.get(task.approver_id) if task.approver_id in delegators
                      and task.approver_id != actor.employee_id else None})
    return items[:limit]


def history(org_id: int, doc_type: str, doc_ids) -> list[dict]:
    """Every request of these documents, oldest first, each with its tasks: who was asked, who decided, when, what
    they said (the record's 审批记录)."""
    ids = list(doc_ids)
    if not ids:
        return []
    reqs = list(db.session.scalars(select(ApprovalRequest).where(
        ApprovalRequest.org_id == org_id, ApprovalRequest.doc_type == doc_type, ApprovalRequest.doc_id.in_(ids))
        .order_by(ApprovalRequest.id)))
    people = employee_names({r.requested_by_id for r in reqs} | {x.approver_id for r in reqs for x in r.tasks}
                            | {x.decided_by_id for r in reqs for x in r.tasks})
    out = []
    for r in reqs:
        out.append({"id": r.id, "doc_id": r.doc_id, "status": r.status, "status_label": STATUS_LABELS[r.status],
                    "requested_by": people.get(r.requested_by_id), "requested_by_id": r.requested_by_id, "requested_at": r.created_at.isoformat() + "Z",
                    "decided_at": r.decided_at.isoformat() + "Z" if r.decided_at else None, "step": r.step, "steps": r.steps,
                    "tasks": [{"step": x.step, "step_name": x.step_name, "mode": x.mode, "status": x.status,
                               "status_label": TASK_LABELS[x.status],
                               "approver": people.get(x.approver_id) if x.approver_id else APPROVER_KINDS["permission"],
                               "decided_by": people.get(x.decided_by_id) if x.decided_by_id else None,
                               "comment": x.comment, "decided_at": x.decided_at.isoformat() + "Z" if x.decided_at else None}
                              for x in r.tasks]})
    return out


# --- delegation ----------------------------------------------------------------------------------------------------
def _today(org_id: int) -> date:
    return local_today(org_timezone(org_id))


def _delegate_of(org_id: int, employee_id: int | None) -> int | None:
    if not employee_id:
        return None
    today = _today(org_id)
    return db.session.scalars(select(ApprovalDelegation.delegate_id).where(
        ApprovalDelegation.org_id == org_id, ApprovalDelegation.employee_id == employee_id,
        ApprovalDelegation.revoked.is_(False), ApprovalDelegation.starts_on <= today, ApprovalDelegation.ends_on >= today)
        .order_by(ApprovalDelegation.id.desc())).first()


def delegators_of(actor: Actor) -> list[int]:
    """Whom the actor stands in for today."""
    if not actor.employee_id:
        return []
    today = _today(actor.org_id)
    return list(db.session.scalars(select(ApprovalDelegation.employee_id).where(
        ApprovalDelegation.org_id == actor.org_id, ApprovalDelegation.delegate_id == actor.employee_id,
        ApprovalDelegation.revoked.is_(False), ApprovalDelegation.starts_on <= today,
        ApprovalDelegation.ends_on >= today).distinct()))


def _parse_day(value, field_: str, label: str) -> date:
    if isinstance(value, date):
        return value
    if not str(value or "").strip():
        raise ValidationFailed(f"请填写{label}。", fields={field_: "required"})
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}格式应为 YYYY-MM-DD。", fields={field_: "a date"})


def create_delegation(actor: Actor, data: dict) -> ApprovalDelegation:
    """I am away from ``starts_on`` to ``ends_on``: ``delegate_id`` decides my approvals meanwhile. An administrator
    may set one for anyone (``employee_id``)."""
    employee_id = data.get("employee_id") or actor.employee_id
    if employee_id != actor.employee_id:
        actor.require("organization", "edit")
    if not employee_id:
        raise ValidationFailed("请指定委托人。", fields={"employee_id": "required"})
    try:
        employee_id, delegate_id = int(employee_id), int(data.get("delegate_id") or 0)
    except (TypeError, ValueError):
        raise ValidationFailed("受托人无效。", fields={"delegate_id": "an employee id"})
    delegate = db.session.get(Employee, delegate_id) if delegate_id else None
    if delegate is None or delegate.org_id != actor.org_id or not delegate.active:
        raise ValidationFailed("请选择在职的受托人。", fields={"delegate_id": "unknown employee"})
    if delegate_id == employee_id:
        raise ValidationFailed("不能委托给自己。", fields={"delegate_id": "is the employee"})
    starts = _parse_day(data.get("starts_on") or _today(actor.org_id), "starts_on", "开始日期")
    ends = _parse_day(data.get("ends_on"), "ends_on", "结束日期")
    if ends < starts:
        raise ValidationFailed("结束日期不能早于开始日期。", fields={"ends_on": "before starts_on"})
    if ends < _today(actor.org_id):
        raise ValidationFailed("结束日期已过。", fields={"ends_on": "in the past"})
    if (ends - starts).days > 366:
        raise ValidationFailed("委托期最长一年。", fields={"ends_on": "at most a year"})
    if db.session.scalar(select(func.count(ApprovalDelegation.id)).where(
            ApprovalDelegation.org_id == actor.org_id, ApprovalDelegation.employee_id == employee_id,
            ApprovalDelegation.revoked.is_(False), ApprovalDelegation.starts_on <= ends, ApprovalDelegation.ends_on >= starts)):
        raise Conflict("这段时间已有委托，请先撤销原委托。", code="overlapping")
    d = ApprovalDelegation(org_id=actor.org_id, employee_id=employee_id, delegate_id=delegate_id, starts_on=starts,
                           ends_on=ends, note=(str(data.get("note") or "").strip()[:200] or None))
    db.session.add(d)
    db.session.flush()
    outbox.notify_staff(delegate_id, "approval_delegated",
                        f"{employee_names([employee_id]).get(employee_id, '')} 委托您在 {starts} 至 {ends} 代为审批。",
                        org_id=actor.org_id, dedupe_key=f"approval-delegation:{d.id}")
    return d


def revoke_delegation(actor: Actor, delegation_id: int) -> ApprovalDelegation:
    d = db.session.get(ApprovalDelegation, delegation_id)
    if d is None or d.org_id != actor.org_id:
        raise NotFound("委托不存在。")
    if d.employee_id != actor.employee_id:
        actor.require("organization", "edit")
    d.revoked = True
    db.session.flush()
    return d


def list_delegations(actor: Actor) -> list[ApprovalDelegation]:
    """Mine (given and received); an administrator sees the organisation's."""
    stmt = select(ApprovalDelegation).where(ApprovalDelegation.org_id == actor.org_id, ApprovalDelegation.revoked.is_(False),
                                            ApprovalDelegation.ends_on >= _today(actor.org_id))
    if not actor.can("organization", "edit"):
        stmt = stmt.where((ApprovalDelegation.employee_id == actor.employee_id) | (ApprovalDelegation.delegate_id == actor.employee_id))
    return list(db.session.scalars(stmt.order_by(ApprovalDelegation.starts_on, ApprovalDelegation.id).limit(200)))


def delegation_dict(d: ApprovalDelegation) -> dict:
    names = employee_names([d.employee_id, d.delegate_id])
    return {"id": d.id, "employee_id": d.employee_id, "employee": names.get(d.employee_id), "delegate_id": d.delegate_id,
            "delegate": names.get(d.delegate_id), "starts_on": d.starts_on.isoformat(), "ends_on": d.ends_on.isoformat(),
            "note": d.note}


# --- reminders (催办) ----------------------------------------------------------------------------------------------
def remind(actor: Actor, doc_type: str, doc_id: int) -> int:
    """The submitter (or an administrator) reminds the current step's approvers; once an hour. Answers how many."""
    t = _type(doc_type)
    req = pending_request(actor.org_id, doc_type, doc_id)
    if req is None:
        raise Conflict("该事项不在审批中。", code="not_pending")
    if actor.employee_id != req.requested_by_id and not actor.grants_all:
        raise PermissionDenied("只有提交人可以催办。", code="not_submitter")
    now = utcnow()
    tasks = [x for x in req.tasks if x.step == req.step and x.status == "pending" and x.approver_id]
    if not tasks:
        raise Conflict("这一步由有审批权限的人审批，没有指定的审批人可催办。", code="nobody_to_remind")
    if all(x.reminded_at and now - x.reminded_at < timedelta(hours=1) for x in tasks):
        raise Conflict("一小时内已催办过，请稍后再催。", code="reminded_recently")
    for x in tasks:
        x.reminded_at = now
        _tell(req, x, t, f"【催办】{t.label}「{req.title}」仍在等待您审批（{x.step_name}）。", key=f"remind:{now:%Y%m%d%H}")
    db.session.flush()
    return len(tasks)


@jobs.periodic(every=3600)
def remind_overdue_approvals() -> int:
    """Hourly: a task pending longer than its organisation's ``remind_hours`` (and not reminded within it) is
    reminded once more."""
    now = utcnow()
    n = 0
    org_ids = set(db.session.scalars(select(ApprovalTask.org_id).where(ApprovalTask.status == "pending").distinct()))
    for org_id in org_ids:
        hours = get_setting(org_id, "approvals").get("remind_hours", 24)
        if not hours:
            continue
        edge = now - timedelta(hours=hours)
        rows = db.session.execute(select(ApprovalTask, ApprovalRequest).join(ApprovalRequest).where(
            ApprovalTask.org_id == org_id, ApprovalTask.status == "pending", ApprovalTask.approver_id.is_not(None),
            ApprovalRequest.status == "pending", ApprovalTask.activated_at <= edge,
            (ApprovalTask.reminded_at.is_(None)) | (ApprovalTask.reminded_at <= edge)).limit(1000)).all()
        for task, req in rows:
            t = _TYPES.get(req.doc_type)
            if t is None:  # a type no longer registered: nothing to open it with
                continue
            task.reminded_at = now
            waited = int((now - task.activated_at).total_seconds() // 3600)
            _tell(req, task, t, f"【催办】{t.label}「{req.title}」已等待您审批 {waited} 小时（{task.step_name}）。",
                  key=f"remind:{now:%Y%m%d%H}")
            n += 1
    db.session.commit()
    return n
