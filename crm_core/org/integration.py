"""ERP integration points (#19 item 10; docs/integration.md): the organisation's business documents leave as signed
webhook events through the outbox, so a K/3 Cloud, U8 or any other ERP can follow them.

An organisation that sets ``erp_webhook`` (``PUT /api/v1/settings/erp-webhook {url, secret, events}``) gets one outbox
message per event — written in the same transaction as the document, delivered after commit with the outbox's
retries and back-off, never twice for one event (``dedupe_key`` = the event id). The sender (``wxapp.erp``) POSTs
the JSON with an HMAC-SHA256 signature of ``<timestamp>.<body>`` under the secret; the secret stays in the setting,
never in the message. Without a URL nothing is queued.

Events: ``quote.sent``, ``quote.accepted``, ``contract.approved``, ``contract.changed`` (an approved 合同变更), ``order.created``, ``order.cancelled``,
``delivery.created``, ``receipt.created``. Each carries ``{id, type, occurred_at, org_id, data}``; ``data`` is the
document as the API answers it.
"""
from __future__ import annotations

from crm_core import outbox
from crm_core.clock import utcnow

EVENTS = ("quote.sent", "quote.accepted", "contract.approved", "contract.changed", "order.created", "order.cancelled", "delivery.created",
          "receipt.created")
CHANNEL = "erp_webhook"


def webhook(org_id: int) -> dict:
    from crm_core.org.settings import get_setting

    return get_setting(org_id, "erp_webhook")


def emit(org_id: int, event: str, key: str, data: dict) -> None:
    """Queue ``event`` about the document ``key`` (e.g. ``contract:12``) for the organisation's ERP, if it has one."""
    assert event in EVENTS, event
    cfg = webhook(org_id)
    if not cfg.get("url") or (cfg.get("events") and event not in cfg["events"]):
        return
    event_id = f"{event}:{key}"
    outbox.queue_message(CHANNEL, f"erp:{org_id}", {"id": event_id, "type": event, "occurred_at": utcnow().isoformat() + "Z",
                                                    "org_id": org_id, "data": data},
                         org_id=org_id, dedupe_key=f"erp:{org_id}:{event_id}", max_attempts=8)
