"""Leads (线索): multi-channel entry, assignment, collaboration, closing and conversion."""
from __future__ import annotations

from sqlalchemy import or_, select

from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers import collision
from crm_core.customers.models import Contact, Customer
from crm_core.db import apply_changes, db, paginate
from crm_core.errors import Conflict, DomainError, ValidationFailed
from crm_core.normalize import company as norm_company
from crm_core.normalize import phone as norm_phone
from crm_core.org.models import Employee, RecordShare
from crm_core.org.permissions import Actor, get_visible, scoped_select
from crm_core.org.settings import get_setting
from crm_core.sales.models import LEAD_SOURCES, Lead, LeadTouch, Opportunity

LEAD_FIELDS = ("name", "company", "phone", "email", "address", "title", "product_interest", "note")


def _check_data(lead: Lead | dict) -> dict:
    get = lead.get if isinstance(lead, dict) else lambda k: getattr(lead, k)
    return {k: get(k) for k in ("name", "company", "phone", "email", "address")}


@service
def create_lead(actor: Actor, data: dict) -> tuple[Lead, list]:
    """A lead from any channel (manual, wechat_campaign, wechat_intent, import...), behind
    the collision check. Returns ``(lead, hits)``; block rules raise 409."""
    actor.require("lead", "create")
    source = data.get("source") or "manual"
    if source not in LEAD_SOURCES:
        raise ValidationFailed("线索来源不正确。", fields={"source": f"one of {', '.join(LEAD_SOURCES)}"})
    if not (data.get("name") or "").strip():
        raise ValidationFailed("线索姓名不能为空。", fields={"name": "required"})
    owner_id = data.get("owner_id") or actor.employee_id
    owner = db.session.get(Employee, owner_id) if owner_id else None
    if owner_id and (owner is None or owner.org_id != actor.org_id):
        raise ValidationFailed("负责人不存在。", fields={"owner_id": "unknown employee"})
    if owner and owner.id != actor.employee_id:
        actor.require("lead", "assign")
    lead = Lead(org_id=actor.org_id, owner_id=owner.id if owner else None,
                department_id=owner.department_id if owner else None, source=source,
                source_ref=data.get("source_ref"), attribution=dict(data.get("attribution") or {}),
                status="new", created_by_user_id=actor.user_id)
    for key in LEAD_FIELDS:
        if data.get(key) is not None:
            setattr(lead, key, data[key].strip() if isinstance(data[key], str) else data[key])

    def save():
        db.session.add(lead)
        return lead

    return collision.guarded_save(actor, "lead", _check_data(lead), save)


def list_leads(actor: Actor, *, q: str | None = None, status: str | None = None, source: str | None = None,
               owner_id: int | None = None, page: int = 1, per_page: int = 20) -> tuple[list[Lead], int]:
    stmt = scoped_select(actor, Lead)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Lead.name.like(like), Lead.company.like(like), Lead.phone.like(like)))
    if status:
        stmt = stmt.where(Lead.status == status)
    if source:
        stmt = stmt.where(Lead.source == source)
    if owner_id:
        stmt = stmt.where(Lead.owner_id == owner_id)
    return paginate(stmt, Lead.id.desc(), page=page, per_page=per_page)


@service
def update_lead(actor: Actor, lead_id: int, data: dict) -> tuple[Lead, list]:
    lead = get_visible(actor, Lead, lead_id, action="edit")
    if lead.status in ("converted", "closed"):
        raise Conflict("已转换或已关闭的线索不能修改。")
    apply_changes(lead, data, LEAD_FIELDS)
    return collision.guarded_save(actor, "lead", _check_data(lead), lambda: lead, exclude_id=lead.id)


@service
def assign_lead(actor: Actor, lead_id: int, employee_id: int) -> Lead:
    """Hand a lead to a colleague (线索分配)."""
    actor.require("lead", "assign")
    lead = get_visible(actor, Lead, lead_id, action="edit")
    emp = db.session.get(Employee, employee_id)
    if emp is None or emp.org_id != actor.org_id:
        raise ValidationFailed("职员不存在。", fields={"employee_id": "unknown employee"})
    if lead.status in ("converted", "closed"):
        raise Conflict("已转换或已关闭的线索不能分配。")
    lead.owner_id, lead.department_id = emp.id, emp.department_id
    if lead.status == "new":
        lead.status = "working"
    db.session.flush()
    return lead


@service
def add_collaborator(actor: Actor, lead_id: int, employee_id: int) -> RecordShare:
    """线索协作: a colleague who may see and follow up the lead."""
    from crm_core.org.organization import share_record

    get_visible(actor, Lead, lead_id, action="edit")
    return share_record(actor, "lead", lead_id, employee_id)


@service
def close_lead(actor: Actor, lead_id: int, reason: str) -> Lead:
    lead = get_visible(actor, Lead, lead_id, action="edit")
    if not (reason or "").strip():
        raise ValidationFailed("关闭线索需要填写原因。", fields={"reason": "required"})
    if lead.status in ("converted", "closed"):
        raise Conflict(f"线索已{'转换' if lead.status == 'converted' else '关闭'}，不能再关闭。")
    lead.status, lead.close_reason, lead.closed_at = "closed", reason.strip(), utcnow()
    db.session.flush()
    collision.unindex_record("lead", lead.id)
    return lead


def _existing_customer(actor: Actor, company: str | None, phone: str | None) -> Customer | None:
    """An active customer with the same normalised company name or phone (any scope)."""
    from crm_core.customers.models import CollisionKey

    conds = []
    if company and norm_company(company):
        conds.append((CollisionKey.dimension == "company") & (CollisionKey.method == "company")
                     & (CollisionKey.value == norm_company(company)))
    if phone and norm_phone(phone):
        conds.append((CollisionKey.dimension == "phone") & (CollisionKey.method == "phone")
                     & (CollisionKey.value == norm_phone(phone)))
    if not conds:
        return None
    rid = db.session.scalars(select(CollisionKey.record_id).where(
        CollisionKey.org_id == actor.org_id, CollisionKey.object_type == "customer", or_(*conds))
        .order_by(CollisionKey.record_id)).first()
    return db.session.get(Customer, rid) if rid else None


def _mapped(actor: Actor, lead: Lead) -> dict[str, dict]:
    """The lead's fields spread over the conversion targets by the organisation's mapping."""
    mapping = get_setting(actor.org_id, "lead_conversion")["mapping"]
    target: dict[str, dict] = {"customer": {}, "contact": {}, "opportunity": {}, "activity": {}}
    for lead_field, dest in mapping.items():
        obj, _, fname = dest.partition(".")
        value = getattr(lead, lead_field, None)
        if obj in target and value not in (None, ""):
            target[obj].setdefault(fname, value)
    cust_data = target["customer"]
    if not cust_data.get("name"):
        cust_data["name"], cust_data["kind"] = lead.name, "person"
    cust_data.setdefault("source", "lead")
    cust_data["source_detail"] = f"lead:{lead.id}:{lead.source}"
    target["contact"].setdefault("name", lead.name)
    return target


def _matched_customer(actor: Actor, cust_data: dict) -> Customer | None:
    """The existing customer the conversion must reuse; 409 naming its owner when it is outside
    the actor's data scope (a conversion never makes a second customer of the same company)."""
    existing = _existing_customer(actor, cust_data.get("name") if cust_data.get("kind") != "person" else None,
                                  cust_data.get("phone"))
    if existing is None:
        return None
    try:
        return get_visible(actor, Customer, existing.id)
    except DomainError:
        from crm_core.normalize import mask_name

        owner = db.session.get(Employee, existing.owner_id)
        raise Conflict(f"撞单：该公司已是客户（负责人：{owner.name if owner else '未知'}），不能重复建立客户，请联系负责人。",
                       code="collision", extra={"hits": [{"object_type": "customer", "id": None, "visible": False,
                                                          "record": {"owner": owner.name if owner else "",
                                                                     "name": mask_name(existing.name)}}]}) from None


def _matching_contact(customer: Customer, name: str, phone: str | None) -> Contact | None:
    """The customer's contact this lead is: the same phone first, else the same name."""
    contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)).all()
    wanted = norm_phone(phone) if phone else ""
    return (next((c for c in contacts if wanted and norm_phone(c.phone or "") == wanted), None)
            or next((c for c in contacts if c.name == name), None))


def _open_opportunities(actor: Actor, customer: Customer) -> list:
    """The customer's open opportunities the actor may change (others' are neither shown nor attached)."""
    if not actor.can("opportunity", "edit"):
        return []
    return db.session.scalars(scoped_select(actor, Opportunity, action="edit").where(
        Opportunity.customer_id == customer.id, Opportunity.status == "open").order_by(Opportunity.id.desc()).limit(20)).all()


def conversion_plan(actor: Actor, lead_id: int) -> dict:
    """What converting the lead would create or attach, for the person to confirm or change:
    the customer (an existing one with the same company or phone is reused), the contact (the
    customer's contact with the lead's phone or name), and the opportunity (an open one of
    that customer is proposed before a new, empty one)."""
    actor.require("lead", "edit")
    lead = get_visible(actor, Lead, lead_id, action="edit")
    if lead.status in ("converted", "closed"):
        raise Conflict(f"线索已{'转换' if lead.status == 'converted' else '关闭'}，不能转换。")
    target = _mapped(actor, lead)
    customer = _matched_customer(actor, target["customer"])
    contact = _matching_contact(customer, target["contact"]["name"], lead.phone) if customer else None
    opportunities = _open_opportunities(actor, customer) if customer else []
    contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)
                                  .order_by(Contact.id)).all() if customer else []
    return {
        "lead_id": lead.id,
        "customer": ({"action": "attach", "id": customer.id, "name": customer.name} if customer
                     else {"action": "create", "id": None, "name": target["customer"]["name"]}),
        "contact": ({"action": "attach", "id": contact.id, "name": contact.name} if contact
                    else {"action": "create", "id": None, "name": target["contact"]["name"]}),
        "opportunity": ({"action": "attach", "id": opportunities[0].id, "name": opportunities[0].name} if opportunities
                        else {"action": "create", "id": None,
                              "name": target["opportunity"].get("name") or f"{target['customer']['name']} - 新商机"}),
        "new_contact_name": target["contact"]["name"],  # what "新建联系人" would be called
        "contacts": [{"id": c.id, "name": c.name, "title": c.title, "phone": c.phone} for c in contacts],
        "opportunities": [{"id": o.id, "name": o.name, "stage": o.stage.name if o.stage else None,
                           "amount": float(o.amount) if o.amount is not None else None} for o in opportunities],
    }


@service
def convert_lead(actor: Actor, lead_id: int, options: dict | None = None) -> dict:
    """Convert a lead into customer + contact (+ opportunity + follow-up activity).

    The organisation's field mapping (setting ``lead_conversion``) says which lead field
    fills which target field. The collision check runs first: an existing customer with the
    same company name or phone is reused, never duplicated — when it lies outside the
    actor's data scope the conversion stops with 409 naming its owner. The contact is the
    customer's contact with the lead's phone (else name), or a new one; ``contact_id``
    names it. The opportunity is ``opportunity_id`` (an open one of the customer, attached),
    a new one (``create_opportunity``), or none; left unsaid, an open opportunity of the
    customer is attached and only a customer without one gets a new one (the plan of
    :func:`conversion_plan`). Atomic: any failure leaves the lead untouched.
    """
    from crm_core.activities.activities import create_activity
    from crm_core.customers.customers import _new_contact, create_customer
    from crm_core.sales.opportunities import create_opportunity

    options = options or {}
    actor.require("lead", "edit")
    actor.require("customer", "create")
    lead = get_visible(actor, Lead, lead_id, action="edit")
    if lead.status in ("converted", "closed"):
        raise Conflict(f"线索已{'转换' if lead.status == 'converted' else '关闭'}，不能转换。")
    target = _mapped(actor, lead)
    if options.get("customer_id"):
        customer = get_visible(actor, Customer, options["customer_id"], action="edit")
    else:
        customer = _matched_customer(actor, target["customer"])
    created_customer = customer is None
    if customer is None:
        customer, _ = create_customer(actor, target["customer"])
    contact_data = target["contact"]
    if options.get("contact_id"):
        contact = db.session.get(Contact, options["contact_id"])
        if contact is None or contact.customer_id != customer.id:
            raise ValidationFailed("联系人不属于该客户。", fields={"contact_id": "not a contact of this customer"})
    elif options.get("create_contact"):
        contact = None
    else:
        contact = _matching_contact(customer, contact_data["name"], lead.phone)
    if contact is None:
        contact = _new_contact(actor, customer, {**contact_data, "phone": lead.phone, "is_primary": created_customer})
        collision.index_record("customer", customer)
    opportunity = None
    if options.get("opportunity_id"):
        opportunity = get_visible(actor, Opportunity, options["opportunity_id"], action="edit")
        if opportunity.customer_id != customer.id or opportunity.status != "open":
            raise ValidationFailed("只能关联该客户进行中的商机。", fields={"opportunity_id": "not an open opportunity of this customer"})
    else:
        create = options.get("create_opportunity")
        if create is None:  # the plan: an open opportunity of the customer before an empty new one
            existing = _open_opportunities(actor, customer) if not created_customer else []
            opportunity = existing[0] if existing else None
            create = not existing
        if create:
            opportunity, _ = create_opportunity(actor, {
                "name": options.get("opportunity_name") or target["opportunity"].get("name") or f"{customer.name} - 新商机",
                "customer_id": customer.id, "contact_id": contact.id, "amount": options.get("amount"),
                "source": lead.source})
    activity = None
    if options.get("create_activity", True):
        activity = create_activity(actor, {
            "subject": options.get("activity_subject") or f"跟进：{customer.name}", "kind": "call",
            "customer_id": customer.id, "contact_id": contact.id, "lead_id": lead.id,
            "opportunity_id": opportunity.id if opportunity else None, "result": target["activity"].get("result"),
            "planned_start": options.get("activity_at")})
    lead.status, lead.converted_at = "converted", utcnow()
    lead.customer_id, lead.contact_id = customer.id, contact.id
    lead.opportunity_id = opportunity.id if opportunity else None
    db.session.flush()
    collision.unindex_record("lead", lead.id)
    return {"lead_id": lead.id, "customer_id": customer.id, "customer_created": created_customer, "contact_id": contact.id,
            "opportunity_id": opportunity.id if opportunity else None, "activity_id": activity.id if activity else None}


def lead_touches(lead: Lead) -> list[dict]:
    rows = db.session.scalars(select(LeadTouch).where(LeadTouch.lead_id == lead.id).order_by(LeadTouch.id)).all()
    return [{"id": t.id, "source": t.source, "campaign_id": t.campaign_id, "material_id": t.material_id, "name": t.name,
             "product_interest": t.product_interest, "note": t.note, "attribution": t.attribution or {},
             "created_at": t.created_at.isoformat() + "Z"} for t in rows]


def lead_dict(lead: Lead) -> dict:
    return {"id": lead.id, "name": lead.name, "company": lead.company, "phone": lead.phone, "email": lead.email,
            "address": lead.address, "title": lead.title, "product_interest": lead.product_interest, "note": lead.note,
            "source": lead.source, "source_ref": lead.source_ref, "attribution": lead.attribution or {},
            "status": lead.status, "close_reason": lead.close_reason, "owner_id": lead.owner_id,
            "customer_id": lead.customer_id, "contact_id": lead.contact_id, "opportunity_id": lead.opportunity_id,
            "created_at": lead.created_at.isoformat() + "Z" if lead.created_at else None}


def lead_detail(lead: Lead) -> dict:
    return {**lead_dict(lead), "touches": lead_touches(lead)}


__all__ = ["create_lead", "list_leads", "update_lead", "assign_lead", "add_collaborator", "close_lead", "conversion_plan",
           "convert_lead", "lead_dict", "lead_detail", "lead_touches"]
