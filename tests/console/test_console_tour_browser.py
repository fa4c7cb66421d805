"""A tour of the console (docs/console.md): every page of the admin's menu, then from each list the first record's
own page (客户360, 商机, 报价单, 合同, 工单, 素材, 方案, 角色…), and from those their edit pages (编辑, 合并), at a
desktop's width, each answering without an error and with its title. The screenshots the tour takes are the ones
docs/console.md shows: ``WXCRM_DOCS_SHOTS=1`` writes them into docs/console/ (JPEG), otherwise into the test's
temporary folder. A record's id becomes ``id`` in the file name (customers-id-edit.jpg), so the names stay put."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


def _slug(path: str) -> str:
    path = re.sub(r"/\d+(?=/|$)", "/id", path.removeprefix("/console"))
    return re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()).strip("-") or "home"


RECORD = re.compile(r"^/console/[a-z/-]+/\d+$")  # a record's own page (not a download, a feed or a picture)
EDITS = re.compile(r"^/console/[a-z/-]+/\d+/(edit|merge)$")


def _links(page, pattern: re.Pattern, scope: str = "main") -> list[str]:
    hrefs = page.eval_on_selector_all(scope + " a[href]", "as => as.map(a => a.getAttribute('href'))")
    return [h.split("?")[0] for h in hrefs if pattern.match(h.split("?")[0])]


def test_every_console_page_of_the_menu_answers_and_is_photographed(live_demo, browser, tmp_path):
    live_app = live_demo
    out = DOCS if os.environ.get("WXCRM_DOCS_SHOTS") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = ctx.new_page()
        login(page, live_app.url, "admin")
        page.wait_for_selector("nav")
        menu = page.eval_on_selector_all("nav.side a", "as => as.map(a => [a.textContent.trim(), a.getAttribute('href')])")
        assert len(menu) >= 15, menu
        shots, seen = [], set()

        def visit(title, href):
            name = _slug(href.split("?")[0]) + ".jpg"
            if name in seen:
                return False
            seen.add(name)
            resp = page.goto(live_app.url + href)
            assert resp is not None and resp.status == 200, (title, href, resp and resp.status)
            page.wait_for_selector("main h1")
            assert "出错了" not in page.title(), (title, href)
            page.screenshot(path=str(out / name), type="jpeg", quality=70)
            shots.append((title, name))
            return True

        records = []
        for title, href in menu + [("搜索", "/console/search?q=杭州")]:
            visit(title, href)
            records += [(title, h) for h in _links(page, RECORD, "main table tbody")[:1]]
        from crm_core.activities.models import WorkPlan
        from crm_core.db import db

        with live_app.app.app_context():  # the demo's weekly plan: 张伟's, in nobody's list but his and his reviewer's
            plan = db.session.scalars(db.select(WorkPlan.id)).first()
            db.session.remove()
        records.append(("工作计划", f"/console/plans/{plan}"))
        edits, linked = [], []
        for title, href in records:
            if visit(title + "详情", href):
                edits += [(title, h) for h in _links(page, EDITS)]
                linked += [(title, h) for h in _links(page, RECORD)]  # what a record's page leads to: a ticket's work order…
        for title, href in edits:
            visit(title + "编辑", href)
        for title, href in linked:
            visit(title + "关联", href)
        kinds = {name.split("-id")[0] for _, name in shots if "-id" in name}
        assert {"customers", "opportunities", "quotes", "contracts", "service-tickets", "marketing-materials",
                "org-roles", "leads", "activities", "marketing-campaigns", "orders", "plans", "service-work-orders",
                "competitors"} <= kinds, kinds
        assert any(name.endswith("-edit.jpg") for _, name in shots) and "customers-id-merge.jpg" in seen
        assert all((out / name).stat().st_size > 5000 for _, name in shots)
        documented = set(re.findall(r"console/([a-z0-9-]+\.jpg)", (DOCS.parent / "console.md").read_text(encoding="utf-8")))
        assert {n for _, n in shots} <= documented, sorted({n for _, n in shots} - documented)  # each page is in the doc
    finally:
        ctx.close()
