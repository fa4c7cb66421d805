"""Field check-ins (移动签到)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin

CHECKIN_KINDS = ("in", "out")
CHECKIN_STATUSES = ("normal", "out_of_range", "rejected")
SPOOF_FLAGS = ("spoof_mock", "spoof_repeat", "spoof_accuracy")


class CheckIn(Audited, OwnedRecord, TimestampMixin, db.Model):
    """``owner_id`` is the employee who checked in. ``client_time`` is when it happened on the
    phone (offline check-ins arrive late); ``created_at`` is when the server received it.
    ``local_date`` is the organisation's local day of ``client_time`` (what the reports group by)."""

    __audit_type__ = "checkin"
    __scope_object__ = "checkin"
    __table_args__ = (
        Index("ix_checkin_owner_time", "owner_id", "client_time"),
        Index("ix_checkin_org_date_owner", "org_id", "local_date", "owner_id"),
        Index("ix_checkin_dup", "owner_id", "kind", "customer_id", "client_time"),
        Index("ix_checkin_flagged", "org_id", "flagged", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(4))
    lat: Mapped[float]  # WGS-84
    lng: Mapped[float]
    coord_system: Mapped[str] = mapped_column(String(8))  # the system it arrived in
    raw_lat: Mapped[float]
    raw_lng: Mapped[float]
    accuracy_m: Mapped[float | None]
    location_source: Mapped[str] = mapped_column(String(16), default="device")  # device / wechat_event
    client_time: Mapped[datetime]
    local_date: Mapped[date]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"), index=True)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("media_file.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    distance_m: Mapped[float | None]  # to the customer's site
    radius_m: Mapped[int | None]  # the radius it was checked against
    travel_m: Mapped[float] = mapped_column(default=0.0)  # from the previous check-in of the same day
    status: Mapped[str] = mapped_column(String(16), default="normal")
    flags: Mapped[list] = mapped_column(JSON, default=list)
    flag_reviews: Mapped[dict] = mapped_column(JSON, default=dict)  # flag -> {decision, by, at, note}
    flagged: Mapped[bool] = mapped_column(default=False)  # some flag not dismissed yet
    late: Mapped[bool] = mapped_column(default=False)
    mock_location: Mapped[bool] = mapped_column(default=False)
    pair_id: Mapped[int | None] = mapped_column(ForeignKey("check_in.id"))  # in <-> out of one visit
    duration_s: Mapped[int | None]  # on the check-out: the visit's length
    address: Mapped[str | None] = mapped_column(String(300))  # reverse-geocoded in a job
