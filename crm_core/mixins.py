"""Mixins shared by the models."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from crm_core.clock import utcnow


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Audited:
    """Marker: inserts, updates and deletes of this model are written to the audit log.

    ``__audit_exclude__`` names columns whose values never enter the log (they are
    recorded as changed, with the value masked).
    """

    __audit_exclude__: tuple[str, ...] = ()
    # high-frequency bookkeeping columns whose changes are not worth an audit entry on their own
    __audit_ignore__: tuple[str, ...] = ()
    __audit_type__: str = ""


class OwnedRecord:
    """A business record that the data-scope filter applies to.

    ``owner_id`` is the owning employee and ``department_id`` the owner's department when
    the record was saved (so moving an employee does not silently move history).
    ``__scope_object__`` is the permission object name (``customer``, ``ticket``...).
    ``__scope_assignee_columns__`` names further employee columns that make a record
    visible to that employee (assigned to them).
    """

    __scope_object__: str = ""
    __scope_assignee_columns__: tuple[str, ...] = ()

    @declared_attr
    def org_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("organization.id"), index=True)

    @declared_attr
    def owner_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("employee.id"), index=True)

    @declared_attr
    def department_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("department.id"), index=True)
