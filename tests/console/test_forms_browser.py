"""Forms that help (issue #14, items 5 and 8): numbers as people write them, refused input kept and
marked with its message, visible primary buttons, and the phone's fields marked by the API's answer."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import http, phone_context, token, verify_on_phone

pytestmark = pytest.mark.browser


def test_a_budget_typed_5000_with_a_comma_is_saved_and_words_are_refused_keeping_the_form(live_app, page):
    base = live_app.url
    login(page, base, "marketing.wang")
    page.goto(f"{base}/console/marketing/campaigns")
    page.fill("#campaign-form input[name=name]", "双十二促销")
    page.fill("#campaign-form input[name=goal]", "新增线索 50 条")
    page.fill("#campaign-form input[name=budget]", "五千元")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "预算请填写金额" in page.inner_text("[role=alert]")
    # what was typed is still there, the budget field marked with the reason
    expect(page.locator("#campaign-form input[name=name]")).to_have_value("双十二促销")  # once.js puts it back
    expect(page.locator("#campaign-form input[name=goal]")).to_have_value("新增线索 50 条")
    assert "invalid" in page.get_attribute("#campaign-form input[name=budget]", "class")
    assert "5,000.00" in page.inner_text("#campaign-form .field-error")
    page.fill("#campaign-form input[name=budget]", "5,000")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("text=方案已创建")
    campaigns = http(base, "GET", "/api/v1/campaigns", token(base, "marketing.wang"))["items"]
    saved = next(c for c in campaigns if c["name"] == "双十二促销")
    assert saved["budget"] == 5000.0


def test_what_is_typed_before_the_page_script_runs_is_not_overwritten_by_the_refused_values(live_app, page):
    """A slow phone: the refused form is back on screen and the user types into it before once.js has loaded
    and put the refused values back. What they typed stays; the fields they did not touch are restored."""
    base = live_app.url
    login(page, base, "marketing.wang")
    page.goto(f"{base}/console/marketing/campaigns")
    page.fill("#campaign-form input[name=name]", "慢网络方案")
    page.fill("#campaign-form input[name=goal]", "旧目标")
    page.fill("#campaign-form input[name=budget]", "五千元")
    held = []
    page.route("**/static/once.js", lambda route: held.append(route))  # the script is held back until the user has typed
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("[role=alert]")
    page.fill("#campaign-form input[name=goal]", "新目标")
    page.fill("#campaign-form input[name=budget]", "5,000")
    assert held, "the page asked for once.js"
    held[0].continue_()
    page.unroute("**/static/once.js")
    page.wait_for_selector("#campaign-form .field-error")  # the script ran: the refused field is marked
    assert page.input_value("#campaign-form input[name=name]") == "慢网络方案"  # untouched: restored
    assert page.input_value("#campaign-form input[name=goal]") == "新目标"
    assert page.input_value("#campaign-form input[name=budget]") == "5,000"


def test_primary_buttons_in_inline_forms_are_visible(live_app, page):
    base = live_app.url
    marketer = token(base, "marketing.wang")
    campaign = http(base, "POST", "/api/v1/campaigns", marketer, {"name": "按钮可见性"})
    login(page, base, "admin")
    for path, selector in (("/console/leads", "a.button.primary"),  # 转换为客户
                           (f"/console/marketing/campaigns/{campaign['id']}", "form.inline button.primary")):  # 推送给目标客户
        page.goto(base + path)
        button = page.locator(selector).first
        colors = button.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]")
        assert colors[0] != colors[1] and colors[0] not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), (path, colors)


def test_the_phone_marks_the_field_in_error_and_keeps_the_text(live_app, browser):
    base = live_app.url
    ctx = phone_context(browser)
    page = ctx.new_page()
    try:
        verify_on_phone(page, base, "oFormsPhone01")
        page.click("text=在线报修")
        page.wait_for_selector("#description")
        page.select_option("#kind", "suggestion")
        page.fill("#contact_phone", "13800001111")
        page.click("#submit")  # no description
        page.wait_for_selector("#description.invalid")
        assert "不能为空" in page.inner_text(".field-error")
        assert page.input_value("#contact_phone") == "13800001111"
    finally:
        ctx.close()
