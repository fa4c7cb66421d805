"""The salesperson's and the manager's phone pages of the workbench: my customers (search, nearby), 客户备案 with the
collision check answered inline, a customer with its contacts and opportunities, 活动跟踪 (a visit or call with its
result, tied to a check-in at the site), an opportunity's stages (what each still needs), advance, win or lose, and the
manager's approvals. Each action is the API's own service call (``crm_core`` and ``wxapp.api.mobile.log_visit``)."""
from __future__ import annotations

from flask import jsonify, render_template, request, url_for
from pydantic import Field
from sqlalchemy import select

from crm_core.activities import activities as act_svc
from crm_core.activities.models import Activity
from crm_core.customers import customers as customer_svc
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor, get_visible, scoped_select
from crm_core.sales import opportunities as opp_svc
from crm_core.sales.models import Opportunity, OpportunityApproval, SalesStage
from wxapp.api.customers import ContactCreate
from wxapp.api.mobile import QuickCustomerIn, VisitIn, log_visit, register_customer
from wxapp.api.opportunities import AdvanceIn, DecisionIn, LoseIn, WinIn
from wxapp.auth import jssdk_client, staff_user_required
from wxapp.openapi import Model, h5_api, parse_json_body
from wxapp.staff.h5 import _actor, _json, bp, staff_page


@bp.get("/staff/customers")
@staff_page
def customers(actor: Actor):
    q = (request.args.get("q") or "").strip()[:100] or None
    rows, total = customer_svc.list_customers(actor, q=q, page=1, per_page=50)
    return render_template("h5/staff/customers.html", rows=rows, total=total, q=q or "", in_wechat=jssdk_client() is not None)


@bp.get("/staff/customers/new")
@staff_page
def new_customer(actor: Actor):
    actor.require("customer", "create")
    return render_template("h5/staff/customer_new.html")


@h5_api.describe("/h5/api/staff/customers", "POST", summary="Salesperson: 客户备案 with the first contact (collision-checked)",
                 tags=("staff",), body=QuickCustomerIn, status=201)
@bp.post("/api/staff/customers")
@staff_user_required
def create_customer():
    customer, hits = register_customer(_actor(), parse_json_body(QuickCustomerIn))
    return _json({**customer_svc.customer_dict(customer), "collisions": [h.to_dict() for h in hits],
                  "url": url_for("staff_h5.customer_page", customer_id=customer.id)}, 201)


@h5_api.describe("/h5/api/staff/collisions/check", "POST", summary="Salesperson: the collision check as the form is filled",
                 tags=("staff",))
@bp.post("/api/staff/collisions/check")
@staff_user_required
def collisions_check():
    from wxapp.api.settings import CheckIn as CollisionCheckIn
    from wxapp.api.settings import precheck

    return jsonify(precheck(_actor(), parse_json_body(CollisionCheckIn)))


@bp.get("/staff/customers/<int:customer_id>")
@staff_page
def customer_page(actor: Actor, customer_id: int):
    customer = customer_svc.get_customer(actor, customer_id)
    contacts = db.session.scalars(scoped_select(actor, Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)).all()
    # each section only for the roles that may see it (an engineer sees the customer and its contacts)
    opps = db.session.scalars(scoped_select(actor, Opportunity).where(Opportunity.customer_id == customer.id)
                              .order_by(Opportunity.id.desc()).limit(20)).all() if actor.can("opportunity", "view") else []
    stages = {s.id: s for s in db.session.scalars(select(SalesStage).where(SalesStage.id.in_({o.stage_id for o in opps})))} if opps else {}
    activities = db.session.scalars(scoped_select(actor, Activity).where(Activity.customer_id == customer.id)
                                    .order_by(Activity.id.desc()).limit(10)).all() if actor.can("activity", "view") else []
    opp_id = request.args.get("opportunity_id", type=int)
    for_opp = next((o for o in opps if o.id == opp_id and o.status == "open"), None)
    return render_template("h5/staff/customer.html", customer=customer, contacts=contacts, opps=opps, stages=stages,
                           activities=activities, can_log=actor.can("activity", "create"), for_opp=for_opp,
                           can_add_contact=actor.can("contact", "create") and actor.can("customer", "edit"),
                           can_opps=actor.can("opportunity", "view"), can_activities=actor.can("activity", "view"))


@h5_api.describe("/h5/api/staff/contacts", "POST", summary="Salesperson: add a contact to a customer (collision-checked)",
                 tags=("staff",), body=ContactCreate, status=201)
@bp.post("/api/staff/contacts")
@staff_user_required
def add_contact():
    body = parse_json_body(ContactCreate)
    contact, hits = customer_svc.add_contact(_actor(), body.customer_id, body.model_dump(exclude={"customer_id"}))
    return _json({**customer_svc.contact_dict(contact), "collisions": [h.to_dict() for h in hits]}, 201)


@h5_api.describe("/h5/api/staff/visits", "POST", summary="Salesperson: log a visit or call with its result, checked in at the site",
                 tags=("staff",), body=VisitIn, status=201)
@bp.post("/api/staff/visits")
@staff_user_required
def visit():
    from crm_core.activities.activities import activity_dict
    from crm_core.field.checkins import to_dict

    activity, ci = log_visit(_actor(), parse_json_body(VisitIn))
    return _json({"activity": activity_dict(activity), "checkin": to_dict(ci) if ci else None}, 201)


@bp.get("/staff/opportunities/<int:opp_id>")
@staff_page
def opportunity_page(actor: Actor, opp_id: int):
    opp = get_visible(actor, Opportunity, opp_id)
    d = opp_svc.opportunity_dict(opp, detail=True)
    customer = db.session.get(Customer, opp.customer_id)
    asked = dict(db.session.execute(select(OpportunityApproval.stage_id, OpportunityApproval.status).where(
        OpportunityApproval.opportunity_id == opp.id, OpportunityApproval.status.in_(("pending", "approved")))).all())
    contacts = db.session.scalars(scoped_select(actor, Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)).all()
    return render_template("h5/staff/opportunity.html", o=d, customer=customer, asked=asked, contacts=contacts,
                           can_edit=actor.can("opportunity", "edit"))


class OpportunityContactIn(Model):
    contact_id: int


@h5_api.describe("/h5/api/staff/opportunities/<int:opp_id>/contact", "POST", summary="Salesperson: the opportunity's contact",
                 tags=("staff",), body=OpportunityContactIn)
@bp.post("/api/staff/opportunities/<int:opp_id>/contact")
@staff_user_required
def set_contact(opp_id: int):
    body = parse_json_body(OpportunityContactIn)
    return _json(opp_svc.opportunity_dict(opp_svc.update_opportunity(_actor(), opp_id, {"contact_id": body.contact_id}),
                                          detail=True))


@h5_api.describe("/h5/api/staff/opportunities/<int:opp_id>/advance", "POST", summary="Salesperson: move to a stage",
                 tags=("staff",), body=AdvanceIn)
@bp.post("/api/staff/opportunities/<int:opp_id>/advance")
@staff_user_required
def advance(opp_id: int):
    actor = _actor()
    return _json(opp_svc.opportunity_dict(opp_svc.advance(actor, opp_id, parse_json_body(AdvanceIn).stage_id), detail=True))


@h5_api.describe("/h5/api/staff/opportunities/<int:opp_id>/approvals", "POST", summary="Salesperson: ask for a stage's approval",
                 tags=("staff",), body=AdvanceIn, status=201)
@bp.post("/api/staff/opportunities/<int:opp_id>/approvals")
@staff_user_required
def request_approval(opp_id: int):
    a = opp_svc.request_approval(_actor(), opp_id, parse_json_body(AdvanceIn).stage_id)
    return _json({"id": a.id, "status": a.status, "approver_id": a.approver_id}, 201)


@h5_api.describe("/h5/api/staff/opportunities/<int:opp_id>/win", "POST", summary="Salesperson: won (赢单)", tags=("staff",), body=WinIn)
@bp.post("/api/staff/opportunities/<int:opp_id>/win")
@staff_user_required
def win(opp_id: int):
    body = parse_json_body(WinIn)
    return _json(opp_svc.opportunity_dict(opp_svc.win(_actor(), opp_id, body.reason, body.amount), detail=True))


@h5_api.describe("/h5/api/staff/opportunities/<int:opp_id>/lose", "POST", summary="Salesperson: lost, with a reason", tags=("staff",),
                 body=LoseIn)
@bp.post("/api/staff/opportunities/<int:opp_id>/lose")
@staff_user_required
def lose(opp_id: int):
    return _json(opp_svc.opportunity_dict(opp_svc.lose(_actor(), opp_id, parse_json_body(LoseIn).reason), detail=True))


@bp.get("/staff/approvals")
@staff_page
def approvals(actor: Actor):
    """The manager's approvals waiting: each stage with the opportunity, its customer, the stage asked for and who
    asks; the other documents of the approval engine (quotes, contracts, changes, expenses) with their step; and the work plans
    submitted to me for 批阅, with how much of each was done."""
    from crm_core.org.approvals_engine import pending_items
    from crm_core.org.models import Employee

    waiting = pending_items(actor)  # the plans are listed from plans_to_review below
    stage_steps = {int(i["id"].split("-")[1]): i for i in waiting if i["kind"] == "stage"}
    rows = list(db.session.scalars(select(OpportunityApproval).where(OpportunityApproval.id.in_(stage_steps))
                                   .order_by(OpportunityApproval.id))) if stage_steps else []
    opps = {o.id: o for o in db.session.scalars(select(Opportunity).where(Opportunity.id.in_({a.opportunity_id for a in rows})))} if rows else {}
    customers = {c.id: c for c in db.session.scalars(select(Customer).where(
        Customer.id.in_({o.customer_id for o in opps.values()})))} if opps else {}
    stages = {s.id: s for s in db.session.scalars(select(SalesStage).where(SalesStage.id.in_({a.stage_id for a in rows})))} if rows else {}
    people = {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_({a.requested_by_id for a in rows})))} if rows else {}
    items = [{"id": a.id, "opp": opps[a.opportunity_id], "customer": customers.get(opps[a.opportunity_id].customer_id),
              "stage": stages.get(a.stage_id), "by": people.get(a.requested_by_id), "at": a.created_at,
              "step": stage_steps[a.id]["step"], "on_behalf_of": stage_steps[a.id]["on_behalf_of"]} for a in rows]
    contracts = [i for i in waiting if i["kind"] != "stage"]  # contracts, quotes: each document the engine holds
    plans = act_svc.plans_to_review(actor)
    owners = employee_names(p.owner_id for p in plans)
    plan_items = [{"p": p, "owner": owners.get(p.owner_id, ""), "progress": act_svc.plan_vs_actual(actor, p.id)} for p in plans]
    return render_template("h5/staff/approvals.html", items=items, plans=plan_items, contracts=contracts)


@h5_api.describe("/h5/api/staff/approvals/<int:approval_id>/decision", "POST", summary="Manager: approve or reject a stage",
                 tags=("staff",), body=DecisionIn)
@bp.post("/api/staff/approvals/<int:approval_id>/decision")
@staff_user_required
def decide(approval_id: int):
    body = parse_json_body(DecisionIn)
    a = opp_svc.decide_approval(_actor(), approval_id, body.approve, body.comment)
    return _json({"id": a.id, "status": a.status, "comment": a.comment})


class ItemDecisionIn(Model):
    approve: bool
    comment: str | None = Field(default=None, max_length=500)


@h5_api.describe("/h5/api/staff/approvals/<ref>/decide", "POST", summary="Manager: approve or reject an item of 待我审批 (stage-, contract-, plan-)",
                 tags=("staff",), body=ItemDecisionIn)
@bp.post("/api/staff/approvals/<ref>/decide")
@staff_user_required
def decide_item(ref: str):
    from crm_core.sales.approvals import decide

    body = parse_json_body(ItemDecisionIn)
    return _json(decide(_actor(), ref[:40], body.approve, body.comment))


def approval_link(payload: dict) -> str | None:
    """An approval notice opens the approvals (the approver; a contract submitted, at the contract) or the opportunity
    (the one who asked)."""
    if payload.get("kind") in ("approval_requested", "contract_submitted") and payload.get("approval_ref"):
        return f"/h5/staff/approvals#approval-{payload['approval_ref'][:40]}"
    if payload.get("kind") == "approval_requested":
        return "/h5/staff/approvals"
    if payload.get("kind") == "contract_submitted" and payload.get("contract_id"):
        return f"/h5/staff/approvals#approval-contract-{int(payload['contract_id'])}"
    if payload.get("kind") == "approval_decided" and payload.get("approval_id"):
        a = db.session.get(OpportunityApproval, payload["approval_id"])
        return f"/h5/staff/opportunities/{a.opportunity_id}" if a else None
    return None


@bp.get("/staff/calendar")
@staff_page
def calendar_page(actor: Actor):
    """我的日程: my activities of the next seven days by day (the organisation's time zone), each with its customer."""
    from datetime import timedelta

    from crm_core.activities.activities import calendar
    from crm_core.clock import local_today, to_local
    from crm_core.org.settings import org_timezone

    tz = org_timezone(actor.org_id)
    today = local_today(tz)
    rows = calendar(actor, actor.employee_id, today - timedelta(days=1), today + timedelta(days=7))  # UTC days around
    names = customer_svc.customer_names({a.customer_id for a in rows if a.customer_id})
    days: dict = {}
    for a in rows:
        day = to_local(a.planned_start, tz).date()
        if today <= day <= today + timedelta(days=6):
            days.setdefault(day, []).append({"a": a, "customer": names.get(a.customer_id)})
    return render_template("h5/staff/calendar.html", days=sorted(days.items()), today=today)
