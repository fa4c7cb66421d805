"""A tour of the console (docs/console.md): every page of the admin's menu, a customer's 360 page, an opportunity and
a ticket, at a desktop's width, each answering without an error and with its title. The screenshots the tour takes
are the ones docs/console.md shows: ``WXCRM_DOCS_SHOTS=1`` writes them into docs/console/ (JPEG), otherwise into the
test's temporary folder."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/console").strip("/").lower()).strip("-") or "home"


def test_every_console_page_of_the_menu_answers_and_is_photographed(live_app, browser, tmp_path):
    out = DOCS if os.environ.get("WXCRM_DOCS_SHOTS") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = ctx.new_page()
        login(page, live_app.url, "admin")
        page.wait_for_selector("nav")
        menu = page.eval_on_selector_all("nav.side a", "as => as.map(a => [a.textContent.trim(), a.getAttribute('href')])")
        assert len(menu) >= 15, menu
        page.goto(live_app.url + "/console/customers")
        first = page.get_attribute("main table tbody a", "href")
        page.goto(live_app.url + "/console/opportunities")
        opp = page.get_attribute("main table tbody a[href*='/opportunities/']", "href")
        extra = [("客户360", first), ("商机详情", opp), ("搜索", "/console/search?q=杭州")]
        shots = []
        for title, href in menu + extra:
            resp = page.goto(live_app.url + href)
            assert resp is not None and resp.status == 200, (title, href, resp and resp.status)
            page.wait_for_selector("main h1")
            assert "出错了" not in page.title(), (title, href)
            name = _slug(href.split("?")[0]) + ".jpg"
            page.screenshot(path=str(out / name), type="jpeg", quality=70)
            shots.append((title, name))
        assert all((out / name).stat().st_size > 5000 for _, name in shots)
        documented = set(re.findall(r"console/([a-z0-9-]+\.jpg)", (DOCS.parent / "console.md").read_text(encoding="utf-8")))
        assert {n for _, n in shots} <= documented, sorted({n for _, n in shots} - documented)  # each page is in the doc
    finally:
        ctx.close()
