"""组织设置 in Chromium from an empty database (#16 item 1): the administrator switches a business
function off, builds departments, positions and a reporting line, hires an employee, opens a
user for them — and the new salesperson logs in. Bad input is refused in Chinese."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.conftest import LiveServer, _create_schema, _make_app
from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


@pytest.fixture
def empty_live(tmp_path):
    from crm_core.org.models import Organization
    from crm_core.org.organization import create_user

    app = _make_app(f"sqlite:///{tmp_path}/empty.db")
    with app.app_context():
        _create_schema()
        org = Organization(code="newco", name="新开公司")
        db.session.add(org)
        db.session.flush()
        create_user(org, "founder", "founder-pass-1", ["admin"])
        db.session.commit()
        db.session.remove()
    with LiveServer(app) as server:
        yield server


def _ok(page) -> str:
    return page.inner_text("[role=status]")


def test_an_administrator_sets_up_the_company_from_nothing(empty_live, page):
    base = empty_live.url
    login(page, base, "founder", "founder-pass-1")
    page.click("nav >> text=组织设置")
    page.uncheck("#functions input[value=marketing]")
    page.click("#functions button")
    assert "业务职能已保存" in _ok(page)
    assert not page.is_checked("#functions input[value=marketing]")

    page.click("#new-department button")  # no name
    assert "请填写部门名称" in page.inner_text("[role=alert]")
    page.fill("#new-department input[name=name]", "总部")
    page.click("#new-department button")
    page.fill("#new-department input[name=name]", "销售部")
    page.select_option("#new-department select[name=parent_id]", label="总部")
    page.select_option("#new-department select[name=function]", "sales")
    page.click("#new-department button")
    assert "部门已添加" in _ok(page)
    assert "销售部" in page.inner_text("#departments")

    page.fill("#new-position input[name=name]", "销售经理")
    page.select_option("#new-position select[name=department_id]", label="　销售部")
    page.click("#new-position button")
    page.fill("#new-position input[name=name]", "销售代表")
    page.select_option("#new-position select[name=department_id]", label="　销售部")
    page.select_option("#new-position select[name=reports_to_id]", label="销售经理（销售部）")
    page.click("#new-position button")
    row = page.locator("#positions tr[data-position=销售代表]")
    assert "销售经理" in row.inner_text()

    page.fill("#new-employee input[name=name]", "王小明")
    page.fill("#new-employee input[name=phone]", "13900000009")
    page.select_option("#new-employee select[name=position_id]", label="销售代表（销售部）")
    page.click("#new-employee button")
    assert "已入职" in _ok(page)
    page.locator("#positions tr[data-position=销售代表]").locator("button", has_text="删除").click()
    assert "还有 1 名员工" in page.inner_text("[role=alert]")  # a position with people stays

    page.fill("#new-user input[name=username]", "wangxm")
    page.fill("#new-user input[name=password]", "wangxm-pass-1")
    page.select_option("#new-user select[name=employee_id]", label="王小明")
    page.select_option("#new-user select[name=role]", "salesperson")
    page.click("#new-user button")
    assert "用户已创建" in _ok(page)
    # the founder cannot switch themselves off: the last administrator
    page.locator("#users tr[data-user=founder]").locator("button", has_text="停用").click()
    assert "最后一位" in page.inner_text("[role=alert]")

    page.context.clear_cookies()
    login(page, base, "wangxm", "wangxm-pass-1")
    page.wait_for_selector("text=工作台")
    assert "组织设置" not in page.inner_text("nav")
    page.click("nav >> text=客户")
    assert "王小明" in page.inner_text("header")
