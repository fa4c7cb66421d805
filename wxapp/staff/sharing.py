"""全员营销 on the phone: the material library (published materials), one material with my personal link, poster and
QR code to share to Moments or a chat, and my sharing results (reach, leads, won opportunities, this week's rank). The
link is the marketing API's own (``materials.services.employee_node``: everything it brings is attributed to me)."""
from __future__ import annotations

from flask import current_app, render_template, request

from crm_core.db import db
from crm_core.errors import NotFound
from crm_core.org.permissions import Actor
from materials import services as mkt
from materials.models import Material
from wxapp.staff.h5 import bp, staff_page


@bp.get("/staff/materials")
@staff_page
def material_library(actor: Actor):
    q = (request.args.get("q") or "").strip()[:100] or None
    return render_template("h5/staff/materials.html", rows=mkt.shareable(actor, q), q=q or "", results=mkt.my_results(actor))


@bp.get("/staff/materials/<int:material_id>")
@staff_page
def material_share(actor: Actor, material_id: int):
    m = db.session.get(Material, material_id)
    if m is None or m.org_id != actor.org_id or m.status != "published":
        raise NotFound("素材不存在或未发布。")
    node = mkt.employee_node(actor, m.id, None)
    db.session.commit()  # the personal link is kept: what it brings stays mine
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    mine = next((i for i in mkt.my_results(actor)["materials"] if i["material_id"] == m.id), None)
    return render_template("h5/staff/material_share.html", m=m, link=f"{base}/m/{m.code}?s={node.token}",
                           poster=f"/materials/{m.id}/poster.png?s={node.token}", qr=f"/materials/{m.id}/qr.png?s={node.token}",
                           mine=mine)
