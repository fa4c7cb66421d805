"""Users, roles, function permissions, data scopes and API tokens."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.models.base import Audited, TimestampMixin

DATA_SCOPES = ("self", "subordinates", "department", "organization", "listed")


class User(Audited, TimestampMixin, db.Model):
    __audit_type__ = "user"
    __audit_exclude__ = ("password_hash",)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]

    roles: Mapped[list["Role"]] = relationship(secondary="user_role", order_by="Role.id")
    employee = relationship("Employee")
    organization = relationship("Organization")


class Role(Audited, TimestampMixin, db.Model):
    """A role. Built-in roles have no organisation and are shared by all of them."""

    __audit_type__ = "role"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    builtin: Mapped[bool] = mapped_column(default=False)
    # every function permission, organisation-wide data scope (the administrator)
    grants_all: Mapped[bool] = mapped_column(default=False)

    permissions: Mapped[list["RolePermission"]] = relationship(cascade="all, delete-orphan")
    data_scopes: Mapped[list["RoleDataScope"]] = relationship(cascade="all, delete-orphan")


class UserRole(db.Model):
    __tablename__ = "user_role"
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)


class RolePermission(db.Model):
    """A function permission: ``action`` on the business object ``object_type``."""

    __table_args__ = (UniqueConstraint("role_id", "object_type", "action"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))


class RoleDataScope(db.Model):
    """Which records of ``object_type`` a role's holders see. Absent means "self"."""

    __table_args__ = (UniqueConstraint("role_id", "object_type"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16), default="self")
    department_ids: Mapped[list] = mapped_column(JSON, default=list)
    employee_ids: Mapped[list] = mapped_column(JSON, default=list)


class ApiToken(db.Model):
    """A bearer token. Only its SHA-256 is stored; it expires and can be revoked."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
