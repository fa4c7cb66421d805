"""Idempotency keys: the same request sent twice has one effect and gets the first answer again.

A caller names a logical action with a key (the ``Idempotency-Key`` header of a JSON call, the
one-time ``_once`` token of a form, a page's key for a tap). The first request with a key claims
it (a row unique on scope and key, committed before the work starts); its answer is stored when
it is done. A second request with the same key and the same body gets the stored answer; with a
different body, a conflict; while the first is still working, it waits for it (a double tap lands
within milliseconds), up to a few seconds. A claim whose request died is taken over after a lease.
Answers that were server errors are not kept, so the action can be retried.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, String, Text, UniqueConstraint, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import db

LEASE = timedelta(seconds=60)  # a claim older than this whose request never finished is abandoned
KEEP = timedelta(hours=24)  # how long answers are replayed


class IdempotencyKey(db.Model):
    __table_args__ = (UniqueConstraint("scope", "key"), Index("ix_idempotency_key_created", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(80))  # who: a token digest, a console user, a WeChat user
    key: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))  # method, path and body
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending / done
    response_status: Mapped[int | None]
    response_type: Mapped[str | None] = mapped_column(String(100))
    response_location: Mapped[str | None] = mapped_column(String(1000))
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


@dataclass
class Claim:
    """What to do with a request: ``new`` (do the work), ``replay`` (answer ``row``'s response),
    ``mismatch`` (same key, other body), ``busy`` (the first is still working)."""

    outcome: str
    row_id: int
    row: IdempotencyKey | None = None


def claim(scope: str, key: str, fingerprint: str, *, wait: float = 5.0) -> Claim:
    """Claim ``key`` for this request; commits the claim (the session must hold nothing else)."""
    try:  # a plain INSERT (no unit of work): it runs before every write over HTTP
        row_id = db.session.execute(insert(IdempotencyKey).values(
            scope=scope, key=key, fingerprint=fingerprint, status="pending", created_at=utcnow())).inserted_primary_key[0]
        db.session.commit()
        return Claim("new", row_id)
    except IntegrityError:
        db.session.rollback()
    deadline = time.monotonic() + wait
    while True:
        found = db.session.scalars(select(IdempotencyKey).where(IdempotencyKey.scope == scope,
                                                                IdempotencyKey.key == key)).first()
        if found is None:  # purged in between: claim afresh
            return claim(scope, key, fingerprint, wait=max(0.0, deadline - time.monotonic()))
        if found.fingerprint != fingerprint:
            return Claim("mismatch", found.id, found)
        if found.status == "done":
            return Claim("replay", found.id, found)
        if utcnow() - found.created_at > LEASE:  # its request died: take it over, once
            taken = db.session.execute(update(IdempotencyKey).where(
                IdempotencyKey.id == found.id, IdempotencyKey.status == "pending",
                IdempotencyKey.created_at == found.created_at).values(created_at=utcnow()))
            db.session.commit()
            if taken.rowcount == 1:
                return Claim("new", found.id)
        if time.monotonic() >= deadline:
            return Claim("busy", found.id, found)
        db.session.rollback()  # end the read so the next one sees the other request's commit
        time.sleep(0.05)


def complete(row_id: int, status: int, content_type: str | None, location: str | None, body: str | None) -> None:
    """Store the answer of a claimed request (server errors release the key instead); commits."""
    record(row_id, status, content_type, location, body)
    db.session.commit()


def record(row_id: int, status: int, content_type: str | None, location: str | None, body: str | None) -> None:
    """:func:`complete` without the commit: the answer joins the transaction of the request's own
    work, so the effect and its stored answer commit together or not at all."""
    if status >= 500:  # only a claim still pending is released: an answer stored with the work stays
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id, IdempotencyKey.status == "pending"))
    else:
        db.session.execute(update(IdempotencyKey).where(IdempotencyKey.id == row_id).values(
            status="done", response_status=status, response_type=(content_type or "")[:100] or None,
            response_location=(location or "")[:1000] or None, response_body=body, completed_at=utcnow()))


@jobs.periodic(every=3600)
def purge_idempotency_keys() -> int:
    """Forget answers older than a day (a retry after that is a new action)."""
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEEP))
    db.session.commit()
    return result.rowcount or 0
