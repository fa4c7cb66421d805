"""Employee authentication: passwords, bearer tokens with expiry and revocation."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import NotAuthenticated
from crm_core.org.models import ApiToken, User
from crm_core.security import DUMMY_HASH, new_token, token_digest, verify_password

DEFAULT_TOKEN_TTL = timedelta(hours=8)


def authenticate(username: str, password: str) -> User:
    """The active user with these credentials, or :class:`NotAuthenticated`.

    The answer does not say which of the two was wrong, nor whether the account is disabled
    (a disabled account with the right password gets the same answer as a wrong password, so a
    login form cannot be used to confirm a password).
    """
    username = (username or "").strip()
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(DUMMY_HASH, password)  # same work either way
        raise NotAuthenticated("用户名或密码错误。", code="invalid_credentials")
    if not verify_password(user.password_hash, password) or not user.active:
        raise NotAuthenticated("用户名或密码错误。", code="invalid_credentials")
    user.last_login_at = utcnow()
    return user


def issue_token(user: User, ttl: timedelta = DEFAULT_TOKEN_TTL) -> tuple[str, ApiToken]:
    """Create a bearer token; only its digest is stored."""
    token = new_token()
    now = utcnow()
    row = ApiToken(user_id=user.id, token_hash=token_digest(token), created_at=now, expires_at=now + ttl)
    db.session.add(row)
    db.session.flush()
    return token, row


def user_for_token(token: str) -> User:
    """The user behind a bearer token, or :class:`NotAuthenticated` saying why."""
    found = db.session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)  # one round trip
                               .where(ApiToken.token_hash == token_digest(token))).first()
    now = utcnow()
    if found is None:
        raise NotAuthenticated("访问令牌无效。", code="invalid_token")
    row, user = found
    if row.revoked_at is not None:
        raise NotAuthenticated("访问令牌已注销，请重新登录。", code="token_revoked")
    if row.expires_at <= now:
        raise NotAuthenticated("访问令牌已过期，请重新登录。", code="token_expired")
    if not user.active:
        raise NotAuthenticated("该用户已停用，请联系管理员。", code="user_disabled")
    if row.last_used_at is None or (now - row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now  # throttled, so reads do not write on every request
    return user


def revoke_token(token: str) -> bool:
    """Revoke a token. True when it existed and was active."""
    row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def revoke_all_tokens(user_id: int) -> int:
    """Revoke every active token of a user (password change, offboarding)."""
    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))).all()
    now = utcnow()
    for row in rows:
        row.revoked_at = now
    return len(rows)
