"""Reports for managers: the sales funnel, customers by source, receivables by ageing (应收款汇总表) and
due instalments (到期债权表), within the data scope."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from crm_core.customers.customers import customer_names
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.org.permissions import Actor, visible_clause
from crm_core.sales.models import Opportunity, SalesStage
from crm_core.sales.opportunities import ensure_default_method


def _range(stmt, col, date_from: date | None, date_to: date | None, org_id: int):
    """``stmt`` limited to rows whose ``col`` falls on the local days ``date_from``–``date_to`` of the organisation."""
    from crm_core.clock import day_bounds
    from crm_core.org.settings import org_timezone

    tz = org_timezone(org_id)
    if date_from:
        stmt = stmt.where(col >= day_bounds(date_from, date_from, tz)[0])
    if date_to:
        stmt = stmt.where(col < day_bounds(date_to, date_to, tz)[1])
    return stmt


def funnel(actor: Actor, method_id: int | None = None, date_from: date | None = None, date_to: date | None = None) -> dict:
    """销售漏斗: open opportunities per stage (count, amount, probability-weighted amount),
    plus won and lost, for opportunities created in the range that the actor may see."""
    actor.require("opportunity", "view")
    method = ensure_default_method(actor.org_id) if not method_id else None
    method_id = method_id or method.id
    scope = visible_clause(actor, Opportunity)
    base = _range(select(Opportunity.stage_id, Opportunity.status, func.count(), func.coalesce(func.sum(Opportunity.amount), 0))
                  .where(scope, Opportunity.method_id == method_id), Opportunity.created_at, date_from, date_to, actor.org_id)
    rows = db.session.execute(base.group_by(Opportunity.stage_id, Opportunity.status)).all()
    stages = db.session.scalars(select(SalesStage).where(SalesStage.method_id == method_id).order_by(SalesStage.seq)).all()
    per_stage = {s.id: {"count": 0, "amount": 0.0} for s in stages}
    won = {"count": 0, "amount": 0.0}
    lost = {"count": 0, "amount": 0.0}
    for stage_id, status, count, amount in rows:
        target = per_stage.get(stage_id) if status == "open" else (won if status == "won" else lost)
        if target is not None:
            target["count"] += count
            target["amount"] += float(amount)
    out_stages = [{"stage_id": s.id, "name": s.name, "seq": s.seq, "probability": s.probability,
                   "count": per_stage[s.id]["count"], "amount": round(per_stage[s.id]["amount"], 2),
                   "weighted_amount": round(per_stage[s.id]["amount"] * s.probability / 100, 2)} for s in stages]
    total_open = sum(s["count"] for s in out_stages)
    closed = won["count"] + lost["count"]
    return {"method_id": method_id, "stages": out_stages, "won": won, "lost": lost,
            "totals": {"open_count": total_open, "open_amount": round(sum(s["amount"] for s in out_stages), 2),
                       "weighted_amount": round(sum(s["weighted_amount"] for s in out_stages), 2),
                       "win_rate": round(won["count"] / closed, 3) if closed else None}}


def customers_by_source(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """客户来源分析: customers per source, trading and not, within the data scope."""
    actor.require("customer", "view")
    stmt = _range(select(Customer.source, Customer.trading, func.count()).where(visible_clause(actor, Customer),
                                                                                Customer.status == "active"),
                  Customer.created_at, date_from, date_to, actor.org_id).group_by(Customer.source, Customer.trading)
    by: dict[str, dict] = {}
    for source, trading, count in db.session.execute(stmt):
        row = by.setdefault(source or "unknown", {"source": source or "unknown", "total": 0, "trading": 0, "non_trading": 0})
        row["total"] += count
        row["trading" if trading else "non_trading"] += count
    items = sorted(by.values(), key=lambda r: -r["total"])
    total = sum(r["total"] for r in items)
    for r in items:
        r["share"] = round(r["total"] / total, 3) if total else 0
        r["conversion_rate"] = round(r["trading"] / r["total"], 3) if r["total"] else 0
    return {"items": items, "total": total}


# --- the money chain's reports (#19 item 9; amounts as two-decimal strings) -------------------------
AGEING = (("not_due", "未到期"), ("d1_30", "逾期1–30天"), ("d31_60", "逾期31–60天"), ("d61_90", "逾期61–90天"),
          ("d90_plus", "逾期90天以上"))


def _ageing_bucket(days_overdue):
    """A SQL expression naming the ageing bucket of an instalment ``days_overdue`` days past due."""
    from sqlalchemy import case

    return case((days_overdue <= 0, "not_due"), (days_overdue <= 30, "d1_30"), (days_overdue <= 60, "d31_60"),
                (days_overdue <= 90, "d61_90"), else_="d90_plus")


def _days_between(later: date, col):
    """Whole days from ``col`` (a DATE column) to ``later``, on PostgreSQL and SQLite alike."""
    from sqlalchemy import Date, Integer, cast, literal

    if db.engine.dialect.name == "postgresql":
        return cast(literal(later), Date) - col
    return cast(func.julianday(literal(later.isoformat())) - func.julianday(col), Integer)


def receivables(actor: Actor, as_of: date | None = None) -> dict:
    """应收款汇总表: what each customer still owes on effective contracts and as 其他应收 (paid service), by ageing
    bucket, within the data scope (contracts, and receivables for those who see receipts); ``other`` is the part
    that is 其他应收. One grouped query each."""
    from crm_core.clock import local_today
    from crm_core.org.settings import org_timezone
    from crm_core.sales.models import Contract, Instalment

    actor.require("contract", "view")
    as_of = as_of or local_today(org_timezone(actor.org_id))
    bucket = _ageing_bucket(_days_between(as_of, Instalment.due_date)).label("bucket")
    outstanding = func.sum(Instalment.amount - Instalment.received)
    rows = db.session.execute(
        select(Contract.customer_id, bucket, outstanding)
        .join(Instalment, Instalment.contract_id == Contract.id)
        .where(visible_clause(actor, Contract), Contract.status == "approved", Instalment.received < Instalment.amount)
        .group_by(Contract.customer_id, bucket)).all()
    zero = Decimal("0.00")
    per: dict[int, dict] = {}
    for customer_id, b, amount in rows:
        per.setdefault(customer_id, {k: zero for k, _ in AGEING})[b] += money_of(amount)
    other: dict[int, Decimal] = {}
    if actor.can("receipt", "view"):  # 其他应收 (paid service) ages with the instalments
        from crm_core.sales.models import OtherReceivable

        ob = _ageing_bucket(_days_between(as_of, OtherReceivable.due_date)).label("bucket")
        for customer_id, b, amount in db.session.execute(
                select(OtherReceivable.customer_id, ob, func.sum(OtherReceivable.amount - OtherReceivable.received))
                .where(visible_clause(actor, OtherReceivable), OtherReceivable.status == "open")
                .group_by(OtherReceivable.customer_id, ob)):
            per.setdefault(customer_id, {k: zero for k, _ in AGEING})[b] += money_of(amount)
            other[customer_id] = other.get(customer_id, zero) + money_of(amount)
    names = customer_names(per)
    out, totals = [], {k: zero for k, _ in AGEING}
    for cid, buckets in sorted(per.items(), key=lambda kv: -sum(kv[1].values())):
        for k in buckets:
            totals[k] += buckets[k]
        out.append({"customer_id": cid, "customer": names.get(cid), **{k: str(v) for k, v in buckets.items()},
                    "outstanding": str(sum(buckets.values(), zero)), "overdue": str(sum(v for k, v in buckets.items() if k != "not_due")),
                    "other": str(other.get(cid, zero))})
    return {"as_of": as_of.isoformat(), "buckets": [{"key": k, "label": label} for k, label in AGEING], "rows": out,
            "totals": {**{k: str(v) for k, v in totals.items()}, "outstanding": str(sum(totals.values(), zero)),
                       "overdue": str(sum(v for k, v in totals.items() if k != "not_due"))}}


def overdue(actor: Actor, date_from: date | None = None, date_to: date | None = None, page: int = 1,
            per_page: int = 100) -> dict:
    """到期债权表: instalments due in the range (default: everything due up to today) that are not
    fully received, most overdue first, with their days overdue, within the data scope. A page of
    rows; the totals cover them all."""
    from crm_core.clock import local_today
    from crm_core.org.settings import org_timezone
    from crm_core.sales.models import Contract, Instalment

    actor.require("contract", "view")
    today = local_today(org_timezone(actor.org_id))
    where = [visible_clause(actor, Contract), Contract.status == "approved", Instalment.received < Instalment.amount,
             Instalment.due_date <= (date_to or today)]
    if date_from:
        where.append(Instalment.due_date >= date_from)
    count, total = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Instalment.amount - Instalment.received), 0))
        .select_from(Instalment).join(Contract, Contract.id == Instalment.contract_id).where(*where)).one()
    stmt = (select(Instalment, Contract.number, Contract.customer_id, Customer.name)
            .join(Contract, Contract.id == Instalment.contract_id).join(Customer, Customer.id == Contract.customer_id)
            .where(*where).order_by(Instalment.due_date, Instalment.id).limit(per_page).offset((page - 1) * per_page))
    rows = []
    for inst, number, customer_id, name in db.session.execute(stmt):
        rows.append({"instalment_id": inst.id, "contract_id": inst.contract_id, "contract_number": number,
                     "customer_id": customer_id, "customer": name, "seq": inst.seq, "due_date": inst.due_date.isoformat(),
                     "amount": str(money_of(inst.amount)), "received": str(money_of(inst.received)),
                     "outstanding": str(money_of(inst.amount - inst.received)), "days_overdue": max(0, (today - inst.due_date).days)})
    return {"as_of": today.isoformat(), "rows": rows, "page": page, "per_page": per_page,
            "totals": {"count": count, "outstanding": str(money_of(total))}}


def money_of(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def sales_performance(actor: Actor, year: int, by: str = "person") -> dict:
    """销售业绩统计: per person (or department) and month of ``year``, the contracted amount (approved
    contracts by signing date), the money received (receipts by their date) and the monthly
    target, with completion = contracted / target — within the data scope. Four grouped queries."""
    from sqlalchemy import Integer, cast, extract

    from crm_core.org.models import Department, EmployeePosition, Position
    from crm_core.org.organization import employee_names
    from crm_core.sales.models import Contract, Receipt, SalesTarget

    actor.require("contract", "view")
    start, end = date(year, 1, 1), date(year + 1, 1, 1)

    def month(col):
        return cast(extract("month", col), Integer)

    cells: dict[int, dict[int, dict]] = {}
    zero = Decimal("0.00")

    def add(owner, m, key, amount):
        if owner is None:
            return
        row = cells.setdefault(owner, {})
        row.setdefault(int(m), {"target": zero, "contracted": zero, "received": zero})[key] += money_of(amount)

    for owner, m, amount in db.session.execute(
            select(Contract.owner_id, month(Contract.signed_on), func.sum(Contract.amount))
            .where(visible_clause(actor, Contract), Contract.status.in_(("approved", "completed")),
                   Contract.signed_on >= start, Contract.signed_on < end)
            .group_by(Contract.owner_id, month(Contract.signed_on))):
        add(owner, m, "contracted", amount)
    if actor.can("receipt", "view"):
        for owner, m, amount in db.session.execute(
                select(Receipt.owner_id, month(Receipt.received_on), func.sum(Receipt.amount))
                .where(visible_clause(actor, Receipt), Receipt.received_on >= start, Receipt.received_on < end)
                .group_by(Receipt.owner_id, month(Receipt.received_on))):
            add(owner, m, "received", amount)
    for owner, m, amount in db.session.execute(
            select(SalesTarget.owner_id, month(SalesTarget.month), SalesTarget.amount)
            .where(visible_clause(actor, SalesTarget, "contract"), SalesTarget.month >= start, SalesTarget.month < end)):
        add(owner, m, "target", amount)

    names = employee_names(cells)
    home = dict(db.session.execute(select(EmployeePosition.employee_id, Position.department_id)
                                   .join(Position, Position.id == EmployeePosition.position_id)
                                   .where(EmployeePosition.employee_id.in_(list(cells)))
                                   .order_by(EmployeePosition.employee_id, EmployeePosition.primary)).all()) if cells else {}
    groups: dict = {}
    for emp, months in cells.items():
        key = home.get(emp) if by == "department" else emp
        g = groups.setdefault(key, {})
        for m, v in months.items():
            cell = g.setdefault(m, {"target": zero, "contracted": zero, "received": zero})
            for k in cell:
                cell[k] += v[k]
    dept_names = dict(db.session.execute(select(Department.id, Department.name).where(Department.id.in_(
        [k for k in groups if k is not None]))).all()) if by == "department" and groups else {}

    def pct(done, target):
        return str((done * 100 / target).quantize(Decimal("0.01"))) if target else None

    def summary(months: dict) -> dict:
        t = {k: sum((v[k] for v in months.values()), zero) for k in ("target", "contracted", "received")}
        return {**{k: str(v) for k, v in t.items()}, "completion": pct(t["contracted"], t["target"])}

    rows, everything = [], {}
    for key, months in groups.items():
        for m, v in months.items():
            cell = everything.setdefault(m, {"target": zero, "contracted": zero, "received": zero})
            for k in cell:
                cell[k] += v[k]
        label = (dept_names.get(key) or "未分配部门") if by == "department" else names.get(key)
        rows.append({("department_id" if by == "department" else "employee_id"): key, "name": label,
                     "months": [{"month": m, **{k: str(v[k]) for k in v}, "completion": pct(v["contracted"], v["target"])}
                                for m, v in sorted(months.items())], **summary(months)})
    rows.sort(key=lambda r: -Decimal(r["contracted"]))
    return {"year": year, "by": by, "rows": rows, "totals": summary(everything)}



# CSV columns (wxapp.csv_export): key, Chinese header
RECEIVABLES_COLUMNS = [("customer", "客户"), *AGEING, ("overdue", "逾期合计"), ("outstanding", "应收合计")]
OVERDUE_COLUMNS = [("contract_number", "合同号"), ("customer", "客户"), ("seq", "期次"), ("due_date", "到期日"),
                   ("amount", "应收"), ("received", "已收"), ("outstanding", "未收"), ("days_overdue", "逾期天数")]
PERFORMANCE_COLUMNS = [("name", "名称"), ("month", "月份"), ("target", "目标"), ("contracted", "签约金额"),
                       ("received", "回款金额"), ("completion", "完成率%")]


def performance_rows(data: dict) -> list[dict]:
    """销售业绩统计 flattened for a spreadsheet: one row per person (or department) and month, then
    each one's year, then the total."""
    out = []
    for r in data["rows"]:
        out += [{"name": r["name"], **m} for m in r["months"]]
        out.append({"name": r["name"], "month": "全年", **{k: r[k] for k in ("target", "contracted", "received", "completion")}})
    out.append({"name": "合计", "month": "全年", **data["totals"]})
    return out


COMPETITOR_COLUMNS = [("name", "竞争对手"), ("market_share", "市场份额%"), ("met", "交锋商机"), ("won", "赢单"), ("lost", "输单"), ("open", "进行中"),
                      ("win_rate", "胜率%"), ("won_amount", "赢单金额"), ("lost_amount", "输单金额"), ("avg_price", "对手平均报价")]


def competitors(actor: Actor, date_from: date | None = None, date_to: date | None = None) -> dict:
    """竞争对手分析: per competitor (by name, as salespeople record them on opportunities), how often
    we met them and how those opportunities ended — won, lost, still open — with the win rate over
    the closed ones, the amounts, and the competitor's average quoted price; opportunities created
    in the range, within the data scope. One grouped query."""
    from sqlalchemy import case

    from crm_core.sales.models import Competitor, CompetitorCompany

    actor.require("opportunity", "view")
    # a row linked to the master counts for the company (whatever the salesperson typed); the others by their name
    name = func.coalesce(CompetitorCompany.name, func.trim(Competitor.name))
    stmt = _range(select(name, func.max(CompetitorCompany.id), func.max(CompetitorCompany.market_share),
                         func.count(func.distinct(Opportunity.id)),
                         func.count(func.distinct(case((Opportunity.status == "won", Opportunity.id)))),
                         func.count(func.distinct(case((Opportunity.status == "lost", Opportunity.id)))),
                         func.coalesce(func.sum(case((Opportunity.status == "won", Opportunity.amount), else_=0)), 0),
                         func.coalesce(func.sum(case((Opportunity.status == "lost", Opportunity.amount), else_=0)), 0),
                         func.avg(Competitor.price))
                  .join(Opportunity, Opportunity.id == Competitor.opportunity_id)
                  .outerjoin(CompetitorCompany, CompetitorCompany.id == Competitor.competitor_id)
                  .where(visible_clause(actor, Opportunity)), Opportunity.created_at, date_from, date_to, actor.org_id).group_by(name)
    rows = []
    for label, master_id, share, met, won, lost, won_amount, lost_amount, avg_price in db.session.execute(stmt):
        closed = won + lost
        rows.append({"name": label, "competitor_id": master_id, "market_share": str(money_of(share)) if share is not None else None,
                     "met": met, "won": won, "lost": lost, "open": met - closed,
                     "win_rate": str((Decimal(won) * 100 / closed).quantize(Decimal("0.01"))) if closed else None,
                     "won_amount": str(money_of(won_amount)), "lost_amount": str(money_of(lost_amount)),
                     "avg_price": str(money_of(avg_price)) if avg_price is not None else None})
    rows.sort(key=lambda r: (-r["met"], r["name"]))
    won, lost = sum(r["won"] for r in rows), sum(r["lost"] for r in rows)
    return {"rows": rows, "totals": {"competitors": len(rows), "met": sum(r["met"] for r in rows), "won": won, "lost": lost,
                                     "win_rate": str((Decimal(won) * 100 / (won + lost)).quantize(Decimal("0.01")))
                                     if won + lost else None}}


CUSTOMER_DIMENSIONS = {"source": "来源", "industry": "行业", "region": "地区", "value_level": "价值等级", "month": "新增月份"}
_CITY = re.compile(r"^(?:[^省市]{2,8}?(?:省|自治区))?([^省市区县]{2,8}?市)")


def customer_analysis(actor: Actor, by: str = "source", date_from: date | None = None, date_to: date | None = None) -> dict:
    """客户分析: the customers in scope (active, created in the range) counted by source, industry, region (the city of
    the address), value level or the month they were created — each group with how many trade, and the contracted
    and received amounts of their effective contracts the actor may see."""
    from crm_core.labels import label
    from crm_core.sales.models import Contract

    actor.require("customer", "view")
    if by not in CUSTOMER_DIMENSIONS:
        from crm_core.errors import ValidationFailed

        raise ValidationFailed("分析维度应为 source、industry、region、value_level 或 month。", fields={"by": "unknown dimension"})
    money_per = dict((cid, (money_of(a), money_of(r))) for cid, a, r in db.session.execute(
        select(Contract.customer_id, func.sum(Contract.amount), func.sum(Contract.received))
        .where(visible_clause(actor, Contract), Contract.status.in_(("approved", "completed"))).group_by(Contract.customer_id)))
    from crm_core.clock import local_date_of
    from crm_core.org.settings import org_timezone

    tz = org_timezone(actor.org_id)
    col = {"source": Customer.source, "industry": Customer.industry, "value_level": Customer.value_level,
           "region": Customer.address, "month": Customer.created_at}[by]
    stmt = _range(select(Customer.id, col, Customer.trading).where(visible_clause(actor, Customer), Customer.status == "active"),
                  Customer.created_at, date_from, date_to, actor.org_id)
    zero = Decimal("0.00")
    groups: dict[str, dict] = {}
    for cid, value, trading in db.session.execute(stmt.limit(500_000)):
        if by == "region":
            m = _CITY.match((value or "").strip())
            key = m.group(1) if m else ("其他" if (value or "").strip() else "未填写")
        elif by == "month":
            key = local_date_of(value, tz).strftime("%Y-%m") if value else "未知"
        elif by == "source":
            key = label("source", value) if value else "未填写"
        else:
            key = value or "未填写"
        g = groups.setdefault(key, {"key": key, "customers": 0, "trading": 0, "contracted": zero, "received": zero})
        g["customers"] += 1
        g["trading"] += 1 if trading else 0
        amount, received = money_per.get(cid, (zero, zero))
        g["contracted"] += amount
        g["received"] += received
    rows = sorted(groups.values(), key=(lambda r: r["key"]) if by == "month" else (lambda r: (-r["customers"], r["key"])))
    total = sum(r["customers"] for r in rows)
    out = [{**r, "contracted": str(r["contracted"]), "received": str(r["received"]),
            "share": str((Decimal(r["customers"]) * 100 / total).quantize(Decimal("0.01"))) if total else "0.00",
            "trading_rate": str((Decimal(r["trading"]) * 100 / r["customers"]).quantize(Decimal("0.01")))} for r in rows]
    return {"by": by, "label": CUSTOMER_DIMENSIONS[by], "rows": out,
            "totals": {"customers": total, "trading": sum(r["trading"] for r in rows),
                       "contracted": str(sum((r["contracted"] for r in rows), zero)),
                       "received": str(sum((r["received"] for r in rows), zero))}}


CUSTOMER_COLUMNS = [("key", "分组"), ("customers", "客户数"), ("share", "占比%"), ("trading", "交易客户"), ("trading_rate", "交易率%"),
                    ("contracted", "签约金额"), ("received", "回款金额")]


EXECUTION_GROUPS = {"contract": "合同执行明细", "customer": "合同执行汇总（按客户）", "owner": "合同执行汇总（按负责人）"}
EXECUTION_FIGURES = (("amount", "合同金额"), ("ordered", "已下单"), ("delivered", "已发货"), ("received", "已回款"),
                     ("to_deliver", "未发货"), ("outstanding", "未收款"))


def contract_execution(actor: Actor, by: str = "contract", date_from: date | None = None, date_to: date | None = None) -> dict:
    """合同执行明细 / 汇总: per effective contract (signed in the range), what was contracted, ordered (sales orders
    not cancelled), delivered (shipped by deliveries) and received (回款) — and what is still to deliver and to
    collect; or those figures summed per customer or per owner. Within the contracts' data scope; two queries."""
    from crm_core.org.organization import employee_names
    from crm_core.sales.models import Contract, SalesOrder

    actor.require("contract", "view")
    if by not in EXECUTION_GROUPS:
        from crm_core.errors import ValidationFailed

        raise ValidationFailed("汇总方式应为 contract、customer 或 owner。", fields={"by": "contract, customer or owner"})
    orders = (select(SalesOrder.contract_id, func.sum(SalesOrder.amount).label("ordered"),
                     func.sum(SalesOrder.delivered_amount).label("delivered"))
              .where(SalesOrder.status != "cancelled").group_by(SalesOrder.contract_id).subquery())
    stmt = (select(Contract.id, Contract.number, Contract.title, Contract.customer_id, Contract.owner_id, Contract.signed_on,
                   Contract.status, Contract.amount, Contract.received,
                   func.coalesce(orders.c.ordered, 0), func.coalesce(orders.c.delivered, 0))
            .outerjoin(orders, orders.c.contract_id == Contract.id)
            .where(visible_clause(actor, Contract), Contract.status.in_(("approved", "completed"))))
    if date_from:
        stmt = stmt.where(Contract.signed_on >= date_from)
    if date_to:
        stmt = stmt.where(Contract.signed_on <= date_to)
    zero = Decimal("0.00")
    rows = db.session.execute(stmt.order_by(Contract.signed_on.desc(), Contract.id.desc()).limit(50_000)).all()
    customers = customer_names(r[3] for r in rows)
    owners = employee_names(r[4] for r in rows)
    groups: dict = {}
    for cid, number, title, customer_id, owner_id, signed_on, status, amount, received, ordered, delivered in rows:
        key = {"contract": cid, "customer": customer_id, "owner": owner_id}[by]
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"contracts": 0, **{k: zero for k, _ in EXECUTION_FIGURES}}
            if by == "contract":
                g.update(contract_id=cid, number=number, title=title, signed_on=signed_on.isoformat() if signed_on else None,
                         status=status, customer_id=customer_id, customer=customers.get(customer_id), owner_id=owner_id,
                         owner=owners.get(owner_id))
            elif by == "customer":
                g.update(customer_id=customer_id, customer=customers.get(customer_id))
            else:
                g.update(owner_id=owner_id, owner=owners.get(owner_id) or "（无负责人）")
        g["contracts"] += 1
        g["amount"] += money_of(amount)
        g["ordered"] += money_of(ordered)
        g["delivered"] += money_of(delivered)
        g["received"] += money_of(received)
    totals = {"contracts": 0, **{k: zero for k, _ in EXECUTION_FIGURES}}
    out = []
    for g in groups.values():
        g["to_deliver"] = g["ordered"] - g["delivered"]
        g["outstanding"] = g["amount"] - g["received"]
        g["received_rate"] = str((g["received"] * 100 / g["amount"]).quantize(Decimal("0.01"))) if g["amount"] else None
        for k, _ in EXECUTION_FIGURES:
            totals[k] += g[k]
        totals["contracts"] += g["contracts"]
        out.append({**g, **{k: str(g[k]) for k, _ in EXECUTION_FIGURES}})
    if by != "contract":
        out.sort(key=lambda r: -Decimal(r["amount"]))
    return {"by": by, "title": EXECUTION_GROUPS[by], "date_from": date_from.isoformat() if date_from else None,
            "date_to": date_to.isoformat() if date_to else None, "rows": out,
            "totals": {**{k: str(v) for k, v in totals.items() if k != "contracts"}, "contracts": totals["contracts"],
                       "received_rate": str((totals["received"] * 100 / totals["amount"]).quantize(Decimal("0.01")))
                       if totals["amount"] else None}}


def execution_columns(by: str) -> list[tuple[str, str]]:
    head = {"contract": [("number", "合同号"), ("title", "名称"), ("customer", "客户"), ("owner", "负责人"), ("signed_on", "签订日期")],
            "customer": [("customer", "客户"), ("contracts", "合同数")],
            "owner": [("owner", "负责人"), ("contracts", "合同数")]}[by]
    return head + list(EXECUTION_FIGURES) + [("received_rate", "回款率%")]


def csv_table(report: str, data: dict) -> tuple[str, list, list[dict]]:
    """(file name, columns, rows) of a money-chain report's spreadsheet, for the API and the console alike."""
    if report == "receivables":
        return f"应收款汇总表_{data['as_of']}.csv", RECEIVABLES_COLUMNS, data["rows"] + [{"customer": "合计", **data["totals"]}]
    if report == "overdue":
        return (f"到期债权表_{data['as_of']}.csv", OVERDUE_COLUMNS,
                data["rows"] + [{"contract_number": "合计", "outstanding": data["totals"]["outstanding"]}])
    if report == "performance":
        return f"销售业绩统计_{data['year']}.csv", PERFORMANCE_COLUMNS, performance_rows(data)
    if report == "customers":
        return f"客户分析_{data['label']}.csv", CUSTOMER_COLUMNS, data["rows"] + [{"key": "合计", **data["totals"]}]
    if report == "execution":
        first = execution_columns(data["by"])[0][0]
        return f"{data['title']}.csv", execution_columns(data["by"]), data["rows"] + [{first: "合计", **data["totals"]}]
    return "竞争对手分析.csv", COMPETITOR_COLUMNS, data["rows"]
