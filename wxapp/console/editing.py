"""Editing what people work with, from the console (#16 item 3): a customer's profile and owner, its contacts,
客户合并 with a preview of what moves, a lead's details and 关闭, an opportunity's details, 赢单 and 输单 with the
reason and the competitor it was lost to. Each form is checked by the JSON API's own model (the same limits), and
a refused form comes back filled in as it was sent with the reason in Chinese (``wxapp.pages.act``)."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.customers import customers as customer_service
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.org.models import Employee
from crm_core.org.permissions import get_visible
from crm_core.sales import leads as lead_service
from crm_core.sales import opportunities as opp_service
from crm_core.sales.models import Lead, Opportunity
from wxapp.api.customers import ContactIn, ContactPatch, CustomerPatch, RelationIn
from wxapp.api.leads import CloseIn, LeadPatch
from wxapp.api.opportunities import LoseIn, OpportunityPatch, WinIn
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.forms import form_values, parse_amount, split_list, text_fields
from wxapp.pages import act, denied

CUSTOMER_LABELS = {"name": "客户名称", "kind": "类型", "phone": "电话", "email": "邮箱", "address": "地址",
                   "industry": "行业", "tags": "标签", "note": "备注", "owner_id": "负责人"}
CONTACT_LABELS = {"name": "姓名", "phone": "电话", "email": "邮箱", "title": "职务", "gender": "性别",
                  "birthday": "生日", "note": "备注"}
LEAD_LABELS = {"name": "姓名", "company": "公司", "phone": "电话", "email": "邮箱", "address": "地址", "title": "职务",
               "product_interest": "意向产品", "note": "备注", "reason": "关闭原因"}
OPP_LABELS = {"name": "商机名称", "amount": "金额", "expected_close_date": "预计成交日期", "note": "备注",
              "reason": "原因", "lost_to": "赢得此单的竞争对手"}
# what a merge moves, in the words of the people who own those records (other tables: 其他关联记录)
MOVED_LABELS = {"contact": "联系人", "activity": "活动", "opportunity": "商机", "lead": "线索", "product_archive": "产品档案",
                "ticket": "服务请求", "follower": "微信粉丝", "checkin": "签到", "quote": "报价单", "contract": "合同",
                "receipt": "回款", "customer_holding": "负责记录", "work_order": "服务工单", "conversation": "在线客服会话",
                "campaign_recipient": "营销对象"}


def _employees() -> list[Employee]:
    return list(db.session.scalars(select(Employee).where(Employee.org_id == g.actor.org_id, Employee.active.is_(True))
                                   .order_by(Employee.name)))


# --- customers -------------------------------------------------------------------------------
def _edit_page(model, record_id: int, template: str, name: str, extra=lambda record: {}):
    """The edit form of a record the user may edit (else the refusal page, as for any page)."""
    try:
        record = get_visible(g.actor, model, record_id, action="edit")
    except DomainError as exc:
        return denied(exc)
    return render_template(template, **{name: record}, **extra(record))


@bp.get("/customers/<int:customer_id>/edit")
@console_login_required
def customer_edit(customer_id: int):
    can_assign = g.actor.can("customer", "assign")
    return _edit_page(Customer, customer_id, "console/customer_edit.html", "c",
                      lambda c: {"employees": _employees() if can_assign else [], "can_assign": can_assign})


@bp.post("/customers/<int:customer_id>/edit")
@console_login_required
def customer_save(customer_id: int):
    def save():
        data = text_fields(request.form, ("name", "kind", "phone", "email", "address", "industry", "note"),
                           none_if_empty=("kind",))
        data["tags"] = split_list(request.form.get("tags"))
        if request.form.get("owner_id"):
            data["owner_id"] = _int(request.form["owner_id"], "owner_id", "负责人")
        body = form_values(CustomerPatch, data, CUSTOMER_LABELS)
        customer, hits = customer_service.update_customer(g.actor, customer_id, body.model_dump(exclude_unset=True))
        return hits

    back = url_for("console.customer_edit", customer_id=customer_id)
    return act(save, lambda: "客户资料已保存。", back, then=lambda hits: url_for("console.customer_360", customer_id=customer_id))


def _int(raw: str, field: str, label: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(f"请选择{label}。", fields={field: "请选择"}) from None


def _contact_data(form) -> dict:
    data = text_fields(form, ("name", "phone", "email", "title", "gender", "birthday", "note"),
                       none_if_empty=("gender", "birthday"))
    data["interests"] = split_list(form.get("interests"))
    return data


@bp.post("/customers/<int:customer_id>/contacts")
@console_login_required
def contact_add(customer_id: int):
    def save():
        body = form_values(ContactIn, _contact_data(request.form), CONTACT_LABELS)
        return customer_service.add_contact(g.actor, customer_id, body.model_dump())

    return act(save, "联系人已添加。", url_for("console.customer_360", customer_id=customer_id) + "#contacts")


@bp.get("/contacts/<int:contact_id>/edit")
@console_login_required
def contact_edit(contact_id: int):
    def extra(contact):
        others = db.session.scalars(select(Contact).where(Contact.customer_id == contact.customer_id, Contact.id != contact.id)
                                    .order_by(Contact.name)).all()
        return {"customer": db.session.get(Customer, contact.customer_id), "others": others,
                "relations": customer_service.contact_relations(g.actor, contact.id)}
    return _edit_page(Contact, contact_id, "console/contact_edit.html", "contact", extra)


@bp.post("/contacts/<int:contact_id>/relations")
@console_login_required
def contact_relate(contact_id: int):
    def relate():
        if not (request.form.get("to_contact_id") or "").isdigit():
            raise ValidationFailed("请选择关系人。", fields={"to_contact_id": "required"})
        body = form_values(RelationIn, {"to_contact_id": request.form.get("to_contact_id") or None,
                                        "relation": (request.form.get("relation") or "").strip(),
                                        "note": (request.form.get("note") or "").strip() or None},
                           {"to_contact_id": "关系人", "relation": "关系", "note": "备注"})
        return customer_service.relate_contacts(g.actor, contact_id, body.to_contact_id, body.relation, body.note)

    return act(relate, "关系已记录。", url_for("console.contact_edit", contact_id=contact_id) + "#relations")


@bp.post("/contacts/<int:contact_id>/edit")
@console_login_required
def contact_save(contact_id: int):
    def save():
        body = form_values(ContactPatch, _contact_data(request.form), CONTACT_LABELS)
        return customer_service.update_contact(g.actor, contact_id, body.model_dump(exclude_unset=True))

    return act(save, "联系人已保存。", url_for("console.contact_edit", contact_id=contact_id),
               then=lambda c: url_for("console.customer_360", customer_id=c.customer_id) + "#contacts")


# --- 客户合并 ----------------------------------------------------------------------------------
@bp.get("/customers/<int:customer_id>/merge")
@console_login_required
def customer_merge(customer_id: int):
    """Pick the customer to merge into this one (by name or phone), see what would move, confirm."""
    try:
        keep = get_visible(g.actor, Customer, customer_id, action="edit")
        g.actor.require("customer", "delete")
    except DomainError as exc:
        return denied(exc)
    q = request.args.get("q", "").strip()[:100]
    candidates, preview, other = [], None, None
    if q:
        candidates = [c for c in customer_service.list_customers(g.actor, q=q, per_page=20)[0] if c.id != keep.id]
    if request.args.get("other"):
        try:
            preview = customer_service.merge_preview(g.actor, keep.id, int(request.args["other"]))
            other = preview["merged"]
        except (ValueError, DomainError) as exc:
            return denied(exc if isinstance(exc, DomainError) else ValidationFailed("请选择要合并的客户。"))
    return render_template("console/customer_merge.html", keep=keep, q=q, candidates=candidates, preview=preview,
                           other=other, moved_labels=MOVED_LABELS)


@bp.post("/customers/<int:customer_id>/merge")
@console_login_required
def customer_merge_confirm(customer_id: int):
    def merge():
        return customer_service.merge_customers(g.actor, customer_id, _int(request.form.get("merge_id"), "merge_id", "要合并的客户"))

    return act(merge, lambda: "已合并，被合并客户的联系人、商机、活动等都已移到本客户。",
               url_for("console.customer_merge", customer_id=customer_id),
               then=lambda r: url_for("console.customer_360", customer_id=customer_id))


# --- leads -------------------------------------------------------------------------------------
@bp.get("/leads/<int:lead_id>/edit")
@console_login_required
def lead_edit(lead_id: int):
    return _edit_page(Lead, lead_id, "console/lead_edit.html", "lead")


@bp.post("/leads/<int:lead_id>/edit")
@console_login_required
def lead_save(lead_id: int):
    def save():
        data = text_fields(request.form, ("name", "company", "phone", "email", "address", "title", "product_interest", "note"))
        body = form_values(LeadPatch, data, LEAD_LABELS)
        return lead_service.update_lead(g.actor, lead_id, body.model_dump(exclude_unset=True))

    return act(save, "线索已保存。", url_for("console.lead_edit", lead_id=lead_id),
               then=lambda r: url_for("console.lead", lead_id=lead_id))


@bp.post("/leads/<int:lead_id>/close")
@console_login_required
def lead_close(lead_id: int):
    def close():
        body = form_values(CloseIn, text_fields(request.form, ("reason",)), {"reason": "关闭原因"})
        return lead_service.close_lead(g.actor, lead_id, body.reason)

    return act(close, "线索已关闭。", url_for("console.lead", lead_id=lead_id))


# --- opportunities -----------------------------------------------------------------------------
@bp.get("/opportunities/<int:opp_id>/edit")
@console_login_required
def opportunity_edit(opp_id: int):
    return _edit_page(Opportunity, opp_id, "console/opportunity_edit.html", "o")


def _opp_amount(form) -> dict:
    raw = form.get("amount")
    return {"amount": parse_amount(raw, "amount", "「金额」")} if raw and raw.strip() else {}


@bp.post("/opportunities/<int:opp_id>/edit")
@console_login_required
def opportunity_save(opp_id: int):
    def save():
        data = text_fields(request.form, ("name", "expected_close_date", "note"), none_if_empty=("expected_close_date",))
        data.update(_opp_amount(request.form))
        body = form_values(OpportunityPatch, data, OPP_LABELS)
        return opp_service.update_opportunity(g.actor, opp_id, body.model_dump(exclude_unset=True))

    return act(save, "商机已保存。", url_for("console.opportunity_edit", opp_id=opp_id),
               then=lambda o: url_for("console.opportunity", opp_id=opp_id))


@bp.post("/opportunities/<int:opp_id>/win")
@console_login_required
def opportunity_win(opp_id: int):
    def won():
        data = text_fields(request.form, ("reason",), none_if_empty=("reason",))
        data.update(_opp_amount(request.form))
        body = form_values(WinIn, data, OPP_LABELS)
        return opp_service.win(g.actor, opp_id, body.reason, body.amount)

    return act(won, "恭喜赢单！客户已转为交易客户。", url_for("console.opportunity", opp_id=opp_id))


@bp.post("/opportunities/<int:opp_id>/lose")
@console_login_required
def opportunity_lose(opp_id: int):
    def lost():
        body = form_values(LoseIn, text_fields(request.form, ("reason",)), OPP_LABELS)
        lost_to = (request.form.get("lost_to") or "").strip()
        if len(lost_to) > 200:
            raise ValidationFailed("「赢得此单的竞争对手」最多 200 个字符。", fields={"lost_to": "最多 200 个字符"})
        return opp_service.lose(g.actor, opp_id, body.reason, lost_to=lost_to or None)

    return act(lost, "已记为输单。", url_for("console.opportunity", opp_id=opp_id))
