"""Editing in the console, in Chromium (#16 item 3 and "each edit form has a browser test with bad input"):
the salesperson edits a customer, adds and edits a contact, edits a lead and closes it, edits an opportunity
and loses it to a competitor; the administrator merges a duplicate customer after the preview. Every form is
first sent with bad input: refused in Chinese, the form kept as typed, nothing saved."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def _alert(page) -> str:
    return page.inner_text("[role=alert]")


def _ok(page) -> str:
    return page.inner_text("[role=status]")


def _customer_page(page, base, name):
    page.goto(f"{base}/console/customers?q={name}")
    page.click(f"main table >> text={name}")
    page.wait_for_selector("#profile")


def test_a_salesperson_edits_customers_contacts_leads_and_opportunities(live_app, page):
    base = live_app.url
    login(page, base, "sales.zhang")
    page.wait_for_selector("text=工作台")

    # the customer: an emptied name is refused, what was typed elsewhere is kept
    _customer_page(page, base, "杭州西湖茶业有限公司")
    page.click("#edit-customer")
    page.fill("#f-name", "")
    page.fill("#f-industry", "茶叶加工")
    page.click("#customer-form button[type=submit]")
    assert "「客户名称」不能为空" in _alert(page)
    expect(page.locator("#f-industry")).to_have_value("茶叶加工")
    page.fill("#f-name", "杭州西湖茶业有限公司")
    page.fill("#f-tags", "VIP，老客户")
    page.click("#customer-form button[type=submit]")
    assert "客户资料已保存" in _ok(page)
    assert "VIP" in page.inner_text("h1") and "老客户" in page.inner_text("h1")

    # a contact: no name, then a date that does not exist, then right
    page.click("#add-contact summary")
    form = page.locator("#add-contact form")
    form.locator("input[name=phone]").fill("13905719999")
    form.locator("button[type=submit]").click()
    assert "「姓名」不能为空" in _alert(page)
    page.click("#add-contact summary")
    expect(form.locator("input[name=phone]")).to_have_value("13905719999")
    form.locator("input[name=name]").fill("周采购")
    form.locator("input[name=birthday]").fill("1990-02-30")
    form.locator("button[type=submit]").click()
    assert "「生日」" in _alert(page)
    page.click("#add-contact summary")
    form.locator("input[name=birthday]").fill("1990-02-28")
    form.locator("button[type=submit]").click()
    assert "联系人已添加" in _ok(page)
    row = page.locator("#contacts tr", has_text="周采购")
    assert "1990-02-28" in row.inner_text()
    row.locator("text=编辑").click()
    page.fill("#contact-form input[name=title]", "采购经理")
    page.click("#contact-form button[type=submit]")
    assert "联系人已保存" in _ok(page)
    # 关系人: the other contact must be chosen
    page.goto(page.url.split("#")[0])
    page.locator("#contacts tr", has_text="周采购").locator("text=编辑").click()
    page.fill("#relation-form input[name=relation]", "下属")
    page.click("#relation-form button")
    assert "请选择关系人" in _alert(page)
    expect(page.locator("#relation-form input[name=relation]")).to_have_value("下属")  # kept as typed
    boss = page.locator("#relation-form select option").nth(1).inner_text()
    page.select_option("#relation-form select", label=boss)
    page.click("#relation-form button")
    assert "关系已记录" in _ok(page) and f"周采购 的下属：{boss}" in page.inner_text("#relations")
    page.click("text=‹ 杭州西湖茶业有限公司")
    assert "采购经理" in page.locator("#contacts tr", has_text="周采购").inner_text()

    # the opportunity: an amount in words is refused; then saved; then lost to a competitor (no reason first)
    page.click("#opportunities >> text=茶厂车间净水改造")
    page.click("#edit-opportunity")
    page.fill("#f-amount", "十八万")
    page.click("#opportunity-form button[type=submit]")
    assert "「金额」请填写金额" in _alert(page)
    expect(page.locator("#f-amount")).to_have_value("十八万")
    page.fill("#f-amount", "200,000")
    page.click("#opportunity-form button[type=submit]")
    assert "商机已保存" in _ok(page) and "¥200,000" in page.inner_text("main")
    page.fill("#lose-to", "某某净水")
    page.click("#lose-form button[type=submit]")
    assert "「原因」不能为空" in _alert(page)
    expect(page.locator("#lose-to")).to_have_value("某某净水")
    page.fill("#lose-reason", "价格偏高")
    page.click("#lose-form button[type=submit]")
    assert "已记为输单" in _ok(page)
    assert "输单" in page.inner_text("h1") and "价格偏高" in page.inner_text("#closed-reason")
    assert "某某净水" in page.inner_text("main") and "赢得此单" in page.inner_text("main")

    # a lead: emptied name refused; then saved; closing needs a reason
    page.goto(f"{base}/console/leads")
    page.locator("main table a").first.click()
    page.click("#edit-lead")
    page.fill("#f-name", "")
    page.fill("#f-product_interest", "商用净水器")
    page.click("#lead-form button[type=submit]")
    assert "「姓名」不能为空" in _alert(page)
    expect(page.locator("#f-product_interest")).to_have_value("商用净水器")
    page.fill("#f-name", "陈先生")
    page.click("#lead-form button[type=submit]")
    assert "线索已保存" in _ok(page) and "陈先生" in page.inner_text("h1") and "商用净水器" in page.inner_text("main")
    page.click("#close-lead button")
    assert "「关闭原因」不能为空" in _alert(page)
    page.fill("#close-lead input[name=reason]", "无效电话")
    page.click("#close-lead button")
    assert "线索已关闭" in _ok(page) and "无效电话" in page.inner_text("#lead-closed")


def test_the_administrator_merges_a_duplicate_after_seeing_what_moves(live_app, page):
    base = live_app.url
    login(page, base, "admin")
    page.wait_for_selector("text=工作台")
    _customer_page(page, base, "杭州滨江智造科技有限公司")
    page.click("#merge-customer")
    page.fill("#merge-search input[name=q]", "西湖茶业")
    page.click("#merge-search button")
    page.click("#merge-candidates >> text=预览合并")
    # the survivor can be swapped, and swapped back
    page.click("#merge-swap")
    assert "「杭州滨江智造科技有限公司」并入「杭州西湖茶业有限公司」" in page.inner_text("#merge-preview")
    page.click("#merge-swap")
    preview = page.inner_text("#merge-preview")
    assert "「杭州西湖茶业有限公司」并入「杭州滨江智造科技有限公司」" in preview
    assert "联系人" in preview and "商机" in preview
    page.click("#merge-confirm")
    assert "已合并" in _ok(page)
    assert "茶厂车间净水改造" in page.inner_text("#opportunities")  # the tea company's opportunity moved here
    page.goto(f"{base}/console/customers?q=西湖茶业")
    assert "杭州西湖茶业有限公司" not in page.inner_text("main table")
    # merging it again is refused in Chinese, not a server error
    page.goto(f"{base}/console/customers?q=滨江智造")
    page.click("main table >> text=杭州滨江智造科技有限公司")
    page.click("#merge-customer")
    page.fill("#merge-search input[name=q]", "不存在的公司")
    page.click("#merge-search button")
    assert "没有找到其他客户" in page.inner_text("#merge-candidates")


def test_a_follow_up_is_logged_on_the_360_page_and_finished_with_its_result(live_app, page):
    base = live_app.url
    login(page, base, "sales.zhang")
    page.wait_for_selector("text=工作台")
    _customer_page(page, base, "杭州余杭未来酒店管理有限公司")
    page.click("#add-activity summary")
    page.select_option("#add-activity select[name=kind]", label="电话")
    page.click("#add-activity button[type=submit]")  # no subject
    assert "「主题」不能为空" in _alert(page)
    page.click("#add-activity summary")
    page.fill("#add-activity input[name=subject]", "电话回访入住率")
    page.fill("#add-activity input[name=planned_start]", "2026-12-09T14:00")
    page.click("#add-activity button[type=submit]")
    assert "活动已记录" in _ok(page)
    page.click("#activities >> text=电话回访入住率")
    assert "电话" in page.inner_text("main") and "2026-12-09 14:00" in page.inner_text("main")  # China time, as typed
    page.click("#activity-move button[value=done]")
    assert "完成活动时请填写结果" in _alert(page)
    page.fill("#mv-result", "客户计划下月加购 20 台")
    page.click("#activity-move button[value=done]")
    assert "活动状态已更新" in _ok(page) and page.inner_text("#activity-status") == "已完成"
    assert "客户计划下月加购 20 台" in page.inner_text("#activity-result")
