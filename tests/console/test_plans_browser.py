"""工作计划 in the console, in Chromium (#16 item 3): 张伟 writes a weekly plan (a date left out is refused), hands it
from his manager to 周敏, submits it; 周敏 sends it back (a reason is required), 张伟 changes and resubmits it, 周敏 批阅s."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def test_a_plan_is_written_given_to_a_chosen_reviewer_sent_back_and_reviewed(live_app, page):
    base = live_app.url
    login(page, base, "sales.zhang")
    page.click("nav >> text=工作计划")
    assert page.locator("#np-reviewer option:checked").inner_text() == "孙立"  # the manager by default
    page.fill("#np-title", "第 50 周拜访计划")
    page.fill("#np-start", "2026-12-07")
    page.click("#new-plan button[type=submit]")  # no end date
    assert "请填写结束日期" in page.inner_text("[role=alert]")
    page.fill("#np-title", "第 50 周拜访计划")
    page.fill("#np-start", "2026-12-07")
    page.fill("#np-end", "2026-12-11")
    page.fill("#np-content", "拜访西湖茶业、滨江智造")
    page.click("#new-plan button[type=submit]")
    assert "计划已保存" in page.inner_text("[role=status]") and page.inner_text("#plan-status") == "未提交"
    page.select_option("#plan-reviewer-form select", label="周敏")
    page.click("#plan-reviewer-form button")
    assert "批阅人已更换" in page.inner_text("[role=status]") and page.inner_text("#plan-reviewer") == "周敏"
    page.click("#plan-submit button")
    assert "已提交" in page.inner_text("[role=status]") and page.inner_text("#plan-status") == "待批阅"
    plan_url = page.url

    page.context.clear_cookies()
    login(page, base, "admin")
    page.click("nav >> text=工作计划")
    page.click("#to-review >> text=第 50 周拜访计划")
    page.click("#plan-decide button[value=return]")
    assert "退回时请写明原因" in page.inner_text("[role=alert]")
    page.fill("#plan-decide textarea", "请补上余杭酒店的回访")
    page.click("#plan-decide button[value=return]")
    assert "已退回" in page.inner_text("[role=status]") and page.inner_text("#plan-status") == "未提交"

    page.context.clear_cookies()
    login(page, base, "sales.zhang")
    page.goto(plan_url)
    assert "请补上余杭酒店的回访" in page.inner_text("#review-comment")
    page.fill("#pf-content", "拜访西湖茶业、滨江智造；回访余杭酒店")
    page.click("#plan-form button[type=submit]")
    assert "计划已保存" in page.inner_text("[role=status]")
    page.click("#plan-submit button")

    page.context.clear_cookies()
    login(page, base, "admin")
    page.goto(plan_url)
    page.fill("#plan-decide textarea", "同意")
    page.click("#plan-decide button[value=review]")
    assert "已批阅" in page.inner_text("[role=status]") and page.inner_text("#plan-status") == "已批阅"
    assert "同意" in page.inner_text("#review-comment")
