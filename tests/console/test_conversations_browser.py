"""在线客服, both sides in Chromium (#17, first part): the customer writes from the phone simulator,
the agent sees it arrive without reloading, answers, and the phone shows the answer."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import verify_on_phone
from tests.wechat.test_phone_simulator_browser import live_wx, simulator  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_customer_writes_agent_sees_it_live_and_answers(live_wx, browser):  # noqa: F811
    base = live_wx.url
    phone_ctx, phone = simulator(browser, base, "oChatCust01")
    desk_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = desk_ctx.new_page()
    try:
        phone.click("#follow")
        phone.wait_for_selector(".passive")
        phone.fill("#text", "你好，净水器漏水了")
        phone.click("#send")
        phone.wait_for_function("() => document.querySelectorAll('.passive').length >= 2")

        login(desk, base, "service.dispatcher")
        desk.click("nav >> text=在线客服")
        row = desk.locator("#conversations tr", has_text="微信用户st01")
        assert "1" in row.locator("td").nth(1).inner_text()  # one unread message
        assert "可回复 5 条" in row.inner_text()  # the message allows 5 within 48 h (the follow's 3 count within them)
        row.locator("a").click()
        desk.wait_for_selector("#thread")
        thread = desk.inner_text("#thread")
        assert "关注了公众号" in thread and "你好，净水器漏水了" in thread

        # a new message arrives while the conversation is open: it shows without a reload
        phone.fill("#text", "型号是 WP100")
        phone.click("#send")
        desk.wait_for_function("() => document.getElementById('thread').innerText.includes('型号是 WP100')", timeout=6000)

        desk.fill("#reply-form textarea[name=text]", "您好，我们马上安排工程师上门")
        desk.click("#reply-form button[type=submit]")
        desk.wait_for_selector("text=已发送")
        desk.wait_for_function("() => document.getElementById('thread').innerText.includes('马上安排工程师')")
        # the phone receives it as a customer-service message
        phone.wait_for_selector(".custom:has-text('马上安排工程师')", timeout=8000)

        # 转为工单: asked to verify first; once the customer has, the conversation becomes a ticket
        assert "验证后才能转为工单" in desk.inner_text("#follower-card")
        verify_on_phone(phone, base, "oChatCust01")
        desk.reload()
        assert "陈建国" in desk.inner_text("#follower-card")
        assert "净水器漏水" in desk.input_value("#ticket-form textarea[name=description]")  # starts from what they wrote
        desk.select_option("#ticket-form select[name=kind]", "consultation")
        desk.click("#ticket-form button[type=submit]")
        desk.wait_for_selector("text=已转为工单")
        assert "在线客服" in desk.inner_text("main")  # the timeline says where it came from
    finally:
        phone_ctx.close()
        desk_ctx.close()


def _said_and_opened(browser, base: str, openid: str, text: str):
    """The follower writes ``text`` from the phone simulator; the dispatcher opens the conversation in the console:
    (phone context, phone, desk context, desk)."""
    phone_ctx, phone = simulator(browser, base, openid)
    desk_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = desk_ctx.new_page()
    phone.fill("#text", text)
    phone.click("#send")
    phone.wait_for_selector(".passive")
    login(desk, base, "service.dispatcher")
    desk.goto(base + "/console/conversations")
    desk.locator("#conversations tr", has_text=f"微信用户{openid[-4:]}").locator("a").click()
    return phone_ctx, phone, desk_ctx, desk


def test_the_agent_answers_with_a_canned_reply_filled_for_this_customer(live_wx, browser):  # noqa: F811
    base = live_wx.url
    phone_ctx, phone, desk_ctx, desk = _said_and_opened(browser, base, "oCanned0001", "在吗")
    try:
        desk.wait_for_selector("#canned")
        desk.select_option("#canned", label="问候")
        text = desk.input_value("#reply-form textarea[name=text]")
        assert text.startswith("您好") and "我是客服吴静" in text and "{" not in text  # filled for this conversation
        desk.click("#reply-form button[type=submit]")
        desk.wait_for_selector("text=已发送")
        phone.wait_for_selector(".custom:has-text('我是客服吴静')", timeout=8000)
    finally:
        phone_ctx.close()
        desk_ctx.close()


def test_every_kind_a_follower_sends_shows_as_itself_in_the_console(live_wx, browser):  # noqa: F811
    """A picture (shown, cleaned, with its thumbnail), voice (WeChat's recognition text and the file to download),
    video (a player), a shared location (the place, its coordinates and a map link) and a link (its title, opened
    safely; a javascript: link is not a link and markup in a title stays text) — first load and live alike. The
    product keeps its own copy of the media: after WeChat's three days the picture still shows."""
    from datetime import timedelta

    from sqlalchemy import select

    from crm_core.clock import travel
    from crm_core.db import db
    from crm_core.media import MediaFile
    from tests.wechat_helpers import message_xml, post, settle
    from wxapp.official_account import chat_media
    from wxapp.official_account.sandbox import give_media

    app, base = live_wx.app, live_wx.url
    client = app.test_client()
    with app.app_context():
        photo, voice, video = give_media(), give_media(), give_media()
        db.session.commit()
        for xml in (message_xml("follow", "oChatMedia01"), message_xml("image", "oChatMedia01", media_id=photo),
                    message_xml("voice", "oChatMedia01", media_id=voice, recognition="滤芯多少钱"),
                    message_xml("video", "oChatMedia01", media_id=video),
                    message_xml("location", "oChatMedia01", lat=30.2270, lng=120.1230, label="杭州市西湖区龙井路18号"),
                    message_xml("link", "oChatMedia01", title="<img src=x onerror=alert(1)>净水器说明书",
                                description="型号 WP100", url="https://example.cn/manual"),
                    message_xml("link", "oChatMedia01", title="看这里", url="javascript:alert(1)")):
            post(client, xml, aes=True)
        settle()
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = ctx.new_page()
    try:
        login(desk, base, "service.dispatcher")
        desk.click("nav >> text=在线客服")
        desk.locator("#conversations tr", has_text="微信用户ia01").locator("a").click()
        desk.wait_for_selector("#thread .chat-img")
        desk_url = desk.url
        _until_images_load(desk)
        thread = desk.inner_text("#thread")
        assert "[语音] 滤芯多少钱" in thread and "下载语音" in thread
        assert desk.locator("#thread video.chat-video").count() == 1
        assert "杭州市西湖区龙井路18号" in thread and "30.22700, 120.12300" in thread
        assert "apis.map.qq.com/uri/v1/marker?marker=coord:30.227,120.123" in \
            desk.locator("#thread .chat-location a").get_attribute("href")
        link = desk.locator("#thread .chat-link a")
        assert link.count() == 1 and link.get_attribute("href") == "https://example.cn/manual"
        assert "<img src=x onerror=alert(1)>净水器说明书" in link.inner_text()  # the title as text
        assert "rel" in (link.evaluate("a => a.getAttributeNames().join(' ')")) and "noopener" in link.get_attribute("rel")
        assert desk.locator("#thread .chat-link", has_text="看这里").locator("a").count() == 0
        # the thread the page polls renders them the same way
        desk.wait_for_timeout(2500)
        assert desk.locator("#thread .chat-img").count() == 1 and desk.locator("#thread .chat-link a").count() == 1
        voice_href = desk.locator("#thread a.chat-voice").get_attribute("href")
        with desk.expect_download() as dl:
            desk.click("#thread a.chat-voice")
        assert dl.value.suggested_filename.startswith("voice-")
        assert voice_href.endswith("/media")
    finally:
        ctx.close()
    with app.app_context():
        # the picture (its thumbnail shown) and the voice (downloaded) were copied when the agent opened them; the
        # periodic job copies what nobody has opened yet (the video, preload="none"), once
        assert chat_media.prefetch_chat_media() == 1
        assert chat_media.prefetch_chat_media() == 0
        copies = db.session.scalars(select(MediaFile).where(MediaFile.uploaded_by_openid == "oChatMedia01")).all()
        assert sorted(m.purpose for m in copies) == ["chat", "chat_video", "chat_voice"]
        assert all(m.status == "ready" for m in copies)
        db.session.remove()
    with travel(timedelta(days=4)):  # WeChat has forgotten the picture; the product's copy still shows
        later = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        try:
            p = later.new_page()
            login(p, base, "service.dispatcher")
            p.goto(desk_url)
            p.wait_for_selector("#thread .chat-img")
            _until_images_load(p)
        finally:
            later.close()


def _until_images_load(page) -> None:
    import time

    end = time.monotonic() + 10
    while not page.evaluate("Array.from(document.querySelectorAll('#thread img.chat-img')).every(i => i.complete && i.naturalWidth > 0)"):
        assert time.monotonic() < end, "the picture did not load"
        time.sleep(0.1)


def test_the_agent_answers_with_a_picture_and_a_material_card_and_outside_the_window_the_picture_is_refused(
        live_wx, browser, tmp_path):  # noqa: F811
    """发送图片: uploaded, cleaned, sent to WeChat as temporary media and then as a customer-service image — the phone
    shows it. 发送图文: a published material as one news card whose link carries the agent's share token — the phone
    shows the card and it opens the material. Three days later (no interaction since) the picture is refused in words."""
    from datetime import timedelta

    from PIL import Image

    from crm_core.clock import travel
    from tests.service.test_self_service_browser import http, token

    base = live_wx.url
    marketer = token(base, "marketing.wang")
    http(base, "POST", "/api/v1/materials", marketer, {"title": "净水器以旧换新", "summary": "旧机抵 300 元",
                                                                   "body_html": "<p>活动详情</p>", "publish": True})
    photo = tmp_path / "reply.png"
    Image.new("RGB", (120, 80), (30, 120, 200)).save(photo)
    phone_ctx, phone, desk_ctx, desk = _said_and_opened(browser, base, "oPicReply01", "有没有优惠活动")
    try:
        desk.wait_for_selector("#reply-image")
        conv_url = desk.url
        desk.set_input_files("#reply-image input[name=image]", str(photo))
        desk.click("#reply-image button[type=submit]")
        desk.wait_for_selector("text=图片已发送")
        phone.wait_for_selector(".custom.image img", timeout=8000)
        assert phone.evaluate("document.querySelector('.custom.image img').naturalWidth") == 120
        desk.wait_for_selector("#thread .msg.out img.chat-img")
        desk.select_option("#reply-material select[name=material_id]", label="净水器以旧换新")
        desk.click("#reply-material button[type=submit]")
        desk.wait_for_selector("text=图文已发送")
        card = phone.wait_for_selector(".custom.news a.news-title:has-text('净水器以旧换新')", timeout=8000)
        assert "?s=" in card.get_attribute("href") and "旧机抵 300 元" in phone.inner_text(".custom.news")
        assert "净水器以旧换新" in desk.inner_text("#thread")
        sent = [m for m in http(base, "GET", "/sandbox/outbox?openid=oPicReply01")["items"] if m["api"] == "custom_send"]
        assert {m["payload"]["msgtype"] for m in sent} >= {"image", "news"}
        assert len(next(m for m in sent if m["payload"]["msgtype"] == "news")["payload"]["news"]["articles"]) == 1
    finally:
        phone_ctx.close()
    with travel(timedelta(days=3)):
        late = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        try:
            page = late.new_page()
            login(page, base, "service.dispatcher")
            page.goto(conv_url)
            assert "图片无法送达" in page.inner_text("#reply-more")
            page.set_input_files("#reply-image input[name=image]", str(photo))
            page.click("#reply-image button[type=submit]")
            page.wait_for_selector("[role=alert]")
            assert "图片无法送达" in page.inner_text("[role=alert]")
        finally:
            late.close()
            desk_ctx.close()
