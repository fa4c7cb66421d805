"""群发 (#17 item 7) against the sandbox's WeChat: a preview to one follower, a send to a tag, to a segment's followers,
WeChat's MASSSENDJOBFINISH recorded on the send, the allowance (服务号 4 a month) refused in words, and a resend of a
send whose outcome was unknown is not a second send (clientmsgid)."""
from __future__ import annotations

import re
import time

from flask import g
from sqlalchemy import select

from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.wechat.models import MassSend
from tests.conftest import console_login
from tests.wechat.test_wechat_sandbox import live  # noqa: F401 (fixture)
from tests.wechat_helpers import message_xml, post, settle


def _until(fn, timeout=8.0):
    end = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < end, "not yet"
        time.sleep(0.1)


def test_mass_send_preview_tag_segment_report_and_allowance(live):  # noqa: F811
    from crm_core.customers.models import Contact, Segment
    from crm_core.demo import load_demo
    from crm_core.wechat.models import Follower

    app = live.app
    c = app.test_client()
    with app.app_context():
        load_demo()
        db.session.commit()
        for o in ("oMass00001", "oMass00002", "oMass00003"):
            post(c, message_xml("follow", o), aes=True)
        settle()
        contacts = db.session.scalars(select(Contact).where(Contact.customer_id.is_not(None)).limit(2)).all()
        for o, contact in zip(("oMass00002", "oMass00003"), contacts):
            f = db.session.scalars(select(Follower).where(Follower.openid == o)).one()
            f.contact_id, f.customer_id = contact.id, contact.customer_id
        from crm_core.customers.models import Customer

        names = [db.session.get(Customer, x.customer_id).name for x in contacts]
        seg = Segment(org_id=contacts[0].org_id, name="两位客户", target="customer", match="any",
                      conditions=[{"field": "name", "op": "in", "value": names}])
        db.session.add(seg)
        db.session.commit()
        seg_id = seg.id
        h = {"Authorization": "Bearer " + c.post("/api/v1/auth/token", json={"username": "admin",
                                                                            "password": "demo123456"}).get_json()["access_token"]}
        tag = c.post("/api/v1/wechat/tags", headers=h, json={"name": "体验会"}).get_json()
        assert tag.get("wechat_id"), tag
        c.post(f"/api/v1/wechat/tags/{tag['id']}/members", headers=h, json={"openids": ["oMass00001", "oMass00002"]})

        desk, _ = console_login(app, "marketing.wang", "demo123456")

        def page():
            g.pop("csrf_token", None)
            html = desk.get("/console/wechat/mass").get_data(as_text=True)
            return html, re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

        html, token = page()
        assert "服务号：本月已群发 0 / 4 次" in html and "体验会（2 人）" in html and "两位客户" in html
        r = desk.post("/console/wechat/mass/preview", data={"csrf_token": token, "openid": "oNotAFan", "text": "周六体验会"},
                      follow_redirects=True)
        assert "预览对象必须是公众号的粉丝" in r.get_data(as_text=True)
        _, token = page()
        r = desk.post("/console/wechat/mass/preview", data={"csrf_token": token, "openid": "oMass00001", "text": "周六体验会"},
                      follow_redirects=True)
        assert "预览已发送" in r.get_data(as_text=True)
        phone = c.get("/sandbox/outbox?openid=oMass00001").get_json()["items"]
        assert phone[0]["api"] == "mass_message" and phone[0]["payload"]["preview"] is True

        _, token = page()
        r = desk.post("/console/wechat/mass", data={"csrf_token": token, "target": "tag", "tag_id": tag["id"],
                                                    "text": "本周六门店净水体验会，欢迎到店"}, follow_redirects=True)
        assert "已提交群发：标签「体验会」，约 2 位粉丝" in r.get_data(as_text=True)
        first = db.session.scalars(select(MassSend).order_by(MassSend.id)).first()

        def reported():
            db.session.expire_all()
            return db.session.get(MassSend, first.id).status == "sent"
        _until(reported)  # MASSSENDJOBFINISH came back and closed it
        done = db.session.get(MassSend, first.id)
        assert done.msg_id and done.sent_count == 2 and done.error_count == 0 and done.wechat_status == "send success"
        texts = [m["payload"]["text"]["content"] for m in c.get("/sandbox/outbox?openid=oMass00002").get_json()["items"]
                 if m["api"] == "mass_message"]
        assert texts == ["本周六门店净水体验会，欢迎到店"]

        _, token = page()
        r = desk.post("/console/wechat/mass", data={"csrf_token": token, "target": "segment", "segment_id": seg_id,
                                                    "text": "老客户专享：滤芯八折"}, follow_redirects=True)
        assert "客户细分「两位客户」，约 2 位粉丝" in r.get_data(as_text=True)
        seg_send = db.session.scalars(select(MassSend).order_by(MassSend.id.desc())).first()
        assert sorted(seg_send.openids) == ["oMass00002", "oMass00003"]

        # a resend of the same send (its outcome unknown): WeChat knows the clientmsgid — no second send
        msg = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "wechat_mass",
                                                              OutboxMessage.dedupe_key == f"mass:{seg_send.id}")).one()
        db.session.get(MassSend, seg_send.id).status = "queued"
        db.session.commit()
        from wxapp.official_account import channels

        with app.test_request_context():
            channels.send_mass(msg)
        db.session.commit()
        assert db.session.get(MassSend, seg_send.id).msg_id == seg_send.msg_id
        again = [m for m in c.get("/sandbox/outbox?openid=oMass00003").get_json()["items"] if m["api"] == "mass_message"]
        assert len(again) == 1

        for text in ("第三次", "第四次"):
            _, token = page()
            desk.post("/console/wechat/mass", data={"csrf_token": token, "target": "all", "text": text})
        html, token = page()
        assert "本月已群发 4 / 4 次（已用完）" in html
        r = desk.post("/console/wechat/mass", data={"csrf_token": token, "target": "all", "text": "第五次"},
                      follow_redirects=True)
        assert "已达到微信的群发次数上限" in r.get_data(as_text=True)
        assert db.session.scalar(select(db.func.count(MassSend.id))) == 4
        db.session.remove()
