"""Running the official account without editing files (#17 items 5 and 6): auto-reply rules edited
through the API answer real callbacks, built-in rules switch off, and the menu editor checks
WeChat's limits before it pushes to the sandbox and keeps the history."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import token_for
from tests.wechat_helpers import message_xml, post, reply_text


@pytest.fixture
def live(live_app):
    """The demo over real HTTP, playing WeChat with its own sandbox."""
    app = live_app.app
    app.config["WECHAT_API_BASE"] = live_app.url + "/sandbox/wechat/"
    app.config["PUBLIC_BASE_URL"] = live_app.url
    return app


def test_keyword_welcome_and_default_rules_answer_callbacks(live):
    client = live.test_client()
    h = token_for(client, "marketing.wang", "demo123456")  # the marketer runs the account
    r = client.post("/api/v1/wechat/auto-replies", headers=h, json={
        "kind": "keyword", "match": "contains", "pattern": "营业时间", "reply": "营业时间：周一至周六 9:00-18:00"})
    assert r.status_code == 201, r.get_json()
    exact = client.post("/api/v1/wechat/auto-replies", headers=h, json={
        "kind": "keyword", "match": "exact", "pattern": "地址", "reply": "杭州市西湖区文三路 90 号"}).get_json()
    client.post("/api/v1/wechat/auto-replies", headers=h, json={"kind": "default", "reply": "收到，客服稍后回复您。"})
    client.post("/api/v1/wechat/auto-replies", headers=h, json={"kind": "subscribe", "reply": "欢迎关注蓝云！"})

    assert reply_text(post(client, message_xml("text", "oRule0001", content="请问你们营业时间是？"))) == "营业时间：周一至周六 9:00-18:00"
    assert reply_text(post(client, message_xml("text", "oRule0001", content=" 地址 "))) == "杭州市西湖区文三路 90 号"
    assert reply_text(post(client, message_xml("text", "oRule0001", content="你们地址在哪"))) == "收到，客服稍后回复您。"
    assert reply_text(post(client, message_xml("follow", "oRule0002"))) == "欢迎关注蓝云！"
    assert "在线提交" in reply_text(post(client, message_xml("text", "oRule0001", content="报修")))  # built-in still there
    assert "人工客服" in reply_text(post(client, message_xml("text", "oRule0001", content="人工客服")))  # 50 beats 90

    # a second default changes the first; a rule can be switched off and edited
    client.post("/api/v1/wechat/auto-replies", headers=h, json={"kind": "default", "reply": "您好，已收到。"})
    items = client.get("/api/v1/wechat/auto-replies", headers=h).get_json()["items"]
    assert [i["reply"] for i in items if i["kind"] == "default"] == ["您好，已收到。"]
    r = client.put(f"/api/v1/wechat/auto-replies/{exact['id']}", headers=h, json={
        "kind": "keyword", "match": "exact", "pattern": "地址", "reply": "新地址", "enabled": False})
    assert r.status_code == 200 and r.get_json()["enabled"] is False
    assert reply_text(post(client, message_xml("text", "oRule0001", content="地址"))) == "您好，已收到。"
    tried = client.post("/api/v1/wechat/auto-replies/try", headers=h, json={"text": "营业时间"}).get_json()
    assert tried["label"] == "自定义关键词回复" and tried["reply"].startswith("营业时间")
    assert client.delete(f"/api/v1/wechat/auto-replies/{exact['id']}", headers=h).status_code == 204


def test_built_in_rules_switch_off_and_on(live):
    client = live.test_client()
    h = token_for(client, "admin", "demo123456")
    names = [b["name"] for b in client.get("/api/v1/wechat/auto-replies", headers=h).get_json()["builtin"]]
    assert {"self_service.keyword", "self_service.menu", "checkin.menu", "wechat.ask_for_agent"} <= set(names)
    r = client.put("/api/v1/wechat/auto-replies/builtin/self_service.keyword", headers=h, json={"enabled": False})
    assert r.status_code == 200 and r.get_json()["enabled"] is False
    from wxapp.official_account.router import router

    assert reply_text(post(client, message_xml("text", "oRule0003", content="报修"))) == router.default_text
    client.put("/api/v1/wechat/auto-replies/builtin/self_service.keyword", headers=h, json={"enabled": True})
    assert "在线提交" in reply_text(post(client, message_xml("text", "oRule0003", content="报修")))
    assert client.put("/api/v1/wechat/auto-replies/builtin/nope", headers=h, json={"enabled": False}).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"kind": "keyword", "match": "regex", "pattern": "(a+)+$", "reply": "x"}, "pattern"),  # catastrophic backtracking
    ({"kind": "keyword", "match": "regex", "pattern": "([", "reply": "x"}, "pattern"),
    ({"kind": "keyword", "match": "contains", "pattern": "   ", "reply": "x"}, "pattern"),
    ({"kind": "keyword", "match": "contains", "pattern": "好", "reply": "长" * 601}, "reply"),
])
def test_bad_rules_are_refused_in_chinese(live, body, field):
    client = live.test_client()
    h = token_for(client, "admin", "demo123456")
    r = client.post("/api/v1/wechat/auto-replies", headers=h, json=body)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"]) and (field in err["fields"] or "body" in str(err["fields"]))


def test_who_may_edit_the_account(live):
    client = live.test_client()
    sales = token_for(client, "sales.zhang", "demo123456")
    assert client.get("/api/v1/wechat/auto-replies", headers=sales).status_code == 403
    assert client.post("/api/v1/wechat/menu", headers=sales, json={"button": [{"type": "click", "name": "a", "key": "A"}]}).status_code == 403


def test_menu_push_history_and_wechat_limits(live):
    client = live.test_client()
    h = token_for(client, "marketing.wang", "demo123456")
    first = client.get("/api/v1/wechat/menu", headers=h).get_json()
    assert first["from_console"] is False and first["menu"]["button"][0]["name"] == "自助服务"  # menu.json
    menu = {"button": [{"name": "服务", "sub_button": [{"type": "click", "name": "在线报修", "key": "MENU_REPAIR"},
                                                       {"type": "view", "name": "官网", "url": "https://example.com/"}]},
                       {"type": "click", "name": "签到", "key": "MENU_CHECKIN"}]}
    r = client.post("/api/v1/wechat/menu", headers=h, json=menu)
    assert r.status_code == 201, r.get_json()
    got = client.get("/api/v1/wechat/menu", headers=h).get_json()
    assert got["from_console"] is True and got["menu"] == menu and got["history"][0]["pushed_by"] == "王芳"
    with live.app_context():  # the sandbox (WeChat) has it
        from wxapp.official_account.client import get_client

        assert get_client().menu.get()["menu"]["button"][0]["name"] == "服务"
        db.session.remove()

    bad = [({"button": [{"type": "click", "name": f"菜单{i}", "key": f"K{i}"} for i in range(4)]}, "最多 3 个"),
           ({"button": [{"name": "服务", "sub_button": [{"type": "click", "name": f"子{i}", "key": f"K{i}"} for i in range(6)]}]},
            "最多 5 个"),
           ({"button": [{"type": "click", "name": "五个汉字呀", "key": "K"}]}, "最多 4 个汉字"),
           ({"button": [{"type": "click", "name": "报修"}]}, "KEY"),
           ({"button": [{"type": "view", "name": "官网", "url": "javascript:alert(1)"}]}, "http"),
           ({"button": [{"type": "miniprogram", "name": "小程序", "url": "https://a.cn/", "appid": "x", "pagepath": "p"}]}, "AppID"),
           ({"button": [{"type": "bogus", "name": "怪", "key": "K"}]}, "类型")]
    for body, words in bad:
        r = client.post("/api/v1/wechat/menu", headers=h, json=body)
        assert r.status_code == 422 and words in r.get_json()["error"]["message"], (body, r.get_json())
    assert len(client.get("/api/v1/wechat/menu", headers=h).get_json()["history"]) == 1  # refused before WeChat


def test_a_menu_wechat_refuses_is_kept_in_the_history(live):
    client = live.test_client()
    h = token_for(client, "admin", "demo123456")
    live.test_client().post("/sandbox/inject", json={"api": "menu_create", "errcode": 40018, "times": 1})
    r = client.post("/api/v1/wechat/menu", headers=h, json={"button": [{"type": "click", "name": "签到", "key": "MENU_CHECKIN"}]})
    assert r.status_code == 422 and "微信拒绝" in r.get_json()["error"]["message"], r.get_json()
    hist = client.get("/api/v1/wechat/menu", headers=h).get_json()["history"]
    assert hist[0]["errcode"] == 40018 and hist[0]["error"], hist


def test_follower_tags_follow_wechats_rules_and_stay_in_step(live):
    client = live.test_client()
    h = token_for(client, "service.dispatcher", "demo123456")
    for i in range(3):
        post(client, message_xml("follow", f"oTag000{i}"))
    r = client.post("/api/v1/wechat/tags", headers=h, json={"name": "VIP客户"})
    assert r.status_code == 201, r.get_json()
    vip = r.get_json()
    assert vip["wechat_id"] >= 100  # WeChat's own id
    dup = client.post("/api/v1/wechat/tags", headers=h, json={"name": "VIP客户"})
    assert dup.status_code == 422 and "已存在" in dup.get_json()["error"]["message"]
    r = client.post(f"/api/v1/wechat/tags/{vip['id']}/members", headers=h, json={"openids": ["oTag0000", "oTag0001"]})
    assert r.status_code == 200 and r.get_json()["changed"] == 2
    listed = client.get(f"/api/v1/wechat/followers?tag_id={vip['id']}", headers=h).get_json()["items"]
    assert sorted(f["openid"] for f in listed) == ["oTag0000", "oTag0001"] and listed[0]["tags"] == ["VIP客户"]
    with live.app_context():  # WeChat has the same
        from wxapp.official_account.client import get_client

        assert get_client().tag.get_user_tag("oTag0000") == [vip["wechat_id"]]
        db.session.remove()
    unknown = client.post(f"/api/v1/wechat/tags/{vip['id']}/members", headers=h, json={"openids": ["oNobody"]})
    assert unknown.status_code == 422 and "不存在" in unknown.get_json()["error"]["message"]
    client.post(f"/api/v1/wechat/tags/{vip['id']}/members", headers=h, json={"openids": ["oTag0000"], "remove": True})
    assert client.get("/api/v1/wechat/tags", headers=h).get_json()["items"][0]["count"] == 1
    assert client.delete(f"/api/v1/wechat/tags/{vip['id']}", headers=h).status_code == 204
    with live.app_context():
        from wxapp.official_account.client import get_client

        assert get_client().tag.get() == []
        db.session.remove()
    assert client.post("/api/v1/wechat/tags", headers=token_for(client, "sales.zhang", "demo123456"),
                       json={"name": "x"}).status_code == 403


def test_the_sandbox_refuses_tags_as_wechat_does(live):
    with live.app_context():
        from wechatpy.exceptions import WeChatClientException

        from wxapp.official_account.client import get_client

        c = get_client()
        with pytest.raises(WeChatClientException) as too_long:
            c.tag.create("长" * 31)
        assert too_long.value.errcode == 45158
        tag = c.tag.create("批量")
        with pytest.raises(WeChatClientException) as many:
            c.tag.tag_user(tag["id"], [f"o{i}" for i in range(51)])
        assert many.value.errcode == 40032
        with pytest.raises(WeChatClientException) as sys_tag:
            c.tag.delete(2)
        assert sys_tag.value.errcode == 45058
        db.session.remove()
