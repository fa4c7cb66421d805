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
    return render_template("console/opportunity.html", o=data, customer=customer, owner=_names([opp.owner_id]).get(opp.owner_id),
                           quotes=quotes)


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
    return render_template("console/collision_rules.html", rules=rules, fields=collision.FIELDS,
                           methods={"exact": "完全相同", "phone": "电话（规范化）", "company": "公司名（规范化）",
                                    "similar": "相似度"},
                           labels=collision.LABELS)


def _parse_fields(text: str) -> list[dict]:
    """``phone:phone, company:similar:0.8`` → rule field specs."""
    out = []
    for part in filter(None, (p.strip() for p in text.replace("，", ",").split(","))):
        bits = part.split(":")
        spec = {"field": bits[0].strip(), "method": bits[1].strip() if len(bits) > 1 else "exact"}
        if len(bits) > 2:
            try:
                spec["threshold"] = float(bits[2])
            except ValueError:
                spec["threshold"] = -1  # rejected by validate_rule with a message
        out.append(spec)
    return out


@bp.post("/settings/collision-rules")
@console_login_required
def save_collision_rule():
    try:
        g.actor.require("organization", "edit")
        rule_id = request.form.get("rule_id")
        if rule_id and request.form.get("op") in ("toggle", "action"):
            rule = db.session.get(CollisionRule, int(rule_id))
            if rule is None or rule.org_id != g.actor.org_id:
                raise DomainError("撞单规则不存在。")
            if request.form["op"] == "toggle":
                rule.active = not rule.active
            else:
                rule.action = "block" if rule.action == "warn" else "warn"
        else:
            data = collision.validate_rule({
                "object_type": request.form.get("object_type"), "name": (request.form.get("name") or "").strip() or "未命名规则",
                "fields": _parse_fields(request.form.get("fields", "")), "match": request.form.get("match", "any"),
                "targets": request.form.getlist("targets"), "action": request.form.get("action", "warn"),
                "result_fields": []})
            db.session.add(CollisionRule(org_id=g.actor.org_id, **data))
        db.session.commit()
        flash("撞单规则已保存。", "ok")
    except DomainError as exc:
        db.session.rollback()
        detail = "；".join(f"{k}: {v}" for k, v in exc.fields.items())
        flash(exc.message + (f"（{detail}）" if detail else ""), "error")
    return redirect(url_for("console.collision_rules"))


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
