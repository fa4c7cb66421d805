"""The engineer's phone workbench (/h5/staff/): accept, arrival check-in, records, signature, complete — through the
H5 calls the pages make, on the same services as the API."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from crm_core.db import db
from crm_core.field.models import CheckIn
from crm_core.outbox import OutboxMessage
from crm_core.service.models import HandlingRecord, Ticket, TicketEvent, WorkOrder
from tests.service.test_tickets import customer_session, engineer_id, new_ticket, staff

SITE = {"lat": 30.2271, "lng": 120.1231, "accuracy_m": 15, "coord_system": "wgs84"}  # at 西湖茶业's gate


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def staff_phone(app, openid: str, username: str | None = "service.engineer"):
    """A WeChat user's H5 session on the workbench; with ``username``, signed in (bound) as that employee."""
    from flask import g

    g.pop("csrf_token", None)
    c = app.test_client()
    page = c.get(f"/h5/dev-login?openid={openid}&next=/h5/staff/", follow_redirects=True).get_data(as_text=True)
    c.environ_base["HTTP_X_CSRFTOKEN"] = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    if username:
        assert 'id="bind-btn"' in page  # the first visit asks for the company account
        r = c.post("/h5/api/staff/bind", json={"username": username, "password": "demo123456"})
        assert r.status_code == 200, r.get_json()
    return c


def dispatched(demo, client, openid="oWbCust0001"):
    """A customer's repair request, dispatched to 郑强: (customer session, ticket id, work order id)."""
    cust = customer_session(demo, openid, "13905710001")
    tid = new_ticket(cust, kind="repair", description="净水器不出水", product_archive_id=_archive(cust))
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", headers=staff(client, "service.dispatcher"),
                     json={"engineer_ids": [engineer_id()]}).get_json()
    return cust, tid, wo["id"]


def _archive(cust) -> int:
    return cust.get("/h5/api/products").get_json()["items"][0]["id"]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 120), (255, 255, 255)).save(buf, "PNG")
    return buf.getvalue()


def _notices(openid: str) -> list[str]:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == openid).order_by(OutboxMessage.id))
    return [r.payload.get("text", "") for r in rows]


def test_the_engineer_accepts_arrives_records_gets_the_signature_and_completes(demo, client):
    cust, tid, wo_id = dispatched(demo, client)
    phone = staff_phone(demo, "oWbEng00001")
    base = f"/h5/api/staff/work-orders/{wo_id}"

    page = phone.get("/h5/staff/work-orders").get_data(as_text=True)
    assert f'id="wo-{wo_id}"' in page and "杭州西湖茶业有限公司" in page and "（待接单）" in page
    from crm_core.customers.models import Customer, ProductArchive

    ticket = db.session.get(Ticket, tid)
    site = db.session.get(Customer, ticket.customer_id)
    card_html = page.split(f'id="wo-{wo_id}"')[1].split("</a>")[0]
    assert db.session.get(ProductArchive, ticket.product_archive_id).product.name in card_html  # the product on the card
    assert site.address in card_html  # and where to go
    detail = phone.get(f"/h5/staff/work-orders/{wo_id}").get_data(as_text=True)
    assert 'href="tel:13905710001"' in detail  # the contact's phone, one tap to call
    assert "apis.map.qq.com/uri/v1/marker?marker=coord:" in detail  # navigation to the site (GCJ-02 for the map app)
    site_lat, site_lng = site.site_wgs_lat, site.site_wgs_lng
    site.site_wgs_lat = site.site_wgs_lng = None  # a customer without coordinates: the map app searches the address
    db.session.commit()
    detail = phone.get(f"/h5/staff/work-orders/{wo_id}").get_data(as_text=True)
    from urllib.parse import quote

    assert "apis.map.qq.com/uri/v1/search?keyword=" + quote(site.address) in detail.replace("&amp;", "&")
    site.site_wgs_lat, site.site_wgs_lng = site_lat, site_lng
    db.session.commit()
    customer_id = db.session.get(Ticket, tid).customer_id
    card = phone.get(f"/h5/staff/customers/{customer_id}")  # the customer he is sent to, without the sales sections
    assert card.status_code == 200 and "杭州西湖茶业有限公司" in card.get_data(as_text=True) and "商机" not in card.get_data(as_text=True)

    assert phone.post(f"{base}/accept", json={}).status_code == 200
    assert phone.post(f"{base}/accept", json={}).status_code == 200  # a second tap is the same acceptance
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.ticket_id == tid,
                                                                     TicketEvent.kind == "accept")) == 1
    assert any("已接单" in t and "13800000202" in t for t in _notices("oWbCust0001"))

    r = phone.post(f"{base}/arrival", json={**SITE, "client_time": None})
    assert r.status_code == 201, r.get_json()
    arrival = r.get_json()
    assert arrival["checkin"]["distance_m"] < 50 and "out_of_range" not in arrival["checkin"]["flags"]
    assert arrival["work_order"]["status"] == "in_progress" and arrival["work_order"]["arrival_distance_m"] < 50
    ci = db.session.get(CheckIn, arrival["work_order"]["arrival_checkin_id"])
    assert ci.customer_id == db.session.get(Ticket, tid).customer_id and ci.kind == "in"
    progress = cust.get(f"/h5/api/tickets/{tid}").get_json()
    assert progress["status"] == "in_progress" and "工程师已到达现场" in str(progress["timeline"])

    photo = phone.post("/h5/api/staff/uploads", data={"purpose": "work_order", "file": (io.BytesIO(_png()), "p.png")},
                       content_type="multipart/form-data").get_json()["id"]
    record = {"note": "更换进水阀", "minutes": 35, "photo_ids": [photo], "parts": [{"code": "LY-FILTER-1", "quantity": 1}],
              "fees": [{"kind": "income", "item": "上门服务费", "amount": 80}]}
    r = phone.post(f"{base}/records", json=record, headers={"Idempotency-Key": "rec-offline-1"})
    assert r.status_code == 201, r.get_json()
    again = phone.post(f"{base}/records", json=record, headers={"Idempotency-Key": "rec-offline-1"})  # sent again when back online
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert db.session.scalar(select(func.count(HandlingRecord.id)).where(HandlingRecord.work_order_id == wo_id)) == 1
    assert phone.get(f"/h5/api/staff/media/{photo}?thumb=1").status_code == 200

    detail = phone.get(f"/h5/staff/work-orders/{wo_id}").get_data(as_text=True)
    assert "本次有偿服务收费 ¥80.00" in detail and "客户签字（必填）" in detail
    r = phone.post(f"{base}/complete", json={"summary": "已修复"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "signature_required"
    assert db.session.get(WorkOrder, wo_id).status == "in_progress"
    sig = phone.post("/h5/api/staff/uploads", data={"purpose": "signature", "file": (io.BytesIO(_png()), "s.png")},
                     content_type="multipart/form-data").get_json()["id"]
    r = phone.post(f"{base}/complete", json={"summary": "已修复", "share_with_customer": True,
                                             "signature": {"media_id": sig, "signer_name": "陈建国"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "completed" and r.get_json()["signatures"][0]["media_id"] == sig
    done = cust.get(f"/h5/api/tickets/{tid}").get_json()
    assert done["status"] == "completed" and done["can_rate"]
    assert any("请为本次服务评分" in t for t in _notices("oWbCust0001"))  # the rating invitation
    # the dispatcher sees the signature on the work order (the console and the API read the same record)
    dispatcher = staff(client, "service.dispatcher")
    assert client.get(f"/api/v1/media/{sig}", headers=dispatcher).status_code == 200
    assert "已完成" in phone.get("/h5/staff/work-orders?tab=done").get_data(as_text=True)


def test_an_arrival_far_from_the_site_is_recorded_and_flagged(demo, client):
    _cust, tid, wo_id = dispatched(demo, client, "oWbCust0002")
    phone = staff_phone(demo, "oWbEng00002")
    r = phone.post(f"/h5/api/staff/work-orders/{wo_id}/arrival", json={"lat": 30.30, "lng": 120.20, "accuracy_m": 20})
    assert r.status_code == 201
    assert "out_of_range" in r.get_json()["checkin"]["flags"]
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid, TicketEvent.kind == "arrival")).one()
    assert "超出签到范围" in event.note and event.public_note == "工程师已到达现场"  # the customer is not told the distance


def test_only_the_engineers_of_a_work_order_act_on_it_and_only_staff_reach_the_workbench(demo, client):
    _cust, _tid, wo_id = dispatched(demo, client, "oWbCust0003")
    other = staff_phone(demo, "oWbEng00003", "service.engineer2")
    r = other.post(f"/h5/api/staff/work-orders/{wo_id}/accept", json={})
    assert r.status_code in (403, 404)
    assert db.session.get(WorkOrder, wo_id).accepted_at is None
    stranger = staff_phone(demo, "oWbStranger1", None)
    assert 'id="bind-btn"' in stranger.get("/h5/staff/work-orders").get_data(as_text=True)
    r = stranger.post(f"/h5/api/staff/work-orders/{wo_id}/accept", json={})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "staff_login_required"
    wrong = staff_phone(demo, "oWbEng00004", None).post("/h5/api/staff/bind", json={"username": "service.engineer", "password": "x"})
    assert wrong.status_code == 401


def test_the_list_splits_today_upcoming_and_done_and_the_workbench_counts_them(demo, client):
    from datetime import timedelta

    from crm_core.clock import utcnow

    cust = customer_session(demo, "oWbCust0004", "13905710001")
    dispatcher = staff(client, "service.dispatcher")
    later = (utcnow() + timedelta(days=3)).replace(microsecond=0).isoformat() + "Z"
    ids = []
    for planned in (None, later):
        tid = new_ticket(cust, kind="repair", description=f"预约 {planned}", product_archive_id=_archive(cust))
        body = {"engineer_ids": [engineer_id()], **({"planned_at": planned} if planned else {})}
        ids.append(client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json=body).get_json()["id"])
    phone = staff_phone(demo, "oWbEng00005")
    today = phone.get("/h5/staff/work-orders?tab=today").get_data(as_text=True)
    upcoming = phone.get("/h5/staff/work-orders?tab=upcoming").get_data(as_text=True)
    assert f'id="wo-{ids[0]}"' in today and f'id="wo-{ids[1]}"' not in today
    assert f'id="wo-{ids[1]}"' in upcoming and "预约 " in upcoming
    home = phone.get("/h5/staff/").get_data(as_text=True)
    assert re.search(r'id="entry-today".*?weui-badge">1<', home, re.S)


def test_the_dispatch_notice_opens_the_work_order_on_the_phone(demo):
    from wxapp.official_account.channels import staff_link

    with demo.test_request_context():
        assert staff_link({"kind": "work_order_assigned", "work_order_id": 7}).endswith("/h5/staff/work-orders/7")
        assert staff_link({"kind": "activity_due", "activity_id": 3}) is None


def test_pages_css_and_js_go_compressed_and_json_does_not(demo):
    import gzip

    phone = staff_phone(demo, "oWbEng00009")
    page = phone.get("/h5/staff/", headers={"Accept-Encoding": "gzip"})
    assert page.headers.get("Content-Encoding") == "gzip" and b"weui-cells" in gzip.decompress(page.get_data())
    assert len(page.get_data()) < 25 * 1024  # the inlined WeUI subset included (bench/staff_pages.py measures it)
    js = phone.get("/static/vendor/signature_pad-5.1.4/signature_pad.umd.min.js", headers={"Accept-Encoding": "gzip, br"})
    assert js.headers.get("Content-Encoding") in ("br", "deflate") and len(js.get_data()) < 8 * 1024
    api = phone.get("/h5/api/checkins/today", headers={"Accept-Encoding": "gzip"})
    assert api.status_code == 200 and "Content-Encoding" not in api.headers
