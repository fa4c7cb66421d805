"""The check-in page on a phone (mocked geolocation) and the managers' console pages."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import staff_on_phone
from tests.service.test_staff_workbench_browser import _until

pytestmark = pytest.mark.browser

WEST_LAKE = (30.2270, 120.1230)


def api(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def token(base, username):
    return api(base, "POST", "/api/v1/auth/token", body={"username": username, "password": "demo123456"})[1]["access_token"]


def test_salesperson_binds_locates_and_checks_in_on_a_phone(live_app, browser):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              geolocation={"latitude": WEST_LAKE[0] + 0.0003, "longitude": WEST_LAKE[1], "accuracy": 18},
                              permissions=["geolocation"])
    page = ctx.new_page()
    try:
        staff_on_phone(page, live_app.url, "oZhangPhone01", "sales.zhang")
        page.wait_for_selector("text=张伟，您好")
        page.wait_for_selector("#customers .cust")
        first = page.inner_text("#customers .cust")
        assert "杭州西湖茶业有限公司" in first and "米" in first
        assert "精度约 18 米" in page.inner_text("#loc")
        page.fill("#note", "新品试饮，客户满意")
        page.click("#btn-in")
        page.wait_for_selector("#today .visit")
        visit = page.inner_text("#today .visit")
        assert "签到" in visit and "杭州西湖茶业有限公司" in visit and "正常" in visit
        # the layout fits the phone: no horizontal scrolling
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # a second tap within a minute is refused with the reason
        page.click("#btn-in")
        page.wait_for_selector("#toast:has-text('1 分钟内')")
    finally:
        ctx.close()


def test_checkin_page_without_location_permission_says_so(live_app, browser):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})  # geolocation denied
    page = ctx.new_page()
    try:
        staff_on_phone(page, live_app.url, "oLiPhone0001", "sales.li")
        page.wait_for_selector(".loc.err")
        assert "无法获取位置" in page.inner_text("#loc")
        page.click("#btn-in")
        page.wait_for_selector("#toast:has-text('没有获取到位置')")
    finally:
        ctx.close()


def test_manager_sees_the_report_the_route_and_reviews_a_flag(live_app, page):
    base = live_app.url
    zhang = token(base, "sales.zhang")
    status, customers = api(base, "GET", "/api/v1/customers?q=" + urllib.parse.quote("西湖茶业"), zhang)
    tea = customers["items"][0]["id"]
    assert api(base, "POST", "/api/v1/checkins", zhang, {"kind": "in", "lat": WEST_LAKE[0], "lng": WEST_LAKE[1],
                                                          "accuracy_m": 12, "customer_id": tea})[0] == 201
    status, far = api(base, "POST", "/api/v1/checkins", zhang, {"kind": "out", "lat": WEST_LAKE[0] + 0.03,
                                                                "lng": WEST_LAKE[1], "accuracy_m": 12, "customer_id": tea})
    assert status == 201 and far["status"] == "out_of_range"

    login(page, base, "sales.manager")
    page.click("nav >> text=移动签到报表")
    page.wait_for_selector("#checkin-report")
    row = page.inner_text("#checkin-report tbody tr")
    assert "张伟" in row
    page.click("#checkin-report tbody tr >> text=查看路线")
    page.wait_for_selector("#route")
    _until(page, "document.getElementById('route').complete && document.getElementById('route').naturalWidth > 0")

    page.click("nav >> text=签到异常复核")
    item = page.locator(f"#checkin-{far['id']}")
    assert "超出范围" in item.inner_text()
    assert "移动速度异常" in item.inner_text()  # 3 km in seconds
    item.locator(".flag[data-flag=out_of_range] button[value=dismissed]").click()
    page.wait_for_selector("text=已复核")
    item = page.locator(f"#checkin-{far['id']}")
    assert "待复核" in item.inner_text() and "已驳回" in item.inner_text()  # in range now; the speed still to review
    item.locator(".flag[data-flag=suspicious] button[value=confirmed]").click()
    page.wait_for_selector(f"#checkin-{far['id']} >> text=已确认")
    assert "异常（已确认）" in page.locator(f"#checkin-{far['id']}").inner_text()

    page.click("nav >> text=活动统计报表")
    page.wait_for_selector("#activity-report tfoot")
    page.click("nav >> text=日历视图")
    page.wait_for_selector("#calendar .item.visit")
    assert "张伟" in page.inner_text("#calendar")
