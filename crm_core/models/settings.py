"""Per-organisation settings: collision rules, value indicators and levels, key/value options."""
from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.models.base import Audited, TimestampMixin


class OrgSetting(Audited, TimestampMixin, db.Model):
    __audit_type__ = "org_setting"
    __table_args__ = (UniqueConstraint("org_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict] = mapped_column(JSON, default=dict)


class CollisionRule(Audited, TimestampMixin, db.Model):
    """撞单参数: which fields of ``object_type`` are matched how, against which object
    types, what a hit shows, and whether it warns or blocks the save."""

    __audit_type__ = "collision_rule"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    object_type: Mapped[str] = mapped_column(String(16))  # lead / customer / opportunity
    name: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list] = mapped_column(JSON, default=list)  # [{field, method, threshold?}]
    match: Mapped[str] = mapped_column(String(8), default="any")  # any / all
    targets: Mapped[list] = mapped_column(JSON, default=list)  # object types checked against
    result_fields: Mapped[list] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(8), default="warn")  # warn / block
    active: Mapped[bool] = mapped_column(default=True)


class CollisionKey(db.Model):
    """Normalised match keys of every lead, customer (with its contacts' phones) and
    opportunity: the index the collision check looks up instead of scanning."""

    __table_args__ = (
        Index("ix_collision_key_lookup", "org_id", "dimension", "method", "value", "object_type"),
        Index("ix_collision_key_record", "object_type", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(index=False)
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    dimension: Mapped[str] = mapped_column(String(16))  # phone / company / person / email / address / opportunity
    method: Mapped[str] = mapped_column(String(16))  # exact / phone / company
    value: Mapped[str] = mapped_column(String(300))


class CollisionGram(db.Model):
    """Character bigrams of normalised company names, for the similarity match."""

    __table_args__ = (
        Index("ix_collision_gram_lookup", "org_id", "gram", "object_type", "record_id"),
        Index("ix_collision_gram_record", "object_type", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int]
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    dimension: Mapped[str] = mapped_column(String(16))
    gram: Mapped[str] = mapped_column(String(8))


class CollisionClaim(db.Model):
    """A blocking rule's key, claimed by the record that holds it. The unique constraint
    makes two simultaneous saves of the same phone produce one record and one hit."""

    __table_args__ = (UniqueConstraint("org_id", "claim"), Index("ix_collision_claim_record", "object_type", "record_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int]
    claim: Mapped[str] = mapped_column(String(400))
    object_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]


class ValueIndicator(Audited, TimestampMixin, db.Model):
    """客户价值指标: a measure of a customer with a weight and the value that counts as full marks."""

    __audit_type__ = "value_indicator"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # one of services.value.INDICATOR_KINDS
    name: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(default=1.0)
    full_marks_at: Mapped[float] = mapped_column(default=1.0)


class ValueLevel(Audited, TimestampMixin, db.Model):
    __audit_type__ = "value_level"
    __table_args__ = (UniqueConstraint("org_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(32))
    min_score: Mapped[float]
