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
