"""Declarative routing of inbound messages and events to handlers that feature packages
register at app creation. The gateway imports none of them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from crm_core.wechat import autoreply


@dataclass
class Inbound:
    """What a handler receives: the parsed wechatpy message and a few conveniences."""

    message: Any
    appid: str
    openid: str
    msg_type: str
    event: str | None
    event_key: str | None
    scene: str | None  # QR scene of subscribe/SCAN events, without "qrscene_"
    content: str | None
    follower_id: int | None = None
    first_follow: bool = False


@dataclass
class Rule:
    handler: Callable[[Inbound], Any]
    name: str
    msg_type: str | None = None
    event: str | None = None
    key_prefix: str | None = None
    key_pattern: re.Pattern | None = None
    text_pattern: re.Pattern | None = None
    priority: int = 100
    label: str | None = None  # what the console's rule list calls it (a switchable built-in rule)
    limit: int | None = None  # match only the first characters of a message (user-written patterns)

    def matches(self, ib: Inbound) -> bool:
        if self.msg_type and ib.msg_type != self.msg_type:
            return False
        if self.event and (ib.event or "") != self.event:
            return False
        key = ib.scene if ib.scene is not None else ib.event_key
        if self.key_prefix is not None and not (key or "").startswith(self.key_prefix):
            return False
        if self.key_pattern is not None and not self.key_pattern.search(key or ""):
            return False
        if self.text_pattern is not None and not self.text_pattern.search((ib.content or "")[:self.limit]):
            return False
        return True


@dataclass
class Router:
    rules: list[Rule] = field(default_factory=list)
    scene_prefixes: dict[str, str] = field(default_factory=dict)  # prefix -> owner name
    default_text: str = "您好，我们已收到您的消息。回复“报修”可在线报修，或点击下方菜单使用自助服务。"
    # the welcome of a follow that no feature handles (features add a "subscribe" rule to personalise it)
    welcome_text: str = "欢迎关注！点击下方菜单使用在线报修、服务进度和我的产品。"
    # a follower scanned a code that nothing handles (unknown or expired scene): still a greeting
    scan_text: str = "欢迎回来！点击下方菜单使用在线报修、服务进度和我的产品。"
    _merged: list[Rule] = field(default_factory=list, repr=False)
    _merged_for: Any = field(default=None, repr=False)
    _merged_src: Any = field(default=None, repr=False)
    _merged_appid: str | None = field(default=None, repr=False)

    def add(self, handler: Callable[[Inbound], Any], *, name: str | None = None, msg_type: str | None = None,
            event: str | None = None, key_prefix: str | None = None, key_pattern: str | None = None,
            text_pattern: str | None = None, priority: int = 100, label: str | None = None) -> None:
        """Register a handler. Events are lower-case (``subscribe``, ``scan``, ``click``...). A
        ``label`` lists the rule in the console's 自动回复, where it can be switched off."""
        rule = Rule(handler=handler, name=name or getattr(handler, "__name__", "handler"), msg_type=msg_type,
                    event=event.lower() if event else None, key_prefix=key_prefix,
                    key_pattern=re.compile(key_pattern) if key_pattern else None,
                    text_pattern=re.compile(text_pattern) if text_pattern else None, priority=priority, label=label)
        self.rules = [r for r in self.rules if r.name != rule.name] + [rule]
        self.rules.sort(key=lambda r: r.priority)
        self._merged_for = None

    def switchable(self) -> list[Rule]:
        """Feature packages' rules the account's editors may switch off (those with a label)."""
        return [r for r in self.rules if r.label]

    def _effective(self, appid: str) -> list[Rule]:
        """The code's rules less those switched off, with the account's own keyword rules and
        welcome (crm_core.wechat.autoreply) merged in by priority; rebuilt when they change."""
        snap = autoreply.active(appid)
        if self._merged_for is snap and self._merged_src is self.rules and self._merged_appid == appid:
            return self._merged
        merged = [r for r in self.rules if r.name not in snap.disabled]
        for priority, rid, pattern, reply in snap.keywords:
            merged.append(Rule(handler=_fixed(reply), name=f"auto_reply:{rid}", msg_type="text", text_pattern=pattern,
                               priority=priority, limit=autoreply.MAX_MATCHED_CHARS))
        if snap.welcome is not None:
            merged.append(Rule(handler=_fixed(snap.welcome[1]), name="auto_reply:subscribe", msg_type="event",
                               event="subscribe", priority=snap.welcome[0]))
        merged.sort(key=lambda r: r.priority)  # stable: at equal priority the code's rule first
        self._merged, self._merged_for, self._merged_src, self._merged_appid = merged, snap, self.rules, appid
        return merged

    def default_for(self, appid: str) -> str:
        """The answer to a message nothing matches: the account's own default reply, else the built-in one
        (from the snapshot :meth:`resolve` just used, when it is this account's)."""
        snap = self._merged_for
        if snap is None or self._merged_appid != appid:
            snap = autoreply.active(appid)
        return snap.default or self.default_text

    def claim_scene_prefix(self, prefix: str, handler: Callable[[Inbound], Any], owner: str) -> None:
        """A feature package owns QR scenes starting with ``prefix``: subscribe-by-scan and
        SCAN events for them go to ``handler``."""
        for existing, who in self.scene_prefixes.items():
            if who != owner and (prefix.startswith(existing) or existing.startswith(prefix)):
                raise ValueError(f"scene prefix {prefix!r} overlaps {existing!r} owned by {who}")
        self.scene_prefixes[prefix] = owner
        self.add(handler, name=f"scene:{prefix}:subscribe", msg_type="event", event="subscribe", key_prefix=prefix, priority=10)
        self.add(handler, name=f"scene:{prefix}:scan", msg_type="event", event="scan", key_prefix=prefix, priority=10)

    def resolve(self, ib: Inbound, after: Rule | None = None) -> Rule | None:
        """The first rule that matches; with ``after``, the next one after that rule (a scene
        handler that does not know the scene passes the follow on to the welcome)."""
        rules = self._effective(ib.appid)
        if after is not None and after in rules:
            rules = rules[rules.index(after) + 1:]
        for rule in rules:
            if rule.matches(ib):
                return rule
        return None


def _fixed(text: str) -> Callable[[Inbound], str]:
    def answer(ib: Inbound) -> str:
        return text
    return answer


router = Router()
