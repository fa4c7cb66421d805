"""Per-organisation options stored as JSON (conversion mapping, approver, warnings)."""
from __future__ import annotations

import copy

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from crm_core.db import db
from crm_core.org.models import OrgSetting

DEFAULTS: dict[str, dict] = {
    # the organisation's time zone: every time a person reads is shown in it (None: WXCRM_TIMEZONE)
    "general": {"timezone": None},
    # lead field -> target "object.field"; what conversion copies where
    "lead_conversion": {"mapping": {
        "company": "customer.name", "phone": "customer.phone", "address": "customer.address", "email": "contact.email",
        "name": "contact.name", "title": "contact.title", "product_interest": "opportunity.name", "note": "activity.result",
    }},
    # who approves an opportunity stage that needs approval: the owner's manager, or a named employee (the stage
    # flow's default while ``approvals.flows.stage`` is not set)
    "opportunity_approval": {"approver": "manager", "employee_id": None},
    # the approval engine (crm_core.org.approvals_engine): flows per document type (absent: the type's default) and
    # the hours after which a pending task is reminded (0: never)
    "approvals": {"remind_hours": 24, "flows": {}},
    # warnings about activities and warranties
    "reminders": {"warranty_days_before": 30},
    # 在线客服 快捷回复: the team's canned replies, [{"title", "text"}] with {客户名称} {联系人} {工单号} {客服}
    "canned_replies": {"items": [
        {"title": "问候", "text": "您好{联系人}，我是客服{客服}，请问有什么可以帮您？"},
        {"title": "工单进度", "text": "您的服务单 {工单号} 正在处理中，工程师会尽快与您联系。"},
        {"title": "结束语", "text": "感谢您的咨询，祝您生活愉快！如有问题随时在这里留言。"},
    ]},
    # self-service tickets (自助式服务)
    "self_service": {
        "close_after_days": 7,      # completed tickets close automatically after this many days
        "reopen_days": 7,           # ... and the customer may reopen them until then
        "silence_close_days": 14,   # waiting for the customer this long: closed, no rating invitation
        "service_manager_id": None, # who follows up 1–2 ratings (default: the engineer's superior)
        # hours to first response and to resolution per kind (priority: urgent ×0.25, high ×0.5, low ×2)
        "sla_hours": {"repair": [4, 48], "complaint": [2, 24], "suggestion": [24, 168], "consultation": [8, 48]},
        # the customer's signature to complete a work order: "paid" (when it has paid-service income), "always", "never"
        "completion_signature": "paid",
    },
    # 公海 (the customer pool): customers without an owner, claimed by salespeople
    "customer_pool": {
        "return_after_days": 30,     # an owned customer with no follow-up (done activity) this long goes back; 0: never
        "exempt_trading": True,      # customers who have traded are not returned by the rule
        "claim_limit": 50,           # the pool refuses a claim by someone who already owns this many customers (0: no limit)
        "reclaim_after_days": 7,     # the previous holder may claim it again only after this many days
    },
    # the ERP's webhook (crm_core.org.integration): where documents' events go, the signing secret, which events (all)
    "erp_webhook": {"url": None, "secret": None, "events": []},
    # field check-ins (移动签到): the checks every check-in goes through
    "checkin": {
        "radius_m": 500,                 # default distance allowed from a customer's site
        "accuracy_threshold_m": 200,     # worse accuracy gets the flag low_accuracy
        "max_speed_kmh": 200,            # faster travel from the previous check-in is "suspicious"
        "location_max_age_s": 120,       # how recent a WeChat LOCATION event must be to stand in for the device
        "location_event_coord_system": "gcj02",  # the system WeChat's LOCATION events arrive in
        "late_after_s": 600,             # a check-in sent this long after it happened is flagged late
        "max_delay_h": 24,               # offline check-ins older than this are refused
    },
}


def get_setting(org_id: int, key: str) -> dict:
    """The organisation's setting over its defaults (a copy the caller may change). Read once per
    transaction: a page asks for the same setting per row, a time shown per field."""
    memo = db.session.info.setdefault(_MEMO, {})
    value = memo.get((org_id, key))
    if value is None:
        stored = db.session.scalars(select(OrgSetting.value).where(OrgSetting.org_id == org_id, OrgSetting.key == key)).first()
        value = memo[(org_id, key)] = {**copy.deepcopy(DEFAULTS.get(key, {})), **(stored or {})}
    return copy.deepcopy(value)


_MEMO = "org_settings"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_settings(session, *args) -> None:
    session.info.pop(_MEMO, None)  # the next transaction reads what others committed meanwhile


def put_setting(actor, key: str, value: dict) -> dict:
    actor.require("organization", "edit")
    _store(actor.org_id, key, lambda _stored: value)
    return get_setting(actor.org_id, key)


def remember(org_id: int, key: str, **values) -> None:
    """Add ``values`` to an organisation's stored setting (what the product itself keeps there,
    such as the self-service pending customer), leaving the rest and the defaults as they are."""
    _store(org_id, key, lambda stored: {**stored, **values})


def _store(org_id: int, key: str, new_value) -> None:
    row = db.session.scalars(select(OrgSetting).where(OrgSetting.org_id == org_id, OrgSetting.key == key)).first()
    if row is None:
        db.session.add(OrgSetting(org_id=org_id, key=key, value=new_value({})))
    else:
        row.value = new_value(row.value or {})
    db.session.flush()
    db.session.info.pop(_MEMO, None)


def org_timezone(org_id: int | None) -> str:
    """The organisation's time zone name (its setting, else the configured default)."""
    from crm_core.clock import default_timezone

    if org_id is None:
        return default_timezone()
    return get_setting(org_id, "general").get("timezone") or default_timezone()
