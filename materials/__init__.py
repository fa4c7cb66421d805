"""Marketing materials, QR previews, campaigns and share-path tracking (微营销).

Importing :mod:`materials.api` adds the marketing API to the shared API blueprint (before it
is registered); :func:`init_app` registers the public pages and images, the console pages, and
the QR scene prefix for salespeople's personal codes. This package reaches neither the
console nor the H5 package; the app factory adds their menu entries.
"""
from __future__ import annotations


def init_app(app) -> None:
    from crm_core import demo
    from materials import console, web
    from materials.demo import demo_marketing
    from wxapp.extensions import csrf
    from wxapp.official_account import router

    csrf.exempt(web.bp)  # public page calls: same-origin check + SameSite=Lax cookies (see web._same_origin)
    app.register_blueprint(web.bp)
    app.wsgi_app = web.PageLane(app, app.wsgi_app)
    app.register_blueprint(console.bp)
    router.claim_scene_prefix("mkt_", _scene, owner="materials")
    if demo_marketing not in demo.DEMO_EXTRAS:
        demo.DEMO_EXTRAS.append(demo_marketing)


def _scene(ib) -> str | None:
    """A salesperson's personal parametric QR (scene ``mkt_<share token>``): the follower gets
    the material link under that salesperson's token, so what follows is attributed to them."""
    from flask import current_app

    from crm_core.db import db
    from materials.models import Material, ShareNode

    token = (ib.scene or "")[len("mkt_"):][:24]
    node = db.session.scalars(db.select(ShareNode).where(ShareNode.token == token)).first()
    if node is None:
        return None
    m = db.session.get(Material, node.material_id)
    c = f"&c={node.campaign_id}" if node.campaign_id else ""
    return f'为您推荐：<a href="{current_app.config["PUBLIC_BASE_URL"]}/m/{m.code}?s={node.token}{c}">{m.title}</a>'
