"""Marketing API: materials, campaigns and events, pushes, share trees, rankings, figures."""
from __future__ import annotations

from datetime import date
from typing import Literal

from flask import current_app, g
from pydantic import Field

from crm_core.org.permissions import get_visible
from crm_core.org.settings import org_timezone
from materials import services as svc
from materials.models import CAMPAIGN_KINDS, Campaign, Material
from wxapp import exports
from wxapp.api import bp
from wxapp.csv_export import csv_response
from wxapp.openapi import Model, PageQuery, api


def _base() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


class MaterialIn(Model):
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=500)
    body_html: str | None = Field(default=None, max_length=200_000)
    category: str | None = Field(default=None, max_length=64)
    cover_media_id: int | None = None
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)
    publish: bool = False


class MaterialPatch(Model):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=500)
    body_html: str | None = Field(default=None, max_length=200_000)
    category: str | None = Field(default=None, max_length=64)
    cover_media_id: int | None = None
    status: Literal["draft", "published", "archived"] | None = None


@api.operation(bp, "/materials", "POST", summary="Create a material (素材); the body is sanitised", tags=("marketing",),
               body=MaterialIn, status=201)
def create_material(body: MaterialIn):
    return svc.material_dict(svc.create_material(g.actor, body.model_dump()), _base())


class MaterialQuery(PageQuery):
    per_page: int = Field(default=20, ge=1, le=100)
    status: Literal["draft", "published", "archived"] | None = None
    q: str | None = Field(default=None, max_length=100)


@api.operation(bp, "/materials", "GET", summary="Materials", tags=("marketing",), query=MaterialQuery)
def list_materials(query: MaterialQuery):
    rows, total = svc.list_materials(g.actor, status=query.status, q=query.q, page=query.page, per_page=query.per_page)
    return {"items": [svc.material_dict(m, _base()) for m in rows], "total": total}


@api.operation(bp, "/materials/<int:material_id>", "GET", summary="One material", tags=("marketing",))
def get_material(material_id: int):
    return svc.material_dict(get_visible(g.actor, Material, material_id), _base())


@api.operation(bp, "/materials/<int:material_id>", "PATCH", summary="Edit or publish (a new version)", tags=("marketing",),
               body=MaterialPatch)
def update_material(material_id: int, body: MaterialPatch):
    return svc.material_dict(svc.update_material(g.actor, material_id, body.model_dump(exclude_unset=True)), _base())


class CardIn(Model):
    material_id: int = Field(description="a published material of the organisation")


@api.operation(bp, "/conversations/<int:conversation_id>/material-card", "POST", status=201,
               summary="在线客服: answer with a material as a news card (its link credits this agent)", tags=("conversations",),
               body=CardIn)
def send_material_card(conversation_id: int, body: CardIn):
    """One news article (WeChat's limit for customer-service news) inside the 48-hour window; outside it the
    template notice with the link. 422 when the material is not published."""
    from crm_core.errors import ValidationFailed
    from crm_core.wechat import conversations
    from wxapp.config import wechat_appid

    article = svc.news_article(g.actor, body.material_id, current_app.config["PUBLIC_BASE_URL"].rstrip("/"))
    if article is None:
        raise ValidationFailed("请选择已发布的素材。", fields={"material_id": "not a published material"})
    return conversations.reply_news(g.actor, wechat_appid(), conversation_id, article)


@api.operation(bp, "/materials/<int:material_id>/versions", "GET", summary="Kept versions", tags=("marketing",))
def material_versions(material_id: int):
    return {"items": svc.versions(g.actor, material_id)}


@api.operation(bp, "/materials/<int:material_id>/preview-link", "POST", summary="A signed preview link (drafts, 7 days)",
               tags=("marketing",))
def preview_link(material_id: int):
    from materials.web import preview_token

    m = get_visible(g.actor, Material, material_id)
    return {"url": f"{_base()}/m/{m.code}?preview={preview_token(m.id, m.version)}", "expires_in": 7 * 24 * 3600}


class MyLinkIn(Model):
    campaign_id: int | None = None


@api.operation(bp, "/materials/<int:material_id>/my-link", "POST", summary="My personal share link (everything it brings is mine)",
               tags=("marketing",), body=MyLinkIn)
def my_link(material_id: int, body: MyLinkIn):
    node = svc.employee_node(g.actor, material_id, body.campaign_id)
    code = svc.db.session.get(Material, node.material_id).code
    q = f"?s={node.token}" + (f"&c={body.campaign_id}" if body.campaign_id else "")
    return {"share_token": node.token, "url": f"{_base()}/m/{code}{q}",
            "qr_png": f"{_base()}/materials/{material_id}/qr.png{q}"}


class TreeQuery(Model):
    format: Literal["json", "csv"] = "json"


def _tree_csv(tree: dict, name: str):
    rows = []

    def walk(n, parent):
        rows.append({"share_token": n["share_token"], "parent": parent, "depth": n["depth"], "visits": n["visits"],
                     "reach": n["reach"], "viewer": n["viewer"].get("employee_id") or n["viewer"].get("openid") or ""})
        for c in n["children"]:
            walk(c, n["share_token"])
    for r in tree["roots"]:
        walk(r, "")
    return csv_response(name, [("share_token", "分享标识"), ("parent", "上级"), ("depth", "层级"), ("visits", "阅读"),
                               ("reach", "下游触达"), ("viewer", "传播人")], rows)


@api.operation(bp, "/materials/<int:material_id>/share-tree", "GET", summary="Propagation tree across campaigns",
               tags=("marketing",), query=TreeQuery)
def material_tree(material_id: int, query: TreeQuery):
    get_visible(g.actor, Material, material_id)
    tree = svc.share_tree(material_id=material_id)
    return _tree_csv(tree, f"传播路径_素材{material_id}.csv") if query.format == "csv" else tree


class StatsQuery(Model):
    days: int = Field(default=30, ge=1, le=366)
    format: Literal["json", "csv"] = "json"


def _stats_csv(data: dict, name: str):
    return csv_response(name, [("date", "日期"), ("reads", "阅读"), ("readers", "阅读人数")], data["daily"])


@api.operation(bp, "/materials/<int:material_id>/stats", "GET", summary="Effect figures of a material", tags=("marketing",),
               query=StatsQuery)
def material_stats(material_id: int, query: StatsQuery):
    get_visible(g.actor, Material, material_id)
    data = svc.stats(material_id=material_id, days=query.days)
    return _stats_csv(data, f"效果分析_素材{material_id}.csv") if query.format == "csv" else data


class CampaignIn(Model):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal[CAMPAIGN_KINDS] = "campaign"  # type: ignore[valid-type]
    segment_id: int | None = None
    material_ids: list[int] = Field(default_factory=list, max_length=20)
    starts_on: date | None = None
    ends_on: date | None = None
    goal: str | None = Field(default=None, max_length=500)
    target_leads: int | None = Field(default=None, ge=0)
    budget: float | None = Field(default=None, ge=0)
    actual_cost: float | None = Field(default=None, ge=0)
    owner_id: int | None = None


@api.operation(bp, "/campaigns", "POST", summary="Create a campaign (营销方案) or marketing event (市场活动)",
               tags=("marketing",), body=CampaignIn, status=201)
def create_campaign(body: CampaignIn):
    return svc.campaign_dict(svc.create_campaign(g.actor, body.model_dump()), _base())


@api.operation(bp, "/campaigns", "GET", summary="Campaigns and events", tags=("marketing",), query=PageQuery)
def list_campaigns(query: PageQuery):
    rows, total = svc.list_campaigns(g.actor, page=query.page, per_page=min(query.per_page, 100))
    return {"items": [svc.campaign_dict(c, _base()) for c in rows], "total": total}


exports.register(bp, api, "/materials", "营销素材", "material", MaterialQuery, svc.list_materials,
                 lambda rows: [svc.material_dict(m, _base()) for m in rows], [
                     exports.Column("title", "标题"), exports.Column("category", "分类"), exports.Column("status", "状态", "label:material_status"),
                     exports.Column("version", "版本"), exports.Column("url", "页面"), exports.Column("published_at", "发布时间", "time"),
                     exports.Column("owner_id", "负责人", "employee")])
exports.register(bp, api, "/campaigns", "营销方案", "campaign", PageQuery, svc.list_campaigns,
                 lambda rows: [svc.campaign_dict(c, _base()) for c in rows], [
                     exports.Column("name", "名称"), exports.Column("kind", "类型", "label:campaign_kind"),
                     exports.Column("status", "状态", "label:campaign_status"), exports.Column("starts_on", "开始日期"),
                     exports.Column("ends_on", "结束日期"), exports.Column("goal", "目标"), exports.Column("target_leads", "目标线索数"),
                     exports.Column("budget", "预算"), exports.Column("actual_cost", "实际花费"), exports.Column("owner_id", "负责人", "employee")])


@api.operation(bp, "/campaigns/<int:campaign_id>", "GET", summary="One campaign", tags=("marketing",))
def get_campaign(campaign_id: int):
    return svc.campaign_dict(get_visible(g.actor, Campaign, campaign_id), _base())


class PushIn(Model):
    per_minute: int = Field(default=600, ge=1, le=6000)


@api.operation(bp, "/campaigns/<int:campaign_id>/push", "POST", summary="Push to the target segment's followers (outbox)",
               tags=("marketing",), body=PushIn)
def push(campaign_id: int, body: PushIn):
    return svc.push_campaign(g.actor, campaign_id, _base(), body.per_minute)


@api.operation(bp, "/campaigns/<int:campaign_id>/recipients", "GET", summary="Per-recipient delivery status",
               tags=("marketing",), query=PageQuery)
def campaign_recipients(campaign_id: int, query: PageQuery):
    items, total = svc.recipients(g.actor, campaign_id, query.page, min(query.per_page, 200))
    return {"items": items, "total": total}


@api.operation(bp, "/campaigns/<int:campaign_id>/share-tree", "GET", summary="Propagation tree of a campaign",
               tags=("marketing",), query=TreeQuery)
def campaign_tree(campaign_id: int, query: TreeQuery):
    get_visible(g.actor, Campaign, campaign_id)
    tree = svc.share_tree(campaign_id=campaign_id)
    return _tree_csv(tree, f"传播路径_方案{campaign_id}.csv") if query.format == "csv" else tree


class RankQuery(Model):
    period: Literal["week", "all"] = "all"
    limit: int = Field(default=20, ge=1, le=100)
    format: Literal["json", "csv"] = "json"


RANK_COLUMNS = [("rank", "名次"), ("name", "营销达人"), ("score", "得分"), ("reach", "下游触达"), ("leads", "线索"),
                ("opportunities", "赢单")]


@api.operation(bp, "/campaigns/<int:campaign_id>/top-sharers", "GET", summary="Marketing experts (营销达人) by outcome",
               tags=("marketing",), query=RankQuery)
def campaign_top(campaign_id: int, query: RankQuery):
    c = get_visible(g.actor, Campaign, campaign_id)
    svc.credit_won_opportunities(c.org_id)
    items = svc.top_sharers(campaign_id, org_id=g.actor.org_id, since=svc.week_start(tz=org_timezone(g.actor.org_id)) if query.period == "week" else None, limit=query.limit)
    return csv_response(f"营销达人_方案{campaign_id}.csv", RANK_COLUMNS, items) if query.format == "csv" else {"items": items}


@api.operation(bp, "/marketing/top-sharers", "GET", summary="Marketing experts across all campaigns", tags=("marketing",),
               query=RankQuery)
def overall_top(query: RankQuery):
    g.actor.require("campaign", "view")
    svc.credit_won_opportunities(g.actor.org_id)
    items = svc.top_sharers(None, org_id=g.actor.org_id, since=svc.week_start(tz=org_timezone(g.actor.org_id)) if query.period == "week" else None, limit=query.limit)
    return csv_response("营销达人.csv", RANK_COLUMNS, items) if query.format == "csv" else {"items": items}


@api.operation(bp, "/campaigns/<int:campaign_id>/stats", "GET", summary="Effect analysis (效果分析) of a campaign or event",
               tags=("marketing",), query=StatsQuery)
def campaign_stats(campaign_id: int, query: StatsQuery):
    c = get_visible(g.actor, Campaign, campaign_id)
    data = svc.stats(campaign=c, days=query.days)
    return _stats_csv(data, f"效果分析_方案{campaign_id}.csv") if query.format == "csv" else data


@api.operation(bp, "/materials/<int:material_id>/my-qrcode", "POST", summary="My personal parametric QR code (WeChat, 30 days)",
               tags=("marketing",), body=MyLinkIn)
def my_qrcode(material_id: int, body: MyLinkIn):
    """Scanning it follows the account (if needed) and replies with the material under my token."""
    from wxapp.official_account import qrcodes

    node = svc.employee_node(g.actor, material_id, body.campaign_id)
    code = qrcodes.create(f"mkt_{node.token}", permanent=False, expire_seconds=30 * 24 * 3600)
    return {"share_token": node.token, **code}
