"""Parametric QR codes: limits checked before WeChat is called; scenes owned by prefixes."""
from __future__ import annotations

from crm_core.errors import ValidationFailed
from wxapp.official_account.router import router

MAX_EXPIRE = 2_592_000  # 30 days
MAX_PERMANENT_ID = 100_000


def validate(scene: str | int, permanent: bool, expire_seconds: int | None) -> dict:
    """The qrcode/create body for a scene, or 422 naming the broken limit."""
    errors = {}
    if isinstance(scene, int) or (isinstance(scene, str) and scene.isdigit() and not permanent):
        scene_id = int(scene)
        if permanent and not 1 <= scene_id <= MAX_PERMANENT_ID:
            errors["scene"] = f"permanent scene ids are 1–{MAX_PERMANENT_ID}"
        if not permanent and not (0 < scene_id < 2 ** 32):
            errors["scene"] = "temporary scene ids are non-zero 32-bit integers"
        body = {"action_name": "QR_LIMIT_SCENE" if permanent else "QR_SCENE", "action_info": {"scene": {"scene_id": scene_id}}}
    else:
        scene = str(scene)
        if not 1 <= len(scene) <= 64:
            errors["scene"] = "scene_str is 1–64 characters"
        if not any(scene.startswith(p) for p in router.scene_prefixes):
            errors["scene"] = errors.get("scene") or "no feature owns this scene prefix"
        body = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": scene}}}
    if not permanent:
        if expire_seconds is None:
            expire_seconds = MAX_EXPIRE
        if not 60 <= expire_seconds <= MAX_EXPIRE:
            errors["expire_seconds"] = f"60–{MAX_EXPIRE} seconds (30 days)"
        body["expire_seconds"] = expire_seconds
    if errors:
        raise ValidationFailed("二维码参数超出微信限制。", fields=errors)
    return body


def create(scene: str | int, permanent: bool = False, expire_seconds: int | None = None) -> dict:
    """Create the code through WeChat; returns ticket, url, expire_seconds and the image URL."""
    from wxapp.official_account.client import get_client

    body = validate(scene, permanent, expire_seconds)
    client = get_client()
    res = client.qrcode.create(body)
    ticket = res["ticket"]
    return {"ticket": ticket, "url": res.get("url"), "expire_seconds": res.get("expire_seconds"),
            "image_url": image_url(ticket), "scene": str(scene), "permanent": permanent}


def image_url(ticket: str) -> str:
    """Where the code's picture is: WeChat's showqrcode, or the sandbox's when the API is the sandbox."""
    from urllib.parse import quote

    from flask import current_app

    api_base = current_app.config["WECHAT_API_BASE"].rstrip("/")
    base = f"{api_base}/cgi-bin/showqrcode" if "/sandbox/" in api_base + "/" else "https://mp.weixin.qq.com/cgi-bin/showqrcode"
    return f"{base}?ticket={quote(ticket)}"
