"""在线客服 on the phone: a follower asks for a person while no agent is online, the agents get a staff notice that
opens the conversation on the phone, and the answer from there reaches the follower (once per request)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.wechat.models import Conversation
from tests.service.test_staff_workbench import staff_phone
from tests.wechat_helpers import message_xml, post, reply_text, settle


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def _waiting_notices() -> list[OutboxMessage]:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff").order_by(OutboxMessage.id))
    return [m for m in rows if m.payload.get("kind") == "conversation_waiting"]


def test_a_follower_waiting_for_a_person_is_answered_from_the_agents_phone(demo, client):
    from crm_core.org.models import Employee, User
    from wxapp.official_account.channels import staff_link

    post(client, message_xml("follow", "oDesk00001"))
    post(client, message_xml("text", "oDesk00001", content="净水器漏水了"))
    assert "没有客服在线" in reply_text(post(client, message_xml("text", "oDesk00001", content="人工客服")))
    conv = db.session.scalars(select(Conversation).where(Conversation.openid == "oDesk00001")).one()
    assert conv.status == "waiting"
    dispatcher = db.session.scalars(select(Employee).join(User, User.employee_id == Employee.id)
                                    .where(User.username == "service.dispatcher")).one()
    notices = _waiting_notices()
    assert [n.recipient for n in notices] == [str(dispatcher.id)] and "请求人工客服" in notices[0].payload["text"]
    with demo.test_request_context():
        assert staff_link(notices[0].payload).endswith(f"/h5/staff/conversations/{conv.id}")
    # asking again in the same wait tells nobody twice
    post(client, message_xml("text", "oDesk00001", content="转人工"))
    assert len(_waiting_notices()) == 1
    settle()  # the plain text went through the callback spool; the agent reads it once written

    phone = staff_phone(demo, "oWbDesk0001", "service.dispatcher")
    home = phone.get("/h5/staff/").get_data(as_text=True)
    assert 'id="entry-desk"' in home and '<span class="weui-badge">1</span> 人排队' in home
    listing = phone.get("/h5/staff/conversations").get_data(as_text=True).split('id="waiting"')[1].split('id="mine"')[0]
    assert f'id="conversation-{conv.id}"' in listing
    page = phone.get(f"/h5/staff/conversations/{conv.id}").get_data(as_text=True)
    assert "净水器漏水了" in page and "48 小时内可直接回复" in page
    assert phone.post(f"/h5/api/staff/conversations/{conv.id}/reply", json={"text": "  "}).status_code == 422
    r = phone.post(f"/h5/api/staff/conversations/{conv.id}/reply", json={"text": "您好，请问是哪个型号？我们马上安排。"})
    assert r.status_code == 201 and r.get_json()["channel"] == "customer_service", r.get_json()
    db.session.expire_all()
    conv = db.session.get(Conversation, conv.id)
    assert conv.status == "open" and conv.assignee_id == dispatcher.id and conv.first_response_at is not None
    sent = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "oDesk00001",
                                                          OutboxMessage.channel == "wechat_custom")).all()
    assert [m.payload["text"] for m in sent][-1] == "您好，请问是哪个型号？我们马上安排。"
    thread = phone.get(f"/h5/api/staff/conversations/{conv.id}/messages").get_json()["items"]
    assert [m["text"] for m in thread if m["direction"] == "out"][-1] == "您好，请问是哪个型号？我们马上安排。"
    mine = phone.get("/h5/staff/conversations").get_data(as_text=True).split('id="mine"')[1]
    assert f'id="conversation-{conv.id}"' in mine

    # a salesperson is not an agent: no entry, no answer
    zhang = staff_phone(demo, "oWbDesk0002", "sales.zhang")
    assert 'id="entry-desk"' not in zhang.get("/h5/staff/").get_data(as_text=True)
    assert zhang.post(f"/h5/api/staff/conversations/{conv.id}/reply", json={"text": "越权"}).status_code == 403
