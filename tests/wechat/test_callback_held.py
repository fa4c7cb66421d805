"""Callbacks answered while the database or Redis is away (#20 item 1; held.py): every
answered message is stored once the database is back, its retries get the same answer, and a
handler that could not run then runs once, late, its reply sent as a customer-service message."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.wechat.models import InboundMessage
from tests.conftest import _create_schema, _make_app
from tests.services import OwnPostgres, OwnRedis
from tests.wechat_helpers import APPID, TOKEN, message_xml, post, reply_text
from wxapp.official_account import held
from wxapp.official_account.simulate import signed_request

pytestmark = pytest.mark.services


def _deliver(client, xml: str):
    """What WeChat sends (no sandbox bookkeeping: the database may be away)."""
    query, body = signed_request(xml, TOKEN, appid=APPID, timestamp=int(time.time()))
    t0 = time.monotonic()
    resp = client.post(f"/wechat/callback?{query}", data=body, content_type="text/xml")
    return resp, time.monotonic() - t0


@pytest.fixture
def own_pg():
    server = OwnPostgres()
    server.start()
    yield server
    server.stop()


def _rows(app, **where):
    with app.app_context():
        rows = db.session.scalars(db.select(InboundMessage).filter_by(**where).order_by(InboundMessage.id)).all()
        db.session.remove()
        return rows


def _custom_messages(app, openid: str) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.channel == "wechat_custom",
                                                                 OutboxMessage.recipient == openid)).all()
        db.session.remove()
        return rows


def test_menu_taps_while_postgresql_is_down_are_stored_and_answered_late_once(own_pg):
    app = _make_app(own_pg.url)
    with app.app_context():
        _create_schema()
        db.session.remove()
    client = app.test_client()
    openid = "oHELD0001"
    assert post(client, message_xml("follow", openid)).status_code == 200  # a follower, while all is well

    own_pg.halt("fast")
    from crm_core.wechat import autoreply

    autoreply.invalidate()  # the auto-reply rules must be read again: they cannot be, and the message is still held
    tap = message_xml("click", openid, key="MENU_REPAIR", create_time=int(time.time()))
    keyword = message_xml("text", openid, content="报修", msg_id=7001)
    follow = message_xml("follow", "oHELD0002", create_time=int(time.time()) - 1)
    for xml in (tap, keyword, follow):
        for _ in range(3):  # WeChat's three deliveries, all while the database is down
            resp, took = _deliver(client, xml)
            assert resp.status_code == 200 and resp.get_data(as_text=True) == "success"
            assert took < 5.0
    with app.app_context():  # nothing reached the database, nothing is lost: it is held
        assert held.spool()._written or held.spool()._sealed

    own_pg.start()
    with app.app_context():
        held.flush_local()  # what the spool's thread does within a second of the database answering
        db.session.remove()
    resp, _ = _deliver(client, tap)  # a late retry gets what the first delivery got
    assert resp.get_data(as_text=True) == "success"

    for key in ("|MENU_REPAIR", "|7001"):
        rows = [r for r in _rows(app) if r.dedup_key and r.dedup_key.endswith(key)]
        assert len(rows) == 1 and rows[0].outcome == "deferred", [(r.dedup_key, r.outcome) for r in _rows(app)]
    late = _custom_messages(app, openid)
    texts = sorted(m.payload["text"] for m in late)
    assert len(late) == 2 and "在线报修" in texts[0] + texts[1]  # the menu's answer and the keyword's, once each
    welcome = _custom_messages(app, "oHELD0002")
    assert len(welcome) == 1 and "欢迎关注" in welcome[0].payload["text"]
    with app.app_context():  # the new follower's bookkeeping ran late too
        from crm_core.wechat import followers

        assert followers.find(APPID, "oHELD0002").subscribed
        db.session.remove()


def test_a_restart_between_the_claim_and_the_handler_runs_the_handler_once_later(app, client):
    """The handler's own database work failed because the database went away (its transaction
    rolled back): the message is held and its handler runs again, once."""
    from sqlalchemy.exc import OperationalError

    from wxapp.official_account import router

    calls = []

    def flaky(ib):
        calls.append(ib.content)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return "查询结果：已受理"

    router.add(flaky, name="test.flaky", msg_type="text", text_pattern=r"^查询$", priority=1)
    try:
        xml = message_xml("text", "oHELD0003", content="查询", msg_id=7002)
        assert reply_text(post(client, xml)) is None  # held: success now
        assert reply_text(post(client, xml)) is None  # the retry: the same
        held.flush_local()
        assert calls == ["查询", "查询"]
        row = db.session.scalars(db.select(InboundMessage).where(InboundMessage.msg_id == "7002")).one()
        assert row.outcome == "deferred" and row.handler == "test.flaky"
        assert [m.payload["text"] for m in _custom_messages(app, "oHELD0003")] == ["查询结果：已受理"]
    finally:
        router.rules = [r for r in router.rules if r.name != "test.flaky"]


def test_a_delivery_a_dead_process_left_processing_runs_once_after_a_minute(app, client):
    from wxapp.official_account.jobs import recover_held_messages

    xml = message_xml("click", "oHELD0004", key="MENU_PROGRESS")
    post(client, xml)
    row = db.session.scalars(db.select(InboundMessage).where(InboundMessage.openid == "oHELD0004",
                                                             InboundMessage.event == "click")).one()
    # as a process killed after committing its claim leaves it
    row.outcome, row.reply, row.handler, row.received_at = "processing", None, None, utcnow() - timedelta(seconds=90)
    db.session.commit()
    assert recover_held_messages() == 1
    db.session.expire_all()
    assert db.session.get(InboundMessage, row.id).outcome == "deferred"
    assert ["服务进度" in m.payload["text"] for m in _custom_messages(app, "oHELD0004")] == [True]
    assert recover_held_messages() == 0  # once


def test_redis_away_the_database_is_the_claim_and_retries_get_the_same_reply(tmp_path):
    redis = OwnRedis()
    redis.start()
    try:
        app = _make_app(f"sqlite:///{tmp_path}/test.db", REDIS_URL=redis.url)
        with app.app_context():
            _create_schema()
            db.session.remove()
        client = app.test_client()
        redis.stop()
        xml = message_xml("click", "oHELD0005", key="MENU_REPAIR")
        answers = set()
        for _ in range(3):
            resp, took = _deliver(client, xml)
            assert took < 5.0
            answers.add(reply_text(resp))
        assert len(answers) == 1 and "在线报修" in answers.pop()
        rows = _rows(app, openid="oHELD0005")
        assert len(rows) == 1 and rows[0].outcome == "replied"
    finally:
        redis.destroy()


def test_a_retry_after_redis_lost_its_data_gets_the_first_reply_at_once(tmp_path, redis_url):
    """Redis restarted empty (no persistence): the first delivery's claim is gone, the row is not."""
    import redis as redis_lib

    app = _make_app(f"sqlite:///{tmp_path}/test.db", REDIS_URL=redis_url)
    with app.app_context():
        _create_schema()
        db.session.remove()
    client = app.test_client()
    xml = message_xml("click", "oHELD0006", key="MENU_PROGRESS")
    first = reply_text(_deliver(client, xml)[0])
    redis_lib.Redis.from_url(redis_url).flushdb()
    resp, took = _deliver(client, xml)
    assert reply_text(resp) == first and "服务进度" in first
    assert took < 1.0  # read from the row, not waited out
    assert len(_rows(app, openid="oHELD0006")) == 1
