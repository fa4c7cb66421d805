"""The staff phone pages on a slow link (#18, "Speed"): first paint < 1 s under Slow-3G-like throttling on a phone
viewport; JavaScript + CSS per page < 150 KB compressed.

    .venv/bin/python bench/staff_pages.py [--repeat 7]

A real HTTP server (werkzeug, threaded) serves the demo with one dispatched work order of 郑强 (with a handling
record); headless Chromium (/usr/bin/chromium, Playwright) opens each page as 郑强's WeChat user in a 375×812 phone
viewport, with Chromium's network emulation (CDP ``Network.emulateNetworkConditions``):

- ``3G slow``: 400 ms round trip, 400 kbit/s down and up (WebPageTest's "3G Slow" profile);
- ``DevTools Slow 3G``: 2,000 ms, 400 kbit/s — Chrome DevTools' preset; one round trip alone is then over the
  1 s budget, so it is shown for reference only.

Each page is loaded cold (cache disabled) and warm (the second visit, as when going back from a work order to the
list). First paint is the browser's ``first-contentful-paint``. Bytes: what the browser transferred (compressed) for
the page's JavaScript and CSS — external files plus the inlined WeUI subset (its gzip size) — and the whole page.
The engineer 郑强 opens the engineer's pages and the customer pages (the customers he was sent to, the salesperson's
templates); the sales manager 孙立 opens 待我审批 (张伟's plan submitted), 今日计划, 我的团队今天 (张伟 checked in at the
tea company, an overdue task), the reports and 推广素材 (one published material); the dispatcher opens 在线客服 with a
follower waiting. The check-in page (``/h5/checkin``, built before the workbench, external scripts, no WeUI) is measured alongside.
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import tempfile
import threading

from _common import git_rev, machine, median

PROFILES = {"3G slow": (400, 400_000), "DevTools Slow 3G": (2000, 400_000)}


def build(tmp: str):
    from crm_core.db import db
    from crm_core.demo import load_demo
    from tests.conftest import _create_schema, _make_app

    app = _make_app(f"sqlite:///{tmp}/bench.db")
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        wo_id, customer_id = _work_order(app)
        db.session.remove()
    return app, wo_id, customer_id


def _work_order(app) -> int:
    from sqlalchemy import select

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.org.models import Employee, User
    from crm_core.org.permissions import load_actor
    from crm_core.service import tickets, work_orders
    from crm_core.wechat import followers
    from wxapp.config import wechat_appid

    dispatcher = load_actor(db.session.scalars(select(User).where(User.username == "service.dispatcher")).one())
    engineer_user = db.session.scalars(select(User).where(User.username == "service.engineer")).one()
    customer = db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()
    t = tickets.create_for_customer(dispatcher, {"customer_id": customer.id, "kind": "consultation", "description": "咨询滤芯更换周期"})
    eng = db.session.scalars(select(Employee).where(Employee.name == "郑强")).one()
    wo = work_orders.dispatch(dispatcher, t.id, [eng.id])
    with app.test_request_context():
        followers.bind_staff(wechat_appid(), "oBenchEngineer1", engineer_user)
        for openid, login in (("oBenchManager01", "sales.manager"), ("oBenchDispatch1", "service.dispatcher"),
                             ("oBenchSales0001", "sales.zhang")):
            followers.bind_staff(wechat_appid(), openid, db.session.scalars(select(User).where(User.username == login)).one())
    _manager_pages_content(app)
    work_orders.add_record(load_actor(engineer_user), wo.id, {"note": "电话沟通，约明天上门"})
    db.session.commit()
    return wo.id, customer.id


def _manager_pages_content(app) -> None:
    """Something on the manager's and the agent's pages: 张伟's visit with a check-in today, an overdue task, a plan
    submitted to 孙立, a published material, a follower waiting in 在线客服."""
    from datetime import timedelta

    from sqlalchemy import select

    from crm_core.activities import activities
    from crm_core.clock import utcnow
    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.org.models import User
    from crm_core.org.organization import manager_of
    from crm_core.org.permissions import load_actor
    from crm_core.wechat import conversations, followers
    from materials import services as mkt
    from wxapp.api.mobile import VisitIn, log_visit
    from wxapp.config import wechat_appid

    zhang = load_actor(db.session.scalars(select(User).where(User.username == "sales.zhang")).one())
    tea = db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()
    with app.test_request_context():
        log_visit(zhang, VisitIn(customer_id=tea.id, kind="visit", result="现场看了车间",
                                 checkin={"lat": 30.2271, "lng": 120.1231, "accuracy_m": 15, "coord_system": "wgs84"}))
    now = utcnow()
    activities.create_activity(zhang, {"subject": "整理茶厂需求", "kind": "task", "planned_start": now - timedelta(days=2),
                                       "planned_end": now - timedelta(days=1)})
    day = (now + timedelta(hours=8)).date()
    plan = activities.create_plan(zhang, {"period": "daily", "start_date": day, "end_date": day, "title": "今日计划",
                                          "content": "拜访茶厂", "reviewer_id": manager_of(zhang.employee_id)})
    activities.submit_plan(zhang, plan.id, "茶厂样品已送")
    marketer = load_actor(db.session.scalars(select(User).where(User.username == "marketing.wang")).one())
    mkt.create_material(marketer, {"title": "新风系统 HV500 体验会", "summary": "免费体验", "body_html": "<p>正文</p>",
                                   "publish": True})
    followers.get_or_create(wechat_appid(), "oBenchFollower1")
    conversations.touch_many([(wechat_appid(), "oBenchFollower1", now)])
    conversations.ask_for_agent(wechat_appid(), "oBenchFollower1", tea.org_id)
    db.session.commit()


def _ids(app) -> dict:
    from sqlalchemy import select

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.sales.models import Opportunity
    from crm_core.wechat.models import Conversation
    from materials.models import Material

    with app.app_context():
        tea = db.session.scalar(select(Customer.id).where(Customer.name == "杭州西湖茶业有限公司"))
        return {"material": db.session.scalar(select(Material.id)), "conversation": db.session.scalar(select(Conversation.id)),
                "opportunity": db.session.scalar(select(Opportunity.id).where(Opportunity.customer_id == tea)), "customer": tea}


def _until_painted(page, path: str, timeout: float = 30.0) -> None:
    """Wait for the first contentful paint, asked from outside (the pages' CSP forbids wait_for_function's eval)."""
    import time

    end = time.monotonic() + timeout
    while not page.evaluate("performance.getEntriesByName('first-contentful-paint').length > 0"):
        if time.monotonic() > end:
            raise SystemExit(f"{path}: no first paint after {timeout:.0f} s")
        time.sleep(0.05)


def measure(base: str, groups: list[tuple[str, list[str]]], repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
        for openid, paths in groups:
          ctx = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
          page = ctx.new_page()
          page.goto(f"{base}/h5/dev-login?openid={openid}&next=/h5/staff/")  # the WeChat session, unthrottled
          cdp = ctx.new_cdp_session(page)
          cdp.send("Network.enable")
          for profile, (latency, bits) in PROFILES.items():
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency,
                                                          "downloadThroughput": bits / 8, "uploadThroughput": bits / 8})
            for path in paths:
                for mode in ("cold", "warm"):
                    fcp, bytes_js_css, bytes_all = [], [], []
                    for _ in range(repeat):
                        cdp.send("Network.setCacheDisabled", {"cacheDisabled": mode == "cold"})
                        if mode == "warm":
                            page.goto(base + path, wait_until="load")  # the first visit fills the cache
                        resp = page.goto(base + path, wait_until="load")
                        if resp is None or resp.status != 200:
                            raise SystemExit(f"{path} answered {resp.status if resp else 'nothing'}")
                        _until_painted(page, path)
                        m = page.evaluate("""() => {
                          const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                          const nav = performance.getEntriesByType('navigation')[0];
                          const res = performance.getEntriesByType('resource');
                          const jsCss = res.filter(r => /\\.(js|css)(\\?|$)/.test(r.name)).reduce((s, r) => s + r.transferSize, 0);
                          const styles = Array.from(document.querySelectorAll('style')).map(s => s.textContent).join('');
                          const scripts = Array.from(document.querySelectorAll('script:not([src])')).map(s => s.textContent).join('');
                          return {fcp: fcp ? fcp.startTime : null, jsCss: jsCss, all: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
                                  inline: styles + scripts};
                        }""")
                        fcp.append(m["fcp"])
                        inline = len(gzip.compress(m["inline"].encode("utf-8")))  # inlined CSS and JS, as sent (gzip)
                        bytes_js_css.append(m["jsCss"] + inline)
                        bytes_all.append(m["all"])
                    out[(profile, path, mode)] = (median(fcp), median(bytes_js_css), median(bytes_all))
          ctx.close()
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", help="measure only the pages whose path contains this")
    args = ap.parse_args()
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("WXCRM_LOG_LEVEL", "WARNING")
        app, wo_id, customer_id = build(tmp)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        ids = _ids(app)
        groups = [("oBenchEngineer1", ["/h5/staff/", "/h5/staff/work-orders", f"/h5/staff/work-orders/{wo_id}",
                                       "/h5/staff/customers", f"/h5/staff/customers/{customer_id}", "/h5/checkin"]),
                  ("oBenchManager01", ["/h5/staff/approvals", "/h5/staff/today", "/h5/staff/team", "/h5/staff/reports",
                                       "/h5/staff/materials", f"/h5/staff/materials/{ids['material']}"]),
                  ("oBenchDispatch1", ["/h5/staff/conversations", f"/h5/staff/conversations/{ids['conversation']}"]),
                  # the salesperson 张伟: 客户备案, his customer with its opportunities, an opportunity, his calendar
                  ("oBenchSales0001", ["/h5/staff/customers/new", f"/h5/staff/customers/{ids['customer']}",
                                       f"/h5/staff/opportunities/{ids['opportunity']}", "/h5/staff/calendar"])]
        if args.only:
            groups = [(o, [p for p in ps if args.only in p]) for o, ps in groups]
        results = measure(base, groups, args.repeat)
        server.shutdown()
    print(f"machine: {machine()}; rev {git_rev()}; median of {args.repeat}")
    print(f"{'profile':<18} {'page':<28} {'load':<5} {'first paint':>12} {'JS+CSS':>9} {'whole page':>11}")
    for (profile, path, mode), (fcp, js_css, whole) in results.items():
        page = re.sub(r"/\d+$", "/{id}", path)
        print(f"{profile:<18} {page:<28} {mode:<5} {fcp:>9.0f} ms {js_css / 1024:>6.1f} KB {whole / 1024:>8.1f} KB")


if __name__ == "__main__":
    main()
