"""Done-when of the gateway: a person opens the phone simulator, follows the account, gets the
welcome with the menu, and sees the follower in the console."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import LiveServer, _create_schema, _make_app
from tests.console.test_console_browser import login
from tests.wechat_helpers import AES_KEY

pytestmark = pytest.mark.browser


@pytest.fixture
def live_wx(tmp_path):
    from crm_core.demo import load_demo

    app = _make_app(f"sqlite:///{tmp_path}/phone.db", WECHAT_AES_KEY=AES_KEY)
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        db.session.remove()
    with LiveServer(app) as server:
        app.config["WECHAT_API_BASE"] = server.url + "/sandbox/wechat/"
        app.config["PUBLIC_BASE_URL"] = server.url
        yield server


def simulator(browser, base: str, openid: str):
    """A phone-sized context on the phone simulator as WeChat user ``openid``: (context, page)."""
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 812})
    phone = ctx.new_page()
    phone.goto(base + "/sandbox/phone")
    phone.fill("#openid", openid)
    phone.dispatch_event("#openid", "change")
    return ctx, phone


def test_follow_from_the_phone_simulator_and_see_the_follower(live_wx, page):
    page.goto(live_wx.url + "/sandbox/phone")
    page.fill("#openid", "oPhoneUser01")
    page.dispatch_event("#openid", "change")
    page.click("#follow")
    page.wait_for_selector(".passive")
    assert "欢迎关注" in page.inner_text(".passive")
    page.fill("#text", "你好")
    page.click("#send")
    page.wait_for_function("() => document.querySelectorAll('.passive').length >= 2")
    assert "已收到您的消息" in page.locator(".passive").nth(1).inner_text()
    page.click(".menu .item:first-child")
    page.click(".menu .sub >> text=在线报修")
    # one tap on a submenu entry is one event and one reply (#14 item 12), labelled with its name
    page.wait_for_function("() => document.querySelectorAll('.passive').length >= 3")
    page.wait_for_load_state("networkidle")
    assert page.locator(".passive").count() == 3
    assert page.locator(".sys", has_text="点击菜单：在线报修").count() == 1
    page.click(".menu .item:nth-child(2)")  # 签到, a top-level button
    page.wait_for_function("() => document.querySelectorAll('.passive').length >= 4")
    page.wait_for_load_state("networkidle")
    assert page.locator(".passive").count() == 4
    assert page.locator(".sys", has_text="点击菜单：签到").count() == 1
    assert "移动签到" in page.locator(".passive").nth(3).inner_text()
    page.screenshot(path="/tmp/wxcrm-phone.png")

    login(page, live_wx.url, "admin")
    page.click("nav >> text=微信粉丝")
    page.wait_for_selector("#followers")
    row = page.locator("#followers tr", has_text="oPhoneUser01")
    assert "已关注" in row.inner_text()
    assert "微信用户er01" in row.inner_text()  # the profile job fetched the nickname from the sandbox
