"""报价 / 合同 / 回款 in the console (#19): quotes with priced lines and their PDF, contracts with
the payment plan, approval and receipts. Each action calls the service the API calls; the forms
only gather fields (a refused form comes back filled in, the message on top)."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.customers.customers import customer_names
from crm_core.customers.models import Customer, Product
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.org.organization import employee_names
from crm_core.org.permissions import get_visible, scoped_select
from crm_core.sales import documents as svc
from crm_core.sales.models import Contract, Quote, SalesOrder
from crm_core.sales.orders import ORDER_LABELS
from wxapp.auth import console_login_required
from wxapp.console import NAV, bp
from wxapp.pages import act, denied, form_int, quote_pdf_response, tell_quote_customer

LINE_ROWS = 6  # empty line rows on the new-quote form
PLAN_ROWS = 6
METHOD_LABELS = {"bank": "银行转账", "cash": "现金", "wechat": "微信支付", "alipay": "支付宝", "cheque": "支票", "other": "其他"}


def _page() -> int:
    value = request.args.get("page", "1")
    return max(1, int(value)) if value.isascii() and value.isdecimal() and len(value) < 7 else 1


def _customers():
    return db.session.scalars(scoped_select(g.actor, Customer).where(Customer.status == "active")
                              .order_by(Customer.name).limit(500)).all()


def _form_lines() -> list[dict]:
    """The filled-in line rows of the form (a row without a product is left out)."""
    f, lines = request.form, []
    for i in range(len(f.getlist("product_id"))):
        product_id = form_int(f.getlist("product_id")[i])
        if product_id is None:
            continue
        line = {"product_id": product_id, "quantity": (f.getlist("quantity")[i:i + 1] or ["1"])[0].strip() or "1"}
        for key in ("unit_price", "discount_pct"):
            value = (f.getlist(key)[i:i + 1] or [""])[0].strip()
            if value:
                line[key] = value
        lines.append(line)
    return lines


def _form_plan() -> list[dict]:
    f = request.form
    return [{"due_date": d.strip(), "amount": a.strip()} for d, a in zip(f.getlist("due_date"), f.getlist("plan_amount"))
            if d.strip() or a.strip()]


def _list_page(list_fn, statuses) -> tuple:
    """The list page's rows: (rows, total, status asked for, customer names)."""
    status = request.args.get("status") or None
    rows, total = list_fn(g.actor, status=status if status in statuses else None, page=_page())
    return rows, total, status, customer_names(r.customer_id for r in rows)


@bp.get("/quotes")
@console_login_required
def quotes():
    try:
        rows, total, status, names = _list_page(svc.list_quotes, svc.QUOTE_STATUSES)
    except DomainError as exc:
        return denied(exc)
    products = db.session.scalars(select(Product).where(Product.org_id == g.actor.org_id, Product.active.is_(True))
                                  .order_by(Product.code)).all()
    return render_template("console/quotes.html", rows=rows, total=total, status=status, labels=svc.QUOTE_LABELS,
                           customers=names, choices=_customers() if g.actor.can("quote", "create") else [], products=products,
                           line_rows=LINE_ROWS, owners=employee_names(q.owner_id for q in rows))


@bp.post("/quotes")
@console_login_required
def create_quote():
    return act(lambda: svc.create_quote(g.actor, {"customer_id": form_int(request.form.get("customer_id")), "lines": _form_lines(),
                                                  "valid_until": request.form.get("valid_until") or None,
                                                  "note": request.form.get("note")}),
               "报价单已保存。", url_for("console.quotes"), lambda q: url_for("console.quote", quote_id=q.id))


@bp.get("/quotes/<int:quote_id>")
@console_login_required
def quote(quote_id: int):
    try:
        q = visible_or_waiting(Quote, quote_id, "quote")
    except DomainError as exc:
        return denied(exc)
    contract = db.session.scalars(scoped_select(g.actor, Contract).where(Contract.quote_id == q.id, Contract.status != "cancelled")
                                  ).first() if g.actor.can("contract", "view") else None
    return render_template("console/quote.html", q=svc.quote_dict(q), customer=db.session.get(Customer, q.customer_id),
                           owner=employee_names([q.owner_id]).get(q.owner_id), contract=contract, plan_rows=PLAN_ROWS,
                           **_approval_state("quote", q.id))


def visible_or_waiting(model, record_id: int, record_type: str):
    """The record as its page shows it: within the data scope, or waiting for the caller's decision — an approver or
    a delegate named in its flow opens what they are asked to decide even outside their scope."""
    try:
        return get_visible(g.actor, model, record_id)
    except DomainError:
        from crm_core.org import approvals_engine

        record = db.session.get(model, record_id)
        if record is not None and record.org_id == g.actor.org_id and any(
                i["record"] == {"type": record_type, "id": record_id} for i in approvals_engine.pending_items(g.actor)):
            return record
        raise


def _approval_state(doc_type: str, doc_id: int, waiting: set[str] | None = None) -> dict:
    """The record's approval history, the step it waits on, and whether that step is mine to decide (``waiting``: the
    ids of my inbox's items, when the page has them already)."""
    from crm_core.org import approvals_engine

    if waiting is None:
        waiting = {i["id"] for i in approvals_engine.pending_items(g.actor)}
    mine = f"{doc_type}-{doc_id}" in waiting
    history = approvals_engine.history(g.actor.org_id, doc_type, [doc_id])
    pending = next((r for r in history if r["status"] == "pending"), None)
    step = next((f"第 {t['step']}/{pending['steps']} 步 · {t['step_name']}" for t in pending["tasks"]
                 if t["status"] == "pending"), None) if pending else None
    return {"approval_history": history, "waiting_step": step, "can_decide": mine or (pending and g.actor.grants_all),
            "remind_ref": f"{doc_type}-{doc_id}" if pending and pending["requested_by_id"] == g.actor.employee_id
            and any(t["status"] == "pending" and t["approver"] != approvals_engine.APPROVER_KINDS["permission"]
                    for t in pending["tasks"]) else None}


@bp.get("/quotes/<int:quote_id>/pdf")
@console_login_required
def quote_pdf(quote_id: int):
    try:
        q = get_visible(g.actor, Quote, quote_id)
    except DomainError as exc:
        return denied(exc)
    return quote_pdf_response(q)


@bp.post("/quotes/<int:quote_id>/<any(send, accept, reject):move>")
@console_login_required
def move_quote(quote_id: int, move: str):
    told = {}

    def run():
        q = svc.move_quote(g.actor, quote_id, move, request.form.get("by") or None, on_sent=tell_quote_customer)
        told["n"], told["status"] = q.notified_followers, q.status
        return q

    def done():
        if told["status"] == "approving":
            return "这张报价单需要审批，已提交审批；审批通过后再发送给客户。"
        if move != "send":
            return {"accept": "已记录：客户接受报价。", "reject": "已记录：客户拒绝报价。"}[move]
        if told["n"]:
            return f"已发送：客户的 {told['n']} 位已验证微信用户收到报价单通知，可在手机上查看并确认。"
        return "已标记为发送。该客户还没有已验证的微信用户，请通过其他方式把 PDF 发给客户。"

    return act(run, done, url_for("console.quote", quote_id=quote_id))


@bp.post("/quotes/<int:quote_id>/contract")
@console_login_required
def contract_from_quote(quote_id: int):
    def make():
        q = get_visible(g.actor, Quote, quote_id)
        return svc.create_contract(g.actor, {"customer_id": q.customer_id, "quote_id": q.id, "payment_plan": _form_plan(),
                                             "title": request.form.get("title"),
                                             "signed_on": request.form.get("signed_on") or None})

    return act(make, "合同已保存，等待审批。", url_for("console.quote", quote_id=quote_id),
               lambda c: url_for("console.contract", contract_id=c.id))


@bp.post("/opportunities/<int:opp_id>/quote")
@console_login_required
def quote_from_opportunity(opp_id: int):
    return act(lambda: svc.quote_from_opportunity(g.actor, opp_id), "已按商机的意向产品生成报价单（草稿），请核对价格后发送。",
               url_for("console.opportunity", opp_id=opp_id), lambda q: url_for("console.quote", quote_id=q.id))


@bp.get("/contracts")
@console_login_required
def contracts():
    try:
        rows, total, status, names = _list_page(svc.list_contracts, svc.CONTRACT_STATUSES)
    except DomainError as exc:
        return denied(exc)
    return render_template("console/contracts.html", rows=rows, total=total, status=status, labels=svc.CONTRACT_LABELS,
                           customers=names, owners=employee_names(c.owner_id for c in rows))


@bp.get("/contracts/<int:contract_id>")
@console_login_required
def contract(contract_id: int):
    from crm_core.sales.models import Receipt

    try:
        c = visible_or_waiting(Contract, contract_id, "contract")
    except DomainError as exc:
        return denied(exc)
    receipts = db.session.scalars(scoped_select(g.actor, Receipt).where(Receipt.contract_id == c.id).order_by(Receipt.id)).all() \
        if g.actor.can("receipt", "view") else []
    from crm_core.org import approvals_engine
    from crm_core.sales import contract_changes

    waiting = {i["id"] for i in approvals_engine.pending_items(g.actor)}
    state = _approval_state("contract", c.id, waiting)
    rows = contract_changes.changes_of(c.id)
    changes = [contract_changes.change_dict(ch) for ch in rows]
    change_history = approvals_engine.history(c.org_id, "contract_change", [ch.id for ch in rows])
    decide_change = next((ch["id"] for ch in changes if ch["status"] == "pending"
                          and (f"contract_change-{ch['id']}" in waiting or g.actor.grants_all)), None)
    return render_template("console/contract.html", c=svc.contract_dict(c), customer=db.session.get(Customer, c.customer_id),
                           owner=employee_names([c.owner_id]).get(c.owner_id), receipts=[svc.receipt_dict(r) for r in receipts],
                           approver=employee_names([c.approved_by_id]).get(c.approved_by_id) if c.approved_by_id else None,
                           methods=METHOD_LABELS, can_approve=state.pop("can_decide"), **state, changes=changes,
                           change_history=change_history, decide_change=decide_change,
                           version=c.version, plan_rows=PLAN_ROWS,
                           can_order=c.status in ("approved", "completed") and g.actor.can("contract", "edit"),
                           orders=db.session.scalars(select(SalesOrder).where(SalesOrder.contract_id == c.id).order_by(SalesOrder.id)).all(),
                           order_labels=ORDER_LABELS)


@bp.post("/contracts/<int:contract_id>/changes")
@console_login_required
def request_contract_change(contract_id: int):
    from crm_core.sales import contract_changes

    f = request.form
    plan = _form_plan()
    data = {"reason": f.get("reason", ""), "amount": (f.get("amount") or "").strip() or None,
            "title": f.get("title") or None, "payment_plan": plan or None}
    return act(lambda: contract_changes.request_change(g.actor, contract_id, data), "变更已提交审批，通过后生效。",
               url_for("console.contract", contract_id=contract_id) + "#contract-changes")


@bp.post("/contracts/<int:contract_id>/approve")
@console_login_required
def approve_contract(contract_id: int):
    done = {}

    def approve():
        done["c"] = svc.approve_contract(g.actor, contract_id, request.form.get("comment") or None)
        return done["c"]
    return act(approve, lambda: "合同已审批通过，客户已转为交易客户。" if done["c"].status == "approved" else "已同意，等待下一步审批。",
               url_for("console.contract", contract_id=contract_id))


@bp.post("/contracts/<int:contract_id>/reject")
@console_login_required
def reject_contract(contract_id: int):
    def reject():
        reason = (request.form.get("comment") or "").strip()
        if not reason:  # the owner must learn what to correct
            raise ValidationFailed("驳回时请填写原因，负责人会收到通知。", fields={"comment": "required"})
        return svc.reject_contract(g.actor, contract_id, reason)
    return act(reject, "合同已驳回，负责人会收到通知。", url_for("console.contract", contract_id=contract_id))


@bp.post("/contracts/<int:contract_id>/receipts")
@console_login_required
def record_receipt(contract_id: int):
    def record():
        if not (request.form.get("amount") or "").strip():
            raise ValidationFailed("请填写回款金额。", fields={"amount": "required"})
        return svc.record_receipt(g.actor, {"contract_id": contract_id, "instalment_id": form_int(request.form.get("instalment_id")),
                                            "amount": request.form.get("amount", "").strip(),
                                            "received_at": request.form.get("received_at") or None,
                                            "method": request.form.get("method") or "bank", "note": request.form.get("note")})

    return act(record, lambda: "回款已登记。", url_for("console.contract", contract_id=contract_id))


for _entry in (("报价单", "console.quotes", "quote", "view"), ("合同与回款", "console.contracts", "contract", "view")):
    if _entry not in NAV:
        NAV.insert(NAV.index(("商机", "console.opportunities", "opportunity", "view")) + 1 + (_entry[1] == "console.contracts"), _entry)


# --- 销售报表: the money chain's reports for managers (same functions as /api/v1/reports/...) ----------
REPORT_VIEWS = {"receivables": "应收款汇总表", "overdue": "到期债权表", "execution": "合同执行", "performance": "销售业绩统计",
                "competitors": "竞争对手分析", "customers": "客户分析"}


@bp.get("/sales/reports")
@console_login_required
def sales_reports():
    from crm_core.clock import local_today
    from crm_core.org.settings import org_timezone
    from crm_core.sales import reports
    from wxapp.csv_export import csv_response

    view = request.args.get("view") if request.args.get("view") in REPORT_VIEWS else "receivables"
    year_arg = request.args.get("year", "")
    year = int(year_arg) if year_arg.isascii() and year_arg.isdecimal() and 2000 <= int(year_arg) <= 2100 \
        else local_today(org_timezone(g.actor.org_id)).year
    by = "department" if request.args.get("by") == "department" else "person"
    csv = request.args.get("format") in ("csv", "xlsx")
    try:
        if view == "receivables":
            data = reports.receivables(g.actor)
        elif view == "overdue":
            data = reports.overdue(g.actor, page=_page(), per_page=1_000_000 if csv else 100)
        elif view == "performance":
            data = reports.sales_performance(g.actor, year, by)
        elif view == "execution":
            group = request.args.get("group") if request.args.get("group") in reports.EXECUTION_GROUPS else "contract"
            data = reports.contract_execution(g.actor, group)
        elif view == "customers":
            dim = request.args.get("dim") if request.args.get("dim") in reports.CUSTOMER_DIMENSIONS else "source"
            data = reports.customer_analysis(g.actor, dim)
        else:
            data = reports.competitors(g.actor)
    except DomainError as exc:
        return denied(exc)
    if csv:
        return csv_response(*reports.csv_table(view, data))
    by_month = [{m["month"]: m for m in row["months"]} for row in data["rows"]] if view == "performance" else []
    return render_template("console/sales_reports.html", view=view, views=REPORT_VIEWS, r=data, year=year, by=by,
                           ageing=reports.AGEING, by_month=by_month, charts=_report_charts(view, data),
                           groups=reports.EXECUTION_GROUPS, dims=reports.CUSTOMER_DIMENSIONS,
                           figures=reports.EXECUTION_FIGURES)


def _report_charts(view: str, data: dict) -> dict:
    """The chart above a report (ECharts, static/charts.js): the same figures as its table."""
    from crm_core.sales.reports import AGEING

    top = data["rows"][:12]
    if view == "execution":
        name = {"contract": "number", "customer": "customer", "owner": "owner"}[data["by"]]
        return {"execution": {"title": data["title"], "kind": "bar", "unit": "元", "x": [r[name] or "—" for r in top],
                              "series": [{"name": label, "data": [float(r[key]) for r in top]}
                                         for key, label in (("amount", "合同金额"), ("ordered", "已下单"), ("delivered", "已发货"),
                                                            ("received", "已回款"))]}}
    if view == "customers":
        return {"customers": {"title": f"客户分析（按{data['label']}）", "kind": "line" if data["by"] == "month" else "bar",
                              "integer": True, "unit": "个", "x": [r["key"] for r in data["rows"][-24:]] if data["by"] == "month"
                              else [r["key"] for r in top],
                              "series": [{"name": "客户数", "data": [r["customers"] for r in (data["rows"][-24:] if data["by"] == "month" else top)]},
                                         {"name": "交易客户", "data": [r["trading"] for r in (data["rows"][-24:] if data["by"] == "month" else top)]}]}}
    if view == "receivables":
        return {"receivables": {"title": "应收账龄", "kind": "bar", "unit": "元", "x": [label for _, label in AGEING],
                                "series": [{"name": "应收", "data": [float(data["totals"][k]) for k, _ in AGEING]}]}}
    if view == "overdue":  # what is owed by the month it falls due, overdue apart from not yet due
        months: dict[str, list[float]] = {}
        for r in data["rows"]:
            cell = months.setdefault(r["due_date"][:7], [0.0, 0.0])
            cell[0 if r["days_overdue"] > 0 else 1] += float(r["outstanding"])
        keys = sorted(months)[-24:]
        return {"overdue": {"title": "到期债权（按到期月份）", "kind": "bar", "unit": "元", "x": keys,
                            "series": [{"name": "已逾期", "data": [round(months[k][0], 2) for k in keys]},
                                       {"name": "未到期", "data": [round(months[k][1], 2) for k in keys]}]}}
    if view == "performance":
        return {"performance": {"title": f"{data['year']} 年销售业绩（按{'部门' if data['by'] == 'department' else '人员'}）",
                                "kind": "bar", "unit": "元", "unit2": "完成率 %", "x": [r["name"] or "—" for r in top],
                                "series": [{"name": "目标", "data": [float(r["target"]) for r in top]},
                                           {"name": "签约金额", "data": [float(r["contracted"]) for r in top]},
                                           {"name": "回款金额", "data": [float(r["received"]) for r in top]},
                                           {"name": "完成率", "type": "line", "axis": 1,
                                            "data": [float(r["completion"]) if r["completion"] is not None else None for r in top]}]}}
    if view == "competitors":
        return {"competitors": {"title": "竞争对手交锋与胜负", "kind": "bar", "unit": "个商机", "unit2": "赢单率 %", "integer": True,
                                "x": [r["name"] for r in top],
                                "series": [{"name": "赢单", "data": [r["won"] for r in top]},
                                           {"name": "丢单", "data": [r["lost"] for r in top]},
                                           {"name": "跟进中", "data": [r["open"] for r in top]},
                                           {"name": "赢单率", "type": "line", "axis": 1,
                                            "data": [float(r["win_rate"]) if r["win_rate"] is not None else None for r in top]}]}}
    return {}


if ("销售报表", "console.sales_reports", "contract", "view") not in NAV:
    NAV.insert(NAV.index(("合同与回款", "console.contracts", "contract", "view")) + 1, ("销售报表", "console.sales_reports", "contract", "view"))


# --- 销售订单 and 发货 (crm_core.sales.orders) ----------------------------------------------------
def _form_quantities(prefix: str) -> list[dict]:
    """``<prefix><line id>`` fields with a quantity → ``[{<line key>: id, quantity}]`` (blank and 0 rows left out)."""
    key = "contract_line_id" if prefix == "order_qty_" else "order_line_id"
    out = []
    for name, value in request.form.items():
        if name.startswith(prefix) and value.strip() not in ("", "0"):
            line_id = form_int(name[len(prefix):])
            if line_id is not None:
                out.append({key: line_id, "quantity": value.strip()})
    return out


@bp.post("/contracts/<int:contract_id>/orders")
@console_login_required
def create_order(contract_id: int):
    from crm_core.sales import orders

    def make():
        return orders.create_order(g.actor, contract_id, {
            "lines": _form_quantities("order_qty_"), "required_on": request.form.get("required_on") or None,
            "address": request.form.get("address"), "note": request.form.get("note")})

    return act(make, "订单已生成，等待发货。", url_for("console.contract", contract_id=contract_id),
               then=lambda o: url_for("console.sales_order", order_id=o.id))


@bp.get("/orders")
@console_login_required
def sales_orders():
    from crm_core.sales import orders

    try:
        rows, total, status, names = _list_page(orders.list_orders, orders.ORDER_STATUSES)
    except DomainError as exc:
        return denied(exc)
    numbers = dict(db.session.execute(select(Contract.id, Contract.number).where(Contract.id.in_({o.contract_id for o in rows}))).all())
    return render_template("console/orders.html", rows=rows, total=total, status=status, labels=orders.ORDER_LABELS,
                           customers=names, contracts=numbers, owners=employee_names(o.owner_id for o in rows))


@bp.get("/orders/<int:order_id>")
@console_login_required
def sales_order(order_id: int):
    from crm_core.sales import orders
    from crm_core.sales.models import SalesOrder

    try:
        o = get_visible(g.actor, SalesOrder, order_id)
    except DomainError as exc:
        return denied(exc)
    contract = db.session.get(Contract, o.contract_id)
    return render_template("console/order.html", o=orders.order_dict(o), contract=contract,
                           customer=db.session.get(Customer, o.customer_id), owner=employee_names([o.owner_id]).get(o.owner_id),
                           can_edit=g.actor.can("contract", "edit"))


@bp.post("/orders/<int:order_id>/deliveries")
@console_login_required
def record_delivery(order_id: int):
    from crm_core.sales import orders

    def ship():
        lines = _form_quantities("ship_qty_")
        serials = {str(ln["order_line_id"]): request.form.get(f"serials_{ln['order_line_id']}", "") for ln in lines}
        return orders.record_delivery(g.actor, order_id, {"lines": lines, "serial_nos": serials,
                                                          "shipped_on": request.form.get("shipped_on") or None,
                                                          "carrier": request.form.get("carrier"), "note": request.form.get("note")})

    return act(ship, lambda: "发货已登记。", url_for("console.sales_order", order_id=order_id))


@bp.post("/orders/<int:order_id>/cancel")
@console_login_required
def cancel_order(order_id: int):
    from crm_core.sales import orders

    return act(lambda: orders.cancel_order(g.actor, order_id, request.form.get("reason")), "订单已取消，数量已退回合同。",
               url_for("console.sales_order", order_id=order_id))


if ("销售订单", "console.sales_orders", "contract", "view") not in NAV:
    NAV.insert(NAV.index(("合同与回款", "console.contracts", "contract", "view")) + 1, ("销售订单", "console.sales_orders", "contract", "view"))


# --- 竞争对手档案 (crm_core.sales.competitors) -----------------------------------------------------
def _competitor_form() -> dict:
    f = request.form
    products = [{"name": n.strip(), "price": p.strip() or None} for n, p in zip(f.getlist("product_name"), f.getlist("product_price"))
                if n.strip()]
    return {"name": f.get("name", ""), "aliases": [a for a in f.get("aliases", "").replace("，", ",").split(",") if a.strip()],
            "website": f.get("website"), "market_share": (f.get("market_share") or "").strip() or None, "strengths": f.get("strengths"),
            "weaknesses": f.get("weaknesses"), "note": f.get("note"), "active": f.get("active", "1") == "1", "products": products}


@bp.get("/competitors")
@console_login_required
def competitors():
    from crm_core.sales import competitors as comp
    from crm_core.sales import reports

    try:
        rows = comp.list_competitors(g.actor, include_inactive=True)
        figures = {r["competitor_id"]: r for r in reports.competitors(g.actor)["rows"] if r["competitor_id"]}
    except DomainError as exc:
        return denied(exc)
    return render_template("console/competitors.html", rows=rows, figures=figures, can_edit=g.actor.can("opportunity", "assign"),
                           product_rows=4)


@bp.post("/competitors")
@console_login_required
def create_competitor():
    from crm_core.sales import competitors as comp

    return act(lambda: comp.create_competitor(g.actor, _competitor_form()), "竞争对手已添加，已关联同名商机。",
               url_for("console.competitors"), then=lambda c: url_for("console.competitor", competitor_id=c.id))


@bp.get("/competitors/<int:competitor_id>")
@console_login_required
def competitor(competitor_id: int):
    from crm_core.sales import competitors as comp

    try:
        c = comp.get_competitor(g.actor, competitor_id)
    except DomainError as exc:
        return denied(exc)
    return render_template("console/competitor.html", c=comp.competitor_dict(c), record=comp.record(g.actor, c),
                           can_edit=g.actor.can("opportunity", "assign"), product_rows=max(4, len(c.products) + 2))


@bp.post("/competitors/<int:competitor_id>")
@console_login_required
def update_competitor(competitor_id: int):
    from crm_core.sales import competitors as comp

    return act(lambda: comp.update_competitor(g.actor, competitor_id, _competitor_form()), "竞争对手已保存。",
               url_for("console.competitor", competitor_id=competitor_id))


if ("竞争对手", "console.competitors", "opportunity", "view") not in NAV:
    NAV.insert(NAV.index(("商机", "console.opportunities", "opportunity", "view")) + 1, ("竞争对手", "console.competitors", "opportunity", "view"))
