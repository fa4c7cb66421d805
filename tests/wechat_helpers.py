"""Helpers to drive /wechat/callback as the WeChat server would."""
from __future__ import annotations

from wxapp.official_account.simulate import message_xml, read_reply, signed_request

TOKEN = "testtoken"
APPID = "wxtestappid000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def post(client, xml: str, *, aes: bool = False, appid: str = APPID, token: str = TOKEN, timestamp: int | None = None,
         tamper: dict | None = None, raw_body: bytes | None = None):
    tell_the_sandbox(client.application, xml)
    if timestamp is None:  # signed "now" by the product's clock (tests move it with crm_core.clock.travel)
        from datetime import datetime

        from crm_core.clock import utcnow

        timestamp = int((utcnow() - datetime(1970, 1, 1)).total_seconds())
    query, body = signed_request(xml, token, aes_key=AES_KEY if aes else None, appid=appid, timestamp=timestamp)
    if tamper:
        from urllib.parse import parse_qsl, urlencode

        params = dict(parse_qsl(query))
        params.update(tamper)
        query = urlencode(params)
    return client.post(f"/wechat/callback?{query}", data=raw_body if raw_body is not None else body, content_type="text/xml")


def tell_the_sandbox(app, xml: str) -> None:
    """A test posting a callback stands in for WeChat, so the sandbox learns what the user did
    (who follows, which action opened which reply quota), as WeChat knows it."""
    if not app.config.get("DEV_ROUTES"):
        return
    from crm_core.db import db
    from wxapp.official_account.sandbox import saw

    with app.app_context():
        try:
            saw(xml)
        finally:
            db.session.remove()


def settle() -> None:
    """Write what this process's callback spool holds (rows, interaction times, locations):
    its thread does so within 200 ms; a test acting on them at once writes them first."""
    from wxapp.official_account import fastpath

    fastpath.flush_local()


def reply_text(resp, aes: bool = False) -> str | None:
    return read_reply(resp.get_data(), TOKEN, AES_KEY if aes else None, APPID)


__all__ = ["post", "settle", "reply_text", "message_xml", "TOKEN", "APPID", "AES_KEY"]
