"""WeChat as it really behaves (#15): dedup keys, the reply quotas, the errcode table, and a sandbox that says no."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_core import outbox
from crm_core.clock import travel, utcnow
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.wechat import followers
from crm_core.wechat.models import Follower, InboundMessage, SandboxRecord
from tests.wechat.callback_samples import SAMPLES, render
from tests.wechat.test_wechat_sandbox import live  # noqa: F401 (fixture)
from tests.wechat_helpers import APPID, message_xml, post, reply_text


def stored(openid: str) -> list[InboundMessage]:
    from wxapp.official_account import fastpath

    fastpath.flush_local()
    db.session.expire_all()
    return db.session.scalars(select(InboundMessage).where(InboundMessage.openid == openid).order_by(InboundMessage.id)).all()


def follower(openid: str) -> Follower:
    stored(openid)
    return db.session.scalars(select(Follower).where(Follower.openid == openid)).one()


# --- dedup ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,source,opens,body", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_documented_samples_retried_three_times_are_one_and_distinct_ones_are_two(client, name, source, opens, body):
    user, now = f"oSample{abs(hash(name)) % 10_000:04d}", int(time.time())
    first = render(body, user, now, 1_000_001)
    replies = [reply_text(post(client, first)) for _ in range(3)]  # WeChat's three deliveries
    assert len(set(replies)) == 1, replies  # every delivery gets the same answer
    assert len(stored(user)) == 1
    if "{n}" in body:  # a different message of the same kind in the same second is its own message
        post(client, render(body, user, now, 1_000_002))
        assert len(stored(user)) == 2, name


def test_two_menu_taps_in_one_second_get_their_own_replies(client):
    now = int(time.time())
    repair = reply_text(post(client, message_xml("click", "oTaps00001", key="MENU_REPAIR", create_time=now)))
    progress = reply_text(post(client, message_xml("click", "oTaps00001", key="MENU_PROGRESS", create_time=now)))
    assert "在线报修" in repair and "服务进度" in progress
    assert len(stored("oTaps00001")) == 2


def test_a_push_without_an_id_is_told_apart_by_its_content(client):
    now = int(time.time())

    def bare(text):
        return (f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[oNoId00001]]></FromUserName>"
                f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content></xml>")

    for _ in range(3):
        post(client, bare("第一条"))
    post(client, bare("第二条"))
    assert [r.summary["content"] for r in stored("oNoId00001")] == ["第一条", "第二条"]


def test_dedup_keys_stop_deduplicating_after_the_horizon_and_the_rows_stay(client, app):
    from wxapp.official_account.jobs import purge_dedup_keys

    post(client, message_xml("click", "oHorizon01", key="MENU_REPAIR"))
    assert stored("oHorizon01")[0].dedup_key
    with travel(timedelta(seconds=app.config["WECHAT_DEDUP_HORIZON_SECONDS"] + 60)):
        assert purge_dedup_keys() >= 1
    rows = stored("oHorizon01")
    assert len(rows) == 1 and rows[0].dedup_key is None and rows[0].event == "click"


# --- the reply window and its quotas ---------------------------------------------------------------
def _notices(app, openid: str, n: int, text: str = "工单进度") -> list[str]:
    from wxapp.official_account.channels import message_follower

    stored(openid)  # the callback's write-behind spool holds the user's last action for up to 200 ms

    for i in range(n):
        message_follower(openid, f"{text} {i + 1}")
        db.session.commit()
    delivered = app.test_client().get(f"/sandbox/outbox?openid={openid}").get_json()["items"]
    return [d["api"] for d in reversed(delivered)]


def _refused(app, api: str) -> list[int]:
    return [c["errcode"] for c in app.test_client().get(f"/sandbox/calls?api={api}").get_json()["items"] if c["errcode"]]


def test_the_sixth_message_after_one_user_message_goes_as_a_template(live):  # noqa: F811
    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("text", "oQuota0001", content="你好"), aes=True)
        assert _notices(app, "oQuota0001", 6) == ["custom_send"] * 5 + ["template_send"]
        assert _refused(app, "custom_send") == []  # no call WeChat refuses first
        db.session.remove()


def test_a_menu_tap_allows_three_within_a_minute(live):  # noqa: F811
    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("click", "oQuota0002", key="MENU_PROGRESS"), aes=True)
        assert _notices(app, "oQuota0002", 4) == ["custom_send"] * 3 + ["template_send"]
        assert followers.cs_quota(follower("oQuota0002"))["remaining"] == 0
        db.session.remove()


def test_a_customer_who_has_not_interacted_gets_the_template_at_once(live):  # noqa: F811
    """45015 in real WeChat: the follow was three days ago, so the notice is a template message,
    sent on its first attempt, with no refused customer-service call before it."""
    app = live.app
    with app.app_context():
        with travel(timedelta(days=-3)):
            post(app.test_client(), message_xml("follow", "oQuota0003"), aes=True)
        assert _notices(app, "oQuota0003", 1) == ["template_send"]
        row = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "oQuota0003")).one()
        assert (row.status, row.attempts) == ("sent", 1)
        assert _refused(app, "custom_send") == []
        db.session.remove()


def test_events_that_open_no_window_do_not_make_a_customer_service_message(live):  # noqa: F811
    app = live.app
    c = app.test_client()
    with app.app_context():
        with travel(timedelta(days=-3)):
            post(c, message_xml("follow", "oQuota0004"), aes=True)
        post(c, message_xml("location_event", "oQuota0004", lat=30.27, lng=120.15), aes=True)
        post(c, message_xml("view", "oQuota0004", url="http://example.invalid/h5/"), aes=True)
        for event in ("TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH", "view_miniprogram", "kf_close_session",
                      "subscribe_msg_sent_event", "user_authorization_revoke"):
            post(c, message_xml("raw_event", "oQuota0004", event=event, extra="<MsgID>1</MsgID>"), aes=True)
        assert followers.cs_quota(follower("oQuota0004"))["remaining"] == 0
        assert _notices(app, "oQuota0004", 1) == ["template_send"]
        db.session.remove()


def test_a_45015_or_45047_from_wechat_still_reaches_the_customer_as_a_template(live):  # noqa: F811
    app = live.app
    c = app.test_client()
    with app.app_context():
        post(c, message_xml("text", "oQuota0005", content="在吗"), aes=True)
        c.post("/sandbox/inject", json={"api": "custom_send", "errcode": 45015, "times": 1})
        c.post("/sandbox/inject", json={"api": "custom_send", "errcode": 45047, "times": 1})
        assert _notices(app, "oQuota0005", 3) == ["template_send", "template_send", "custom_send"]
        assert followers.cs_quota(follower("oQuota0005"))["remaining"] == 4  # refused calls used nothing
        db.session.remove()


# --- the errcode table -----------------------------------------------------------------------------------
def _send_template(app, openid: str, errcode: int | None = None):
    c = app.test_client()
    if errcode is not None:
        c.post("/sandbox/inject", json={"api": "template_send", "errcode": errcode, "times": 1})
    from wxapp.official_account.channels import template_for

    m = outbox.queue_message("wechat_template", openid, template_for("测试"), org_id=_org_id())
    db.session.commit()
    db.session.expire_all()
    return db.session.get(OutboxMessage, m.id)


def _org_id():
    from crm_core.org.models import Organization

    org = db.session.scalars(select(Organization)).first()
    if org is None:
        from tests.factories import make_team

        make_team()
        db.session.commit()
        org = db.session.scalars(select(Organization)).first()
    return org.id


def test_43004_marks_the_follower_unsubscribed_and_stops(live):  # noqa: F811
    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("follow", "oErr000001"), aes=True)
        row = _send_template(app, "oErr000001", 43004)
        assert row.status == "failed" and "43004" in row.last_error and row.attempts == 1
        assert follower("oErr000001").subscribed is False
        db.session.remove()


def test_40003_marks_the_openid_invalid_and_nothing_more_is_sent(live):  # noqa: F811
    app = live.app
    with app.app_context():
        row = _send_template(app, "oNeverSeen1")  # the sandbox never saw this openid: WeChat's 40003
        assert row.status == "failed" and "40003" in row.last_error
        f = follower("oNeverSeen1")
        assert f.invalid_at is not None and followers.cs_quota(f)["remaining"] == 0
        again = _send_template(app, "oNeverSeen1")
        assert again.status == "failed" and "不再发送" in again.last_error
        assert len(_refused(app, "template_send")) == 1  # WeChat was asked once
        db.session.remove()


def test_45009_waits_for_tomorrow_and_40037_tells_the_administrators(live):  # noqa: F811
    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("follow", "oErr000002"), aes=True)
        row = _send_template(app, "oErr000002", 45009)
        assert row.status == "pending" and row.attempts == 0 and "45009" in row.last_error
        beijing_next_day = (utcnow() + timedelta(hours=8)).date() + timedelta(days=1)
        assert (row.next_attempt_at + timedelta(hours=8)).date() == beijing_next_day
        failed = _send_template(app, "oErr000002", 40037)
        assert failed.status == "failed" and "40037" in failed.last_error
        alerts = db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff")).all()
        assert any(a.payload.get("kind") == "wechat_error" and "40037" in a.payload["text"] for a in alerts)
        retried = _send_template(app, "oErr000002", -1)
        assert retried.status == "pending" and retried.attempts == 1  # busy: retried with backoff
        db.session.remove()


# --- the sandbox says no, endpoint by endpoint ---------------------------------------------------------------
def _api(c, method, path, **kw):
    resp = getattr(c, method)("/sandbox/wechat/" + path, **kw)
    return resp.get_json() if resp.is_json else resp


def test_sandbox_token_checks_appid_secret_grant_and_expiry(live):  # noqa: F811
    c = live.app.test_client()
    good = {"grant_type": "client_credential", "appid": APPID, "secret": "test-secret"}
    for params, code in (({**good, "grant_type": "x"}, 40002), ({**good, "appid": ""}, 41002),
                         ({**good, "secret": ""}, 41004), ({**good, "appid": "wxother"}, 40013),
                         ({**good, "secret": "wrong"}, 40125)):
        out = _api(c, "get", "cgi-bin/token", query_string=params)
        assert out["errcode"] == code and " rid: " in out["errmsg"], (params, out)
    token = _api(c, "get", "cgi-bin/token", query_string=good)["access_token"]
    assert _api(c, "get", "cgi-bin/menu/get", query_string={})["errcode"] == 41001
    assert _api(c, "get", "cgi-bin/menu/get", query_string={"access_token": "nope"})["errcode"] == 40001
    with travel(timedelta(seconds=7201)):
        assert _api(c, "get", "cgi-bin/menu/get", query_string={"access_token": token})["errcode"] == 42001


def test_the_client_refreshes_an_expired_token_once_and_goes_on(live):  # noqa: F811
    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("text", "oExpire001", content="你好"), aes=True)
        from wxapp.official_account.client import get_client

        client = get_client()
        client.message.send_text("oExpire001", "第一条")
        stale = client.store.get(client.access_token_key)
        with travel(timedelta(seconds=7201)):  # the cached token outlived WeChat's (a clock skew, a long pause)
            client.store.set(client.access_token_key, stale, 3600)
            client.message.send_text("oExpire001", "第二条")
        codes = [r.errcode for r in db.session.scalars(select(SandboxRecord).where(SandboxRecord.api == "custom_send")
                                                       .order_by(SandboxRecord.id))]
        assert codes == [0, 42001, 0]
        db.session.remove()


def _token(c):
    return _api(c, "get", "cgi-bin/token", query_string={"grant_type": "client_credential", "appid": APPID,
                                                         "secret": "test-secret"})["access_token"]


def test_sandbox_menu_is_validated_and_can_be_read_and_deleted(live):  # noqa: F811
    c = live.app.test_client()
    q = {"access_token": _token(c)}
    assert _api(c, "get", "cgi-bin/menu/get", query_string=q)["errcode"] == 46003
    four = {"button": [{"type": "click", "name": f"菜单{i}", "key": f"K{i}"} for i in range(4)]}
    assert _api(c, "post", "cgi-bin/menu/create", query_string=q, json=four)["errcode"] == 40016
    long_name = {"button": [{"type": "click", "name": "一二三四五六", "key": "K"}]}  # 18 bytes > 16
    assert _api(c, "post", "cgi-bin/menu/create", query_string=q, json=long_name)["errcode"] == 40018
    bad_type = {"button": [{"type": "teleport", "name": "传送", "key": "K"}]}
    assert _api(c, "post", "cgi-bin/menu/create", query_string=q, json=bad_type)["errcode"] == 40017
    six_subs = {"button": [{"name": "服务", "sub_button": [{"type": "click", "name": f"子{i}", "key": f"S{i}"} for i in range(6)]}]}
    assert _api(c, "post", "cgi-bin/menu/create", query_string=q, json=six_subs)["errcode"] == 40016
    ok = {"button": [{"type": "click", "name": "签到", "key": "MENU_CHECKIN"}]}
    assert _api(c, "post", "cgi-bin/menu/create", query_string=q, json=ok)["errcode"] == 0
    assert _api(c, "get", "cgi-bin/menu/get", query_string=q)["menu"] == ok
    assert _api(c, "get", "cgi-bin/menu/delete", query_string=q)["errcode"] == 0
    assert _api(c, "get", "cgi-bin/menu/get", query_string=q)["errcode"] == 46003


def test_sandbox_qr_codes_have_wechats_defaults_and_a_real_image(live):  # noqa: F811
    from io import BytesIO

    from PIL import Image

    c = live.app.test_client()
    q = {"access_token": _token(c)}
    temp = _api(c, "post", "cgi-bin/qrcode/create", query_string=q,
                json={"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 7}}})
    assert temp["expire_seconds"] == 30  # left out: WeChat's default
    perm = _api(c, "post", "cgi-bin/qrcode/create", query_string=q,
                json={"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100000}}})
    assert "expire_seconds" not in perm
    over = _api(c, "post", "cgi-bin/qrcode/create", query_string=q,
                json={"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}})
    assert over["errcode"] == 40097
    img = c.get("/sandbox/wechat/cgi-bin/showqrcode", query_string={"ticket": perm["ticket"]})
    assert img.mimetype == "image/png" and Image.open(BytesIO(img.data)).size[0] > 50
    assert c.get("/sandbox/wechat/cgi-bin/showqrcode", query_string={"ticket": "forged"}).status_code == 404
    with travel(timedelta(seconds=31)):
        assert c.get("/sandbox/wechat/cgi-bin/showqrcode", query_string={"ticket": temp["ticket"]}).status_code == 404


def test_sandbox_knows_its_users_and_their_quotas(live):  # noqa: F811
    app = live.app
    c = app.test_client()
    q = {"access_token": _token(c)}
    assert _api(c, "get", "cgi-bin/user/info", query_string={**q, "openid": "oStranger1"})["errcode"] == 40003
    post(c, message_xml("follow", "oKnown0001", scene="mkt_abc"), aes=True)
    info = _api(c, "get", "cgi-bin/user/info", query_string={**q, "openid": "oKnown0001"})
    assert info["subscribe"] == 1 and info["subscribe_scene"] == "ADD_SCENE_QR_CODE" and info["qr_scene_str"] == "mkt_abc"
    assert "nickname" not in info and "headimgurl" not in info and info["subscribe_time"] > 0

    def custom(openid):
        return _api(c, "post", "cgi-bin/message/custom/send", query_string=q,
                    json={"touser": openid, "msgtype": "text", "text": {"content": "hi"}})["errcode"]

    assert custom("oStranger1") == 40003
    assert [custom("oKnown0001") for _ in range(4)] == [0, 0, 0, 45047]  # a follow allows 3 within a minute
    with travel(timedelta(minutes=2)):
        assert custom("oKnown0001") == 45015
    tpl = {"touser": "oKnown0001", "template_id": "TPL_SERVICE_NOTICE", "data": {}}
    assert _api(c, "post", "cgi-bin/message/template/send", query_string=q, json={**tpl, "template_id": "TPL_X"})["errcode"] == 40037
    post(c, message_xml("unfollow", "oKnown0001"), aes=True)
    assert _api(c, "post", "cgi-bin/message/template/send", query_string=q, json=tpl)["errcode"] == 43004
    assert _api(c, "get", "cgi-bin/user/info", query_string={**q, "openid": "oKnown0001"}) == {
        "subscribe": 0, "openid": "oKnown0001"}


def test_sandbox_pushes_templatesendjobfinish_back(live):  # noqa: F811
    app = live.app
    c = app.test_client()
    q = {"access_token": _token(c)}
    post(c, message_xml("follow", "oJobFin001"), aes=True)
    sent = _api(c, "post", "cgi-bin/message/template/send", query_string=q,
                json={"touser": "oJobFin001", "template_id": "TPL_SERVICE_NOTICE", "data": {}})
    assert sent["errcode"] == 0 and sent["msgid"]
    with app.app_context():
        for _ in range(50):
            events = [r for r in stored("oJobFin001") if r.event == "templatesendjobfinish"]
            if events:
                break
            time.sleep(0.1)
        assert len(events) == 1 and str(sent["msgid"]) in events[0].dedup_key
        db.session.remove()


def test_sandbox_media_upload_and_get_expire_after_three_days(live):  # noqa: F811
    from io import BytesIO

    c = live.app.test_client()
    q = {"access_token": _token(c)}
    up = c.post("/sandbox/wechat/cgi-bin/media/upload", query_string={**q, "type": "image"},
                data={"media": (BytesIO(b"\xff\xd8\xff fake jpeg"), "p.jpg", "image/jpeg")}).get_json()
    assert up["type"] == "image" and up["media_id"] and up["created_at"] > 0
    got = c.get("/sandbox/wechat/cgi-bin/media/get", query_string={**q, "media_id": up["media_id"]})
    assert got.data == b"\xff\xd8\xff fake jpeg" and 'filename="p.jpg"' in got.headers["Content-Disposition"]
    assert _api(c, "get", "cgi-bin/media/get", query_string={**q, "media_id": "nope"})["errcode"] == 40007
    with travel(timedelta(days=3, minutes=1)):
        q = {"access_token": _token(c)}
        assert _api(c, "get", "cgi-bin/media/get", query_string={**q, "media_id": up["media_id"]})["errcode"] == 40007


def test_sandbox_oauth_checks_domain_secret_code_and_token(live):  # noqa: F811
    from urllib.parse import parse_qs, urlsplit

    c = live.app.test_client()
    base = live.url
    far = c.get("/sandbox/oauth2/authorize", query_string={"appid": APPID, "redirect_uri": "https://evil.example/cb",
                                                          "scope": "snsapi_base", "openid": "oOAuthF001"})
    assert far.status_code == 400 and "10003" in far.get_data(as_text=True)
    go = c.get("/sandbox/oauth2/authorize", query_string={"appid": APPID, "redirect_uri": f"{base}/h5/oauth/callback",
                                                         "scope": "snsapi_base", "openid": "oOAuthF001"})
    code = parse_qs(urlsplit(go.headers["Location"]).query)["code"][0]
    creds = {"appid": APPID, "secret": "test-secret", "grant_type": "authorization_code"}
    assert _api(c, "get", "sns/oauth2/access_token", query_string={**creds, "secret": "x", "code": code})["errcode"] == 40125
    tok = _api(c, "get", "sns/oauth2/access_token", query_string={**creds, "code": code})
    assert tok["openid"] == "oOAuthF001" and tok["refresh_token"] and tok["scope"] == "snsapi_base"
    assert _api(c, "get", "sns/oauth2/access_token", query_string={**creds, "code": code})["errcode"] == 40163
    who = {"access_token": tok["access_token"], "openid": "oOAuthF001"}
    assert _api(c, "get", "sns/auth", query_string=who)["errcode"] == 0
    assert _api(c, "get", "sns/auth", query_string={**who, "access_token": "x"})["errcode"] == 40001
    assert _api(c, "get", "sns/userinfo", query_string=who)["errcode"] == 48001  # a snsapi_base token
    again = _api(c, "get", "sns/oauth2/refresh_token", query_string={"appid": APPID, "grant_type": "refresh_token",
                                                                   "refresh_token": tok["refresh_token"]})
    assert again["openid"] == "oOAuthF001" and again["access_token"] != tok["access_token"]


def test_a_call_whose_outcome_is_unknown_is_not_sent_twice(live):  # noqa: F811
    """#20 item 3: WeChat takes 6 s to answer (our client gives up at 5 s) but delivers; the
    notice is not resent, so the customer reads "已安排工程师" once."""
    app = live.app
    c = app.test_client()
    with app.app_context():
        post(c, message_xml("text", "oSlowWx001", content="你好"), aes=True)
        stored("oSlowWx001")
        c.post("/sandbox/inject", json={"api": "custom_send", "delay": 6, "times": 1})
        from wxapp.official_account.channels import message_follower

        m = message_follower("oSlowWx001", "已安排工程师 郑强 为您服务")
        db.session.commit()
        for _ in range(100):
            db.session.expire_all()
            row = db.session.get(OutboxMessage, m.id)
            if row.status not in ("pending", "sending"):
                break
            time.sleep(0.1)
        assert row.status == "failed" and "未自动重发" in row.last_error, (row.status, row.last_error)
        time.sleep(1.5)  # the sandbox finishes its slow answer: it did deliver
        outbox.sweep()
        delivered = c.get("/sandbox/outbox?openid=oSlowWx001").get_json()["items"]
        assert [d["api"] for d in delivered] == ["custom_send"]
        db.session.remove()


def test_template_job_finish_is_recorded_on_the_outbox_row(live):  # noqa: F811
    """TEMPLATESENDJOBFINISH (pushed back by the sandbox as by WeChat) tells whether the template
    reached the user; the row that sent it records it by msgid."""
    app = live.app
    with app.app_context():
        with travel(timedelta(days=-3)):
            post(app.test_client(), message_xml("follow", "oJobFin002"), aes=True)
        from wxapp.official_account.channels import message_follower

        m = message_follower("oJobFin002", "您的工单已完成")
        db.session.commit()
        for _ in range(50):
            db.session.expire_all()
            row = db.session.get(OutboxMessage, m.id)
            if row.provider_status:
                break
            time.sleep(0.1)
        assert row.status == "sent" and row.provider_message_id and row.provider_status == "success"
        db.session.remove()


def test_jobs_lost_with_the_queue_are_found_again(live):  # noqa: F811
    """#20 item 8: a follow whose profile job was lost (Redis died with it) is checked by the sweeper."""
    from wxapp.official_account.jobs import recover_lost_jobs

    app = live.app
    with app.app_context():
        post(app.test_client(), message_xml("follow", "oLostJob01"), aes=True)
        f = follower("oLostJob01")
        f.profile_fetched_at, f.subscribed_at = None, utcnow() - timedelta(minutes=3)  # as if its job never ran
        db.session.commit()
        assert recover_lost_jobs() >= 1
        from crm_core import jobs

        jobs.wait_idle()
        for _ in range(50):
            db.session.expire_all()
            if follower("oLostJob01").profile_fetched_at:
                break
            time.sleep(0.1)
        assert follower("oLostJob01").profile_fetched_at is not None
        db.session.remove()
