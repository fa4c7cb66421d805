"""今日计划, my team today, the reports and 批阅 on the phone (/h5/staff/today, /team, /reports, 待我审批): a
salesperson starts and finishes today's activities, writes and submits the daily plan; their manager sees who checked
in where and what is overdue, reads the reports, and 批阅s the plan from the notice."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_core import clock
from crm_core.activities.models import Activity, WorkPlan
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.org.models import Employee, User
from crm_core.outbox import OutboxMessage
from tests.sales.test_staff_workbench_sales import AT_WEST_LAKE
from tests.service.test_staff_workbench import staff_phone

CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def morning(app):
    """The demo, with the clock at 10:00 of today in Hangzhou (so "today" and "overdue" do not depend on when it runs)."""
    from crm_core.demo import load_demo

    now = datetime.now(CST)
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    with clock.travel(ten - now):
        load_demo()
        db.session.commit()
        yield app


def _utc(day_offset: int, hour: int) -> str:
    local = clock.to_local(clock.utcnow(), "Asia/Shanghai").replace(hour=hour, minute=0, second=0, microsecond=0)
    return (local + timedelta(days=day_offset)).astimezone(ZoneInfo("UTC")).isoformat()


def _employee(login: str) -> Employee:
    return db.session.scalars(select(Employee).join(User, User.employee_id == Employee.id).where(User.username == login)).one()


def _tea() -> Customer:
    return db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()


def test_the_salespersons_day_start_finish_and_the_plan_reviewed_by_the_manager(morning):
    zhang = staff_phone(morning, "oWbDay0001", "sales.zhang")
    r = zhang.post("/h5/api/staff/activities", json={"subject": "送样品到茶厂", "kind": "visit", "customer_id": _tea().id,
                                                     "planned_start": _utc(0, 14)})
    assert r.status_code == 201, r.get_json()
    today_id = r.get_json()["id"]
    late = zhang.post("/h5/api/staff/activities", json={"subject": "补交上周拜访报告", "kind": "task",
                                                        "planned_start": _utc(-1, 9), "planned_end": _utc(-1, 10)}).get_json()
    home = zhang.get("/h5/staff/").get_data(as_text=True)
    assert 'id="entry-today-plan"' in home and 'title="已超期">1<' in home
    page = zhang.get("/h5/staff/today").get_data(as_text=True)
    overdue, today = page.split('id="overdue"')[1].split('id="today"')
    assert "补交上周拜访报告" in overdue and "送样品到茶厂" in today.split("加入今天的计划")[0]
    assert "14:00" in today and "杭州西湖茶业有限公司" in today  # local time, with the customer
    assert zhang.post(f"/h5/api/staff/activities/{today_id}/status", json={"status": "in_progress"}).get_json()["status"] == "in_progress"
    r = zhang.post(f"/h5/api/staff/activities/{today_id}/status", json={"status": "done", "result": "样品已送到，客户下周试用"})
    assert r.status_code == 200 and r.get_json()["actual_end"]
    done = zhang.get("/h5/staff/today").get_data(as_text=True).split("今天已完成（1）")[1]
    assert "送样品到茶厂" in done and "样品已送到，客户下周试用" in done
    # finishing twice is refused with a reason, not a 500
    r = zhang.post(f"/h5/api/staff/activities/{today_id}/status", json={"status": "planned"})
    assert r.status_code == 409 and "已完成" in r.get_json()["error"]["message"]

    # the daily plan: the manager is the reviewer chosen by default
    sun = _employee("sales.manager")
    assert f'<option value="{sun.id}" selected>孙立</option>' in zhang.get("/h5/staff/today").get_data(as_text=True)
    day = clock.to_local(clock.utcnow(), "Asia/Shanghai").date().isoformat()
    plan = zhang.post("/h5/api/staff/plans", json={"period": "daily", "start_date": day, "end_date": day,
                                                   "title": "今日计划", "content": "拜访茶厂、滨江智造", "reviewer_id": sun.id})
    assert plan.status_code == 201, plan.get_json()
    plan_id = plan.get_json()["id"]
    zhang.post("/h5/api/staff/activities", json={"subject": "拜访滨江智造", "kind": "visit", "plan_id": plan_id,
                                                 "planned_start": _utc(0, 16)})
    page = zhang.get("/h5/staff/today").get_data(as_text=True)
    assert "计划内活动 1 项，已完成 0 项" in page and 'id="submit-plan"' in page
    r = zhang.post(f"/h5/api/staff/plans/{plan_id}/submit", json={"summary": "茶厂样品已送，滨江改到明天"})
    assert r.get_json()["review_status"] == "submitted"
    notice = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == str(sun.id),
                                                            OutboxMessage.payload["kind"].as_string() == "plan_submitted")).one()
    from wxapp.official_account.channels import staff_link

    with morning.test_request_context():
        assert staff_link(notice.payload).endswith(f"/h5/staff/approvals#plan-{plan_id}")

    manager = staff_phone(morning, "oWbDay0002", "sales.manager")
    assert 'id="entry-approvals"' in manager.get("/h5/staff/").get_data(as_text=True)
    box = manager.get("/h5/staff/approvals").get_data(as_text=True).split(f'id="plan-{plan_id}"')[1]
    assert "张伟" in box and "总结：茶厂样品已送，滨江改到明天" in box and "计划内活动 1 项，完成 0 项" in box
    assert manager.post(f"/h5/api/staff/plans/{plan_id}/review", json={"comment": ""}).status_code == 422
    r = manager.post(f"/h5/api/staff/plans/{plan_id}/review", json={"comment": "滨江那边明天务必落实"})
    assert r.status_code == 200 and r.get_json()["review_status"] == "reviewed"
    assert f'id="plan-{plan_id}"' not in manager.get("/h5/staff/approvals").get_data(as_text=True)
    page = zhang.get("/h5/staff/today").get_data(as_text=True)
    assert "已批阅" in page and "批阅意见：滨江那边明天务必落实" in page
    # only the chosen reviewer reviews
    li = staff_phone(morning, "oWbDay0003", "sales.li")
    assert li.post(f"/h5/api/staff/plans/{plan_id}/review", json={"comment": "x"}).status_code in (403, 404)
    assert db.session.get(WorkPlan, plan_id).review_comment == "滨江那边明天务必落实"
    assert db.session.get(Activity, late["id"]).status == "planned"


def test_the_manager_sees_who_checked_in_where_and_what_is_overdue_and_the_reports(morning, client):
    zhang = staff_phone(morning, "oWbDay0011", "sales.zhang")
    r = zhang.post("/h5/api/staff/visits", json={"customer_id": _tea().id, "kind": "visit", "result": "现场看了车间",
                                                 "checkin": AT_WEST_LAKE})
    assert r.status_code == 201, r.get_json()
    zhang.post("/h5/api/staff/activities", json={"subject": "整理茶厂需求", "kind": "task",
                                                 "planned_start": _utc(-2, 9), "planned_end": _utc(-2, 18)})
    li = staff_phone(morning, "oWbDay0012", "sales.li")
    li.post("/h5/api/staff/activities", json={"subject": "约钱塘物流开会", "kind": "call", "planned_start": _utc(0, 15)})

    manager = staff_phone(morning, "oWbDay0013", "sales.manager")
    assert 'id="entry-team"' in manager.get("/h5/staff/").get_data(as_text=True)
    page = manager.get("/h5/staff/team").get_data(as_text=True)
    zhang_box = page.split(f'id="person-{_employee("sales.zhang").id}"')[1].split('class="weui-cells person"')[0]
    assert "10:00 签到 · 杭州西湖茶业有限公司" in zhang_box and "正常" in zhang_box and "距客户" in zhang_box
    assert "超期</span> 整理茶厂需求" in zhang_box
    li_box = page.split(f'id="person-{_employee("sales.li").id}"')[1].split('class="weui-cells person"')[0]
    assert "今天未签到" in li_box and "15:00 约钱塘物流开会" in li_box
    assert page.index(f'id="person-{_employee("sales.zhang").id}"') < page.index(f'id="person-{_employee("sales.li").id}"')

    report = manager.get("/h5/staff/reports?report=checkins&range=today").get_data(as_text=True)
    assert "张伟" in report and "签到 1 次 · 拜访 1 家" in report and "合计：签到 1 次" in report
    report = manager.get("/h5/staff/reports?report=activities&range=week").get_data(as_text=True)
    assert "张伟" in report and "李娜" in report and "合计" in report
    assert manager.get("/h5/staff/reports?report=bogus&range=bogus").status_code == 200  # falls back, no 500

    # a salesperson's "team" is themselves: no entry on the home page, and nothing of a colleague's
    assert 'id="entry-team"' not in zhang.get("/h5/staff/").get_data(as_text=True)
    assert "约钱塘物流开会" not in zhang.get("/h5/staff/team").get_data(as_text=True)

    # the same figures on the API
    from tests.service.test_tickets import staff

    data = client.get("/api/v1/reports/team-today", headers=staff(client, "sales.manager")).get_json()
    by_name = {p["employee"]: p for p in data["people"]}
    assert by_name["张伟"]["checkins"][0]["customer"] == "杭州西湖茶业有限公司"
    assert [a["subject"] for a in by_name["张伟"]["overdue"]] == ["整理茶厂需求"]
    assert data["totals"]["checked_in"] >= 1 and data["totals"]["overdue"] >= 1


def test_activity_notices_open_todays_plan_at_the_activity(morning):
    from wxapp.official_account.channels import staff_link

    with morning.test_request_context():
        assert staff_link({"kind": "activity_overdue", "activity_id": 7}).endswith("/h5/staff/today#activity-7")
        assert staff_link({"kind": "activity_start", "activity_id": 8}).endswith("/h5/staff/today#activity-8")
