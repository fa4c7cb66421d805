"""活动 from the console (#16 item 3): a follow-up logged on the customer's 360 page, then changed, started and
finished with its result on its own page — bad input refused in Chinese, the times read as China time."""
from __future__ import annotations

import re

import pytest
from flask import g
from sqlalchemy import select

from crm_core.activities.models import Activity
from crm_core.customers.models import Customer
from crm_core.db import db
from tests.conftest import console_login


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def _post(c, url, data):
    g.pop("csrf_token", None)
    page = c.get("/console/")  # every console page carries the session's CSRF token (the sign-out form)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = c.post(url, data={**data, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    g.pop("csrf_token", None)
    return c.get(r.headers["Location"]).get_data(as_text=True)


def test_a_follow_up_is_logged_changed_and_finished_from_the_console(demo):
    c, _ = console_login(demo, "sales.zhang", "demo123456")
    tea = db.session.scalars(select(Customer).where(Customer.name == "杭州西湖茶业有限公司")).one()
    page = _post(c, f"/console/customers/{tea.id}/activities", {"kind": "visit", "subject": ""})
    assert "「主题」不能为空" in page
    page = _post(c, f"/console/customers/{tea.id}/activities", {"kind": "visit", "subject": "上门演示新机型",
                                                                "planned_start": "2026-12-08T09:00", "planned_end": "2026-12-08T10:30"})
    assert "活动已记录" in page and "上门演示新机型" in page
    a = db.session.scalars(select(Activity).where(Activity.subject == "上门演示新机型")).one()
    assert a.customer_id == tea.id and a.planned_start.isoformat() == "2026-12-08T01:00:00"  # 09:00 in China, kept in UTC
    url = f"/console/activities/{a.id}"
    page = _post(c, url, {"subject": "上门演示新机型", "planned_start": "2026-12-08T11:00", "planned_end": "2026-12-08T10:30"})
    assert "计划结束时间不能早于开始时间" in page
    page = _post(c, f"{url}/status", {"status": "done", "result": ""})
    assert "完成活动时请填写结果" in page
    page = _post(c, f"{url}/status", {"status": "done", "result": "客户同意下周签约"})
    assert "活动状态已更新" in page and "客户同意下周签约" in page and "已完成" in page
    db.session.expire_all()
    assert db.session.get(Activity, a.id).status == "done"
    page = _post(c, f"{url}/status", {"status": "in_progress"})
    assert "不能改为" in page  # a finished activity does not start again
