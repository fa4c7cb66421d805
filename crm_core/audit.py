"""Audit log: every insert, update and delete of an :class:`Audited` model, with the actor,
the request id and each changed field's before and after value.

It hooks SQLAlchemy's flush, so no write through a service can forget it; rows are written
with Core inserts in the same transaction (a rolled-back change leaves no audit entry).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, String, event, insert, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_core.clock import utcnow
from crm_core.context import current_actor, request_id
from crm_core.db import db
from crm_core.mixins import Audited


class AuditEntry(db.Model):
    __table_args__ = (Index("ix_audit_entry_object", "object_type", "object_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    org_id: Mapped[int | None] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(index=True)
    actor_label: Mapped[str | None] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))  # create / update / delete
    changes: Mapped[dict] = mapped_column(JSON, default=dict)  # {field: [before, after]}
    request_id: Mapped[str | None] = mapped_column(String(64))


MASK = "***"


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _changes(obj, action: str) -> dict:
    state = inspect(obj)
    excluded = set(getattr(obj, "__audit_exclude__", ()))
    ignored = set(getattr(obj, "__audit_ignore__", ()))
    redact = getattr(obj, "__audit_value__", None)  # a model's own masking inside a value (a secret in a JSON setting)

    def shown(key, value):
        return _plain(redact(key, value) if redact else value)

    out: dict = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in ("created_at", "updated_at") or key in ignored:
            continue
        hist = state.attrs[key].history
        if action == "create":
            value = getattr(obj, key)
            if value is None:
                continue
            out[key] = [None, MASK if key in excluded else shown(key, value)]
        elif action == "delete":
            value = hist.unchanged[0] if hist.unchanged else (hist.deleted[0] if hist.deleted else None)
            out[key] = [MASK if key in excluded else shown(key, value), None]
        elif hist.has_changes():
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before == after:
                continue
            out[key] = [MASK, MASK] if key in excluded else [shown(key, before), shown(key, after)]
    return out


@event.listens_for(Session, "after_flush")
def _write_audit(session: Session, flush_context) -> None:
    rows = []
    actor = current_actor.get()
    now = utcnow()
    for action, objs in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objs:
            if not isinstance(obj, Audited):
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, action)
            if action == "update" and not changes:
                continue
            rows.append({
                "at": now,
                "org_id": getattr(obj, "org_id", None) if obj.__audit_type__ != "organization" else obj.id,
                "actor_user_id": getattr(actor, "user_id", None),
                "actor_label": getattr(actor, "label", None) or getattr(actor, "username", None),
                "object_type": obj.__audit_type__ or obj.__tablename__,
                "object_id": obj.id,
                "action": action,
                "changes": changes,
                "request_id": request_id.get(),
            })
    if rows:  # a Core insert: the ORM's bulk path costs more than the statement, on every flush that audits
        session.connection().execute(insert(AuditEntry.__table__), rows)


def record_export(actor, object_type: str, rows: int, filters: dict) -> None:
    """An export of a list (who took how many rows of what, with which filters), in the caller's
    transaction: ``action='export'``, ``object_id`` 0, the count and filters in ``changes``."""
    db.session.execute(insert(AuditEntry).values(
        at=utcnow(), org_id=actor.org_id, actor_user_id=actor.user_id, actor_label=actor.label or actor.username,
        object_type=object_type, object_id=0, action="export",
        changes={"rows": rows, "filters": {k: _plain(v) for k, v in filters.items()}},
        request_id=request_id.get()))


def history(actor, object_type: str, object_id: int, limit: int = 200) -> list[AuditEntry]:
    """The audit trail of one record, newest first. Needs the ``audit:view`` permission."""
    actor.require("audit", "view")
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_type == object_type, AuditEntry.object_id == object_id,
               (AuditEntry.org_id == actor.org_id) | AuditEntry.org_id.is_(None))
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def entry_dict(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "at": entry.at.isoformat() + "Z",
        "actor_user_id": entry.actor_user_id,
        "actor": entry.actor_label,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "action": entry.action,
        "changes": entry.changes,
        "request_id": entry.request_id,
    }
