"""角色权限 in Chromium (#16 item 1): the administrator sees a built-in role read-only, copies 销售员 into a
role of the company's own (a copy without a name is refused), widens its customer scope to the department,
gives it to 张伟 — and 这个用户能看到什么 shows his customers going from his own to his department's."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login

pytestmark = pytest.mark.browser


def _customers_seen(page, base, user_id: str) -> tuple[str, int]:
    page.goto(f"{base}/console/org/roles?user_id={user_id}")
    row = page.locator("#preview-rows tr[data-object=customer]")
    scope = row.locator("td[data-label=数据范围]").inner_text()
    return scope, int(row.locator("td[data-label=现在能看到]").inner_text().split()[0])


def test_a_copied_role_is_edited_given_to_a_salesperson_and_the_preview_shows_what_he_sees(live_app, page):
    base = live_app.url
    login(page, base, "admin")
    page.click("nav >> text=角色权限")
    page.locator("#role-list tr[data-role=销售员] a").click()
    assert "内置角色不可修改" in page.inner_text("#read-only")
    assert page.is_disabled("#role-matrix input[value='customer:view']")

    page.click("text=‹ 角色权限")
    zhang = page.locator("#preview select[name=user_id] option", has_text="sales.zhang").get_attribute("value")
    scope, own = _customers_seen(page, base, zhang)
    assert scope == "本人" and own >= 1

    page.select_option("#copy-role select[name=from_role_id]", label="销售员")
    page.click("#copy-role button")
    assert "请填写新角色的名称" in page.inner_text("[role=alert]")
    page.fill("#copy-role input[name=name]", "区域销售")
    page.click("#copy-role button")
    assert "已复制为新角色" in page.inner_text("[role=status]")
    assert page.is_checked("#role-matrix input[value='customer:view']")  # the copy starts as 销售员
    page.select_option("#role-matrix select[name=scope_customer]", "department")
    page.uncheck("#role-matrix input[value='customer:export']") if page.is_checked(
        "#role-matrix input[value='customer:export']") else page.check("#role-matrix input[value='customer:export']")
    page.click("#role-matrix button[type=submit]")
    assert "角色权限已保存" in page.inner_text("[role=status]")
    assert page.input_value("#role-matrix select[name=scope_customer]") == "department"

    page.click("nav >> text=组织设置")
    row = page.locator("#users tr[data-user='sales.zhang']")
    row.locator("select[name=role]").select_option(label="区域销售")
    row.locator("button", has_text="改角色").click()
    assert "已保存" in page.inner_text("[role=status]")
    scope, now = _customers_seen(page, base, zhang)
    assert scope == "本部门及下级部门" and now > own
