"""Spare-parts stock behind an interface (配件申请 checks against it). The default reads and
reserves from the ``stock_item`` table; an ERP integration implements :class:`Stock` and is
installed with :func:`configure`."""
from __future__ import annotations

from abc import ABC, abstractmethod

from sqlalchemy import select, update

from crm_core.db import db
from crm_core.service.models import PartRequest, StockItem


class Stock(ABC):
    @abstractmethod
    def reserve(self, org_id: int, code: str, quantity: int) -> tuple[bool, str | None]:
        """Reserve ``quantity``; returns (reserved, part name)."""

    def issue(self, org_id: int, code: str, quantity: int) -> bool:
        """The reserved ``quantity`` leaves stock (领料出库, the work order is done); True when the request counts as
        issued. An ERP-backed stock issues through its own documents (a 领料单 it imports or sends), so the default
        only says so."""
        return True


class TableStock(Stock):
    def reserve(self, org_id: int, code: str, quantity: int) -> tuple[bool, str | None]:
        item = db.session.scalars(select(StockItem).where(StockItem.org_id == org_id, StockItem.code == code)).first()
        if item is None:
            return False, None
        # a conditional update: two engineers cannot reserve the same last unit
        done = db.session.execute(update(StockItem).where(StockItem.id == item.id,
                                                          StockItem.on_hand - StockItem.reserved >= quantity)
                                  .values(reserved=StockItem.reserved + quantity)).rowcount
        return bool(done), item.name

    def issue(self, org_id: int, code: str, quantity: int) -> bool:
        # guarded: what leaves is what was reserved, and on hand never goes below zero
        return bool(db.session.execute(update(StockItem).where(
            StockItem.org_id == org_id, StockItem.code == code, StockItem.reserved >= quantity, StockItem.on_hand >= quantity)
            .values(on_hand=StockItem.on_hand - quantity, reserved=StockItem.reserved - quantity)).rowcount)


_stock: Stock = TableStock()


def configure(stock: Stock) -> None:
    global _stock
    _stock = stock


def request_part(org_id: int, work_order_id: int, code: str, quantity: int, employee_id: int | None) -> PartRequest:
    reserved, name = _stock.reserve(org_id, code, quantity)
    pr = PartRequest(work_order_id=work_order_id, part_code=code[:64], part_name=name, quantity=quantity,
                     status="reserved" if reserved else "short", requested_by_id=employee_id)
    db.session.add(pr)
    db.session.flush()
    return pr


def issue_reserved(org_id: int, work_order_id: int) -> int:
    """A completed work order's reserved parts leave stock (status ``issued``); answers how many requests."""
    n = 0
    for pr in db.session.scalars(select(PartRequest).where(PartRequest.work_order_id == work_order_id,
                                                           PartRequest.status == "reserved")):
        if _stock.issue(org_id, pr.part_code, pr.quantity):
            pr.status = "issued"
            n += 1
    db.session.flush()
    return n


def set_on_hand(actor, items) -> dict:
    """库存同步 from an ERP: ``[{code, on_hand, name?, unit_price?}]`` sets each part's quantity on hand (a part not
    yet known is added, with its name). Reservations made by work orders stay as they are. All or nothing."""
    from decimal import Decimal, InvalidOperation

    from crm_core.errors import ValidationFailed

    actor.require("product", "edit")
    if not isinstance(items, list) or not items or len(items) > 5000:
        raise ValidationFailed("请提供 1–5000 条库存。", fields={"items": "1 to 5000"})
    errors, rows = {}, []
    for i, item in enumerate(items):
        code = str(item.get("code") or "").strip()[:64]
        on_hand = item.get("on_hand")
        if not code:
            errors[f"items.{i}.code"] = "required"
        if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
            errors[f"items.{i}.on_hand"] = "a whole number >= 0"
        price = None
        if item.get("unit_price") is not None:
            try:
                price = Decimal(str(item["unit_price"])).quantize(Decimal("0.01"))
                if not 0 <= price < Decimal("10000000000"):  # NUMERIC(12,2)
                    errors[f"items.{i}.unit_price"] = "0 to 9999999999.99"
            except InvalidOperation:
                errors[f"items.{i}.unit_price"] = "not a number"
        rows.append((code, on_hand, (item.get("name") or "").strip()[:200], price))
    if errors:
        raise ValidationFailed(f"库存数据有 {len(errors)} 处错误。", fields=errors)
    known = {s.code: s for s in db.session.scalars(select(StockItem).where(StockItem.org_id == actor.org_id,
                                                                          StockItem.code.in_([r[0] for r in rows])))}
    added = updated = 0
    seen: set[str] = set()
    for i, (code, on_hand, name, price) in enumerate(rows):
        if code in seen:
            raise ValidationFailed(f"配件 {code} 重复。", fields={f"items.{i}.code": "duplicated"})
        seen.add(code)
        item = known.get(code)
        if item is None:
            if not name:
                raise ValidationFailed(f"新配件 {code} 需要名称。", fields={f"items.{i}.name": "required for a new part"})
            item = known[code] = StockItem(org_id=actor.org_id, code=code, name=name, on_hand=0, reserved=0)
            db.session.add(item)
            added += 1
        else:
            updated += 1
        item.on_hand = on_hand
        if name:
            item.name = name
        if price is not None:
            item.unit_price = price
    from sqlalchemy.exc import IntegrityError

    from crm_core.db import begin_savepoint
    from crm_core.errors import Conflict

    try:
        with begin_savepoint():
            db.session.flush()
    except IntegrityError:  # another sync added the same new part at this moment
        raise Conflict("另一次库存同步正在添加相同的配件，请重试。", code="stale") from None
    return {"added": added, "updated": updated}
