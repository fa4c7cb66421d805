"""Each built-in role against the pages its people need (#16 item 4): signed in as the demo's people, every page
their menu offers opens without a refusal, and the pages of their work are in it — a salesperson has his customers,
leads, opportunities, quotes, 数据导入 and 工作计划; the marketer her materials, campaigns and 客户细分 (the segments
she pushes to); the dispatcher the ticket queue and 在线客服; none sees 组织设置 or 角色权限 but the administrator."""
from __future__ import annotations

import re

import pytest
from flask import g

from crm_core.db import db
from tests.conftest import console_login


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


NEEDS = {
    "admin": {"组织设置", "角色权限", "数据导入", "客户", "撞单规则"},
    "sales.manager": {"客户", "公海", "线索", "商机", "报价单", "合同与回款", "待我审批", "销售分析", "工作计划", "数据导入",
                      "移动签到报表", "销售报表"},
    "sales.zhang": {"客户", "公海", "线索", "商机", "报价单", "工作计划", "数据导入", "客户细分"},
    "marketing.wang": {"营销素材", "营销方案", "客户细分", "微信粉丝", "自动回复", "自定义菜单"},
    "service.dispatcher": {"客户反馈", "派工日程", "服务报表", "在线客服"},
    "service.engineer": {"我的服务工单"},
}


@pytest.mark.parametrize("login", sorted(NEEDS))
def test_every_page_of_a_roles_menu_opens_and_holds_what_its_people_need(demo, login):
    c, resp = console_login(demo, login, "demo123456")
    assert resp.status_code == 302
    g.pop("csrf_token", None)
    home = c.get("/console/").get_data(as_text=True)
    nav = home.split('<nav class="side">', 1)[1].split("</nav>", 1)[0]
    menu = dict((title.strip(), href) for href, title in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav))
    missing = NEEDS[login] - set(menu)
    assert not missing, (login, missing)
    if login != "admin":
        assert not {"组织设置", "角色权限"} & set(menu), login
    for title, href in menu.items():
        g.pop("csrf_token", None)
        r = c.get(href)
        assert r.status_code == 200, (login, title, href, r.status_code)
        assert "没有权限" not in r.get_data(as_text=True), (login, title)
