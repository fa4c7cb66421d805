"""The ERP webhook sender (outbox channel ``erp_webhook``; events from :mod:`crm_core.org.integration`).

Each message is POSTed as JSON to the organisation's webhook URL with

- ``X-WXCRM-Event``: the event type (``contract.approved``…), ``X-WXCRM-Delivery``: the event id (the same on a
  retry, so the receiver can drop a repeat),
- ``X-WXCRM-Timestamp``: Unix seconds, and ``X-WXCRM-Signature: sha256=<hex>`` — HMAC-SHA256 under the secret of
  ``<timestamp>.<body>`` (the receiver recomputes it, and refuses a stale timestamp against replays).

A 2xx answer is delivered. 408, 429 and 5xx, a timeout or a refused connection are retried with the outbox's
back-off (8 attempts, up to an hour apart); any other 4xx is the receiver refusing the event and is not retried
(the outbox page shows it, and 重发 sends it again once fixed). The URL and secret are read at send time, so a
rotated secret signs what is still waiting.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from crm_core import outbox
from crm_core.org.integration import CHANNEL, webhook

TIMEOUT = (3.05, 10)  # connect, read (seconds)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send_webhook(message) -> outbox.Delivery:
    import requests  # already wechatpy's HTTP client

    cfg = webhook(message.org_id)
    if not cfg.get("url"):
        raise outbox.ChannelError("ERP webhook 未配置（erp_webhook.url）", retryable=False)
    body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "wxcrm-webhook/1",
               "X-WXCRM-Event": message.payload.get("type", ""), "X-WXCRM-Delivery": message.payload.get("id", ""),
               "X-WXCRM-Timestamp": ts}
    if cfg.get("secret"):
        headers["X-WXCRM-Signature"] = sign(cfg["secret"], ts, body)
    try:
        resp = requests.post(cfg["url"], data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise outbox.ChannelError(f"ERP webhook 无法送达：{type(exc).__name__}") from None
    if 200 <= resp.status_code < 300:
        return outbox.Delivery(provider_message_id=resp.headers.get("X-Request-Id") or message.payload.get("id"))
    retryable = resp.status_code in (408, 429) or resp.status_code >= 500
    raise outbox.ChannelError(f"ERP webhook 返回 HTTP {resp.status_code}：{resp.text[:200]}", retryable=retryable)


def init_app(app) -> None:
    outbox.register_channel(CHANNEL, send_webhook)
