"""The official account's custom menu (自定义菜单): WeChat's limits checked before a push, and the
history of pushed menus. The push itself is the gateway's (``wxapp.official_account.menus``).

WeChat's rules (公众平台 自定义菜单 创建接口): 1-3 top-level buttons, each with 1-5 sub-buttons or an
action of its own; a top-level name up to 16 bytes, a sub-button's up to 60 bytes — and, as
公众平台's own editor has it, 4 Chinese characters or 8 letters (8 or 16 for a sub-button), beyond
which WeChat cuts the name to "..." on the phone; a key up to 128 bytes; a URL up to 1,024 bytes; types click / view / scancode_push /
scancode_waitmsg / pic_sysphoto / pic_photo_or_album / pic_weixin / location_select /
miniprogram (which also needs the mini program's appid and page, and a URL for old clients).
"""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import ValidationFailed
from crm_core.wechat.models import MenuVersion

TYPES = {"click": "点击推事件", "view": "跳转网页", "scancode_push": "扫码推事件", "scancode_waitmsg": "扫码带提示",
         "pic_sysphoto": "系统拍照发图", "pic_photo_or_album": "拍照或相册发图", "pic_weixin": "微信相册发图",
         "location_select": "发送位置", "miniprogram": "小程序"}
KEY_TYPES = {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select"}
_URL = re.compile(r"^https?://[^\s]+$")


def width(name: str) -> int:
    """Display width as 公众平台 counts it: a Chinese character (or any non-ASCII one) 2, a letter 1."""
    return sum(1 if ord(ch) < 128 else 2 for ch in name)


def _fail(message: str, where: str) -> None:
    raise ValidationFailed(message, fields={where: "invalid"})


def _action(b: dict, where: str, label: str) -> dict:
    kind = b.get("type")
    if kind not in TYPES:
        _fail(f"{label}请选择菜单类型（点击、跳转网页、扫码、发图、发送位置或小程序）。", f"{where}.type")
    out = {"type": kind, "name": b["name"]}
    if kind in KEY_TYPES:
        key = str(b.get("key") or "").strip()
        if not key:
            _fail(f"{label}需要填写事件 KEY（菜单被点击时推送给服务器的值）。", f"{where}.key")
        if len(key.encode()) > 128:
            _fail(f"{label}的 KEY 最多 128 字节。", f"{where}.key")
        out["key"] = key
        return out
    url = str(b.get("url") or "").strip()
    if not _URL.match(url):
        _fail(f"{label}的网页地址需以 http:// 或 https:// 开头。", f"{where}.url")
    if len(url.encode()) > 1024:
        _fail(f"{label}的网页地址最多 1024 字节。", f"{where}.url")
    out["url"] = url
    if kind == "miniprogram":
        appid, page = str(b.get("appid") or "").strip(), str(b.get("pagepath") or "").strip()
        if not re.match(r"^wx[0-9a-f]{16}$", appid):
            _fail(f"{label}需要小程序的 AppID（wx 开头的 18 位）。", f"{where}.appid")
        if not page:
            _fail(f"{label}需要小程序的页面路径。", f"{where}.pagepath")
        out.update(appid=appid, pagepath=page)
    return out


def validate(menu) -> dict:
    """The menu as WeChat takes it, or a ValidationFailed naming the first broken rule (in Chinese,
    with the field's path such as ``button[1].sub_button[0].name``)."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not buttons:
        _fail("菜单至少需要一个一级菜单。", "button")
    if len(buttons) > 3:
        _fail("一级菜单最多 3 个。", "button")
    out = []
    for i, b in enumerate(buttons):
        where = f"button[{i}]"
        if not isinstance(b, dict):
            _fail(f"第 {i + 1} 个一级菜单格式不对。", where)
        name = str(b.get("name") or "").strip()
        if not name:
            _fail(f"第 {i + 1} 个一级菜单需要名称。", f"{where}.name")
        if width(name) > 8 or len(name.encode()) > 16:
            _fail(f"一级菜单「{name}」的名称太长：最多 4 个汉字或 8 个字母（多出的部分微信显示为“...”）。", f"{where}.name")
        subs = b.get("sub_button")
        if subs:
            if not isinstance(subs, list):
                _fail(f"一级菜单「{name}」的子菜单格式不对。", f"{where}.sub_button")
            if len(subs) > 5:
                _fail(f"一级菜单「{name}」下最多 5 个子菜单。", f"{where}.sub_button")
            items = []
            for j, sb in enumerate(subs):
                sw = f"{where}.sub_button[{j}]"
                if not isinstance(sb, dict):
                    _fail(f"「{name}」的第 {j + 1} 个子菜单格式不对。", sw)
                sname = str(sb.get("name") or "").strip()
                if not sname:
                    _fail(f"「{name}」的第 {j + 1} 个子菜单需要名称。", f"{sw}.name")
                if width(sname) > 16 or len(sname.encode()) > 60:
                    _fail(f"子菜单「{sname[:12]}」的名称太长：最多 8 个汉字或 16 个字母。", f"{sw}.name")
                items.append(_action({**sb, "name": sname}, sw, f"子菜单「{sname}」"))
            out.append({"name": name, "sub_button": items})
        else:
            out.append(_action({**b, "name": name}, where, f"一级菜单「{name}」"))
    return {"button": out}


def record(appid: str, menu: dict, *, actor=None, errcode: int = 0, error: str | None = None) -> MenuVersion:
    row = MenuVersion(appid=appid, menu=menu, errcode=errcode, error=(error or None) and error[:300], pushed_at=utcnow(),
                      pushed_by_id=getattr(actor, "employee_id", None))
    db.session.add(row)
    db.session.flush()
    return row


def history(appid: str, limit: int = 20) -> list[MenuVersion]:
    return list(db.session.scalars(select(MenuVersion).where(MenuVersion.appid == appid)
                                   .order_by(MenuVersion.id.desc()).limit(limit)))


def current(appid: str) -> dict | None:
    """The menu WeChat last took (None: never pushed from the console)."""
    row = db.session.scalars(select(MenuVersion).where(MenuVersion.appid == appid, MenuVersion.errcode == 0)
                             .order_by(MenuVersion.id.desc())).first()
    return row.menu if row is not None else None


def version_dict(v: MenuVersion, names: dict | None = None) -> dict:
    return {"id": v.id, "menu": v.menu, "errcode": v.errcode, "error": v.error, "pushed_at": v.pushed_at.isoformat() + "Z",
            "pushed_by": (names or {}).get(v.pushed_by_id)}
