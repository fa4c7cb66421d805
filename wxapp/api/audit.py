"""The audit trail of one record."""
from __future__ import annotations

from flask import g
from pydantic import Field

from crm_core import audit
from wxapp.api import bp
from wxapp.openapi import Model, api, page_of


class AuditQuery(Model):
    object_type: str = Field(min_length=1, max_length=32)
    object_id: int
    limit: int = Field(default=200, ge=1, le=1000)


class AuditOut(Model):
    id: int
    at: str
    actor_user_id: int | None
    actor: str | None
    object_type: str
    object_id: int
    action: str
    changes: dict
    request_id: str | None


@api.operation(bp, "/audit", "GET", summary="Who changed a record, when, before and after", tags=("audit",),
               query=AuditQuery, response=page_of(AuditOut))
def audit_trail(query: AuditQuery):
    rows = audit.history(g.actor, query.object_type, query.object_id, query.limit)
    return {"items": [audit.entry_dict(e) for e in rows], "total": len(rows)}
