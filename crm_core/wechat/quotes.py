"""A quote sent to the customer's WeChat (#19 item 2): a notice to each verified follower of the
customer, linking the page where they read and answer it (wxapp/h5/quotes.py)."""
from __future__ import annotations

from sqlalchemy import select

from crm_core import outbox
from crm_core.db import db
from crm_core.org.models import Organization
from crm_core.wechat.models import Follower


def tell_customer(q, url: str, appid: str) -> int:
    """Queue the notice to the customer's verified followers of ``appid``; returns how many.
    ``q`` is a quote (crm_core.sales, a peer area: only its attributes are read)."""
    org = db.session.get(Organization, q.org_id)
    text = f"{org.name}为您发来报价单 {q.number}，价税合计 {q.total:.2f} 元，有效期至 {q.valid_until.isoformat()}。点击查看明细并确认。"
    told = db.session.scalars(select(Follower).where(Follower.customer_id == q.customer_id, Follower.subscribed.is_(True),
                                                     Follower.contact_id.is_not(None), Follower.appid == appid)).all()
    for f in told:
        outbox.queue_message("wechat_notice", f.openid, {"kind": "quote_sent", "quote_id": q.id, "title": "报价单", "text": text,
                                                          "url": url}, org_id=q.org_id,
                             dedupe_key=f"quote-sent:{q.id}:{q.version}:{f.openid}")
    return len(told)
