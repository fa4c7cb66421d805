"""在线客服 in the console: the inbox, one conversation with the follower's card, replying, and a
feed the open page polls every second (new messages appear without reloading)."""
from __future__ import annotations

from flask import current_app, g, jsonify, render_template, request, url_for

from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.wechat import conversations
from wxapp.auth import console_login_required
from wxapp.config import wechat_appid
from wxapp.console import bp
from wxapp.official_account import chat_media, fastpath
from wxapp.pages import act, denied

_beats: dict[int, float] = {}


def _heartbeat() -> None:
    """The agent has 在线客服 open: they count as online for round-robin (one write per 15 s)."""
    import time

    emp = g.actor.employee_id
    if not emp or time.monotonic() - _beats.get(emp, -1e9) < 15:
        return
    try:
        conversations.seen_online(g.actor)
        db.session.commit()
        _beats[emp] = time.monotonic()
    except Exception:  # presence is a convenience: never fail the page for it
        db.session.rollback()


@bp.get("/conversations")
@console_login_required
def conversation_list():
    status = request.args.get("status") or None
    mine = request.args.get("mine") == "1"
    q = request.args.get("q", "").strip()[:64] or None
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    fastpath.flush_local()
    try:
        rows, total = conversations.list_conversations(g.actor, wechat_appid(), status=status, mine=mine, q=q, page=page)
    except DomainError as exc:
        return denied(exc)
    _heartbeat()
    return render_template("console/conversations.html", rows=rows, total=total, status=status, mine=mine, q=q or "",
                           page=page, presence=conversations.presence(g.actor), can_reply=g.actor.can("follower", "edit"))


@bp.post("/conversations/presence")
@console_login_required
def conversation_presence():
    """接待中 / 暂停接待: whether 人工客服 requests come to this agent."""
    accepting = request.form.get("accepting") == "1"
    _beats.pop(g.actor.employee_id or 0, None)
    return act(lambda: conversations.seen_online(g.actor, accepting=accepting) or None,
               "已开始接待：转人工的客户会轮流分配给在线客服。" if accepting else "已暂停接待：新的转人工请求不会分配给您。",
               url_for("console.conversation_list"))


@bp.get("/conversations/stats")
@console_login_required
def conversation_stats():
    try:
        days = max(1, min(92, int(request.args.get("days", "7"))))
    except ValueError:
        days = 7
    start, end, lo, hi = conversations.last_days(g.actor.org_id, days)
    try:
        stats = conversations.response_stats(g.actor, lo, hi)
    except DomainError as exc:
        return denied(exc)
    return render_template("console/conversation_stats.html", stats=stats, days=days, start=start, end=end)


def _open(conversation_id: int):
    """The conversation and its messages as the agent reads them (marked read)."""
    fastpath.flush_local()  # what this process's callbacks spooled shows at once
    c = conversations.get_conversation(g.actor, wechat_appid(), conversation_id)
    items = conversations.messages_of(c, mark_read=True)
    db.session.commit()
    return c, items


@bp.get("/conversations/<int:conversation_id>")
@console_login_required
def conversation(conversation_id: int):
    try:
        c, items = _open(conversation_id)
    except DomainError as exc:
        return denied(exc)
    card = conversations.follower_card(g.actor, c.appid, c.openid)
    card.update(_service_card(card, items))
    from crm_core.org.models import Employee
    from crm_core.org.organization import employee_names

    colleagues = db.session.scalars(db.select(Employee.id).where(Employee.org_id == g.actor.org_id)).all()
    names = employee_names(colleagues)
    canned = conversations.filled_canned(g.actor, card)
    materials_list = _published_materials()
    return render_template("console/conversation.html", c=conversations.conversation_dict(c), items=items, card=card,
                           can_reply=g.actor.can("follower", "edit"), can_ticket=g.actor.can("ticket", "create"),
                           colleagues=names, canned=canned, map_key=current_app.config.get("MAP_KEY"),
                           materials=materials_list)


@bp.get("/conversations/canned")
@console_login_required
def canned_replies():
    if not g.actor.can("follower", "edit"):
        from crm_core.errors import PermissionDenied

        return denied(PermissionDenied("没有管理快捷回复的权限。"))
    return render_template("console/canned_replies.html", items=conversations.canned_replies(g.actor.org_id),
                           variables=conversations.CANNED_VARIABLES)


@bp.post("/conversations/canned")
@console_login_required
def canned_replies_save():
    titles, texts = request.form.getlist("title"), request.form.getlist("text")
    items = [{"title": t, "text": x} for t, x in zip(titles, texts) if (t or "").strip() or (x or "").strip()]
    return act(lambda: conversations.save_canned_replies(g.actor, items), "快捷回复已保存。", url_for("console.canned_replies"))


def _service_card(card: dict, items: list[dict]) -> dict:
    """The bound contact's requests and product archives, and what the follower last wrote (the
    转为工单 form starts from it)."""
    from sqlalchemy import select

    from crm_core.customers.models import Product, ProductArchive
    from crm_core.labels import label
    from crm_core.org.permissions import scoped_select
    from crm_core.service.models import Ticket

    said = "\n".join(m["text"] for m in items if m["direction"] == "in" and m["kind"] != "event")[-500:]
    if not card["contact"] or not card["customer"]:
        return {"tickets": [], "archives": [], "said": said}
    tickets = db.session.scalars(scoped_select(g.actor, Ticket).where(Ticket.contact_id == card["contact"]["id"])
                                 .order_by(Ticket.id.desc()).limit(5)).all() if g.actor.can("ticket", "view") else []
    archives = db.session.execute(select(ProductArchive.id, ProductArchive.serial_no, Product.name).join(
        Product, Product.id == ProductArchive.product_id).where(ProductArchive.customer_id == card["customer"]["id"])).all()
    return {"tickets": [{"id": t.id, "number": t.number, "kind": label("ticket_kind", t.kind),
                         "status": label("ticket_status", t.status)} for t in tickets],
            "archives": [{"id": a.id, "serial_no": a.serial_no, "name": a.name} for a in archives], "said": said}


@bp.get("/conversations/<int:conversation_id>/feed")
@console_login_required
def conversation_feed(conversation_id: int):
    """What the open conversation page polls: its messages and the window, as JSON."""
    try:
        c, items = _open(conversation_id)
    except DomainError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
    _heartbeat()
    return jsonify({"items": items, "window": conversations.window_for(c)})


@bp.get("/conversations/<int:conversation_id>/messages/<int:message_id>/media")
@console_login_required
def conversation_media(conversation_id: int, message_id: int):
    try:
        c = conversations.get_conversation(g.actor, wechat_appid(), conversation_id)
    except DomainError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
    return chat_media.serve(c, message_id, g.actor.org_id, thumb=request.args.get("thumb") == "1")


@bp.get("/conversations/<int:conversation_id>/replies/<int:outbox_id>/media")
@console_login_required
def conversation_reply_media(conversation_id: int, outbox_id: int):
    try:
        c = conversations.get_conversation(g.actor, wechat_appid(), conversation_id)
    except DomainError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
    return chat_media.serve_reply(c, outbox_id)


@bp.post("/conversations/<int:conversation_id>/reply-image")
@console_login_required
def conversation_reply_image(conversation_id: int):
    """发送图片: the picture is checked and cleaned like every upload, then goes as a customer-service image."""
    from crm_core import media
    from crm_core.errors import ValidationFailed

    def run():
        f = request.files.get("image")
        if f is None or not f.filename:
            raise ValidationFailed("请选择要发送的图片。", fields={"image": "required"})
        row = media.save_upload(f.read(), "chat_reply", org_id=g.actor.org_id, employee_id=g.actor.employee_id)
        return conversations.reply_image(g.actor, wechat_appid(), conversation_id, row.id)

    return act(run, "图片已发送。", url_for("console.conversation", conversation_id=conversation_id))


@bp.post("/conversations/<int:conversation_id>/reply-material")
@console_login_required
def conversation_reply_material(conversation_id: int):
    """发送图文: a published material as a news card, its link carrying this agent's share token."""
    from crm_core.errors import ValidationFailed
    from wxapp.pages import form_int

    def run():
        from materials import services as material_services

        article = material_services.news_article(g.actor, form_int(request.form.get("material_id")),
                                                 current_app.config["PUBLIC_BASE_URL"].rstrip("/"))
        if article is None:
            raise ValidationFailed("请选择已发布的素材。", fields={"material_id": "required"})
        return conversations.reply_news(g.actor, wechat_appid(), conversation_id, article)

    return act(run, "图文已发送。", url_for("console.conversation", conversation_id=conversation_id))


def _published_materials() -> list:
    """The organisation's published materials: every employee may share them under their own link (全员营销)."""
    from materials import services as material_services

    return material_services.shareable(g.actor) if g.actor.employee_id else []


@bp.post("/conversations/<int:conversation_id>/reply")
@console_login_required
def conversation_reply(conversation_id: int):
    holder = {}

    def run():
        holder["r"] = conversations.reply(g.actor, wechat_appid(), conversation_id, request.form.get("text", ""))

    return act(run, lambda: "已发送" if holder["r"]["channel"] == "customer_service"
               else "对方 48 小时内没有可回复的互动，已改为模板消息发送。",
               url_for("console.conversation", conversation_id=conversation_id))


@bp.post("/conversations/<int:conversation_id>/assign")
@console_login_required
def conversation_assign(conversation_id: int):
    """接入 (take it) or 转接 (to the colleague chosen)."""
    raw = request.form.get("employee_id", "")
    employee_id = int(raw) if raw.isascii() and raw.isdecimal() else None
    return act(lambda: conversations.assign(g.actor, wechat_appid(), conversation_id, employee_id),
               "已转接。" if employee_id else "已接入，由您接待。",
               url_for("console.conversation", conversation_id=conversation_id))


@bp.post("/conversations/<int:conversation_id>/close")
@console_login_required
def conversation_close(conversation_id: int):
    return act(lambda: conversations.close(g.actor, wechat_appid(), conversation_id), "会话已结束；对方再发消息时会重新打开。",
               url_for("console.conversation", conversation_id=conversation_id))
