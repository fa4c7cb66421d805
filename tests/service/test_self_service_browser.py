"""The customer's pages on a phone and the service desk's console pages, in headless Chromium."""
from __future__ import annotations

import io
import json
import re
import urllib.request

import pytest
from PIL import Image

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser

PHONE = "13905710001"


def http(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def token(base, username):
    return http(base, "POST", "/api/v1/auth/token", body={"username": username, "password": "demo123456"})["access_token"]


WEST_LAKE_FIX = {"latitude": 30.2273, "longitude": 120.1230, "accuracy": 20}  # beside the demo's 西湖茶业


def phone_context(browser, located: bool = False, user_agent: str | None = None):
    """A phone-sized, touch browser context in Chinese; ``located``: geolocation allowed, at West Lake;
    ``user_agent``: the app it plays (WeChat's, WeCom's)."""
    extra = {"geolocation": WEST_LAKE_FIX, "permissions": ["geolocation"]} if located else {}
    if user_agent:
        extra["user_agent"] = user_agent
    return browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True,
                               **extra)


def verify_on_phone(page, base, openid: str, phone: str = PHONE):
    """Open the service page as WeChat user ``openid`` and bind it to ``phone`` with the SMS code."""
    page.goto(f"{base}/h5/dev-login?openid={openid}&next=/h5/service")
    page.wait_for_selector("#verify")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#toast:has-text('验证码已发送')")
    page.fill("#code", http(base, "GET", f"/sandbox/sms?phone={phone}")["items"][0]["code"])
    page.click("#confirm")
    page.wait_for_selector("#tickets")


def staff_on_phone(page, base, openid: str, username: str, next_path: str = "/h5/checkin"):
    """Open ``next_path`` as WeChat user ``openid`` and sign in there as the employee ``username``."""
    page.goto(f"{base}/h5/dev-login?openid={openid}&next={next_path}")
    page.fill("#username", username)
    page.fill("#password", "demo123456")
    page.click("#bind-btn")


def photo_file(tmp_path):
    path = tmp_path / "leak.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (40, 120, 200)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return str(path)


def test_customer_verifies_submits_follows_progress_and_rates_on_a_phone(live_app, browser, tmp_path):
    base = live_app.url
    ctx = phone_context(browser)
    page = ctx.new_page()
    try:
        verify_on_phone(page, base, "oPhoneCust01")
        page.wait_for_selector("#tickets:has-text('还没有服务请求')")  # the list loads after the page

        page.click("text=在线报修")
        page.wait_for_selector("#product option:nth-child(2)", state="attached")
        assert "保修" in page.inner_text("#warranty")
        assert page.input_value("#contact_phone") == PHONE  # the verified phone, prefilled (issue #14 item 12)
        page.fill("#description", "净水器漏水，出水口一直滴水")
        page.set_input_files("#photos", photo_file(tmp_path))
        page.wait_for_selector("#thumbs img")
        page.click("#submit")
        page.wait_for_selector("#timeline")
        assert "已提交" in page.inner_text("#detail")
        page.wait_for_selector("#my-photos img")  # the customer sees their own photo on the request
        assert page.evaluate("document.querySelector('#my-photos img').naturalWidth > 0")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        ticket_id = int(page.url.rsplit("/", 1)[1])

        dispatcher, engineer = token(base, "service.dispatcher"), token(base, "service.engineer")
        eng_id = next(e["id"] for e in http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"])
        wo = http(base, "POST", f"/api/v1/tickets/{ticket_id}/dispatch", dispatcher, {"engineer_ids": [eng_id]})
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/records", engineer, {"note": "更换密封圈"})
        page.reload()
        page.wait_for_selector("#handler")
        assert page.get_attribute("#handler a", "href") == "tel:13800000202"
        assert "处理中" in page.inner_text("#detail") and page.is_visible("#expected")
        http(base, "POST", f"/api/v1/work-orders/{wo['id']}/complete", engineer, {"summary": "已修复"})
        page.reload()
        page.wait_for_selector("#rate", state="visible")
        page.click("#stars button[data-score='5']")
        page.click("#tags .tag[data-tag='技术专业']")
        page.fill("#comment", "很专业")
        page.click("#send-rating")
        page.wait_for_selector("#my-rating")
        assert "★★★★★" in page.inner_text("#my-rating") and not page.is_visible("#rate")

        page.goto(f"{base}/h5/service")
        page.wait_for_selector("#tickets .item")
        assert "已完成" in page.inner_text("#tickets")
    finally:
        ctx.close()


def test_dispatcher_dispatches_and_engineer_records_and_completes_in_the_console(live_app, browser):
    base = live_app.url
    # a customer request arrives (through the staff API: taken on the phone)
    dispatcher_token = token(base, "service.dispatcher")
    customers = http(base, "GET", "/api/v1/customers", dispatcher_token)["items"]
    ticket = http(base, "POST", "/api/v1/tickets", dispatcher_token,
                  {"customer_id": customers[0]["id"], "kind": "consultation", "description": "咨询滤芯更换周期"})

    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    try:
        login(page, base, "service.dispatcher")
        page.click("nav >> text=客户反馈")
        page.wait_for_selector(f"#ticket-{ticket['id']}")
        page.click(f"#ticket-{ticket['id']} a")
        page.wait_for_selector("#dispatch-form")
        page.check("#dispatch-form input[name=engineer_ids] >> nth=0")
        page.click("#dispatch-form button[type=submit]")
        page.wait_for_selector("text=已派工，工程师会收到通知")
        assert "郑强" in page.inner_text("#work-orders")
        ctx.clear_cookies()

        login(page, base, "service.engineer")
        page.click("nav >> text=我的服务工单")
        page.wait_for_selector("#my-work-orders a")
        page.click("#my-work-orders a")
        page.fill("#record-form textarea[name=note]", "电话告知客户：滤芯 6 个月更换")
        page.fill("#record-form input[name=minutes]", "10")
        page.click("#record-form button[type=submit]")
        page.wait_for_selector("text=已添加处理记录")
        assert "6 个月更换" in page.inner_text("#records")
        page.click("#complete-form button[type=submit]")
        page.wait_for_selector("text=工单已完成")
        assert page.inner_text("#wo-status") == "已完成"
        ctx.clear_cookies()

        login(page, base, "service.dispatcher")
        page.click("nav >> text=派工日程")
        page.wait_for_selector("#dispatch-calendar")
        assert "郑强" in page.inner_text("#dispatch-calendar")
        assert page.locator("#calendar-chart svg.chart rect.bar").count() == 1
        page.click("nav >> text=服务报表")
        page.wait_for_selector("#tracking")
        assert ticket["number"] in page.inner_text("#tracking")
        page.wait_for_selector("#chart-trend canvas")
        for key in ("trend", "satisfaction_trend", "satisfaction", "engineers", "sla", "status", "resolution"):
            assert page.locator(f"#chart-{key} canvas").count() == 1, key
        # today's bar holds the ticket this test submitted; the satisfaction bars add up to the ratings stated
        trend = page.evaluate("wxcrmCharts.trend.getOption().series.map(s => s.data)")
        assert trend[0][-1] >= 1 and len(trend[0]) == 30
        stated = int(re.search(r"共 (\d+) 条评价", page.inner_text("main")).group(1))
        assert sum(page.evaluate("wxcrmCharts.satisfaction.getOption().series[0].data")) == stated
    finally:
        ctx.close()
