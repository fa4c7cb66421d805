"""Organisation: organisations, departments, positions with reporting lines, employees."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import db
from crm_core.models.base import Audited, TimestampMixin

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
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)

    positions: Mapped[list["EmployeePosition"]] = relationship(back_populates="employee", cascade="all, delete-orphan")

    @property
    def primary_position(self) -> "Position | None":
        for link in self.positions:
            if link.primary:
                return link.position
        return self.positions[0].position if self.positions else None

    @property
    def department_id(self) -> int | None:
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
