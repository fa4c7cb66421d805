"""Console pages of the CRM core: customer 360, leads with conversion, opportunities with
their stage picture, and the collision-rule settings (撞单参数)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from crm_core.customers import collision
from crm_core.customers import customers as customer_service
from crm_core.customers.models import CollisionRule, Customer
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.labels import LABELS
from crm_core.org.organization import employee_names
from crm_core.org.permissions import get_visible
from crm_core.sales import leads as lead_service
from crm_core.sales import opportunities as opp_service
from crm_core.sales.models import Opportunity
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act, denied, form_int

LEAD_STATUS = {"new": "新线索", "working": "跟进中", "converted": "已转换", "closed": "已关闭"}
SOURCE_LABELS = LABELS["source"]


_denied = denied  # kept under its old name for the modules that import it


_names = employee_names


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/customers/<int:customer_id>")
@console_login_required
def customer_360(customer_id: int):
    try:
        view = customer_service.customer_360(g.actor, customer_id)
    except DomainError as exc:
        return _denied(exc)
    return render_template("console/customer_360.html", v=view, sources=SOURCE_LABELS)


@bp.get("/leads")
@console_login_required
def leads():
    status = request.args.get("status") or None
    q = request.args.get("q", "").strip()[:100] or None
    try:
        rows, total = lead_service.list_leads(g.actor, q=q, status=status if status in LEAD_STATUS else None, page=_page())
    except DomainError as exc:
        return _denied(exc)
    return render_template("console/leads.html", rows=rows, total=total, status=status, q=q or "", page=_page(),
                           owners=_names(r.owner_id for r in rows), labels=LEAD_STATUS, sources=SOURCE_LABELS)


@bp.get("/leads/<int:lead_id>")
@console_login_required
def lead(lead_id: int):
    """A lead, every intent that reached it, and the conversion dialog: what will be created or
    attached (customer, contact, opportunity), for the person to choose."""
    from crm_core.sales.models import Lead

    try:
        row = get_visible(g.actor, Lead, lead_id)
    except DomainError as exc:
        return _denied(exc)
    plan, blocked = None, None
    if row.status in ("new", "working") and g.actor.can("lead", "edit") and g.actor.can("customer", "create"):
        try:
            plan = lead_service.conversion_plan(g.actor, lead_id)
        except DomainError as exc:  # e.g. the company is already a colleague's customer: say so, show the lead
            blocked = exc.message
    touches = lead_service.lead_touches(row)
    return render_template("console/lead.html", lead=row, plan=plan, blocked=blocked, touches=touches, labels=LEAD_STATUS,
                           sources=SOURCE_LABELS, owner=_names([row.owner_id]).get(row.owner_id),
                           campaigns=_campaign_names({t["campaign_id"] for t in touches} | {row.campaign_id}))


def _campaign_names(ids: set) -> dict:
    from materials.models import Campaign

    ids = {i for i in ids if i}
    return dict(db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all()) if ids else {}


def _choice(name: str) -> int | str | None:
    """A dialog choice: "new", "none", or the id of what to attach."""
    value = (request.form.get(name) or "").strip()
    return int(value) if value.isascii() and value.isdecimal() else value or None


@bp.post("/leads/<int:lead_id>/convert")
@console_login_required
def convert_lead(lead_id: int):
    customer, contact, opportunity = _choice("customer"), _choice("contact"), _choice("opportunity")
    options = {"customer_id": customer if isinstance(customer, int) else None,
               "contact_id": contact if isinstance(contact, int) else None, "create_contact": contact == "new",
               "opportunity_id": opportunity if isinstance(opportunity, int) else None,
               "create_opportunity": {"new": True, "none": False}.get(opportunity) if not isinstance(opportunity, int) else None,
               "opportunity_name": (request.form.get("opportunity_name") or "").strip()[:200] or None,
               "create_activity": request.form.get("create_activity", "1") == "1"}
    try:
        out = lead_service.convert_lead(g.actor, lead_id, options)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("console.lead", lead_id=lead_id))
    flash("线索已转换：" + ("已新建客户" if out["customer_created"] else "已关联到已有客户") +
          ("，商机已关联" if out["opportunity_id"] else "") + "。", "ok")
    return redirect(url_for("console.customer_360", customer_id=out["customer_id"]))


@bp.get("/opportunities")
@console_login_required
def opportunities():
    status = request.args.get("status") or None
    try:
        rows, total = opp_service.list_opportunities(g.actor, status=status if status in ("open", "won", "lost") else None,
                                                     page=_page())
    except DomainError as exc:
        return _denied(exc)
    customers = customer_service.customer_names(r.customer_id for r in rows)
    return render_template("console/opportunities.html", rows=rows, total=total, status=status, page=_page(),
                           customers=customers, owners=_names(r.owner_id for r in rows))


@bp.get("/opportunities/<int:opp_id>")
@console_login_required
def opportunity(opp_id: int):
    try:
        opp = get_visible(g.actor, Opportunity, opp_id)
    except DomainError as exc:
        return _denied(exc)
    data = opp_service.opportunity_dict(opp, detail=True)
    customer = db.session.get(Customer, opp.customer_id)
    quotes = []
    if g.actor.can("quote", "view"):
        from crm_core.sales import documents

        quotes = documents.list_quotes(g.actor, opportunity_id=opp.id, per_page=20)[0]
    from crm_core.sales.models import OpportunityApproval, SalesStage

    approvals = db.session.scalars(select(OpportunityApproval).where(OpportunityApproval.opportunity_id == opp.id)
                                   .order_by(OpportunityApproval.id)).all()
    stage_names = dict(db.session.execute(select(SalesStage.id, SalesStage.name).where(
        SalesStage.id.in_({a.stage_id for a in approvals}))).all()) if approvals else {}
    people = _names({a.requested_by_id for a in approvals} | {a.approver_id for a in approvals})
    history = [{"stage": stage_names.get(a.stage_id), "requested_by": people.get(a.requested_by_id),
                "approver": people.get(a.approver_id), "status": a.status, "comment": a.comment,
                "requested_at": a.created_at.isoformat() + "Z", "decided_at": a.decided_at.isoformat() + "Z" if a.decided_at else None}
               for a in approvals]
    pending_stages = {a.stage_id for a in approvals if a.status == "pending"}
    from crm_core.sales.expenses import CATEGORIES as expense_categories
    from crm_core.sales.models import Contract, ExpenseRequest
    from crm_core.service.models import Ticket

    pushed = {  # 商机下推: what was made from it, each linked back (quotes are listed above)
        "contracts": db.session.scalars(select(Contract).where(Contract.opportunity_id == opp.id).order_by(Contract.id)).all(),
        "expenses": db.session.scalars(select(ExpenseRequest).where(ExpenseRequest.opportunity_id == opp.id)
                                       .order_by(ExpenseRequest.id)).all(),
        "tickets": db.session.scalars(select(Ticket).where(Ticket.opportunity_id == opp.id).order_by(Ticket.id)).all()}
    return render_template("console/opportunity.html", o=data, customer=customer, owner=_names([opp.owner_id]).get(opp.owner_id),
                           quotes=quotes, approval_history=history, pending_stages=pending_stages,
                           expense_categories=expense_categories, pushed=pushed)


@bp.post("/opportunities/<int:opp_id>/ticket")
@console_login_required
def ticket_from_opportunity(opp_id: int):
    from crm_core.service import tickets

    data = {"kind": request.form.get("kind") or "", "description": request.form.get("description") or "",
            "priority": request.form.get("priority") or "normal"}
    return act(lambda: tickets.create_for_opportunity(g.actor, opp_id, data),
               lambda: "服务请求已提交，服务调度会尽快派工。", url_for("console.opportunity", opp_id=opp_id) + "#pushed")


@bp.post("/opportunities/<int:opp_id>/approvals")
@console_login_required
def request_opportunity_approval(opp_id: int):
    """申请审批 for a stage that requires it: the approver (the owner's manager, or the one the organisation names)
    is told and finds it in 待我审批."""
    return act(lambda: opp_service.request_approval(g.actor, opp_id, form_int(request.form.get("stage_id")) or 0),
               "已提交审批，审批人会收到通知。", url_for("console.opportunity", opp_id=opp_id))


@bp.post("/opportunities/<int:opp_id>/advance")
@console_login_required
def advance_opportunity(opp_id: int):
    try:
        stage_id = int(request.form.get("stage_id", "0"))
        opp = opp_service.advance(g.actor, opp_id, stage_id)
        db.session.commit()
        flash(f"已推进到「{opp.stage.name}」。", "ok")
    except ValueError:
        flash("请选择阶段。", "error")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("console.opportunity", opp_id=opp_id))


COLLISION_METHODS = {"exact": "完全相同", "phone": "电话（去掉区号、空格后相同）", "company": "公司名（去掉“有限公司”等后相同）",
                     "similar": "名称相似"}
COLLISION_FIELD_LABELS = {"lead": {"name": "姓名", "company": "公司名称", "phone": "电话", "email": "邮箱", "address": "地址"},
                          "customer": {"name": "客户名称", "phone": "电话", "email": "邮箱", "address": "地址"},
                          "opportunity": {"name": "商机名称", "customer_id": "所属客户"}}
RULE_FIELD_ROWS = 4  # the form's field rows (empty ones are skipped); no rule of the defaults uses more than two


@bp.get("/settings/collision-rules")
@console_login_required
def collision_rules():
    try:
        g.actor.require("organization", "edit")
    except DomainError as exc:
        return _denied(exc)
    collision.ensure_default_rules(g.actor.org_id)
    db.session.commit()
    rules = db.session.scalars(select(CollisionRule).where(CollisionRule.org_id == g.actor.org_id).order_by(CollisionRule.id)).all()
    editing = next((r for r in rules if r.id == form_int(request.args.get("edit"))), None)
    rows = [dict(f) for f in (editing.fields if editing else [])]
    rows += [{}] * max(RULE_FIELD_ROWS - len(rows), 0)
    return render_template("console/collision_rules.html", rules=rules, editing=editing, rows=rows,
                           methods=COLLISION_METHODS, field_labels=COLLISION_FIELD_LABELS, labels=collision.LABELS)


def _rule_from_form(form) -> dict:
    """The form's rule: its field rows (字段 · 方式 · 阈值; empty rows skipped), checked by the service; refusals in words."""
    from crm_core.errors import ValidationFailed

    obj = form.get("object_type")
    specs, problems = [], {}
    for i, (field, method, threshold) in enumerate(zip(form.getlist("field"), form.getlist("method"), form.getlist("threshold"))):
        if not field:
            continue
        owner, _, name = field.partition(".")
        n = len(specs) + 1
        if owner != obj:
            problems[f"field.{i}"] = f"第 {n} 个字段不属于所选对象（{collision.LABELS.get(obj, obj)}）。"
        spec = {"field": name, "method": method or "exact"}
        if spec["method"] == "similar":
            try:
                spec["threshold"] = float((threshold or "0.8").strip())
            except ValueError:
                spec["threshold"] = -1.0
            if not 0.3 <= spec["threshold"] <= 1:
                problems[f"threshold.{i}"] = f"第 {n} 个字段的相似度请填 0.3 到 1 之间的数，例如 0.8。"
        specs.append(spec)
    if not specs:
        problems["field"] = "请至少选择一个匹配字段。"
    if problems:
        # only "no field at all" marks a field (the first row's); a row's problem is named by its number in the message
        raise ValidationFailed(" ".join(dict.fromkeys(problems.values())),
                               fields={k: v for k, v in problems.items() if k == "field"})
    return collision.validate_rule({
        "object_type": obj, "name": (form.get("name") or "").strip()[:100] or "未命名规则", "fields": specs,
        "match": form.get("match", "any"), "targets": form.getlist("targets") or collision.DEFAULT_TARGETS.get(obj, []),
        "action": form.get("action", "warn"), "result_fields": []})


@bp.post("/settings/collision-rules")
@console_login_required
def save_collision_rule():
    from wxapp.pages import keep_form

    rule_id = form_int(request.form.get("rule_id"))
    op = request.form.get("op") or "save"
    back = url_for("console.collision_rules")
    try:
        g.actor.require("organization", "edit")
        rule = None
        if rule_id:
            rule = db.session.get(CollisionRule, rule_id)
            if rule is None or rule.org_id != g.actor.org_id:
                raise DomainError("撞单规则不存在。")
        if op == "toggle" and rule:
            rule.active = not rule.active
            done = f"已{'启用' if rule.active else '停用'}「{rule.name}」。"
        elif op == "action" and rule:
            rule.action = "block" if rule.action == "warn" else "warn"
            done = f"「{rule.name}」命中后改为{'阻止保存' if rule.action == 'block' else '仅提醒'}。"
        else:
            data = _rule_from_form(request.form)
            if rule:
                for k, v in data.items():
                    if k != "result_fields" or not rule.result_fields:
                        setattr(rule, k, v)
            else:
                db.session.add(CollisionRule(org_id=g.actor.org_id, **data))
            done = f"撞单规则「{data['name']}」已保存。"
        db.session.commit()
        flash(done, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        if op == "save":
            keep_form(exc.fields)
            if rule_id:
                back = url_for("console.collision_rules", edit=rule_id)
    return redirect(back)


@bp.get("/followers")
@console_login_required
def followers():
    """微信粉丝: who follows the account, from which scene, bound to which contact."""
    from crm_core.wechat import followers as follower_service
    from crm_core.wechat import tags
    from wxapp.config import wechat_appid

    q = request.args.get("q", "").strip()[:64]
    tag_id = form_int(request.args.get("tag_id"))
    try:
        rows, total = follower_service.list_followers(g.actor, wechat_appid(), q=q or None, tag_id=tag_id, page=_page(), per_page=50)
    except DomainError as exc:
        return _denied(exc)
    return render_template("console/followers.html", rows=rows, total=total, q=q, tag_id=tag_id,
                           names=follower_service.display_names(f.openid for f in rows),
                           tags=tags.list_tags(wechat_appid()), tags_of=tags.tags_of([f.id for f in rows]),
                           can_tag=g.actor.can("follower", "edit"))


@bp.post("/followers/<openid>/unbind")
@console_login_required
def unbind_follower(openid: str):
    """解除绑定: the WeChat user verifies again (a wrong phone, a number that changed hands)."""
    from crm_core.wechat import followers as follower_service
    from wxapp.config import wechat_appid

    return act(lambda: follower_service.unbind_contact(g.actor, wechat_appid(), openid), "已解除绑定，客户下次使用时需重新验证手机号。",
               url_for("console.followers"))


@bp.get("/search")
@console_login_required
def search():
    """The top bar's search: each kind the user may see, within their data scope (``wxapp.search``)."""
    from wxapp import search as global_search

    result = global_search.everything(g.actor, request.args.get("q", ""), per_kind=10)
    return render_template("console/search.html", r=result, min_length=global_search.MIN_LENGTH)


@bp.get("/customer-pool")
@console_login_required
def customer_pool():
    """公海: customers without an owner, each with 领取."""
    from crm_core.sales import pool

    q = request.args.get("q", "").strip()[:100] or None
    try:
        rows, total = pool.pool_customers(g.actor, q, _page(), 20)
    except DomainError as exc:
        return _denied(exc)
    return render_template("console/customer_pool.html", rows=rows, total=total, q=q or "", page=_page(),
                           cfg=pool.settings(g.actor.org_id))


@bp.post("/customer-pool/<int:customer_id>/claim")
@console_login_required
def pool_claim(customer_id: int):
    from crm_core.sales import pool

    return act(lambda: pool.claim(g.actor, customer_id), "已领取，客户已归入您的名下。", url_for("console.customer_pool"),
               then=lambda c: url_for("console.customer_360", customer_id=c.id))


@bp.post("/customers/<int:customer_id>/release")
@console_login_required
def pool_release(customer_id: int):
    from crm_core.sales import pool

    return act(lambda: pool.release(g.actor, customer_id, request.form.get("reason")), "已退回公海。",
               url_for("console.customer_360", customer_id=customer_id), then=lambda c: url_for("console.customer_pool"))
