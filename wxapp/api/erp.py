"""ERP integration over HTTP (#19 item 10; docs/integration.md): where the documents' signed events go
(``/settings/erp-webhook``), and what an ERP sends back — receipts, shipments (销售出库单) and stock — each item under
the ERP's own id, so a batch sent twice changes nothing."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from flask import g
from pydantic import AnyHttpUrl, Field

from crm_core.org import integration
from crm_core.org import settings as settings_svc
from crm_core.sales import erp_import
from crm_core.sales.documents import RECEIPT_METHODS
from crm_core.service.stock import set_on_hand
from wxapp.api import bp
from wxapp.openapi import Model, Money, api


class WebhookIn(Model):
    url: AnyHttpUrl | None = Field(default=None, description="the ERP's endpoint (http or https); null turns the events off")
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="the HMAC-SHA256 key; omitted: the one set before is kept")
    events: list[Literal[integration.EVENTS]] = Field(default_factory=list,  # type: ignore[valid-type]
                                                      description="the events to send; empty: all")


class WebhookOut(Model):
    url: str | None
    secret_set: bool = Field(description="the secret itself is never answered")
    events: list[str]
    available_events: list[str]


def _webhook_out(cfg: dict) -> dict:
    return {"url": cfg.get("url"), "secret_set": bool(cfg.get("secret")), "events": cfg.get("events") or [],
            "available_events": list(integration.EVENTS)}


@api.operation(bp, "/settings/erp-webhook", "GET", summary="Where the documents' events go (ERP webhook)", tags=("erp",),
               response=WebhookOut)
def get_webhook():
    g.actor.require("organization", "edit")
    return _webhook_out(integration.webhook(g.actor.org_id))


@api.operation(bp, "/settings/erp-webhook", "PUT", summary="Set the ERP webhook: URL, signing secret, events", tags=("erp",),
               body=WebhookIn, response=WebhookOut)
def put_webhook(body: WebhookIn):
    from crm_core.errors import ValidationFailed

    old = integration.webhook(g.actor.org_id) if g.actor.can("organization", "edit") else {}
    secret = body.secret or old.get("secret")
    if body.url and not secret:
        raise ValidationFailed("请设置签名密钥（至少 16 个字符），ERP 用它校验事件来自本系统。", fields={"secret": "required with a url"})
    value = {"url": str(body.url) if body.url else None, "secret": secret, "events": list(body.events)}
    return _webhook_out(settings_svc.put_setting(g.actor, "erp_webhook", value))


class ImportResultItem(Model):
    external_id: str | None
    status: Literal["created", "duplicate", "error"]
    id: int | None = None
    message: str | None = None
    fields: dict[str, str] | None = None


class ImportResult(Model):
    items: list[ImportResultItem]
    created: int
    duplicate: int
    error: int


class ReceiptItem(Model):
    external_id: str = Field(min_length=1, max_length=64, description="the ERP's id of the receipt (收款单)")
    contract_number: str = Field(max_length=32)
    amount: Money
    received_at: date | None = None
    method: Literal[RECEIPT_METHODS] = "bank"  # type: ignore[valid-type]
    instalment_seq: int | None = Field(default=None, ge=1, description="the instalment it pays; default: the oldest open ones")
    note: str | None = Field(default=None, max_length=500)


class ReceiptsIn(Model):
    items: list[ReceiptItem] = Field(min_length=1, max_length=erp_import.MAX_ITEMS)


@api.operation(bp, "/erp/receipts", "POST", summary="Receipts (回款) from the ERP, each once by its external_id", tags=("erp",),
               body=ReceiptsIn, response=ImportResult)
def import_receipts(body: ReceiptsIn):
    return erp_import.import_receipts(g.actor, body.model_dump()["items"])


class ShipmentLine(Model):
    product_code: str = Field(max_length=64)
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=4)
    serial_nos: list[str] = Field(default_factory=list, max_length=1000)


class ShipmentItem(Model):
    external_id: str = Field(min_length=1, max_length=64, description="the ERP's id of the 销售出库单")
    order_number: str = Field(max_length=32)
    shipped_on: date | None = None
    carrier: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)
    lines: list[ShipmentLine] = Field(min_length=1, max_length=500)


class ShipmentsIn(Model):
    items: list[ShipmentItem] = Field(min_length=1, max_length=erp_import.MAX_ITEMS)


@api.operation(bp, "/erp/shipments", "POST", summary="Shipments (销售出库单) from the ERP against sales orders; serials become product archives",
               tags=("erp",), body=ShipmentsIn, response=ImportResult)
def import_shipments(body: ShipmentsIn):
    return erp_import.import_shipments(g.actor, body.model_dump()["items"])


class StockItemIn(Model):
    code: str = Field(min_length=1, max_length=64)
    on_hand: int = Field(ge=0, le=10_000_000)
    name: str | None = Field(default=None, max_length=200, description="required for a part not known yet")
    unit_price: Decimal | None = Field(default=None, ge=0, lt=Decimal("10000000000"), max_digits=12, decimal_places=2)


class StockIn(Model):
    items: list[StockItemIn] = Field(min_length=1, max_length=5000)


class StockOut(Model):
    added: int
    updated: int


@api.operation(bp, "/erp/stock", "PUT", summary="Spare parts on hand from the ERP (all or nothing)", tags=("erp",),
               body=StockIn, response=StockOut)
def put_stock(body: StockIn):
    return set_on_hand(g.actor, body.model_dump()["items"])
