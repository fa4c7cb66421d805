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
The engineer 郑强 sees the salesperson's pages too (customers he was sent to; approvals, empty) — the same templates
a salesperson gets. The check-in page (``/h5/checkin``, built before the workbench, external scripts, no WeUI) is measured alongside.
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
    work_orders.add_record(load_actor(engineer_user), wo.id, {"note": "电话沟通，约明天上门"})
    db.session.commit()
    return wo.id, customer.id


def measure(base: str, paths: list[str], repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
        ctx = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
        page = ctx.new_page()
        page.goto(f"{base}/h5/dev-login?openid=oBenchEngineer1&next=/h5/staff/")  # the WeChat session, unthrottled
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
                        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
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
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
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
        paths = ["/h5/staff/", "/h5/staff/work-orders", f"/h5/staff/work-orders/{wo_id}", "/h5/staff/customers",
                 f"/h5/staff/customers/{customer_id}", "/h5/staff/approvals", "/h5/checkin"]
        results = measure(base, paths, args.repeat)
        server.shutdown()
    print(f"machine: {machine()}; rev {git_rev()}; median of {args.repeat}")
    print(f"{'profile':<18} {'page':<28} {'load':<5} {'first paint':>12} {'JS+CSS':>9} {'whole page':>11}")
    for (profile, path, mode), (fcp, js_css, whole) in results.items():
        page = re.sub(r"/\d+$", "/{id}", path)
        print(f"{profile:<18} {page:<28} {mode:<5} {fcp:>9.0f} ms {js_css / 1024:>6.1f} KB {whole / 1024:>8.1f} KB")


if __name__ == "__main__":
    main()
