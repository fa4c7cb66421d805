"""The callback endpoint: signatures, safe mode, dedup under retries, time budget, hostile XML."""
from __future__ import annotations

import threading
import time

import pytest

from crm_core.db import db
from crm_core.models import Follower, InboundMessage, OutboxMessage
from tests.conftest import _make_app
from tests.wechat_helpers import AES_KEY, APPID, TOKEN, message_xml, post, reply_text
from wxapp.official_account import router


@pytest.fixture
def wx(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/wx.db", WECHAT_AES_KEY=AES_KEY)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()


@pytest.fixture
def client(wx):
    return wx.test_client()


def stored(**filters):
    db.session.expire_all()
    stmt = db.select(InboundMessage)
    for k, v in filters.items():
        stmt = stmt.where(getattr(InboundMessage, k) == v)
    return db.session.scalars(stmt).all()


def test_server_verification(client):
    from wechatpy.utils import WeChatSigner

    s = WeChatSigner()
    s.add_data(TOKEN, "1700000000", "nonce1")
    ok = client.get(f"/wechat/callback?signature={s.signature}&timestamp=1700000000&nonce=nonce1&echostr=hello123")
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "hello123"
    bad = client.get("/wechat/callback?signature=0000&timestamp=1700000000&nonce=nonce1&echostr=hello123")
    assert bad.status_code == 403


def test_plaintext_text_gets_the_default_reply_and_is_stored(client):
    resp = post(client, message_xml("text", "oUser0001", content="你好"))
    assert resp.status_code == 200
    assert "已收到您的消息" in reply_text(resp)
    rows = stored(openid="oUser0001")
    assert len(rows) == 1 and rows[0].msg_type == "text" and rows[0].summary["content"] == "你好"
    assert rows[0].outcome == "replied" and rows[0].handler == "default"


def test_safe_mode_follow_with_scene_gets_an_encrypted_welcome(client):
    resp = post(client, message_xml("follow", "oUser0002", scene="unclaimed_1"), aes=True)
    body = resp.get_data(as_text=True)
    assert "<Encrypt>" in body and "<MsgSignature>" in body
    assert "欢迎关注" in reply_text(resp, aes=True)
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oUser0002")).one()
    assert f.subscribed and f.scene == "unclaimed_1" and f.subscribe_count == 1


def test_compatible_mode_plaintext_and_encrypt_side_by_side(client):
    from wechatpy.crypto import WeChatCrypto
    import re

    xml = message_xml("text", "oUser0003", content="兼容模式")
    from tests.wechat_helpers import post as _post  # noqa: F401
    from wxapp.official_account.simulate import signed_request

    query, body = signed_request(xml, TOKEN, aes_key=AES_KEY, appid=APPID)
    enc = re.search(rb"<Encrypt><!\[CDATA\[(.*?)\]\]>", body).group(1).decode()
    compat = xml.replace("</xml>", f"<Encrypt><![CDATA[{enc}]]></Encrypt></xml>")
    resp = client.post(f"/wechat/callback?{query}", data=compat.encode(), content_type="text/xml")
    assert resp.status_code == 200 and "已收到" in reply_text(resp, aes=True)
    assert WeChatCrypto  # the envelope was made by wechatpy's WeChatCrypto


@pytest.mark.parametrize("case", ["signature", "msg_signature", "appid", "stale"])
def test_rejections_process_nothing(client, case):
    xml = message_xml("text", "oUser0004", content="不应处理")
    if case == "signature":
        resp = post(client, xml, aes=True, tamper={"signature": "f" * 40})
    elif case == "msg_signature":
        resp = post(client, xml, aes=True, tamper={"msg_signature": "f" * 40})
    elif case == "appid":
        resp = post(client, xml, aes=True, appid="wxSOMEONEELSE0001")
    else:
        resp = post(client, xml, timestamp=int(time.time()) - 3600)
    assert 400 <= resp.status_code < 500
    assert stored(openid="oUser0004") == []


def test_timestamp_check_can_be_turned_off(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", WECHAT_TIMESTAMP_TOLERANCE=0)
    with app.app_context():
        db.create_all()
        resp = post(app.test_client(), message_xml("text", "oUser0005", content="x"), timestamp=1_000_000_000)
        assert resp.status_code == 200
        db.session.remove()


def test_three_deliveries_one_side_effect_same_reply(client):
    calls = []

    def counting(ib):
        calls.append(ib.content)
        return f"处理了：{ib.content}"

    router.add(counting, name="test_counting", msg_type="text", text_pattern="^计数")
    try:
        xml = message_xml("text", "oUser0006", content="计数一次", msg_id=424242)
        replies = [reply_text(post(client, xml)) for _ in range(3)]
    finally:
        router.rules = [r for r in router.rules if r.name != "test_counting"]
    assert calls == ["计数一次"]
    assert replies == ["处理了：计数一次"] * 3
    assert len(stored(openid="oUser0006")) == 1


def test_events_dedup_on_openid_createtime_event(client):
    xml = message_xml("follow", "oUser0007", create_time=1795000000)
    for _ in range(3):
        post(client, xml, timestamp=int(time.time()))
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oUser0007")).one()
    assert f.subscribe_count == 1 and len(stored(openid="oUser0007")) == 1
    post(client, message_xml("unfollow", "oUser0007", create_time=1795000100))
    post(client, message_xml("follow", "oUser0007", create_time=1795000200))
    db.session.expire_all()
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oUser0007")).one()
    assert f.subscribed and f.subscribe_count == 2 and f.unsubscribed_at is None


def test_slow_handler_falls_back_to_success_and_replies_later(wx, client):
    wx.config["WECHAT_HANDLER_BUDGET"] = 0.3

    def slow(ib):
        time.sleep(1.0)
        return "慢处理的结果"

    router.add(slow, name="test_slow", msg_type="text", text_pattern="^慢")
    try:
        t0 = time.perf_counter()
        resp = post(client, message_xml("text", "oUser0008", content="慢一点"))
        elapsed = time.perf_counter() - t0
        assert resp.get_data(as_text=True) == "success" and elapsed < 0.9
        deadline = time.time() + 5
        while time.time() < deadline:
            db.session.expire_all()
            msgs = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.recipient == "oUser0008")).all()
            if msgs:
                break
            time.sleep(0.1)
    finally:
        router.rules = [r for r in router.rules if r.name != "test_slow"]
    assert msgs and msgs[0].channel == "wechat_custom" and msgs[0].payload["text"] == "慢处理的结果"
    assert stored(openid="oUser0008")[0].outcome == "deferred"


def test_reply_containing_cdata_end_is_well_formed(client):
    import xml.etree.ElementTree as ET

    router.add(lambda ib: "危险]]>内容<tag>&", name="test_cdata", msg_type="text", text_pattern="^cdata")
    try:
        resp = post(client, message_xml("text", "oUser0009", content="cdata"))
    finally:
        router.rules = [r for r in router.rules if r.name != "test_cdata"]
    root = ET.fromstring(resp.get_data())
    assert root.find("Content").text == "危险]]>内容<tag>&"


@pytest.mark.parametrize("body,label", [
    (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName>'
     b'<FromUserName>oEvil001</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content>'
     b'<MsgId>1</MsgId></xml>', "xxe"),
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
     b'<xml><FromUserName>oEvil002</FromUserName><MsgType>text</MsgType><Content>&lol2;</Content></xml>', "billion laughs"),
    (b"<xml><FromUserName>oEvil003</FromUserName><MsgType>text</MsgType><Content>broken", "malformed"),
    (b"<xml><FromUserName>oEvil004</FromUserName><Content>no msgtype</Content></xml>", "no MsgType"),
])
def test_hostile_or_odd_xml_is_answered_success_and_not_processed(client, body, label):
    resp = post(client, "<xml/>", raw_body=body)
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "success", label
    assert db.session.scalar(db.select(db.func.count(InboundMessage.id))) == 0


def test_control_characters_are_removed_before_parsing(client):
    resp = post(client, message_xml("text", "oUser0010", content="报\x1d修\x08了"))
    assert resp.status_code == 200
    assert stored(openid="oUser0010")[0].summary["content"] == "报修了"


def test_one_megabyte_body_is_413(client):
    resp = post(client, "<xml/>", raw_body=b"<xml>" + b"a" * (1024 * 1024) + b"</xml>")
    assert resp.status_code == 413


def test_unknown_events_are_logged_and_answered_success(client):
    resp = post(client, message_xml("raw_event", "oUser0011", event="subscribe_msg_popup_event",
                                    extra="<SubscribeMsgPopupEvent><List><TemplateId>t</TemplateId></List></SubscribeMsgPopupEvent>"))
    assert resp.get_data(as_text=True) == "success"
    row = stored(openid="oUser0011")[0]
    assert row.outcome == "no_reply" and row.msg_type in ("event", "unknown")


def test_location_event_is_the_followers_last_location(client):
    post(client, message_xml("location_event", "oUser0012", lat=30.2741, lng=120.1551, precision=25))
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oUser0012")).one()
    assert (f.last_lat, f.last_lng, f.last_precision) == (30.2741, 120.1551, 25.0) and f.last_location_at


def test_scene_prefix_owner_gets_subscribe_and_scan(client):
    seen = []

    def owner(ib):
        seen.append((ib.event, ib.scene, ib.first_follow))
        return f"来自场景 {ib.scene}"

    router.claim_scene_prefix("testshare_", owner, owner="tests")
    try:
        r1 = post(client, message_xml("follow", "oUser0013", scene="testshare_abc"))
        r2 = post(client, message_xml("scan", "oUser0013", scene="testshare_def"))
        with pytest.raises(ValueError):
            router.claim_scene_prefix("testshare_x", owner, owner="someone else")
    finally:
        router.scene_prefixes.pop("testshare_", None)
        router.rules = [r for r in router.rules if not r.name.startswith("scene:testshare_")]
    assert seen == [("subscribe", "testshare_abc", True), ("scan", "testshare_def", False)]
    assert reply_text(r1) == "来自场景 testshare_abc" and reply_text(r2) == "来自场景 testshare_def"


def test_concurrent_retries_process_once(wx):
    """WeChat's retry can arrive while the first delivery is still being handled."""
    calls = []

    def slowish(ib):
        calls.append(1)
        time.sleep(0.3)
        return "只处理一次"

    router.add(slowish, name="test_slowish", msg_type="text", text_pattern="^并发")
    xml = message_xml("text", "oUser0014", content="并发", msg_id=777777)
    replies = []

    def deliver():
        with wx.app_context():
            replies.append(reply_text(post(wx.test_client(), xml)))
            db.session.remove()

    try:
        threads = [threading.Thread(target=deliver) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        router.rules = [r for r in router.rules if r.name != "test_slowish"]
    assert calls == [1]
    assert sorted(replies) == ["只处理一次"] * 3


def test_messages_api_lists_processed_deliveries(wx, client):
    from tests.factories import make_team
    from tests.conftest import token_for
    from tests.factories import PASSWORD

    users = make_team()
    db.session.commit()
    post(client, message_xml("text", "oUser0015", content="查询"))
    h = token_for(client, users["admin"].username, PASSWORD)
    body = client.get("/api/v1/wechat/messages?openid=oUser0015", headers=h).get_json()
    assert body["total"] == 1 and body["items"][0]["summary"]["content"] == "查询"
    follower = client.get("/api/v1/wechat/followers/oUser0015", headers=h).get_json()
    assert follower["openid"] == "oUser0015" and follower["in_service_window"] is True
    assert client.get("/api/v1/wechat/followers/oNobody", headers=h).status_code == 404


# --- the fast path: messages no feature handles ---------------------------------------------
def test_unhandled_text_three_deliveries_store_one_row_and_touch_the_follower(client):
    xml = message_xml("text", "oFast00001", content="随便问问", msg_id=51_000_001)
    replies = [reply_text(post(client, xml)) for _ in range(3)]
    assert replies == [router.default_text] * 3
    rows = stored(openid="oFast00001")
    assert len(rows) == 1 and rows[0].outcome == "replied" and rows[0].handler == "default"
    assert rows[0].reply == router.default_text and rows[0].summary["content"] == "随便问问"
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oFast00001")).one()
    assert f.last_interaction_at is not None and not f.subscribed


def test_concurrent_deliveries_of_an_unhandled_message_store_one_row(wx):
    xml = message_xml("text", "oFast00002", content="并发的普通消息", msg_id=51_000_002)
    replies = []

    def deliver():
        with wx.app_context():
            replies.append(reply_text(post(wx.test_client(), xml)))
            db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [router.default_text] * 4
    assert len(stored(openid="oFast00002")) == 1


@pytest.fixture
def wx_redis(pg_url, redis_url):
    """Scale-out shape: PostgreSQL and Redis."""
    app = _make_app(pg_url, REDIS_URL=redis_url, WECHAT_AES_KEY=AES_KEY)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_redis_fast_path_is_exactly_once_through_the_batch_writer(wx_redis):
    from wxapp.official_account import fastpath

    client = wx_redis.test_client()
    conn = wx_redis.extensions["wxcrm_redis"]
    xml = message_xml("text", "oFastRedis1", content="你好", msg_id=52_000_001)
    replies = [reply_text(post(client, xml, aes=True), aes=True) for _ in range(3)]
    assert replies == [router.default_text] * 3
    post(client, message_xml("location_event", "oFastRedis1", lat=30.25, lng=120.16, precision=20))
    post(client, message_xml("text", "oFastRedis2", content="第二个用户", msg_id=52_000_002))
    assert conn.llen(fastpath.QUEUE_KEY) == 3  # the retries were never queued
    assert stored() == []  # not written yet: the batch writer does it
    queued = conn.lrange(fastpath.QUEUE_KEY, 0, -1)
    assert fastpath.drain(conn) == 3
    rows = stored()
    assert sorted((r.openid, r.msg_type, r.event or "") for r in rows) == [
        ("oFastRedis1", "event", "location"), ("oFastRedis1", "text", ""), ("oFastRedis2", "text", "")]
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oFastRedis1")).one()
    assert f.last_interaction_at is not None and (f.last_lat, f.last_lng) == (30.25, 120.16)
    # a writer that crashed after its commit but before trimming the list runs again: no doubles
    conn.rpush(fastpath.QUEUE_KEY, *queued)
    assert fastpath.drain(conn) == 3
    assert len(stored()) == 3
    # a retry after the drain still gets the same reply, and stores nothing new
    assert reply_text(post(client, xml, aes=True), aes=True) == router.default_text
    assert conn.llen(fastpath.QUEUE_KEY) == 0


def test_redis_fast_path_concurrent_retries_queue_once(wx_redis):
    from wxapp.official_account import fastpath

    conn = wx_redis.extensions["wxcrm_redis"]
    xml = message_xml("text", "oFastRedis3", content="同时到达", msg_id=52_000_003)
    replies = []

    def deliver():
        with wx_redis.app_context():
            replies.append(reply_text(post(wx_redis.test_client(), xml)))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [router.default_text] * 6
    assert conn.llen(fastpath.QUEUE_KEY) == 1


def test_the_worker_job_drains_the_queue(wx_redis):
    """The wake-up job is a registered job the RQ worker runs (here executed directly)."""
    from crm_core import jobs
    from wxapp.official_account import fastpath
    from wxapp.official_account.jobs import drain_inbound

    conn = wx_redis.extensions["wxcrm_redis"]
    post(wx_redis.test_client(), message_xml("text", "oFastRedis4", content="排队", msg_id=52_000_004))
    assert conn.llen(fastpath.QUEUE_KEY) == 1
    assert jobs.execute(jobs.job_name(drain_inbound), []) == 1
    assert [r.openid for r in stored()] == ["oFastRedis4"]
