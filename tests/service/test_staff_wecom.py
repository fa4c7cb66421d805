"""企业微信 against the sandbox's WeCom: staff notices as app cards (and the official account as the fallback), what
the sandbox refuses as WeCom does, and WeCom OAuth (no member, a used code)."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from crm_core.db import db
from crm_core.org.models import Employee
from crm_core.outbox import OutboxMessage
from tests.conftest import LiveServer, _create_schema, _make_app
from tests.service.test_staff_workbench_browser import WECOM


@pytest.fixture
def wecom_app(tmp_path):
    from crm_core.demo import load_demo

    app = _make_app(f"sqlite:///{tmp_path}/wc.db", **WECOM)
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        with LiveServer(app) as server:
            app.config["WECOM_API_BASE"] = server.url + "/sandbox/wecom/cgi-bin/"
            app.config["PUBLIC_BASE_URL"] = server.url
            app.base = server.url
            yield app
        db.session.remove()


def _notify(app, employee_name: str) -> OutboxMessage:
    from crm_core import outbox

    emp = db.session.scalars(select(Employee).where(Employee.name == employee_name)).one()
    with app.test_request_context():
        msg = outbox.notify_staff(emp.id, "work_order_assigned", "新服务工单：测试", org_id=emp.org_id, work_order_id=7)
        db.session.commit()
        outbox.deliver(msg.id)
    db.session.expire_all()
    return db.session.get(OutboxMessage, msg.id)


def test_a_staff_notice_is_a_wecom_card_that_opens_its_page(wecom_app):
    msg = _notify(wecom_app, "郑强")
    assert msg.status == "sent" and msg.provider_message_id.startswith("SBXWMSG_")
    card = requests.get(f"{wecom_app.base}/sandbox/wecom/outbox?userid=service.engineer", timeout=5).json()["items"][0]
    assert card["payload"]["msgtype"] == "textcard" and card["payload"]["agentid"] == 1000002
    assert card["payload"]["textcard"]["url"].endswith("/h5/staff/work-orders/7")


def test_an_employee_without_a_wecom_account_gets_the_official_account_and_a_stranger_is_refused(wecom_app):
    emp = db.session.scalars(select(Employee).where(Employee.name == "赵磊")).one()
    emp.wecom_userid = None
    db.session.commit()
    msg = _notify(wecom_app, "赵磊")  # not bound on WeChat either: the log channel
    assert msg.status == "sent" and not (msg.provider_message_id or "").startswith("SBXWMSG_")
    from crm_core import outbox

    with wecom_app.test_request_context():
        from wxapp import wecom

        with pytest.raises(outbox.ChannelError) as refused:
            wecom.send_card("nobody.here", "工作提醒", "测试", None)
    assert "81013" in str(refused.value) and not refused.value.retryable


def test_the_sandbox_refuses_wrong_credentials_and_wecom_oauth_codes_work_once(wecom_app):
    base = wecom_app.base
    assert requests.get(f"{base}/sandbox/wecom/cgi-bin/gettoken?corpid=wrong&corpsecret=x", timeout=5).json()["errcode"] == 40013
    assert requests.get(f"{base}/sandbox/wecom/cgi-bin/gettoken?corpid={WECOM['WECOM_CORP_ID']}&corpsecret=x",
                        timeout=5).json()["errcode"] == 40001
    s = requests.Session()
    r = s.get(f"{base}/h5/wecom/start?next=/h5/staff/", allow_redirects=False, timeout=5)
    authorize = r.headers["Location"]
    assert "/sandbox/wecom/connect/oauth2/authorize?appid=" + WECOM["WECOM_CORP_ID"] in authorize and "agentid=1000002" in authorize
    back = s.get(authorize + "&userid=service.engineer", allow_redirects=False, timeout=5).headers["Location"]
    home = s.get(back, timeout=5)
    assert home.status_code == 200 and "郑强" in home.text and "今天的工单" in home.text
    again = s.get(back, timeout=5)  # the same callback again: the state is spent
    assert again.status_code == 400 and "登录链接已失效" in again.text
    stranger = requests.Session()
    r = stranger.get(f"{base}/h5/wecom/start?next=/h5/staff/", allow_redirects=False, timeout=5)
    back = stranger.get(r.headers["Location"] + "&userid=visitor.outside", allow_redirects=False, timeout=5).headers["Location"]
    refused = stranger.get(back, timeout=5)
    assert refused.status_code == 403 and "仅限本企业成员" in refused.text
    assert stranger.post(f"{base}/h5/api/staff/work-orders/1/accept", json={}, timeout=5).status_code in (400, 401)


def _cards(app, userid: str) -> list[dict]:
    return [m["payload"]["textcard"] for m in
            requests.get(f"{app.base}/sandbox/wecom/outbox?userid={userid}", timeout=5).json()["items"]]


def _deliver_staff_notices(app, kind: str) -> list[OutboxMessage]:
    from crm_core import outbox

    rows = [m for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
            if m.payload.get("kind") == kind]
    with app.test_request_context():
        for m in rows:
            outbox.deliver(m.id)
    db.session.expire_all()
    return [db.session.get(OutboxMessage, m.id) for m in rows]


def test_activity_warnings_and_a_follower_waiting_reach_staff_as_wecom_cards_that_open_their_pages(wecom_app):
    """Item 5's other notices inside WeCom: an activity about to start (and then overdue) reaches its salesperson, and a
    follower asking for a person while nobody is online reaches the agents who take conversations (else the
    dispatchers) — each a WeCom card whose link opens the record on the phone."""
    from datetime import timedelta

    from crm_core.activities.activities import activity_warnings
    from crm_core.clock import travel, utcnow
    from crm_core.wechat.models import AgentPresence, Conversation
    from tests.wechat_helpers import message_xml, post

    client = wecom_app.test_client()
    h = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "sales.zhang", "password": "demo123456"}).get_json()["access_token"]}
    start = utcnow() + timedelta(hours=2)
    act = client.post("/api/v1/activities", headers=h, json={
        "subject": "回访西湖茶业", "planned_start": start.isoformat() + "Z",
        "planned_end": (start + timedelta(hours=1)).isoformat() + "Z", "warn_before_minutes": 60}).get_json()
    with travel(timedelta(hours=1, minutes=1)):
        assert activity_warnings() == 1
        db.session.commit()
    [sent] = _deliver_staff_notices(wecom_app, "activity_start")
    assert sent.status == "sent" and sent.provider_message_id.startswith("SBXWMSG_")
    card = next(c for c in _cards(wecom_app, "sales.zhang") if "回访西湖茶业" in c["description"])
    assert "将于" in card["description"] and card["url"].endswith(f"/h5/staff/today#activity-{act['id']}"), card

    # 人工客服 with nobody online: the one agent who takes conversations (not online now) is told, not the dispatchers
    agent = db.session.scalars(select(Employee).where(Employee.wecom_userid == "service.engineer")).one()
    db.session.add(AgentPresence(employee_id=agent.id, org_id=agent.org_id, accepting=True,
                                 last_seen_at=utcnow() - timedelta(hours=2)))
    db.session.commit()
    post(client, message_xml("follow", "oWcDesk0001"))
    post(client, message_xml("text", "oWcDesk0001", content="人工客服"))
    conv = db.session.scalars(select(Conversation).where(Conversation.openid == "oWcDesk0001")).one()
    delivered = _deliver_staff_notices(wecom_app, "conversation_waiting")
    assert [m.recipient for m in delivered] == [str(agent.id)] and delivered[0].status == "sent"
    card = next(c for c in _cards(wecom_app, "service.engineer") if "请求人工客服" in c["description"])
    assert card["url"].endswith(f"/h5/staff/conversations/{conv.id}")
    assert not any("请求人工客服" in c["description"] for c in _cards(wecom_app, "service.dispatcher"))


def _wecom_sign_in(base, userid: str):
    s = requests.Session()
    r = s.get(f"{base}/h5/wecom/start?next=/h5/staff/", allow_redirects=False, timeout=5)
    back = s.get(r.headers["Location"] + f"&userid={userid}", allow_redirects=False, timeout=5).headers["Location"]
    return s, s.get(back, timeout=5)


def test_a_wecom_member_without_a_crm_user_is_told_to_ask_the_administrator(wecom_app):
    """Members of the company's WeCom the CRM cannot place: an employee whose CRM user is disabled, and one of another
    organisation carrying the same kind of UserID. Each is refused with 403 and what to do, and gets no staff page."""
    from crm_core.org.models import Organization, User
    from crm_core.org.organization import create_user, get_or_create_organization

    zhao = db.session.scalars(select(Employee).where(Employee.name == "赵磊")).one()
    for user in db.session.scalars(select(User).where(User.employee_id == zhao.id)):
        user.active = False
    other = get_or_create_organization("OTHERCO", "另一家公司")
    db.session.flush()
    stranger = Employee(org_id=other.id, code="E900", name="外单位职员", wecom_userid="other.member", active=True)
    db.session.add(stranger)
    db.session.flush()
    create_user(other, "other.member.user", "demo123456", [], stranger)  # a CRM user, elsewhere
    db.session.commit()
    assert db.session.get(Organization, other.id).code == "OTHERCO"
    for userid in (zhao.wecom_userid, "other.member"):
        session, page = _wecom_sign_in(wecom_app.base, userid)
        assert page.status_code == 403 and f"企业微信账号 {userid} 没有关联 CRM 职员" in page.text, userid
        assert "请联系管理员" in page.text
        assert session.get(f"{wecom_app.base}/h5/staff/", allow_redirects=False, timeout=5).status_code != 200
    session, page = _wecom_sign_in(wecom_app.base, "service.engineer")  # a member with a CRM user still signs in
    assert page.status_code == 200 and "郑强" in page.text


def test_inside_wecom_the_js_sdk_is_signed_for_the_company_and_without_wecom_set_up_the_browser_is_used(wecom_app, tmp_path):
    """wx.config inside 企业微信 (its user agent says wxwork next to MicroMessenger) is signed with the company's
    jsapi_ticket and CorpID, which the sandbox's WeCom client accepts; the official account's would be refused there.
    Inside WeCom with WeCom not configured, the pages do not load the JS-SDK (file input and browser location)."""
    from tests.service.test_staff_workbench_browser import WXWORK_UA

    page_url = f"{wecom_app.base}/h5/staff/work-orders/1"
    c = requests.get(f"{wecom_app.base}/h5/api/jssdk-config", params={"url": page_url + "#x"},
                     headers={"User-Agent": WXWORK_UA}, timeout=5).json()
    assert c["appId"] == WECOM["WECOM_CORP_ID"] and c["beta"] is True and "chooseImage" in c["jsApiList"]
    check = {k: c[k] for k in ("appId", "timestamp", "nonceStr", "signature")}
    ok = requests.post(f"{wecom_app.base}/sandbox/wecom/jssdk/config", json={**check, "url": page_url}, timeout=5).json()
    assert ok["errMsg"] == "config:ok"
    tampered = requests.post(f"{wecom_app.base}/sandbox/wecom/jssdk/config", timeout=5,
                             json={**check, "url": page_url + "?other=1"}).json()
    assert tampered["errMsg"] == "config:fail,invalid signature"  # signed for another page

    plain = _make_app(f"sqlite:///{tmp_path}/plain.db")  # no WECOM_* settings
    with plain.app_context(), plain.test_request_context(headers={"User-Agent": WXWORK_UA}):
        from wxapp.auth import jssdk_client

        assert jssdk_client() is None
    with plain.test_request_context(headers={"User-Agent": WXWORK_UA.replace("wxwork/4.1.20 ", "")}):
        assert jssdk_client() == "wechat"
