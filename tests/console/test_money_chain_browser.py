"""报价 → 合同 → 回款 in Chromium (#19): the salesperson quotes from the console (bad lines refused in
Chinese, the form kept), opens the PDF, marks it sent and signs a contract whose plan must add up;
the manager approves it and records receipts (too much refused), and the instalments show paid."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from crm_core.clock import local_today
from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def _alert(page) -> str:
    return page.inner_text("[role=alert]")


def test_a_quote_becomes_a_contract_that_is_approved_and_paid(live_app, page):
    base = live_app.url
    login(page, base, "sales.zhang")
    page.click("nav >> text=报价单")
    form = "#new-quote"
    page.select_option(f"{form} select[name=customer_id]", label="杭州西湖茶业有限公司")
    page.click(f"{form} button[type=submit]")  # no line at all
    assert "报价至少需要一行产品" in _alert(page)
    expect(page.locator(f"{form} select[name=customer_id]")).not_to_have_value("")  # back as it was sent (once.js)

    rows = page.locator(f"{form} tbody tr")
    rows.nth(0).locator("select").select_option(label="LY-WP-100 蓝云商用净水器 WP100（¥1,280）")
    rows.nth(0).locator("input[name=quantity]").fill("3")
    rows.nth(0).locator("input[name=discount_pct]").fill("10")
    rows.nth(1).locator("select").select_option(label="LY-AP-300 蓝云空气净化器 AP300（¥2,680）")
    rows.nth(1).locator("input[name=unit_price]").fill("两千五")
    page.click(f"{form} button[type=submit]")
    assert "第 2 行单价应为数字" in _alert(page)
    rows = page.locator(f"{form} tbody tr")
    expect(rows.nth(0).locator("input[name=discount_pct]")).to_have_value("10")  # restored by the page's script
    rows.nth(1).locator("input[name=unit_price]").fill("2500")
    page.click(f"{form} button[type=submit]")
    # 3 × 1,280 − 10 % = 3,456.00 + 13 % = 3,905.28; 2,500.00 + 13 % = 2,825.00
    page.wait_for_selector("#quote-total")
    assert page.inner_text("#quote-total") == "¥6,730.28"
    assert page.inner_text("#quote-status") == "草稿"

    pdf = page.context.request.get(base + page.get_attribute("#pdf-download", "href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")

    page.click("text=标记为已发送")
    assert page.inner_text("#quote-status") == "已发送"
    contract_form = "#new-contract"
    due = local_today() + timedelta(days=15)
    page.locator(f"{contract_form} input[name=due_date]").nth(0).fill(due.isoformat())
    page.locator(f"{contract_form} input[name=plan_amount]").nth(0).fill("3000")
    page.locator(f"{contract_form} input[name=due_date]").nth(1).fill((due + timedelta(days=30)).isoformat())
    page.locator(f"{contract_form} input[name=plan_amount]").nth(1).fill("3000")
    page.click(f"{contract_form} button[type=submit]")
    assert "少 730.28 元" in _alert(page)
    page.locator(f"{contract_form} input[name=plan_amount]").nth(1).fill("3730.28")
    page.click(f"{contract_form} button[type=submit]")
    page.wait_for_selector("#contract-status")
    assert page.inner_text("#contract-status") == "待审批" and "等待审批（第 1/1 步 · 上级审批）" in page.inner_text("main")
    contract_url = page.url

    page.click("header button:has-text('退出')")
    login(page, base, "sales.manager")
    page.goto(contract_url)
    page.click("#approve button")
    assert page.inner_text("#contract-status") == "已生效"

    receipt = "#new-receipt"
    page.fill(f"{receipt} input[name=amount]", "7000")
    page.click(f"{receipt} button[type=submit]")
    assert "超过未收金额 6730.28 元" in _alert(page)
    page.fill(f"{receipt} input[name=amount]", "3500")
    page.click(f"{receipt} button[type=submit]")
    assert "回款已登记" in page.inner_text("[role=status]")
    states = page.locator("#instalments tbody tr")
    assert states.nth(0).get_attribute("data-state") == "paid" and states.nth(1).get_attribute("data-state") == "partial"
    assert page.inner_text("#contract-outstanding") == "¥3,230.28"
    assert "第 1 期 ¥3,000；第 2 期 ¥500" in page.inner_text("#receipts")


def test_the_customer_accepts_the_quote_on_the_phone(live_app, browser):
    """The salesperson sends a quote; the customer's verified WeChat user opens it at a phone's
    width, reads the total and taps 接受报价; the quote reads accepted for the salesperson."""
    from sqlalchemy import select

    from crm_core.clock import utcnow
    from crm_core.customers.models import Contact, Customer
    from crm_core.db import db
    from crm_core.wechat.models import Follower

    app = live_app.app
    with app.app_context():
        customer = db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()
        contact = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)).first()
        db.session.add(Follower(appid=app.config["WECHAT_APPID"], openid="oTeaBoss0001", org_id=customer.org_id, subscribed=True,
                                subscribed_at=utcnow(), contact_id=contact.id, customer_id=customer.id, bound_at=utcnow()))
        db.session.commit()
        customer_id, contact_name = customer.id, contact.name
        db.session.remove()
    staff = app.test_client()
    token = staff.post("/api/v1/auth/token", json={"username": "sales.zhang", "password": "demo123456"}).get_json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    wp = next(p for p in staff.get("/api/v1/products", headers=h).get_json()["items"] if p["code"] == "LY-WP-100")
    q = staff.post("/api/v1/quotes", headers=h, json={"customer_id": customer_id, "lines": [{"product_id": wp["id"], "quantity": 2}]}).get_json()
    assert staff.post(f"/api/v1/quotes/{q['id']}/send", headers=h, json={}).get_json()["status"] == "sent"

    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                              user_agent="Mozilla/5.0 (iPhone) MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN")
    phone = ctx.new_page()
    try:
        phone.goto(f"{live_app.url}/h5/dev-login?openid=oTeaBoss0001&next=/h5/quotes/{q['id']}")
        assert phone.inner_text("#q-total") == "¥2,892.80"  # 2 × 1,280.00 + 13 %
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
        phone.click("#accept")
        phone.wait_for_selector("#answered")
        assert phone.inner_text("#q-state") == "客户已接受"
    finally:
        ctx.close()
    answered = staff.get(f"/api/v1/quotes/{q['id']}", headers=h).get_json()
    assert answered["status"] == "accepted" and answered["decided_by"] == f"{contact_name}（微信确认）"


def test_the_manager_reads_the_sales_reports(live_app, page):
    """销售报表 in the console: receivables by ageing, the due list, performance against targets and
    the competitor analysis, each with its CSV; a salesperson sees only their own figures."""
    app = live_app.app
    staff = app.test_client()

    def token(user):
        return {"Authorization": "Bearer " + staff.post("/api/v1/auth/token", json={"username": user, "password": "demo123456"})
                .get_json()["access_token"]}

    rep, mgr = token("sales.zhang"), token("sales.manager")
    customer = staff.get("/api/v1/customers?per_page=1", headers=rep).get_json()["items"][0]
    today = local_today()
    c = staff.post("/api/v1/contracts", headers=rep, json={"customer_id": customer["id"], "amount": "12000", "payment_plan": [
        {"due_date": (today - timedelta(days=40)).isoformat(), "amount": "5000"},
        {"due_date": (today + timedelta(days=20)).isoformat(), "amount": "7000"}], "signed_on": (today - timedelta(days=60)).isoformat()})
    assert c.status_code == 201, c.get_json()
    c = c.get_json()
    assert staff.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
    emp = staff.get("/api/v1/me", headers=rep).get_json()["employee_id"]
    assert staff.put("/api/v1/sales-targets", headers=mgr, json={"targets": [
        {"employee_id": emp, "month": (today - timedelta(days=60)).strftime("%Y-%m"), "amount": "24000"}]}).status_code == 200

    opp = staff.get("/api/v1/opportunities?per_page=1", headers=rep).get_json()["items"][0]
    assert staff.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=rep,
                     json={"competitors": [{"name": "沁园净水", "price": "5200"}]}).status_code == 200
    login(page, live_app.url, "sales.manager")
    page.click("nav >> text=销售报表")
    assert page.inner_text("#total-outstanding") == "¥12,000"
    assert "逾期31–60天" in page.inner_text("#report thead") and customer["name"] in page.inner_text("#report")
    page.click("#report-tabs >> text=到期债权表")
    assert "5,000" in page.inner_text("#report") and "40" in page.inner_text("#report tbody")
    page.wait_for_selector("#chart-overdue canvas")  # the chart draws the table's figures by due month
    chart = json.loads(page.locator("#chart-data").text_content())["overdue"]
    overdue_month = (today - timedelta(days=40)).strftime("%Y-%m")
    assert chart["series"][0]["data"][chart["x"].index(overdue_month)] == 5000.0
    page.click("#report-tabs >> text=销售业绩统计")
    page.wait_for_selector("#chart-performance canvas")
    if (today - timedelta(days=60)).year == today.year:
        assert page.inner_text("#total-contracted") == "¥12,000" and "50.00%" in page.inner_text("#report")
        chart = json.loads(page.locator("#chart-data").text_content())["performance"]
        at = chart["x"].index("张伟")
        assert [s["data"][at] for s in chart["series"]] == [24000.0, 12000.0, 0.0, 50.0]
    sheet = page.context.request.get(f"{live_app.url}/console/sales/reports?view=receivables&format=csv")
    assert sheet.status == 200 and "应收合计" in sheet.text()
    page.click("#report-tabs >> text=竞争对手分析")
    assert "竞争对手" in page.inner_text("#report thead")
    page.wait_for_selector("#chart-competitors canvas")
    chart = json.loads(page.locator("#chart-data").text_content())["competitors"]
    assert "沁园净水" in chart["x"] and chart["series"][2]["data"][chart["x"].index("沁园净水")] == 1  # met, still open


def test_an_approved_contract_is_ordered_and_shipped_from_the_console(live_demo, page):
    """合同 → 销售订单 → 发货 in Chromium: the demo's approved contract (20 × WP100, 5 already ordered) is ordered — more than contracted
    refused in words, the typed quantity kept — then partly shipped with serial numbers (a count that does not match
    refused), and 合同执行 shows what was ordered and delivered."""
    base = live_demo.url
    login(page, base, "sales.li")
    page.click("nav >> text=合同与回款")
    page.click("#contracts tbody a")
    line = page.locator("#contract-lines tbody tr").first
    assert "蓝云商用净水器 WP100" in line.inner_text()
    qty = line.locator("input[name^=order_qty_]")
    expect(qty).to_have_value("15")  # what is still to order
    qty.fill("25")
    page.click("#new-order button[type=submit]")
    assert "还可下单 15" in _alert(page)
    expect(page.locator("#contract-lines tbody tr").first.locator("input[name^=order_qty_]")).to_have_value("25")  # kept
    page.locator("#contract-lines tbody tr").first.locator("input[name^=order_qty_]").fill("12")
    page.click("#new-order button[type=submit]")
    page.wait_for_selector("#order-status")
    assert page.inner_text("#order-status") == "待发货" and "订单已生成" in page.inner_text("[role=status]")

    row = page.locator("#order-lines tbody tr").first
    row.locator("input[name^=ship_qty_]").fill("2")
    row.locator("textarea").fill("WP-DEMO-01")
    page.click("#new-delivery button[type=submit]")
    assert "序列号应有 2 个（现有 1 个）" in _alert(page)
    row = page.locator("#order-lines tbody tr").first
    expect(row.locator("textarea")).to_have_value("WP-DEMO-01")
    row.locator("textarea").fill("WP-DEMO-01\nWP-DEMO-02")
    page.click("#new-delivery button[type=submit]")
    assert "发货已登记" in page.inner_text("[role=status]")
    assert page.inner_text("#order-status") == "部分发货"
    assert "WP-DEMO-01、WP-DEMO-02" in page.inner_text("#deliveries")
    page.click("nav >> text=销售订单")
    assert page.locator("#orders tbody tr", has_text="部分发货").count() == 2  # the demo's and this one

    page.click("header button:has-text('退出')")
    login(page, base, "sales.manager")
    page.goto(base + "/console/sales/reports?view=execution")
    row = page.locator("#report tbody tr", has_text="杭州上城湖滨餐饮有限公司")
    cells = row.locator("td").all_inner_texts()
    # 20 × 1,280 − 10 % + 13 % = 26,035.20; 5 + 12 ordered = 6,508.80 + 15,621.12; 2 + 2 shipped; ¥10,000 received
    assert cells[4:8] == ["¥26,035.20", "¥22,129.92", "¥5,207.04", "¥10,000"], cells
    page.click("#execution-groups >> text=合同执行汇总（按客户）")
    assert "杭州上城湖滨餐饮有限公司" in page.inner_text("#report")
    page.goto(base + "/console/sales/reports?view=customers&dim=region")
    assert "杭州市" in page.inner_text("#report")


def test_the_manager_keeps_the_competitor_master(live_app, page):
    """竞争对手档案 in Chromium: a share over 100 % and a name another company already uses are refused in words, the
    typed fields kept; the company saved lists its products and the opportunities written under its aliases."""
    base = live_app.url
    staff = live_app.app.test_client()
    rep = {"Authorization": "Bearer " + staff.post("/api/v1/auth/token", json={"username": "sales.zhang", "password": "demo123456"})
           .get_json()["access_token"]}
    opp = staff.get("/api/v1/opportunities?per_page=1", headers=rep).get_json()["items"][0]
    assert staff.put(f"/api/v1/opportunities/{opp['id']}/competitors", headers=rep,
                     json={"competitors": [{"name": "沁园净水", "price": "5200"}]}).status_code == 200

    login(page, base, "sales.manager")
    page.click("nav >> text=竞争对手")
    form = "#new-competitor"
    page.fill(f"{form} input[name=name]", "沁园")
    page.fill(f"{form} input[name=aliases]", "沁园净水，QINYUAN")
    page.fill(f"{form} input[name=market_share]", "150")
    page.locator(f"{form} input[name=product_name]").first.fill("沁园 商用净水机 QR-RU-05")
    page.locator(f"{form} input[name=product_price]").first.fill("5800")
    page.click(f"{form} button[type=submit]")
    assert "市场份额不能" in _alert(page) or "市场份额超出范围" in _alert(page)
    expect(page.locator(f"{form} input[name=aliases]")).to_have_value("沁园净水，QINYUAN")  # kept as typed
    page.fill(f"{form} input[name=market_share]", "12")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#competitor-record")
    assert "竞争对手已添加" in page.inner_text("[role=status]")
    assert "交锋 1 个商机" in page.inner_text("#competitor-record").replace("\n", "")
    assert opp["name"] in page.inner_text("#met-opportunities")
    assert "沁园 商用净水机 QR-RU-05" in page.locator("#edit-competitor").inner_html()

    page.click("nav >> text=竞争对手")
    page.fill(f"{form} input[name=name]", "qinyuan")  # another spelling of the same company
    page.click(f"{form} button[type=submit]")
    assert "已是竞争对手「沁园」的名称或别名" in _alert(page)
    assert "沁园" in page.inner_text("#competitor-list")


def test_the_administrator_sets_an_approval_flow_and_a_manager_a_delegation(live_app, page):
    """审批流程与委托 in Chromium: a condition without its number and a delegation without a delegate are refused in
    words with the typed fields kept; the flow saved reads back as a route in words; the delegation is listed."""
    base = live_app.url
    login(page, base, "admin")
    page.click("nav >> text=审批流程与委托")
    form = "#flow-contract form"
    expect(page.locator("#flow-contract .flow-steps")).to_contain_text("上级审批：第 1 级上级 · 或签")
    page.fill(f"{form} input[name=s1_name]", "销售总监")
    page.select_option(f"{form} select[name=s1_approver]", "employees")
    page.select_option(f"{form} select[name=s1_employees]", label="孙立")
    page.select_option(f"{form} select[name=s1_c1_field]", "amount")
    page.click(f"{form} button:has-text('保存合同审批流程')")
    assert "第 2 步的条件请同时填写字段和数值" in _alert(page)
    expect(page.locator(f"{form} input[name=s1_name]")).to_have_value("销售总监")  # kept as typed
    page.fill(f"{form} input[name=s1_c1_value]", "500000")
    page.click(f"{form} button:has-text('保存合同审批流程')")
    assert "合同审批流程已保存" in page.inner_text("[role=status]")
    expect(page.locator("#flow-contract .flow-steps")).to_contain_text("销售总监：孙立 · 或签 · 当 金额（元） > 500000")
    expect(page.locator("#flow-contract h3")).not_to_contain_text("默认")

    page.click("header button:has-text('退出')")
    login(page, base, "sales.manager")
    page.click("nav >> text=审批流程与委托")
    expect(page.locator("#flow-contract")).to_have_count(0)  # flows are the administrator's
    d = "#new-delegation"
    page.fill(f"{d} input[name=ends_on]", (local_today() + timedelta(days=5)).isoformat())
    page.fill(f"{d} input[name=note]", "年假")
    page.click(f"{d} button[type=submit]")
    assert "请选择在职的受托人" in _alert(page)
    expect(page.locator(f"{d} input[name=note]")).to_have_value("年假")
    page.select_option(f"{d} select[name=delegate_id]", label="张伟")
    page.click(f"{d} button[type=submit]")
    assert "委托已设置" in page.inner_text("[role=status]")
    expect(page.locator("#delegations tr.delegation")).to_contain_text("孙立张伟")


def test_a_salesperson_files_an_expense_that_the_manager_approves_and_pays(live_app, page):
    """费用申请 in Chromium: an amount that is not a number is refused in words with the lines kept; the request adds
    up its lines; the manager approves it from its page and marks it paid; the history names them."""
    base = live_app.url
    login(page, base, "sales.zhang")
    page.click("nav >> text=费用申请")
    form = "#new-expense form"
    page.fill(f"{form} input[name=title]", "拜访杭州客户")
    page.select_option(f"{form} select[name=category]", "travel")
    rows = page.locator(f"{form} tbody tr")
    rows.nth(0).locator("input[name=item]").fill("高铁票")
    rows.nth(0).locator("input[name=amount]").fill("一百")
    rows.nth(1).locator("input[name=item]").fill("住宿")
    rows.nth(1).locator("input[name=amount]").fill("380")
    page.click(f"{form} button[type=submit]")
    assert "第 1 行金额" in _alert(page)
    expect(page.locator(f"{form} input[name=title]")).to_have_value("拜访杭州客户")
    rows = page.locator(f"{form} tbody tr")
    expect(rows.nth(1).locator("input[name=amount]")).to_have_value("380")  # kept as typed
    rows.nth(0).locator("input[name=amount]").fill("153.5")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#expense-total")
    assert page.inner_text("#expense-total") == "¥533.50" and page.inner_text("#expense-status") == "审批中"
    expense_url = page.url
    page.click("#expense-approval .remind button")  # 催办: 孙立 is told again
    assert "已催办：1 位审批人会收到提醒" in page.inner_text("[role=status]")
    page.click("#expense-approval .remind button")
    assert "一小时内已催办过" in _alert(page)

    page.click("header button:has-text('退出')")
    login(page, base, "sales.manager")
    page.goto(expense_url)
    page.fill("#expense-approval input[name=comment]", "同意")
    page.click("#expense-approval button[value=approve]")
    expect(page.locator("#expense-status")).to_have_text("已批准")
    page.click("#pay button")
    expect(page.locator("#expense-status")).to_have_text("已报销")
    history = page.inner_text("#approval-history")
    assert "张伟" in history and "孙立" in history and "同意" in history


def test_a_contract_change_is_asked_for_approved_and_read_as_a_new_version(live_demo, page):
    """合同变更 in Chromium: a new amount without the plan of the unpaid part is refused in words, the reason kept; a
    renamed contract waits in the manager's 待我审批, and once approved the page shows the new name and version."""
    base = live_demo.url
    login(page, base, "sales.li")
    page.click("nav >> text=合同与回款")
    page.click("#contracts tbody a")
    contract_url = page.url
    form = "#new-change form"
    page.fill(f"{form} input[name=reason]", "客户更名")
    page.fill(f"{form} input[name=amount]", "30000")
    page.click(f"{form} button[type=submit]")
    assert "金额变更时请同时调整未回款部分的付款计划" in _alert(page)
    expect(page.locator(f"{form} input[name=reason]")).to_have_value("客户更名")
    page.fill(f"{form} input[name=amount]", "")
    page.fill(f"{form} input[name=title]", "门店净水器采购合同（西湖店）")
    page.click(f"{form} button[type=submit]")
    assert "变更已提交审批" in page.inner_text("[role=status]")
    expect(page.locator("#contract-changes tbody tr").first).to_contain_text("审批中")
    expect(page.locator("#new-change")).to_have_count(0)  # one change at a time, and the page says so
    expect(page.locator("#change-pending")).to_contain_text("审批中")

    page.click("header button:has-text('退出')")
    login(page, base, "sales.manager")
    page.click("nav >> text=待我审批")
    row = page.locator("tr[id^=approval-contract_change-]")
    expect(row).to_contain_text("合同变更")
    row.locator("input[name=comment]").fill("同意")
    row.locator("button[value=approve]").click()
    assert "已通过" in page.inner_text("[role=status]")
    page.goto(contract_url)
    expect(page.locator("main")).to_contain_text("门店净水器采购合同（西湖店）")
    expect(page.locator("#contract-changes tbody tr").first).to_contain_text("已生效")
    history = page.inner_text("#approval-history")
    assert "提交合同变更" in history and "孙立" in history and "同意" in history
