"""A double tap is one action (issue #14, item 1): the repair form, the rating, console dispatch."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import http, phone_context, token, verify_on_phone

pytestmark = pytest.mark.browser


def test_double_taps_on_the_phone_make_one_ticket_and_one_rating(live_app, browser):
    base = live_app.url
    ctx = phone_context(browser)
    page = ctx.new_page()
    errors = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 500 else None)
    try:
        verify_on_phone(page, base, "oDoubleTap01")
        page.click("text=在线报修")
        page.wait_for_selector("#description")
        page.fill("#description", "双击提交测试：热水器不加热")
        page.dblclick("#submit")
        page.wait_for_selector("#timeline")
        dispatcher = token(base, "service.dispatcher")
        mine = [t for t in http(base, "GET", "/api/v1/tickets?per_page=100", dispatcher)["items"]
                if t["description"].startswith("双击提交测试")]
        assert len(mine) == 1, mine
        ticket_id = mine[0]["id"]

        engineer = token(base, "service.engineer")
        eng_id = next(e["id"] for e in http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"])
        wo = http(base, "POST", f"/api/v1/tickets/{ticket_id}/dispatch", dispatcher, {"engineer_ids": [eng_id]})
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/records", engineer, {"note": "更换加热管"})
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/complete", engineer, {"summary": "已修复"})
        page.reload()
        page.wait_for_selector("#rate", state="visible")
        page.click("#stars button[data-score='4']")
        page.dblclick("#send-rating")
        page.wait_for_selector("#my-rating")
        assert "服务器内部错误" not in page.inner_text("body")
        detail = http(base, "GET", f"/api/v1/tickets/{ticket_id}", dispatcher)
        ratings = [e for e in detail.get("timeline", []) if e["kind"] == "rating"]
        assert len(ratings) == 1, ratings
        assert not errors, errors
    finally:
        ctx.close()


def test_a_double_click_on_dispatch_makes_one_work_order_and_one_notice(live_app, browser):
    base = live_app.url
    dispatcher = token(base, "service.dispatcher")
    customers = http(base, "GET", "/api/v1/customers", dispatcher)["items"]
    ticket = http(base, "POST", "/api/v1/tickets", dispatcher,
                  {"customer_id": customers[0]["id"], "kind": "consultation", "description": "双击派工测试"})
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    try:
        login(page, base, "service.dispatcher")
        page.goto(f"{base}/console/service/tickets/{ticket['id']}")
        page.wait_for_selector("#dispatch-form")
        page.check("#dispatch-form input[name=engineer_ids] >> nth=0")
        page.dblclick("#dispatch-form button[type=submit]")
        page.wait_for_selector("text=已派工，工程师会收到通知")
        detail = http(base, "GET", f"/api/v1/tickets/{ticket['id']}", dispatcher)
        assert len(detail["work_orders"]) == 1, detail["work_orders"]
        # Back to the filled form and submit again: the same form token, the first answer, still one
        page.go_back()
        page.wait_for_selector("#dispatch-form", timeout=5000)
        if page.is_visible("#dispatch-form button[type=submit]"):
            page.click("#dispatch-form button[type=submit]")
            page.wait_for_load_state()
        detail = http(base, "GET", f"/api/v1/tickets/{ticket['id']}", dispatcher)
        assert len(detail["work_orders"]) == 1, detail["work_orders"]
        # the page loaded afresh (Back without the browser's page cache does so): it now offers 追加派工, nobody ticked;
        # sent as it is, it is refused — a second engineer is never sent by a repeated tap
        page.goto(f"{base}/console/service/tickets/{ticket['id']}")
        assert "追加派工" in page.inner_text("#dispatch-form")
        assert page.locator("#dispatch-form input[name=engineer_ids]:checked").count() == 0
        page.click("#dispatch-form button[type=submit]")
        page.wait_for_selector("text=追加派工请选择工程师")
        detail = http(base, "GET", f"/api/v1/tickets/{ticket['id']}", dispatcher)
        assert len(detail["work_orders"]) == 1, detail["work_orders"]
    finally:
        ctx.close()
