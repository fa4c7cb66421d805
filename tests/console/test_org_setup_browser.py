"""组织设置 in Chromium from an empty database (#16 item 1 and its "done when"): the administrator switches
a business function off, builds departments, positions and a reporting line, hires employees, opens a
user for one, imports 200 customers from an .xlsx (预检, confirm, the progress bar to the result file) —
and the new salesperson logs in and sees only his. Bad input is refused in Chinese."""
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

    app = _make_app(f"sqlite:///{tmp_path}/empty.db", JOBS_EAGER=False)  # jobs after the answer, as in production
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


def _customers_sheet(path) -> None:
    """201 rows: 121 for 王小明, 80 for 李四, of which row 5 repeats row 4's phone (a collision in the file): 200 import."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["客户名称*", "电话", "负责人", "联系人姓名"])
    for i in range(201):
        phone = f"1390000{3 if i == 4 else i:04d}"
        ws.append([f"导入客户{i:03d}有限公司", phone, "王小明" if i % 5 < 3 else "李四", f"联系人{i}"])
    wb.save(path)


def test_an_administrator_sets_up_the_company_from_nothing(empty_live, page, tmp_path):
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

    page.fill("#new-employee input[name=name]", "李四")
    page.select_option("#new-employee select[name=position_id]", label="销售代表（销售部）")
    page.click("#new-employee button")
    assert "已入职" in _ok(page)

    page.fill("#new-user input[name=username]", "wangxm")
    page.fill("#new-user input[name=password]", "wangxm-pass-1")
    page.select_option("#new-user select[name=employee_id]", label="王小明")
    page.select_option("#new-user select[name=role]", "salesperson")
    page.click("#new-user button")
    assert "用户已创建" in _ok(page)
    # the founder cannot switch themselves off: the last administrator
    page.locator("#users tr[data-user=founder]").locator("button", has_text="停用").click()
    assert "最后一位" in page.inner_text("[role=alert]")

    # 数据导入: the template, a file that is not Excel refused, then 201 rows checked and 200 imported
    page.click("nav >> text=数据导入")
    with page.expect_download() as dl:
        page.click("#template-link")
    assert dl.value.suggested_filename == "客户导入模板.xlsx"
    (tmp_path / "bad.xlsx").write_text("客户名称,电话")
    page.set_input_files("#import-file", str(tmp_path / "bad.xlsx"))
    page.click("#import-check")
    assert "不是有效的 Excel" in page.inner_text("[role=alert]")
    _customers_sheet(tmp_path / "customers.xlsx")
    page.set_input_files("#import-file", str(tmp_path / "customers.xlsx"))
    page.click("#import-check")
    assert "共 201 行：新建 200 · 撞单 1 · 有误 0" in page.inner_text("#dry-summary")
    assert "与文件第 5 行重复" in page.inner_text("#import-rows tr#row-6")  # problems first
    page.click("#import-confirm")
    page.wait_for_selector("#import-result", timeout=60_000)  # the bar polls, the page reloads when done
    assert page.get_attribute("#import-bar", "value") == "100"
    assert "新建 200 · 撞单 1 · 有误 0" in page.inner_text("#import-counts")
    with page.expect_download() as dl:
        page.click("#import-result")
    assert dl.value.suggested_filename.endswith("导入结果.xlsx")

    page.context.clear_cookies()
    login(page, base, "wangxm", "wangxm-pass-1")
    page.wait_for_selector("text=工作台")
    assert "组织设置" not in page.inner_text("nav")
    page.click("nav >> text=客户")
    assert "王小明" in page.inner_text("header")
    assert "共 121 个" in page.inner_text("h1")  # his, not 李四's
    page.fill("main form.search input[name=q]", "导入客户001")
    page.press("main form.search input[name=q]", "Enter")
    assert "导入客户001有限公司" in page.inner_text("main")
    page.fill("main form.search input[name=q]", "导入客户004")  # 李四's
    page.press("main form.search input[name=q]", "Enter")
    assert "导入客户004有限公司" not in page.inner_text("main")
