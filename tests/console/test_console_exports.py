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
