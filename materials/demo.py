"""The demo's marketing: a published material in a campaign aimed at the demo's segment, made by the demo's
marketer through the services (so the console's 营销素材 and 营销方案 have a first record to open). Registered with
``crm_core.demo.DEMO_EXTRAS`` by :func:`materials.init_app`; the core never imports this package."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_core.customers.models import Segment
from crm_core.db import db
from crm_core.org.models import User
from crm_core.org.permissions import load_actor


def demo_marketing(org) -> None:
    from materials import services as msvc

    marketer = db.session.scalars(select(User).where(User.org_id == org.id, User.username == "marketing.wang")).first()
    if marketer is None:
        return
    who = load_actor(marketer)
    material = msvc.create_material(who, {
        "title": "蓝云商用净水器 WP100：一台顶三台", "publish": True,
        "body_html": "<h2>为茶厂、餐饮、酒店设计</h2><p>日产纯水 1.5 吨，滤芯寿命 12 个月，两年质保。</p>"})
    segment = db.session.scalars(select(Segment.id).where(Segment.org_id == org.id)).first()
    msvc.create_campaign(who, {"name": "冬季净水焕新季", "kind": "promotion", "material_ids": [material.id],
                               "segment_id": segment, "goal": "新增线索 50 条", "target_leads": 50,
                               "budget": Decimal("20000.00")})
