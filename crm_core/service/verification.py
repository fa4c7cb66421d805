"""Identity verification of a WeChat user (自助式服务 step 2): phone number + one-time code.

Codes: 6 digits, valid 10 minutes, 5 tries, stored as an HMAC (never in clear). Sending is
rate-limited per phone (one a minute, five an hour) and per WeChat user (ten an hour). A
confirmed phone binds the follower to the contact with that number; when none matches, a
non-trading customer and contact are created — behind the collision check — and flagged
``needs_review`` for the service desk.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import timedelta

from sqlalchemy import func, select

from crm_core import normalize, sms
from crm_core.clock import utcnow
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.errors import RateLimited, ValidationFailed
from crm_core.org.models import Employee
from crm_core.org.settings import get_setting, remember
from crm_core.service.models import VerificationCode
from crm_core.wechat import followers
from crm_core.wechat.models import Follower

CODE_TTL = timedelta(minutes=10)
MAX_TRIES = 5
MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SECRET = os.environ.get("SECRET_KEY") or secrets.token_hex(16)


class WrongCode(ValidationFailed):
    """A wrong or used-up code; the attempt counter must be committed even so."""


def mobile(phone: str | None) -> str:
    digits = normalize.phone(phone)
    if not MOBILE.match(digits):
        raise ValidationFailed("请输入 11 位手机号码。", fields={"phone": "invalid"})
    return digits


def _digest(phone: str, code: str) -> str:
    return hmac.new(_SECRET.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def start(openid: str, phone: str) -> dict:
    phone = mobile(phone)
    now = utcnow()
    recent = lambda col, value, since: db.session.scalar(  # noqa: E731
        select(func.count(VerificationCode.id)).where(col == value, VerificationCode.created_at >= since)) or 0
    if recent(VerificationCode.phone, phone, now - timedelta(seconds=60)):
        raise RateLimited("验证码发送过于频繁，请 1 分钟后再试。", extra={"retry_after": 60})
    if recent(VerificationCode.phone, phone, now - timedelta(hours=1)) >= 5:
        raise RateLimited("该手机号 1 小时内获取验证码次数过多，请稍后再试。", extra={"retry_after": 3600})
    if recent(VerificationCode.openid, openid, now - timedelta(hours=1)) >= 10:
        raise RateLimited("获取验证码次数过多，请稍后再试。", extra={"retry_after": 3600})
    code = f"{secrets.randbelow(10**6):06d}"
    db.session.add(VerificationCode(phone=phone, openid=openid, code_hash=_digest(phone, code), created_at=now,
                                    expires_at=now + CODE_TTL, attempts=0))
    sms.send(phone, f"【蓝云服务】您的验证码是 {code}，10 分钟内有效。如非本人操作请忽略。")
    db.session.flush()
    return {"sent": True, "expires_in": int(CODE_TTL.total_seconds()), "resend_after": 60}


def confirm(org_id: int, appid: str, openid: str, phone: str, code: str) -> Follower:
    """Check the code and bind the follower. Raises :class:`WrongCode` (commit the attempt)."""
    phone = mobile(phone)
    now = utcnow()
    row = db.session.scalars(select(VerificationCode).where(
        VerificationCode.phone == phone, VerificationCode.openid == openid, VerificationCode.used_at.is_(None))
        .order_by(VerificationCode.id.desc())).first()
    if row is None or row.expires_at < now:
        raise WrongCode("验证码已过期，请重新获取。", code="code_expired", fields={"code": "expired"})
    if row.attempts >= MAX_TRIES:
        raise WrongCode("验证码错误次数过多，请重新获取。", code="too_many_attempts", fields={"code": "locked"})
    row.attempts += 1
    if not hmac.compare_digest(row.code_hash, _digest(phone, (code or "").strip())):
        db.session.flush()
        left = MAX_TRIES - row.attempts
        raise WrongCode(f"验证码不正确，还可以再试 {left} 次。" if left else "验证码错误次数过多，请重新获取。",
                        code="wrong_code", fields={"code": "wrong"})
    row.used_at = now
    follower = followers.get_or_create(appid, openid, org_id=org_id)
    contact = _find_contact(org_id, phone) or _pending_contact(org_id, phone, follower)
    followers.bind_contact(follower, contact)  # binding again with another phone moves the binding (更换手机号)
    return follower


def _find_contact(org_id: int, phone: str) -> Contact | None:
    tail = phone[-8:]
    rows = db.session.scalars(select(Contact).join(Customer, Customer.id == Contact.customer_id).where(
        Contact.org_id == org_id, Contact.phone.contains(tail), Customer.status == "active")
        .order_by(Contact.is_primary.desc(), Contact.updated_at.desc())).all()
    return next((c for c in rows if normalize.phone(c.phone) == phone), None)


def service_owner(org_id: int) -> Employee | None:
    """Who owns customers created by self-service: the first service dispatcher, else anyone."""
    from crm_core.org.organization import employees_with_role

    dispatchers = employees_with_role(org_id, "dispatcher")
    return dispatchers[0] if dispatchers else db.session.scalars(select(Employee).where(Employee.org_id == org_id).order_by(Employee.id)).first()


PENDING_CUSTOMER_NAME = "待审核：微信自助验证客户"


def pending_customer(org_id: int) -> Customer:
    """The organisation's one holding customer for phones that match no contact (created on first
    use; its id kept in the ``self_service`` setting). The desk moves each contact on it to the
    customer it belongs to, or registers that customer; nobody gets a junk customer of their own."""
    cfg = get_setting(org_id, "self_service")
    customer = db.session.get(Customer, cfg.get("pending_customer_id")) if cfg.get("pending_customer_id") else None
    if customer is not None and customer.org_id == org_id:
        return customer
    owner = service_owner(org_id)
    customer = Customer(org_id=org_id, name=PENDING_CUSTOMER_NAME, kind="person", source="self_service", trading=False,
                        needs_review=True, owner_id=owner.id if owner else None,
                        department_id=owner.department_id if owner else None,
                        note="微信用户自助验证时填写的手机号没有对应的联系人；请把这里的联系人移到所属客户，或登记为新客户。")
    db.session.add(customer)
    db.session.flush()
    remember(org_id, "self_service", pending_customer_id=customer.id)
    return customer


def _pending_contact(org_id: int, phone: str, follower: Follower) -> Contact:
    """A contact awaiting review on the organisation's pending customer (one per phone)."""
    customer = pending_customer(org_id)
    existing = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id, Contact.phone == phone)).first()
    if existing is not None:
        return existing
    contact = Contact(org_id=org_id, customer_id=customer.id, owner_id=customer.owner_id, department_id=customer.department_id,
                      name=follower.nickname or f"微信用户{phone[-4:]}", phone=phone, is_primary=False,
                      note="待审核：微信自助验证时创建，请核实所属客户")
    db.session.add(contact)
    customer.needs_review = True
    db.session.flush()
    return contact
