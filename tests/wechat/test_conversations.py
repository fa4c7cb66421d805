"""在线客服 API (SPEC: /api/v1/conversations...): the inbox, the messages both ways, replies inside and outside the window."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_core.clock import travel
from crm_core.db import db
from tests.wechat_helpers import message_xml, post


@pytest.fixture
def desk(app, client):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()

    def tok(user):
        return {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
            "username": user, "password": "demo123456"}).get_json()["access_token"]}
    return tok


def test_inbox_messages_and_replies(desk, client):
    h = desk("service.dispatcher")
    post(client, message_xml("follow", "oConv00001"))
    post(client, message_xml("text", "oConv00001", content="你好，在吗"))
    post(client, message_xml("location_event", "oConv00001", lat=30.2, lng=120.1))  # not a conversation line
    with travel(timedelta(days=-3)):
        post(client, message_xml("follow", "oConv00002"))  # followed long ago, said nothing since
    items = client.get("/api/v1/conversations", headers=h).get_json()["items"]
    assert [c["openid"] for c in items] == ["oConv00001", "oConv00002"]  # newest activity first
    first = items[0]
    assert first["unread"] == 1 and first["window"]["open"] is True and first["name"] == "微信用户0001"
    msgs = client.get(f"/api/v1/conversations/{first['id']}/messages", headers=h).get_json()["items"]
    assert [(m["direction"], m["text"]) for m in msgs] == [("in", "关注了公众号"), ("in", "你好，在吗")]
    assert client.get("/api/v1/conversations", headers=h).get_json()["items"][0]["unread"] == 0  # read now

    r = client.post(f"/api/v1/conversations/{first['id']}/messages", headers=h, json={"text": "您好，请问有什么可以帮您？"})
    assert r.status_code == 201 and r.get_json()["channel"] == "customer_service"
    msgs = client.get(f"/api/v1/conversations/{first['id']}/messages", headers=h).get_json()["items"]
    assert msgs[-1]["direction"] == "out" and msgs[-1]["text"] == "您好，请问有什么可以帮您？"
    again = client.get("/api/v1/conversations?mine=1", headers=h).get_json()["items"]
    assert [c["openid"] for c in again] == ["oConv00001"]  # who answers first takes the conversation

    quiet = items[1]
    assert quiet["window"]["open"] is False
    r = client.post(f"/api/v1/conversations/{quiet['id']}/messages", headers=h, json={"text": "您的滤芯该换了"})
    assert r.status_code == 201 and r.get_json()["channel"] == "template"  # outside the window: said so


def test_replies_are_refused_clearly(desk, client):
    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConv00003", content="喂"))
    post(client, message_xml("unfollow", "oConv00003"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    empty = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"text": ""})
    assert empty.status_code == 422
    gone = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"text": "还在吗"})
    assert gone.status_code == 422 and "未关注" in gone.get_json()["error"]["message"]
    # marketing may read followers but not answer them
    mk = desk("marketing.wang")
    assert client.get("/api/v1/conversations", headers=mk).status_code == 200
    assert client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=mk, json={"text": "hi"}).status_code == 403
    assert client.get("/api/v1/conversations/999999/messages", headers=h).status_code == 404


def test_a_conversation_becomes_a_ticket_for_the_verified_follower(desk, client):
    from crm_core.customers.models import Contact
    from crm_core.wechat import followers

    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConv00004", content="热水器不出热水"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    refused = client.post(f"/api/v1/conversations/{conv['id']}/ticket", headers=h,
                          json={"kind": "consultation", "description": "热水器不出热水"})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "not_verified"
    contact = db.session.scalars(db.select(Contact).where(Contact.phone == "13905710001")).one()
    followers.bind_contact(followers.find(followers_appid(), "oConv00004"), contact)
    db.session.commit()
    r = client.post(f"/api/v1/conversations/{conv['id']}/ticket", headers=h,
                    json={"kind": "consultation", "description": "热水器不出热水"})
    assert r.status_code == 201, r.get_json()
    t = r.get_json()
    assert t["customer_id"] == contact.customer_id and t["status"] == "submitted"
    from crm_core.service.models import Ticket

    assert db.session.get(Ticket, t["id"]).openid == "oConv00004"  # the follower follows it in WeChat


def followers_appid():
    from wxapp.config import wechat_appid

    return wechat_appid()


def test_location_reports_do_not_crowd_the_thread_and_other_orgs_stay_out(desk, client):
    from crm_core.org.models import Organization
    from crm_core.wechat.models import Follower

    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConv00005", content="还在吗"))
    for i in range(120):  # location reporting on: one every few seconds
        post(client, message_xml("location_event", "oConv00005", lat=30.2 + i / 1e4, lng=120.1))
    conv = next(c for c in client.get("/api/v1/conversations", headers=h).get_json()["items"] if c["openid"] == "oConv00005")
    texts = [m["text"] for m in client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=h).get_json()["items"]]
    assert texts == ["还在吗"]
    # a follower bound to another organisation is not this desk's conversation
    other = Organization(code="other", name="别家公司")
    db.session.add(other)
    db.session.commit()
    post(client, message_xml("text", "oConv00006", content="别家的客户"))
    from wxapp.official_account import fastpath

    fastpath.flush_local()
    f = db.session.scalars(db.select(Follower).where(Follower.openid == "oConv00006")).one()
    f.org_id = other.id
    db.session.commit()
    listed = [c["openid"] for c in client.get("/api/v1/conversations", headers=h).get_json()["items"]]
    assert "oConv00006" not in listed
    from crm_core.wechat.models import Conversation

    theirs = db.session.scalars(db.select(Conversation).where(Conversation.openid == "oConv00006")).one()
    assert client.get(f"/api/v1/conversations/{theirs.id}/messages", headers=h).status_code == 404


def test_a_reply_that_never_left_gives_its_quota_back(desk, client, monkeypatch):
    import requests

    from crm_core import outbox
    from crm_core.outbox import OutboxMessage
    from crm_core.wechat import followers
    from wxapp.official_account import channels

    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConv00007", content="你好"))
    conv = next(c for c in client.get("/api/v1/conversations", headers=h).get_json()["items"] if c["openid"] == "oConv00007")

    class Down:
        class message:  # noqa: N801
            @staticmethod
            def send_text(*a, **kw):
                raise requests.exceptions.ConnectTimeout("connect timeout")

    monkeypatch.setattr(channels, "_client", lambda: Down)
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"text": "在的"})
    assert r.status_code == 201
    outbox.deliver(r.get_json()["id"])
    db.session.expire_all()
    assert db.session.get(OutboxMessage, r.get_json()["id"]).status == "pending"  # retried later: nothing went out
    f = followers.find(followers_appid(), "oConv00007")
    assert followers.cs_quota(f)["remaining"] == 5  # the unit went back


def test_asking_for_a_person_queues_the_conversation_until_an_agent_takes_it(desk, client):
    from crm_core.clock import utcnow
    from crm_core.org.models import Employee
    from crm_core.wechat import conversations
    from tests.wechat_helpers import reply_text

    h = desk("service.dispatcher")
    assert "人工客服" in reply_text(post(client, message_xml("text", "oConv00008", content="人工客服")))
    waiting = client.get("/api/v1/conversations?status=waiting", headers=h).get_json()["items"]
    assert [c["openid"] for c in waiting] == ["oConv00008"] and waiting[0]["assignee_id"] is None
    conv = waiting[0]
    taken = client.post(f"/api/v1/conversations/{conv['id']}/assign", headers=h, json={}).get_json()
    assert taken["status"] == "open" and taken["assignee_id"]
    engineer = db.session.scalars(db.select(Employee).where(Employee.name == "郑强")).one()
    moved = client.post(f"/api/v1/conversations/{conv['id']}/assign", headers=h, json={"employee_id": engineer.id}).get_json()
    assert moved["assignee_id"] == engineer.id
    assert client.post(f"/api/v1/conversations/{conv['id']}/assign", headers=h,
                       json={"employee_id": 987654}).status_code == 422
    assert client.post(f"/api/v1/conversations/{conv['id']}/close", headers=h).get_json()["status"] == "closed"
    post(client, message_xml("text", "oConv00008", content="我又来了"))  # the next message reopens it
    assert client.get("/api/v1/conversations?status=open", headers=h).get_json()["items"][0]["openid"] == "oConv00008"
    # half an hour of quiet closes it
    with travel(timedelta(minutes=31)):
        assert conversations.close_quiet(utcnow()) >= 1
    db.session.commit()
    assert client.get("/api/v1/conversations?status=closed", headers=h).get_json()["total"] >= 1


def test_requests_for_a_person_go_round_robin_to_online_agents(desk, client):
    from wxapp.official_account.router import router  # noqa: F401  (rules registered)

    disp, admin = desk("service.dispatcher"), desk("admin")
    from tests.wechat_helpers import reply_text

    # nobody online: the request waits, and the customer is told so
    said = reply_text(post(client, message_xml("text", "oQueue0001", content="人工客服")))
    assert "没有客服在线" in said
    conv = client.get("/api/v1/conversations?status=waiting", headers=disp).get_json()["items"]
    assert [c["openid"] for c in conv] == ["oQueue0001"]

    for h in (disp, admin):
        r = client.put("/api/v1/conversations/presence", headers=h, json={"accepting": True})
        assert r.status_code == 200
    assert r.get_json()["online"] == 2
    names = []
    for i in range(2, 6):
        names.append(reply_text(post(client, message_xml("text", f"oQueue000{i}", content="转人工"))))
    assert sum("吴静" in n for n in names) == 2 and sum("周敏" in n for n in names) == 2  # in turn, by load
    assert ("吴静" in names[0]) != ("吴静" in names[1])  # the next goes to the other agent

    client.put("/api/v1/conversations/presence", headers=admin, json={"accepting": False})  # 暂停接待
    assert "吴静" in reply_text(post(client, message_xml("text", "oQueue0006", content="人工")))
    with travel(timedelta(minutes=2)):  # the dispatcher's console has not polled for two minutes: offline
        assert "没有客服在线" in reply_text(post(client, message_xml("text", "oQueue0007", content="人工客服")))


def test_first_response_and_resolution_times_per_agent(desk, client):
    h = desk("service.dispatcher")
    client.put("/api/v1/conversations/presence", headers=h, json={"accepting": True})
    post(client, message_xml("text", "oStats0001", content="人工客服"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    with travel(timedelta(seconds=90)):
        assert client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"text": "您好，我是吴静"}).status_code == 201
        client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"text": "还有什么可以帮您？"})
    with travel(timedelta(minutes=10)):
        assert client.post(f"/api/v1/conversations/{conv['id']}/close", headers=h).status_code == 200
        stats = client.get("/api/v1/conversations/stats?days=1", headers=h).get_json()
    agent = next(a for a in stats["agents"] if a["name"] == "吴静")
    assert agent["sessions"] == 1 and agent["answered"] == 1
    assert 85 <= agent["median_first_response_s"] <= 95  # the first answer, not the second
    assert 595 <= agent["median_resolution_s"] <= 605
    # the customer writes again: a new session, whose response time starts again
    post(client, message_xml("text", "oStats0001", content="又有问题了"))
    again = client.get("/api/v1/conversations?q=oStats0001", headers=h).get_json()["items"][0]
    assert again["status"] == "open"


def test_canned_replies_are_kept_with_their_variables_checked(desk, client):
    h = desk("service.dispatcher")
    items = client.get("/api/v1/conversations/canned-replies", headers=h).get_json()["items"]
    assert [i["title"] for i in items] == ["问候", "工单进度", "结束语"]  # a start every team can edit
    r = client.put("/api/v1/conversations/canned-replies", headers=h,
                   json={"items": [{"title": "上门", "text": "{联系人}您好，工程师将于明天上门，单号 {工单号}。"}]})
    assert r.status_code == 200 and r.get_json()["items"][0]["title"] == "上门"
    bad = client.put("/api/v1/conversations/canned-replies", headers=h, json={"items": [{"title": "错", "text": "{手机号}"}]})
    assert bad.status_code == 422 and "{手机号}" in bad.get_json()["error"]["message"]
    assert client.put("/api/v1/conversations/canned-replies", headers=desk("sales.zhang"),
                      json={"items": []}).status_code == 403
    from crm_core.wechat.conversations import fill_canned

    assert fill_canned("{联系人}您好，单号 {工单号}", {"联系人": "陈建国", "工单号": None}) == "陈建国您好，单号 "


def test_messages_carry_what_each_kind_needs_and_media_fails_in_words(desk, client):
    """The API's messages name a picture/voice/video (media, recognition), a location (lat, lng, label) and a link
    (an http(s) url only). The media route answers 503 with a reason while WeChat cannot be reached, 404 in words once
    WeChat's three days are over, and 404 to a message of another conversation."""
    h = desk("service.dispatcher")
    for xml in (message_xml("image", "oConvMedia1", media_id="M_PHOTO"),
                message_xml("voice", "oConvMedia1", media_id="M_VOICE", recognition="在吗"),
                message_xml("location", "oConvMedia1", lat=30.2270, lng=120.1230, label="龙井路18号"),
                message_xml("link", "oConvMedia1", title="说明书", url="javascript:alert(1)")):
        post(client, xml)
    post(client, message_xml("image", "oConvMedia2", media_id="M_OTHER"))
    convs = {c["openid"]: c["id"] for c in client.get("/api/v1/conversations", headers=h).get_json()["items"]}
    msgs = client.get(f"/api/v1/conversations/{convs['oConvMedia1']}/messages", headers=h).get_json()["items"]
    by_kind = {m["kind"]: m for m in msgs}
    assert by_kind["image"]["media"] == "image" and by_kind["image"]["text"] == "[图片]"
    assert by_kind["voice"]["media"] == "voice" and by_kind["voice"]["text"] == "[语音] 在吗"
    assert by_kind["location"]["location"] == {"lat": 30.227, "lng": 120.123, "label": "龙井路18号"}
    assert by_kind["link"]["link"] == {"title": "说明书", "description": "", "url": None}  # not a javascript: link
    photo = f"/api/v1/conversations/{convs['oConvMedia1']}/messages/{by_kind['image']['id']}/media"
    r = client.get(photo, headers=h)  # the tests' WeChat is unreachable
    assert r.status_code == 503 and "微信暂时无法取回" in r.get_data(as_text=True)
    assert client.get(f"/api/v1/conversations/{convs['oConvMedia1']}/messages/{by_kind['location']['id']}/media",
                      headers=h).status_code == 404  # no media in a location
    other = client.get(f"/api/v1/conversations/{convs['oConvMedia2']}/messages", headers=h).get_json()["items"][0]
    assert client.get(f"/api/v1/conversations/{convs['oConvMedia1']}/messages/{other['id']}/media",
                      headers=h).status_code == 404  # another conversation's message through this one
    with travel(timedelta(days=4)):
        r = client.get(photo, headers=desk("service.dispatcher"))  # a fresh sign-in: the first token has expired
        assert r.status_code == 404 and "微信只保留三天" in r.get_data(as_text=True)


def test_the_api_answers_with_a_picture_uploaded_first_and_refuses_it_outside_the_window(desk, client):
    import io

    from PIL import Image

    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConvPic01", content="发张图看看"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    up = client.post("/api/v1/media", headers=h, data={"purpose": "chat_reply", "file": (io.BytesIO(buf.getvalue()), "p.png")},
                     content_type="multipart/form-data").get_json()
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={"image_id": up["id"]})
    assert r.status_code == 201 and r.get_json()["channel"] == "customer_service"
    last = client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=h).get_json()["items"][-1]
    assert last["direction"] == "out" and last["kind"] == "image" and last["media"] == "image"
    shown = client.get(f"/api/v1/conversations/{conv['id']}/replies/{last['id']}/media", headers=h)
    assert shown.status_code == 200 and shown.mimetype == "image/png"  # the picture as the thread shows it
    from tests.service.test_staff_workbench import staff_phone

    phone = staff_phone(client.application, "oConvPicAgent", "service.dispatcher")
    assert phone.get(f"/h5/api/staff/conversations/{conv['id']}/replies/{last['id']}/media").status_code == 200
    assert f"/h5/api/staff/conversations/{conv['id']}/" in phone.get(f"/h5/staff/conversations/{conv['id']}").get_data(as_text=True)
    other = desk("service.engineer")  # another employee's picture is not this agent's to send
    assert client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=other, json={"image_id": up["id"]}
                       ).status_code in (403, 404)
    with travel(timedelta(days=3)):
        late = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=desk("service.dispatcher"),
                           json={"image_id": up["id"]})
        assert late.status_code == 409 and late.get_json()["error"]["code"] == "window_closed"
    assert client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=h, json={}).status_code == 422


def test_the_api_answers_with_a_material_card_and_refuses_a_draft(desk, client):
    h = desk("service.dispatcher")
    mk = desk("marketing.wang")
    published = client.post("/api/v1/materials", headers=mk, json={"title": "夏季滤芯八折", "summary": "到店更换",
                                                                   "body_html": "<p>详情</p>", "publish": True}).get_json()
    draft = client.post("/api/v1/materials", headers=mk, json={"title": "未发布", "body_html": "<p>草稿</p>"}).get_json()
    post(client, message_xml("text", "oConvCard01", content="有优惠吗"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/material-card", headers=h, json={"material_id": published["id"]})
    assert r.status_code == 201 and r.get_json()["channel"] == "customer_service"
    last = client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=h).get_json()["items"][-1]
    assert last["kind"] == "news" and last["link"]["title"] == "夏季滤芯八折" and "?s=" in last["link"]["url"]
    refused = client.post(f"/api/v1/conversations/{conv['id']}/material-card", headers=h, json={"material_id": draft["id"]})
    assert refused.status_code == 422 and "已发布的素材" in refused.get_json()["error"]["message"]


def test_the_inbox_is_searched_by_what_followers_wrote(desk, client):
    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConvSearch1", content="净水器滤芯漏水了"))
    post(client, message_xml("text", "oConvSearch2", content="想问一下发票"))
    found = client.get("/api/v1/conversations?q=滤芯漏水", headers=h).get_json()["items"]
    assert [c["openid"] for c in found] == ["oConvSearch1"]
    assert [c["openid"] for c in client.get("/api/v1/conversations?q=发票", headers=h).get_json()["items"]] == ["oConvSearch2"]
    assert client.get("/api/v1/conversations?q=没有人说过", headers=h).get_json()["items"] == []


def test_the_agent_sees_how_long_the_window_stays_open(desk, client, app):
    """The follower's card says how many customer-service messages are left and until when (China time)."""
    import re

    from flask import g

    from tests.conftest import console_login

    h = desk("service.dispatcher")
    post(client, message_xml("text", "oConvWin001", content="在吗"))
    conv = client.get("/api/v1/conversations", headers=h).get_json()["items"][0]
    c, _ = console_login(app, "service.dispatcher", "demo123456")
    g.pop("csrf_token", None)
    state = re.search(r'id="window-state"[^>]*>(.*?)</p>', c.get(f"/console/conversations/{conv['id']}").get_data(as_text=True)).group(1)
    from crm_core.clock import local_str

    until = local_str(conv["window"]["expires_at"], "%m-%d %H:%M")
    assert f"还可发送 {conv['window']['quota_left']} 条客服消息，{until} 前有效" in state
