"""Marketing materials (素材), campaigns (营销方案) and marketing events (市场活动), and the
share-path records: one node per viewer (their share token), visits, forwards, and the
attribution rows the rankings are computed from."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import media
from crm_core.db import db
from crm_core.mixins import Audited, OwnedRecord, TimestampMixin

MATERIAL_STATUSES = ("draft", "published", "archived")
CAMPAIGN_KINDS = ("campaign", "exhibition", "talk", "promotion")


class Material(Audited, OwnedRecord, TimestampMixin, db.Model):
    __audit_type__ = "material"
    __scope_object__ = "material"
    __table_args__ = (UniqueConstraint("code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))  # the public page is /m/{code}
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(String(500))
    body_html: Mapped[str] = mapped_column(Text, default="")  # sanitised on save (nh3)
    cover_media_id: Mapped[int | None] = mapped_column(ForeignKey("media_file.id"))
    attachment_ids: Mapped[list] = mapped_column(JSON, default=list)
    category: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(default=1)
    published_at: Mapped[datetime | None]


class MaterialVersion(db.Model):
    __table_args__ = (UniqueConstraint("material_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id", ondelete="CASCADE"))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(String(500))
    body_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))


class Campaign(Audited, OwnedRecord, TimestampMixin, db.Model):
    """A campaign (营销方案) or a marketing event (市场活动: exhibition, talk, promotion)."""

    __audit_type__ = "campaign"
    __scope_object__ = "campaign"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="campaign")
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segment.id"))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    goal: Mapped[str | None] = mapped_column(String(500))
    target_leads: Mapped[int | None]
    budget: Mapped[float | None] = mapped_column(Numeric(14, 2))
    actual_cost: Mapped[float | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft / active / ended
    material_ids: Mapped[list] = mapped_column(JSON, default=list)
    pushed_at: Mapped[datetime | None]


class CampaignRecipient(db.Model):
    """One follower a campaign was pushed to, with the outbox message that carried it."""

    __table_args__ = (UniqueConstraint("campaign_id", "openid"), Index("ix_campaign_recipient_openid", "openid", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    material_id: Mapped[int | None] = mapped_column(ForeignKey("material.id"))
    openid: Mapped[str] = mapped_column(String(64))
    outbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))
    created_at: Mapped[datetime]


class ShareNode(db.Model):
    """A viewer of a material (in a campaign or not) and their share token. ``parent_id`` is
    the node whose link brought them; set once, when the node is created, to an *older* node —
    so the graph is a tree and no token can make a cycle. ``path`` lists ancestor ids."""

    __table_args__ = (UniqueConstraint("token"), UniqueConstraint("material_id", "campaign_key", "viewer_key"),
                      Index("ix_share_node_tree", "material_id", "campaign_key", "id"), Index("ix_share_node_parent", "parent_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(24))
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    campaign_key: Mapped[int] = mapped_column(default=0)  # campaign id or 0 (unique constraints ignore NULLs)
    viewer_key: Mapped[str] = mapped_column(String(80))  # "o:<openid>", "e:<employee id>" or "c:<cookie id>"
    openid: Mapped[str | None] = mapped_column(String(64))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("share_node.id"))
    depth: Mapped[int] = mapped_column(default=0)
    path: Mapped[str] = mapped_column(String(400), default="/")
    counted: Mapped[bool] = mapped_column(default=False)  # a human (not a bot) confirmed by the page's script
    created_at: Mapped[datetime]


class Visit(db.Model):
    __table_args__ = (UniqueConstraint("key"), Index("ix_visit_material_time", "material_id", "created_at"), Index("ix_visit_campaign_time", "campaign_id", "created_at"),
                      Index("ix_visit_node", "node_id", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(32))  # set when the view went through the Redis queue
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("share_node.id"))
    via_node_id: Mapped[int | None] = mapped_column(ForeignKey("share_node.id"))  # the token in the link, if valid
    source: Mapped[str] = mapped_column(String(8), default="link")  # link / qr / direct
    is_bot: Mapped[bool] = mapped_column(default=False)
    js_confirmed: Mapped[bool] = mapped_column(default=False)
    counted: Mapped[bool] = mapped_column(default=False)  # a human's first view within the hour
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]


class Forward(db.Model):
    """A share the page's JS-SDK callback reported (朋友圈 or a chat)."""

    __table_args__ = (Index("ix_forward_node", "node_id"), Index("ix_forward_material", "material_id", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("share_node.id"))
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    channel: Mapped[str] = mapped_column(String(12))  # timeline / appmessage
    created_at: Mapped[datetime]


class Attribution(db.Model):
    """Outcome credited to a sharer (every ancestor of the viewer): ``reach`` (a new human
    viewer downstream), ``lead`` (an intent), ``opportunity`` (a won deal from such a lead).
    Rankings are sums of these — a share by itself earns nothing."""

    __table_args__ = (Index("ix_attribution_campaign", "campaign_key", "kind", "at"), Index("ix_attribution_sharer", "sharer_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    sharer_key: Mapped[str] = mapped_column(String(80))  # the ancestor's viewer_key
    node_id: Mapped[int] = mapped_column(ForeignKey("share_node.id"))
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"))
    campaign_key: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(12))
    ref_id: Mapped[int | None]  # the lead / opportunity / node it is for
    at: Mapped[datetime]


def _holds_photo(actor, row) -> bool:
    """Material covers are the organisation's marketing pictures: every employee of it may see them."""
    return db.session.scalar(select(Material.id).where(Material.org_id == actor.org_id,
                                                       Material.cover_media_id == row.id).limit(1)) is not None


media.register_holder(_holds_photo)
