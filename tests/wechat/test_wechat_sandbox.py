"""The outbound side against the local WeChat sandbox over real HTTP: the locked token cache
shared by several processes, 40001 refresh, the 48-hour rule, QR codes, OAuth, JS-SDK,
the phone simulator, and `wxcrm simulate`."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from crm_core import outbox
from crm_core.clock import travel
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.wechat.models import SandboxRecord
from tests.conftest import LiveServer, _create_schema, _make_app
from tests.wechat_helpers import AES_KEY, APPID, TOKEN, message_xml, post, settle, tell_the_sandbox


@pytest.fixture
def live(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/live.db", WECHAT_AES_KEY=AES_KEY)
    with app.app_context():
        _create_schema()
        db.session.remove()
    with LiveServer(app) as server:
        app.config["WECHAT_API_BASE"] = server.url + "/sandbox/wechat/"
        app.config["PUBLIC_BASE_URL"] = server.url
        app.config["SERVER_NAME"] = None
        yield server


def calls(app, api):
    with app.app_context():
        n = db.session.scalar(db.select(db.func.count(SandboxRecord.id)).where(SandboxRecord.api == api))
        db.session.remove()
        return n


def _fetch_token(db_path: str, api_base: str, barrier, out):
    app = _make_app(f"sqlite:///{db_path}", WECHAT_API_BASE=api_base)
    with app.app_context():
        from wxapp.official_account.client import get_client

        barrier.wait(timeout=20)
        out.put(get_client().access_token)


def test_many_processes_with_no_token_cause_one_fetch(live, tmp_path):
    db_path = live.app.config["SQLALCHEMY_DATABASE_URI"].split("sqlite:///", 1)[1]
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_fetch_token, args=(db_path, live.url + "/sandbox/wechat/", barrier, out)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    tokens = {out.get(timeout=5) for _ in procs}
    assert len(tokens) == 1 and next(iter(tokens)).startswith("SBX_")
    assert calls(live.app, "token") == 1


def test_40001_refreshes_once_and_retries(live):
    app = live.app
    post(app.test_client(), message_xml("text", "oUser1", content="在吗"), aes=True)  # the user wrote: 5 replies allowed
    with app.app_context():
        from wxapp.official_account.client import get_client

        client = get_client()
        client.message.send_text("oUser1", "第一条")
        assert calls(app, "token") == 1
        app.test_client().post("/sandbox/inject", json={"api": "custom_send", "errcode": 40001, "times": 1})
        client.message.send_text("oUser1", "第二条")
        db.session.remove()
    assert calls(app, "token") == 2  # one refresh
    with app.app_context():
        codes = [r.errcode for r in db.session.scalars(db.select(SandboxRecord).where(SandboxRecord.api == "custom_send")
                                                       .order_by(SandboxRecord.id))]
        db.session.remove()
    assert codes == [0, 40001, 0]  # sent, refused with 40001, retried once with the new token


def test_customer_service_inside_48_hours_template_outside(live):
    app = live.app
    c = app.test_client()
    with app.app_context():
        post(c, message_xml("text", "oWindow1", content="你好"), aes=True)  # an interaction opens the window
        settle()
        from wxapp.official_account.channels import message_follower

        message_follower("oWindow1", "您的工单已派工", title="工单进度")
        db.session.commit()
        with travel(timedelta(hours=49)):
            message_follower("oWindow1", "您的工单已完成", title="工单进度")
            db.session.commit()
        rows = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.recipient == "oWindow1")
                                  .order_by(OutboxMessage.id)).all()
        assert [r.status for r in rows] == ["sent", "sent"]
        db.session.remove()
    delivered = c.get("/sandbox/outbox?openid=oWindow1").get_json()["items"]
    # inside the quota a customer-service message; 49 hours later straight the template, no refused call first
    assert [d["api"] for d in reversed(delivered)] == ["custom_send", "template_send"]
    assert [x["errcode"] for x in c.get("/sandbox/calls?api=custom_send").get_json()["items"]] == [0]


def test_45047_falls_back_to_the_template_and_errors_are_recorded(live):
    app = live.app
    c = app.test_client()
    with app.app_context():
        c.post("/sandbox/inject", json={"api": "custom_send", "errcode": 45047, "times": 1})
        post(c, message_xml("text", "oWindow2", content="你好"), aes=True)
        settle()
        from wxapp.official_account.channels import message_follower

        m = message_follower("oWindow2", "窗口已关闭的消息")
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(OutboxMessage, m.id).status == "sent"
        assert c.get("/sandbox/outbox?openid=oWindow2").get_json()["items"][0]["api"] == "template_send"
        # a permanent error on a template send fails without retries and shows its code
        c.post("/sandbox/inject", json={"api": "template_send", "errcode": 43004, "times": 1})
        m2 = outbox.queue_message("wechat_template", "oGone", {"template_id": "T", "data": {}})
        db.session.commit()
        db.session.expire_all()
        row = db.session.get(OutboxMessage, m2.id)
        assert row.status == "failed" and "43004" in row.last_error
        from tests.conftest import token_for
        from tests.factories import PASSWORD, make_team

        users = make_team()
        db.session.commit()
        items = c.get("/api/v1/wechat/outbox?openid=oGone", headers=token_for(c, users["admin"].username, PASSWORD)).get_json()
        assert items["items"][0]["errcode"] == 43004
        db.session.remove()


def test_qr_codes_check_limits_before_calling_wechat(live):
    from crm_core.errors import ValidationFailed
    from wxapp.official_account import qrcodes, router

    app = live.app
    router.claim_scene_prefix("qrtest_", lambda ib: None, owner="tests")
    try:
        with app.app_context():
            for scene, permanent, expire in [("qrtest_x", False, 2_592_001), (100_001, True, None), (0, True, None),
                                             ("qrtest_" + "x" * 60, False, 60), ("nobody_owns_this", False, 60)]:
                with pytest.raises(ValidationFailed):
                    qrcodes.create(scene, permanent, expire)
            assert calls(app, "qrcode_create") == 0
            code = qrcodes.create("qrtest_sales_7", False, 3600)
            assert code["ticket"].startswith("SBXQR_") and code["expire_seconds"] == 3600
            # the picture the product hands out is the sandbox's showqrcode in development, and it is a PNG
            assert code["image_url"].startswith(live.url + "/sandbox/wechat/cgi-bin/showqrcode?ticket=")
            import requests

            assert requests.get(code["image_url"], timeout=10).headers["Content-Type"] == "image/png"
            assert qrcodes.create(99_999, True)["permanent"] is True
            db.session.remove()
    finally:
        router.scene_prefixes.pop("qrtest_", None)
        router.rules = [r for r in router.rules if not r.name.startswith("scene:qrtest_")]


def test_oauth_flow_state_and_reused_code(live):
    import requests

    s = requests.Session()
    r = s.get(live.url + "/h5/oauth/start?next=/h5/", allow_redirects=False)
    authorize = r.headers["Location"]
    assert "/sandbox/oauth2/authorize" in authorize and "snsapi_base" in authorize
    r = s.get(authorize + "&openid=oOAuth0001", allow_redirects=False)
    callback_url = r.headers["Location"]
    r = s.get(callback_url, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/h5/")
    assert "已识别您的微信身份" in s.get(live.url + "/h5/").text
    # the page loads twice: the second callback with the same code is not an error page
    r = s.get(callback_url, allow_redirects=False)
    assert r.status_code == 302
    # a foreign state is refused for a fresh browser
    fresh = requests.Session()
    bad = fresh.get(callback_url, allow_redirects=False)
    assert bad.status_code == 400 and "页面已过期" in bad.text


def test_reused_code_without_a_session_starts_over_instead_of_an_error_page(live):
    import requests

    s = requests.Session()
    authorize = s.get(live.url + "/h5/oauth/start?next=/h5/", allow_redirects=False).headers["Location"]
    callback_url = s.get(authorize + "&openid=oOAuth0002", allow_redirects=False).headers["Location"]
    code = parse_qs(urlsplit(callback_url).query)["code"][0]
    used = requests.get(live.url + "/sandbox/wechat/sns/oauth2/access_token", params={
        "appid": APPID, "secret": "test-secret", "code": code, "grant_type": "authorization_code"}).json()
    assert used["openid"] == "oOAuth0002"  # someone else (a double-loaded page) used the code first
    r = s.get(callback_url, allow_redirects=False)
    assert r.status_code == 302 and "/h5/oauth/start" in r.headers["Location"]


def test_jssdk_config_signature(live):
    import requests

    r = requests.get(live.url + "/h5/api/jssdk-config", params={"url": "https://m.example.com/m/abc?x=1#frag"}).json()
    with live.app.app_context():
        ticket = db.session.scalars(db.select(SandboxRecord).where(SandboxRecord.api == "ticket")).one().payload["ticket"]
        db.session.remove()
    raw = f"jsapi_ticket={ticket}&noncestr={r['nonceStr']}&timestamp={r['timestamp']}&url=https://m.example.com/m/abc?x=1"
    assert r["signature"] == hashlib.sha1(raw.encode()).hexdigest()
    assert set(r["jsApiList"]) >= {"updateTimelineShareData", "updateAppMessageShareData", "getLocation", "chooseImage",
                                   "uploadImage"}
    requests.get(live.url + "/h5/api/jssdk-config", params={"url": "https://m.example.com/other"})
    assert calls(live.app, "ticket") == 1  # cached
    bad = requests.get(live.url + "/h5/api/jssdk-config", params={"url": "javascript:alert(1)"})
    assert bad.status_code == 422

    # what the WeChat client says of it (the sandbox's /sandbox/jssdk/config): only the signed URL of our domain passes
    page = live.url + "/h5/staff/?a=1"
    c = requests.get(live.url + "/h5/api/jssdk-config", params={"url": page + "#top"}).json()
    check = {"appId": c["appId"], "timestamp": c["timestamp"], "nonceStr": c["nonceStr"], "signature": c["signature"]}
    assert requests.post(live.url + "/sandbox/jssdk/config", json={**check, "url": page}).json()["errMsg"] == "config:ok"
    assert requests.post(live.url + "/sandbox/jssdk/config",
                         json={**check, "url": live.url + "/h5/staff/"}).json()["errMsg"] == "config:invalid signature"
    assert requests.post(live.url + "/sandbox/jssdk/config",
                         json={**check, "signature": "0" * 40, "url": page}).json()["errMsg"] == "config:invalid signature"
    assert requests.post(live.url + "/sandbox/jssdk/config",
                         json={**check, "url": "https://m.example.com/m/abc?x=1"}).json()["errMsg"] == "config:invalid url domain"
    assert requests.post(live.url + "/sandbox/jssdk/config",
                         json={**check, "appId": "wxsomeoneelse", "url": page}).json()["errMsg"] == "config:fail,invalid appid"


def test_profile_is_fetched_after_a_follow(live):
    import requests

    from wxapp.official_account.simulate import signed_request

    xml = message_xml("follow", "oProfile01")
    tell_the_sandbox(live.app, xml)
    q, body = signed_request(xml, TOKEN, aes_key=AES_KEY, appid=APPID)
    requests.post(f"{live.url}/wechat/callback?{q}", data=body)
    with live.app.app_context():
        from crm_core.wechat import followers
        from crm_core.wechat.models import Follower

        f = db.session.scalars(db.select(Follower).where(Follower.openid == "oProfile01")).one()
        # user/info has returned no nickname since 2021-12-27: the follower is named without one
        assert f.profile_fetched_at and f.nickname is None and f.subscribed
        assert followers.display_name(f) == "微信用户le01"
        db.session.remove()


def test_wxcrm_simulate_sends_signed_encrypted_callbacks(live, tmp_path):
    env = {**os.environ, "DATABASE_URL": live.app.config["SQLALCHEMY_DATABASE_URI"], "WECHAT_TOKEN": TOKEN,
           "WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID, "WXCRM_ENV": "development"}
    exe = os.path.join(os.path.dirname(sys.executable), "wxcrm")
    out = subprocess.run([exe, "simulate", "follow", "--openid", "oCli00001", "--url", live.url], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "欢迎关注" in out.stdout
    out = subprocess.run([exe, "simulate", "text", "--openid", "oCli00001", "--text", "你好", "--url", live.url], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "已收到" in out.stdout


def test_menu_push(live, tmp_path):
    env = {**os.environ, "DATABASE_URL": live.app.config["SQLALCHEMY_DATABASE_URI"], "WECHAT_TOKEN": TOKEN,
           "WECHAT_APPID": APPID, "WECHAT_API_BASE": live.url + "/sandbox/wechat/", "PUBLIC_BASE_URL": live.url,
           "WECHAT_SECRET": "test-secret", "WXCRM_ENV": "development"}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "wxcrm"), "wechat", "menu", "push"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    with live.app.app_context():
        menu = db.session.scalars(db.select(SandboxRecord).where(SandboxRecord.api == "menu_create")).one().payload
        db.session.remove()
    names = [s["name"] for b in menu["button"] for s in b.get("sub_button", [b])]
    assert {"在线报修", "服务进度", "我的产品", "签到"} <= set(names)
    assert menu["button"][2]["url"] == live.url + "/h5/"


def test_sandbox_is_absent_in_production_config(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/p.db", DEV_ROUTES=False)
    assert app.test_client().get("/sandbox/phone").status_code == 404
    assert app.test_client().get("/sandbox/wechat/cgi-bin/token").status_code == 404


def test_the_sandbox_refuses_customer_service_bodies_as_wechat_does(live):
    """custom/send checks the body before the quota: an unknown msgtype (40008), empty text (44004), an image media id
    it never issued (40007) or issued more than three days ago, news of two articles (45008) or without a link
    (47001). A well-formed image and a one-article card go through."""
    import requests

    app, base = live.app, live.url
    c = app.test_client()
    with app.app_context():
        post(c, message_xml("text", "oBodies1", content="在吗"), aes=True)  # the window opens
        settle()
        db.session.remove()
    def fresh_token():
        return requests.get(f"{base}/sandbox/wechat/cgi-bin/token?grant_type=client_credential&appid="
                            f"{app.config['WECHAT_APPID']}&secret={app.config['WECHAT_SECRET']}", timeout=5).json()["access_token"]

    token = fresh_token()

    def send(body, token=token):
        return requests.post(f"{base}/sandbox/wechat/cgi-bin/message/custom/send?access_token={token}",
                             json={"touser": "oBodies1", **body}, timeout=5).json()["errcode"]

    article = {"title": "说明书", "description": "", "url": f"{base}/m/x", "picurl": None}
    assert send({"msgtype": "sticker", "sticker": {}}) == 40008
    assert send({"msgtype": "text", "text": {"content": "  "}}) == 44004
    assert send({"msgtype": "image", "image": {"media_id": "NEVER_ISSUED"}}) == 40007
    assert send({"msgtype": "news", "news": {"articles": [article, article]}}) == 45008
    assert send({"msgtype": "news", "news": {"articles": [{**article, "url": ""}]}}) == 47001
    uploaded = requests.post(f"{base}/sandbox/wechat/cgi-bin/media/upload?access_token={token}&type=image",
                             files={"media": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")}, timeout=5).json()["media_id"]
    assert send({"msgtype": "image", "image": {"media_id": uploaded}}) == 0
    assert send({"msgtype": "news", "news": {"articles": [article]}}) == 0
    with travel(timedelta(days=3, minutes=1)):
        later = fresh_token()  # the first token has expired too
        assert send({"msgtype": "image", "image": {"media_id": uploaded}}, later) == 40007  # temporary media: three days


def test_a_campaign_notice_is_a_news_card_inside_the_window_and_a_template_with_its_link_outside(live):
    app = live.app
    c = app.test_client()
    article = {"title": "净水器以旧换新", "description": "旧机抵 300 元", "url": f"{live.url}/m/ABC?c=1", "picurl": None}
    with app.app_context():
        post(c, message_xml("text", "oNews0001", content="你好"), aes=True)
        settle()
        from crm_core import outbox

        for when in (timedelta(0), timedelta(hours=49)):
            with travel(when):
                outbox.queue_message("wechat_notice", "oNews0001", {"title": "以旧换新", "text": "净水器以旧换新",
                                                                    "url": article["url"], "article": article})
                db.session.commit()
        rows = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.recipient == "oNews0001")).all()
        assert [r.status for r in rows] == ["sent", "sent"]
        db.session.remove()
    delivered = list(reversed(c.get("/sandbox/outbox?openid=oNews0001").get_json()["items"]))
    assert [d["api"] for d in delivered] == ["custom_send", "template_send"]
    assert delivered[0]["payload"]["msgtype"] == "news"
    assert delivered[0]["payload"]["news"]["articles"][0]["title"] == "净水器以旧换新"
    assert delivered[1]["payload"]["url"] == article["url"]  # outside the window: the template opens the material
