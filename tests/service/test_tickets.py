"""Tickets and work orders: ownership, the status machine, dispatch rules, SLA, jobs, reports."""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from crm_core.activities.models import Activity
from crm_core.clock import travel, utcnow
from crm_core.customers.models import Contact, Customer
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.service import tickets as svc
from crm_core.service.models import Rating, StockItem, Ticket, TicketEvent
from crm_core.wechat.models import Follower


@pytest.fixture
def demo(any_app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return any_app


def staff(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": "demo123456"})
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def customer_session(app, openid, phone=None):
    """A WeChat user's H5 session; with ``phone``, bound to the contact with that number."""
    from flask import g

    g.pop("csrf_token", None)  # the fixture's app context is shared by test requests; Flask-WTF caches the token in g
    c = app.test_client()
    page = c.get(f"/h5/dev-login?openid={openid}&next=/h5/service", follow_redirects=True).get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    c.environ_base["HTTP_X_CSRFTOKEN"] = csrf
    if phone:
        assert c.post("/h5/api/verify/start", json={"phone": phone}).status_code == 200
        code = c.application.test_client().get(f"/sandbox/sms?phone={phone}").get_json()["items"][0]["code"]
        assert c.post("/h5/api/verify/confirm", json={"phone": phone, "code": code}).status_code == 200
    return c


def new_ticket(c, **extra):
    body = {"kind": "complaint", "description": "安装师傅迟到两小时", **extra}
    r = c.post("/h5/api/tickets", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def engineer_id(name="郑强"):
    from crm_core.org.models import Employee

    return db.session.scalar(select(Employee.id).where(Employee.name == name))


def test_a_customer_reaches_only_their_own_tickets(demo):
    a = customer_session(demo, "oCustA00001", "13905710001")  # 陈建国, 西湖茶业
    b = customer_session(demo, "oCustB00001", "13905710003")  # 黄磊, 滨江智造
    mine = new_ticket(a)
    assert [t["id"] for t in b.get("/h5/api/tickets").get_json()["items"]] == []
    for method, path, body in [("GET", f"/h5/api/tickets/{mine}", None),
                               ("POST", f"/h5/api/tickets/{mine}/rating", {"score": 5}),
                               ("POST", f"/h5/api/tickets/{mine}/cancel", {"reason": "不要了"}),
                               ("POST", f"/h5/api/tickets/{mine}/reopen", {"reason": "再修"})]:
        r = b.open(path, method=method, json=body)
        assert r.status_code == 404, (path, r.get_json())
    # b cannot attach a's archive or a's photo either
    archive = a.get("/h5/api/products").get_json()["items"][0]["id"]
    r = b.post("/h5/api/tickets", json={"kind": "repair", "description": "坏了", "product_archive_id": archive})
    assert r.status_code == 404
    photo = a.post("/h5/api/photos", data={"file": (io.BytesIO(_jpeg()), "a.jpg")}, content_type="multipart/form-data").get_json()["id"]
    r = b.post("/h5/api/tickets", json={"kind": "complaint", "description": "x", "photo_ids": [photo]})
    assert r.status_code == 404
    assert b.get(f"/h5/api/photos/{photo}").status_code == 404
    assert db.session.scalar(select(func.count(Ticket.id))) == 1  # nothing partially saved
    # an unverified user cannot submit at all
    stranger = customer_session(demo, "oStranger01")
    r = stranger.post("/h5/api/tickets", json={"kind": "complaint", "description": "x"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "verification_required"


def _jpeg(size=(200, 150)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def test_uploads_that_are_too_large_or_not_images_are_refused(demo):
    from crm_core import media
    from crm_core.media import MediaFile

    a = customer_session(demo, "oCustA00002", "13905710001")
    r = a.post("/h5/api/photos", data={"file": (io.BytesIO(b"GIF89a" + b"\x00" * 20), "x.gif")}, content_type="multipart/form-data")
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["photo"] == "not_an_image"
    r = a.post("/h5/api/photos", data={"file": (io.BytesIO(b"\x89PNG" + b"0" * (media.MAX_IMAGE_BYTES + 1)), "x.png")},
               content_type="multipart/form-data")
    assert r.status_code == 413
    assert db.session.scalar(select(func.count(MediaFile.id))) == 0
    too_many = [a.post("/h5/api/photos", data={"file": (io.BytesIO(_jpeg()), "p.jpg")}, content_type="multipart/form-data")
                .get_json()["id"] for _ in range(10)]
    r = a.post("/h5/api/tickets", json={"kind": "complaint", "description": "x", "photo_ids": too_many})
    assert r.status_code == 422
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_rating_rules_once_only_own_only_completed_and_low_scores_get_a_follow_up(demo, client):
    a = customer_session(demo, "oCustA00003", "13905710001")
    tid = new_ticket(a)
    r = a.post(f"/h5/api/tickets/{tid}/rating", json={"score": 5})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_completed"
    dispatcher, eng = staff(client, "service.dispatcher"), staff(client, "service.engineer")
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"engineer_ids": [engineer_id()]}).get_json()
    done_too_early = client.post(f"/api/v1/work-orders/{wo['id']}/complete", headers=eng, json={})
    assert done_too_early.status_code == 409 and done_too_early.get_json()["error"]["code"] == "no_records"
    client.post(f"/api/v1/work-orders/{wo['id']}/records", headers=eng, json={"note": "电话致歉并上门"})
    assert client.post(f"/api/v1/work-orders/{wo['id']}/complete", headers=eng, json={}).status_code == 200
    for bad in ({"score": 0}, {"score": 6}, {"score": "five"}, {}):
        assert a.post(f"/h5/api/tickets/{tid}/rating", json=bad).status_code == 422
    assert a.post(f"/h5/api/tickets/{tid}/rating", json={"score": 2, "comment": "还是不满意"}).status_code == 201
    assert a.post(f"/h5/api/tickets/{tid}/rating", json={"score": 5}).status_code == 409
    assert db.session.scalar(select(func.count(Rating.id))) == 1
    follow_up = db.session.scalars(select(Activity).where(Activity.ticket_id == tid)).one()
    assert "低分回访" in follow_up.subject and follow_up.assignee_id == engineer_id("钱坤")  # the engineer's manager


def test_status_machine_refuses_illegal_moves_with_reasons(demo, client):
    a = customer_session(demo, "oCustA00004", "13905710001")
    tid = new_ticket(a)
    dispatcher = staff(client, "service.dispatcher")
    r = client.post(f"/api/v1/tickets/{tid}/close", headers=dispatcher)
    assert r.status_code == 409 and "待派工" in r.get_json()["error"]["message"]
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"engineer_ids": [engineer_id()]}).get_json()
    r = client.post(f"/api/v1/tickets/{tid}/complete", headers=dispatcher, json={"note": "已处理"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "open_work_orders"
    # undo the dispatch: back in the queue
    assert client.post(f"/api/v1/work-orders/{wo['id']}/undo", headers=dispatcher, json={}).status_code == 200
    t = client.get(f"/api/v1/tickets/{tid}", headers=dispatcher).get_json()
    assert t["status"] == "submitted" and t["handler"] is None
    # complete directly without a work order (e.g. answered on the phone)
    r = client.post(f"/api/v1/tickets/{tid}/complete", headers=dispatcher, json={"note": "电话沟通，已致歉"})
    assert r.status_code == 200 and r.get_json()["status"] == "completed"
    kinds = [e.to_status for e in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid)
                                                    .order_by(TicketEvent.id)) if e.to_status]
    assert kinds == ["submitted", "dispatched", "submitted", "completed"]
    r = a.post(f"/h5/api/tickets/{tid}/cancel", json={"reason": "算了"})
    assert r.status_code == 409 and "无法取消" in r.get_json()["error"]["message"]


def test_auto_close_after_n_days_and_reopen_within_the_grace_period(demo, client):
    a = customer_session(demo, "oCustA00005", "13905710001")
    dispatcher = staff(client, "service.dispatcher")
    first, second = new_ticket(a), new_ticket(a, description="第二个问题")
    for tid in (first, second):
        client.post(f"/api/v1/tickets/{tid}/complete", headers=dispatcher, json={"note": "已处理"})
    with travel(timedelta(days=3)):
        r = a.post(f"/h5/api/tickets/{first}/reopen", json={"reason": "又漏水了"})
        assert r.status_code == 200 and r.get_json()["status"] == "in_progress"
    with travel(timedelta(days=8)):
        assert svc.close_due() == 1
        db.session.commit()
        second_t = db.session.get(Ticket, second)
        assert second_t.status == "closed" and second_t.closed_automatically
        r = a.post(f"/h5/api/tickets/{second}/reopen", json={"reason": "晚了"})
        assert r.status_code == 409
    # no rating invitation went out for the automatic close
    invites = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "wechat_notice")).all()
    assert sum("关闭" in m.payload["text"] for m in invites) == 0


def test_waiting_for_parts_pauses_the_sla_clock_and_parts_are_checked_against_stock(demo, client):
    a = customer_session(demo, "oCustA00006", "13905710001")
    archive = a.get("/h5/api/products").get_json()["items"][0]["id"]
    tid = new_ticket(a, kind="repair", product_archive_id=archive)
    dispatcher, eng = staff(client, "service.dispatcher"), staff(client, "service.engineer")
    org_id = db.session.scalar(select(Customer.org_id))
    db.session.add(StockItem(org_id=org_id, code="P-1", name="密封圈", on_hand=1, reserved=0))
    db.session.commit()
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"auto": True}).get_json()
    assert wo["engineer"] == "郑强" and wo["auto_assigned"]  # the demo's only engineer with a login
    r = client.post(f"/api/v1/work-orders/{wo['id']}/records", headers=eng,
                    json={"note": "需要两个密封圈", "parts": [{"code": "P-1", "quantity": 2}]})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["parts"][0]["status"] == "short"
    t = client.get(f"/api/v1/tickets/{tid}", headers=dispatcher).get_json()
    assert t["status"] == "waiting_parts"
    with travel(timedelta(hours=30)):
        dispatcher = staff(client, "service.dispatcher")
        back = client.post(f"/api/v1/tickets/{tid}/status", headers=dispatcher, json={"status": "in_progress"})
        assert back.status_code == 200
        sla = back.get_json()["sla"]
    assert 29.9 <= sla["paused_h"] <= 30.1 and sla["resolution_h"] < 1


def _second_engineer():
    """赵磊 (a service engineer in the demo without a login) gets one, so two engineers share the work."""
    from crm_core.org.models import Employee, Organization
    from crm_core.org.organization import create_user

    org = db.session.scalars(select(Organization)).first()
    create_user(org, "service.zhao", "demo123456", ["engineer"], db.session.get(Employee, engineer_id("赵磊")))
    db.session.commit()


def test_auto_assignment_picks_the_engineer_with_least_open_work(demo, client):
    _second_engineer()
    a = customer_session(demo, "oCustA00007", "13905710001")
    dispatcher = staff(client, "service.dispatcher")
    busy = engineer_id("郑强")
    for _ in range(2):
        client.post(f"/api/v1/tickets/{new_ticket(a)}/dispatch", headers=dispatcher, json={"engineer_ids": [busy]})
    s = client.get("/api/v1/tickets/suggested-engineer", headers=dispatcher).get_json()
    assert s["suggested"]["name"] != "郑强"
    wo = client.post(f"/api/v1/tickets/{new_ticket(a)}/dispatch", headers=dispatcher, json={"auto": True}).get_json()
    assert wo["engineer"] == s["suggested"]["name"]
    # reassignment (转派) and collaborators
    r = client.post(f"/api/v1/work-orders/{wo['id']}/reassign", headers=dispatcher, json={"engineer_id": busy, "reason": "就近"})
    assert r.status_code == 200 and r.get_json()["engineer"] == "郑强"
    r = client.post(f"/api/v1/work-orders/{wo['id']}/collaborators", headers=dispatcher,
                    json={"employee_ids": [engineer_id("赵磊")]})
    assert [c["name"] for c in r.get_json()["collaborators"]] == ["赵磊"]


def test_engineers_see_only_their_work_and_customers_see_labels(demo, client):
    a = customer_session(demo, "oCustA00008", "13905710001")
    tid = new_ticket(a)
    eng = staff(client, "service.engineer")
    assert client.get(f"/api/v1/tickets/{tid}", headers=eng).status_code == 404  # not theirs yet
    dispatcher = staff(client, "service.dispatcher")
    client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"engineer_ids": [engineer_id()]})
    assert client.get(f"/api/v1/tickets/{tid}", headers=eng).status_code == 200
    sales = staff(client, "sales.zhang")
    assert client.get("/api/v1/tickets", headers=sales).status_code == 403
    detail = a.get(f"/h5/api/tickets/{tid}").get_json()
    assert detail["status_label"] == "已派工" and "sla" not in detail and "work_orders" not in detail


def test_reminders_reach_dispatcher_and_engineer_once(demo, client):
    a = customer_session(demo, "oCustA00009", "13905710001")
    tid = new_ticket(a, required_by=(utcnow() + timedelta(hours=3)).isoformat() + "Z")
    dispatcher = staff(client, "service.dispatcher")
    client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"engineer_ids": [engineer_id()]})
    with travel(timedelta(hours=2)):
        assert svc.remind_due() == 2
        assert svc.remind_due() == 0
    with travel(timedelta(hours=4)):
        assert svc.remind_due() == 2
    db.session.commit()
    kinds = sorted(m.payload["kind"] for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
                   if m.payload["kind"] in ("ticket_due", "ticket_overdue"))
    assert kinds == ["ticket_due", "ticket_due", "ticket_overdue", "ticket_overdue"]


def test_verification_codes_expire_lock_after_five_tries_and_are_rate_limited(demo):
    from crm_core.service import verification

    c = customer_session(demo, "oVerify0001")
    assert c.post("/h5/api/verify/start", json={"phone": "123"}).status_code == 422
    assert c.post("/h5/api/verify/start", json={"phone": "13905710001"}).status_code == 200
    r = c.post("/h5/api/verify/start", json={"phone": "13905710001"})
    assert r.status_code == 429
    for _ in range(verification.MAX_TRIES):
        assert c.post("/h5/api/verify/confirm", json={"phone": "13905710001", "code": "999999"}).status_code == 422
    code = demo.test_client().get("/sandbox/sms?phone=13905710001").get_json()["items"][0]["code"]
    r = c.post("/h5/api/verify/confirm", json={"phone": "13905710001", "code": code})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "too_many_attempts"
    with travel(timedelta(minutes=11)):
        c.post("/h5/api/verify/start", json={"phone": "13905710001"})
    with travel(timedelta(minutes=22)):
        r = c.post("/h5/api/verify/confirm", json={"phone": "13905710001", "code": "123456"})
        assert r.get_json()["error"]["code"] == "code_expired"
    assert db.session.scalars(select(Follower).where(Follower.openid == "oVerify0001", Follower.contact_id.is_not(None))).first() is None


def test_an_unknown_phone_becomes_a_contact_awaiting_review_on_the_pending_customer(demo):
    """Issue #14 item 7 (and #20's generated-name collision): no junk customer per phone; two strangers whose
    phones share the first three and last four digits both verify."""
    from crm_core.service.verification import PENDING_CUSTOMER_NAME

    c = customer_session(demo, "oNewPerson1", "13712345678")
    customer_session(demo, "oNewPerson2", "13799995678")  # same 137****5678 mask: no collision
    rows = db.session.scalars(select(Follower).where(Follower.openid.in_(["oNewPerson1", "oNewPerson2"]))).all()
    contacts = [db.session.get(Contact, f.contact_id) for f in rows]
    assert {ct.phone for ct in contacts} == {"13712345678", "13799995678"}
    assert len({ct.customer_id for ct in contacts}) == 1  # one holding customer
    holder = db.session.get(Customer, contacts[0].customer_id)
    assert holder.name == PENDING_CUSTOMER_NAME and holder.needs_review and not holder.trading
    assert db.session.scalar(select(func.count(Customer.id)).where(Customer.name.like("微信用户%"))) == 0
    assert c.get("/h5/api/products").get_json()["items"] == []


def test_a_customer_changes_the_bound_phone_and_staff_can_unbind(demo, client):
    c = customer_session(demo, "oRebind0001", "13700000001")  # a mistyped phone: bound to a pending contact
    code_for = lambda phone: c.application.test_client().get(f"/sandbox/sms?phone={phone}").get_json()["items"][0]["code"]  # noqa: E731
    assert "更换绑定的手机号" in c.get("/h5/service").get_data(as_text=True)
    assert "请验证新的手机号" in c.get("/h5/service?reverify=1").get_data(as_text=True)
    assert c.post("/h5/api/verify/start", json={"phone": "13905710001"}).status_code == 200
    r = c.post("/h5/api/verify/confirm", json={"phone": "13905710001", "code": code_for("13905710001")}).get_json()
    assert r["bound"] and r["name"] == "陈建国"  # now bound to the right contact
    f = db.session.scalars(select(Follower).where(Follower.openid == "oRebind0001")).one()
    assert db.session.get(Contact, f.contact_id).name == "陈建国"
    # the desk undoes a binding: the user must verify again
    resp = client.post("/api/v1/wechat/followers/oRebind0001/unbind", headers=staff(client, "service.dispatcher"))
    assert resp.status_code == 200 and resp.get_json()["contact_id"] is None
    assert c.post("/h5/api/tickets", json={"kind": "consultation", "description": "还能提交吗"}).status_code in (403, 409)


def test_service_reports_tracking_sla_calendar_and_csv(demo, client):
    a = customer_session(demo, "oCustA00010", "13905710001")
    tid = new_ticket(a)
    dispatcher, eng = staff(client, "service.dispatcher"), staff(client, "service.engineer")
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", headers=dispatcher, json={"engineer_ids": [engineer_id()]}).get_json()
    client.post(f"/api/v1/work-orders/{wo['id']}/records", headers=eng, json={"note": "上门", "minutes": 25})
    tracking = client.get("/api/v1/reports/service-tracking", headers=dispatcher).get_json()
    row = tracking["rows"][0]
    assert row["records"] == 1 and row["minutes_on_site"] == 25 and row["handler"] == "郑强" and row["first_response_h"] is not None
    csv = client.get("/api/v1/reports/service-tracking?format=csv", headers=dispatcher).get_data(as_text=True)
    assert csv.startswith("\ufeff单号,类型,状态") and row["number"] in csv
    sla = client.get("/api/v1/reports/sla", headers=dispatcher).get_json()
    assert sla["total"]["tickets"] == 1 and sla["rows"][0]["response_met"] == 1
    cal = client.get("/api/v1/reports/dispatch-calendar", headers=dispatcher).get_json()
    assert cal["engineers"][0]["engineer"] == "郑强"
    assert client.get("/api/v1/reports/satisfaction?format=csv", headers=dispatcher).status_code == 200
    assert client.get("/api/v1/reports/sla?date_from=2026-05-01&date_to=2026-01-01", headers=dispatcher).status_code == 422


def test_the_keyword_and_menu_answer_with_links(demo, client):
    from tests.wechat_helpers import message_xml, post, reply_text

    assert "/h5/service/new" in reply_text(post(client, message_xml("text", "oKeyword001", content="报修")))
    assert "/h5/service" in reply_text(post(client, message_xml("click", "oKeyword001", key="MENU_PROGRESS")))
    later = int(time.time()) + 5  # another click, not a retry of the first (same user, same second, same event)
    assert "/h5/service/products" in reply_text(post(client, message_xml("click", "oKeyword001", key="MENU_PRODUCTS",
                                                                         create_time=later)))



def test_the_customer_timeline_keeps_internal_notes_internal(demo, client):
    """Issue #14 item 4: dispatcher notes, 追加工单, parts shortages, engineers' notes, reassign reasons
    and staff cancel reasons stay internal; the customer sees labels and what staff chose to share."""
    c = customer_session(demo, "oAudience01", "13905710001")
    tid = new_ticket(c, kind="repair", description="净水器漏水", product_note="净水器")
    disp, eng = staff(client, "service.dispatcher"), staff(client, "service.engineer")
    wo = client.post(f"/api/v1/tickets/{tid}/dispatch", json={"engineer_ids": [engineer_id()], "note": "客户脾气急，优先"},
                     headers=disp).get_json()
    client.post(f"/api/v1/work-orders/{wo['id']}/records", json={"note": "内部：滤芯批次有问题", "parts": [{"code": "NOPE-1", "quantity": 1}]},
                headers=eng)
    client.post(f"/api/v1/work-orders/{wo['id']}/records", json={"note": "已为您更换密封圈", "share_with_customer": True},
                headers=eng)
    mine = c.get(f"/h5/api/tickets/{tid}").get_json()
    seen = " ".join(f"{e.get('label') or ''} {e.get('note') or ''} {e.get('by') or ''}" for e in mine["timeline"])
    for internal in ("客户脾气急", "派工给", "滤芯批次", "配件缺货", "NOPE-1", "service.dispatcher"):
        assert internal not in seen, (internal, mine["timeline"])
    assert "已为您更换密封圈" in seen and "已安排工程师 郑强" in seen
    # staff see everything, each entry marked
    full = client.get(f"/api/v1/tickets/{tid}", headers=disp).get_json()["timeline"]
    assert any(e["note"] and "客户脾气急" in e["note"] and e["public"] for e in full)  # public state, internal note
    assert any(e["note"] == "内部：滤芯批次有问题" and not e["public"] for e in full)
    # a staff cancel reason is internal unless shared, in the timeline and in the notice
    t2 = new_ticket(c, kind="suggestion", description="重复提交的建议")
    client.post(f"/api/v1/tickets/{t2}/cancel", json={"reason": "重复工单"}, headers=disp)
    seen2 = " ".join(f"{e.get('note') or ''}" for e in c.get(f"/h5/api/tickets/{t2}").get_json()["timeline"])
    assert "重复工单" not in seen2
    from crm_core.outbox import OutboxMessage

    texts = [m.payload.get("text", "") for m in db.session.scalars(select(OutboxMessage))]
    assert not any("重复工单" in t for t in texts)


def test_the_engineer_is_never_stuck(demo, client):
    """Issue #14 item 6: stock to use, resume from waiting, a summary-only completion, a duplicate cancelled,
    and a second engineer to hand over to."""
    from crm_core.service import work_orders

    disp, eng = staff(client, "service.dispatcher"), staff(client, "service.engineer")
    cust = client.get("/api/v1/customers", headers=disp).get_json()["items"][0]
    assert {e["name"] for e in client.get("/api/v1/tickets/suggested-engineer", headers=disp).get_json()["engineers"]} \
        >= {"郑强", "赵磊"}

    def ticket(desc):
        return client.post("/api/v1/tickets", json={"customer_id": cust["id"], "kind": "consultation", "description": desc},
                           headers=disp).get_json()["id"]

    # a part in stock is reserved and the ticket keeps going; a missing one makes it wait, visibly
    t1 = ticket("更换密封圈")
    wo = client.post(f"/api/v1/tickets/{t1}/dispatch", json={"engineer_ids": [engineer_id()]}, headers=disp).get_json()
    r = client.post(f"/api/v1/work-orders/{wo['id']}/records", json={"note": "更换", "parts": [{"code": "LY-SEAL-1", "quantity": 2}]},
                    headers=eng).get_json()
    assert r["parts"][0]["status"] == "reserved"
    assert client.get(f"/api/v1/tickets/{t1}", headers=disp).get_json()["status"] == "in_progress"
    client.post(f"/api/v1/work-orders/{wo['id']}/records", json={"note": "缺电机", "parts": [{"code": "NO-SUCH-PART", "quantity": 1}]},
                headers=eng)
    assert client.get(f"/api/v1/tickets/{t1}", headers=disp).get_json()["status"] == "waiting_parts"
    done = client.post(f"/api/v1/work-orders/{wo['id']}/complete", json={"summary": "配件到货后已修复"}, headers=eng)
    assert done.status_code == 200, done.get_json()
    assert client.get(f"/api/v1/tickets/{t1}", headers=disp).get_json()["status"] == "completed"

    # an empty work order: a summary completes it (and becomes its record); nothing at all is refused with a reason
    t2 = ticket("电话咨询滤芯")
    wo2 = client.post(f"/api/v1/tickets/{t2}/dispatch", json={"engineer_ids": [engineer_id()]}, headers=disp).get_json()
    bare = client.post(f"/api/v1/work-orders/{wo2['id']}/complete", json={}, headers=eng)
    assert bare.status_code == 409 and "处理总结" in bare.get_json()["error"]["message"]
    ok = client.post(f"/api/v1/work-orders/{wo2['id']}/complete", json={"summary": "电话告知客户更换周期"}, headers=eng).get_json()
    assert ok["status"] == "completed" and ok["records"][0]["note"] == "电话告知客户更换周期"

    # a duplicate work order (another engineer) is cancelled by the dispatcher; then the first completes the ticket
    t3 = ticket("重复派工")
    first = client.post(f"/api/v1/tickets/{t3}/dispatch", json={"engineer_ids": [engineer_id()]}, headers=disp).get_json()
    again = client.post(f"/api/v1/tickets/{t3}/dispatch", json={"engineer_ids": [engineer_id("赵磊")]}, headers=disp)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_dispatched"
    assert "郑强" in again.get_json()["error"]["message"] and "追加派工" in again.get_json()["error"]["message"]
    dup = client.post(f"/api/v1/tickets/{t3}/dispatch", json={"engineer_ids": [engineer_id("赵磊")], "append": True},
                      headers=disp).get_json()
    client.post(f"/api/v1/work-orders/{dup['id']}/records", json={"note": "到场"}, headers=staff(client, "service.engineer2"))
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor

    dispatcher = load_actor(db.session.scalars(select(User).where(User.username == "service.dispatcher")).one())
    work_orders.cancel_work_order(dispatcher, dup["id"], "重复派工")
    db.session.commit()
    client.post(f"/api/v1/work-orders/{first['id']}/records", json={"note": "处理完毕"}, headers=eng)
    assert client.post(f"/api/v1/work-orders/{first['id']}/complete", json={}, headers=eng).status_code == 200
    detail = client.get(f"/api/v1/tickets/{t3}", headers=disp).get_json()
    assert detail["status"] == "completed" and [w["status"] for w in detail["work_orders"]] == ["completed", "cancelled"]
