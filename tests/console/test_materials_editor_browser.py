"""营销素材 and 营销方案 edited in the console, in Chromium (#16 item 3): the rich-text editor (Quill, vendored), a
refused save that keeps every word typed, a cover picture, versions viewed and restored; a campaign's dates, budget
and segment changed, bad ones refused in Chinese."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def _png(path) -> None:
    img = Image.new("RGB", (640, 360), (22, 100, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path.write_bytes(buf.getvalue())


def test_a_marketer_writes_edits_and_restores_a_material_and_edits_a_campaign(live_app, page, tmp_path):
    base = live_app.url
    login(page, base, "marketing.wang")
    page.click("nav >> text=营销素材")
    editor = page.locator("#material-form .ql-editor")
    editor.click()
    page.keyboard.type("夏季净水节，")
    page.keyboard.press("Control+B")
    page.keyboard.type("以旧换新立减 500 元")
    page.keyboard.press("Control+B")
    page.keyboard.press("Enter")
    page.keyboard.type("活动时间：七月全月")
    # no title: the browser's own check is taken away, as on an old phone, so the server's refusal is what shows
    page.evaluate("document.querySelector('#material-form input[name=title]').removeAttribute('required')")
    page.click("#material-form button[type=submit]")
    assert "素材标题不能为空" in page.inner_text("[role=alert]")
    kept = page.locator("#material-form .ql-editor")
    assert "以旧换新立减 500 元" in kept.inner_text() and "活动时间：七月全月" in kept.inner_text()  # nothing typed is lost
    assert kept.locator("strong").inner_text() == "以旧换新立减 500 元"
    page.fill("#material-form input[name=title]", "夏季净水节")
    page.click("#material-form button[type=submit]")
    assert "素材已保存" in page.inner_text("[role=status]")
    assert page.locator("main .card strong", has_text="以旧换新立减 500 元").count() == 1
    material_url = page.url

    # v2: a new paragraph and a cover picture
    page.click("#edit-material")
    page.locator("#material-edit .ql-editor").click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type("到店还送滤芯一支")
    _png(tmp_path / "cover.png")
    page.set_input_files("#f-cover", str(tmp_path / "cover.png"))
    page.click("#material-edit button[type=submit]")
    assert "已保存为新版本" in page.inner_text("[role=status]")
    assert "v2" in page.inner_text("h1") and "到店还送滤芯一支" in page.inner_text("main")
    assert "&nbsp;" not in page.inner_html("main") and "立减 500 元" in page.inner_html("main")  # spaces stay spaces
    # saved untouched, the body goes back as it came: no new version
    page.click("#edit-material")
    page.click("#material-edit button[type=submit]")
    assert "v2" in page.inner_text("h1")
    page.click("#edit-material")
    assert page.locator("#cover-now").count() == 1  # the cover is kept
    page.goto(material_url)
    page.locator("#versions li", has_text="v1").locator("a").click()
    assert "到店还送滤芯一支" not in page.inner_text("#version-body")
    page.click("#restore")
    assert "已恢复 v1 的内容" in page.inner_text("[role=status]")
    assert "v3" in page.inner_text("h1") and "到店还送滤芯一支" not in page.inner_text("main")
    assert page.locator("#versions li").count() == 3

    # a campaign: bad budget, then dates the wrong way round, then right
    page.click("nav >> text=营销方案")
    page.fill("main form input[name=name]", "七月净水节")
    page.locator("main form button[type=submit]", has_text="创建").click()
    page.wait_for_selector("#edit-campaign")
    page.click("#edit-campaign")
    page.fill("#f-budget", "一千元")
    page.click("#campaign-form button[type=submit]")
    assert "预算" in page.inner_text("[role=alert]")
    page.fill("#f-budget", "8,000")
    page.fill("#f-start", "2027-07-31")
    page.fill("#f-end", "2027-07-01")
    page.click("#campaign-form button[type=submit]")
    assert "结束日期不能早于开始日期" in page.inner_text("[role=alert]")
    page.fill("#f-budget", "8,000")
    page.fill("#f-start", "2027-07-01")
    page.fill("#f-end", "2027-07-31")
    page.locator("#campaign-form input[name=material_ids]").first.check()
    page.click("#campaign-form button[type=submit]")
    assert "方案已保存" in page.inner_text("[role=status]")
    assert "¥8,000" in page.inner_text("#c-stats")
    page.click("#edit-campaign")
    assert page.input_value("#f-start") == "2027-07-01" and page.input_value("#f-end") == "2027-07-31"
