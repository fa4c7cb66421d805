"""Done-when of the self-service issue: all six steps through real HTTP against the sandbox."""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
import requests
from PIL import Image

from crm_core.clock import travel, utcnow
from crm_core.db import db
from tests.conftest import LiveServer, _create_schema, _make_app
from wxapp.official_account.simulate import message_xml, signed_request

TOKEN, AES = "testtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CUSTOMER, ENGINEER = "oCustomerE2E01", "oEngineerE2E01"
PHONE = "13905710001"  # 陈建国 of 杭州西湖茶业 in the demo


@pytest.fixture
def live(tmp_path):
    from crm_core.demo import load_demo
    from crm_core.org.models import Organization
    from crm_core.service.models import StockItem

    app = _make_app(f"sqlite:///{tmp_path}/e2e.db", WECHAT_AES_KEY=AES)
    with app.app_context():
        _create_schema()
        load_demo()
        org = db.session.scalars(db.select(Organization)).first()
        item = db.session.scalars(db.select(StockItem).where(StockItem.org_id == org.id, StockItem.code == "LY-FILTER-1")).one()
        assert item.on_hand > 0  # the demo stocks its spare parts
        db.session.commit()
        db.session.remove()
    with LiveServer(app) as server:
        app.config["WECHAT_API_BASE"] = server.url + "/sandbox/wechat/"
        app.config["PUBLIC_BASE_URL"] = server.url
        server.app = app
        yield server


def callback(base, xml, aes=True):
    requests.post(f"{base}/sandbox/saw", data=xml.encode(), timeout=10)  # the sandbox plays WeChat: it saw this
    q, body = signed_request(xml, TOKEN, aes_key=AES if aes else None, appid="wxtestappid000001")
    r = requests.post(f"{base}/wechat/callback?{q}", data=body, headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 200
    from wxapp.official_account.simulate import read_reply

    return read_reply(r.content, TOKEN, AES if aes else None, "wxtestappid000001")


def h5_session(base, openid, page="/h5/service"):
    s = requests.Session()
    r = s.get(f"{base}/h5/dev-login?openid={openid}&next={page}", timeout=10)
    assert r.status_code == 200
    s.headers["X-CSRFToken"] = re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)
    return s, r.text


def token(base, username):
    r = requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": "demo123456"}, timeout=10)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def jpeg() -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (640, 480), (30, 144, 255))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_follow_verify_submit_dispatch_handle_progress_rate(live):
    base = live.url
    # 1. follow: the welcome offers the self-service menu
    welcome = callback(base, message_xml("follow", CUSTOMER))
    assert "欢迎关注" in welcome and "/h5/service/new" in welcome

    # 2. verify with the code the sandbox received
    s, page = h5_session(base, CUSTOMER)
    assert "验证身份" in page
    assert s.post(f"{base}/h5/api/tickets", json={"kind": "repair", "description": "x"}).status_code == 403
    assert s.post(f"{base}/h5/api/verify/start", json={"phone": PHONE}).json()["sent"] is True
    sms = requests.get(f"{base}/sandbox/sms?phone={PHONE}", timeout=10).json()["items"][0]
    wrong = s.post(f"{base}/h5/api/verify/confirm", json={"phone": PHONE, "code": "000000" if sms["code"] != "000000" else "111111"})
    assert wrong.status_code == 422 and "还可以再试 4 次" in wrong.json()["error"]["message"]
    bound = s.post(f"{base}/h5/api/verify/confirm", json={"phone": PHONE, "code": sms["code"]})
    assert bound.status_code == 200 and bound.json()["name"] == "陈建国"
    refollow = message_xml("follow", CUSTOMER, create_time=int(time.time()) + 7)  # a later event, not a retry
    assert "陈建国，欢迎回来" in callback(base, refollow)  # greeted by name from now on

    # 3. submit with a photo, on the product archive (warranty shown)
    products = s.get(f"{base}/h5/api/products").json()["items"]
    archive = products[0]
    assert archive["serial_no"] == "WP100-2024-0001" and "in_warranty" in archive
    photo = s.post(f"{base}/h5/api/photos", files={"file": ("p.jpg", jpeg(), "image/jpeg")})
    assert photo.status_code == 201
    required_by = (utcnow() + timedelta(days=2)).isoformat() + "Z"
    created = s.post(f"{base}/h5/api/tickets", json={
        "kind": "repair", "description": "净水器漏水，出水口一直滴水", "product_archive_id": archive["id"],
        "photo_ids": [photo.json()["id"]], "required_by": required_by, "contact_phone": PHONE})
    assert created.status_code == 201, created.json()
    ticket = created.json()
    assert ticket["status"] == "submitted" and ticket["number"].startswith("FW")

    # the engineer follows the account and signs in on their phone once, so staff notices reach their WeChat
    callback(base, message_xml("follow", ENGINEER))
    e, _ = h5_session(base, ENGINEER, "/h5/checkin")
    assert e.post(f"{base}/h5/api/staff/bind", json={"username": "service.engineer", "password": "demo123456"}).status_code == 200

    # 4. dispatch (the dispatcher), the engineer gets a template message
    dispatcher = token(base, "service.dispatcher")
    queue = requests.get(f"{base}/api/v1/tickets?status=submitted", headers=dispatcher, timeout=10).json()
    assert [t["id"] for t in queue["items"]] == [ticket["id"]]
    suggestion = requests.get(f"{base}/api/v1/tickets/suggested-engineer", headers=dispatcher, timeout=10).json()
    engineer_id = next(x["id"] for x in suggestion["engineers"] if x["name"] == "郑强")
    wo = requests.post(f"{base}/api/v1/tickets/{ticket['id']}/dispatch", headers=dispatcher,
                       json={"engineer_ids": [engineer_id]}, timeout=10)
    assert wo.status_code == 201, wo.json()
    wo = wo.json()
    assert wo["ticket_id"] == ticket["id"] and wo["status"] == "assigned"
    eng_box = requests.get(f"{base}/sandbox/outbox?openid={ENGINEER}", timeout=10).json()["items"]
    assert any(m["api"] == "template_send" and "新服务工单" in str(m["payload"]) for m in eng_box)

    # 5. the engineer adds records and completes — three days later, outside the customer's 48-hour window
    engineer = token(base, "service.engineer")
    mine = requests.get(f"{base}/api/v1/work-orders", headers=engineer, timeout=10).json()["items"]
    assert [w["id"] for w in mine] == [wo["id"]]
    r = requests.post(f"{base}/api/v1/work-orders/{wo['id']}/records", headers=engineer, timeout=10, json={
        "note": "上门检查，出水口密封圈老化", "minutes": 40, "parts": [{"code": "LY-FILTER-1", "quantity": 1}],
        "fees": [{"kind": "income", "item": "上门服务费", "amount": 50}]})
    assert r.status_code == 201, r.json()
    assert r.json()["parts"][0]["status"] == "reserved" and r.json()["income_total"] == 50
    progress = s.get(f"{base}/h5/api/tickets/{ticket['id']}").json()
    assert progress["status_label"] == "处理中" and progress["handler"] == {"name": "郑强", "phone": "13800000202"}
    with travel(timedelta(days=3)):
        engineer, dispatcher = token(base, "service.engineer"), token(base, "service.dispatcher")  # a new working day
        requests.post(f"{base}/api/v1/work-orders/{wo['id']}/records", headers=engineer, timeout=10,
                      json={"note": "更换密封圈和滤芯，试机正常", "minutes": 30}).raise_for_status()
        done = requests.post(f"{base}/api/v1/work-orders/{wo['id']}/complete", headers=engineer,
                             json={"summary": "已修复"}, timeout=10)
        # paid service (上门服务费): the customer signs for it before the work order is complete
        assert done.status_code == 409 and done.json()["error"]["code"] == "signature_required", done.json()
        sig = requests.post(f"{base}/api/v1/media", headers=engineer, timeout=10, data={"purpose": "signature"},
                            files={"file": ("signature.png", _png(), "image/png")}).json()
        done = requests.post(f"{base}/api/v1/work-orders/{wo['id']}/complete", headers=engineer, timeout=10,
                             json={"summary": "已修复", "signature": {"media_id": sig["id"], "signer_name": "陈建国"}})
        assert done.status_code == 200, done.json()
        assert done.json()["signatures"][0]["purpose"] == "completion" and done.json()["signatures"][0]["signer_name"] == "陈建国"

        # 6. the customer sees progress, the messages are in the sandbox, rates, and it shows in the statistics
        detail = s.get(f"{base}/h5/api/tickets/{ticket['id']}").json()
        assert detail["status"] == "completed" and detail["status_label"] == "已完成" and detail["can_rate"]
        labels = [e["label"] for e in detail["timeline"] if e["label"]]
        assert labels == ["已提交", "已派工", "处理中", "已完成"]
        inbox = requests.get(f"{base}/sandbox/outbox?openid={CUSTOMER}", timeout=10).json()["items"]
        apis = {(m["api"], "邀请评价" in str(m["payload"]) or "评分" in str(m["payload"])) for m in inbox}
        assert ("custom_send", False) in apis  # dispatched, inside the 48-hour window
        assert ("template_send", True) in apis  # completed + invitation, outside it
        rated = s.post(f"{base}/h5/api/tickets/{ticket['id']}/rating", json={"score": 5, "tags": ["响应及时"], "comment": "很专业"})
        assert rated.status_code == 201
        assert s.post(f"{base}/h5/api/tickets/{ticket['id']}/rating", json={"score": 4}).status_code == 409
        stats = requests.get(f"{base}/api/v1/reports/satisfaction", headers=dispatcher, timeout=10).json()
    assert stats["count"] == 1 and stats["average"] == 5 and stats["by_engineer"][0]["engineer"] == "郑强"
    assert stats["distribution"]["5"] == 1


def test_photos_chosen_in_wechat_are_downloaded_cleaned_and_attached(live):
    """``wx.uploadImage`` gives a media id; a job downloads it from WeChat (the sandbox here)."""
    from crm_core.media import MediaFile
    from crm_core.service.models import Ticket

    base = live.url
    s, _ = h5_session(base, "oMediaUser01")
    s.post(f"{base}/h5/api/verify/start", json={"phone": PHONE})
    code = requests.get(f"{base}/sandbox/sms?phone={PHONE}", timeout=10).json()["items"][0]["code"]
    assert s.post(f"{base}/h5/api/verify/confirm", json={"phone": PHONE, "code": code}).status_code == 200
    media_id = requests.post(f"{base}/sandbox/media", timeout=10).json()["media_id"]  # wx.uploadImage's answer
    r = s.post(f"{base}/h5/api/tickets", json={"kind": "complaint", "description": "照片在微信里选的",
                                                "photo_media_ids": [media_id]})
    assert r.status_code == 201, r.json()
    calls = requests.get(f"{base}/sandbox/calls", timeout=10).json()["items"]
    assert any(c["api"] == "media_get" and c["payload"].get("media_id") == media_id and not c["errcode"] for c in calls)
    with live.app.app_context():
        t = db.session.get(Ticket, r.json()["id"])
        photo = db.session.get(MediaFile, t.photo_ids[0])
        assert photo.status == "ready" and photo.source == "wechat" and photo.content_type == "image/jpeg"
    detail = s.get(f"{base}/h5/api/tickets/{r.json()['id']}").json()
    assert s.get(f"{base}/h5/api/photos/{detail['photo_ids'][0]}?thumb=1").status_code == 200


def test_warranty_reminders_reach_the_customers_bound_wechat(live):
    from crm_core.customers.models import ProductArchive
    from crm_core.outbox import OutboxMessage
    from crm_core.service.warranty import warranty_reminders

    base = live.url
    s, _ = h5_session(base, "oWarranty001")
    s.post(f"{base}/h5/api/verify/start", json={"phone": PHONE})
    code = requests.get(f"{base}/sandbox/sms?phone={PHONE}", timeout=10).json()["items"][0]["code"]
    s.post(f"{base}/h5/api/verify/confirm", json={"phone": PHONE, "code": code}).raise_for_status()
    with live.app.app_context():
        from crm_core.wechat.models import Follower

        db.session.execute(db.update(Follower).where(Follower.openid == "oWarranty001").values(subscribed=True))
        old = db.session.scalars(db.select(ProductArchive).where(ProductArchive.serial_no == "WP100-2024-0001")).one()
        today = utcnow().date()
        db.session.add(ProductArchive(org_id=old.org_id, owner_id=old.owner_id, serial_no="WP100-2025-0099",
                                      product_id=old.product_id, customer_id=old.customer_id, sold_on=today - timedelta(days=710),
                                      warranty_months=24, warranty_until=today + timedelta(days=10)))
        db.session.commit()
        assert warranty_reminders() >= 1
        db.session.commit()
        notices = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.recipient == "oWarranty001")).all()
        assert any(n.channel == "wechat_notice" and "保修" in n.payload["text"] for n in notices)


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 120), (255, 255, 255)).save(buf, "PNG")
    return buf.getvalue()
