"""公众号设置 in Chromium (#17 items 5 and 6): a marketer adds a keyword reply, tries it in the test
box and on the phone, switches a built-in rule off; an administrator edits the menu, is stopped
by WeChat's limits, pushes it, and the phone shows the new menu."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.test_console_browser import login
from tests.wechat.test_phone_simulator_browser import live_wx, simulator  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def _say(phone, text: str) -> str:
    before = phone.locator(".passive").count()
    phone.fill("#text", text)
    phone.click("#send")
    phone.wait_for_function(f"() => document.querySelectorAll('.passive').length > {before}")
    return phone.locator(".passive").nth(before).inner_text()


def test_a_marketer_adds_a_keyword_reply_and_switches_a_built_in_rule_off(live_wx, page, browser):  # noqa: F811
    base = live_wx.url
    login(page, base, "marketing.wang")
    page.click("nav >> text=自动回复")
    page.wait_for_selector("#builtin")

    # bad input first: a regex that could backtrack forever is refused, in Chinese, the form kept
    page.select_option("#new-rule select[name=match]", "regex")
    page.fill("#new-rule input[name=pattern]", "(a+)+$")
    page.fill("#new-rule textarea[name=reply]", "不会保存")
    page.click("#new-rule button[type=submit]")
    assert "嵌套重复" in page.inner_text("[role=alert]")
    expect(page.locator("#new-rule input[name=pattern]")).to_have_value("(a+)+$")  # once.js refills it after load

    page.select_option("#new-rule select[name=match]", "contains")
    page.fill("#new-rule input[name=pattern]", "营业时间")
    page.fill("#new-rule textarea[name=reply]", "营业时间：周一至周六 9:00-18:00")
    page.click("#new-rule button[type=submit]")
    assert "规则已保存" in page.inner_text("[role=status]")
    assert "营业时间" in page.inner_text("#rules")

    page.fill("#try", "请问营业时间？")
    page.click("#try-box button[type=submit]")
    assert "自定义关键词回复" in page.inner_text("#try-result")
    assert "周一至周六" in page.inner_text("#try-reply")

    ctx, phone = simulator(browser, base, "oRuleBrowser1")
    try:
        assert "周一至周六" in _say(phone, "你们营业时间是几点")
        assert "在线提交" in _say(phone, "报修")  # the built-in keyword rule
        page.locator("#builtin tr", has_text="关键词：报修").locator("button").click()
        assert "已停用" in page.inner_text("#builtin")
        assert "已收到您的消息" in _say(phone, "报修")  # now the default reply answers it
    finally:
        ctx.close()


def test_the_menu_editor_checks_wechats_limits_pushes_and_the_phone_shows_it(live_wx, page, browser):  # noqa: F811
    base = live_wx.url
    login(page, base, "admin")
    page.click("nav >> text=自定义菜单")
    assert page.input_value("#b0_name") == "自助服务"  # the repository's menu.json until one is pushed
    assert "自助服务" in page.inner_text("#preview")

    page.fill("#b1_name", "五个汉字呀")
    page.click("#push")
    assert "最多 4 个汉字" in page.inner_text("[role=alert]")
    expect(page.locator("#b1_name")).to_have_value("五个汉字呀")  # what was typed stays

    page.fill("#b1_name", "签到打卡")
    page.fill("#b0s2_name", "")  # drop 我的产品
    page.fill("#b2_name", "官网")
    page.select_option("select[name=b2_type]", "view")
    page.fill("input[name=b2_value]", "ftp://example.com")
    page.click("#push")
    assert "http" in page.inner_text("[role=alert]")
    page.fill("input[name=b2_value]", "https://example.com/")
    page.click("button[value=preview]")
    assert "签到打卡" in page.inner_text("#preview") and "我的产品" not in page.inner_text("#preview")
    page.click("#push")
    assert "菜单已推送" in page.inner_text("[role=status]")
    assert "已生效" in page.inner_text("#history") and "签到打卡" in page.inner_text("#history")

    ctx, phone = simulator(browser, base, "oMenuBrowser1")
    try:
        menu = phone.inner_text(".menu")
        assert "签到打卡" in menu and "官网" in menu and "我的产品" not in menu
        phone.click(".menu .item:has-text('自助服务')")
        phone.click(".menu .sub >> text=在线报修")
        phone.wait_for_selector(".passive")
        assert "在线报修" in phone.inner_text(".passive")
    finally:
        ctx.close()


def test_tagging_followers_from_the_followers_page(live_wx, page, browser):  # noqa: F811
    base = live_wx.url
    for openid in ("oTagBrowser1", "oTagBrowser2"):
        ctx, phone = simulator(browser, base, openid)
        try:
            phone.click("#follow")
            phone.wait_for_selector(".passive")
        finally:
            ctx.close()
    login(page, base, "service.dispatcher")
    page.click("nav >> text=微信粉丝")
    page.fill("#new-tag input[name=name]", "长" * 31)  # the browser keeps to 30; the page says why it would not
    assert len(page.input_value("#new-tag input[name=name]")) == 30
    page.fill("#new-tag input[name=name]", "净水器老客户")
    page.click("#new-tag button")
    assert "标签已创建" in page.inner_text("[role=status]")
    page.check("input[type=checkbox][value=oTagBrowser1]")
    page.check("input[type=checkbox][value=oTagBrowser2]")
    page.click("#tag-form button[value=tag]")
    assert "已为 2 位粉丝打上标签" in page.inner_text("[role=status]")
    page.click("#tags >> text=净水器老客户（2）")
    rows = page.inner_text("#followers")
    assert "净水器老客户" in rows and rows.count("oTagBrowser") == 2
