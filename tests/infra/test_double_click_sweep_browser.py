"""The double-click sweep (#14 item 1): every create or move button is one action, however often it is hit.

Two halves. The crawl opens every console page a role reaches and checks that each POST form on it
carries a one-time token (once.js), and that every write an H5 page sends carries an
Idempotency-Key. The flows then double-click real buttons — console forms and phone pages — and
count records and notices: one each."""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import http, phone_context, staff_on_phone, token, verify_on_phone

pytestmark = pytest.mark.browser

FORMS_WITHOUT_TOKEN = """() => Array.from(document.querySelectorAll('form'))
    .filter(f => (f.getAttribute('method') || '').toLowerCase() === 'post' && !f.querySelector('input[name=_once]'))
    .map(f => f.getAttribute('action') || f.id)"""
POST_FORMS = "() => document.querySelectorAll('form[method=post], form[method=POST]').length"


def _notices(page) -> list[str]:
    """The notices the console shows after a form was sent (once the navigation settled)."""
    page.wait_for_selector("[role=status], [role=alert]")
    page.wait_for_load_state("networkidle")
    return page.locator("[role=status], [role=alert]").all_inner_texts()


def _crawl(page, base, start_paths):
    """Every console page linked from the start pages (one level deep), read as the logged-in person."""
    seen, missing, forms, titles = set(), {}, 0, []
    queue = list(start_paths)
    page.goto(base + "/console/")
    queue += sorted(set(re.findall(r'href="(/console/[^"#?]*)"', page.content())) - {"/console/logout"})
    for path in queue:
        if path in seen or path.endswith((".csv", ".ics", ".png", ".svg")):
            continue
        seen.add(path)
        resp = page.goto(base + path)
        if resp is None or resp.status != 200 or "text/html" not in (resp.headers.get("content-type") or ""):
            continue
        bad = page.evaluate(FORMS_WITHOUT_TOKEN)
        if bad:
            missing[path] = bad
        forms += page.evaluate(POST_FORMS)
        if "<" in page.title():
            titles.append(path)
    return seen, missing, forms, titles


def test_every_post_form_on_every_console_page_is_once_only(live_app, browser):
    base = live_app.url
    dispatcher = token(base, "service.dispatcher")
    customer = http(base, "GET", "/api/v1/customers", dispatcher)["items"][0]
    ticket = http(base, "POST", "/api/v1/tickets", dispatcher,
                  {"customer_id": customer["id"], "kind": "consultation", "description": "巡检：表单令牌"})
    eng_id = http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"][0]["id"]
    wo = http(base, "POST", f"/api/v1/tickets/{ticket['id']}/dispatch", dispatcher, {"engineer_ids": [eng_id]})
    lead = http(base, "GET", "/api/v1/leads", token(base, "admin"))["items"][0]
    details = [f"/console/service/tickets/{ticket['id']}", f"/console/service/work-orders/{wo['id']}",
               f"/console/customers/{customer['id']}", f"/console/leads/{lead['id']}"]
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    try:
        total_pages, total_forms = 0, 0
        for user in ("admin", "service.dispatcher", "service.engineer", "marketing.wang", "sales.zhang"):
            ctx.clear_cookies()
            login(page, base, user)
            extra = list(details)
            if user == "marketing.wang":
                page.goto(base + "/console/marketing/campaigns")
                extra += sorted(set(re.findall(r'href="(/console/marketing/(?:campaigns|materials)/\d+)"', page.content())))
                page.goto(base + "/console/marketing/materials")
                extra += sorted(set(re.findall(r'href="(/console/marketing/materials/\d+)"', page.content())))
            seen, missing, forms, titles = _crawl(page, base, extra)
            assert not missing, (user, missing)
            assert not titles, (user, titles)  # page titles are plain text
            total_pages, total_forms = total_pages + len(seen), total_forms + forms
        assert total_pages > 30 and total_forms > 15, (total_pages, total_forms)
    finally:
        ctx.close()


def test_double_clicks_on_console_create_and_move_buttons_make_one_of_each(live_app, browser):
    base = live_app.url
    dispatcher, engineer = token(base, "service.dispatcher"), token(base, "service.engineer")
    customer = http(base, "GET", "/api/v1/customers", dispatcher)["items"][0]
    ticket = http(base, "POST", "/api/v1/tickets", dispatcher,
                  {"customer_id": customer["id"], "kind": "consultation", "description": "双击巡检：工单"})
    eng_id = http(base, "GET", "/api/v1/tickets/suggested-engineer", dispatcher)["engineers"][0]["id"]
    wo = http(base, "POST", f"/api/v1/tickets/{ticket['id']}/dispatch", dispatcher, {"engineer_ids": [eng_id]})
    phone = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 812}, is_mobile=True)
    verify_on_phone(phone.new_page(), base, "oSweepPush01")  # a bound follower of 西湖茶业 for the push
    phone.close()
    http(base, "POST", "/sandbox/phone/send", body={"openid": "oSweepPush01", "kind": "follow"})  # and follows
    http(base, "POST", "/api/v1/segments", token(base, "admin"), {"name": "西湖茶业", "target": "customer", "conditions": [
        {"field": "name", "op": "contains", "value": "西湖茶业"}]})
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = []
    page.on("response", lambda r: errors.append(r.url) if r.status >= 500 else None)
    try:
        # the engineer: a record, then completion
        login(page, base, "service.engineer")
        page.goto(f"{base}/console/service/work-orders/{wo['id']}")
        page.fill("#record-form textarea[name=note]", "双击巡检：已检查管路")
        page.dblclick("#record-form button[type=submit]")
        page.wait_for_selector("text=已添加处理记录")
        assert page.inner_text("#records").count("双击巡检：已检查管路") == 1
        page.dblclick("#complete-form button[type=submit]")
        page.wait_for_selector("text=工单已完成")
        detail = http(base, "GET", f"/api/v1/tickets/{ticket['id']}", dispatcher)
        kinds = [e["kind"] for e in detail["timeline"]]
        assert kinds.count("complete") <= 1 and len(detail["work_orders"]) == 1, kinds
        records = http(base, "GET", f"/api/v1/work-orders/{wo['id']}", engineer)["records"]
        assert [r["note"] for r in records].count("双击巡检：已检查管路") == 1

        # the salesperson: the lead conversion dialog's confirm, and a stage move
        ctx.clear_cookies()
        login(page, base, "sales.zhang")
        rep = token(base, "sales.zhang")
        lead = http(base, "POST", "/api/v1/leads", rep, {"name": "双击先生", "company": "双击巡检贸易有限公司",
                                                        "phone": "13612349876"})
        page.goto(f"{base}/console/leads/{lead['id']}")
        page.dblclick("#convert button[type=submit]")
        page.wait_for_selector("#profile")
        found = http(base, "GET", "/api/v1/customers?q=" + quote("双击巡检贸易"), rep)["items"]
        assert len(found) == 1, found
        opps = http(base, "GET", f"/api/v1/opportunities?customer_id={found[0]['id']}", rep)["items"]
        assert len(opps) == 1, opps
        act = http(base, "GET", f"/api/v1/activities?customer_id={found[0]['id']}", rep)["items"][0]
        http(base, "POST", f"/api/v1/activities/{act['id']}/status", rep, {"status": "done", "result": "已电话沟通"})
        page.goto(f"{base}/console/opportunities/{opps[0]['id']}")
        page.wait_for_selector("#stages")
        page.locator("form.inline button", has_text="推进到此").first.dblclick()
        notices = _notices(page)
        assert len(notices) == 1 and notices[0].startswith("已推进到"), notices
        ctx.clear_cookies()

        # the marketer: a material, a campaign, a push — one each
        login(page, base, "marketing.wang")
        page.goto(f"{base}/console/marketing/materials")
        page.fill("#material-form input[name=title]", "双击巡检素材")
        page.locator("#material-form .ql-editor").click()
        page.keyboard.type("双击巡检")
        page.check("#material-form input[name=publish]")
        page.dblclick("#material-form button[type=submit]")
        assert _notices(page) == ["素材已保存。"]
        marketer = token(base, "marketing.wang")
        mats = [m for m in http(base, "GET", "/api/v1/materials?per_page=100", marketer)["items"] if m["title"] == "双击巡检素材"]
        assert len(mats) == 1, mats
        page.goto(f"{base}/console/marketing/campaigns")
        page.fill("#campaign-form input[name=name]", "双击巡检活动")
        page.select_option("#campaign-form select[name=segment_id]", label="西湖茶业")
        page.check(f"#campaign-form input[name=material_ids][value='{mats[0]['id']}']")
        page.dblclick("#campaign-form button[type=submit]")
        assert len(_notices(page)) == 1
        camps = [c for c in http(base, "GET", "/api/v1/campaigns?per_page=100", marketer)["items"] if c["name"] == "双击巡检活动"]
        assert len(camps) == 1, camps
        page.goto(f"{base}/console/marketing/campaigns/{camps[0]['id']}")
        page.dblclick("#push-form button[type=submit]")
        notices = _notices(page)
        assert len(notices) == 1 and "本次发送 1 人" in notices[0], notices  # one push, explained once
        recipients = http(base, "GET", f"/api/v1/campaigns/{camps[0]['id']}/recipients", marketer)["items"]
        assert [r["openid"] for r in recipients] == ["oSweepPush01"], recipients
        assert not errors, errors
    finally:
        ctx.close()


def test_double_taps_on_phone_pages_make_one_of_each_and_every_write_has_a_key(live_app, browser):
    base = live_app.url
    ctx = phone_context(browser, located=True)
    page = ctx.new_page()
    writes = []
    page.on("request", lambda r: writes.append((r.method, r.url, r.headers.get("idempotency-key"),
                                                "_once=" in (r.post_data or ""))) if r.method != "GET" else None)
    try:
        marketer = token(base, "marketing.wang")
        m = http(base, "POST", "/api/v1/materials", marketer, {"title": "双击巡检意向", "body_html": "<p>正文</p>",
                                                              "publish": True})
        page.goto(f"{base}/m/{m['code']}")
        page.wait_for_selector("#i-submit")
        page.fill("#i-name", "双击女士")
        page.fill("#i-phone", "13712349876")
        page.dblclick("#i-submit")
        page.wait_for_selector("#intent >> text=提交成功")
        admin = token(base, "admin")
        leads = [x for x in http(base, "GET", "/api/v1/leads?q=13712349876", admin)["items"]]
        assert len(leads) == 1, leads
        assert len(http(base, "GET", f"/api/v1/leads/{leads[0]['id']}", admin)["touches"]) == 1

        verify_on_phone(page, base, "oSweepCust01")

        staff_on_phone(page, base, "oSweepZhang1", "sales.zhang")
        page.wait_for_selector("#customers .cust")
        page.dblclick("#btn-in")
        page.wait_for_selector("#today .visit")
        page.wait_for_load_state("networkidle")
        assert page.locator("#today .visit").count() == 1
        today = http(base, "GET", "/api/v1/checkins?per_page=100", token(base, "sales.zhang"))["items"]
        assert len([c for c in today if c["kind"] == "in"]) == 1, today

        # the page-view beacon (/seen) is counted once per viewer and hour by the server, not a button
        ours = [w for w in writes if w[1].startswith(base) and "/sandbox/" not in w[1] and not w[1].endswith("/seen")]
        assert len(ours) >= 5, ours
        assert not [w for w in ours if not (w[2] or w[3])], ours
    finally:
        ctx.close()
