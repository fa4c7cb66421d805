"""Security headers on every answer (docs/security.md).

A Content-Security-Policy with a fresh nonce per response: pages' own inline scripts carry
``nonce="{{ csp_nonce() }}"``; scripts load from this site and from WeChat's JS-SDK host
only; no plugins; forms post here only. The console cannot be framed at all
(``frame-ancestors 'none'`` plus ``X-Frame-Options: DENY``); other pages only by this site.
``nosniff``, a referrer policy that never sends share tokens in URLs to other sites, and HSTS
when ``WXCRM_HSTS`` is on (the default in production).

The material page's WSGI lane renders outside Flask's request hooks, so it calls
:func:`apply` itself; :func:`apply` leaves headers a response already has.
"""
from __future__ import annotations

import secrets

from flask import Flask, g, request

WECHAT_JSSDK = "https://res.wx.qq.com"


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def csp_nonce() -> str:
    """The nonce of the current response (made on first use)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = new_nonce()
    return nonce


def policy(nonce: str | None, path: str) -> str:
    frame = "'none'" if path.startswith("/console") else "'self'"
    script = f"'self' {WECHAT_JSSDK}" + (f" 'nonce-{nonce}'" if nonce else "")
    return ("default-src 'self'; "
            f"script-src {script}; "
            "style-src 'self' 'unsafe-inline'; "  # style attributes in templates; styles cannot run code
            # wx.chooseImage's localIds are shown as <img src>: wxlocalresource:// (iOS) and weixin://resourceid/ (Android)
            # apis.map.qq.com: 在线客服's static map of a location a follower shared (with WXCRM_MAP_KEY)
            "img-src 'self' data: blob: wxlocalresource: weixin: https://apis.map.qq.com; "
            "connect-src 'self'; "
            "font-src 'self' data:; "
            "object-src 'none'; "
            "base-uri 'self'; "
            "form-action 'self'; "
            f"frame-ancestors {frame}")


def apply(response, nonce: str | None, path: str, hsts: bool = False):
    """Add the headers to ``response`` (keeping any it already carries)."""
    h = response.headers
    h.setdefault("Content-Security-Policy", policy(nonce, path))
    h.setdefault("X-Frame-Options", "DENY" if path.startswith("/console") else "SAMEORIGIN")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if hsts:
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security_headers(response):
        return apply(response, g.get("csp_nonce"), request.path, app.config.get("HSTS", False))
