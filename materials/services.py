"""Materials, campaigns, share-path recording, intents → leads, rankings and effect figures.

Share-path rules (传播路径):

- every viewer of a material page gets one node — their own share token — per material and
  campaign; the node's parent is the node whose token was in the link that first brought them,
  fixed at creation and always an older node, so tokens can never make a cycle; a forged or
  unknown token just means "no parent";
- visits are recorded by the server when the page is served; the page's script then confirms
  it with a signed visit id. Figures count a visit only when it is not from a bot user agent,
  was confirmed by the script, and is the viewer's first within the hour;
- a new human viewer credits ``reach`` to every ancestor; an intent credits ``lead``; a won
  opportunity from such a lead credits ``opportunity``. Rankings sum these outcomes — the
  number of times someone pressed "share" buys nothing.
"""
from __future__ import annotations

import re
import secrets
from collections import defaultdict
from datetime import date, datetime, timedelta

import nh3
from sqlalchemy import case, func, or_, select

from crm_core import outbox
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers.models import Segment
from crm_core.db import db, paginate
from crm_core.errors import Conflict, NotFound, ValidationFailed
from crm_core.org.models import Employee
from crm_core.org.organization import employee_names
from crm_core.org.permissions import Actor, get_visible, scoped_select
from crm_core.org.settings import org_timezone
from crm_core.sales.models import Lead, Opportunity
from crm_core.wechat.followers import display_names, in_cs_window
from crm_core.wechat.models import Follower
from materials.models import (
    CAMPAIGN_KINDS,
    Attribution,
    Campaign,
    CampaignRecipient,
    Forward,
    Material,
    MaterialVersion,
    ShareNode,
    Visit,
)

BOT_UA = re.compile(r"bot|spider|crawl|slurp|curl|wget|python-requests|httpclient|headless|facebookexternalhit|"
                    r"preview|monitor|scan|java/|go-http|okhttp|axios|node-fetch", re.I)
REPEAT_WINDOW = timedelta(hours=1)
ALLOWED_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a", "img",
                "span", "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td", "hr"}
ALLOWED_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "span": {"style"}, "td": {"colspan"},
                 "th": {"colspan"}}


def sanitize(html: str | None) -> str:
    """A rich-text body through nh3 (ammonia): scripts, event handlers, javascript: URLs gone."""
    return nh3.clean(html or "", tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS, url_schemes={"http", "https", "mailto", "tel"},
                     link_rel="noopener noreferrer", filter_style_properties={"color", "font-weight", "text-align"})


# --- materials -----------------------------------------------------------------------------------
def _code() -> str:
    return secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")[:8]


def _version(m: Material, actor: Actor) -> None:
    db.session.add(MaterialVersion(material_id=m.id, version=m.version, title=m.title, summary=m.summary,
                                   body_html=m.body_html, status=m.status, created_at=utcnow(),
                                   created_by_id=actor.employee_id))


@service
def create_material(actor: Actor, data: dict) -> Material:
    actor.require("material", "create")
    title = (data.get("title") or "").strip()
    if not title:
        raise ValidationFailed("素材标题不能为空。", fields={"title": "required"})
    owner = db.session.get(Employee, actor.employee_id) if actor.employee_id else None
    m = Material(org_id=actor.org_id, owner_id=actor.employee_id, department_id=owner.department_id if owner else None,
                 code=_code(), title=title[:200], summary=(data.get("summary") or "").strip()[:500] or None,
                 body_html=sanitize(data.get("body_html")), cover_media_id=_media(actor, data.get("cover_media_id")),
                 attachment_ids=[_media(actor, i) for i in data.get("attachment_ids") or []],
                 category=(data.get("category") or "").strip()[:64] or None, status="draft", version=1)
    db.session.add(m)
    db.session.flush()
    _version(m, actor)
    if data.get("publish"):
        _set_status(m, "published")
    db.session.flush()
    return m


def _media(actor: Actor, media_id):
    if not media_id:
        return None
    from crm_core.media import MediaFile

    row = db.session.get(MediaFile, media_id)
    if row is None or row.org_id != actor.org_id:
        raise NotFound("图片不存在。", fields={"media_id": "unknown"})
    return row.id


def _set_status(m: Material, status: str) -> None:
    if status not in ("draft", "published", "archived"):
        raise ValidationFailed("状态只能是 draft、published 或 archived。", fields={"status": "invalid"})
    m.status = status
    if status == "published" and m.published_at is None:
        m.published_at = utcnow()


@service
def update_material(actor: Actor, material_id: int, data: dict) -> Material:
    """Edits make a new version; the old ones are kept."""
    m = get_visible(actor, Material, material_id, action="edit")
    changed = False
    for key in ("title", "summary", "category"):
        if data.get(key) is not None:
            value = data[key].strip()[:200 if key == "title" else 64 if key == "category" else 500] or None
            if key == "title" and not value:
                raise ValidationFailed("素材标题不能为空。", fields={"title": "required"})
            if value != getattr(m, key):  # a new version only when something changed
                setattr(m, key, value)
                changed = True
    if data.get("body_html") is not None:
        body = sanitize(data["body_html"])
        if body != m.body_html:
            m.body_html, changed = body, True
    if "cover_media_id" in data and data["cover_media_id"] is not None:
        m.cover_media_id, changed = _media(actor, data["cover_media_id"]), True
    if data.get("status"):
        _set_status(m, data["status"])
        changed = True
    if changed:
        m.version += 1
        db.session.flush()
        _version(m, actor)
    db.session.flush()
    return m


def material_by_code(code: str) -> Material:
    m = db.session.scalars(select(Material).where(Material.code == code)).first()
    if m is None or m.status == "archived":
        raise NotFound("内容不存在或已下架。")
    return m


def material_dict(m: Material, base_url: str = "") -> dict:
    return {"id": m.id, "code": m.code, "title": m.title, "summary": m.summary, "body_html": m.body_html,
            "category": m.category, "status": m.status, "version": m.version, "cover_media_id": m.cover_media_id,
            "attachment_ids": m.attachment_ids, "url": f"{base_url}/m/{m.code}",
            "published_at": m.published_at.isoformat() + "Z" if m.published_at else None,
            "qr_png": f"{base_url}/materials/{m.id}/qr.png", "qr_svg": f"{base_url}/materials/{m.id}/qr.svg",
            "poster": f"{base_url}/materials/{m.id}/poster.png"}


def version_of(actor: Actor, material_id: int, version: int) -> MaterialVersion:
    get_visible(actor, Material, material_id)
    v = db.session.scalars(select(MaterialVersion).where(MaterialVersion.material_id == material_id,
                                                         MaterialVersion.version == version)).first()
    if v is None:
        raise NotFound("没有这个版本。")
    return v


@service
def restore_version(actor: Actor, material_id: int, version: int) -> Material:
    """恢复: an earlier version's title, summary and body become the material's again — as a new version, so the
    history keeps every step."""
    v = version_of(actor, material_id, version)
    return update_material(actor, material_id, {"title": v.title, "summary": v.summary or "", "body_html": v.body_html})


def versions(actor: Actor, material_id: int) -> list[dict]:
    get_visible(actor, Material, material_id)
    rows = db.session.scalars(select(MaterialVersion).where(MaterialVersion.material_id == material_id)
                              .order_by(MaterialVersion.version.desc())).all()
    return [{"version": v.version, "title": v.title, "status": v.status, "created_at": v.created_at.isoformat() + "Z"}
            for v in rows]


def list_campaigns(actor: Actor, *, page: int = 1, per_page: int = 20):
    """Campaigns and events within the data scope, newest first."""
    return paginate(scoped_select(actor, Campaign), Campaign.id.desc(), page=page, per_page=per_page)


def list_materials(actor: Actor, *, status: str | None = None, q: str | None = None, page: int = 1, per_page: int = 20):
    stmt = scoped_select(actor, Material)
    if status:
        stmt = stmt.where(Material.status == status)
    if q:
        stmt = stmt.where(Material.title.contains(q.strip()))
    return paginate(stmt, Material.id.desc(), page=page, per_page=per_page)


# --- campaigns ------------------------------------------------------------------------------------
def _campaign_checks(actor: Actor, data: dict) -> tuple[str, list[int]]:
    """The name, kind, segment, materials and dates of a campaign being created or changed; (name, material ids)."""
    name = (data.get("name") or "").strip()
    if not name:
        raise ValidationFailed("方案名称不能为空。", fields={"name": "required"})
    if data.get("kind", "campaign") not in CAMPAIGN_KINDS:
        raise ValidationFailed("类型不正确。", fields={"kind": f"one of {', '.join(CAMPAIGN_KINDS)}"})
    if data.get("segment_id"):
        seg = db.session.get(Segment, data["segment_id"])
        if seg is None or seg.org_id != actor.org_id:
            raise NotFound("客户细分不存在。", fields={"segment_id": "unknown"})
    mids = list(dict.fromkeys(data.get("material_ids") or []))
    for mid in mids:
        get_visible(actor, Material, mid)
    if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
        raise ValidationFailed("结束日期不能早于开始日期。", fields={"ends_on": "before starts_on"})
    return name, mids


@service
def update_campaign(actor: Actor, campaign_id: int, data: dict) -> Campaign:
    """Change a campaign: name, kind (方案 or an event's channel), segment, materials, dates, goal, target, budget and
    actual cost — checked as at creation. Pushes already made stay as they were."""
    c = get_visible(actor, Campaign, campaign_id, action="edit")
    merged = {**campaign_dict(c), **{k: v for k, v in data.items()}}
    merged["starts_on"] = data.get("starts_on", c.starts_on)
    merged["ends_on"] = data.get("ends_on", c.ends_on)
    name, mids = _campaign_checks(actor, merged)
    c.name, c.kind, c.segment_id, c.material_ids = name[:200], merged.get("kind") or "campaign", merged.get("segment_id"), mids
    c.starts_on, c.ends_on = merged["starts_on"], merged["ends_on"]
    for key in ("goal", "target_leads", "budget", "actual_cost"):
        if key in data:
            setattr(c, key, data[key])
    db.session.flush()
    return c


@service
def create_campaign(actor: Actor, data: dict) -> Campaign:
    actor.require("campaign", "create")
    name, mids = _campaign_checks(actor, data)
    owner_id = data.get("owner_id") or actor.employee_id
    owner = db.session.get(Employee, owner_id) if owner_id else None
    if owner_id and (owner is None or owner.org_id != actor.org_id):
        raise ValidationFailed("负责人不存在。", fields={"owner_id": "unknown"})
    c = Campaign(org_id=actor.org_id, owner_id=owner_id, department_id=owner.department_id if owner else None, name=name[:200],
                 kind=data.get("kind") or "campaign", segment_id=data.get("segment_id"), starts_on=data.get("starts_on"),
                 ends_on=data.get("ends_on"), goal=data.get("goal"), target_leads=data.get("target_leads"),
                 budget=data.get("budget"), actual_cost=data.get("actual_cost"), status=data.get("status") or "active",
                 material_ids=mids)
    db.session.add(c)
    db.session.flush()
    return c


def campaign_dict(c: Campaign, base_url: str = "") -> dict:
    return {"id": c.id, "name": c.name, "kind": c.kind, "segment_id": c.segment_id, "material_ids": c.material_ids,
            "starts_on": c.starts_on.isoformat() if c.starts_on else None, "ends_on": c.ends_on.isoformat() if c.ends_on else None,
            "goal": c.goal, "target_leads": c.target_leads, "budget": float(c.budget) if c.budget is not None else None,
            "actual_cost": float(c.actual_cost) if c.actual_cost is not None else None, "status": c.status,
            "owner_id": c.owner_id, "pushed_at": c.pushed_at.isoformat() + "Z" if c.pushed_at else None,
            "links": [f"{base_url}/m/{m.code}?c={c.id}" for m in db.session.scalars(
                select(Material).where(Material.id.in_(c.material_ids or [0])))]}


@service
def push_campaign(actor: Actor, campaign_id: int, base_url: str, per_minute: int = 600) -> dict:
    """Send the campaign to the followers bound to its target segment's contacts, through the
    outbox (``wechat_notice``: customer-service message inside the 48-hour window, template
    outside it), at most ``per_minute`` messages a minute, one per follower ever."""
    c = get_visible(actor, Campaign, campaign_id, action="edit")
    if not c.segment_id:
        raise ValidationFailed("请先为方案选择目标客户细分。", fields={"segment_id": "required"})
    if not c.material_ids:
        raise ValidationFailed("请先为方案选择素材。", fields={"material_ids": "required"})
    material = db.session.get(Material, c.material_ids[0])
    if material.status != "published":
        raise Conflict("素材尚未发布，不能推送。", code="material_not_published")
    from crm_core.wechat.mass import segment_members

    seg = db.session.get(Segment, c.segment_id)
    members, link = segment_members(Actor.system(actor.org_id), seg)
    member_ids = set(db.session.scalars(members))
    followers = db.session.execute(select(link, Follower).where(link.in_(members))).all()
    never = {m for m, f in followers if not f.subscribed and not f.subscribe_count}
    bound = {m for m, _ in followers}
    following = {m for m, f in followers if f.subscribed}
    openid_set = {f.openid for _, f in followers if f.subscribed}
    outside_window = {f.openid for _, f in followers if f.subscribed and not in_cs_window(f)}
    already = set(db.session.scalars(select(CampaignRecipient.openid).where(CampaignRecipient.campaign_id == c.id)))
    queued = 0
    now = utcnow()
    fresh = sorted(openid_set - already)
    cover = f"{base_url}/materials/{material.id}/{'cover.jpg' if material.cover_media_id else 'qr.png'}"
    for openid in fresh:
        url = f"{base_url}/m/{material.code}?c={c.id}"
        msg = outbox.queue_message("wechat_notice", openid, {
            "title": c.name, "text": f"{material.title}\n{material.summary or ''}".strip(), "url": url, "campaign_id": c.id,
            # inside the 48-hour window a news card; outside it the template notice with the same link
            "article": {"title": material.title[:64], "description": (material.summary or "")[:120], "url": url,
                        "picurl": cover}},
            org_id=actor.org_id, dedupe_key=f"campaign:{c.id}:{openid}",
            delay=queued * 60.0 / per_minute)  # rate limit: spread the sends
        db.session.add(CampaignRecipient(campaign_id=c.id, material_id=material.id, openid=openid,
                                         outbox_message_id=msg.id, created_at=now))
        queued += 1
    c.pushed_at = now
    db.session.flush()
    # a push explains itself: who got it, who was left out and why (issue #14 item 10)
    return {"queued": queued, "skipped_already_sent": len(already & openid_set), "members": len(member_ids),
            "not_bound": len(member_ids - bound), "not_following": len(bound - following),
            "never_followed": len((never & bound) - following),
            "as_template": len(outside_window & set(fresh))}


def recipients(actor: Actor, campaign_id: int, page: int = 1, per_page: int = 50) -> tuple[list[dict], int]:
    from crm_core.outbox import OutboxMessage

    get_visible(actor, Campaign, campaign_id)
    stmt = select(CampaignRecipient, OutboxMessage.status, OutboxMessage.channel, OutboxMessage.last_error).join(
        OutboxMessage, OutboxMessage.id == CampaignRecipient.outbox_message_id, isouter=True).where(
        CampaignRecipient.campaign_id == campaign_id)
    total = db.session.scalar(select(func.count(CampaignRecipient.id)).where(CampaignRecipient.campaign_id == campaign_id))
    rows = db.session.execute(stmt.order_by(CampaignRecipient.id).limit(per_page).offset((page - 1) * per_page)).all()
    return [{"openid": r.openid, "status": status, "error": err, "queued_at": r.created_at.isoformat() + "Z"}
            for r, status, _, err in rows], total


def follower_campaigns(openid: str, q: str | None = None, page: int = 1, per_page: int = 20):
    """What was sent to this WeChat user, newest first, however long ago they last interacted."""
    stmt = select(CampaignRecipient, Campaign, Material).join(Campaign, Campaign.id == CampaignRecipient.campaign_id) \
        .join(Material, Material.id == CampaignRecipient.material_id).where(CampaignRecipient.openid == openid)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Campaign.name.like(like), Material.title.like(like)))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.execute(stmt.order_by(CampaignRecipient.id.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return [{"campaign": c.name, "title": m.title, "summary": m.summary, "url": f"/m/{m.code}?c={c.id}",
             "sent_at": r.created_at.isoformat() + "Z"} for r, c, m in rows], total


# --- visits and shares ----------------------------------------------------------------------------
def is_bot(user_agent: str | None) -> bool:
    return not user_agent or bool(BOT_UA.search(user_agent))


_campaign_cache: dict[int, tuple[float, int | None, tuple]] = {}


def _campaign_materials(campaign_id: int) -> tuple[int | None, tuple]:
    """(org id, material ids) of a campaign, cached for 30 s per process: page views are hot."""
    import time as _time

    hit = _campaign_cache.get(campaign_id)
    if hit and _time.monotonic() - hit[0] < 30:
        return hit[1], hit[2]
    row = db.session.execute(select(Campaign.org_id, Campaign.material_ids).where(Campaign.id == campaign_id)).first()
    value = (row[0], tuple(row[1] or ())) if row else (None, ())
    if len(_campaign_cache) > 10_000:
        _campaign_cache.clear()
    _campaign_cache[campaign_id] = (_time.monotonic(), *value)
    return value


def _ensure_node(material_id: int, campaign_id: int | None, viewer_key: str, *, openid: str | None = None,
                 employee_id: int | None = None, via=None, known_new: bool = False):
    """The viewer's node (``id``, ``token``), created on their first view under ``via`` (a row
    with id, depth and path, already checked to be of this material and campaign)."""
    from crm_core.db import insert_for
    from materials.visitqueue import node_token

    key = campaign_id or 0
    table = ShareNode.__table__
    find = select(table.c.id, table.c.token).where(table.c.material_id == material_id, table.c.campaign_key == key,
                                                   table.c.viewer_key == viewer_key)
    node = None if known_new else db.session.execute(find).first()
    if node is None:
        values = {"token": node_token(material_id, key, viewer_key), "material_id": material_id, "campaign_id": campaign_id,
                  "campaign_key": key, "viewer_key": viewer_key, "openid": openid, "employee_id": employee_id,
                  "parent_id": via.id if via else None, "depth": via.depth + 1 if via else 0,
                  "path": f"{via.path}{via.id}/" if via else "/", "counted": False, "created_at": utcnow()}
        # the viewer's first view: a new node; two first views racing keep the winner's node
        node = db.session.execute(insert_for(table).values(values).on_conflict_do_nothing(
            index_elements=["material_id", "campaign_key", "viewer_key"]).returning(table.c.id, table.c.token)).first() \
            or db.session.execute(find).first()
    return node


def record_visit(material: Material, *, campaign_id: int | None, viewer_key: str, openid: str | None = None,
                 employee_id: int | None = None, via_token: str | None = None, source: str = "link",
                 user_agent: str | None = None, new_viewer: bool = False) -> tuple[int, dict]:
    """A page view, recorded by the server: returns the visit id and the viewer's node as
    ``{id, token, campaign_id}``. Core statements only — this runs on every page view."""
    if campaign_id is not None:
        org_id, mids = _campaign_materials(campaign_id)
        if org_id != material.org_id or material.id not in mids:
            campaign_id = None  # a wrong campaign id in the link counts for the material alone
    key = campaign_id or 0
    via = None
    if via_token and len(via_token) <= 24:
        via = db.session.execute(select(ShareNode.id, ShareNode.material_id, ShareNode.campaign_key, ShareNode.depth,
                                        ShareNode.path).where(ShareNode.token == via_token)).first()
        if via is not None and (via.material_id != material.id or via.campaign_key != key):
            via = None
    node = _ensure_node(material.id, campaign_id, viewer_key, openid=openid, employee_id=employee_id, via=via,
                        known_new=new_viewer)
    vt = Visit.__table__
    visit_id = db.session.execute(vt.insert().values(
        material_id=material.id, campaign_id=campaign_id, node_id=node.id,
        via_node_id=via.id if via is not None and via.id != node.id else None,
        source=source if source in ("link", "qr", "direct") else "link", is_bot=is_bot(user_agent), js_confirmed=False,
        counted=False, user_agent=(user_agent or "")[:300], created_at=utcnow()).returning(vt.c.id)).scalar_one()
    return visit_id, {"id": node.id, "token": node.token, "campaign_id": campaign_id}


def confirm_visit(visit_id: int) -> bool:
    """The page's script ran: a browser, not a fetcher. Counts the view if it is the viewer's
    first within the hour, and the viewer's first counted view credits their ancestors."""
    v = db.session.get(Visit, visit_id)
    if v is None or v.js_confirmed:
        return False
    v.js_confirmed = True
    if v.is_bot:
        db.session.flush()
        return False
    recent = db.session.scalar(select(Visit.id).where(Visit.node_id == v.node_id, Visit.counted.is_(True),
                                                      Visit.created_at >= v.created_at - REPEAT_WINDOW, Visit.id != v.id).limit(1))
    v.counted = recent is None
    node = db.session.get(ShareNode, v.node_id)
    if v.counted and not node.counted:
        node.counted = True
        _credit(node, "reach", node.id, v.created_at)
    db.session.flush()
    return v.counted


def ancestors(node: ShareNode) -> list[ShareNode]:
    ids = [int(x) for x in node.path.strip("/").split("/") if x]
    if not ids:
        return []
    by_id = {n.id: n for n in db.session.scalars(select(ShareNode).where(ShareNode.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def _credit(node: ShareNode, kind: str, ref_id: int | None, at: datetime) -> None:
    rows = [{"sharer_key": a.viewer_key, "node_id": a.id, "material_id": a.material_id, "campaign_key": a.campaign_key,
             "kind": kind, "ref_id": ref_id, "at": at} for a in ancestors(node)]
    if rows:
        db.session.execute(Attribution.__table__.insert(), rows)


def record_forward(token: str, channel: str) -> ShareNode:
    node = db.session.scalars(select(ShareNode).where(ShareNode.token == token)).first()
    if node is None:
        raise NotFound("分享标识无效。", fields={"share_token": "unknown"})
    if channel not in ("timeline", "appmessage"):
        raise ValidationFailed("分享渠道只能是 timeline 或 appmessage。", fields={"channel": "invalid"})
    db.session.add(Forward(node_id=node.id, material_id=node.material_id, campaign_id=node.campaign_id, channel=channel,
                           created_at=utcnow()))
    db.session.flush()
    return node


def employee_node(actor: Actor, material_id: int, campaign_id: int | None) -> ShareNode:
    """An employee's personal share link for a material (and campaign): the root of everything
    it brings, attributed to them."""
    m = get_visible(actor, Material, material_id) if actor.can("material", "view") else db.session.get(Material, material_id)
    if m is None or m.org_id != actor.org_id:
        raise NotFound("素材不存在。")
    if actor.employee_id is None:
        raise ValidationFailed("当前用户没有关联职员，不能生成个人推广链接。", code="no_employee_linked")
    row = _ensure_node(m.id, campaign_id, f"e:{actor.employee_id}", employee_id=actor.employee_id)
    return db.session.get(ShareNode, row.id)


def shareable(actor: Actor, q: str | None = None, limit: int = 50) -> list[Material]:
    """全员营销: the organisation's published materials, newest first — every employee may share them under their own
    link, whatever their role may edit."""
    stmt = select(Material).where(Material.org_id == actor.org_id, Material.status == "published")
    if q:
        stmt = stmt.where(Material.title.contains(q.strip()[:100]))
    return list(db.session.scalars(stmt.order_by(Material.published_at.desc(), Material.id.desc()).limit(limit)))


def news_article(actor: Actor, material_id: int | None, base_url: str) -> dict | None:
    """A published material as a news card for a follower (在线客服's 发送图文): title, summary, cover (else its QR)
    and the link that credits this employee — the viewer's visits and leads count for them, as on the staff share page.
    None when it is not a published material of the actor's organisation."""
    m = next((x for x in shareable(actor) if x.id == material_id), None) if material_id else None
    if m is None:
        return None
    node = employee_node(actor, m.id, None)
    return {"title": m.title, "description": m.summary or "", "url": f"{base_url}/m/{m.code}?s={node.token}",
            "picurl": f"{base_url}/materials/{m.id}/{'cover.jpg' if m.cover_media_id else 'qr.png'}"}


def my_results(actor: Actor) -> dict:
    """我的推广成绩: what the employee's links brought — people reached, leads, won opportunities — per material and
    in all (every share downstream of their link counts), and their rank among this week's sharers."""
    if actor.employee_id is None:
        return {"materials": [], "totals": {"reach": 0, "leads": 0, "opportunities": 0}, "week_rank": None}
    key = f"e:{actor.employee_id}"
    counts = {kind: func.sum(case((Attribution.kind == kind, 1), else_=0)) for kind in ("reach", "lead", "opportunity")}
    rows = db.session.execute(select(Attribution.material_id, counts["reach"], counts["lead"], counts["opportunity"])
                              .where(Attribution.sharer_key == key).group_by(Attribution.material_id)).all()
    titles = dict(db.session.execute(select(Material.id, Material.title).where(Material.id.in_([r[0] for r in rows])))
                  .all()) if rows else {}
    items = sorted(({"material_id": mid, "title": titles.get(mid, ""), "reach": int(r or 0), "leads": int(ld or 0),
                     "opportunities": int(o or 0)} for mid, r, ld, o in rows),
                   key=lambda i: (-i["opportunities"], -i["leads"], -i["reach"], i["material_id"]))
    totals = {k: sum(i[k] for i in items) for k in ("reach", "leads", "opportunities")}
    rank = next((r["rank"] for r in top_sharers(org_id=actor.org_id, since=week_start(tz=org_timezone(actor.org_id)), limit=100) if r.get("employee_id") == actor.employee_id),
                None)
    return {"materials": items, "totals": totals, "week_rank": rank}


# --- intents → leads -------------------------------------------------------------------------------
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def submit_intent(material: Material, node: ShareNode, data: dict) -> tuple[Lead, bool]:
    """An intent from the material page becomes a lead (through the collision check). Each
    intent is also a touch on its lead: an intent whose phone an open lead already has is
    linked to that lead as a new touch — the lead keeps its name, campaign and first
    attribution; the touch keeps this campaign, sharer chain and the name typed this time.
    Returns ``(lead, created)``."""
    from crm_core import normalize
    from crm_core.sales.leads import create_lead
    from crm_core.sales.models import LeadTouch

    name = (data.get("name") or "").strip()
    phone = normalize.phone(data.get("phone"))
    if not name:
        raise ValidationFailed("请填写您的姓名。", fields={"name": "required"})
    if not MOBILE.match(phone):
        raise ValidationFailed("请填写正确的 11 位手机号码。", fields={"phone": "invalid"})
    chain = [a for a in ancestors(node)]
    sharers = [_sharer(a) for a in chain]
    campaign = db.session.get(Campaign, node.campaign_id) if node.campaign_id else None
    root_employee = next((a.employee_id for a in chain if a.employee_id), None)
    owner_id = root_employee or (campaign.owner_id if campaign else None) or material.owner_id
    attribution = {"campaign_id": node.campaign_id, "material_id": material.id, "share_token": node.token,
                   "first_touch": sharers[0] if sharers else None, "chain": sharers}
    product = (data.get("product") or "")[:200] or None
    note = (data.get("note") or "").strip()[:500] or None  # the product has its own field (product_interest)
    actor = Actor.system(material.org_id, "营销意向")
    lead = db.session.scalars(select(Lead).where(Lead.org_id == material.org_id, Lead.phone == phone,
                                                 Lead.status.in_(("new", "working"))).order_by(Lead.id)).first()
    created = False
    if lead is None:
        try:
            lead, _ = create_lead(actor, {"name": name[:100], "phone": phone, "source": "wechat_intent", "owner_id": owner_id,
                                          "product_interest": product, "note": note,
                                          "source_ref": f"campaign:{node.campaign_id}" if node.campaign_id else f"material:{material.id}",
                                          "attribution": attribution})
            lead.campaign_id = node.campaign_id
            created = True
        except Conflict as exc:
            hit = next((h for h in exc.extra.get("hits", []) if h.get("object_type") == "lead"), None)
            if hit is None:
                raise Conflict("您已是我们的客户，销售顾问会尽快与您联系。", code="existing_customer") from None
            lead = db.session.get(Lead, hit["id"])
    db.session.add(LeadTouch(org_id=material.org_id, lead_id=lead.id, source="wechat_intent", campaign_id=node.campaign_id,
                             material_id=material.id, name=name[:100], product_interest=product, note=note,
                             attribution=attribution, created_at=utcnow()))
    db.session.flush()
    if created:
        _credit(node, "lead", lead.id, utcnow())
    if lead.owner_id:
        again = "" if created else f"（再次咨询，线索：{lead.name}）"
        outbox.notify_staff(lead.owner_id, "intent",
                            f"新的营销意向：{name} {phone[:3]}****{phone[-4:]}（{material.title}）{again}",
                            org_id=material.org_id, dedupe_key=f"intent:{lead.id}:{node.id}", lead_id=lead.id)
    db.session.flush()
    return lead, created


def _sharer(n: ShareNode) -> dict:
    return {"employee_id": n.employee_id} if n.employee_id else {"openid": n.openid} if n.openid else {"viewer": n.viewer_key}


def credit_won_opportunities(org_id: int) -> int:
    """Opportunities won from attributed leads credit the lead's sharer chain (idempotent)."""
    done = set(db.session.scalars(select(Attribution.ref_id).where(Attribution.kind == "opportunity")))
    rows = db.session.execute(select(Lead, Opportunity).join(Opportunity, Opportunity.id == Lead.opportunity_id).where(
        Lead.org_id == org_id, Opportunity.status == "won", Lead.campaign_id.is_not(None) | Lead.source.in_(("wechat_intent",))))
    n = 0
    for lead, opp in rows:
        token = (lead.attribution or {}).get("share_token")
        if opp.id in done or not token:
            continue
        node = db.session.scalars(select(ShareNode).where(ShareNode.token == token)).first()
        if node is not None:
            _credit(node, "opportunity", opp.id, utcnow())
            n += 1
    db.session.flush()
    return n


# --- trees, rankings, figures ----------------------------------------------------------------------
def _tree_rows(material_id: int | None, campaign_id: int | None):
    stmt = select(ShareNode.id, ShareNode.parent_id, ShareNode.token, ShareNode.openid, ShareNode.employee_id,
                  ShareNode.counted, ShareNode.depth)
    if campaign_id is not None:
        stmt = stmt.where(ShareNode.campaign_key == campaign_id)
    if material_id is not None:
        stmt = stmt.where(ShareNode.material_id == material_id)
    nodes = db.session.execute(stmt).all()
    vstmt = select(Visit.node_id, func.count(Visit.id)).where(Visit.counted.is_(True))
    vstmt = vstmt.where(Visit.campaign_id == campaign_id) if campaign_id is not None else vstmt
    vstmt = vstmt.where(Visit.material_id == material_id) if material_id is not None else vstmt
    visits = dict(db.session.execute(vstmt.group_by(Visit.node_id)).all())
    return nodes, visits


def share_tree(material_id: int | None = None, campaign_id: int | None = None, max_nodes: int = 200_000) -> dict:
    """The propagation tree: roots are viewers who came with no (valid) token; each node has
    its visits, its downstream reach (human viewers below it), and its children."""
    nodes, visits = _tree_rows(material_id, campaign_id)
    children: dict[int | None, list] = defaultdict(list)
    for n in nodes:
        children[n.parent_id].append(n)
    ids = {n.id for n in nodes}
    roots = [n for n in nodes if n.parent_id is None or n.parent_id not in ids]
    reach: dict[int, int] = {}
    order = sorted(nodes, key=lambda n: -n.depth)  # deepest first: children before parents
    for n in order:
        reach[n.id] = sum(reach[c.id] + (1 if c.counted else 0) for c in children.get(n.id, ()))
    breadth: dict[int, int] = defaultdict(int)
    for n in nodes:
        if n.counted:
            breadth[n.depth] += 1
    # bots and unconfirmed viewers stay out of the picture (unless humans came through them);
    # an employee's personal link is a root even before anyone opens it
    keep = {n.id for n in nodes if n.counted or reach[n.id] > 0 or n.employee_id}
    roots = [r for r in roots if r.id in keep]
    for key in list(children):
        children[key] = [c for c in children[key] if c.id in keep]

    def build(n, budget=[max_nodes]):  # noqa: B006 - a shared counter caps the answer's size
        budget[0] -= 1
        kids = sorted(children.get(n.id, ()), key=lambda c: -reach[c.id])
        return {"viewer": ({"employee_id": n.employee_id} if n.employee_id else {"openid": n.openid} if n.openid else {}),
                "share_token": n.token, "visits": visits.get(n.id, 0), "reach": reach[n.id], "depth": n.depth,
                "children": [build(c) for c in kids if budget[0] > 0]}

    out_roots = [build(r) for r in sorted(roots, key=lambda r: -reach[r.id])]
    return {"nodes": len(nodes), "viewers": sum(1 for n in nodes if n.counted),
            "max_depth": max((n.depth for n in nodes if n.counted), default=0),
            "breadth_by_depth": {str(d): breadth[d] for d in sorted(breadth)}, "roots": out_roots}


def top_sharers(campaign_id: int | None = None, *, org_id: int | None = None, since: datetime | None = None,
                limit: int = 20) -> list[dict]:
    """营销达人: ranked by outcome — reach, leads, won opportunities (weighted 1, 10, 50); with ``org_id`` only what the
    organisation's materials earned (the overall board of one company, not of every company on the deployment)."""
    reach = func.sum(case((Attribution.kind == "reach", 1), else_=0))
    leads = func.sum(case((Attribution.kind == "lead", 1), else_=0))
    opps = func.sum(case((Attribution.kind == "opportunity", 1), else_=0))
    score = reach + 10 * leads + 50 * opps
    stmt = select(Attribution.sharer_key, score.label("score"), reach.label("reach"), leads.label("leads"),
                  opps.label("opportunities"))
    if campaign_id is not None:
        stmt = stmt.where(Attribution.campaign_key == campaign_id)
    if org_id is not None:
        stmt = stmt.join(Material, Material.id == Attribution.material_id).where(Material.org_id == org_id)
    if since is not None:
        stmt = stmt.where(Attribution.at >= since)
    rows = db.session.execute(stmt.group_by(Attribution.sharer_key).order_by(score.desc(), Attribution.sharer_key).limit(limit)).all()
    emp_ids = [int(k[2:]) for k, *_ in rows if k.startswith("e:")]
    names = employee_names(emp_ids)
    openids = [k[2:] for k, *_ in rows if k.startswith("o:")]
    nicks = display_names(openids)
    out = []
    for rank, (key, sc, reach, leads, opps) in enumerate(rows, 1):
        who = {"employee_id": int(key[2:]), "name": names.get(int(key[2:]))} if key.startswith("e:") else (
            {"openid": key[2:], "name": nicks[key[2:]]} if key.startswith("o:") else {"name": "访客"})
        out.append({"rank": rank, **who, "score": int(sc or 0), "reach": int(reach or 0), "leads": int(leads or 0),
                    "opportunities": int(opps or 0)})
    return out


def stats(*, campaign: Campaign | None = None, material_id: int | None = None, days: int = 30) -> dict:
    """Effect figures (效果分析): reads and unique readers per day, forwards, depth distribution,
    leads, won opportunities and cost per lead."""
    since = utcnow() - timedelta(days=days)
    vq = select(func.date(Visit.created_at), func.count(Visit.id), func.count(func.distinct(Visit.node_id))).where(
        Visit.counted.is_(True), Visit.created_at >= since)
    fq = select(func.count(Forward.id))
    nq = select(ShareNode.depth, func.count(ShareNode.id)).where(ShareNode.counted.is_(True))
    if campaign is not None:
        vq, fq, nq = vq.where(Visit.campaign_id == campaign.id), fq.where(Forward.campaign_id == campaign.id), nq.where(ShareNode.campaign_key == campaign.id)
    if material_id is not None:
        vq, fq, nq = vq.where(Visit.material_id == material_id), fq.where(Forward.material_id == material_id), nq.where(ShareNode.material_id == material_id)
    daily = [{"date": str(d), "reads": r, "readers": u} for d, r, u in db.session.execute(vq.group_by(func.date(Visit.created_at)).order_by(func.date(Visit.created_at)))]
    depth = {str(d): n for d, n in db.session.execute(nq.group_by(ShareNode.depth).order_by(ShareNode.depth))}
    totals_q = select(func.count(Visit.id), func.count(func.distinct(Visit.node_id))).where(Visit.counted.is_(True))
    flagged_q = select(func.count(Visit.id)).where(or_(Visit.is_bot.is_(True), Visit.js_confirmed.is_(False)))
    if campaign is not None:
        totals_q, flagged_q = totals_q.where(Visit.campaign_id == campaign.id), flagged_q.where(Visit.campaign_id == campaign.id)
    if material_id is not None:
        totals_q, flagged_q = totals_q.where(Visit.material_id == material_id), flagged_q.where(Visit.material_id == material_id)
    reads, readers = db.session.execute(totals_q).one()
    qr_q = totals_q.with_only_columns(func.count(Visit.id)).where(Visit.source == "qr")
    out = {"reads": reads, "unique_readers": readers, "forwards": db.session.scalar(fq) or 0,
           "left_out_visits": db.session.scalar(flagged_q) or 0, "daily": daily, "depth_distribution": depth,
           "qr_visits": db.session.scalar(qr_q) or 0}
    if campaign is not None:
        leads = db.session.scalars(select(Lead).where(Lead.campaign_id == campaign.id)).all()
        opp_ids = [x.opportunity_id for x in leads if x.opportunity_id]
        won = db.session.execute(select(func.count(Opportunity.id), func.coalesce(func.sum(Opportunity.amount), 0)).where(
            Opportunity.id.in_(opp_ids or [0]), Opportunity.status == "won")).one()
        cost = float(campaign.actual_cost) if campaign.actual_cost is not None else None
        out.update(leads=len(leads), customers=sum(1 for x in leads if x.customer_id), opportunities=len(opp_ids),
                   opportunities_won=won[0], won_amount=float(won[1]), budget=float(campaign.budget) if campaign.budget is not None else None,
                   actual_cost=cost, cost_per_lead=round(cost / len(leads), 2) if cost is not None and leads else None)
    return out


def week_start(today: date | None = None, tz: str | None = None) -> datetime:
    """The stored time this week began (Monday 00:00 in ``tz``, the default zone unless given): 本周 of the rankings."""
    from crm_core.clock import day_bounds, local_today

    d = today or local_today(tz)
    monday = d - timedelta(days=d.weekday())
    return day_bounds(monday, monday, tz)[0]

