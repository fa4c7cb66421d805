"""在线客服, both sides in Chromium (#17, first part): the customer writes from the phone simulator,
the agent sees it arrive without reloading, answers, and the phone shows the answer."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import verify_on_phone
from tests.wechat.test_phone_simulator_browser import live_wx, simulator  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_customer_writes_agent_sees_it_live_and_answers(live_wx, browser):  # noqa: F811
    base = live_wx.url
    phone_ctx, phone = simulator(browser, base, "oChatCust01")
    desk_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = desk_ctx.new_page()
    try:
        phone.click("#follow")
        phone.wait_for_selector(".passive")
        phone.fill("#text", "你好，净水器漏水了")
        phone.click("#send")
        phone.wait_for_function("() => document.querySelectorAll('.passive').length >= 2")

        login(desk, base, "service.dispatcher")
        desk.click("nav >> text=在线客服")
        row = desk.locator("#conversations tr", has_text="微信用户st01")
        assert "1" in row.locator("td").nth(1).inner_text()  # one unread message
        assert "可回复 5 条" in row.inner_text()  # the message allows 5 within 48 h (the follow's 3 count within them)
        row.locator("a").click()
        desk.wait_for_selector("#thread")
        thread = desk.inner_text("#thread")
        assert "关注了公众号" in thread and "你好，净水器漏水了" in thread

        # a new message arrives while the conversation is open: it shows without a reload
        phone.fill("#text", "型号是 WP100")
        phone.click("#send")
        desk.wait_for_function("() => document.getElementById('thread').innerText.includes('型号是 WP100')", timeout=6000)

        desk.fill("#reply-form textarea[name=text]", "您好，我们马上安排工程师上门")
        desk.click("#reply-form button[type=submit]")
        desk.wait_for_selector("text=已发送")
        desk.wait_for_function("() => document.getElementById('thread').innerText.includes('马上安排工程师')")
        # the phone receives it as a customer-service message
        phone.wait_for_selector(".custom:has-text('马上安排工程师')", timeout=8000)

        # 转为工单: asked to verify first; once the customer has, the conversation becomes a ticket
        assert "验证后才能转为工单" in desk.inner_text("#follower-card")
        verify_on_phone(phone, base, "oChatCust01")
        desk.reload()
        assert "陈建国" in desk.inner_text("#follower-card")
        assert "净水器漏水" in desk.input_value("#ticket-form textarea[name=description]")  # starts from what they wrote
        desk.select_option("#ticket-form select[name=kind]", "consultation")
        desk.click("#ticket-form button[type=submit]")
        desk.wait_for_selector("text=已转为工单")
        assert "在线客服" in desk.inner_text("main")  # the timeline says where it came from
    finally:
        phone_ctx.close()
        desk_ctx.close()


def test_the_agent_answers_with_a_canned_reply_filled_for_this_customer(live_wx, browser):  # noqa: F811
    base = live_wx.url
    phone_ctx, phone = simulator(browser, base, "oCanned0001")
    desk_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = desk_ctx.new_page()
    try:
        phone.fill("#text", "在吗")
        phone.click("#send")
        phone.wait_for_selector(".passive")
        login(desk, base, "service.dispatcher")
        desk.goto(base + "/console/conversations")
        desk.locator("#conversations tr", has_text="微信用户0001").locator("a").click()
        desk.wait_for_selector("#canned")
        desk.select_option("#canned", label="问候")
        text = desk.input_value("#reply-form textarea[name=text]")
        assert text.startswith("您好") and "我是客服吴静" in text and "{" not in text  # filled for this conversation
        desk.click("#reply-form button[type=submit]")
        desk.wait_for_selector("text=已发送")
        phone.wait_for_selector(".custom:has-text('我是客服吴静')", timeout=8000)
    finally:
        phone_ctx.close()
        desk_ctx.close()
