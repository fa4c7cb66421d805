"""What an ERP sends back (#19 item 10; docs/integration.md): receipts (回款) and shipments (销售出库单), each item
under the ERP's own id (``external_id``), so sending a batch again — after a timeout, say — changes nothing.

Each item goes through the same service as a person's entry (:func:`documents.record_receipt`,
:func:`orders.record_delivery`): the same checks, scope, guarded counters, product archives and webhook events. An
item is taken or refused on its own (a savepoint each); the answer says, per item, ``created``, ``duplicate`` (with
the id made the first time) or ``error`` with the reason, so the ERP can mark what went through.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_core.context import service
from crm_core.db import begin_savepoint, db
from crm_core.errors import Conflict, DomainError, ValidationFailed
from crm_core.org.permissions import Actor, scoped_select
from crm_core.sales import documents, money, orders
from crm_core.sales.models import Contract, Delivery, Receipt, SalesOrder

MAX_ITEMS = 500


def _batch(items) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise ValidationFailed("请至少提供一条记录。", fields={"items": "at least one"})
    if len(items) > MAX_ITEMS:
        raise ValidationFailed(f"一次最多 {MAX_ITEMS} 条。", fields={"items": f"at most {MAX_ITEMS}"})
    return items


def _run(items, already, make) -> dict:
    """``already(item) -> id | None`` finds an item taken before; ``make(item) -> id`` takes it."""
    out = []
    for item in _batch(items):
        ref = str(item.get("external_id") or "").strip()[:64]
        if not ref:
            out.append({"external_id": None, "status": "error", "message": "缺少 external_id。"})
            continue
        found = already(ref)
        if found is not None:
            out.append({"external_id": ref, "status": "duplicate", "id": found})
            continue
        try:
            with begin_savepoint():
                out.append({"external_id": ref, "status": "created", "id": make(ref, item)})
        except IntegrityError:  # the same id raced in from another request — or another clash, which is no duplicate
            found = already(ref)
            out.append({"external_id": ref, "status": "duplicate", "id": found} if found is not None else
                       {"external_id": ref, "status": "error", "message": "与已有记录冲突，请稍后重试。"})
        except DomainError as exc:
            out.append({"external_id": ref, "status": "error", "message": exc.message, "fields": exc.fields or {}})
    return {"items": out, **{k: sum(1 for x in out if x["status"] == k) for k in ("created", "duplicate", "error")}}


@service
def import_receipts(actor: Actor, items) -> dict:
    """``[{external_id, contract_number, amount, received_at?, method?, instalment_seq?, note?}]``."""
    actor.require("receipt", "create")

    def already(ref):
        return db.session.scalar(select(Receipt.id).where(Receipt.org_id == actor.org_id, Receipt.external_ref == ref))

    def make(ref, item):
        contract = db.session.scalars(scoped_select(actor, Contract).where(Contract.number == str(item.get("contract_number") or ""))).first()
        if contract is None:
            raise ValidationFailed("合同号不存在或不在数据权限范围内。", fields={"contract_number": "unknown"})
        inst = None
        if item.get("instalment_seq") is not None:
            inst = next((i.id for i in contract.instalments if i.seq == item["instalment_seq"]), None)
            if inst is None:
                raise ValidationFailed("合同没有这一期。", fields={"instalment_seq": "unknown"})
        r = documents.record_receipt(actor, {"contract_id": contract.id, "instalment_id": inst, "amount": item.get("amount"),
                                             "received_at": item.get("received_at"), "method": item.get("method") or "bank",
                                             "note": item.get("note"), "external_ref": ref})
        return r.id

    return _run(items, already, make)


@service
def import_shipments(actor: Actor, items) -> dict:
    """销售出库单: ``[{external_id, order_number, shipped_on?, carrier?, lines: [{product_code, quantity, serial_nos?}]}]``
    — the quantities per product code are spread over the order's lines of that product by what each has left to ship."""
    from crm_core.customers.models import Product

    actor.require("contract", "edit")

    def already(ref):
        return db.session.scalar(select(Delivery.id).where(Delivery.org_id == actor.org_id, Delivery.external_ref == ref))

    def make(ref, item):
        order = db.session.scalars(scoped_select(actor, SalesOrder).where(SalesOrder.number == str(item.get("order_number") or ""))).first()
        if order is None:
            raise ValidationFailed("订单号不存在或不在数据权限范围内。", fields={"order_number": "unknown"})
        codes = dict(db.session.execute(select(Product.id, Product.code).where(Product.id.in_({ol.product_id for ol in order.lines}))).all())
        # the 出库单's quantities per product code (it may split one product over lines: batches, warehouses), then
        # spread over the order's lines of that product by what each still has to ship, in order
        wanted: dict[str, Decimal] = {}
        serial_pool: dict[str, list[str]] = {}
        for i, ln in enumerate(item.get("lines") or []):
            code = str(ln.get("product_code") or "")
            if not any(codes.get(ol.product_id) == code for ol in order.lines):
                raise ValidationFailed(f"第 {i + 1} 行的产品不在这张订单上。", fields={f"lines.{i}.product_code": "not on the order"})
            wanted[code] = wanted.get(code, Decimal(0)) + money.parse(ln.get("quantity"), f"lines.{i}.quantity", places=4,
                                                                      maximum=money.MAX_QUANTITY, label=f"第 {i + 1} 行数量")
            serial_pool.setdefault(code, []).extend(ln.get("serial_nos") or [])
        lines, serials = [], {}
        for code, qty in wanted.items():
            for ol in order.lines:
                if qty <= 0 or codes.get(ol.product_id) != code or ol.quantity <= ol.delivered:
                    continue
                take = min(qty, ol.quantity - ol.delivered)
                lines.append({"order_line_id": ol.id, "quantity": take})
                pool = serial_pool.get(code) or []
                if pool:  # one serial per unit: this line takes as many as it ships
                    serials[str(ol.id)], serial_pool[code] = pool[:int(take)], pool[int(take):]
                qty -= take
            if qty > 0:
                raise Conflict(f"产品 {code} 发货数量超出订单未发数量 {money.qty(qty)}。", code="over_order",
                               fields={"lines": f"{code}: {money.qty(qty)} beyond the order"})
        d = orders.record_delivery(actor, order.id, {"lines": lines, "serial_nos": serials, "shipped_on": item.get("shipped_on"),
                                                     "carrier": item.get("carrier"), "note": item.get("note"), "external_ref": ref})
        return d.id

    return _run(items, already, make)
