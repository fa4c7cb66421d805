"""Organisation (组织/部门/岗位/职员), users, roles, function permissions, data scopes, API tokens, records shared
outside a data scope, and per-organisation settings."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, inspect, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.mixins import Audited, TimestampMixin

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


BUSINESS_FUNCTIONS = ("sales", "marketing", "service")


class Organization(Audited, TimestampMixin, db.Model):
    """A legal or management unit. It only runs the business functions it has enabled."""

    __audit_type__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    sales_enabled: Mapped[bool] = mapped_column(default=True)
    marketing_enabled: Mapped[bool] = mapped_column(default=True)
    service_enabled: Mapped[bool] = mapped_column(default=True)
    # bumped in the same transaction as any change to a role, its permissions or scopes, or a
    # user's roles (crm_core.org.permissions): the per-process actor cache is keyed by it
    authz_version: Mapped[int] = mapped_column(default=0, server_default="0")

    def function_enabled(self, function: str | None) -> bool:
        if function is None:
            return True
        return bool(getattr(self, f"{function}_enabled"))

    @property
    def functions(self) -> list[str]:
        return [f for f in BUSINESS_FUNCTIONS if self.function_enabled(f)]


class Department(Audited, TimestampMixin, db.Model):
    __audit_type__ = "department"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    # seed 2.2: "注意选择部门属性" — which business function the department serves
    function: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)  # a disabled department takes no new positions or people

    positions: Mapped[list["Position"]] = relationship(back_populates="department", order_by="Position.id")


class Position(Audited, TimestampMixin, db.Model):
    """A post inside a department. ``reports_to`` builds the hierarchy data scopes follow."""

    __audit_type__ = "position"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    reports_to_id: Mapped[int | None] = mapped_column(ForeignKey("position.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))

    department: Mapped[Department] = relationship(back_populates="positions")
    holders: Mapped[list["EmployeePosition"]] = relationship(back_populates="position")


class Employee(Audited, TimestampMixin, db.Model):
    __audit_type__ = "employee"
    __table_args__ = (UniqueConstraint("org_id", "code"), UniqueConstraint("org_id", "wecom_userid"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # the member's UserID in the company's 企业微信 (WeCom): staff sign-in by WeCom OAuth and WeCom app notices
    wecom_userid: Mapped[str | None] = mapped_column(String(64))

    positions: Mapped[list["EmployeePosition"]] = relationship(back_populates="employee", cascade="all, delete-orphan")

    @property
    def primary_position(self) -> "Position | None":
        for link in self.positions:
            if link.primary:
                return link.position
        return self.positions[0].position if self.positions else None

    @property
    def department_id(self) -> int | None:
        """The home department: the primary position's, else the first position's."""
        if self.id is not None and "positions" in inspect(self).unloaded:  # one query, not two lazy loads
            return db.session.scalar(select(Position.department_id)
                                     .join(EmployeePosition, EmployeePosition.position_id == Position.id)
                                     .where(EmployeePosition.employee_id == self.id)
                                     .order_by(EmployeePosition.primary.desc(), EmployeePosition.id).limit(1))
        pos = self.primary_position
        return pos.department_id if pos else None


class EmployeePosition(db.Model):
    """An employee holds one or more positions; one is primary (their home department)."""

    __table_args__ = (UniqueConstraint("employee_id", "position_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"), index=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("position.id"), index=True)
    primary: Mapped[bool] = mapped_column(default=True)

    employee: Mapped[Employee] = relationship(back_populates="positions")
    position: Mapped[Position] = relationship(back_populates="holders")


class OrgSetting(Audited, TimestampMixin, db.Model):
    __audit_type__ = "org_setting"
    __table_args__ = (UniqueConstraint("org_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict] = mapped_column(JSON, default=dict)

    @staticmethod
    def __audit_value__(column: str, value):
        """A secret kept in a setting (the ERP webhook's signing key) is logged as changed, never as itself."""
        if column == "value" and isinstance(value, dict) and value.get("secret"):
            return {**value, "secret": "***"}
        return value


class RecordShare(db.Model):
    __table_args__ = (
        UniqueConstraint("object_type", "object_id", "employee_id"),
        Index("ix_record_share_lookup", "employee_id", "object_type", "object_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int]
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"))
    shared_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime]


# --- the approval engine (crm_core.org.approvals_engine): one request per document submitted, its tasks per step ---
APPROVAL_STATUSES = ("pending", "approved", "rejected", "withdrawn")
TASK_STATUSES = ("waiting", "pending", "approved", "rejected", "skipped", "withdrawn")


class ApprovalRequest(Audited, TimestampMixin, db.Model):
    """A document (``doc_type`` + ``doc_id``) going through its approval flow; at most one pending per document."""

    __audit_type__ = "approval_request"
    __table_args__ = (
        Index("ix_approval_request_doc", "doc_type", "doc_id"),
        Index("uq_approval_request_pending", "doc_type", "doc_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(32))
    doc_id: Mapped[int]
    # the record a person opens for it (a stage approval opens its opportunity)
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    step: Mapped[int] = mapped_column(default=1)  # the step waiting for decisions
    steps: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(String(300))
    facts: Mapped[dict] = mapped_column(JSON, default=dict)  # what the flow's conditions were read against
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))  # whose superiors "manager" steps climb
    decided_at: Mapped[datetime | None]
    touched_at: Mapped[datetime | None]  # written first by every decision: the row lock that serialises them

    tasks: Mapped[list["ApprovalTask"]] = relationship(back_populates="request", order_by="ApprovalTask.id",
                                                       cascade="all, delete-orphan")


class ApprovalTask(TimestampMixin, db.Model):
    """One approver's decision in one step; ``approver_id`` None: anyone holding the document's approve permission
    within their data scope (the fallback when a step names nobody)."""

    __table_args__ = (Index("ix_approval_task_inbox", "approver_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_request.id", ondelete="CASCADE"), index=True)
    step: Mapped[int]
    step_name: Mapped[str] = mapped_column(String(60))
    mode: Mapped[str] = mapped_column(String(8), default="any")  # any: 或签 (one decides), all: 会签 (everyone)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    comment: Mapped[str | None] = mapped_column(String(500))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))  # a delegate or an administrator
    decided_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]

    request: Mapped[ApprovalRequest] = relationship(back_populates="tasks")


class ApprovalDelegation(Audited, TimestampMixin, db.Model):
    """审批委托: while ``employee`` is away (``starts_on``..``ends_on``, inclusive) ``delegate`` decides their tasks."""

    __audit_type__ = "approval_delegation"
    __table_args__ = (Index("ix_approval_delegation_employee", "employee_id", "ends_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    delegate_id: Mapped[int] = mapped_column(ForeignKey("employee.id"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    note: Mapped[str | None] = mapped_column(String(200))
    revoked: Mapped[bool] = mapped_column(default=False)
