"""Running the official account without editing files: auto-reply rules (crm_core.wechat.autoreply)
and the custom menu (crm_core.wechat.menus) — the API here, the console pages in
``wxapp.console.account``, the push to WeChat in :func:`push_menu`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from flask import current_app, g
from pydantic import Field

from crm_core.db import begin_savepoint
from crm_core.errors import DomainError, ValidationFailed
from crm_core.wechat import autoreply, menus
from wxapp.api import bp
from wxapp.config import wechat_appid
from wxapp.official_account.router import Inbound, router
from wxapp.openapi import Model, api


def default_menu() -> dict:
    """The repository's menu.json, with the site's address filled in (used until one is pushed)."""
    text = (Path(__file__).parent / "menu.json").read_text(encoding="utf-8")
    return json.loads(text.replace("{PUBLIC_BASE_URL}", current_app.config["PUBLIC_BASE_URL"]))


def current_menu(appid: str) -> tuple[dict, bool]:
    """The menu in force and whether it came from the console (else the repository default)."""
    found = menus.current(appid)
    return (found, True) if found is not None else (default_menu(), False)


class WeChatRefused(DomainError):
    status = 422
    code = "wechat_refused"


def call_wechat(call, what: str, undone: str, *, refused=None, fields: dict | None = None):
    """A call to WeChat made from a person's action, with its failure worded for them: WeChat's
    refusal (``refused(errcode, reason)`` is told first, e.g. to keep it in a history), no proper
    answer, or no connection. Commits first: no transaction is held open across the call."""
    from wechatpy.exceptions import WeChatClientException

    from crm_core.db import db
    from wxapp.official_account import errcodes

    db.session.commit()
    try:
        return call()
    except WeChatClientException as exc:
        if exc.errcode is None:  # no answer WeChat would give (an HTTP error on the way)
            raise WeChatRefused(f"微信服务器暂时没有正常答复，{undone}，请稍后重试。") from None
        entry = errcodes.ERRCODES.get(exc.errcode)
        reason = f"{exc.errcode} {entry.meaning if entry else exc.errmsg}"
        if refused is not None:
            refused(int(exc.errcode), reason)
            db.session.commit()
        raise WeChatRefused(f"微信拒绝了{what}：{reason}", fields=fields) from None
    except OSError as exc:  # WeChat unreachable
        raise WeChatRefused(f"无法连接微信服务器，{undone}：{type(exc).__name__}") from None


def push_menu(actor, appid: str, menu: dict):
    """Check WeChat's limits, push, and keep the attempt in the history (refusals too)."""
    from wxapp.official_account.client import get_client

    actor.require("wechat_account", "edit")
    clean = menus.validate(menu)
    call_wechat(lambda: get_client().menu.create(clean), "这个菜单", "菜单未推送", fields={"button": "refused"},
                refused=lambda code, reason: menus.record(appid, clean, actor=actor, errcode=code, error=reason))
    return menus.record(appid, clean, actor=actor)


def builtin_rules(appid: str) -> list[dict]:
    switches = autoreply.builtin_switches(appid)
    return [{"name": r.name, "label": r.label, "priority": r.priority, "enabled": switches.get(r.name, True)}
            for r in router.switchable()]


def try_reply(appid: str, text: str) -> dict:
    """The test box: which rule would answer this message, and with what (nothing is sent or
    stored: a built-in handler runs in a savepoint that is rolled back)."""
    from crm_core.db import db

    ib = Inbound(message=None, appid=appid, openid="test-box", msg_type="text", event=None, event_key=None, scene=None,
                 content=text)
    rule = router.resolve(ib)
    if rule is None:
        return {"rule": "default", "label": "默认回复", "reply": router.default_for(appid)}
    if rule.name.startswith("auto_reply:"):
        return {"rule": rule.name, "label": "自定义关键词回复", "reply": rule.handler(ib)}
    label = f"内置：{rule.label or rule.name}"
    if rule.name == "wechat.ask_for_agent":  # it queues the conversation: described, not run
        return {"rule": rule.name, "label": label, "reply": "（转入在线客服排队，并回复：已为您转接人工客服…）"}
    reply = None
    try:
        savepoint = begin_savepoint()
        reply = rule.handler(ib)
        savepoint.rollback()
    except Exception:
        db.session.rollback()
    return {"rule": rule.name, "label": label, "reply": reply if isinstance(reply, str) else None}


def create_tag(actor, appid: str, name: str):
    from crm_core.wechat import tags
    from wxapp.official_account.client import get_client

    actor.require("follower", "edit")
    name = tags.check_name(appid, name)
    made = call_wechat(lambda: get_client().tag.create(name), "创建标签", "创建标签未完成")
    return tags.add(appid, name, int(made["id"]))


def delete_tag(actor, appid: str, tag_id: int) -> None:
    from crm_core.wechat import tags
    from wxapp.official_account.client import get_client

    actor.require("follower", "edit")
    tag = tags.get(appid, tag_id)
    if tag.wechat_id is not None:
        call_wechat(lambda: get_client().tag.delete(tag.wechat_id), "删除标签", "删除标签未完成")
    tags.remove_tag(tags.get(appid, tag_id))


def tag_followers(actor, appid: str, tag_id: int, openids: list[str], remove: bool = False) -> int:
    """Tag (or untag) followers, 50 per call to WeChat as it allows; each batch WeChat took is kept."""
    from crm_core.wechat import tags
    from wxapp.official_account.client import get_client

    actor.require("follower", "edit")
    tag = tags.get(appid, tag_id)
    chosen = tags.followers_for(appid, openids, actor.org_id)
    if not remove:
        tags.check_room(tag, chosen)
    wechat_id = tag.wechat_id
    done = 0
    for start in range(0, len(chosen), tags.BATCH):
        batch = chosen[start:start + tags.BATCH]
        ids = [f.openid for f in batch]
        call = (lambda: get_client().tag.untag_user(wechat_id, ids)) if remove else (lambda: get_client().tag.tag_user(wechat_id, ids))
        call_wechat(call, "取消标签" if remove else "打标签", "取消标签未完成" if remove else "打标签未完成")
        tags.link(tag, batch, remove=remove)  # (reloaded after the commit before the call)
        done += len(batch)
    return done


# --- API ---------------------------------------------------------------------------------------
class AutoReplyIn(Model):
    kind: Literal["subscribe", "keyword", "default"]
    match: Literal["exact", "contains", "regex"] | None = Field(default=None, description="keyword rules")
    pattern: str | None = Field(default=None, max_length=200, description="the keyword or regex (keyword rules)")
    reply: str = Field(min_length=1, max_length=600)
    priority: int = Field(default=90, ge=1, le=999, description="lower answers first; built-in rules sit at 10-150")
    enabled: bool = True


class AutoReplyOut(Model):
    id: int
    kind: str
    kind_label: str
    match: str | None
    match_label: str
    pattern: str | None
    reply: str | None
    priority: int
    enabled: bool
    updated_at: str | None


class BuiltinRuleOut(Model):
    name: str
    label: str | None
    priority: int
    enabled: bool


class AutoReplies(Model):
    items: list[AutoReplyOut]
    builtin: list[BuiltinRuleOut]


@api.operation(bp, "/wechat/auto-replies", "GET", summary="Auto-reply rules and the built-in rules' switches",
               tags=("wechat",), response=AutoReplies)
def list_auto_replies():
    g.actor.require("wechat_account", "view")
    appid = wechat_appid()
    return {"items": [autoreply.rule_dict(r) for r in autoreply.list_rules(appid)], "builtin": builtin_rules(appid)}


@api.operation(bp, "/wechat/auto-replies", "POST", summary="Add a rule (the welcome and the default reply exist once: saving changes them)",
               tags=("wechat",), body=AutoReplyIn, response=AutoReplyOut, status=201)
def create_auto_reply(body: AutoReplyIn):
    return autoreply.rule_dict(autoreply.save_rule(g.actor, wechat_appid(), body.model_dump()))


@api.operation(bp, "/wechat/auto-replies/<int:rule_id>", "PUT", summary="Change a rule", tags=("wechat",),
               body=AutoReplyIn, response=AutoReplyOut)
def update_auto_reply(rule_id: int, body: AutoReplyIn):
    return autoreply.rule_dict(autoreply.save_rule(g.actor, wechat_appid(), body.model_dump(), rule_id))


@api.operation(bp, "/wechat/auto-replies/<int:rule_id>", "DELETE", summary="Delete a rule", tags=("wechat",), status=204)
def delete_auto_reply(rule_id: int):
    autoreply.delete_rule(g.actor, wechat_appid(), rule_id)
    return None


class BuiltinSwitchIn(Model):
    enabled: bool


@api.operation(bp, "/wechat/auto-replies/builtin/<name>", "PUT", summary="Switch a built-in rule on or off",
               tags=("wechat",), body=BuiltinSwitchIn, response=BuiltinRuleOut)
def switch_builtin_rule(name: str, body: BuiltinSwitchIn):
    appid = wechat_appid()
    autoreply.switch_builtin(g.actor, appid, name, body.enabled, {r.name for r in router.switchable()})
    return next(r for r in builtin_rules(appid) if r["name"] == name)


class TryIn(Model):
    text: str = Field(min_length=1, max_length=600)


class TryOut(Model):
    rule: str
    label: str
    reply: str | None


@api.operation(bp, "/wechat/auto-replies/try", "POST", summary="Which rule would answer a message, and how (nothing is sent)",
               tags=("wechat",), body=TryIn, response=TryOut)
def try_auto_reply(body: TryIn):
    g.actor.require("wechat_account", "view")
    return try_reply(wechat_appid(), body.text)


class MenuIn(Model):
    button: list[dict] = Field(description="WeChat's menu JSON: 1-3 buttons, each with a type or 1-5 sub_button",
                               max_length=10)


class MenuVersionOut(Model):
    id: int
    menu: dict
    errcode: int
    error: str | None
    pushed_at: str
    pushed_by: str | None


class MenuOut(Model):
    menu: dict
    from_console: bool = Field(description="false: the repository's menu.json (nothing pushed from the console yet)")
    history: list[MenuVersionOut]


def _history(appid: str) -> list[dict]:
    from crm_core.org.organization import employee_names

    rows = menus.history(appid)
    names = employee_names([v.pushed_by_id for v in rows if v.pushed_by_id])
    return [menus.version_dict(v, names) for v in rows]


@api.operation(bp, "/wechat/menu", "GET", summary="The custom menu in force and the history of pushes", tags=("wechat",),
               response=MenuOut)
def get_menu():
    g.actor.require("wechat_account", "view")
    appid = wechat_appid()
    menu, from_console = current_menu(appid)
    return {"menu": menu, "from_console": from_console, "history": _history(appid)}


@api.operation(bp, "/wechat/menu", "POST", summary="Check WeChat's limits and push the menu", tags=("wechat",),
               body=MenuIn, response=MenuVersionOut, status=201)
def push_menu_api(body: MenuIn):
    appid = wechat_appid()
    row = push_menu(g.actor, appid, body.model_dump())
    return menus.version_dict(row)


class TagIn(Model):
    name: str = Field(min_length=1, max_length=30)


class TagOut(Model):
    id: int
    name: str
    wechat_id: int | None
    count: int = 0


class Tags(Model):
    items: list[TagOut]


class TagMembersIn(Model):
    openids: list[str] = Field(min_length=1, max_length=1000)
    remove: bool = Field(default=False, description="true: take the tag off them")


class TagMembersOut(Model):
    changed: int


@api.operation(bp, "/wechat/tags", "GET", summary="Follower tags (粉丝标签) with how many carry each", tags=("wechat",),
               response=Tags)
def list_tags_api():
    from crm_core.wechat import tags

    g.actor.require("follower", "view")
    return {"items": tags.list_tags(wechat_appid())}


@api.operation(bp, "/wechat/tags", "POST", summary="Create a tag (in WeChat first)", tags=("wechat",), body=TagIn,
               response=TagOut, status=201)
def create_tag_api(body: TagIn):
    t = create_tag(g.actor, wechat_appid(), body.name)
    return {"id": t.id, "name": t.name, "wechat_id": t.wechat_id, "count": 0}


@api.operation(bp, "/wechat/tags/<int:tag_id>", "DELETE", summary="Delete a tag (in WeChat too)", tags=("wechat",), status=204)
def delete_tag_api(tag_id: int):
    delete_tag(g.actor, wechat_appid(), tag_id)
    return None


@api.operation(bp, "/wechat/tags/<int:tag_id>/members", "POST", summary="Tag or untag followers (50 per WeChat call)",
               tags=("wechat",), body=TagMembersIn, response=TagMembersOut)
def tag_members_api(tag_id: int, body: TagMembersIn):
    return {"changed": tag_followers(g.actor, wechat_appid(), tag_id, body.openids, remove=body.remove)}


__all__ = ["push_menu", "current_menu", "default_menu", "builtin_rules", "try_reply", "ValidationFailed"]
