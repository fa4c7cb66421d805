"""Self-service (自助式服务): customers' H5 pages and API, the staff API and console pages for
tickets and work orders, and what the official account answers for them (welcome, menu, 报修).

Importing the package adds its API operations and console pages to the shared blueprints
(before they are registered); :func:`init_app` registers the H5 blueprint and the router rules.
"""
from __future__ import annotations

from flask import Flask

from wxapp.self_service import api as _api  # noqa: F401  (adds /api/v1/tickets, /work-orders, service reports)
from wxapp.self_service import console as _console  # noqa: F401  (adds /console/service/...)


def init_app(app: Flask) -> None:
    from crm_core.customers.customers import register_360_section
    from wxapp.h5 import register_entry
    from wxapp.official_account import router
    from wxapp.self_service import h5

    app.register_blueprint(h5.bp)
    register_entry("在线报修", "service_h5.new", "🛠", "报修、投诉、建议、咨询")
    register_entry("服务进度", "service_h5.home", "📋", "查看处理进度并评价")
    register_entry("我的产品", "service_h5.products_page", "📦", "产品档案与保修期")
    register_360_section("tickets", _tickets_section)
    router.add(_welcome, name="self_service.welcome", msg_type="event", event="subscribe", priority=150,
               label="关注欢迎语：按客户称呼问候，介绍在线报修、服务进度、我的产品")
    router.add(_menu, name="self_service.menu", msg_type="event", event="click", key_pattern=r"^MENU_(REPAIR|PROGRESS|PRODUCTS)$",
               label="菜单：在线报修、服务进度、我的产品（回复对应页面的链接）")
    router.add(_keyword, name="self_service.keyword", msg_type="text", text_pattern=r"^\s*(报修|维修|修理|坏了|投诉|进度|服务进度)",
               label="关键词：报修、维修、修理、坏了、投诉、进度（回复提交或查询的链接）")


def _base() -> str:
    from flask import current_app

    return current_app.config["PUBLIC_BASE_URL"]


def _link(path: str, text: str) -> str:
    return f'<a href="{_base()}{path}">{text}</a>'


def _welcome(ib) -> str:
    """Step 1: the welcome offers the self-service menu; a bound follower is greeted by name."""
    from crm_core.customers.models import Contact
    from crm_core.db import db
    from crm_core.wechat.models import Follower

    f = db.session.scalars(db.select(Follower).where(Follower.appid == ib.appid, Follower.openid == ib.openid)).first()
    contact = db.session.get(Contact, f.contact_id) if f and f.contact_id else None
    hello = f"{contact.name}，欢迎回来！" if contact else "欢迎关注蓝云服务！"
    return (f"{hello}\n您可以：\n· {_link('/h5/service/new', '在线报修')}\n· {_link('/h5/service', '查看服务进度')}\n"
            f"· {_link('/h5/service/products', '我的产品')}\n也可以直接回复“报修”。")


def _menu(ib) -> str:
    key = ib.event_key
    if key == "MENU_REPAIR":
        return f"请点击{_link('/h5/service/new', '在线报修')}，描述问题并上传照片，我们会尽快安排工程师。"
    if key == "MENU_PROGRESS":
        return f"点击查看{_link('/h5/service', '服务进度')}。"
    return f"点击查看{_link('/h5/service/products', '我的产品')}与保修期。"


def _keyword(ib) -> str:
    text = (ib.content or "").strip()
    if text.startswith(("进度", "服务进度")):
        return f"点击查看{_link('/h5/service', '服务进度')}。"
    kind = "complaint" if text.startswith("投诉") else "repair"
    return f"请点击{_link(f'/h5/service/new?kind={kind}', '在线提交')}，描述问题并上传照片，我们会尽快为您处理。"


def _tickets_section(actor, customer) -> dict:
    from sqlalchemy import func, select

    from crm_core.db import db
    from crm_core.org.permissions import scoped_select
    from crm_core.service.models import Ticket
    from crm_core.service.tickets import OPEN_STATES, STAFF_LABELS

    if not actor.can("ticket", "view"):
        return {"count": None, "latest": []}
    stmt = scoped_select(actor, Ticket).where(Ticket.customer_id == customer.id)
    rows = db.session.scalars(stmt.order_by(Ticket.id.desc()).limit(10)).all()
    return {"count": db.session.scalar(select(func.count()).select_from(stmt.subquery())),
            "open": sum(1 for t in rows if t.status in OPEN_STATES),
            "latest": [{"id": t.id, "number": t.number, "kind": t.kind, "status": t.status, "status_label": STAFF_LABELS[t.status]}
                       for t in rows]}
