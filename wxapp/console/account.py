"""公众号设置 in the console: auto-reply rules with a test box, built-in rules switchable, and the
menu editor (WeChat's limits, a phone-frame preview, push, the history of pushes)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from crm_core.db import db
from crm_core.errors import DomainError, PermissionDenied
from crm_core.wechat import autoreply, menus
from wxapp.auth import console_login_required
from wxapp.config import wechat_appid
from wxapp.console import bp
from wxapp.official_account import account
from wxapp.official_account.router import router
from wxapp.pages import act, denied

SUB_SLOTS, TOP_SLOTS = 5, 3


@bp.get("/wechat/auto-replies")
@console_login_required
def auto_replies():
    if not g.actor.can("wechat_account", "view"):
        return denied(PermissionDenied("没有查看公众号设置的权限。"))
    appid = wechat_appid()
    tried = None
    text = request.args.get("try", "").strip()[:600]
    if text:
        tried = account.try_reply(appid, text)
    return render_template("console/auto_replies.html", rules=[autoreply.rule_dict(r) for r in autoreply.list_rules(appid)],
                           builtin=account.builtin_rules(appid), kinds=autoreply.KINDS, matches=autoreply.MATCHES,
                           tried=tried, tried_text=text, can_edit=g.actor.can("wechat_account", "edit"),
                           default_text=router.default_text, welcome_text=router.welcome_text)


def _rule_form() -> dict:
    f = request.form
    return {"kind": f.get("kind"), "match": f.get("match") or None, "pattern": f.get("pattern"), "reply": f.get("reply"),
            "priority": f.get("priority"), "enabled": f.get("enabled") == "1"}


@bp.post("/wechat/auto-replies/new")
@console_login_required
def auto_reply_new():
    return act(lambda: autoreply.save_rule(g.actor, wechat_appid(), _rule_form()), "规则已保存，几秒内对所有消息生效。",
               url_for("console.auto_replies"))


@bp.post("/wechat/auto-replies/<int:rule_id>")
@console_login_required
def auto_reply_edit(rule_id: int):
    appid, back = wechat_appid(), url_for("console.auto_replies")
    if request.form.get("op") == "delete":
        return act(lambda: autoreply.delete_rule(g.actor, appid, rule_id), "规则已删除。", back)
    return act(lambda: autoreply.save_rule(g.actor, appid, _rule_form(), rule_id), "规则已保存，几秒内对所有消息生效。", back)


@bp.post("/wechat/auto-replies/builtin")
@console_login_required
def auto_reply_builtin():
    name, enabled = request.form.get("name", ""), request.form.get("enabled") == "1"
    return act(lambda: autoreply.switch_builtin(g.actor, wechat_appid(), name, enabled, {r.name for r in router.switchable()}),
               "内置规则已启用。" if enabled else "内置规则已停用：匹配的消息交给后面的规则或默认回复。",
               url_for("console.auto_replies"))


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


# --- menu editor -----------------------------------------------------------------------------
def _slots(menu: dict) -> list[dict]:
    """The editor's fixed grid (3 top-level buttons, 5 sub-buttons each) filled from a menu."""
    out = []
    buttons = (menu or {}).get("button") or []
    for i in range(TOP_SLOTS):
        b = buttons[i] if i < len(buttons) else {}
        subs = b.get("sub_button") or []
        out.append({"name": b.get("name", ""), "type": b.get("type", "click" if not subs else ""), "value": b.get("key") or b.get("url") or "",
                    "appid": b.get("appid", ""), "pagepath": b.get("pagepath", ""),
                    "subs": [{"name": s.get("name", ""), "type": s.get("type", "click"), "value": s.get("key") or s.get("url") or "",
                              "appid": s.get("appid", ""), "pagepath": s.get("pagepath", "")}
                             for s in (subs[j] if j < len(subs) else {} for j in range(SUB_SLOTS))]})
    return out


def _action(prefix: str, name: str) -> dict:
    f = request.form
    kind = f.get(f"{prefix}_type") or "click"
    value = (f.get(f"{prefix}_value") or "").strip()
    out = {"name": name, "type": kind}
    if kind in menus.KEY_TYPES:
        out["key"] = value
    else:
        out["url"] = value
    if kind == "miniprogram":
        out.update(appid=(f.get(f"{prefix}_appid") or "").strip(), pagepath=(f.get(f"{prefix}_pagepath") or "").strip())
    return out


def _menu_from_form() -> dict:
    f = request.form
    buttons = []
    for i in range(TOP_SLOTS):
        name = (f.get(f"b{i}_name") or "").strip()
        subs = [_action(f"b{i}s{j}", (f.get(f"b{i}s{j}_name") or "").strip()) for j in range(SUB_SLOTS)
                if (f.get(f"b{i}s{j}_name") or "").strip()]
        if not name and not subs:
            continue
        buttons.append({"name": name, "sub_button": subs} if subs else _action(f"b{i}", name))
    return {"button": buttons}


@bp.get("/wechat/menu")
@console_login_required
def menu_editor():
    if not g.actor.can("wechat_account", "view"):
        return denied(PermissionDenied("没有查看公众号设置的权限。"))
    appid = wechat_appid()
    menu, from_console = account.current_menu(appid)
    restore = request.args.get("restore")
    if restore:
        row = next((v for v in menus.history(appid, 50) if str(v.id) == restore), None)
        if row is not None:
            menu = row.menu
            flash(f"已载入 {row.pushed_at:%Y-%m-%d} 推送的版本；检查后点“推送到微信”即可恢复。", "ok")
    return _menu_page(menu, from_console)


def _menu_page(menu: dict, from_console: bool, status: int = 200):
    from crm_core.org.organization import employee_names

    appid = wechat_appid()
    rows = menus.history(appid)
    names = employee_names([v.pushed_by_id for v in rows if v.pushed_by_id])
    return render_template("console/menu_editor.html", slots=_slots(menu), preview=menu, types=menus.TYPES,
                           key_types=menus.KEY_TYPES, from_console=from_console,
                           history=[menus.version_dict(v, names) for v in rows],
                           can_edit=g.actor.can("wechat_account", "edit")), status


@bp.post("/wechat/menu")
@console_login_required
def menu_push():
    appid = wechat_appid()
    menu = _menu_from_form()
    try:
        if request.form.get("op") == "preview":
            menus.validate(menu)
            flash("预览已更新（尚未推送）。", "ok")
            return _menu_page(menu, False)
        account.push_menu(g.actor, appid, menu)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _menu_page(menu, False, status=exc.status)
    flash("菜单已推送到微信：用户重新进入公众号后可见（微信端可能有几分钟缓存）。", "ok")
    return redirect(url_for("console.menu_editor"))


# --- follower tags -----------------------------------------------------------------------------
@bp.post("/followers/tags")
@console_login_required
def follower_tag_create():
    return act(lambda: account.create_tag(g.actor, wechat_appid(), request.form.get("name", "")), "标签已创建（微信中同步创建）。",
               url_for("console.followers"))


@bp.post("/followers/tags/<int:tag_id>/delete")
@console_login_required
def follower_tag_delete(tag_id: int):
    return act(lambda: account.delete_tag(g.actor, wechat_appid(), tag_id), "标签已删除。", url_for("console.followers"))


@bp.post("/followers/tagging")
@console_login_required
def follower_tagging():
    raw = request.form.get("tag_id", "")
    tag_id = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) < 10 else -1
    remove = request.form.get("op") == "untag"
    holder = {}

    def run():
        holder["n"] = account.tag_followers(g.actor, wechat_appid(), tag_id, request.form.getlist("openid"), remove=remove)

    return act(run, lambda: f"已为 {holder['n']} 位粉丝{'取消' if remove else '打上'}标签。",
               url_for("console.followers", tag_id=request.args.get("tag_id") or None))
