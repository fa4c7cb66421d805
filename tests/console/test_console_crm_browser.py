"""CRM console pages in headless Chromium: 360 view, lead conversion, stage picture, collision rules."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def test_customer_360_page(live_app, page):
    login(page, live_app.url, "sales.zhang")
    page.click("nav >> text=客户")
    page.click("text=杭州西湖茶业有限公司")
    page.wait_for_selector("#profile")
    assert "张伟" in page.inner_text("#profile")
    assert "陈建国" in page.inner_text("#contacts")
    assert "WP100-2024-0001" in page.inner_text("#archives")
    assert "茶厂车间净水改造" in page.inner_text("#opportunities")
    assert "上门测量车间水质" in page.inner_text("#activities")
    page.screenshot(path="/tmp/wxcrm-360.png", full_page=True)


def test_lead_conversion_dialog_shows_what_is_attached_and_lets_the_person_choose(live_app, page):
    login(page, live_app.url, "sales.zhang")
    page.click("nav >> text=线索")
    row = page.locator("tr", has_text="吴经理")
    row.locator("a", has_text="转换为客户").click()
    dialog = page.locator("#convert")
    dialog.wait_for()
    # nothing is converted by the click itself: the dialog says what would happen
    assert "关联到已有客户 杭州西湖茶业有限公司" in dialog.inner_text()
    # 吴经理 left 陈建国's phone: the contact with that phone is proposed, and a new contact is a choice
    assert dialog.locator("input[name=contact]:checked").evaluate("e => e.parentElement.innerText").strip().startswith(
        "就是已有联系人 陈建国")
    # the customer's open opportunity is proposed before an empty new one
    assert "茶厂车间净水改造" in dialog.locator("input[name=opportunity]:checked").evaluate("e => e.parentElement.innerText")
    new = dialog.locator("input[name=contact][value=new]")
    assert "新建联系人「吴经理」" in new.evaluate("e => e.parentElement.innerText")  # the lead's person, not 陈建国
    new.check()
    dialog.locator("button", has_text="确认转换").click()
    page.wait_for_selector("#profile")
    assert "已关联到已有客户" in page.inner_text("main")
    assert page.inner_text("h1").startswith("杭州西湖茶业有限公司")
    contacts = page.inner_text("#contacts")
    assert "吴经理" in contacts and contacts.count("陈建国") == 1
    opportunities = page.inner_text("#opportunities")
    assert "茶厂车间净水改造" in opportunities and "新商机" not in opportunities


def test_opportunity_stage_picture_and_blocked_advance(live_app, page):
    login(page, live_app.url, "sales.li")
    page.click("nav >> text=商机")
    page.click("text=仓库空气净化")
    page.wait_for_selector("#stages")
    states = page.eval_on_selector_all("#stages li", "els => els.map(e => e.dataset.state)")
    assert states == ["current", "todo", "todo", "todo"]
    assert "需要审批通过" in page.inner_text("main")
    page.locator("tr", has_text="需求确认").locator("button").click()
    page.wait_for_selector(".err")
    assert "推进到「需求确认」还缺少" in page.inner_text(".err")
    # 方案报价 needs amount (present) and products (missing)
    rows = {r.split("\t")[0].strip(): r for r in page.locator(".card tbody tr").all_inner_texts()}
    assert "必填：意向产品" in rows["方案报价"]
    assert "不可跳过：方案报价" in rows["商务谈判"]
    page.screenshot(path="/tmp/wxcrm-opportunity.png", full_page=True)


def test_collision_rule_settings(live_app, page):
    """撞单规则 as a form: fields picked by name with their comparison, a threshold out of range refused in words with
    the form kept, a default rule edited in place — and the saved rule is the one the next save is checked against."""
    import urllib.error

    from tests.service.test_self_service_browser import http, token

    base = live_app.url
    login(page, base, "admin")
    page.click("nav >> text=撞单规则")
    page.wait_for_selector("#rules")
    assert page.locator("#rules tbody tr").count() == 3
    assert "电话 · 电话" in page.inner_text("#rules")  # fields by their names, not phone:phone
    page.select_option("#object_type", "lead")
    page.fill("#name", "线索邮箱或公司相近")
    fields = page.locator("#rule-fields tr.rule-field")
    fields.nth(0).locator("select[name=field]").select_option(label="邮箱")
    fields.nth(0).locator("select[name=method]").select_option("exact")
    fields.nth(1).locator("select[name=field]").select_option(label="公司名称")
    fields.nth(1).locator("select[name=method]").select_option("similar")
    fields.nth(1).locator("input[name=threshold]").fill("1.5")
    page.check("input[name=targets][value=lead]")
    page.select_option("#action", "block")
    page.click("#new-rule button[type=submit]")
    page.wait_for_selector(".err")
    assert "第 2 个字段的相似度请填 0.3 到 1 之间的数" in page.inner_text(".err")
    expect(page.locator("#name")).to_have_value("线索邮箱或公司相近")  # the refused form is back as it was typed
    expect(fields.nth(1).locator("input[name=threshold]")).to_have_value("1.5")
    assert page.locator("#rules tbody tr").count() == 3
    fields.nth(1).locator("input[name=threshold]").fill("0.9")
    page.click("#new-rule button[type=submit]")
    page.wait_for_selector(".ok")
    assert page.locator("#rules tbody tr").count() == 4
    row = page.locator("#rules tbody tr", has_text="线索邮箱或公司相近")
    assert "邮箱 · 完全相同" in row.inner_text() and "公司名称 · 名称相似 ≥ 0.9" in row.inner_text()
    assert "阻止保存" in row.inner_text()
    # the rule works: a second lead with the same e-mail is refused
    zhang = token(base, "sales.zhang")
    assert http(base, "POST", "/api/v1/leads", zhang, {"name": "邮箱甲", "company": "甲公司", "email": "same@example.cn"})["id"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        http(base, "POST", "/api/v1/leads", zhang, {"name": "邮箱乙", "company": "乙公司", "email": "same@example.cn"})
    assert refused.value.code == 409 and "线索邮箱或公司相近" in refused.value.read().decode()

    # a default rule edited in place: the customer rule's name comparison becomes 名称相似 ≥ 0.85
    page.locator("#rules tbody tr", has_text="客户：电话或名称相同").locator("a.edit").click()
    assert "编辑规则：客户：电话或名称相同" in page.inner_text("#rule-form h3")
    expect(fields.nth(0).locator("select[name=field]")).to_have_value("customer.phone")
    fields.nth(1).locator("select[name=method]").select_option("similar")
    fields.nth(1).locator("input[name=threshold]").fill("0.85")
    page.fill("#name", "客户：电话相同或名称相近")
    page.click("#new-rule button[type=submit]")
    page.wait_for_selector(".ok")
    assert page.locator("#rules tbody tr").count() == 4
    assert "客户名称 · 名称相似 ≥ 0.85" in page.locator("#rules tbody tr", has_text="客户：电话相同或名称相近").inner_text()
    # a salesperson has no access to the settings
    page.click("header button")
    login(page, base, "sales.zhang")
    assert "撞单规则" not in page.inner_text("nav")
