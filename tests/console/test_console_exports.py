"""导出 from the console's lists (#16 item 2, "every list exports"): the page's filters go with the link, the file is
the JSON API's own export (same columns, data scope and permission, audited), in Excel or CSV."""
from __future__ import annotations

import csv
import io
import re

import pytest
from flask import g
from openpyxl import load_workbook

from crm_core.db import db
from tests.conftest import console_login


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def _link(html: str, label: str) -> str:
    return re.search(r'<a href="([^"]+)">' + label + "</a>", html).group(1).replace("&amp;", "&")


def test_console_lists_export_what_they_show(demo):
    c, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    page = c.get("/console/customers?q=杭州").get_data(as_text=True)
    shown = int(re.search(r"共 (\d+) 个", page).group(1))
    xlsx = _link(page, "Excel")
    assert "q=" in xlsx and "format=xlsx" in xlsx
    r = c.get(xlsx)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    rows = list(load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "客户名称" and len(rows) - 1 == shown and all("杭州" in (row[0] or "") or "杭州" in str(row) for row in rows[1:])
    from crm_core.audit import AuditEntry

    db.session.expire_all()
    assert db.session.query(AuditEntry).filter_by(action="export", object_type="customer").count() == 1  # audited
    everyone = c.get(_link(c.get("/console/customers").get_data(as_text=True), "CSV"))
    lines = list(csv.reader(io.StringIO(everyone.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(lines) - 1 > shown

    tickets = c.get("/console/service/tickets?status=all").get_data(as_text=True)
    assert "status=" not in _link(tickets, "Excel")  # 全部: no filter
    for name, header in (("quotes", "报价单号"), ("contracts", "合同号")):  # the money chain's lists too
        page = c.get(f"/console/{name}").get_data(as_text=True)
        r = c.get(_link(page, "CSV"))
        assert r.status_code == 200 and r.get_data(as_text=True).lstrip("\ufeff").startswith(header), name
    leads = c.get("/console/leads?status=new").get_data(as_text=True)
    assert "status=new" in _link(leads, "Excel") and c.get(_link(leads, "Excel")).status_code == 200


def test_a_salesperson_without_the_export_permission_gets_no_link_and_no_file(demo):
    c, _ = console_login(demo, "sales.zhang", "demo123456")
    g.pop("csrf_token", None)
    assert "导出" not in c.get("/console/customers").get_data(as_text=True)
    r = c.get("/console/exports/customers?format=xlsx")
    assert r.status_code == 403 and "没有权限" in r.get_data(as_text=True)
    assert c.get("/console/exports/nothing").status_code == 404


def test_the_marketer_exports_materials_and_campaigns(demo):
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from materials import services as msvc

    marketer = load_actor(db.session.query(User).filter_by(username="marketing.wang").one())
    m = msvc.create_material(marketer, {"title": "导出用素材", "body_html": "<p>正文</p>", "publish": True})
    msvc.create_campaign(marketer, {"name": "导出用方案", "kind": "exhibition", "material_ids": [m.id]})
    db.session.commit()
    c, _ = console_login(demo, "marketing.wang", "demo123456")
    g.pop("csrf_token", None)
    for page_url, first, expected in (("/console/marketing/materials", "标题", "导出用素材"),
                                      ("/console/marketing/campaigns", "名称", "导出用方案")):
        page = c.get(page_url).get_data(as_text=True)
        text = c.get(_link(page, "CSV")).get_data(as_text=True).lstrip("\ufeff")
        assert text.startswith(first) and expected in text, page_url
    assert "展会" in c.get(_link(c.get("/console/marketing/campaigns").get_data(as_text=True), "CSV")).get_data(as_text=True)


def _csv(c, page_html: str) -> list[list[str]]:
    r = c.get(_link(page_html, "CSV"))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))


def test_work_orders_followers_pool_and_outbox_export_with_local_times(demo):
    """The lists that had no 导出: 派工单 (the dispatcher's 全部派工单 and an engineer's own), 微信粉丝, 公海 and the
    outbox — and every time in a sheet is the organisation's (China) time, not UTC."""
    from crm_core.clock import local_str
    from crm_core.outbox import OutboxMessage
    from crm_core.wechat.models import Follower
    from tests.conftest import token_for

    api = demo.test_client()
    h = token_for(api, "service.dispatcher", "demo123456")
    customer = api.get("/api/v1/customers?q=杭州", headers=h).get_json()["items"][0]
    t = api.post("/api/v1/tickets", headers=h, json={"customer_id": customer["id"], "kind": "repair", "description": "导出测试：设备异响",
                                                   "product_note": "商用净水器"})
    assert t.status_code == 201, t.get_json()
    engineer = next(e for e in api.get("/api/v1/tickets/suggested-engineer", headers=h).get_json()["engineers"] if e["name"] == "郑强")
    wo = api.post(f"/api/v1/tickets/{t.get_json()['id']}/dispatch", headers=h, json={"engineer_ids": [engineer["id"]]})
    assert wo.status_code in (200, 201), wo.get_json()
    db.session.add(Follower(appid=demo.config["WECHAT_APPID"], openid="oExportFollower01", subscribed=True, scene="qrscene_expo",
                            first_scene="qrscene_expo", org_id=customer.get("org_id") or 1))
    db.session.commit()

    c, _ = console_login(demo, "service.dispatcher", "demo123456")
    g.pop("csrf_token", None)
    mine = c.get("/console/service/work-orders").get_data(as_text=True)
    assert "导出测试" not in mine and "全部派工单" in mine  # the dispatcher is nobody's engineer
    every = c.get("/console/service/work-orders?mine=0").get_data(as_text=True)
    assert "导出测试" in every and "郑强" in every
    rows = _csv(c, every)
    assert rows[0][:4] == ["派工单", "反馈单号", "类型", "状态"]
    row = next(r for r in rows[1:] if "导出测试" in r[rows[0].index("问题")])
    assert row[2:5] == ["报修", "待处理", customer["name"]] and row[rows[0].index("工程师")] == "郑强"

    engineer_c, _ = console_login(demo, "service.engineer", "demo123456")
    g.pop("csrf_token", None)
    own = engineer_c.get("/console/service/work-orders?mine=0").get_data(as_text=True)
    assert "导出测试" in own and "全部派工单" not in own and "导出：" not in own  # his own; no dispatch, no export right
    assert engineer_c.get("/console/exports/work-orders?format=csv&mine=false").status_code == 403

    admin, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    fans = _csv(admin, admin.get("/console/followers").get_data(as_text=True))
    assert fans[0][:3] == ["粉丝", "OpenID", "关注中"]
    assert any(r[1] == "oExportFollower01" and r[2] == "是" and r[4] == "qrscene_expo" for r in fans[1:])

    sent = _csv(admin, admin.get("/console/outbox").get_data(as_text=True))
    head = sent[0]
    notice = next(r for r in sent[1:] if r[head.index("接收人")] == "郑强")  # the engineer's dispatch notice, by name
    stored = db.session.get(OutboxMessage, int(notice[0]))
    assert notice[head.index("创建时间")] == local_str(stored.created_at, tz="Asia/Shanghai")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", notice[head.index("创建时间")])

    release = api.post(f"/api/v1/customers/{customer['id']}/release", headers=token_for(api, "admin", "demo123456"),
                       json={"reason": "导出测试退回"})
    assert release.status_code == 200, release.get_json()
    pool = _csv(admin, admin.get("/console/customer-pool").get_data(as_text=True))
    assert pool[0][0] == "客户名称" and any(r[0] == customer["name"] and "*" in r[3] for r in pool[1:])  # phone masked


def test_the_activities_list_filters_and_exports_what_it_shows(demo):
    c, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    page = c.get("/console/activities").get_data(as_text=True)
    total = int(re.search(r"共 (\d+) 条", page).group(1))
    assert total > 0 and "活动" in page
    done = c.get("/console/activities?status=done").get_data(as_text=True)
    shown = int(re.search(r"共 (\d+) 条", done).group(1))
    assert shown < total
    link = _link(done, "Excel")
    assert "status=done" in link
    rows = list(load_workbook(io.BytesIO(c.get(link).data)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("主题", "类型", "状态") and len(rows) - 1 == shown and {r[2] for r in rows[1:]} <= {"已完成"}
    assert c.get("/console/activities?status=bogus&assignee_id=²&date_from=yesterday&page=x").status_code == 200
    assert "活动" in c.get("/console/").get_data(as_text=True)  # in the menu


def _workbook(resp):
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet"), resp.status_code
    return list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))


def test_the_reports_download_as_excel_as_well_as_csv_with_their_range(demo):
    """服务报表 (tracking, satisfaction, SLA), 派工日程, 移动签到报表, 活动统计报表 and 销售报表 give an Excel workbook next to
    the CSV: the same headers and rows, the page's date range carried over, every row of the range (not a page)."""
    from datetime import date, timedelta

    from crm_core.service.models import Ticket

    api = demo.test_client()
    h = {"Authorization": "Bearer " + api.post("/api/v1/auth/token", json={"username": "service.dispatcher",
                                                                          "password": "demo123456"}).get_json()["access_token"]}
    cust = api.get("/api/v1/customers", headers=h).get_json()["items"][0]
    for i in range(52):  # more than the page's 50
        assert api.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "consultation",
                                                            "description": f"报表导出 {i}"}).status_code == 201
    c, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    d1 = date.today() + timedelta(days=1)
    d0 = d1 - timedelta(days=360)
    page = c.get(f"/console/service/reports?date_from={d0}&date_to={d1}").get_data(as_text=True)
    for name, header in (("tracking", "单号"), ("satisfaction", "维度"), ("sla", "类型")):
        box = re.search(rf'id="export-{name}">(.*?)</span>', page, re.S).group(1)
        xlsx, csv_link = _link(box, "Excel"), _link(box, "CSV")
        assert f"date_from={d0}" in xlsx and f"date_to={d1}" in xlsx
        rows = _workbook(c.get(xlsx))
        lines = list(csv.reader(io.StringIO(c.get(csv_link).get_data(as_text=True).lstrip("\ufeff"))))
        assert rows[0][0] == header and [str(v) for v in rows[0]] == lines[0], name
        assert len(rows) == len(lines), name
        if name == "tracking":
            assert len(rows) - 1 == db.session.query(Ticket).count() >= 52  # every ticket of the range, not the page's 50
    calendar = c.get("/console/service/calendar").get_data(as_text=True)
    assert _workbook(c.get(_link(re.search(r'id="export-dispatch-calendar">(.*?)</span>', calendar, re.S).group(1),
                                       "Excel")))[0][0] == "工程师"
    for path, header in (("/console/field/checkins", None), ("/console/field/activities", None),
                         ("/console/sales/reports?view=receivables", None)):
        html = c.get(path).get_data(as_text=True)
        link = _link(html, "Excel")
        rows = _workbook(c.get(path.split("?")[0] + link if link.startswith("?") else link))
        assert rows and all(rows[0]), path
        if header:
            assert rows[0][0] == header, (path, rows[0])


def test_employees_and_a_customers_product_archives_export(demo):
    """The org set-up's 员工 (for the administrator: department, main position, WeCom account, on staff or left) and a
    customer's 产品档案 from the 360 view (that customer's archives only) export like the other lists."""
    from crm_core.customers.models import Customer, ProductArchive
    from crm_core.org.models import Employee

    c, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    page = c.get("/console/org/setup").get_data(as_text=True)
    rows = _workbook(c.get(_link(re.search(r'id="export-employees">(.*?)</span>', page, re.S).group(1), "Excel")))
    assert rows[0] == ("工号", "姓名", "手机", "邮箱", "部门", "主岗位", "企业微信账号", "在职")
    assert len(rows) - 1 == db.session.query(Employee).count()
    zheng = next(r for r in rows if r[1] == "郑强")
    assert zheng[4] and zheng[5] and zheng[6] == "service.engineer" and zheng[7] == "是"

    archived = db.session.query(ProductArchive.customer_id).first()[0]
    name = db.session.get(Customer, archived).name
    page = c.get(f"/console/customers/{archived}").get_data(as_text=True)
    link = _link(re.search(r'id="export-product-archives">(.*?)</span>', page, re.S).group(1), "Excel")
    assert f"customer_id={archived}" in link
    rows = _workbook(c.get(link))
    assert rows[0][:3] == ("序列号", "产品", "客户") and len(rows) - 1 == db.session.query(ProductArchive).filter_by(
        customer_id=archived).count() > 0
    assert {r[2] for r in rows[1:]} == {name}


def test_work_plans_and_conversations_export_with_the_pages_filters(demo):
    """工作计划 (the plans the manager sees, their periods and review states in words) and 在线客服 (the conversations
    of the filter the page shows: 待接入) export like the other lists."""
    from tests.wechat_helpers import message_xml, post

    client = demo.test_client()
    for o in ("oExpConv001", "oExpConv002"):
        post(client, message_xml("text", o, content="你好"))
    post(client, message_xml("text", "oExpConv002", content="人工客服"))
    c, _ = console_login(demo, "admin", "demo123456")
    g.pop("csrf_token", None)
    page = c.get("/console/conversations?status=waiting").get_data(as_text=True)
    link = _link(re.search(r'id="export-conversations">(.*?)</span>', page, re.S).group(1), "Excel")
    assert "status=waiting" in link
    rows = _workbook(c.get(link))
    assert rows[0][:3] == ("粉丝", "openid", "状态") and [r[1] for r in rows[1:]] == ["oExpConv002"]
    assert rows[1][2] == "待接入"
    from crm_core.clock import local_today

    zhang = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "sales.zhang", "password": "demo123456"}).get_json()["access_token"]}
    day = local_today().isoformat()
    assert client.post("/api/v1/work-plans", headers=zhang, json={"period": "daily", "start_date": day, "end_date": day,
                                                                  "title": "拜访三家客户"}).status_code == 201
    g.pop("csrf_token", None)
    page = c.get("/console/plans").get_data(as_text=True)
    rows = _workbook(c.get(_link(re.search(r'id="export-work-plans">(.*?)</span>', page, re.S).group(1), "Excel")))
    assert rows[0][0] == "类型" and len(rows) > 1 and {r[0] for r in rows[1:]} <= {"日计划", "周计划", "月计划"}
    assert {r[8] for r in rows[1:]} <= {"未提交", "待批阅", "已批阅"} and "拜访三家客户" in {r[3] for r in rows[1:]}
    assert next(r for r in rows[1:] if r[3] == "拜访三家客户")[6] == "张伟"
