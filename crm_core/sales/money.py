"""Money arithmetic for quotes, contracts and receipts (报价 → 合同 → 回款), in one place.

Every amount is a :class:`~decimal.Decimal` with two places (分), stored as NUMERIC(18,2); API
bodies carry them as two-decimal strings. Totals a client sends are ignored: the server
recomputes them from the lines.

**The rounding rule** (docs/sales.md): each line is rounded to the fen on its own, half up
(四舍五入), in this order — gross = quantity × unit price; discount = gross × discount % ;
net = gross − discount; tax = net × tax rate (prices are tax-exclusive; 增值税 is added per line,
as a Chinese VAT invoice computes it). The document's figures are the sums of its lines' rounded
figures, so the lines always add up to the total shown. Cost and expected profit (毛利) follow
the same rule on the net amount.

A payment plan's instalments must add up to the contract amount exactly; :func:`split` makes an
even plan whose last instalment takes the remainder.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from crm_core.errors import ValidationFailed

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999999.99")  # NUMERIC(18,2)
MAX_QUANTITY = Decimal("99999999.9999")  # NUMERIC(12,4)
HUNDRED = Decimal(100)


def money(value) -> Decimal:
    """A Decimal rounded half up to the fen."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt(value: Decimal | None) -> str | None:
    """The API's two-decimal string ("1234.50")."""
    return None if value is None else str(money(value))


def qty(value: Decimal | None) -> str | None:
    """A quantity as the API writes it: no trailing zeros ("12", "2.5")."""
    return None if value is None else f"{Decimal(value).normalize():f}"


def share(total: Decimal, part: Decimal, whole: Decimal, taken: Decimal, taken_qty: Decimal) -> Decimal:
    """The amount of ``part`` units out of a line of ``whole`` units worth ``total`` in all, of which ``taken_qty``
    units worth ``taken`` are already spoken for: pro rata, half up to the fen, and the part that completes the line
    takes exactly what is left — so the parts of a line always add up to its total, however it is split."""
    if taken_qty + part >= whole:
        return money(total - taken)
    return min(money(total * part / whole), money(total - taken))


def parse(value, field: str, *, minimum: Decimal | None = Decimal(0), maximum: Decimal = MAX_AMOUNT,
          places: int = 2, label: str = "金额") -> Decimal:
    """A client's number (string or number; floats as the shortest decimal they print as) as a
    Decimal, or 422 naming the field. More places than ``places`` are refused, not rounded."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationFailed(f"{label}不能为空。", fields={field: "required"})
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip()) if isinstance(value, (str, int, float)) else None
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        raise ValidationFailed(f"{label}应为数字，如 1280.00。", fields={field: "not a number"})
    if minimum is not None and d < minimum:
        raise ValidationFailed(f"{label}不能小于 {minimum}。", fields={field: f"must be >= {minimum}"})
    if abs(d) > maximum:  # before quantize, which fails on very large numbers
        raise ValidationFailed(f"{label}超出范围。", fields={field: "too large"})
    if d != d.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(f"{label}最多 {places} 位小数。", fields={field: f"at most {places} decimal places"})
    return d


@dataclass(frozen=True)
class LineAmounts:
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal
    cost: Decimal
    profit: Decimal


def line(quantity: Decimal, unit_price: Decimal, discount_pct: Decimal = Decimal(0), tax_rate: Decimal = Decimal(0),
         unit_cost: Decimal = Decimal(0)) -> LineAmounts:
    """One line's figures by the rounding rule above."""
    gross = money(quantity * unit_price)
    discount = money(gross * discount_pct / HUNDRED)
    net = gross - discount
    tax = money(net * tax_rate / HUNDRED)
    cost = money(quantity * unit_cost)
    return LineAmounts(gross=gross, discount=discount, net=net, tax=tax, total=net + tax, cost=cost, profit=net - cost)


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal  # the lines' gross amounts
    discount: Decimal
    tax: Decimal
    total: Decimal
    cost: Decimal
    profit: Decimal

    @property
    def discount_pct(self) -> Decimal:
        """The document's overall discount, in per cent of its gross (what approval rules read)."""
        return (self.discount * HUNDRED / self.subtotal).quantize(CENT, rounding=ROUND_HALF_UP) if self.subtotal else Decimal(0)


def totals(lines: list[LineAmounts]) -> Totals:
    zero = Decimal("0.00")
    return Totals(subtotal=sum((x.gross for x in lines), zero), discount=sum((x.discount for x in lines), zero),
                  tax=sum((x.tax for x in lines), zero), total=sum((x.total for x in lines), zero),
                  cost=sum((x.cost for x in lines), zero), profit=sum((x.profit for x in lines), zero))


def split(amount: Decimal, parts: int) -> list[Decimal]:
    """``amount`` in ``parts`` instalments of whole fen that add up to it exactly (the last takes the remainder)."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    each = (amount / parts).quantize(CENT, rounding="ROUND_DOWN")
    return [each] * (parts - 1) + [amount - each * (parts - 1)]
