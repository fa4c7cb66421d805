"""Materials, QR previews, campaigns, pushes, share rules, intents and rankings."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from crm_core.clock import travel
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.sales.models import Lead
from crm_core.wechat.models import Follower
from materials.models import ShareNode, Visit

UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36"


@pytest.fixture
def demo(any_app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return any_app


def staff(client, username="marketing.wang"):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": "demo123456"})
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def material(client, h, **extra):
    r = client.post("/api/v1/materials", headers=h, json={"title": "新风系统 HV500 体验会", "summary": "免费体验",
                                                          "body_html": "<p>正文</p>", "publish": True, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def viewer(app, openid=None, ua=UA):
    from flask import g

    g.pop("csrf_token", None)  # the fixture's app context is shared by test requests (Flask-WTF caches in g)
    c = app.test_client()
    c.environ_base["HTTP_USER_AGENT"] = ua
    if openid:
        c.get(f"/h5/dev-login?openid={openid}")
    return c


def open_page(c, url, confirm=True):
    from flask import g

    g.pop("csrf_token", None)
    r = c.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:200]
    text = r.get_data(as_text=True)
    if confirm:
        v = json.loads(re.search(r'v: ("[^"]+")', text).group(1))
        code = re.search(r"/m/([A-Za-z0-9]+)", url).group(1)
        assert c.post(f"/m/{code}/seen", json={"v": v}).status_code == 200
    return text, json.loads(re.search(r'shareUrl = ("[^"]+")', text).group(1))



def test_qr_png_and_svg_are_cached_with_etag_and_304(demo, client):
    m = material(client, staff(client))
    r = client.get(f"/materials/{m['id']}/qr.png")
    assert r.status_code == 200 and r.mimetype == "image/png" and "max-age" in r.headers["Cache-Control"]
    img = Image.open(io.BytesIO(r.data))
    assert img.size[0] == img.size[1] >= 200
    etag = r.headers["ETag"]
    again = client.get(f"/materials/{m['id']}/qr.png", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    svg = client.get(f"/materials/{m['id']}/qr.svg")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    logo = client.get(f"/materials/{m['id']}/qr.png?logo=1")
    assert logo.headers["ETag"] != etag
    poster = Image.open(io.BytesIO(client.get(f"/materials/{m['id']}/poster.png").data))
    assert poster.size == (750, 1200)
    # the QR encodes the page URL (decoded by its content: the same URL gives the same image)
    assert client.get(f"/materials/{m['id']}/qr.png?c=1").headers["ETag"] != etag


def test_drafts_need_a_signed_preview_link_that_expires(demo, client):
    h = staff(client)
    m = material(client, h, publish=False)
    assert client.get(f"/m/{m['code']}").status_code == 404
    assert client.get(f"/materials/{m['id']}/qr.png").status_code == 404  # not public while a draft
    assert client.get(f"/materials/{m['id']}/qr.png", headers=h).status_code == 200  # staff may preview
    link = client.post(f"/api/v1/materials/{m['id']}/preview-link", headers=h).get_json()["url"]
    path = link.split("localhost", 1)[1]
    r = client.get(path)
    assert r.status_code == 200 and "预览版本" in r.get_data(as_text=True)
    assert client.get(path[:-3] + "abc").status_code == 404
    with travel(timedelta(days=8)):
        assert client.get(path).status_code == 404
    assert db.session.scalar(select(func.count(Visit.id))) == 0  # previews are not visits


def test_edits_keep_versions_and_the_body_is_sanitised(demo, client):
    h = staff(client)
    m = material(client, h, body_html='<p onclick="x()">hi</p><a href="javascript:alert(1)">x</a><iframe src="//evil"></iframe>')
    assert "onclick" not in m["body_html"] and "javascript:" not in m["body_html"] and "iframe" not in m["body_html"]
    client.patch(f"/api/v1/materials/{m['id']}", headers=h, json={"title": "新标题"})
    versions = client.get(f"/api/v1/materials/{m['id']}/versions", headers=h).get_json()["items"]
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["title"] == "新标题"


def test_forged_tokens_no_parent_no_cycles_and_qr_visits_are_tagged(demo, client):
    m = material(client, staff(client))
    a, b = viewer(demo, "oTreeA00001"), viewer(demo, "oTreeB00001")
    _, a_url = open_page(a, f"/m/{m['code']}?s=forgedtoken123")
    a_node = db.session.scalars(select(ShareNode).where(ShareNode.openid == "oTreeA00001")).one()
    assert a_node.parent_id is None
    _, b_url = open_page(b, a_url.split("localhost", 1)[1])
    b_node = db.session.scalars(select(ShareNode).where(ShareNode.openid == "oTreeB00001")).one()
    assert b_node.parent_id == a_node.id
    # A opens B's link later: A's node keeps no parent — a token can never make a cycle
    open_page(a, b_url.split("localhost", 1)[1] + "&src=qr")
    db.session.expire_all()
    assert db.session.get(ShareNode, a_node.id).parent_id is None
    assert db.session.scalars(select(Visit.source).where(Visit.node_id == a_node.id).order_by(Visit.id)).all() == ["link", "qr"]


def test_intent_form_validates_is_rate_limited_and_notifies_the_owner(demo, client):
    m = material(client, staff(client))
    c = viewer(demo, "oIntent0001")
    open_page(c, f"/m/{m['code']}")
    foreign = c.post(f"/m/{m['code']}/intents", json={"name": "王女士", "phone": "13712345678"},
                     headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 422 and foreign.get_json()["error"]["code"] == "bad_origin"
    assert c.post(f"/m/{m['code']}/intents", json={"name": "王", "phone": "12345"}).status_code == 422
    assert c.post(f"/m/{m['code']}/intents", json={"name": "", "phone": "13712345678"}).status_code == 422
    assert db.session.scalar(select(func.count(Lead.id)).where(Lead.source == "wechat_intent")) == 0
    ok = c.post(f"/m/{m['code']}/intents", json={"name": "王女士", "phone": "13712345678"})
    assert ok.status_code == 201
    codes = [c.post(f"/m/{m['code']}/intents", json={"name": "王女士", "phone": "13712345678"}).status_code for _ in range(6)]
    assert 429 in codes
    lead = db.session.get(Lead, ok.get_json()["lead_id"])
    notices = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff",
                                                            OutboxMessage.recipient == str(lead.owner_id))).all()
    assert any(n.payload["kind"] == "intent" for n in notices)


def test_an_employees_personal_link_roots_everything_downstream(demo, client):
    h = staff(client, "sales.zhang")
    mk = staff(client)
    m = material(client, mk)
    mine = client.post(f"/api/v1/materials/{m['id']}/my-link", headers=h, json={}).get_json()
    v = viewer(demo, "oFromZhang1")
    open_page(v, mine["url"].split("localhost", 1)[1])
    r = v.post(f"/m/{m['code']}/intents", json={"name": "赵先生", "phone": "13811112222"})
    lead = db.session.get(Lead, r.get_json()["lead_id"])
    from crm_core.org.models import Employee

    zhang = db.session.scalar(select(Employee.id).where(Employee.name == "张伟"))
    assert lead.owner_id == zhang and lead.attribution["first_touch"] == {"employee_id": zhang}
    ranking = client.get("/api/v1/marketing/top-sharers", headers=mk).get_json()["items"]
    assert ranking[0]["employee_id"] == zhang and ranking[0]["name"] == "张伟" and ranking[0]["leads"] == 1
    tree = client.get(f"/api/v1/materials/{m['id']}/share-tree", headers=mk).get_json()
    assert tree["roots"][0]["viewer"] == {"employee_id": zhang}


def test_a_raw_share_count_buys_no_place_in_the_ranking(demo, client):
    m = material(client, staff(client))
    spammer = viewer(demo, "oSpammer001")
    open_page(spammer, f"/m/{m['code']}")
    for _ in range(20):
        assert spammer.post(f"/m/{m['code']}/shares", json={"channel": "timeline"}).status_code == 201
    assert client.get("/api/v1/marketing/top-sharers", headers=staff(client)).get_json()["items"] == []


def test_push_goes_through_the_outbox_to_the_segment_and_the_follower_lists_it(demo, client):
    from crm_core.customers.models import Contact, Segment

    mk = staff(client)
    m = material(client, mk)
    contact = db.session.scalars(select(Contact).where(Contact.phone == "13905710001")).one()
    db.session.add(Follower(appid="wxtestappid000001", openid="oPushed0001", subscribed=True, subscribe_count=1,
                            contact_id=contact.id, customer_id=contact.customer_id))
    org_id = contact.org_id
    seg = Segment(org_id=org_id, name="西湖茶业", target="customer", match="all",
                  conditions=[{"field": "name", "op": "contains", "value": "西湖茶业"}])
    db.session.add(seg)
    db.session.commit()
    c = client.post("/api/v1/campaigns", headers=mk, json={"name": "体验会邀请", "segment_id": seg.id,
                                                          "material_ids": [m["id"]]}).get_json()
    r = client.post(f"/api/v1/campaigns/{c['id']}/push", headers=mk, json={"per_minute": 60})
    assert r.status_code == 200 and r.get_json() == {"queued": 1, "skipped_already_sent": 0, "members": 1, "not_bound": 0,
                                                     "not_following": 0, "never_followed": 0, "as_template": 1}
    assert client.post(f"/api/v1/campaigns/{c['id']}/push", headers=mk, json={}).get_json()["queued"] == 0
    rec = client.get(f"/api/v1/campaigns/{c['id']}/recipients", headers=mk).get_json()
    assert rec["total"] == 1 and rec["items"][0]["openid"] == "oPushed0001" and rec["items"][0]["status"]
    from crm_core.outbox import OutboxMessage

    pushed = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "oPushed0001")).one().payload
    assert pushed["article"]["title"] == m["title"] and pushed["article"]["url"] == pushed["url"]  # a news card
    assert pushed["article"]["picurl"].endswith(("/cover.jpg", "/qr.png"))
    v = viewer(demo, "oPushed0001")
    items = v.get("/h5/api/campaigns").get_json()["items"]
    assert items[0]["campaign"] == "体验会邀请" and items[0]["url"].startswith(f"/m/{m['code']}?c=")
    assert v.get("/h5/api/campaigns?q=不存在").get_json()["items"] == []


def test_a_push_says_who_was_left_out_and_why(demo, client):
    """Issue #14 item 10: not "本次发送 0 人" without a reason."""
    from crm_core.clock import utcnow
    from crm_core.customers.models import Contact, Segment
    from materials.console import push_summary

    mk = staff(client)
    m = material(client, mk)
    contacts = db.session.scalars(select(Contact).order_by(Contact.id)).all()[:3]
    db.session.add(Follower(appid="wxtestappid000001", openid="oExplain001", subscribed=True, subscribe_count=1,
                            contact_id=contacts[0].id, customer_id=contacts[0].customer_id, last_interaction_at=utcnow(),
                            window_message_at=utcnow()))
    db.session.add(Follower(appid="wxtestappid000001", openid="oExplain002", subscribed=False, subscribe_count=1,
                            contact_id=contacts[1].id, customer_id=contacts[1].customer_id))
    seg = Segment(org_id=contacts[0].org_id, name="三位联系人", target="contact", match="any",
                  conditions=[{"field": "name", "op": "in", "value": [c.name for c in contacts]}])
    db.session.add(seg)
    db.session.commit()
    c = client.post("/api/v1/campaigns", headers=mk, json={"name": "说明测试", "segment_id": seg.id,
                                                          "material_ids": [m["id"]]}).get_json()
    r = client.post(f"/api/v1/campaigns/{c['id']}/push", headers=mk, json={}).get_json()
    assert r == {"queued": 1, "skipped_already_sent": 0, "members": 3, "not_bound": 1, "not_following": 1,
                 "never_followed": 0, "as_template": 0}, r
    text = push_summary(r)
    assert "本次发送 1 人" in text and "1 人未绑定微信" in text and "1 人已取消关注公众号" in text
    # someone bound on the web who never followed the account is not told "已取消关注"
    text = push_summary({**r, "not_following": 2, "never_followed": 1})
    assert "1 人从未关注公众号" in text and "1 人已取消关注公众号" in text


def test_the_public_page_has_open_graph_and_share_config(demo, client):
    m = material(client, staff(client))
    text, share_url = open_page(viewer(demo, "oOgViewer01"), f"/m/{m['code']}")
    assert 'property="og:title"' in text and 'property="og:image"' in text and "updateTimelineShareData" in text
    assert "s=" in share_url


def test_marketing_events_carry_cost_and_effect(demo, client):
    mk = staff(client)
    m = material(client, mk)
    ev = client.post("/api/v1/campaigns", headers=mk, json={"name": "杭州家居展", "kind": "exhibition", "material_ids": [m["id"]],
                                                           "budget": 20000, "actual_cost": 18000}).get_json()
    v = viewer(demo, "oExpoVisit1")
    open_page(v, f"/m/{m['code']}?c={ev['id']}&src=qr")
    v.post(f"/m/{m['code']}/intents?c={ev['id']}", json={"name": "展会客户", "phone": "13900001111"})
    stats = client.get(f"/api/v1/campaigns/{ev['id']}/stats", headers=mk).get_json()
    assert stats["leads"] == 1 and stats["cost_per_lead"] == 18000.0 and stats["qr_visits"] == 1
    csv = client.get(f"/api/v1/campaigns/{ev['id']}/top-sharers?format=csv", headers=mk)
    assert csv.mimetype == "text/csv"


def test_an_intent_matching_an_older_lead_is_a_new_touch_not_a_merge(demo, client):
    """The older lead keeps its name, campaign and first attribution; the new intent is kept
    beside it with its own campaign, sharer and the name typed this time (#14 item 9)."""
    mk = staff(client)
    m = material(client, mk)
    spring = client.post("/api/v1/campaigns", headers=mk, json={"name": "春季促销", "material_ids": [m["id"]]}).get_json()
    winter = client.post("/api/v1/campaigns", headers=mk, json={"name": "冬季促销", "material_ids": [m["id"]]}).get_json()
    first = viewer(demo, "oTouchA0001")
    open_page(first, f"/m/{m['code']}?c={spring['id']}")
    one = first.post(f"/m/{m['code']}/intents?c={spring['id']}", json={"name": "周先生", "phone": "13612340000"}).get_json()
    lead = db.session.get(Lead, one["lead_id"])
    before = dict(lead.attribution)
    again = viewer(demo, "oTouchB0001")
    open_page(again, f"/m/{m['code']}?c={winter['id']}")
    two = again.post(f"/m/{m['code']}/intents?c={winter['id']}",
                     json={"name": "周太太", "phone": "136 1234 0000", "product": "WP200"}).get_json()
    assert two["lead_id"] == lead.id and two["new"] is False
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert (lead.name, lead.campaign_id, lead.attribution) == ("周先生", spring["id"], before)
    touches = client.get(f"/api/v1/leads/{lead.id}", headers=staff(client, "admin")).get_json()["touches"]
    assert [(t["name"], t["campaign_id"]) for t in touches] == [("周先生", spring["id"]), ("周太太", winter["id"])]
    assert touches[1]["product_interest"] == "WP200" and touches[1]["attribution"]["campaign_id"] == winter["id"]
    # one lead, credited once, to the campaign that brought it
    assert client.get(f"/api/v1/campaigns/{spring['id']}/stats", headers=mk).get_json()["leads"] == 1
    assert db.session.scalar(select(func.count(Lead.id)).where(Lead.phone == "13612340000")) == 1


def test_a_salespersons_personal_code_scanned_replies_with_the_material_under_their_token(demo, client):
    from tests.wechat_helpers import message_xml, post, reply_text

    h = staff(client, "sales.zhang")
    m = material(client, staff(client))
    mine = client.post(f"/api/v1/materials/{m['id']}/my-link", headers=h, json={}).get_json()
    reply = reply_text(post(client, message_xml("follow", "oScanner001", scene=f"mkt_{mine['share_token']}")))
    assert f"/m/{m['code']}?s={mine['share_token']}" in reply and m["title"] in reply
    f = db.session.scalars(select(Follower).where(Follower.openid == "oScanner001")).one()
    assert f.scene == f"mkt_{mine['share_token']}"


def test_the_built_in_marketer_builds_the_segment_it_pushes_to(demo, client):
    """#16 item 4: the marketer's own role creates a segment over customers, sees its members (read-only, the whole
    organisation) and pushes a campaign to it; it still cannot change a customer."""
    mk = staff(client)
    seg = client.post("/api/v1/segments", headers=mk, json={"name": "杭州茶业客户", "target": "customer",
                                                            "conditions": [{"field": "name", "op": "contains", "value": "茶业"}]})
    assert seg.status_code == 201, seg.get_json()
    members = client.get(f"/api/v1/segments/{seg.get_json()['id']}/members", headers=mk).get_json()
    assert [m["name"] for m in members["items"]] == ["杭州西湖茶业有限公司"]
    m = material(client, mk)
    c = client.post("/api/v1/campaigns", headers=mk, json={"name": "茶业客户回访", "segment_id": seg.get_json()["id"],
                                                          "material_ids": [m["id"]]})
    assert c.status_code == 201
    assert client.post(f"/api/v1/campaigns/{c.get_json()['id']}/push", headers=mk, json={}).get_json()["members"] == 1
    customer = members["items"][0]
    assert client.patch(f"/api/v1/customers/{customer['id']}", headers=mk, json={"note": "x"}).status_code == 403
