"""The engineer's day on a phone (#18 done-when): the dispatch notice arrives in the phone simulator, the engineer
opens it, accepts, checks in on arrival, records with a photo, collects the customer's signature and completes;
the customer's phone shows the completion and the rating invitation. And work typed offline is sent once."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm_core.db import db
from tests.conftest import LiveServer, _create_schema, _make_app
from tests.service.test_self_service_browser import WEST_LAKE_FIX, http, phone_context, photo_file, token, verify_on_phone

pytestmark = pytest.mark.browser


def _demo_server(tmp_path, **config):
    """The demo over real HTTP with the sandbox as WeChat (and as WeCom): messages land in the phone simulators."""
    from crm_core.demo import load_demo

    app = _make_app(f"sqlite:///{tmp_path}/wb.db", **config)
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        db.session.remove()
    with LiveServer(app) as server:
        app.config["WECHAT_API_BASE"] = server.url + "/sandbox/wechat/"
        app.config["WECOM_API_BASE"] = server.url + "/sandbox/wecom/cgi-bin/"
        app.config["PUBLIC_BASE_URL"] = server.url
        yield server


@pytest.fixture
def live(tmp_path):
    yield from _demo_server(tmp_path)


def _follow(ctx, base, openid: str):
    """The user's WeChat (the phone simulator): they follow the account; the page stays open to read what arrives."""
    sim = ctx.new_page()
    sim.goto(base + "/sandbox/phone")
    sim.fill("#openid", openid)
    sim.dispatch_event("#openid", "change")
    sim.click("#follow")
    sim.wait_for_selector(".passive")
    return sim


def _js_sdk_client(ctx) -> None:
    """The context plays WeChat's/WeCom's client: its JS-SDK (the tests' stand-in) locates at 西湖茶业 in GCJ-02."""
    from crm_core.geo import from_wgs84

    lat, lng = from_wgs84(WEST_LAKE_FIX["latitude"], WEST_LAKE_FIX["longitude"], "gcj02")
    ctx.add_init_script(f"window.__wxLocation = {{latitude: {lat}, longitude: {lng}, accuracy: 20}};")
    ctx.route("https://res.wx.qq.com/open/js/jweixin-1.6.0.js",
              lambda route: route.fulfill(body=FAKE_JSSDK.read_text(encoding="utf-8"), content_type="application/javascript"))


def _repair_from_the_phone(page, base, tmp_path, openid: str = "oWbCustPhone1") -> int:
    """The customer (陈建国) verifies and asks for a repair on their phone: the ticket id."""
    verify_on_phone(page, base, openid)
    page.click("text=在线报修")
    page.wait_for_selector("#product option:nth-child(2)", state="attached")
    page.fill("#description", "净水器不出水")
    page.click("#submit")
    page.wait_for_selector("#timeline")
    return int(page.url.rsplit("/", 1)[1])


def _bind_engineer(ctx, base, openid: str) -> None:
    page = ctx.new_page()
    page.goto(f"{base}/h5/dev-login?openid={openid}&next=/h5/staff/")
    page.fill("#username", "service.engineer")
    page.fill("#password", "demo123456")
    page.click("#bind-btn")
    page.wait_for_selector("#service-entries")
    page.close()


def _dispatch(base, ticket_id: int) -> int:
    dispatcher = token(base, "service.dispatcher")
    eng = next(e["id"] for e in http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"] if e["name"] == "郑强")
    return http(base, "POST", f"/api/v1/tickets/{ticket_id}/dispatch", dispatcher, {"engineer_ids": [eng]})["id"]


def _sign(page, pad: str = "#pad") -> None:
    page.locator(pad).scroll_into_view_if_needed()  # the mouse draws only where the screen shows the pad
    box = page.locator(pad).bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 100)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 30 + i * 20, box["y"] + 100 + (-1) ** i * 30, steps=3)
    page.mouse.up()


def test_the_engineers_day_on_the_phone_from_the_dispatch_notice_to_the_customers_rating_invitation(live, browser, tmp_path):
    base = live.url
    customer = phone_context(browser)
    engineer = phone_context(browser, located=True)  # at 西湖茶业
    try:
        cust_sim = _follow(customer, base, "oWbCustPhone1")  # the customer's WeChat: they follow the account first
        cust_page = customer.new_page()
        ticket_id = _repair_from_the_phone(cust_page, base, tmp_path)
        sim = _follow(engineer, base, "oWbEngPhone1")  # the engineer's WeChat: follows, signs in on the workbench once
        _bind_engineer(engineer, base, "oWbEngPhone1")
        wo_id = _dispatch(base, ticket_id)
        notice = sim.locator(".template", has_text="新服务工单")
        notice.wait_for()
        with engineer.expect_page() as opened:
            notice.locator("a.detail").click()
        page = opened.value
        page.wait_for_selector("#first-steps")
        assert page.url.endswith(f"/h5/staff/work-orders/{wo_id}")
        assert "杭州西湖茶业有限公司" in page.inner_text("#customer") and page.get_attribute("#call", "href").startswith("tel:")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing wider than the phone

        page.click("#accept")
        page.wait_for_selector("#accepted")
        page.click("#arrive")
        page.wait_for_selector("#arrive-state:has-text('已签到')")
        page.wait_for_selector("#arrived")
        assert "距客户" in page.inner_text("#arrived")

        page.fill("#note", "进水阀堵塞，已清洗更换")
        page.fill("#minutes", "40")
        page.set_input_files("#photos", photo_file(tmp_path))
        page.wait_for_selector("#thumbs img")
        page.click("#add-fee")
        page.fill("#fees .item", "上门服务费")
        page.fill("#fees .amt", "80")
        page.wait_for_selector("#fee-sign:has-text('本次有偿收费合计 ¥80.00')")  # 确认收费: the customer signs the charge
        _sign(page, "#fee-pad")
        page.fill("#fee-signer", "陈建国")
        page.click("#save-record")
        page.wait_for_selector("#records .wb-rec:has-text('进水阀堵塞')")
        page.wait_for_selector("#records .signature:has-text('确认收费')")
        assert page.locator("#records .wb-rec:not(.signature) .wb-thumbs img").count() == 1
        assert "本次有偿服务收费 ¥80.00" in page.inner_text("#fee-note")

        page.fill("#summary", "已修复，出水正常")
        page.click("#complete")  # paid service: not without the customer's signature
        page.wait_for_selector("#toast:has-text('请客户在签字板上签字')")
        _sign(page)
        page.fill("#signer", "陈建国")
        page.click("#complete")
        page.wait_for_selector("#wo-status:has-text('已完成')")
        page.wait_for_selector("#records .signature:has-text('完工确认') img")
        assert page.evaluate("Array.from(document.querySelectorAll('#records .signature img')).every(i => i.naturalWidth > 0)")

        cust_sim.bring_to_front()  # the customer's WeChat: the completion and the rating invitation
        cust_sim.wait_for_selector(".msg:has-text('请为本次服务评分')")
        cust_page.goto(f"{base}/h5/service/tickets/{ticket_id}")
        cust_page.wait_for_selector("#rate", state="visible")
        assert "已完成" in cust_page.inner_text("#detail")
        assert "工程师已到达现场" in cust_page.inner_text("#timeline")
    finally:
        customer.close()
        engineer.close()


def _work_order_on_the_engineers_phone(customer, engineer, base, tmp_path, openid: str):
    """The customer reports a repair from their phone, 郑强 binds ``openid`` and gets it dispatched: the work order's id,
    the address that opens it on his phone, and his page with it open."""
    ticket_id = _repair_from_the_phone(customer.new_page(), base, tmp_path)
    _bind_engineer(engineer, base, openid)
    wo_id = _dispatch(base, ticket_id)
    url = f"{base}/h5/dev-login?openid={openid}&next=/h5/staff/work-orders/{wo_id}"
    page = engineer.new_page()
    page.goto(url)
    page.wait_for_selector("#record-form")
    return wo_id, url, page


def test_a_record_typed_offline_is_kept_on_the_phone_and_sent_once_back_online(live, browser, tmp_path):
    base = live.url
    customer, engineer = phone_context(browser), phone_context(browser, located=True)
    try:
        wo_id, url, page = _work_order_on_the_engineers_phone(customer, engineer, base, tmp_path, "oWbEngPhone2")
        engineer.set_offline(True)  # in the lift, in the basement
        page.fill("#note", "地下室无信号，先记下：更换滤芯")
        page.click("#save-record")
        page.wait_for_selector("#offline-bar.show:has-text('1 项操作已保存在手机上')")
        engineer.set_offline(False)  # back online: the page sends it, once
        page.wait_for_selector("#records .wb-rec:has-text('更换滤芯')", timeout=15000)
        assert not page.is_visible("#offline-bar")
        engineer_token = token(base, "service.engineer")
        records = http(base, "GET", f"/api/v1/work-orders/{wo_id}", engineer_token)["records"]
        assert [r["note"] for r in records] == ["地下室无信号，先记下：更换滤芯"]
    finally:
        customer.close()
        engineer.close()


_PAD_INKED = ("(sel) => { const c = document.querySelector(sel), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
              " for (let i = 0; i < d.length; i += 4) { if (d[i] < 128) return true; } return false; }")


def test_a_closed_page_keeps_the_typed_record_and_the_signature_and_the_completion_is_sent_once_back_online(
        live, browser, tmp_path):
    """WeChat closes the page (a call comes in) after the engineer has typed the record with a part and a cost, the
    summary and the customer's signature: reopened, all of it is back. The record is saved; the completion, tapped
    offline with the signature, is kept on the phone and sent once when the network is back."""
    base = live.url
    customer, engineer = phone_context(browser), phone_context(browser, located=True)
    try:
        wo_id, url, page = _work_order_on_the_engineers_phone(customer, engineer, base, tmp_path, "oWbEngPhone3")
        page.fill("#note", "更换密封圈两只")
        page.fill("#minutes", "40")
        page.click("#add-part")
        page.fill("#parts .line .code", "LY-SEAL-1")
        page.fill("#parts .line .qty", "2")
        page.click("#add-fee")
        page.select_option("#fees .line .kind", "fee")
        page.fill("#fees .line .item", "停车费")
        page.fill("#fees .line .amt", "15")
        page.fill("#summary", "密封圈已更换，不再漏水")
        page.fill("#signer", "王女士")
        _sign(page)
        page.close()

        page = engineer.new_page()
        page.goto(url)
        page.wait_for_selector("#record-form")
        expect(page.locator("#note")).to_have_value("更换密封圈两只")
        assert page.input_value("#minutes") == "40"
        assert page.input_value("#parts .line .code") == "LY-SEAL-1" and page.input_value("#parts .line .qty") == "2"
        assert page.input_value("#fees .line .kind") == "fee" and page.input_value("#fees .line .item") == "停车费"
        assert page.input_value("#fees .line .amt") == "15"
        assert page.input_value("#summary") == "密封圈已更换，不再漏水" and page.input_value("#signer") == "王女士"
        assert page.evaluate(_PAD_INKED, "#pad"), "the signature is drawn again"

        page.click("#save-record")
        page.wait_for_selector("#records .wb-rec:has-text('更换密封圈两只')")
        page.wait_for_selector("#records .wb-rec:has-text('停车费')")
        expect(page.locator("#note")).to_have_value("")  # the saved record's fields are empty after the reload ...
        assert page.locator("#parts .line").count() == 0
        expect(page.locator("#summary")).to_have_value("密封圈已更换，不再漏水")  # ... the completion is still there
        assert page.evaluate(_PAD_INKED, "#pad")

        engineer.set_offline(True)
        page.click("#complete")
        page.wait_for_selector("#offline-bar.show:has-text('1 项操作已保存在手机上')")
        engineer.set_offline(False)
        _until(page, "!document.getElementById('offline-bar').classList.contains('show')", 20)
        engineer_token = token(base, "service.engineer")
        wo = http(base, "GET", f"/api/v1/work-orders/{wo_id}", engineer_token)
        assert wo["status"] == "completed"
        assert [s["signer_name"] for s in wo["signatures"]] == ["王女士"]
        notes = [r["note"] for r in wo["records"]]
        assert notes.count("更换密封圈两只") == 1 and [p["code"] for p in wo["parts"]] == ["LY-SEAL-1"]
        page.goto(url)
        page.wait_for_selector("#records")
        assert page.locator("#summary").count() == 0  # completed: no form, and no draft left behind
        assert page.evaluate(f"localStorage.getItem('wxcrm-draft-wo-{wo_id}')") is None
    finally:
        customer.close()
        engineer.close()


def _until(page, js: str, timeout: float = 15.0) -> None:
    """Wait until ``js`` is true on the page, asked from outside (the page's CSP forbids wait_for_function's eval)."""
    import time

    end = time.monotonic() + timeout
    while not page.evaluate(js):
        if time.monotonic() > end:
            raise AssertionError(f"still not true after {timeout} s: {js}")
        time.sleep(0.1)


WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN"
FAKE_JSSDK = Path(__file__).resolve().parent.parent / "fakes" / "jweixin.js"


def test_inside_wechat_the_page_uses_the_js_sdk_for_location_photos_and_the_map(live, browser, tmp_path):
    """Inside WeChat (its user agent) the work order page loads the JS-SDK, signs wx.config (checked by the sandbox as
    the client would), locates with wx.getLocation (GCJ-02), takes photos with chooseImage/uploadImage (the server
    downloads them from the sandbox by media id) and navigates with wx.openLocation."""
    base = live.url
    customer = phone_context(browser)
    engineer = phone_context(browser, user_agent=WECHAT_UA)  # no browser geolocation: only the JS-SDK knows where it is
    _js_sdk_client(engineer)
    try:
        ticket_id = _repair_from_the_phone(customer.new_page(), base, tmp_path)
        _bind_engineer(engineer, base, "oWbEngWx0001")
        wo_id = _dispatch(base, ticket_id)
        page = engineer.new_page()
        page.goto(f"{base}/h5/dev-login?openid=oWbEngWx0001&next=/h5/staff/work-orders/{wo_id}")
        _until(page, "(window.__wxCalls || []).some(c => c[0] === 'config:result')")
        assert ["config:result", "config:ok"] in page.evaluate("window.__wxCalls")  # the signature WeChat would accept
        page.click("#arrive")
        page.wait_for_selector("#arrive-state:has-text('已签到')")
        assert ["getLocation", "gcj02"] in page.evaluate("window.__wxCalls")
        page.wait_for_selector("#arrived")
        assert "距客户" in page.inner_text("#arrived")

        page.fill("#note", "微信内拍照：滤芯已更换")
        page.click(".wb-pick")
        _until(page, "window.__wxCalls.some(c => c[0] === 'uploadImage')")
        page.wait_for_selector("#thumbs img")
        page.click("#save-record")
        page.wait_for_selector("#records .wb-rec:has-text('微信内拍照')")
        page.reload()  # the server downloaded the picture from WeChat (the sandbox) by its media id
        page.wait_for_selector("#records .wb-rec:has-text('微信内拍照') .wb-thumbs img")
        _until(page, "Array.from(document.querySelectorAll('#records .wb-thumbs img')).every(i => i.complete && i.naturalWidth > 0)")

        _until(page, "(window.__wxCalls || []).some(c => c[1] === 'config:ok')")
        page.click("#navigate")
        opened = [c for c in page.evaluate("window.__wxCalls") if c[0] == "openLocation"]
        assert opened and opened[0][1]["name"] == "杭州西湖茶业有限公司"
    finally:
        customer.close()
        engineer.close()


def _staff(ctx, base, openid: str, username: str, path: str = "/h5/staff/"):
    page = ctx.new_page()
    page.goto(f"{base}/h5/dev-login?openid={openid}&next={path}")
    page.fill("#username", username)
    page.fill("#password", "demo123456")
    page.click("#bind-btn")
    page.wait_for_selector(".wb-head")
    return page


@pytest.mark.parametrize("client", ["browser", "wechat"])
def test_nearby_lists_the_salespersons_customers_around_him_nearest_first(live, browser, client):
    """附近 on 我的客户 at 西湖茶业: on a phone browser the position comes from the browser (WGS-84); inside WeChat,
    where a page's geolocation has nothing, from wx.getLocation (GCJ-02). Either way 西湖茶业 heads the list, a few
    metres away, and its row opens the customer."""
    base = live.url
    ctx = phone_context(browser, located=True) if client == "browser" else phone_context(browser, user_agent=WECHAT_UA)
    if client == "wechat":
        _js_sdk_client(ctx)
    try:
        page = _staff(ctx, base, f"oWbNearby{client[:2]}01", "sales.zhang", "/h5/staff/customers")
        if client == "wechat":
            _until(page, "(window.__wxCalls || []).some(c => c[0] === 'config:result')")
        page.click("#nearby")
        page.wait_for_selector("#customers a .weui-cell__ft:has-text('米')")
        first = page.locator("#customers a").first
        assert "杭州西湖茶业有限公司" in first.inner_text()
        assert int(first.locator(".weui-cell__ft").inner_text().split()[0]) < 200
        if client == "wechat":
            assert ["getLocation", "gcj02"] in page.evaluate("window.__wxCalls")
        first.click()
        page.wait_for_selector("#opportunities")
        assert "杭州西湖茶业有限公司" in page.inner_text(".wb-head")
    finally:
        ctx.close()


def _register_colliding_then_new(page, name: str, phone: str) -> None:
    """客户备案 from the phone: 李娜's customer collides (masked hit, refused), a new one is saved with its contact."""
    page.click("#new-customer")
    page.fill("#name", "浙江钱塘物流股份有限公司")  # 李娜's customer
    page.fill("#phone", "0571-85003456")
    page.dispatch_event("#phone", "change")
    page.wait_for_selector("#collisions:has-text('撞单，不能备案')")
    assert "浙江钱塘物流股份有限公司" not in page.inner_text("#collisions")  # masked: only the owner shows
    page.fill("#contact_name", "徐丽")
    page.click("#save-customer")
    page.wait_for_selector("#toast:has-text('撞单')")
    page.fill("#name", name)
    page.fill("#phone", phone)
    page.fill("#contact_name", "沈工")
    page.click("#save-customer")
    page.wait_for_selector("#contacts:has-text('沈工')")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _visit_at_the_site_and_advance(page, base) -> None:
    """A visit logged at 西湖茶业 with its check-in unlocks the opportunity's next stage, advanced from the phone."""
    page.goto(f"{base}/h5/staff/customers?q=西湖茶业")
    page.click("#customers a")
    page.click("#opportunities a:has-text('茶厂车间净水改造')")
    page.wait_for_selector(".stage-todo .missing")
    assert "需要至少一项已完成的活动" in page.inner_text("#stages")
    page.click("#log-visit")
    page.select_option("#visit-contact", label="陈建国")
    page.fill("#result", "客户确认车间净水需求，下周报方案")
    page.click("#save-visit")
    page.wait_for_selector("#visit-state:has-text('已签到')")
    page.wait_for_selector("#stages")  # back on the opportunity
    page.select_option("#contact", label="陈建国")
    page.wait_for_selector("#toast:has-text('已保存联系人')")
    page.wait_for_selector(".stage-todo .go")
    page.click(".stage-todo .go >> nth=0")
    page.wait_for_selector(".stage-current:has-text('需求确认')")


def test_the_salespersons_day_and_the_managers_approval_on_the_phone(live, browser):
    base = live.url
    zhang_ctx, manager_ctx = phone_context(browser, located=True), phone_context(browser)
    try:
        page = _staff(zhang_ctx, base, "oWbZhangPh01", "sales.zhang")
        page.click("#entry-customers")
        _register_colliding_then_new(page, "杭州之江新材料有限公司", "0571-81112222")
        _visit_at_the_site_and_advance(page, base)

        page.goto(f"{base}/h5/staff/customers?q=未来酒店")
        page.click("#customers a")
        page.click("#opportunities a:has-text('酒店新风系统')")
        page.wait_for_load_state("load")  # the button's handler is bound by the page's script, at its end
        page.click("#stages .ask")
        page.wait_for_selector("#stages:has-text('待审批')")

        manager = _staff(manager_ctx, base, "oWbManagerPh1", "sales.manager")
        manager.click("#entry-approvals")
        manager.wait_for_selector(".approval:has-text('酒店新风系统')")
        manager.fill(".approval .comment", "同意，注意回款条款")
        manager.click(".approval .approve")
        manager.wait_for_selector("#toast:has-text('已通过')")

        page.reload()
        page.wait_for_selector("#stages:has-text('已批准')")
        page.click("#win")
        page.wait_for_selector("#opp-status:has-text('已赢单')")

        # 输单 from the phone: not without a reason; with one it is lost and the reason kept
        zhang = token(base, "sales.zhang")
        other = next(o for o in http(base, "GET", "/api/v1/opportunities?per_page=100", zhang)["items"]
                     if o["name"] == "茶厂车间净水改造")  # advanced above, still open
        page.goto(f"{base}/h5/staff/opportunities/{other['id']}")
        page.click("#lose")
        page.click("#confirm-lose")
        page.wait_for_selector("#toast:has-text('原因')")
        assert http(base, "GET", f"/api/v1/opportunities/{other['id']}", zhang)["status"] == "open"
        page.fill("#lose-reason", "客户预算取消")
        page.click("#confirm-lose")
        page.wait_for_selector("#opp-status:has-text('已输单')")
        lost = http(base, "GET", f"/api/v1/opportunities/{other['id']}", zhang)
        assert lost["status"] == "lost" and lost["close_reason"] == "客户预算取消"

        # 今日计划: a task added to today, finished with its result; the daily plan written and submitted
        page.goto(f"{base}/h5/staff/")
        page.click("#entry-today-plan")
        page.fill("#new-subject", "整理赢单资料")
        page.select_option("#new-kind", "task")
        page.click("#add-activity")
        page.wait_for_selector(".activity:has-text('整理赢单资料')")
        box = page.locator(".activity:has-text('整理赢单资料')")
        box.locator(".finish").click()
        box.locator(".result").fill("合同资料已交法务")
        box.locator(".finish").click()
        page.wait_for_selector("#done .activity:has-text('合同资料已交法务')")
        page.fill("#plan-content", "跟进酒店新风合同")
        page.click("#save-plan")
        page.wait_for_selector("#submit-plan")
        page.fill("#plan-summary", "酒店新风已赢单")
        page.click("#submit-plan")
        page.wait_for_selector("#plan-status:has-text('待批阅')")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # the manager: the plan to 批阅, and the team today with 张伟's check-in at the tea company
        manager.goto(f"{base}/h5/staff/approvals")
        manager.fill(".plan .comment", "很好，继续跟进回款")
        manager.click(".plan .review")
        manager.wait_for_selector("#toast:has-text('已批阅')")
        manager.goto(f"{base}/h5/staff/")
        manager.click("#entry-team")
        manager.wait_for_selector(".person:has-text('张伟') .checkin:has-text('杭州西湖茶业有限公司')")
        assert manager.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        manager.click("a:has-text('报表')")
        manager.wait_for_selector("#report:has-text('张伟')")
        page.reload()
        page.wait_for_selector("#plan-comment:has-text('很好，继续跟进回款')")
    finally:
        zhang_ctx.close()
        manager_ctx.close()


WECOM = {"WECOM_CORP_ID": "wwsandboxcorp01", "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": "sandbox-wecom-secret"}
WXWORK_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 NetType/WIFI Language/zh")  # as WeCom on an iPhone sends it


@pytest.fixture
def live_wecom(tmp_path):
    """The demo with 企业微信 configured against the sandbox's WeCom."""
    yield from _demo_server(tmp_path, **WECOM)


def test_the_engineers_day_with_wecom_identity(live_wecom, browser, tmp_path):
    """The dispatch notice is a WeCom app card; 详情 opens the work order inside WeCom, signed in by WeCom OAuth
    (no password, no binding); the JS-SDK is signed with the company's ticket (not the official account's), the photo
    goes through chooseImage/uploadImage, the customer signs, the order completes — and the customer's WeChat shows
    the completion and the rating invitation."""
    base = live_wecom.url
    customer = phone_context(browser)
    ctx = phone_context(browser, user_agent=WXWORK_UA)  # inside WeCom the JS-SDK locates (GCJ-02), at 西湖茶业
    _js_sdk_client(ctx)
    try:
        cust_sim = _follow(customer, base, "oWbCustWecom1")
        cust_page = customer.new_page()
        ticket_id = _repair_from_the_phone(cust_page, base, tmp_path, "oWbCustWecom1")
        wo_id = _dispatch(base, ticket_id)

        phone = ctx.new_page()
        phone.goto(f"{base}/sandbox/wecom/phone?userid=service.engineer")
        card = phone.locator(".wecom-card", has_text="新服务工单")
        card.wait_for()
        with ctx.expect_page() as opened:
            card.locator("a.detail").click()
        page = opened.value
        page.wait_for_selector("#first-steps")  # through WeCom OAuth, straight to the work order
        assert page.url.endswith(f"/h5/staff/work-orders/{wo_id}")
        _until(page, "(window.__wxCalls || []).some(c => c[0] === 'config:result')")
        calls = page.evaluate("window.__wxCalls")
        assert ["config:result", "config:ok"] in calls  # the company's signature, which WeCom accepts
        assert next(c for c in calls if c[0] == "config")[2] is True  # beta: WeCom's JS-SDK
        assert re.match(r"SLA 剩余 \d", page.locator(".sla").first.inner_text())  # the countdown ticks
        page.goto(f"{base}/h5/staff/work-orders?tab=today")  # 我的工单: the card with customer, product and SLA
        card_text = page.inner_text(f"#wo-{wo_id}")
        assert "杭州西湖茶业有限公司" in card_text and re.search(r"SLA 剩余 \d", card_text) and "待接单" in card_text
        page.click(f"#wo-{wo_id}")
        page.wait_for_selector("#first-steps")
        _until(page, "(window.__wxCalls || []).some(c => c[1] === 'config:ok')")  # the JS-SDK locates the arrival
        page.click("#accept")
        page.wait_for_selector("#accepted")
        page.click("#arrive")
        page.wait_for_selector("#arrived")
        page.fill("#note", "上门查看，滤芯已到更换周期，已更换")
        page.click("#add-part")  # one part from stock, and a spare machine beyond what is on hand (requested)
        page.fill("#parts .line >> nth=0 >> .code", "LY-FILTER-1")
        page.click("#add-part")
        page.fill("#parts .line >> nth=1 >> .code", "LY-WP-100")
        page.fill("#parts .line >> nth=1 >> .qty", "5")
        page.click(".wb-pick")
        _until(page, "window.__wxCalls.some(c => c[0] === 'uploadImage')")
        page.wait_for_selector("#thumbs img")
        page.click("#save-record")
        page.wait_for_selector("#records .wb-rec:has-text('已到更换周期')")
        page.reload()
        page.wait_for_selector(".wb-rec:has-text('WP100 复合滤芯 × 1（已预留）')")
        page.wait_for_selector(".wb-rec:has-text('× 5（缺货，已申请）')")
        page.fill("#summary", "已更换滤芯")
        _sign(page)
        page.fill("#signer", "陈建国")
        page.click("#complete")
        page.wait_for_selector("#wo-status:has-text('已完成')")
        page.wait_for_selector("#records .signature:has-text('完工确认') img")
        page.reload()  # the photo was downloaded from WeChat's side by its media id
        page.wait_for_selector("#records .wb-rec:has-text('已到更换周期') .wb-thumbs img")

        cust_sim.bring_to_front()  # the customer's WeChat: the completion and the rating invitation
        cust_sim.wait_for_selector(".msg:has-text('请为本次服务评分')")
        cust_page.goto(f"{base}/h5/service/tickets/{ticket_id}")
        cust_page.wait_for_selector("#rate", state="visible")
        assert "已完成" in cust_page.inner_text("#detail")
    finally:
        customer.close()
        ctx.close()
    done = http(base, "GET", f"/api/v1/work-orders/{wo_id}", token(base, "service.engineer"))
    assert done["status"] == "completed" and done["arrived_at"]


def test_the_managers_approval_and_the_salespersons_win_with_wecom_identity(live_wecom, browser):
    """The approval asked is a WeCom card to the manager; 详情 signs in by WeCom OAuth and opens 待我审批; the decision
    is a card to the salesperson, whose 详情 opens the opportunity inside WeCom to win it."""
    base = live_wecom.url
    zhang = token(base, "sales.zhang")
    opp = next(o for o in http(base, "GET", "/api/v1/opportunities?per_page=100", zhang)["items"] if o["name"] == "酒店新风系统")
    talks = next(s for s in http(base, "GET", f"/api/v1/opportunities/{opp['id']}", zhang)["stages"] if s["name"] == "商务谈判")
    http(base, "POST", f"/api/v1/opportunities/{opp['id']}/approvals", zhang, {"stage_id": talks["id"]})
    ctx = phone_context(browser, user_agent=WXWORK_UA)
    try:
        phone = ctx.new_page()
        phone.goto(f"{base}/sandbox/wecom/phone?userid=sales.manager")
        card = phone.locator(".wecom-card", has_text="酒店新风系统")
        card.wait_for()
        with ctx.expect_page() as opened:
            card.locator("a.detail").click()
        page = opened.value
        page.wait_for_selector(".approval:has-text('酒店新风系统')")  # through WeCom OAuth, no password
        page.fill(".approval .comment", "同意")
        page.click(".approval .approve")
        page.wait_for_selector("#toast:has-text('已通过')")
        page.close()
    finally:
        ctx.close()
    ctx = phone_context(browser, located=True, user_agent=WXWORK_UA)  # 张伟's own phone, at 西湖茶业
    try:
        phone = ctx.new_page()
        phone.goto(f"{base}/sandbox/wecom/phone?userid=sales.zhang")
        card = phone.locator(".wecom-card", has_text="审批已通过")
        card.wait_for()
        with ctx.expect_page() as opened:
            card.locator("a.detail").click()
        page = opened.value
        page.wait_for_selector("#stages:has-text('已批准')")
        page.click("#win")
        page.wait_for_selector("#opp-status:has-text('已赢单')")
        page.goto(f"{base}/h5/staff/customers")  # the rest of his day inside WeCom: 客户备案 and a visit at the site
        _register_colliding_then_new(page, "杭州之江新材料有限公司", "0571-81112222")
        _visit_at_the_site_and_advance(page, base)
    finally:
        ctx.close()
    assert http(base, "GET", f"/api/v1/opportunities/{opp['id']}", zhang)["status"] == "won"
    visit = next(a for a in http(base, "GET", "/api/v1/activities?per_page=100", zhang)["items"]
                 if (a.get("result") or "").startswith("客户确认车间净水需求"))
    assert visit["status"] == "done"
    assert any(c.get("activity_id") == visit["id"]  # tied to the check-in at the site
               for c in http(base, "GET", "/api/v1/checkins?per_page=100", zhang)["items"])
