"""Charts where people would rather look than read (#16 item 6), in Chromium on the demo: check-in activity per day
on 移动签到报表, daily reads and share depth on a campaign — each drawn by ECharts from the same report the page's
table shows, so the drawn numbers add up to the table's."""
from __future__ import annotations

import re

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import phone_context

pytestmark = pytest.mark.browser
# a phone's browser outside WeChat (inside it, the page would first ask WeChat who the reader is)
PHONE_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36"


def test_check_in_activity_and_campaign_reads_are_drawn_from_their_reports(live_app, page, browser):
    import requests

    base = live_app.url
    token = requests.post(f"{base}/api/v1/auth/token", json={"username": "sales.zhang", "password": "demo123456"},
                          timeout=10).json()["access_token"]
    for kind in ("in", "out"):  # 张伟 at the tea company today
        r = requests.post(f"{base}/api/v1/checkins", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                          json={"kind": kind, "lat": 30.2270, "lng": 120.1230, "coord_system": "gcj02", "accuracy_m": 15})
        assert r.status_code == 201, r.text
    login(page, base, "admin")
    page.wait_for_selector("nav")
    page.goto(f"{base}/console/field/checkins")
    page.wait_for_selector("#chart-activity canvas")
    series = page.evaluate("wxcrmCharts.activity.getOption().series.map(s => [s.name, s.data])")
    names = [s[0] for s in series]
    assert names == ["签到", "拜访", "超出范围", "签到人数"]
    days = page.evaluate("wxcrmCharts.activity.getOption().xAxis[0].data.length")
    assert all(len(s[1]) == days for s in series) and days >= 7
    table_total = sum(int(c) for c in page.locator("#checkin-report tbody tr[data-employee] td:nth-child(5)").all_inner_texts())
    assert sum(series[0][1]) == table_total and series[0][1][-1] == 2 and series[3][1][-1] == 1

    # a campaign read by two people, the second through the first's share
    mkt = {"Authorization": "Bearer " + requests.post(f"{base}/api/v1/auth/token", timeout=10, json={
        "username": "marketing.wang", "password": "demo123456"}).json()["access_token"]}
    m = requests.post(f"{base}/api/v1/materials", headers=mkt, timeout=10, json={
        "title": "净水器以旧换新", "summary": "旧机抵 500 元", "body_html": "<p>活动正文</p>", "publish": True}).json()
    c = requests.post(f"{base}/api/v1/campaigns", headers=mkt, timeout=10, json={"name": "以旧换新月", "material_ids": [m["id"]]})
    assert c.status_code == 201, c.text
    c = c.json()
    link = c["links"][0].replace("http://localhost", base)  # the links carry PUBLIC_BASE_URL
    share = None
    for opened in (link, None):
        ctx = phone_context(browser, user_agent=PHONE_UA)  # a headless browser's own agent counts as a bot
        reader = ctx.new_page()
        with reader.expect_response(lambda r: "/seen" in r.url):
            reader.goto(opened or share)
        share = share or re.search(r'shareUrl = ("[^"]+")', reader.content()).group(1).strip('"').replace("http://localhost", base)
        ctx.close()

    page.goto(f"{base}/console/marketing/campaigns/{c['id']}")
    page.wait_for_selector("#chart-reads canvas")
    reads = page.evaluate("wxcrmCharts.reads.getOption().series[0].data")
    stated = int(page.locator("#c-stats tr").nth(1).locator("td").nth(0).inner_text())
    assert sum(reads) == stated == 2
    depth = page.evaluate("wxcrmCharts.depth.getOption().series[0].data")
    assert depth == [1, 1] and sum(depth) == sum(int(t.split()[0]) for t in page.locator("#charts table.figures td.num").all_inner_texts())

