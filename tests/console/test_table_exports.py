"""#16 "every list has an export": each table a console page shows can be taken to Excel and CSV — the paged lists
through the API's export (test_console_exports.py), the settings and report tables through the page itself
(wxapp/console/table_export.py): the file holds what the table shows, with the page's filters, and is audited."""
from __future__ import annotations

import csv
import io
import re

import pytest
from flask import g, url_for
from openpyxl import load_workbook

from crm_core.db import db
from tests.conftest import console_login
from wxapp.console.table_export import table_of

SUB_PAGES = ["/console/conversations/stats", "/console/conversations/canned"]


@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return app


def _pages(app) -> list[str]:
    from wxapp.console import NAV

    with app.test_request_context():
        return [url_for(e) for _, e, _, _ in NAV if e in app.view_functions] + SUB_PAGES


def _get(c, url):
    g.pop("csrf_token", None)
    return c.get(url)


def _links(html: str, label: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in re.findall(r'<a href="([^"]+)">' + label + "</a>", html)]


def test_every_table_on_every_console_page_has_an_export_that_holds_what_it_shows(demo):
    c, _ = console_login(demo, "admin", "demo123456")
    checked = 0
    from crm_core.clock import local_today
    from crm_core.org.models import User

    zhang = db.session.query(User).filter_by(username="sales.zhang").one()
    route = f"/console/field/route?employee_id={zhang.employee_id}&date={local_today().isoformat()}"  # a salesperson's day
    from crm_core.org.permissions import load_actor
    from materials import services as msvc

    marketer = load_actor(db.session.query(User).filter_by(username="marketing.wang").one())
    m = msvc.create_material(marketer, {"title": "导出用素材", "body_html": "<p>正文</p>", "publish": True})
    campaign = f"/console/marketing/campaigns/{msvc.create_campaign(marketer, {'name': '方案', 'material_ids': [m.id]}).id}"
    db.session.commit()
    for url in _pages(demo) + [route, campaign]:
        r = _get(c, url)
        assert r.status_code == 200, url
        html = r.get_data(as_text=True)
        tables = re.findall(r"<table\b[^>]*>", html)
        if not tables:
            continue
        # each data table is either a marked one or the page is a paged list with the API's 导出
        api_export = "/console/exports/" in html or "format=xlsx" in html
        for tag in tables:
            if "data-export" not in tag:
                assert api_export or "compact" in tag or 'id="template-columns"' in tag, f"{url}: a table without 导出: {tag}"
        for name in re.findall(r'<table\b[^>]*data-export="([^"]+)"', html):
            title, header, rows = table_of(html, name)
            xlsx = [u for u in _links(html, "Excel") if f"export_table={name}&" in u or u.endswith(f"export_table={name}")]
            assert xlsx, f"{url}: no Excel link for {name}"
            got = _get(c, xlsx[0])
            assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet"), (url, name)
            sheet = list(load_workbook(io.BytesIO(got.data)).active.iter_rows(values_only=True))
            assert list(sheet[0]) == header and len(sheet) - 1 == len(rows), (url, name)
            assert "" not in header  # the button column is left out
            csv_url = xlsx[0].replace("format=xlsx", "format=csv")
            lines = list(csv.reader(io.StringIO(_get(c, csv_url).get_data(as_text=True).lstrip("\ufeff"))))
            assert lines[0] == header and len(lines) - 1 == len(rows), (url, name)
            checked += 1
    assert checked >= 20  # 部门, 岗位, 用户, 角色, 细分, 群发, 自动回复, 撞单规则, 导入记录, 签到复核, 客服统计, 达人榜…


def test_the_file_is_the_table_with_its_values_and_filters_and_is_audited(demo):
    from crm_core.audit import AuditEntry
    from crm_core.org.models import Department

    c, _ = console_login(demo, "admin", "demo123456")
    page = _get(c, "/console/org/setup").get_data(as_text=True)
    link = [u for u in _links(page, "Excel") if "export_table=departments" in u][0]
    sheet = list(load_workbook(io.BytesIO(_get(c, link).data)).active.iter_rows(values_only=True))
    assert sheet[0] == ("部门", "上级", "部门属性", "状态")
    names = {row[0] for row in sheet[1:]}
    assert names == {d.name for d in db.session.query(Department)}  # every department, by name, no button text
    db.session.expire_all()
    entry = db.session.query(AuditEntry).filter_by(action="export", object_type="console:departments").one()
    assert entry.changes["rows"] == len(sheet) - 1 and entry.changes["filters"]["page"] == "/console/org/setup"

    # a page's filters go with its link: 客服统计 over the last day only
    stats = _get(c, "/console/conversations/stats?days=1").get_data(as_text=True)
    link = [u for u in _links(stats, "CSV") if "export_table=stats" in u][0]
    assert "days=1" in link
    numbers = list(csv.reader(io.StringIO(_get(c, link).get_data(as_text=True).lstrip("\ufeff"))))
    assert numbers[0][0] == "客服"


def test_no_file_for_a_page_the_user_cannot_open(demo):
    c, _ = console_login(demo, "sales.zhang", "demo123456")
    r = _get(c, "/console/org/setup?export_table=departments&format=xlsx")
    assert r.status_code == 403 and r.mimetype == "text/html"  # the page's own refusal, no workbook
    r = _get(c, "/console/segments?export_table=nothing-here&format=xlsx")
    assert r.mimetype == "text/html"  # an unknown table: the page as it is
    # a page the salesperson may open, but a file needs the export right (as the API's exports)
    from crm_core.clock import local_today
    from crm_core.org.models import User

    zhang = db.session.query(User).filter_by(username="sales.zhang").one()
    route = f"/console/field/route?employee_id={zhang.employee_id}&date={local_today().isoformat()}"
    page = _get(c, route)
    assert page.status_code == 200 and "export_table=" not in page.get_data(as_text=True)
    r = _get(c, route + "&export_table=route&format=xlsx")
    assert r.status_code == 403 and "没有导出权限" in r.get_data(as_text=True)


def test_table_reader_takes_inputs_selects_and_skips_buttons():
    html = """<table data-export="t" data-title="测试"><thead><tr><th>名称</th><th>级别</th><th>数量</th><th>电话</th><th></th></tr></thead>
    <tbody><tr><td><input name="n" value="华东区"></td><td><select><option>A</option><option selected>B 级</option></select></td>
    <td>12</td><td>0571888</td><td><button>删除</button></td></tr>
    <tr><td colspan="5">暂无</td></tr></tbody></table>"""
    title, header, rows = table_of(html, "t")
    assert (title, header, rows) == ("测试", ["名称", "级别", "数量", "电话"], [["华东区", "B 级", 12, "0571888"]])
    assert table_of(html, "other") is None
