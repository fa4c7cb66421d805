"""Declarative routing of inbound messages and events to handlers that feature packages
register at app creation. The gateway imports none of them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable


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
        if self.text_pattern is not None and not self.text_pattern.search(ib.content or ""):
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

    def add(self, handler: Callable[[Inbound], Any], *, name: str | None = None, msg_type: str | None = None,
            event: str | None = None, key_prefix: str | None = None, key_pattern: str | None = None,
            text_pattern: str | None = None, priority: int = 100) -> None:
        """Register a handler. Events are lower-case (``subscribe``, ``scan``, ``click``...)."""
        rule = Rule(handler=handler, name=name or getattr(handler, "__name__", "handler"), msg_type=msg_type,
                    event=event.lower() if event else None, key_prefix=key_prefix,
                    key_pattern=re.compile(key_pattern) if key_pattern else None,
                    text_pattern=re.compile(text_pattern) if text_pattern else None, priority=priority)
        self.rules = [r for r in self.rules if r.name != rule.name] + [rule]
        self.rules.sort(key=lambda r: r.priority)

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
        rules = self.rules[self.rules.index(after) + 1:] if after is not None and after in self.rules else self.rules
        for rule in rules:
            if rule.matches(ib):
                return rule
        return None


router = Router()
