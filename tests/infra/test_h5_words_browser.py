"""What a customer or a salesperson reads on the phone pages is Chinese and in local time (#14 items 2 and 3).

The console's HTML is checked in test_labels; the H5 pages fill themselves from JSON in the
browser, so they are read here after their scripts ran, as a person sees them."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.infra.test_labels import raw_words
from tests.service.test_self_service_browser import http, phone_context, staff_on_phone, token, verify_on_phone

pytestmark = pytest.mark.browser

SHANGHAI = timezone(timedelta(hours=8))


def english_words(text: str) -> set[str]:
    """Lower-case words of three letters or more: an enum, a status or a message left in English.
    Product codes (WP100, LY-WP-100) and names in capitals are not caught."""
    return set(re.findall(r"(?<![A-Za-z0-9_.@/-])[a-z]{3,}(?![A-Za-z0-9_@/-])", text))


def clock_hours(text: str) -> set[int]:
    return {int(h) for h, _ in re.findall(r"(?<!\d)(\d{2}):(\d{2})(?!\d)", text)}


def read(page, url: str, ready: str) -> str:
    page.goto(url)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    return page.inner_text("body")


def test_customer_and_salesperson_phone_pages_show_chinese_and_local_time(live_app, browser):
    base = live_app.url
    ctx = phone_context(browser, located=True)
    page = ctx.new_page()
    try:
        verify_on_phone(page, base, "oWordsCust01")
        page.click("text=在线报修")
        page.wait_for_selector("#product option:nth-child(2)", state="attached")
        page.fill("#description", "净水器不出水")
        page.click("#submit")
        page.wait_for_selector("#timeline")
        ticket_id = int(page.url.rsplit("/", 1)[1])
        dispatcher, engineer = token(base, "service.dispatcher"), token(base, "service.engineer")
        eng_id = http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"][0]["id"]
        wo = http(base, "POST", f"/api/v1/tickets/{ticket_id}/dispatch", dispatcher,
                  {"engineer_ids": [eng_id], "note": "内部：先电话确认", "share_with_customer": False})
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/records", engineer, {"note": "内部：滤芯堵塞"})
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/complete", engineer, {"summary": "已更换滤芯"})
        marketer = token(base, "marketing.wang")
        m = http(base, "POST", "/api/v1/materials", marketer, {"title": "冬季滤芯特惠", "body_html": "<p>滤芯八折</p>",
                                                              "publish": True})

        now = datetime.now(SHANGHAI)
        local = {now.hour, (now - timedelta(minutes=5)).hour}
        texts = {
            "个人中心": read(page, f"{base}/h5/", "body"),
            "我的服务": read(page, f"{base}/h5/service", "#tickets .item"),
            "在线报修": read(page, f"{base}/h5/service/new", "#description"),
            "我的产品": read(page, f"{base}/h5/service/products", "body"),
            "服务详情": read(page, f"{base}/h5/service/tickets/{ticket_id}", "#timeline"),
            "时间线": page.inner_text("#timeline"),
            "活动": read(page, f"{base}/h5/campaigns", "body"),
            "素材": read(page, f"{base}/m/{m['code']}", "body"),
        }
        detail = texts["服务详情"]
        assert "已完成" in detail and "内部" not in detail  # internal notes stay internal (#14 item 4)
        hours = clock_hours(texts["时间线"])
        assert hours and hours <= local, (hours, local)  # Beijing time, not UTC

        # the salesperson's check-in page, after a check-in
        ctx.clear_cookies()
        staff_on_phone(page, base, "oWordsZhang1", "sales.zhang")
        page.wait_for_selector("#customers .cust")
        page.click("#btn-in")
        page.wait_for_selector("#today .visit")
        texts["移动签到"] = page.inner_text("body")
        assert clock_hours(page.inner_text("#today")) <= local

        found = {name: sorted(raw_words(t) | english_words(t)) for name, t in texts.items()}
        assert not {k: v for k, v in found.items() if v}, found
        assert not [name for name, t in texts.items() if "UTC" in t]
    finally:
        ctx.close()
