"""销售订单 and 发货 (orders and deliveries): the part of the money chain between an approved contract and its receipts.

An order takes quantities of an approved contract's product lines (合同明细); a line can be ordered in several
orders, never beyond its contracted quantity. A delivery (发货 / 销售出库单) ships quantities of an order's lines,
never beyond what was ordered, and moves the order 待发货 → 部分发货 → 已发货. Serial numbers given with a delivery
become the customer's product archives (产品档案, with their warranty), as the seed's 销售出库单 does.

Money follows :mod:`crm_core.sales.money`: an order line is worth its share of the contract line's total
(:func:`money.share`: pro rata, and the part that completes a line takes the remainder), a delivery line its share
of the order line's amount — so orders add up to the contract and deliveries to the order, to the fen.

Every counter (a contract line's ``ordered``, an order line's ``delivered``) moves by a guarded UPDATE
(``… WHERE ordered + q <= quantity``), so two people ordering or shipping the last units at once cannot both succeed.
The contracts' data scope and permissions cover them: creating an order or a delivery is editing the contract.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from crm_core.clock import local_today, utcnow
from crm_core.context import service
from crm_core.db import db
from crm_core.errors import Conflict, ValidationFailed
from crm_core.org import integration
from crm_core.org.permissions import Actor, get_visible
from crm_core.org.settings import org_timezone
from crm_core.sales import money
from crm_core.sales.documents import CONTRACT_LABELS, _date, _listing, _number
from crm_core.sales.models import (
    ORDER_STATUSES,
    Contract,
    ContractLine,
    Delivery,
    DeliveryLine,
    OrderLine,
    SalesOrder,
)

ORDER_LABELS = {"open": "待发货", "partial": "部分发货", "delivered": "已发货", "cancelled": "已取消"}
MAX_SERIALS = 1000
_QTY_SLACK = Decimal("0.00001")  # SQLite keeps NUMERIC as floating point; quantities have four places

__all__ = ["ORDER_STATUSES", "ORDER_LABELS"]


def _quantity(value, field: str, label: str) -> Decimal:
    q = money.parse(value, field, places=4, maximum=money.MAX_QUANTITY, label=label)
    if q <= 0:
        raise ValidationFailed(f"{label}须大于 0。", fields={field: "must be > 0"})
    return q


def _requested(rows, key: str, what: str) -> list[tuple[int, Decimal]]:
    """``[{<key>: id, quantity}]`` → [(id, quantity)], each id once, quantities > 0; 422 naming the row."""
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed(f"请至少填写一行{what}数量。", fields={"lines": "at least one line"})
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get(key), int) or isinstance(row.get(key), bool):
            raise ValidationFailed(f"第 {i + 1} 行格式不对。", fields={f"lines.{i}.{key}": "required"})
        if row[key] in seen:
            raise ValidationFailed(f"第 {i + 1} 行重复。", fields={f"lines.{i}.{key}": "duplicated"})
        seen.add(row[key])
        out.append((row[key], _quantity(row.get("quantity"), f"lines.{i}.quantity", f"第 {i + 1} 行{what}数量")))
    return out


@service
def create_order(actor: Actor, contract_id: int, data: dict) -> SalesOrder:
    """合同下推订单: quantities of the approved contract's lines (each at most what is still to order)."""
    actor.require("contract", "edit")
    contract = get_visible(actor, Contract, contract_id, action="edit")
    if contract.status not in ("approved", "completed"):
        raise Conflict(f"合同当前为「{CONTRACT_LABELS[contract.status]}」，生效后才能下订单。", code="contract_not_effective")
    if not contract.lines:
        raise Conflict("这份合同没有产品明细（只有金额），不能下订单。", code="no_lines")
    wanted = _requested(data.get("lines"), "contract_line_id", "订货")
    # the lines' rows locked, their counters read fresh: two orders of one line at once queue here, so the second
    # prices its share from what the first took (and the one completing the line takes exactly the rest)
    lines = {ln.id: ln for ln in _locked(ContractLine, ContractLine.contract_id == contract.id)}
    tz = org_timezone(actor.org_id)
    order = SalesOrder(org_id=contract.org_id, owner_id=contract.owner_id, department_id=contract.department_id,
                       number=_number(actor.org_id, "XS", tz), contract_id=contract.id, customer_id=contract.customer_id,
                       status="open", amount=Decimal("0.00"), delivered_amount=Decimal("0.00"),
                       required_on=_date(data["required_on"], "required_on", "要求交货日期") if data.get("required_on") else None,
                       address=(data.get("address") or "").strip()[:300] or None,
                       note=(data.get("note") or "").strip()[:2000] or None)
    if order.required_on and order.required_on < local_today(tz):
        raise ValidationFailed("要求交货日期不能早于今天。", fields={"required_on": "in the past"})
    for i, (line_id, q) in enumerate(wanted):
        ln = lines.get(line_id)
        if ln is None:
            raise ValidationFailed(f"第 {i + 1} 行不是这份合同的明细。", fields={f"lines.{i}.contract_line_id": "not a line of the contract"})
        left = ln.quantity - ln.ordered
        if q > left + _QTY_SLACK:
            raise Conflict(f"「{ln.name}」还可下单 {money.qty(max(left, Decimal(0)))}，本次 {money.qty(q)} 超出了合同数量。",
                           code="over_contract", fields={f"lines.{i}.quantity": f"at most {money.qty(left)}"})
        amount = money.share(ln.total, q, ln.quantity, ln.ordered_amount, ln.ordered)
        moved = db.session.execute(update(ContractLine).where(ContractLine.id == ln.id,
                                                              ContractLine.ordered + q <= ContractLine.quantity + _QTY_SLACK)
                                   .values(ordered=ContractLine.ordered + q,
                                           ordered_amount=ContractLine.ordered_amount + amount)).rowcount
        if not moved:
            raise Conflict(f"「{ln.name}」刚被另一张订单占用，请刷新后重试。", code="stale")
        order.lines.append(OrderLine(seq=i + 1, contract_line_id=ln.id, product_id=ln.product_id, name=ln.name, quantity=q,
                                     amount=amount, delivered=Decimal(0)))
        order.amount += amount
    db.session.add(order)
    db.session.flush()
    integration.emit(order.org_id, "order.created", f"order:{order.id}", order_dict(order))
    return order


@service
def cancel_order(actor: Actor, order_id: int, reason: str | None = None) -> SalesOrder:
    """取消订单: only one nothing has been shipped of; its quantities go back to the contract."""
    actor.require("contract", "edit")
    order = _locked_order(actor, order_id)  # a delivery of it at the same moment waits, then finds it cancelled
    moved = db.session.execute(update(SalesOrder).where(SalesOrder.id == order.id, SalesOrder.status == "open",
                                                        SalesOrder.delivered_amount == 0)
                               .values(status="cancelled", note=((order.note or "") + f"\n取消原因：{(reason or '').strip()[:200]}")
                                       .strip()[:2000])).rowcount
    if not moved:
        db.session.refresh(order)
        raise Conflict(f"订单当前为「{ORDER_LABELS[order.status]}」，" + ("已有发货，不能取消。" if order.status != "cancelled" else "无需再取消。"),
                       code="illegal_transition")
    for ol in order.lines:
        db.session.execute(update(ContractLine).where(ContractLine.id == ol.contract_line_id)
                           .values(ordered=ContractLine.ordered - ol.quantity, ordered_amount=ContractLine.ordered_amount - ol.amount))
    db.session.refresh(order)
    integration.emit(order.org_id, "order.cancelled", f"order:{order.id}", order_dict(order))
    return order


@service
def record_delivery(actor: Actor, order_id: int, data: dict) -> Delivery:
    """发货 / 销售出库: quantities of the order's lines (each at most what is still to ship), with serial numbers that
    become product archives of the customer (one per unit: as many serials as units, or none)."""
    from crm_core.customers.products import create_archives

    actor.require("contract", "edit")
    order = _locked_order(actor, order_id)  # deliveries and a cancel of one order queue here; its status read fresh
    if order.status in ("delivered", "cancelled"):
        raise Conflict(f"订单当前为「{ORDER_LABELS[order.status]}」，不能再发货。", code="illegal_transition")
    wanted = _requested(data.get("lines"), "order_line_id", "发货")
    serials = data.get("serial_nos") or {}
    tz = org_timezone(actor.org_id)
    shipped_on = _date(data.get("shipped_on") or local_today(tz), "shipped_on", "发货日期")
    if shipped_on > local_today(tz):
        raise ValidationFailed("发货日期不能晚于今天。", fields={"shipped_on": "in the future"})
    lines = {ol.id: ol for ol in _locked(OrderLine, OrderLine.order_id == order.id)}
    d = Delivery(org_id=order.org_id, number=_number(actor.org_id, "CK", tz), order_id=order.id, shipped_on=shipped_on,
                 amount=Decimal("0.00"), carrier=(data.get("carrier") or "").strip()[:100] or None,
                 note=(data.get("note") or "").strip()[:500] or None, created_by_id=actor.employee_id, created_at=utcnow(),
                 external_ref=data.get("external_ref"))
    archives = []
    for i, (line_id, q) in enumerate(wanted):
        ol = lines.get(line_id)
        if ol is None:
            raise ValidationFailed(f"第 {i + 1} 行不是这张订单的明细。", fields={f"lines.{i}.order_line_id": "not a line of the order"})
        left = ol.quantity - ol.delivered
        if q > left + _QTY_SLACK:
            raise Conflict(f"「{ol.name}」还需发货 {money.qty(max(left, Decimal(0)))}，本次 {money.qty(q)} 超出了订单数量。",
                           code="over_order", fields={f"lines.{i}.quantity": f"at most {money.qty(left)}"})
        nos = _serials(serials.get(str(line_id), serials.get(line_id)), q, i)
        shipped_amount = sum((dl.amount for dl in db.session.scalars(select(DeliveryLine).where(DeliveryLine.order_line_id == ol.id))),
                             Decimal("0.00"))
        amount = money.share(ol.amount, q, ol.quantity, shipped_amount, ol.delivered)
        moved = db.session.execute(update(OrderLine).where(OrderLine.id == ol.id,
                                                           OrderLine.delivered + q <= OrderLine.quantity + _QTY_SLACK)
                                   .values(delivered=OrderLine.delivered + q)).rowcount
        if not moved:
            raise Conflict(f"「{ol.name}」刚被另一张发货单发出，请刷新后重试。", code="stale")
        d.lines.append(DeliveryLine(order_line_id=ol.id, quantity=q, amount=amount, serial_nos=nos))
        d.amount += amount
        archives += [{"serial_no": s, "product_id": ol.product_id, "customer_id": order.customer_id, "sold_on": shipped_on}
                     for s in nos]
    db.session.add(d)
    db.session.flush()
    db.session.execute(update(SalesOrder).where(SalesOrder.id == order.id)
                       .values(delivered_amount=SalesOrder.delivered_amount + d.amount))
    done = all(ol.delivered >= ol.quantity - _QTY_SLACK for ol in _locked(OrderLine, OrderLine.order_id == order.id))
    db.session.execute(update(SalesOrder).where(SalesOrder.id == order.id, SalesOrder.status.in_(("open", "partial")))
                       .values(status="delivered" if done else "partial"))
    if archives:
        from crm_core.org.permissions import Actor as _Actor

        # the archives are the delivery's: made with the shipper's right, or the system's for a shipper without it
        who = actor if actor.can("product_archive", "create") else _Actor.system(order.org_id, f"发货单 {d.number}")
        create_archives(who, archives, shipment_ref=d.number)
    db.session.refresh(order)
    integration.emit(order.org_id, "delivery.created", f"delivery:{d.id}", {**delivery_dict(d), "order_number": order.number,
                                                                            "order_status": order.status})
    return d


def _locked(model, where) -> list:
    """Rows locked for this transaction (FOR UPDATE on PostgreSQL; SQLite has one writer anyway), reloaded fresh."""
    return list(db.session.scalars(select(model).where(where).order_by(model.id).with_for_update()
                                   .execution_options(populate_existing=True)))


def _locked_order(actor: Actor, order_id: int) -> SalesOrder:
    order = get_visible(actor, SalesOrder, order_id, action="edit")
    return db.session.scalars(select(SalesOrder).where(SalesOrder.id == order.id).with_for_update()
                              .execution_options(populate_existing=True)).one()


def _serials(raw, quantity: Decimal, i: int) -> list[str]:
    if raw in (None, "", []):
        return []
    items = raw.replace("，", ",").replace("\n", ",").split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise ValidationFailed(f"第 {i + 1} 行序列号格式不对。", fields={f"serial_nos.{i}": "a list of strings"})
    nos = [s.strip()[:64] for s in items if s.strip()]
    if len(nos) > MAX_SERIALS:
        raise ValidationFailed(f"第 {i + 1} 行序列号最多 {MAX_SERIALS} 个。", fields={f"serial_nos.{i}": "too many"})
    if nos and (quantity != quantity.to_integral_value() or len(nos) != int(quantity)):
        raise ValidationFailed(f"第 {i + 1} 行发货 {money.qty(quantity)} 件，序列号应有 {money.qty(quantity)} 个（现有 {len(nos)} 个）。",
                               fields={f"serial_nos.{i}": "one per unit"})
    return nos


def list_orders(actor: Actor, *, contract_id: int | None = None, customer_id: int | None = None, status: str | None = None,
                page: int = 1, per_page: int = 20):
    return _listing(actor, SalesOrder, page, per_page, contract_id=contract_id, customer_id=customer_id, status=status)


def order_dict(o: SalesOrder) -> dict:
    f = money.fmt
    return {"id": o.id, "number": o.number, "contract_id": o.contract_id, "customer_id": o.customer_id, "owner_id": o.owner_id,
            "status": o.status, "status_label": ORDER_LABELS[o.status], "amount": f(o.amount),
            "delivered_amount": f(o.delivered_amount), "required_on": o.required_on.isoformat() if o.required_on else None,
            "address": o.address, "note": o.note, "created_at": o.created_at.isoformat() + "Z" if o.created_at else None,
            "lines": [{"id": ol.id, "seq": ol.seq, "contract_line_id": ol.contract_line_id, "product_id": ol.product_id,
                       "name": ol.name, "quantity": money.qty(ol.quantity), "amount": f(ol.amount),
                       "delivered": money.qty(ol.delivered), "to_deliver": money.qty(ol.quantity - ol.delivered)}
                      for ol in o.lines],
            "deliveries": [delivery_dict(d) for d in o.deliveries]}


def delivery_dict(d: Delivery) -> dict:
    return {"id": d.id, "number": d.number, "order_id": d.order_id, "shipped_on": d.shipped_on.isoformat(),
            "amount": money.fmt(d.amount), "carrier": d.carrier, "note": d.note, "external_ref": d.external_ref,
            "lines": [{"order_line_id": dl.order_line_id, "quantity": money.qty(dl.quantity), "amount": money.fmt(dl.amount),
                       "serial_nos": list(dl.serial_nos or [])} for dl in d.lines]}
