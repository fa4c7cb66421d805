"""Tables behind the embedded job runner and the periodic-job lock."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db


class ScheduledJob(db.Model):
    """A delayed job in embedded mode (with Redis, RQ's scheduler keeps them)."""

    __table_args__ = (Index("ix_scheduled_job_due", "status", "run_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list] = mapped_column(JSON, default=list)
    run_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled/running/done/failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class PeriodicRun(db.Model):
    """One row per periodic job and time slot: the unique key makes a tick run once
    however many processes tick at the same time."""

    __table_args__ = (UniqueConstraint("name", "slot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slot: Mapped[int]
    claimed_at: Mapped[datetime]
