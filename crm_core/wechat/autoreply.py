"""Auto-reply rules of the official account (自动回复), edited in the console.

Three kinds, as in WeChat's own 公众平台 and the service desks people compare with:

- ``subscribe``: the welcome a new follower gets (one; replaces the built-in welcome);
- ``keyword``: a reply when a message matches — ``exact`` (the whole message, spaces around
  ignored), ``contains`` or ``regex`` — lower ``priority`` first (built-in rules sit at 10-150:
  QR scenes 10, 人工客服 50, the self-service keywords 100, so a custom rule at the default 90 wins
  over 报修 but never over a scanned code or a request for an agent);
- ``default``: the answer to a message nothing else matches (one).

Feature packages' rules (报修, 进度, 签到, ...) stay in code; a ``builtin`` row switches one off
(or on again) by its name. The gateway's router reads :func:`active` — a snapshot cached per
process for :data:`CACHE_SECONDS`, refreshed at once in the process that edits, so a change
reaches every process within seconds; if the database is away the last snapshot stays.

A user's regex runs on every message: patterns are limited to 200 characters, nested
quantifiers (the classic catastrophic-backtracking shape) are refused, and matching sees at
most the first 600 characters of a message.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import NotFound, ValidationFailed
from crm_core.wechat.models import AutoReplyRule

log = logging.getLogger("wxcrm.wechat")
KINDS = {"subscribe": "关注后欢迎语", "keyword": "关键词回复", "default": "默认回复"}
MATCHES = {"exact": "完全匹配", "contains": "包含", "regex": "正则表达式"}
CACHE_SECONDS = 5.0
MAX_REPLY_CHARS = 600  # a passive text reply must stay under WeChat's 2,048 bytes
MAX_MATCHED_CHARS = 600
_NESTED = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")


@dataclass
class Snapshot:
    """What the router needs, compiled: keyword rules in priority order, the welcome and default
    texts (None: the built-in ones), the built-in rules switched off."""

    keywords: list[tuple[int, int, re.Pattern, str]] = field(default_factory=list)  # (priority, id, pattern, reply)
    welcome: tuple[int, str] | None = None  # (priority, text)
    default: str | None = None
    disabled: frozenset[str] = frozenset()
    loaded_at: float = 0.0


_cache: dict[str, Snapshot] = {}
_lock = threading.Lock()


def compile_pattern(match: str, pattern: str) -> re.Pattern:
    if match == "exact":
        return re.compile(r"^\s*" + re.escape(pattern.strip()) + r"\s*$", re.IGNORECASE)
    if match == "contains":
        return re.compile(re.escape(pattern.strip()), re.IGNORECASE)
    return re.compile(pattern)


def active(appid: str) -> Snapshot:
    """The account's rules as the router uses them (cached; never raises)."""
    now = time.monotonic()
    found = _cache.get(appid)
    if found is not None and now - found.loaded_at < CACHE_SECONDS:
        return found
    with _lock:
        found = _cache.get(appid)
        if found is not None and now - found.loaded_at < CACHE_SECONDS:
            return found
        try:
            snap = _load(appid)
        except Exception:  # the database is away: keep answering with what we knew
            log.warning("auto-reply rules could not be loaded; the last ones stay", exc_info=True)
            try:  # the caller's session must stay usable (the callback then holds the message)
                db.session.rollback()
            except Exception:
                pass
            snap = found or Snapshot()
        snap.loaded_at = now
        _cache[appid] = snap
        return snap


def invalidate(appid: str | None = None) -> None:
    with _lock:
        if appid is None:
            _cache.clear()
        else:
            _cache.pop(appid, None)


def _load(appid: str) -> Snapshot:
    rows = db.session.execute(select(AutoReplyRule.id, AutoReplyRule.kind, AutoReplyRule.match, AutoReplyRule.pattern,
                                     AutoReplyRule.reply, AutoReplyRule.priority, AutoReplyRule.enabled)
                              .where(AutoReplyRule.appid == appid)).all()
    snap = Snapshot()
    disabled = set()
    for rid, kind, match, pattern, reply, priority, enabled in rows:
        if kind == "builtin":
            if not enabled:
                disabled.add(pattern)
            continue
        if not enabled or not reply:
            continue
        if kind == "keyword":
            try:
                snap.keywords.append((priority, rid, compile_pattern(match, pattern or ""), reply))
            except re.error:
                continue
        elif kind == "subscribe":
            snap.welcome = (priority, reply)
        elif kind == "default":
            snap.default = reply
    snap.keywords.sort(key=lambda k: (k[0], k[1]))
    snap.disabled = frozenset(disabled)
    return snap


def matching_keyword(snap: Snapshot, text: str | None) -> tuple[int, int, str] | None:
    """The first keyword rule the text matches: (priority, rule id, reply)."""
    if not text or not snap.keywords:
        return None
    text = text[:MAX_MATCHED_CHARS]
    for priority, rid, pattern, reply in snap.keywords:
        if pattern.search(text):
            return priority, rid, reply
    return None


# --- editing -----------------------------------------------------------------------------------
def list_rules(appid: str) -> list[AutoReplyRule]:
    return list(db.session.scalars(select(AutoReplyRule).where(AutoReplyRule.appid == appid, AutoReplyRule.kind != "builtin")
                                   .order_by(AutoReplyRule.kind, AutoReplyRule.priority, AutoReplyRule.id)))


def builtin_switches(appid: str) -> dict[str, bool]:
    return {r.pattern: r.enabled for r in db.session.scalars(
        select(AutoReplyRule).where(AutoReplyRule.appid == appid, AutoReplyRule.kind == "builtin"))}


def _check(data: dict) -> dict:
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValidationFailed("请选择回复类型：关注后欢迎语、关键词回复或默认回复。", fields={"kind": "invalid"})
    reply = (data.get("reply") or "").strip()
    if not reply:
        raise ValidationFailed("请填写回复内容。", fields={"reply": "required"})
    if len(reply) > MAX_REPLY_CHARS or len(reply.encode()) > 2000:
        raise ValidationFailed(f"回复内容最多 {MAX_REPLY_CHARS} 个字（微信被动回复的长度限制）。", fields={"reply": "too_long"})
    out = {"kind": kind, "reply": reply, "enabled": bool(data.get("enabled", True)), "match": None, "pattern": None}
    try:
        out["priority"] = int(data.get("priority") if data.get("priority") not in (None, "") else 90)
    except (TypeError, ValueError):
        raise ValidationFailed("优先级请填 1 到 999 之间的整数。", fields={"priority": "invalid"}) from None
    if not 1 <= out["priority"] <= 999:
        raise ValidationFailed("优先级请填 1 到 999 之间的整数。", fields={"priority": "invalid"})
    if kind == "keyword":
        match, pattern = data.get("match") or "contains", (data.get("pattern") or "").strip()
        if match not in MATCHES:
            raise ValidationFailed("匹配方式只能是完全匹配、包含或正则表达式。", fields={"match": "invalid"})
        if not pattern:
            raise ValidationFailed("请填写关键词。", fields={"pattern": "required"})
        if len(pattern) > 200:
            raise ValidationFailed("关键词最多 200 个字符。", fields={"pattern": "too_long"})
        if match == "regex":
            if _NESTED.search(pattern):
                raise ValidationFailed("正则表达式不能嵌套重复（例如 (a+)+），这类写法可能让匹配极慢。", fields={"pattern": "unsafe"})
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValidationFailed(f"正则表达式有误：{exc}", fields={"pattern": "invalid"}) from None
        out.update(match=match, pattern=pattern)
    return out


def save_rule(actor, appid: str, data: dict, rule_id: int | None = None) -> AutoReplyRule:
    """Create or change a rule. The welcome and the default reply exist once each: saving a second
    one changes the first."""
    actor.require("wechat_account", "edit")
    values = _check(data)
    row = None
    if rule_id is not None:
        row = db.session.get(AutoReplyRule, rule_id)
        if row is None or row.appid != appid or row.kind == "builtin":
            raise NotFound("自动回复规则不存在。")
        if row.kind != values["kind"]:
            raise ValidationFailed("规则的类型不能修改；请新建一条。", fields={"kind": "immutable"})
    elif values["kind"] in ("subscribe", "default"):
        row = db.session.scalars(select(AutoReplyRule).where(AutoReplyRule.appid == appid,
                                                             AutoReplyRule.kind == values["kind"])).first()
    if row is None:
        row = AutoReplyRule(appid=appid, kind=values["kind"])
        db.session.add(row)
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_at, row.updated_by_id = utcnow(), actor.employee_id
    db.session.flush()
    invalidate(appid)
    return row


def delete_rule(actor, appid: str, rule_id: int) -> None:
    actor.require("wechat_account", "edit")
    row = db.session.get(AutoReplyRule, rule_id)
    if row is None or row.appid != appid or row.kind == "builtin":
        raise NotFound("自动回复规则不存在。")
    db.session.delete(row)
    db.session.flush()
    invalidate(appid)


def switch_builtin(actor, appid: str, name: str, enabled: bool, known: set[str]) -> None:
    """Turn a feature package's rule off or on (``known``: the router's rule names)."""
    actor.require("wechat_account", "edit")
    if name not in known:
        raise NotFound("没有这条内置规则。")
    row = db.session.scalars(select(AutoReplyRule).where(AutoReplyRule.appid == appid, AutoReplyRule.kind == "builtin",
                                                         AutoReplyRule.pattern == name)).first()
    if row is None:
        row = AutoReplyRule(appid=appid, kind="builtin", pattern=name, priority=0)
        db.session.add(row)
    row.enabled, row.updated_at, row.updated_by_id = bool(enabled), utcnow(), actor.employee_id
    db.session.flush()
    invalidate(appid)


def rule_dict(r: AutoReplyRule) -> dict:
    return {"id": r.id, "kind": r.kind, "kind_label": KINDS.get(r.kind, r.kind), "match": r.match,
            "match_label": MATCHES.get(r.match or "", ""), "pattern": r.pattern, "reply": r.reply, "priority": r.priority,
            "enabled": r.enabled, "updated_at": r.updated_at.isoformat() + "Z" if r.updated_at else None}
