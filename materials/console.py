"""Console pages for marketers (/console/marketing): materials with QR preview and poster,
campaigns and events with push, effect analysis, rankings and the propagation tree."""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select

from crm_core.customers.models import Segment
from crm_core.db import db, paginate
from crm_core.errors import DomainError, ValidationFailed
from crm_core.labels import LABELS
from crm_core.org.organization import employee_names
from crm_core.org.permissions import get_visible, scoped_select
from crm_core.org.settings import org_timezone
from crm_core.wechat.followers import display_names
from materials import services as svc
from materials import tree_svg
from materials.models import Campaign, Material
from wxapp.auth import console_login_required
from wxapp.forms import parse_amount
from wxapp.pages import act as _act
from wxapp.pages import denied as _denied

KIND_LABELS = LABELS["campaign_kind"]
bp = Blueprint("marketing_console", __name__, url_prefix="/console/marketing", template_folder="templates")


def _base() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


@bp.get("/materials")
@console_login_required
def materials():
    try:
        rows, total = paginate(scoped_select(g.actor, Material), Material.id.desc(), page=1, per_page=50)
    except DomainError as exc:
        return _denied(exc)
    return render_template("materials/console_materials.html", rows=rows, total=total)


@bp.post("/materials")
@console_login_required
def create_material():
    f = request.form
    holder = {}

    def run():
        holder["m"] = svc.create_material(g.actor, {"title": f.get("title", ""), "summary": f.get("summary"),
                                                    "body_html": f.get("body_html"), "category": f.get("category"),
                                                    "publish": f.get("publish") == "1"})
    resp = _act(run, "素材已保存。", url_for("marketing_console.materials"))
    return redirect(url_for("marketing_console.material", material_id=holder["m"].id)) if "m" in holder else resp


def _names(tree: dict) -> dict[str, str]:
    emp, oid = set(), set()

    def walk(n):
        v = n["viewer"]
        if v.get("employee_id"):
            emp.add(v["employee_id"])
        elif v.get("openid"):
            oid.add(v["openid"])
        for c in n["children"]:
            walk(c)
    for r in tree["roots"]:
        walk(r)
    names = {f"e:{i}": n for i, n in employee_names(emp).items()}
    if oid:
        names.update({f"o:{o}": n for o, n in display_names(oid).items()})
    return names


@bp.get("/materials/<int:material_id>")
@console_login_required
def material(material_id: int):
    try:
        m = get_visible(g.actor, Material, material_id)
    except DomainError as exc:
        return _denied(exc)
    from materials.web import preview_token

    tree = svc.share_tree(material_id=m.id)
    stats = svc.stats(material_id=m.id)
    return render_template("materials/console_material.html", m=svc.material_dict(m, _base()), tree=tree,
                           tree_svg=tree_svg.render(tree, _names(tree), expand=request.args.get("expand")), stats=stats,
                           preview_url=f"{_base()}/m/{m.code}?preview={preview_token(m.id, m.version)}",
                           versions=svc.versions(g.actor, m.id),
                           charts=_charts(stats))


@bp.get("/materials/<int:material_id>/edit")
@console_login_required
def material_edit(material_id: int):
    try:
        m = get_visible(g.actor, Material, material_id, action="edit")
    except DomainError as exc:
        return _denied(exc)
    return render_template("materials/console_material_edit.html", m=svc.material_dict(m, _base()))


def _cover_upload() -> int | None:
    """The cover picked in the form (checked, cleaned and stored like every image), or None to keep the old one."""
    from crm_core import media

    f = request.files.get("cover")
    if f is None or not f.filename:
        return None
    return media.save_upload(f.read(media.MAX_IMAGE_BYTES + 1), "material", org_id=g.actor.org_id,
                             employee_id=g.actor.employee_id).id


@bp.post("/materials/<int:material_id>/edit")
@console_login_required
def material_save(material_id: int):
    f = request.form

    def run():
        if not (f.get("title") or "").strip():  # before the cover is stored
            raise ValidationFailed("素材标题不能为空。", fields={"title": "required"})
        return svc.update_material(g.actor, material_id, {
            "title": f.get("title", ""), "summary": f.get("summary", ""), "category": f.get("category", ""),
            "body_html": f.get("body_html", ""), "cover_media_id": _cover_upload()})

    return _act(run, "已保存为新版本。", url_for("marketing_console.material_edit", material_id=material_id),
                then=lambda m: url_for("marketing_console.material", material_id=material_id))


@bp.get("/materials/<int:material_id>/versions/<int:version>")
@console_login_required
def material_version(material_id: int, version: int):
    try:
        m = get_visible(g.actor, Material, material_id)
        v = svc.version_of(g.actor, material_id, version)
    except DomainError as exc:
        return _denied(exc)
    return render_template("materials/console_material_version.html", m=svc.material_dict(m, _base()), v=v)


@bp.post("/materials/<int:material_id>/versions/<int:version>/restore")
@console_login_required
def material_restore(material_id: int, version: int):
    return _act(lambda: svc.restore_version(g.actor, material_id, version), lambda: f"已恢复 v{version} 的内容（保存为新版本）。",
                url_for("marketing_console.material", material_id=material_id))


@bp.post("/materials/<int:material_id>/status")
@console_login_required
def material_status(material_id: int):
    status = request.form.get("status", "")
    return _act(lambda: svc.update_material(g.actor, material_id, {"status": status}), "已更新状态。",
                url_for("marketing_console.material", material_id=material_id))


@bp.get("/campaigns")
@console_login_required
def campaigns():
    try:
        rows, total = paginate(scoped_select(g.actor, Campaign), Campaign.id.desc(), page=1, per_page=50)
        mats, _ = paginate(scoped_select(g.actor, Material).where(Material.status == "published"), Material.id.desc(), page=1,
                           per_page=100)
    except DomainError as exc:
        return _denied(exc)
    segments = db.session.scalars(select(Segment).where(Segment.org_id == g.actor.org_id)).all()
    svc.credit_won_opportunities(g.actor.org_id)
    db.session.commit()
    return render_template("materials/console_campaigns.html", rows=rows, total=total, materials=mats, segments=segments,
                           week=svc.top_sharers(None, org_id=g.actor.org_id, since=svc.week_start(tz=org_timezone(g.actor.org_id))), all_time=svc.top_sharers(None, org_id=g.actor.org_id))


@bp.post("/campaigns")
@console_login_required
def create_campaign():
    f = request.form
    holder = {}

    def run():
        holder["c"] = svc.create_campaign(g.actor, _campaign_form(f))
    resp = _act(run, "方案已创建。", url_for("marketing_console.campaigns"))
    return redirect(url_for("marketing_console.campaign", campaign_id=holder["c"].id)) if "c" in holder else resp


def _campaign_form(f) -> dict:
    from datetime import date

    def num(key, label):
        value = parse_amount(f.get(key), key, label)
        return float(value) if value is not None else None

    def day(key, label):
        raw = (f.get(key) or "").strip()
        try:
            return date.fromisoformat(raw) if raw else None
        except ValueError:
            raise ValidationFailed(f"「{label}」不是日期。", fields={key: "日期格式不正确"}) from None

    leads = (f.get("target_leads") or "").strip()
    if leads and not leads.isdigit():
        raise ValidationFailed("「目标线索数」请填写整数。", fields={"target_leads": "请填写整数"})
    return {"name": f.get("name", ""), "kind": f.get("kind") or "campaign",
            "segment_id": int(f["segment_id"]) if (f.get("segment_id") or "").isdigit() else None,
            "material_ids": [int(x) for x in f.getlist("material_ids") if x.isdigit()], "goal": (f.get("goal") or "").strip() or None,
            "starts_on": day("starts_on", "开始日期"), "ends_on": day("ends_on", "结束日期"),
            "target_leads": int(leads) if leads else None,
            "budget": num("budget", "预算"), "actual_cost": num("actual_cost", "实际花费")}


@bp.get("/campaigns/<int:campaign_id>/edit")
@console_login_required
def campaign_edit(campaign_id: int):
    try:
        c = get_visible(g.actor, Campaign, campaign_id, action="edit")
        mats, _ = paginate(scoped_select(g.actor, Material).where(Material.status != "archived"), Material.id.desc(),
                           page=1, per_page=100)
        have = {m.id for m in mats}  # the campaign's own materials stay offered (ticked), archived or older ones too
        mats += [m for m in db.session.scalars(scoped_select(g.actor, Material).where(Material.id.in_(c.material_ids or [0])))
                 if m.id not in have]
    except DomainError as exc:
        return _denied(exc)
    segments = db.session.scalars(select(Segment).where(Segment.org_id == g.actor.org_id).order_by(Segment.name)).all()
    return render_template("materials/console_campaign_edit.html", c=svc.campaign_dict(c), materials=mats, segments=segments,
                           kinds=KIND_LABELS)


@bp.post("/campaigns/<int:campaign_id>/edit")
@console_login_required
def campaign_save(campaign_id: int):
    return _act(lambda: svc.update_campaign(g.actor, campaign_id, _campaign_form(request.form)), "方案已保存。",
                url_for("marketing_console.campaign_edit", campaign_id=campaign_id),
                then=lambda c: url_for("marketing_console.campaign", campaign_id=campaign_id))


@bp.get("/campaigns/<int:campaign_id>")
@console_login_required
def campaign(campaign_id: int):
    try:
        c = get_visible(g.actor, Campaign, campaign_id)
    except DomainError as exc:
        return _denied(exc)
    svc.credit_won_opportunities(c.org_id)
    db.session.commit()
    tree = svc.share_tree(campaign_id=c.id)
    stats = svc.stats(campaign=c)
    # the page shows the first 20; its 导出 (wxapp/console/table_export.py) takes every recipient
    recipients = svc.recipients(g.actor, c.id, 1, 50_000 if request.args.get("export_table") == "recipients" else 20)
    return render_template("materials/console_campaign.html", c=svc.campaign_dict(c, _base()), stats=stats, tree=tree,
                           tree_svg=tree_svg.render(tree, _names(tree), expand=request.args.get("expand")),
                           week=svc.top_sharers(c.id, org_id=g.actor.org_id, since=svc.week_start(tz=org_timezone(g.actor.org_id))), all_time=svc.top_sharers(c.id, org_id=g.actor.org_id),
                           charts=_charts(stats),
                           recipients=recipients,
                           recipient_names=display_names(r["openid"] for r in recipients[0]))


def _charts(stats: dict) -> dict:
    """每日阅读 (the last 30 days with reads and readers) and 传播层级 (how many people at each depth of the share
    tree) as ECharts charts (wxapp's static/charts.js)."""
    daily = stats["daily"][-30:]
    return {
        "reads": {"kind": "line", "x": [d["date"][5:] for d in daily], "unit": "次", "integer": True,
                  "series": [{"name": "阅读", "data": [d["reads"] for d in daily]}]
                  + ([{"name": "阅读人数", "data": [d["readers"] for d in daily]}] if daily and "readers" in daily[0] else [])},
        "depth": {"kind": "bar", "x": [f"第 {k} 层" for k in stats["depth_distribution"]], "unit": "人", "integer": True,
                  "series": [{"name": "人数", "data": list(stats["depth_distribution"].values())}]},
    }


@bp.post("/campaigns/<int:campaign_id>/push")
@console_login_required
def push(campaign_id: int):
    holder = {}

    def run():
        holder["r"] = svc.push_campaign(g.actor, campaign_id, _base())
    return _act(run, lambda: push_summary(holder["r"]), url_for("marketing_console.campaign", campaign_id=campaign_id))


def push_summary(r: dict) -> str:
    """目标客户 N 人：本次发送 a 人（其中 b 人在 48 小时互动窗口外，改发模板消息）；未发送：…"""
    text = f"目标客户 {r['members']} 人：本次发送 {r['queued']} 人"
    if r["as_template"]:
        text += f"（其中 {r['as_template']} 人 48 小时内未与公众号互动，改发模板消息）"
    left = [(r["skipped_already_sent"], "已发送过，不重复发送"), (r["not_bound"], "未绑定微信"),
            (r.get("never_followed", 0), "从未关注公众号"),
            (r["not_following"] - r.get("never_followed", 0), "已取消关注公众号")]
    reasons = "；".join(f"{n} 人{why}" for n, why in left if n)
    return text + ("。未发送：" + reasons + "。" if reasons else "。")
