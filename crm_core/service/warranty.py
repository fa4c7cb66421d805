"""Warranty-expiry reminders (保修到期提醒): product archives are the basis of service, so the
service desk tells the customer's owner and the customer's own WeChat before a warranty ends."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm_core import jobs, outbox
from crm_core.clock import utcnow
from crm_core.customers.models import Customer, ProductArchive
from crm_core.db import db
from crm_core.org.settings import get_setting
from crm_core.wechat.models import Follower


@jobs.periodic(every=24 * 3600)
def warranty_reminders() -> int:
    """Warranty-expiry reminders: one notice per archive, ``warranty_days_before`` days ahead,
    through the outbox: to the customer's owner, and to the customer's WeChat users bound to
    the archive's contact (or any contact of the customer)."""
    today = utcnow().date()
    sent = 0
    orgs = db.session.scalars(select(ProductArchive.org_id).distinct()).all()
    for org_id in orgs:
        days = int(get_setting(org_id, "reminders")["warranty_days_before"])
        rows = db.session.scalars(select(ProductArchive).where(
            ProductArchive.org_id == org_id, ProductArchive.warranty_reminded_at.is_(None),
            ProductArchive.warranty_until >= today, ProductArchive.warranty_until <= today + timedelta(days=days))).all()
        for a in rows:
            customer = db.session.get(Customer, a.customer_id)
            outbox.notify_staff(a.owner_id or customer.owner_id, "warranty_expiring",
                                f"客户「{customer.name}」的 {a.product.name}（序列号 {a.serial_no}）保修将于 {a.warranty_until} 到期。",
                                org_id=org_id, dedupe_key=f"warranty:{a.id}:{a.warranty_until.isoformat()}",
                                archive_id=a.id, customer_id=customer.id)
            for openid in customer_openids(a.customer_id, a.contact_id):  # the customer's own WeChat, once bound
                outbox.queue_message("wechat_notice", openid, {
                    "title": "保修到期提醒",
                    "text": f"您的 {a.product.name}（序列号 {a.serial_no}）保修将于 {a.warranty_until} 到期，如需延保或检修请在公众号中在线报修。"},
                    org_id=org_id, dedupe_key=f"warranty-customer:{a.id}:{openid}:{a.warranty_until.isoformat()}")
            a.warranty_reminded_at = utcnow()
            sent += 1
    db.session.flush()
    return sent


def customer_openids(customer_id: int, contact_id: int | None = None) -> list[str]:
    """WeChat users bound to the contact (or, without one, to any contact of the customer)."""
    stmt = select(Follower.openid).where(Follower.subscribed.is_(True))
    stmt = stmt.where(Follower.contact_id == contact_id) if contact_id else stmt.where(Follower.customer_id == customer_id)
    return list(db.session.scalars(stmt))
