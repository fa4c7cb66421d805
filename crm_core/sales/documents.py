"""The sales money chain (seed 销售过程管理): quotes (报价) → contracts (合同) with payment plans →
receipts (回款) matched to instalments; the quote expiry and overdue-instalment jobs.

Amounts follow :mod:`crm_core.sales.money` (Decimal, rounded per line, half up). What a client
sends as a total is never read: the server prices the lines. State changes are conditional
updates, so two people approving the same contract, or two receipts racing for one instalment,
cannot both succeed.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from crm_core import jobs, outbox
from crm_core.clock import local_today, utcnow
from crm_core.context import service
from crm_core.customers.models import Customer, Product
from crm_core.db import db, paginate
from crm_core.errors import Conflict, ValidationFailed
from crm_core.numbering import next_value
from crm_core.org import approvals_engine, integration
from crm_core.org.organization import manager_of
from crm_core.org.permissions import Actor, get_visible, resolve_reference, scoped_select
from crm_core.org.settings import org_timezone
from crm_core.sales import money
from crm_core.sales.models import (
    CONTRACT_STATUSES,
    QUOTE_STATUSES,
    Contract,
    ContractLine,
    Instalment,
    Quote,
    QuoteLine,
    Receipt,
    ReceiptAllocation,
)

__all__ = ["CONTRACT_STATUSES", "QUOTE_STATUSES"]

# amounts are whole fen, so on PostgreSQL's exact NUMERIC this slack changes no comparison; SQLite
# keeps NUMERIC as binary floating point (0.1 + 0.2 > 0.3), and its sums are off by far less
_FEN_SLACK = Decimal("0.001")
MAX_LINES = 500
MAX_INSTALMENTS = 120
RECEIPT_METHODS = ("bank", "cash", "wechat", "alipay", "cheque", "other")
QUOTE_LABELS = {"draft": "草稿", "approving": "审批中", "approved": "审批通过，待发送", "sent": "已发送", "accepted": "客户已接受",
                "rejected": "客户已拒绝", "expired": "已失效", "superseded": "已被新版本替代"}
CONTRACT_LABELS = {"pending": "待审批", "approved": "已生效", "completed": "已回款完毕", "cancelled": "已作废",
                   "rejected": "已驳回"}


def _number(org_id: int, prefix: str, tz: str) -> str:
    day = local_today(tz).strftime("%Y%m%d")
    return f"{prefix}{day}{next_value(org_id, prefix + day):04d}"


def _date(value, field: str, label: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed(f"{label}应为日期，如 2026-12-31。", fields={field: "YYYY-MM-DD"}) from None


def _owner_fields(actor: Actor) -> dict:
    from crm_core.org.models import Employee

    emp = db.session.get(Employee, actor.employee_id) if actor.employee_id else None
    return {"org_id": actor.org_id, "owner_id": actor.employee_id, "department_id": emp.department_id if emp else None}


# --- quotes ------------------------------------------------------------------------------------
def _priced_lines(org_id: int, lines) -> list[tuple[Product, dict, money.LineAmounts]]:
    """Each requested line with its product, its inputs and its figures; 422 naming the line."""
    if not isinstance(lines, list) or not lines:
        raise ValidationFailed("报价至少需要一行产品。", fields={"lines": "at least one line"})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"一张报价最多 {MAX_LINES} 行。", fields={"lines": f"at most {MAX_LINES}"})
    ids = {ln.get("product_id") for ln in lines if isinstance(ln, dict)}
    products = {p.id: p for p in db.session.scalars(select(Product).where(
        Product.org_id == org_id, Product.id.in_([i for i in ids if isinstance(i, int) and not isinstance(i, bool)])))}
    out = []
    for i, ln in enumerate(lines):
        at = f"lines.{i}"
        if not isinstance(ln, dict):
            raise ValidationFailed(f"第 {i + 1} 行格式不对。", fields={at: "object"})
        product = products.get(ln.get("product_id"))
        if product is None or not product.active:
            raise ValidationFailed(f"第 {i + 1} 行的产品不存在或已停用。", fields={f"{at}.product_id": "unknown product"})
        qty = money.parse(ln.get("quantity", 1), f"{at}.quantity", places=4, maximum=money.MAX_QUANTITY,
                          label=f"第 {i + 1} 行数量")
        if qty <= 0:
            raise ValidationFailed(f"第 {i + 1} 行数量须大于 0。", fields={f"{at}.quantity": "must be > 0"})
        if ln.get("unit_price") is None and product.list_price is None:
            raise ValidationFailed(f"「{product.name}」没有标准价，请填写单价。", fields={f"{at}.unit_price": "required"})
        price = money.parse(ln["unit_price"] if ln.get("unit_price") is not None else product.list_price,
                            f"{at}.unit_price", label=f"第 {i + 1} 行单价")
        pct = money.parse(ln.get("discount_pct") or 0, f"{at}.discount_pct", maximum=money.HUNDRED,
                          label=f"第 {i + 1} 行折扣")
        rate = money.parse(ln["tax_rate"] if ln.get("tax_rate") is not None else product.tax_rate,
                           f"{at}.tax_rate", maximum=money.HUNDRED, label=f"第 {i + 1} 行税率")
        cost = product.unit_cost if product.unit_cost is not None else Decimal(0)
        inputs = {"quantity": qty, "unit_price": price, "discount_pct": pct, "tax_rate": rate, "unit_cost": cost}
        figures = money.line(qty, price, pct, rate, cost)
        if figures.total > money.MAX_AMOUNT or figures.gross > money.MAX_AMOUNT:
            raise ValidationFailed(f"第 {i + 1} 行金额超出范围。", fields={f"{at}.quantity": "amount too large"})
        out.append((product, inputs, figures))
    if money.totals([a for _, _, a in out]).subtotal > money.MAX_AMOUNT:
        raise ValidationFailed("报价合计超出范围。", fields={"lines": "total too large"})
    return out


def _fill_quote(q: Quote, priced) -> None:
    q.lines = [QuoteLine(seq=i + 1, product_id=p.id, name=p.name, gross=a.gross, discount=a.discount, tax=a.tax, total=a.total,
                         **inputs) for i, (p, inputs, a) in enumerate(priced)]
    t = money.totals([a for _, _, a in priced])
    q.subtotal, q.discount, q.tax, q.total, q.cost, q.expected_profit = t.subtotal, t.discount, t.tax, t.total, t.cost, t.profit


@service
def create_quote(actor: Actor, data: dict) -> Quote:
    """报价: priced on the server from the lines (list price unless a unit price is given)."""
    actor.require("quote", "create")
    customer = resolve_reference(actor, "customer_id", data.get("customer_id"))
    opp = None
    if data.get("opportunity_id") is not None:
        opp = resolve_reference(actor, "opportunity_id", data["opportunity_id"])
        if opp.customer_id != customer.id:
            raise ValidationFailed("商机不属于该客户。", fields={"opportunity_id": "belongs to another customer"})
    tz = org_timezone(actor.org_id)
    valid_until = _date(data.get("valid_until") or (local_today(tz) + timedelta(days=30)), "valid_until", "有效期")
    if valid_until < local_today(tz):
        raise ValidationFailed("有效期不能早于今天。", fields={"valid_until": "in the past"})
    priced = _priced_lines(actor.org_id, data.get("lines"))
    q = Quote(**_owner_fields(actor), number=_number(actor.org_id, "BJ", tz), version=1, customer_id=customer.id,
              opportunity_id=opp.id if opp else None, status="draft", valid_until=valid_until,
              note=(data.get("note") or "").strip()[:2000] or None)
    _fill_quote(q, priced)
    db.session.add(q)
    db.session.flush()
    return q


@service
def quote_from_opportunity(actor: Actor, opp_id: int, data: dict | None = None) -> Quote:
    """商机下推报价: a draft quote for the opportunity's customer with its products as lines (their
    quantities, and their agreed unit prices where the opportunity has one), linked back."""
    from crm_core.sales.models import Opportunity

    opp = get_visible(actor, Opportunity, opp_id)
    if not opp.products:
        raise ValidationFailed("商机还没有登记意向产品，请先登记产品，或直接新建报价单。", fields={"products": "none"})
    lines = [{"product_id": p.product_id, "quantity": p.quantity, **({"unit_price": p.unit_price} if p.unit_price is not None else {})}
             for p in opp.products]
    data = data or {}
    return create_quote(actor, {"customer_id": opp.customer_id, "opportunity_id": opp.id, "lines": lines,
                                "valid_until": data.get("valid_until"), "note": data.get("note")})


@service
def revise_quote(actor: Actor, quote_id: int, data: dict) -> Quote:
    """A new version of a quote (same number, version + 1); the earlier one is superseded."""
    old = get_visible(actor, Quote, quote_id, action="edit")
    if old.status in ("accepted", "superseded"):
        raise Conflict(f"报价单{QUOTE_LABELS[old.status]}，不能再修改。", code="illegal_transition")
    if db.session.scalar(select(Contract.id).where(Contract.quote_id == old.id, Contract.status != "cancelled")):
        raise Conflict("这张报价单已签订合同，不能再修改；如需变更，请走合同变更。", code="has_contract")
    priced = _priced_lines(actor.org_id, data.get("lines") if data.get("lines") is not None else [
        {"product_id": ln.product_id, "quantity": ln.quantity, "unit_price": ln.unit_price, "discount_pct": ln.discount_pct,
         "tax_rate": ln.tax_rate} for ln in old.lines])
    tz = org_timezone(actor.org_id)
    valid_until = _date(data.get("valid_until") or old.valid_until, "valid_until", "有效期")
    if valid_until < local_today(tz):
        raise ValidationFailed("有效期不能早于今天。", fields={"valid_until": "in the past"})
    moved = db.session.execute(update(Quote).where(Quote.id == old.id, Quote.status == old.status)
                               .values(status="superseded")).rowcount
    if not moved:
        raise Conflict("报价单刚被他人修改，请刷新后重试。", code="stale")
    approvals_engine.withdraw(old.org_id, "quote", old.id)  # the new version is what gets approved, if it must be
    q = Quote(org_id=old.org_id, owner_id=old.owner_id, department_id=old.department_id, number=old.number,
              version=old.version + 1, customer_id=old.customer_id, opportunity_id=old.opportunity_id, status="draft",
              valid_until=valid_until, note=(data.get("note") if "note" in data else old.note))
    _fill_quote(q, priced)
    db.session.add(q)
    db.session.flush()
    return q


_QUOTE_MOVES = {"send": ({"draft", "approved"}, "sent"), "accept": ({"draft", "approved", "sent"}, "accepted"),
                "reject": ({"draft", "approved", "sent"}, "rejected")}
_LIVE_QUOTE = ("draft", "approving", "approved", "sent")  # what the expiry job expires


@service
def move_quote(actor: Actor, quote_id: int, move: str, by: str | None = None, on_sent=None) -> Quote:
    """send / accept / reject (the customer's answer, as staff record it). ``on_sent(quote)`` tells
    the customer when it is sent (the WeChat layer: a notice to their verified users) and says how
    many were told (``quote.notified_followers``)."""
    q = get_visible(actor, Quote, quote_id, action="edit")
    q.notified_followers = 0
    if move == "send" and q.status == "draft" and _submit_quote(actor, q):
        return q  # 审批中: it goes to the customer once approved
    if move in ("accept", "reject") and q.status == "draft" and approvals_engine.needs_approval(q.org_id, "quote", _quote_facts(q)):
        raise Conflict("这张报价单需要审批：审批通过并发送给客户后，才能记录客户的答复。", code="approval_required")
    _move_quote(q, move, by or actor.label)
    q.notified_followers = on_sent(q) if move == "send" and on_sent is not None else 0
    return q


def _discount_facts(lines) -> dict:
    """What approval conditions read of priced lines: the discount over the whole document and the deepest on a line."""
    gross = sum((money.money(ln.quantity * ln.unit_price) for ln in lines), Decimal(0))
    off = sum((money.money(ln.quantity * ln.unit_price * ln.discount_pct / 100) for ln in lines), Decimal(0))
    return {"discount_pct": (off * 100 / gross).quantize(Decimal("0.01")) if gross else Decimal(0),
            "max_line_discount_pct": max((ln.discount_pct for ln in lines), default=Decimal(0))}


def _quote_facts(q: Quote) -> dict:
    return {"amount": q.total, **_discount_facts(q.lines)}


def _submit_quote(actor: Actor, q: Quote) -> bool:
    """Sending a quote whose flow applies (say a discount over 10 %) asks for approval first: True when it now waits."""
    if q.valid_until < local_today(org_timezone(q.org_id)):
        return False  # _move_quote expires it and says so
    from crm_core.customers.customers import customer_names

    req = approvals_engine.submit(
        q.org_id, "quote", q.id, title=f"{q.number}" + (f" v{q.version}" if q.version > 1 else ""),
        detail=f"{customer_names([q.customer_id]).get(q.customer_id, '')} · {money.fmt(q.total)} 元",
        facts=_quote_facts(q), requested_by=actor.employee_id, owner_id=q.owner_id,
        record=("quote", q.id))
    if req is None:
        return False
    if not db.session.execute(update(Quote).where(Quote.id == q.id, Quote.status == "draft").values(status="approving")).rowcount:
        raise Conflict("报价单刚被他人处理，请刷新。", code="stale")
    db.session.refresh(q)
    return True


def _quote_approved(actor: Actor, quote_id: int, comment: str | None) -> None:
    q = db.session.get(Quote, quote_id)
    if db.session.execute(update(Quote).where(Quote.id == quote_id, Quote.status == "approving").values(status="approved")).rowcount:
        if q.owner_id:
            outbox.notify_staff(q.owner_id, "quote_approved", f"报价单 {q.number}（{money.fmt(q.total)} 元）已审批通过，可以发送给客户。",
                                org_id=q.org_id, dedupe_key=f"quote-approved:{q.id}", quote_id=q.id)
    db.session.refresh(q)


def _quote_rejected(actor: Actor, quote_id: int, comment: str | None) -> None:
    q = db.session.get(Quote, quote_id)
    if db.session.execute(update(Quote).where(Quote.id == quote_id, Quote.status == "approving").values(status="draft")).rowcount:
        db.session.refresh(q)
        if comment:
            q.note = ((q.note + "\n") if q.note else "") + f"审批意见：{comment}"
        if q.owner_id:
            outbox.notify_staff(q.owner_id, "quote_rejected", f"报价单 {q.number} 审批未通过。{comment or ''}", org_id=q.org_id,
                                dedupe_key=f"quote-rejected:{q.id}:{utcnow():%Y%m%d%H%M%S}", quote_id=q.id)
        db.session.flush()


def _move_quote(q: Quote, move: str, by: str) -> None:
    allowed, target = _QUOTE_MOVES[move]
    if q.status in _LIVE_QUOTE and q.valid_until < local_today(org_timezone(q.org_id)):
        q.status = "expired"  # the expiry job has not run yet today
    if q.status not in allowed:
        raise Conflict(f"报价单当前为「{QUOTE_LABELS[q.status]}」，不能{ {'send': '发送', 'accept': '接受', 'reject': '拒绝'}[move] }。",
                       code="illegal_transition")
    values = {"status": target}
    if move in ("accept", "reject"):
        values.update(decided_at=utcnow(), decided_by=by[:100])
    if not db.session.execute(update(Quote).where(Quote.id == q.id, Quote.status == q.status).values(**values)).rowcount:
        raise Conflict("报价单刚被他人处理，请刷新。", code="stale")
    db.session.refresh(q)
    if target in ("sent", "accepted"):
        integration.emit(q.org_id, f"quote.{target}", f"quote:{q.id}:v{q.version}", quote_dict(q))


def customer_quote(customer_id: int | None, quote_id: int) -> Quote:
    """A quote as a user of customer ``customer_id`` may read it (never a draft)."""
    q = db.session.get(Quote, quote_id)
    if q is None or customer_id is None or q.customer_id != customer_id or q.status in ("draft", "approving", "approved"):
        from crm_core.errors import NotFound

        raise NotFound("报价单不存在或不是发给您的。")
    return q


def customer_answer(customer_id: int | None, quote_id: int, accept: bool, who: str) -> Quote:
    """The customer accepts or declines (on the phone); the quote's owner is told."""
    q = customer_quote(customer_id, quote_id)
    _move_quote(q, "accept" if accept else "reject", who)
    if q.owner_id:
        outbox.notify_staff(q.owner_id, "quote_answered", f"{who}{'接受' if accept else '拒绝'}了报价单 {q.number}"
                            f"（{money.fmt(q.total)} 元）。", org_id=q.org_id, dedupe_key=f"quote-answered:{q.id}", quote_id=q.id)
    return q


@jobs.periodic(every=3600)
def expire_quotes() -> int:
    """失效: quotes not yet answered (draft, in approval, approved or sent) after their validity are expired (hourly; each
    organisation's own date)."""
    from crm_core.org.models import Organization

    n = 0
    for org_id in db.session.scalars(select(Organization.id)):
        today = local_today(org_timezone(org_id))
        for quote_id in db.session.scalars(select(Quote.id).where(Quote.org_id == org_id, Quote.status == "approving",
                                                                  Quote.valid_until < today)):
            approvals_engine.withdraw(org_id, "quote", quote_id)  # nobody approves a quote past its validity
        n += db.session.execute(update(Quote).where(Quote.org_id == org_id, Quote.status.in_(_LIVE_QUOTE),
                                                    Quote.valid_until < today).values(status="expired")).rowcount or 0
    db.session.commit()
    return n


def _listing(actor: Actor, model, page: int, per_page: int, **equal):
    """A scoped, newest-first page of ``model``, filtered on the columns given a value."""
    actor.require(model.__scope_object__, "view")
    stmt = scoped_select(actor, model)
    for column, value in equal.items():
        if value:
            stmt = stmt.where(getattr(model, column) == value)
    return paginate(stmt, model.id.desc(), page=page, per_page=per_page)


def list_quotes(actor: Actor, *, customer_id: int | None = None, opportunity_id: int | None = None, status: str | None = None,
                page: int = 1, per_page: int = 20):
    return _listing(actor, Quote, page, per_page, customer_id=customer_id, opportunity_id=opportunity_id, status=status)


CUSTOMER_QUOTE_FIELDS = ("id", "number", "version", "status", "status_label", "valid_until", "subtotal", "discount", "tax",
                         "total", "decided_at", "decided_by", "lines")


def customer_quote_dict(q: Quote) -> dict:
    """What the customer may read of a quote: never its cost, margin or owner."""
    d = quote_dict(q)
    return {k: d[k] for k in CUSTOMER_QUOTE_FIELDS}


def quote_dict(q: Quote) -> dict:
    f = money.fmt
    return {"id": q.id, "number": q.number, "version": q.version, "status": q.status, "status_label": QUOTE_LABELS[q.status],
            "customer_id": q.customer_id, "opportunity_id": q.opportunity_id, "owner_id": q.owner_id,
            "valid_until": q.valid_until.isoformat(), "subtotal": f(q.subtotal), "discount": f(q.discount), "tax": f(q.tax),
            "total": f(q.total), "cost": f(q.cost), "expected_profit": f(q.expected_profit), "note": q.note,
            "decided_at": q.decided_at.isoformat() + "Z" if q.decided_at else None, "decided_by": q.decided_by,
            "lines": [{"seq": ln.seq, "product_id": ln.product_id, "name": ln.name, "quantity": f"{ln.quantity.normalize():f}",
                       "unit_price": f(ln.unit_price), "discount_pct": f(ln.discount_pct), "tax_rate": f(ln.tax_rate),
                       "gross": f(ln.gross), "discount": f(ln.discount), "tax": f(ln.tax), "total": f(ln.total)}
                      for ln in q.lines]}


def quote_pdf(q: Quote) -> bytes:
    """The quote as the customer receives it (:mod:`crm_core.sales.quote_pdf`)."""
    from crm_core.clock import to_local
    from crm_core.org.models import Employee, Organization
    from crm_core.sales import quote_pdf as pdf

    org = db.session.get(Organization, q.org_id)
    owner = db.session.get(Employee, q.owner_id) if q.owner_id else None
    customer = db.session.get(Customer, q.customer_id)
    issued = to_local(q.created_at, org_timezone(q.org_id)).date().isoformat()
    return pdf.render(q, org.name, customer.name, owner.name if owner else None, issued)


# --- contracts ---------------------------------------------------------------------------------
def _plan(amount: Decimal, plan) -> list[tuple[date, Decimal]]:
    if not isinstance(plan, list) or not plan:
        raise ValidationFailed("请填写付款计划（至少一期）。", fields={"payment_plan": "at least one instalment"})
    if len(plan) > MAX_INSTALMENTS:
        raise ValidationFailed(f"付款计划最多 {MAX_INSTALMENTS} 期。", fields={"payment_plan": f"at most {MAX_INSTALMENTS}"})
    out = []
    for i, item in enumerate(plan):
        if not isinstance(item, dict):
            raise ValidationFailed(f"第 {i + 1} 期格式不对。", fields={f"payment_plan.{i}": "object"})
        due = _date(item.get("due_date"), f"payment_plan.{i}.due_date", f"第 {i + 1} 期到期日")
        part = money.parse(item.get("amount"), f"payment_plan.{i}.amount", label=f"第 {i + 1} 期金额")
        if part <= 0:
            raise ValidationFailed(f"第 {i + 1} 期金额须大于 0。", fields={f"payment_plan.{i}.amount": "must be > 0"})
        if out and due < out[-1][0]:
            raise ValidationFailed("各期到期日须按先后顺序填写。", fields={f"payment_plan.{i}.due_date": "before the previous one"})
        out.append((due, part))
    planned = sum((p for _, p in out), Decimal("0.00"))
    if planned != amount:
        gap = f"少 {amount - planned} 元" if planned < amount else f"多 {planned - amount} 元"
        raise ValidationFailed(f"付款计划合计 {planned} 元，与合同金额 {amount} 元不符（{gap}）。",
                               fields={"payment_plan": f"adds up to {planned}, contract amount {amount}"})
    return out


@service
def create_contract(actor: Actor, data: dict) -> Contract:
    """合同 from an accepted (or sent) quote — its total is the amount — or from an opportunity or on
    its own with an amount; the payment plan must add up to it exactly. Waits for approval."""
    actor.require("contract", "create")
    customer = resolve_reference(actor, "customer_id", data.get("customer_id"))
    quote = opp = None
    if data.get("quote_id") is not None:
        quote = resolve_reference(actor, "quote_id", data["quote_id"])
        # locked: two requests signing the same quote at once queue here, and the second sees the first's contract
        quote = db.session.scalars(select(Quote).where(Quote.id == quote.id).with_for_update()
                                   .execution_options(populate_existing=True)).one()
        if quote.customer_id != customer.id:
            raise ValidationFailed("报价单不属于该客户。", fields={"quote_id": "belongs to another customer"})
        if quote.status not in ("sent", "accepted"):
            raise Conflict(f"报价单当前为「{QUOTE_LABELS[quote.status]}」，不能据此签订合同。", code="illegal_transition")
        if db.session.scalar(select(Contract.id).where(Contract.quote_id == quote.id, Contract.status != "cancelled")):
            raise Conflict("这张报价单已签订过合同。", code="duplicate_contract")
    if data.get("opportunity_id") is not None or (quote and quote.opportunity_id):
        opp = resolve_reference(actor, "opportunity_id", data.get("opportunity_id") or quote.opportunity_id)
        if opp.customer_id != customer.id:
            raise ValidationFailed("商机不属于该客户。", fields={"opportunity_id": "belongs to another customer"})
    lines: list[ContractLine] = []  # an amount-only contract has none (and no orders)
    if quote is not None:
        amount = quote.total
        if data.get("amount") is not None and money.parse(data["amount"], "amount") != amount:
            raise ValidationFailed(f"合同金额应与报价单合计 {amount} 元一致。", fields={"amount": f"the quote's total is {amount}"})
        lines = [ContractLine(seq=ln.seq, product_id=ln.product_id, name=ln.name, quantity=ln.quantity, unit_price=ln.unit_price,
                              discount_pct=ln.discount_pct, tax_rate=ln.tax_rate, total=ln.total) for ln in quote.lines]
    elif data.get("lines"):
        priced = _priced_lines(actor.org_id, data["lines"])
        amount = money.totals([a for _, _, a in priced]).total
        lines = [ContractLine(seq=i + 1, product_id=p.id, name=p.name, quantity=inputs["quantity"], unit_price=inputs["unit_price"],
                              discount_pct=inputs["discount_pct"], tax_rate=inputs["tax_rate"], total=a.total)
                 for i, (p, inputs, a) in enumerate(priced)]
    else:
        amount = money.parse(data.get("amount"), "amount", label="合同金额")
    if amount <= 0:
        raise ValidationFailed("合同金额须大于 0。", fields={"amount": "must be > 0"})
    plan = _plan(amount, data.get("payment_plan"))
    tz = org_timezone(actor.org_id)
    title = (data.get("title") or "").strip()[:200] or f"{customer.name} 销售合同"
    c = Contract(**_owner_fields(actor), number=_number(actor.org_id, "HT", tz), title=title, customer_id=customer.id,
                 opportunity_id=opp.id if opp else None, quote_id=quote.id if quote else None, status="pending", amount=amount,
                 received=Decimal("0.00"),
                 signed_on=_date(data["signed_on"], "signed_on", "签订日期") if data.get("signed_on") else local_today(tz),
                 note=(data.get("note") or "").strip()[:2000] or None)
    c.instalments = [Instalment(org_id=actor.org_id, seq=i + 1, due_date=due, amount=part, received=Decimal("0.00"))
                     for i, (due, part) in enumerate(plan)]
    for ln in lines:
        ln.ordered, ln.ordered_amount = Decimal(0), Decimal("0.00")
    c.lines = lines
    db.session.add(c)
    db.session.flush()
    req = approvals_engine.submit(c.org_id, "contract", c.id, title=f"{c.number} {c.title}",
                                  detail=f"{customer.name} · {money.fmt(amount)} 元",
                                  facts={"amount": amount, **_discount_facts(c.lines)}, requested_by=actor.employee_id,
                                  owner_id=c.owner_id, record=("contract", c.id))
    if req is None:  # no step of the flow applies: it takes effect as it is signed
        _contract_approved(actor, c.id, "无需审批")
        db.session.refresh(c)
    return c


@service
def approve_contract(actor: Actor, contract_id: int, comment: str | None = None) -> Contract:
    """审批通过 by this step's approver (``crm_core.org.approvals_engine``); when the flow's last step approves, the
    contract takes effect once (a second approval is 409), and a customer who has not traded yet becomes a trading
    customer (客户转交易)."""
    c = _contract_for_decision(actor, contract_id)
    approvals_engine.decide(actor, "contract", c.id, True, comment)
    db.session.refresh(c)
    return c


@service
def reject_contract(actor: Actor, contract_id: int, comment: str | None = None) -> Contract:
    """审批驳回: a pending contract does not take effect; the reason is kept on it and its owner is told. A rejected
    contract stays on record (its number is used); a corrected one is a new contract."""
    c = _contract_for_decision(actor, contract_id)
    approvals_engine.decide(actor, "contract", c.id, False, comment)
    db.session.refresh(c)
    return c


def _contract_for_decision(actor: Actor, contract_id: int) -> Contract:
    """The contract an approver decides: they may not see it in their data scope (a finance director named in the
    flow), so it is found by id in their organisation; the engine decides whether they hold its step."""
    from crm_core.errors import NotFound

    c = db.session.get(Contract, contract_id)
    if c is None or c.org_id != actor.org_id:
        raise NotFound("合同不存在。")
    if c.status != "pending":
        raise Conflict(f"合同当前为「{CONTRACT_LABELS[c.status]}」，" + ("无需再审批。" if c.status != "cancelled" else "不能审批。"),
                       code="already_decided")
    return c


def _contract_approved(actor: Actor, contract_id: int, comment: str | None) -> None:
    """The flow's last approval (or none needed): the contract takes effect."""
    from crm_core.customers.customers import recompute_customer_value

    c = db.session.get(Contract, contract_id)
    moved = db.session.execute(update(Contract).where(Contract.id == c.id, Contract.status == "pending").values(
        status="approved", approved_at=utcnow(), approved_by_id=actor.employee_id,
        decision_comment=(comment or "").strip()[:500] or None)).rowcount
    db.session.refresh(c)
    if not moved:
        raise Conflict(f"合同当前为「{CONTRACT_LABELS[c.status]}」，无需再审批。", code="already_decided")
    db.session.execute(update(Customer).where(Customer.id == c.customer_id, Customer.trading.is_(False)).values(trading=True))
    if c.quote_id:
        db.session.execute(update(Quote).where(Quote.id == c.quote_id, Quote.status == "sent").values(
            status="accepted", decided_at=utcnow(), decided_by="签订合同"))
    if c.owner_id and c.owner_id != actor.employee_id:
        outbox.notify_staff(c.owner_id, "contract_approved", f"合同 {c.number}（{money.fmt(c.amount)} 元）已审批通过。",
                            org_id=c.org_id, dedupe_key=f"contract-approved:{c.id}", contract_id=c.id)
    integration.emit(c.org_id, "contract.approved", f"contract:{c.id}", contract_dict(c))
    jobs.enqueue(recompute_customer_value, c.customer_id)


def _contract_rejected(actor: Actor, contract_id: int, comment: str | None) -> None:
    c = db.session.get(Contract, contract_id)
    moved = db.session.execute(update(Contract).where(Contract.id == c.id, Contract.status == "pending").values(
        status="rejected", approved_at=utcnow(), approved_by_id=actor.employee_id,
        decision_comment=(comment or "").strip()[:500] or None)).rowcount
    db.session.refresh(c)
    if not moved:
        raise Conflict(f"合同当前为「{CONTRACT_LABELS[c.status]}」，不能驳回。", code="already_decided")
    reason = (comment or "").strip()[:500]
    if reason:
        c.note = ((c.note + "\n") if c.note else "") + f"驳回意见：{reason}"
    if c.owner_id and c.owner_id != actor.employee_id:
        outbox.notify_staff(c.owner_id, "contract_rejected", f"合同 {c.number} 审批未通过。{reason}", org_id=c.org_id,
                            dedupe_key=f"contract-rejected:{c.id}", contract_id=c.id)
    db.session.flush()


def _visible_ids(model):
    def visible(actor: Actor, ids: list[int]) -> set[int]:
        return set(db.session.scalars(scoped_select(actor, model).where(model.id.in_(ids)).with_only_columns(model.id)))
    return visible


approvals_engine.register(approvals_engine.DocType(
    code="contract", label="合同", on_approved=_contract_approved, on_rejected=_contract_rejected,
    # before flows: the owner's superior, else anyone who may approve contracts within their scope
    default_steps=lambda org_id: [{"name": "上级审批", "approver": "manager", "levels": 1, "mode": "any"}],
    permission=("contract", "approve"), visible=_visible_ids(Contract), facts=("amount", "discount_pct", "max_line_discount_pct"),
    notice_kind="contract_submitted", notice_refs=lambda doc_id: {"contract_id": doc_id}))
approvals_engine.register(approvals_engine.DocType(
    code="quote", label="报价单", on_approved=_quote_approved, on_rejected=_quote_rejected,
    default_steps=lambda org_id: [],  # quotes go out without approval until the organisation sets a flow
    permission=("quote", "approve"), visible=_visible_ids(Quote), facts=("amount", "discount_pct", "max_line_discount_pct"),
    notice_kind="approval_requested", notice_refs=lambda doc_id: {"quote_id": doc_id}))


def list_contracts(actor: Actor, *, customer_id: int | None = None, status: str | None = None, page: int = 1, per_page: int = 20):
    return _listing(actor, Contract, page, per_page, customer_id=customer_id, status=status)


def instalment_state(i: Instalment, today: date) -> str:
    if i.received >= i.amount:
        return "paid"
    if i.due_date < today:
        return "overdue"
    return "partial" if i.received > 0 else "due"


def contract_dict(c: Contract) -> dict:
    f = money.fmt
    today = local_today(org_timezone(c.org_id))
    return {"id": c.id, "number": c.number, "title": c.title, "status": c.status, "status_label": CONTRACT_LABELS[c.status],
            "customer_id": c.customer_id, "opportunity_id": c.opportunity_id, "quote_id": c.quote_id, "owner_id": c.owner_id,
            "amount": f(c.amount), "received": f(c.received), "outstanding": f(c.amount - c.received),
            "signed_on": c.signed_on.isoformat() if c.signed_on else None,
            "approved_at": c.approved_at.isoformat() + "Z" if c.approved_at else None, "note": c.note,
            "approved_by_id": c.approved_by_id, "decision_comment": c.decision_comment,
            "created_at": c.created_at.isoformat() + "Z" if c.created_at else None,
            "instalments": [{"id": i.id, "seq": i.seq, "due_date": i.due_date.isoformat(), "amount": f(i.amount),
                             "received": f(i.received), "outstanding": f(i.amount - i.received),
                             "state": instalment_state(i, today)} for i in c.instalments],
            "lines": [{"id": ln.id, "seq": ln.seq, "product_id": ln.product_id, "name": ln.name, "quantity": money.qty(ln.quantity),
                       "unit_price": f(ln.unit_price), "discount_pct": f(ln.discount_pct), "tax_rate": f(ln.tax_rate),
                       "total": f(ln.total), "ordered": money.qty(ln.ordered), "to_order": money.qty(ln.quantity - ln.ordered)}
                      for ln in c.lines]}


# --- receipts ----------------------------------------------------------------------------------
@service
def record_receipt(actor: Actor, data: dict) -> Receipt:
    """回款登记: matched to the named instalment, or to the oldest open instalments in due order.
    More than is outstanding is refused; the contract row is locked meanwhile, so concurrent
    receipts on one contract queue up instead of overpaying an instalment."""
    actor.require("receipt", "create")
    contract = resolve_reference(actor, "contract_id", data.get("contract_id"))
    contract = db.session.scalars(select(Contract).where(Contract.id == contract.id).with_for_update()
                                  .execution_options(populate_existing=True)).one()
    if contract.status not in ("approved", "completed"):
        raise Conflict(f"合同当前为「{CONTRACT_LABELS[contract.status]}」，生效后才能登记回款。", code="contract_not_effective")
    amount = money.parse(data.get("amount"), "amount", label="回款金额")
    if amount <= 0:
        raise ValidationFailed("回款金额须大于 0。", fields={"amount": "must be > 0"})
    tz = org_timezone(actor.org_id)
    received_on = _date(data.get("received_at") or data.get("received_on") or local_today(tz), "received_at", "回款日期")
    if received_on > local_today(tz):
        raise ValidationFailed("回款日期不能晚于今天。", fields={"received_at": "in the future"})
    method = data.get("method") or "bank"
    if method not in RECEIPT_METHODS:
        raise ValidationFailed("回款方式不正确。", fields={"method": f"one of {', '.join(RECEIPT_METHODS)}"})
    open_parts = [i for i in db.session.scalars(select(Instalment).where(Instalment.contract_id == contract.id)
                                                .order_by(Instalment.due_date, Instalment.seq)
                                                .execution_options(populate_existing=True)) if i.received < i.amount]
    if data.get("instalment_id") is not None:
        named = [i for i in open_parts if i.id == data["instalment_id"]]
        if not named:
            raise ValidationFailed("该期不属于此合同或已收齐。", fields={"instalment_id": "not an open instalment of the contract"})
        open_parts = named
    outstanding = sum((i.amount - i.received for i in open_parts), Decimal("0.00"))
    if amount > outstanding:
        raise ValidationFailed(f"回款 {amount} 元超过未收金额 {outstanding} 元。", fields={"amount": f"at most {outstanding}"})
    # the receipt is the contract owner's (their 回款 in 销售业绩统计, and in their scope), whoever records it
    r = Receipt(org_id=contract.org_id, owner_id=contract.owner_id, department_id=contract.department_id,
                number=_number(actor.org_id, "HK", tz), contract_id=contract.id,
                customer_id=contract.customer_id, amount=amount, received_on=received_on, method=method,
                note=(data.get("note") or "").strip()[:500] or None, external_ref=data.get("external_ref"))
    left = amount
    for part in open_parts:
        if left <= 0:
            break
        take = min(left, part.amount - part.received)
        # guarded anyway: never more than the instalment's amount, whatever else ran meanwhile
        if not db.session.execute(update(Instalment).where(Instalment.id == part.id,
                                                           Instalment.received + take <= Instalment.amount + _FEN_SLACK)
                                  .values(received=Instalment.received + take)).rowcount:
            raise Conflict("该期刚被另一笔回款冲销，请刷新后重试。", code="stale")
        r.allocations.append(ReceiptAllocation(instalment_id=part.id, amount=take))
        left -= take
    db.session.execute(update(Contract).where(Contract.id == contract.id).values(received=Contract.received + amount))
    db.session.execute(update(Contract).where(Contract.id == contract.id, Contract.status == "approved",
                                              Contract.received >= Contract.amount - _FEN_SLACK).values(status="completed"))
    db.session.add(r)
    db.session.flush()
    integration.emit(r.org_id, "receipt.created", f"receipt:{r.id}", receipt_dict(r))
    return r


def receipt_dict(r: Receipt) -> dict:
    return {"id": r.id, "number": r.number, "contract_id": r.contract_id, "customer_id": r.customer_id,
            "amount": money.fmt(r.amount), "received_at": r.received_on.isoformat(), "method": r.method, "note": r.note,
            "external_ref": r.external_ref, "allocations": [{"instalment_id": a.instalment_id, "amount": money.fmt(a.amount)} for a in r.allocations]}


@jobs.periodic(every=3600)
def notify_overdue_instalments() -> int:
    """逾期提醒: an instalment past its due date and not fully received is reported once to the
    contract's owner and their manager."""
    sent = 0
    rows = db.session.execute(select(Instalment, Contract).join(Contract, Contract.id == Instalment.contract_id).where(
        Contract.status == "approved", Instalment.overdue_notified_at.is_(None), Instalment.received < Instalment.amount,
        Instalment.due_date <= utcnow().date() + timedelta(days=1))).all()  # each organisation's own date below
    for inst, c in rows:
        if inst.due_date >= local_today(org_timezone(c.org_id)):
            continue
        if not db.session.execute(update(Instalment).where(Instalment.id == inst.id, Instalment.overdue_notified_at.is_(None))
                                  .values(overdue_notified_at=utcnow())).rowcount:
            continue
        customer = db.session.get(Customer, c.customer_id)
        text = (f"回款逾期：{customer.name} 合同 {c.number} 第 {inst.seq} 期 {money.fmt(inst.amount - inst.received)} 元"
                f"已于 {inst.due_date.isoformat()} 到期未收。")
        for emp in {c.owner_id, manager_of(c.owner_id) if c.owner_id else None} - {None}:
            outbox.notify_staff(emp, "instalment_overdue", text, org_id=c.org_id,
                                dedupe_key=f"instalment-overdue:{inst.id}:{emp}", contract_id=c.id)
            sent += 1
    db.session.commit()
    return sent



# --- monthly targets (销售目标) ------------------------------------------------------------------
@service
def set_targets(actor: Actor, rows: list[dict]) -> int:
    """Set employees' monthly targets ``[{employee_id, month: "2026-12", amount}]`` — a manager for
    the people within their contract scope, an administrator for anyone; 0 clears one. All or
    nothing (the caller's transaction rolls back on the first refusal)."""
    from crm_core.org.models import Employee
    from crm_core.sales.models import SalesTarget

    actor.require("contract", "approve")
    if not isinstance(rows, list) or not rows or len(rows) > 12_000:
        raise ValidationFailed("请提供 1–12000 条目标。", fields={"targets": "1 to 12000 rows"})
    now = utcnow()
    for i, row in enumerate(rows):
        at = f"targets.{i}"
        emp_id = row.get("employee_id")
        emp = db.session.get(Employee, emp_id) if isinstance(emp_id, int) and not isinstance(emp_id, bool) else None
        if emp is None or emp.org_id != actor.org_id:
            raise ValidationFailed(f"第 {i + 1} 条的职员不存在。", fields={f"{at}.employee_id": "unknown employee"})
        text = str(row.get("month") or "")
        try:
            month = date.fromisoformat(f"{text}-01") if len(text) == 7 else None
        except ValueError:
            month = None
        if month is None:
            raise ValidationFailed(f"第 {i + 1} 条的月份应为 2026-12 这样的格式。", fields={f"{at}.month": "YYYY-MM"})
        amount = money.parse(row.get("amount"), f"{at}.amount", label=f"第 {i + 1} 条目标金额")
        target = db.session.scalars(select(SalesTarget).where(SalesTarget.org_id == actor.org_id, SalesTarget.owner_id == emp.id,
                                                              SalesTarget.month == month)).first()
        if target is None:
            target = SalesTarget(org_id=actor.org_id, owner_id=emp.id, department_id=emp.department_id, month=month,
                                 amount=amount, updated_at=now)
            db.session.add(target)
        target.amount, target.updated_at = amount, now
        db.session.flush()
        # the one data-scope rule decides: the target must fall within the actor's contract scope
        if db.session.scalar(scoped_select(actor, SalesTarget).with_only_columns(SalesTarget.id)
                             .where(SalesTarget.id == target.id)) is None:
            raise ValidationFailed(f"{emp.name} 不在您的管理范围内，不能为其设定目标。",
                                   fields={f"{at}.employee_id": "outside your scope"})
        if amount == 0:
            db.session.delete(target)
    db.session.flush()
    return len(rows)


# --- the customer 360 view: contracts and what is still owed ---------------------------------------
def _customer_contracts(actor: Actor, customer) -> list[dict]:
    if not actor.can("contract", "view"):
        return []
    rows = db.session.scalars(scoped_select(actor, Contract).where(Contract.customer_id == customer.id)
                              .order_by(Contract.id.desc()).limit(20)).all()
    return [{"id": c.id, "number": c.number, "title": c.title, "status": c.status, "status_label": CONTRACT_LABELS[c.status],
             "amount": money.fmt(c.amount), "received": money.fmt(c.received), "outstanding": money.fmt(c.amount - c.received)}
            for c in rows]


def _customer_money(actor: Actor, customer) -> dict:
    """应收 and 逾期 on the customer's effective contracts the actor may see."""
    from sqlalchemy import case, func

    if not actor.can("contract", "view"):
        return {}
    today = local_today(org_timezone(customer.org_id))
    left = Instalment.amount - Instalment.received
    owed, overdue = db.session.execute(
        select(func.coalesce(func.sum(left), 0), func.coalesce(func.sum(case((Instalment.due_date < today, left), else_=0)), 0))
        .join(Contract, Contract.id == Instalment.contract_id)
        .where(Contract.customer_id == customer.id, Contract.status == "approved", Instalment.received < Instalment.amount,
               Contract.id.in_(scoped_select(actor, Contract).with_only_columns(Contract.id)))).one()
    return {"receivable": money.fmt(Decimal(owed)), "overdue_receivable": money.fmt(Decimal(overdue))}


def _register_360() -> None:
    from crm_core.customers.customers import register_360_figures, register_360_section

    register_360_section("contracts", _customer_contracts)
    register_360_figures(_customer_money)


_register_360()
