"""Back-office pages (``/console``) for dispatchers, marketers and managers.

Session-cookie login with CSRF protection and throttling; the navigation shows only what
the user's function permissions allow.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from crm_core.customers import customers as customer_service
from crm_core.db import db
from crm_core.errors import DomainError, NotAuthenticated
from crm_core.org import organization as org_service
from crm_core.org.auth import authenticate
from wxapp.auth import console_login_required, console_user, login_console
from wxapp.extensions import login_throttle
from wxapp.guards import safe_next

bp = Blueprint("console", __name__, url_prefix="/console")

# (title, endpoint, object, action) — shown when the user may do action on object
NAV = [
    ("工作台", "console.home", None, None),
    ("组织架构", "console.org_chart", "organization", "view"),
    ("组织设置", "console.org_setup", "organization", "edit"),
    ("角色权限", "console.roles", "role", "view"),
    ("客户", "console.customers", "customer", "view"),
    ("公海", "console.customer_pool", "customer", "edit"),
    ("数据导入", "console.imports_home", "customer", "create"),
    ("客户细分", "console.segments", "customer", "view"),
    ("线索", "console.leads", "lead", "view"),
    ("商机", "console.opportunities", "opportunity", "view"),
    ("活动", "console.activities", "activity", "view"),
    ("费用申请", "console.expenses", "expense", "view"),
    ("其他应收", "console.other_receivables", "receipt", "view"),
    ("待我审批", "console.approvals_inbox", None, None),
    ("审批流程与委托", "console.approval_settings", None, None),
    ("工作计划", "console.plans", "activity", "view"),
    ("销售分析", "console.sales_analysis", "opportunity", "view"),
    ("在线客服", "console.conversation_list", "follower", "view"),
    ("微信粉丝", "console.followers", "follower", "view"),
    ("自动回复", "console.auto_replies", "wechat_account", "view"),
    ("自定义菜单", "console.menu_editor", "wechat_account", "view"),
    ("群发", "console.mass_sends", "campaign", "view"),
    ("撞单规则", "console.collision_rules", "organization", "edit"),
    ("消息发件箱", "console.outbox", "outbox", "view"),
]


@bp.app_context_processor
def inject_nav():
    actor = g.get("actor")
    if actor is None or not request.path.startswith("/console"):
        return {}
    items = [(t, e) for t, e, o, a in NAV if (o is None or actor.can(o, a)) and e in current_app.view_functions]
    return {"nav_items": items, "actor": actor}


def _safe_next(value: str | None) -> str:
    return safe_next(value, url_for("console.home"), ("/console",))


@bp.route("/login", methods=["GET", "POST"])
@login_throttle
def login():
    if request.method == "GET":
        if console_user():
            return redirect(url_for("console.home"))
        return render_template("console/login.html", error=None, username="", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        user = authenticate(username, password)
    except NotAuthenticated as exc:
        db.session.rollback()
        return render_template("console/login.html", error=exc.message, username=username,
                               next=request.form.get("next", "")), 401
    db.session.commit()
    login_console(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
@console_login_required
def home():
    from crm_core.org.permissions import NO_EMPLOYEE_MESSAGE, SCOPE_LABELS

    actor = g.actor
    scopes = {obj: SCOPE_LABELS[actor.widest_scope(obj)] for obj in ("customer", "ticket", "material") if actor.can(obj, "view")}
    warning = None if actor.employee_id else NO_EMPLOYEE_MESSAGE
    return render_template("console/home.html", scopes=scopes, warning=warning)


@bp.get("/org")
@console_login_required
def org_chart():
    try:
        chart = org_service.org_chart(g.actor)
    except DomainError as exc:
        return render_template("console/denied.html", message=exc.message), exc.status
    return render_template("console/org_chart.html", chart=chart)


@bp.get("/customers")
@console_login_required
def customers():
    q = request.args.get("q", "").strip()[:100]
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    try:
        rows, total = customer_service.list_customers(g.actor, q=q or None, page=page, per_page=20)
    except DomainError as exc:
        return render_template("console/denied.html", message=exc.message), exc.status
    owners = org_service.employee_names(c.owner_id for c in rows)
    return render_template("console/customers.html", rows=rows, total=total, q=q, page=page, owners=owners)


@bp.get("/outbox")
@console_login_required
def outbox():
    from crm_core import outbox as outbox_service
    from wxapp.api.outbox import recipient_names

    status = request.args.get("status") if request.args.get("status") in ("pending", "sending", "sent", "failed") else None
    from wxapp.pages import form_int

    page = max(1, min(form_int(request.args.get("page")) or 1, 10_000))
    try:
        rows, total = outbox_service.list_messages(g.actor, status=status, page=page, per_page=50)
    except DomainError as exc:
        return render_template("console/denied.html", message=exc.message), exc.status
    return render_template("console/outbox.html", rows=rows, total=total, page=page, status=status, names=recipient_names(rows))


from wxapp.console import (  # noqa: E402,F401  (the CRM, 在线客服, 公众号, 组织设置, 报价与合同, 审批 pages)
    account,
    activity_pages,
    analysis,
    approval_settings,
    approvals,
    conversations,
    crm,
    editing,
    expenses,
    imports,
    mass_send,
    org_setup,
    plans,
    roles,
    sales_documents,
    segments,
    table_export,
)
