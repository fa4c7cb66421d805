"""The console and the H5 layout in headless Chromium, through a real HTTP server."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def login(page, base, username, password="demo123456"):
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_admin_logs_in_and_sees_the_organisation_chart(live_app, page):
    login(page, live_app.url, "admin")
    page.wait_for_selector("text=工作台")
    assert "周敏" in page.inner_text("header")
    page.click("nav >> text=组织架构")
    page.wait_for_selector("#departments")
    departments = page.inner_text("#departments")
    for name in ("总经办", "销售部", "销售一组", "服务部", "市场部"):
        assert name in departments
    reporting = page.inner_text("#reporting")
    # three levels: 总经理 → 销售总监 → 销售经理 → 销售代表
    assert reporting.index("总经理") < reporting.index("销售经理") < reporting.index("张伟")
    assert "汇报给 销售经理" in departments
    page.screenshot(path="/tmp/wxcrm-org-chart.png", full_page=True)


def test_wrong_password_is_explained_in_chinese(live_app, page):
    login(page, live_app.url, "admin", "wrong-password")
    assert "用户名或密码错误" in page.inner_text(".err")


def test_navigation_follows_function_permissions(live_app, page):
    login(page, live_app.url, "sales.zhang")
    page.wait_for_selector("nav")
    nav = page.inner_text("nav")
    assert "客户" in nav and "组织架构" not in nav and "消息发件箱" not in nav
    page.click("nav >> text=客户")
    page.wait_for_selector("table")
    body = page.inner_text("main")
    assert "共 3 个" in body and "杭州西湖茶业有限公司" in body and "浙江钱塘物流股份有限公司" not in body
    # a page outside the permissions explains itself instead of failing
    page.goto(f"{live_app.url}/console/org")
    assert "没有权限" in page.inner_text("main")


def test_logout_returns_to_login(live_app, page):
    login(page, live_app.url, "sales.manager")
    page.wait_for_selector("text=工作台")
    page.click("header button")
    page.wait_for_url("**/console/login")


def test_h5_layout_on_a_phone(live_app, browser):
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN",
                              user_agent="Mozilla/5.0 (iPhone) MicroMessenger/8.0.50")
    page = ctx.new_page()
    page.goto(f"{live_app.url}/h5/dev-login?openid=oBrowserUser01")
    assert "已识别您的微信身份" in page.inner_text("body")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375  # no horizontal scrolling on a phone
    ctx.close()


CONSOLE_PAGES = ["/console/", "/console/customers", "/console/leads", "/console/opportunities", "/console/approvals",
                 "/console/service/tickets", "/console/conversations", "/console/outbox", "/console/search?q=杭州"]


@pytest.mark.parametrize("width", [390, 820])
def test_the_console_reads_on_a_phone_and_a_tablet_without_sideways_scrolling(live_app, browser, width):
    """At a phone's width the menu is a strip and every table a stack of cards, each cell labelled with its column;
    at a tablet's the layout stays, narrower. Nothing is wider than the screen (#16 item 9)."""
    ctx = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN", is_mobile=width < 600,
                              has_touch=width < 600)
    try:
        page = ctx.new_page()
        login(page, live_app.url, "admin")
        page.wait_for_selector("nav")
        for path in CONSOLE_PAGES:
            page.goto(live_app.url + path)
            page.wait_for_selector("main")
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 1, f"{path} is {wide}px wider than a {width}px screen"
        page.goto(f"{live_app.url}/console/customers")
        if width < 600:
            cell = page.locator("main table tbody tr").first.locator("td").first
            assert cell.get_attribute("data-label") == "客户名称"
            assert page.evaluate("getComputedStyle(document.querySelector('main table thead')).display") == "none"
            assert page.evaluate("getComputedStyle(document.querySelector('main table tbody tr')).display") == "block"
            label = page.evaluate("getComputedStyle(document.querySelector('main table tbody td'), '::before').content")
            assert "：" in label  # the column's name before the value
            assert page.evaluate("getComputedStyle(document.querySelector('nav.side')).overflowX") == "auto"
            page.screenshot(path="/tmp/wxcrm-console-phone.png", full_page=True)
        else:
            assert page.evaluate("getComputedStyle(document.querySelector('main table thead')).display") != "none"
    finally:
        ctx.close()


def test_sales_analysis_draws_the_funnel_the_pyramid_and_the_sources_with_echarts(live_app, page):
    """#16 item 6: the funnel, the value pyramid and customers by source as ECharts charts, each with its figures; the
    manager's charts count the team's opportunities (the four of the demo) and customers."""
    login(page, live_app.url, "sales.manager")
    page.wait_for_selector("nav")
    page.click("nav >> text=销售分析")
    page.wait_for_selector("#chart-funnel canvas")
    for key in ("funnel", "pyramid", "sources"):
        assert page.locator(f"#chart-{key} canvas").count() == 1
    series = page.evaluate("wxcrmCharts.funnel.getOption().series[0].data.map(d => [d.name, d.raw])")
    assert series[0] == ["初步接洽", 4] and [s[0] for s in series][:2] == ["初步接洽", "需求确认"]
    pie = page.evaluate("wxcrmCharts.sources.getOption().series[0].data.reduce((n, d) => n + d.value, 0)")
    assert pie == 6  # every customer of the team, by source
    assert "初步接洽" in page.inner_text("#card-funnel table") and "¥732,000" in page.inner_text("#card-funnel table")
    # a salesperson sees only their own figures
    page.click("header button")
    login(page, live_app.url, "sales.zhang")
    page.goto(f"{live_app.url}/console/analysis")
    page.wait_for_selector("#chart-sources canvas")
    assert page.evaluate("wxcrmCharts.sources.getOption().series[0].data.reduce((n, d) => n + d.value, 0)") == 3
