"""Opportunities (商机): sales methods and stages, advance conditions, approvals,
products, competitors, stage reminders, win and loss."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import case, false, func, select

from crm_core import jobs, outbox
from crm_core.activities.models import Activity
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers import collision, value
from crm_core.customers.customers import register_360_figures, register_360_section
from crm_core.customers.models import Contact, Customer, Product
from crm_core.db import apply_changes, db, paginate
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org import approvals_engine
from crm_core.org.models import Employee
from crm_core.org.permissions import Actor, get_visible, scoped_select
from crm_core.org.settings import get_setting
from crm_core.sales import money
from crm_core.sales.models import (
    Competitor,
    Lead,
    Opportunity,
    OpportunityApproval,
    OpportunityProduct,
    SalesMethod,
    SalesStage,
)

REQUIRABLE_FIELDS = {"amount": "预计金额", "expected_close_date": "预计成交日期", "contact_id": "联系人",
                     "products": "意向产品", "competitors": "竞争对手"}

DEFAULT_STAGES = [
    # name, probability, required fields, completed activity, approval, skippable, reminder days
    ("初步接洽", 10, [], False, False, False, 7),
    ("需求确认", 30, ["contact_id"], True, False, True, 14),
    ("方案报价", 60, ["amount", "products"], False, False, False, 14),
    ("商务谈判", 80, ["amount", "expected_close_date"], False, True, False, 10),
]


def ensure_default_method(org_id: int) -> SalesMethod:
    """The organisation's default sales method, created with standard stages on first use."""
    method = db.session.scalars(select(SalesMethod).where(SalesMethod.org_id == org_id, SalesMethod.is_default.is_(True))).first()
    if method is None:
        method = SalesMethod(org_id=org_id, code="standard", name="标准销售流程", is_default=True)
        for seq, (name, prob, fields, act, appr, skip, remind) in enumerate(DEFAULT_STAGES, start=1):
            method.stages.append(SalesStage(seq=seq, name=name, probability=prob, required_fields=fields,
                                            requires_completed_activity=act, requires_approval=appr, skippable=skip,
                                            reminder_days=remind))
        db.session.add(method)
        db.session.flush()
    return method


@service
def define_method(actor: Actor, data: dict) -> SalesMethod:
    """Create a sales method with its stages (organisation setting)."""
    actor.require("organization", "edit")
    stages = data.get("stages") or []
    if not stages:
        raise ValidationFailed("销售方法至少需要一个阶段。", fields={"stages": "required"})
    for i, st in enumerate(stages):
        bad = [f for f in st.get("required_fields", []) if f not in REQUIRABLE_FIELDS]
        if bad:
            raise ValidationFailed("阶段必填字段不正确。", fields={f"stages.{i}.required_fields": f"unknown: {', '.join(bad)}"})
    if db.session.scalars(select(SalesMethod).where(SalesMethod.org_id == actor.org_id, SalesMethod.code == data["code"])).first():
        raise Conflict(f"销售方法编码已存在：{data['code']}", fields={"code": "taken"})
    if data.get("is_default"):
        for m in db.session.scalars(select(SalesMethod).where(SalesMethod.org_id == actor.org_id)):
            m.is_default = False
    method = SalesMethod(org_id=actor.org_id, code=data["code"], name=data["name"], is_default=bool(data.get("is_default")))
    for seq, st in enumerate(stages, start=1):
        method.stages.append(SalesStage(seq=seq, name=st["name"], probability=st.get("probability", 0),
                                        required_fields=list(st.get("required_fields", [])),
                                        requires_completed_activity=bool(st.get("requires_completed_activity")),
                                        requires_approval=bool(st.get("requires_approval")),
                                        skippable=bool(st.get("skippable")), reminder_days=st.get("reminder_days")))
    db.session.add(method)
    db.session.flush()
    return method


def list_methods(actor: Actor) -> list[SalesMethod]:
    ensure_default_method(actor.org_id)
    return list(db.session.scalars(select(SalesMethod).where(SalesMethod.org_id == actor.org_id).order_by(SalesMethod.id)))


@service
def create_opportunity(actor: Actor, data: dict) -> tuple[Opportunity, list]:
    """商机备案: an opportunity on a visible customer, at the first stage of its method,
    behind the collision check."""
    actor.require("opportunity", "create")
    customer = get_visible(actor, Customer, data["customer_id"])
    method = (db.session.get(SalesMethod, data["method_id"]) if data.get("method_id") else ensure_default_method(actor.org_id))
    if method is None or method.org_id != actor.org_id:
        raise ValidationFailed("销售方法不存在。", fields={"method_id": "unknown"})
    if data.get("contact_id"):
        contact = db.session.get(Contact, data["contact_id"])
        if contact is None or contact.customer_id != customer.id:
            raise ValidationFailed("联系人不属于该客户。", fields={"contact_id": "not a contact of this customer"})
    owner_id = data.get("owner_id") or actor.employee_id or customer.owner_id
    owner = db.session.get(Employee, owner_id)
    if owner is None or owner.org_id != actor.org_id:
        raise ValidationFailed("负责人不存在。", fields={"owner_id": "unknown employee"})
    if owner.id != actor.employee_id:
        actor.require("opportunity", "assign")
    first = method.stages[0]
    opp = Opportunity(org_id=actor.org_id, owner_id=owner.id, department_id=owner.department_id,
                      name=data["name"].strip(), customer_id=customer.id, contact_id=data.get("contact_id"),
                      method_id=method.id, stage_id=first.id, stage_entered_at=utcnow(), status="open",
                      amount=Decimal(str(data["amount"])) if data.get("amount") is not None else None,
                      expected_close_date=data.get("expected_close_date"), source=data.get("source"),
                      note=data.get("note"))

    def save():
        db.session.add(opp)
        db.session.flush()
        for p in data.get("products") or []:
            _add_product(opp, p)
        return opp

    opp, hits = collision.guarded_save(actor, "opportunity", {"name": opp.name, "customer_id": customer.id}, save)
    return opp, hits


def _add_product(opp: Opportunity, p: dict) -> None:
    product = db.session.get(Product, p["product_id"])
    if product is None or product.org_id != opp.org_id:
        raise ValidationFailed("产品不存在。", fields={"products.product_id": "unknown product"})
    opp.products.append(OpportunityProduct(product_id=product.id, quantity=p.get("quantity", 1),
                                           unit_price=Decimal(str(p["unit_price"])) if p.get("unit_price") is not None else None))


def list_opportunities(actor: Actor, *, q: str | None = None, status: str | None = None, stage_id: int | None = None,
                       customer_id: int | None = None, page: int = 1, per_page: int = 20) -> tuple[list[Opportunity], int]:
    stmt = scoped_select(actor, Opportunity)
    if q:
        stmt = stmt.where(Opportunity.name.like(f"%{q.strip()}%"))
    if status:
        stmt = stmt.where(Opportunity.status == status)
    if stage_id:
        stmt = stmt.where(Opportunity.stage_id == stage_id)
    if customer_id:
        stmt = stmt.where(Opportunity.customer_id == customer_id)
    return paginate(stmt, Opportunity.id.desc(), page=page, per_page=per_page)


@service
def update_opportunity(actor: Actor, opp_id: int, data: dict) -> Opportunity:
    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    if opp.status != "open":
        raise Conflict("已赢单或输单的商机不能修改。")
    apply_changes(opp, {**data, **({"amount": Decimal(str(data["amount"]))} if data.get("amount") is not None else {})},
                  ("name", "expected_close_date", "note", "amount"))
    if data.get("contact_id") is not None:
        contact = db.session.get(Contact, data["contact_id"])
        if contact is None or contact.customer_id != opp.customer_id:
            raise ValidationFailed("联系人不属于该客户。", fields={"contact_id": "not a contact of this customer"})
        opp.contact_id = contact.id
    if data.get("products") is not None:
        opp.products.clear()
        db.session.flush()
        for p in data["products"]:
            _add_product(opp, p)
    db.session.flush()
    collision.index_record("opportunity", opp)
    return opp


@service
def set_competitors(actor: Actor, opp_id: int, competitors: list[dict]) -> Opportunity:
    """Replace the competitors of an opportunity (name, product, price, share)."""
    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    total_share = sum(c.get("share") or 0 for c in competitors)
    if total_share > 100:
        raise ValidationFailed("竞争对手份额合计不能超过 100%。", fields={"competitors": "shares exceed 100"})
    opp.competitors.clear()
    db.session.flush()
    from crm_core.sales.competitors import master_for

    for c in competitors:
        opp.competitors.append(Competitor(name=c["name"], product=c.get("product"), share=c.get("share"), note=c.get("note"),
                                          price=Decimal(str(c["price"])) if c.get("price") is not None else None,
                                          competitor_id=master_for(opp.org_id, c["name"])))
    db.session.flush()
    return opp


def missing_conditions(opp: Opportunity, stage: SalesStage) -> list[str]:
    """What entering ``stage`` still needs, in Chinese, for the 409 message."""
    missing = []
    for f in stage.required_fields or []:
        value = getattr(opp, f, None)
        if f in ("products", "competitors"):
            empty = not value
        else:
            empty = value in (None, "")
        if empty:
            missing.append(f"必填：{REQUIRABLE_FIELDS.get(f, f)}")
    if stage.requires_completed_activity:
        done = db.session.scalar(select(func.count(Activity.id)).where(
            Activity.opportunity_id == opp.id, Activity.status == "done"))
        if not done:
            missing.append("需要至少一项已完成的活动")
    if stage.requires_approval:
        approved = db.session.scalar(select(func.count(OpportunityApproval.id)).where(
            OpportunityApproval.opportunity_id == opp.id, OpportunityApproval.stage_id == stage.id,
            OpportunityApproval.status == "approved"))
        if not approved:
            missing.append("需要审批通过")
    return missing


@service
def advance(actor: Actor, opp_id: int, stage_id: int) -> Opportunity:
    """商机跟踪: move to ``stage_id``. Forward moves need the target stage's conditions and
    may skip only skippable stages; moving back is always allowed. 409 names what is missing."""
    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    if opp.status != "open":
        raise Conflict("已赢单或输单的商机不能推进。")
    stages = db.session.scalars(select(SalesStage).where(SalesStage.method_id == opp.method_id).order_by(SalesStage.seq)).all()
    by_id = {s.id: s for s in stages}
    target = by_id.get(stage_id)
    if target is None:
        raise ValidationFailed("阶段不属于该商机的销售方法。", fields={"stage_id": "not in this sales method"})
    current = by_id[opp.stage_id]
    if target.seq > current.seq:
        skipped = [s for s in stages if current.seq < s.seq < target.seq]
        not_skippable = [s.name for s in skipped if not s.skippable]
        if not_skippable:
            raise Conflict(f"不能跳过阶段：{'、'.join(not_skippable)}。", code="stage_not_skippable",
                           extra={"missing": [f"不可跳过：{n}" for n in not_skippable]})
        missing = missing_conditions(opp, target)
        if missing:
            raise Conflict(f"推进到「{target.name}」还缺少：{'；'.join(missing)}。", code="stage_conditions_missing",
                           extra={"missing": missing})
    elif target.seq == current.seq:
        return opp
    opp.stage_id, opp.stage_entered_at, opp.stage_reminded_at = target.id, utcnow(), None
    db.session.flush()
    return opp


@service
def request_approval(actor: Actor, opp_id: int, stage_id: int) -> OpportunityApproval:
    """Ask for the approval a stage requires; it goes through the organisation's stage flow
    (``crm_core.org.approvals_engine``; by default the owner's manager or the employee named in the setting
    ``opportunity_approval``). When no step of the flow applies, the stage is approved at once."""
    from crm_core.customers.customers import customer_names

    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    stage = db.session.get(SalesStage, stage_id)
    if stage is None or stage.method_id != opp.method_id:
        raise ValidationFailed("阶段不属于该商机的销售方法。", fields={"stage_id": "not in this sales method"})
    if not stage.requires_approval:
        raise Conflict(f"阶段「{stage.name}」不需要审批。")
    pending = db.session.scalars(select(OpportunityApproval).where(
        OpportunityApproval.opportunity_id == opp.id, OpportunityApproval.stage_id == stage.id,
        OpportunityApproval.status.in_(("pending", "approved")))).first()
    if pending:
        return pending
    requester = actor.employee_id or opp.owner_id
    approval = OpportunityApproval(org_id=opp.org_id, opportunity_id=opp.id, stage_id=stage.id,
                                   requested_by_id=requester, approver_id=requester, status="pending")
    db.session.add(approval)
    db.session.flush()
    detail = f"申请进入「{stage.name}」 · {customer_names([opp.customer_id]).get(opp.customer_id, '')}" + (
        f" · {money.fmt(opp.amount)} 元" if opp.amount is not None else "")
    req = approvals_engine.submit(opp.org_id, "stage", approval.id, title=opp.name, detail=detail,
                                  facts={"amount": opp.amount}, requested_by=requester, owner_id=opp.owner_id,
                                  record=("opportunity", opp.id))
    if req is None:  # the flow's conditions leave this one out (a small deal, say)
        approval.status, approval.comment, approval.decided_at = "approved", "无需审批", utcnow()
    else:
        approval.approver_id = next(t.approver_id for t in req.tasks if t.step == 1)
    db.session.flush()
    return approval


@service
def decide_approval(actor: Actor, approval_id: int, approve: bool, comment: str | None = None) -> OpportunityApproval:
    """This step's approver (their delegate, or an administrator) approves or rejects."""
    approval = db.session.get(OpportunityApproval, approval_id)
    if approval is None or approval.org_id != actor.org_id:
        raise NotFound("审批不存在。")
    if approval.status != "pending":
        raise Conflict(f"该审批已处理（{'通过' if approval.status == 'approved' else '驳回'}）。", code="already_decided")
    approvals_engine.decide(actor, "stage", approval.id, approve, comment)
    db.session.refresh(approval)
    return approval


def _stage_decided(approve: bool):
    def on_decided(actor: Actor, approval_id: int, comment: str | None) -> None:
        approval = db.session.get(OpportunityApproval, approval_id)
        approval.status, approval.comment, approval.decided_at = ("approved" if approve else "rejected"), comment, utcnow()
        approval.approver_id = actor.employee_id or approval.approver_id  # who decided it
        db.session.flush()
        opp = db.session.get(Opportunity, approval.opportunity_id)
        outbox.notify_staff(approval.requested_by_id, "approval_decided",
                            f"商机「{opp.name}」的审批已{'通过' if approve else '驳回'}。{comment or ''}",
                            org_id=opp.org_id, dedupe_key=f"approval:{approval.id}:decided", approval_id=approval.id)
    return on_decided


def _stage_default_steps(org_id: int) -> list[dict]:
    """Before flows: the setting ``opportunity_approval`` — the owner's manager, or one named employee."""
    cfg = get_setting(org_id, "opportunity_approval")
    if cfg.get("approver") == "employee" and cfg.get("employee_id"):
        return [{"name": "指定审批人", "approver": "employees", "employee_ids": [cfg["employee_id"]], "mode": "any"}]
    return [{"name": "上级审批", "approver": "manager", "levels": 1, "mode": "any"}]


approvals_engine.register(approvals_engine.DocType(
    code="stage", label="商机阶段", on_approved=_stage_decided(True), on_rejected=_stage_decided(False),
    default_steps=_stage_default_steps, facts=("amount",), notice_kind="approval_requested",
    notice_refs=lambda doc_id: {"approval_id": doc_id}))


@service
def win(actor: Actor, opp_id: int, reason: str | None = None, amount=None) -> Opportunity:
    """赢单: close as won; the customer becomes a trading customer."""
    from crm_core.customers.customers import recompute_customer_value

    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    if opp.status != "open":
        raise Conflict("商机已关闭。")
    if amount is not None:
        opp.amount = Decimal(str(amount))
    opp.status, opp.close_reason, opp.closed_at = "won", reason, utcnow()
    customer = db.session.get(Customer, opp.customer_id)
    customer.trading = True
    db.session.flush()
    jobs.enqueue(recompute_customer_value, customer.id)
    return opp


@service
def lose(actor: Actor, opp_id: int, reason: str, lost_to: str | None = None) -> Opportunity:
    """输单 with the reason; ``lost_to``: the competitor who won it — added to the opportunity's
    competitors when not listed yet, and marked 赢得此单 (竞争对手分析 counts it)."""
    opp = get_visible(actor, Opportunity, opp_id, action="edit")
    if not (reason or "").strip():
        raise ValidationFailed("输单需要填写原因。", fields={"reason": "required"})
    if opp.status != "open":
        raise Conflict("商机已关闭。")
    opp.status, opp.close_reason, opp.closed_at = "lost", reason.strip(), utcnow()
    name = (lost_to or "").strip()[:200]
    if name:
        winner = next((c for c in opp.competitors if c.name == name), None)
        if winner is None:
            from crm_core.sales.competitors import master_for

            winner = Competitor(name=name, competitor_id=master_for(opp.org_id, name))
            opp.competitors.append(winner)
        if WON_THIS_DEAL not in (winner.note or ""):
            winner.note = f"{WON_THIS_DEAL}；{winner.note}"[:500] if winner.note else WON_THIS_DEAL
    db.session.flush()
    return opp


WON_THIS_DEAL = "赢得此单"


@jobs.periodic(every=3600)
def stage_reminders() -> int:
    """Remind owners whose open opportunity stayed in a stage longer than its reminder days."""
    now = utcnow()
    rows = db.session.execute(
        select(Opportunity, SalesStage).join(SalesStage, SalesStage.id == Opportunity.stage_id)
        .where(Opportunity.status == "open", Opportunity.stage_reminded_at.is_(None),
               SalesStage.reminder_days.is_not(None))).all()
    sent = 0
    for opp, stage in rows:
        if opp.stage_entered_at + timedelta(days=stage.reminder_days) <= now:
            outbox.notify_staff(opp.owner_id, "stage_reminder",
                                f"商机「{opp.name}」已在「{stage.name}」阶段停留超过 {stage.reminder_days} 天，请跟进。",
                                org_id=opp.org_id, opportunity_id=opp.id,
                                dedupe_key=f"stage_reminder:{opp.id}:{stage.id}:{opp.stage_entered_at.isoformat()}")
            opp.stage_reminded_at = now
            sent += 1
    db.session.flush()
    return sent


def opportunity_dict(o: Opportunity, detail: bool = False) -> dict:
    out = {"id": o.id, "name": o.name, "customer_id": o.customer_id, "contact_id": o.contact_id, "method_id": o.method_id,
           "stage": {"id": o.stage.id, "name": o.stage.name, "seq": o.stage.seq, "probability": o.stage.probability},
           "status": o.status, "amount": float(o.amount) if o.amount is not None else None,
           "expected_close_date": o.expected_close_date.isoformat() if o.expected_close_date else None,
           "owner_id": o.owner_id, "source": o.source, "close_reason": o.close_reason,
           "stage_entered_at": o.stage_entered_at.isoformat() + "Z"}
    if detail:
        names = dict(db.session.execute(select(Product.id, Product.name).where(
            Product.id.in_({p.product_id for p in o.products}))).all()) if o.products else {}
        out["products"] = [{"product_id": p.product_id, "name": names.get(p.product_id), "quantity": p.quantity,
                            "unit_price": float(p.unit_price) if p.unit_price is not None else None} for p in o.products]
        out["competitors"] = [{"name": c.name, "product": c.product, "price": float(c.price) if c.price is not None else None,
                               "share": c.share, "note": c.note} for c in o.competitors]
        stages = db.session.scalars(select(SalesStage).where(SalesStage.method_id == o.method_id).order_by(SalesStage.seq)).all()
        def blockers(s: SalesStage) -> list[str]:
            if s.seq <= o.stage.seq:
                return []
            skipped = [f"不可跳过：{x.name}" for x in stages if o.stage.seq < x.seq < s.seq and not x.skippable]
            return skipped + missing_conditions(o, s)

        out["stages"] = [{"id": s.id, "name": s.name, "seq": s.seq, "probability": s.probability,
                          "state": "done" if s.seq < o.stage.seq else ("current" if s.id == o.stage_id else "todo"),
                          "requires_approval": s.requires_approval, "skippable": s.skippable,
                          "missing": blockers(s)} for s in stages]
    return out


def method_dict(m: SalesMethod) -> dict:
    return {"id": m.id, "code": m.code, "name": m.name, "is_default": m.is_default,
            "stages": [{"id": s.id, "seq": s.seq, "name": s.name, "probability": s.probability,
                        "required_fields": s.required_fields, "requires_completed_activity": s.requires_completed_activity,
                        "requires_approval": s.requires_approval, "skippable": s.skippable, "reminder_days": s.reminder_days}
                       for s in m.stages]}


__all__ = ["create_opportunity", "advance", "win", "lose", "request_approval", "decide_approval", "set_competitors",
           "opportunity_dict"]


# --- the customer 360 view's sales sections and the value pyramid's sales indicators -----------
def _visible(actor: Actor, model):
    """The rows of ``model`` the actor may see, or none without the right to view them at all (the
    360 view of a customer a dispatcher may open must not list a salesperson's opportunities)."""
    return scoped_select(actor, model) if actor.can(model.__scope_object__, "view") else select(model).where(false())


def _customer_opportunities(actor: Actor, customer) -> list[dict]:
    rows = db.session.scalars(_visible(actor, Opportunity).where(Opportunity.customer_id == customer.id)
                              .order_by(Opportunity.id.desc()).limit(50)).all()
    return [opportunity_dict(o) for o in rows]


def _customer_leads(actor: Actor, customer) -> list[dict]:
    rows = db.session.scalars(_visible(actor, Lead).where(Lead.customer_id == customer.id).order_by(Lead.id.desc()).limit(20)).all()
    return [{"id": lead.id, "name": lead.name, "status": lead.status, "source": lead.source} for lead in rows]


def _customer_figures(actor: Actor, customer) -> dict:
    """Won amount and open count over the customer's latest 50 opportunities the actor may see (those the 360 view lists)."""
    rows = db.session.execute(_visible(actor, Opportunity).with_only_columns(Opportunity.status, Opportunity.amount)
                              .where(Opportunity.customer_id == customer.id).order_by(Opportunity.id.desc()).limit(50)).all()
    return {"won_amount": sum(float(amount or 0) for status, amount in rows if status == "won"),
            "open_opportunities": sum(1 for status, _ in rows if status == "open")}


def _value_measures(customer_ids: list[int], since) -> list:
    """The value pyramid's indicators that come from opportunities."""
    return [(select(Opportunity.customer_id,
                    func.sum(case((Opportunity.status == "won", Opportunity.amount), else_=0)),
                    func.sum(case((Opportunity.status == "won", 1), else_=0)),
                    func.sum(case((Opportunity.status == "open", Opportunity.amount), else_=0)))
             .where(Opportunity.customer_id.in_(customer_ids)).group_by(Opportunity.customer_id),
             ("won_amount", "won_count", "open_pipeline"))]


register_360_section("opportunities", _customer_opportunities)
register_360_section("leads", _customer_leads)
register_360_figures(_customer_figures)
value.register_measure(_value_measures)
