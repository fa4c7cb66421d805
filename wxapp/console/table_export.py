"""导出 of the console's own tables (#16 item 2, "every list exports to Excel and CSV"): the settings and report pages
whose tables are not paged API lists (部门, 岗位, 用户, 角色, 细分, 群发, 自动回复, 撞单规则, 导入记录, 签到复核, 客服统计…).

A table marked ``<table data-export="departments" data-title="部门">`` gets 导出 links from the ``export_table`` macro
(``_table_export.html``); the link is the page itself with ``export_table=departments&format=xlsx|csv``. The page is
rendered as usual — same filters, same data scope, same permission check as the person already passed to see it —
and this hook turns that one table into the file instead of sending the HTML. As with the API's exports, the file
needs the export right on the table's object (``data-export-object``: 组织 tables ``organization``, 签到 ``checkin``…);
the links show only to those who hold it. So the file cannot drift from what
the page shows. Columns with an empty header (the buttons) are left out; a cell's text is what the reader sees
(an input's value, a select's chosen option); plain numbers become numbers in the workbook. Every export is written
to the audit log, like the API's list exports (``audit.record_export``).

The paged lists (客户, 线索, 工单…) keep the API's export (``wxapp.exports``), which takes every page, not one.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

from flask import g, make_response, request

from crm_core.db import db
from wxapp.console import bp

_SKIP = {"button", "script", "style", "template", "textarea"}
_NUMBER = re.compile(r"-?\d{1,15}(\.\d+)?")


class _Tables(HTMLParser):
    """Collect the header and rows of the table whose ``data-export`` is ``name``."""

    def __init__(self, name: str):
        super().__init__(convert_charrefs=True)
        self.name, self.title, self.object = name, None, None
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.depth = 0  # table nesting inside the wanted table (0: outside it)
        self.skip = 0
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.in_head = False
        self.in_select = self.option_selected = False
        self.row_th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif a.get("data-export") == self.name and self.title is None:
                self.depth, self.title = 1, a.get("data-title") or self.name
                self.object = a.get("data-export-object")
            return
        if self.depth != 1:
            return
        if tag == "thead":
            self.in_head = True
        elif tag == "tr":
            self.row, self.row_th = [], True
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
            self.row_th = self.row_th and tag == "th"
        elif self.cell is not None:
            if tag == "select":
                self.in_select = True
            elif tag == "option":
                self.option_selected = "selected" in a  # a select reads as its chosen option
            elif tag in _SKIP:
                self.skip += 1
            elif tag == "input" and a.get("type", "text") in ("text", "number", "date", "datetime-local", "tel", "email"):
                self.cell.append(a.get("value") or "")
            elif tag == "input" and a.get("type") == "checkbox" and not self.skip:
                self.cell.append("是" if "checked" in a else "否")
            elif tag == "br":
                self.cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
            return
        if self.depth != 1:
            return
        if tag == "thead":
            self.in_head = False
        elif tag == "select":
            self.in_select = self.option_selected = False
        elif tag in _SKIP and self.cell is not None and self.skip:
            self.skip -= 1
        elif tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.in_head or (not self.header and self.row and not self.rows and self.row_th):
                self.header = self.row
            elif self.row:
                self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.depth == 1 and self.cell is not None and not self.skip and (not self.in_select or self.option_selected):
            self.cell.append(data)


def table_of(html: str, name: str) -> tuple[str, list[str], list[list]] | None:
    """The title, header and rows of the table ``name`` in ``html`` (None when the page has no such table)."""
    found = _parse(html, name)
    return None if found is None else found[:3]


def _parse(html: str, name: str):
    p = _Tables(name)
    p.feed(html)
    if p.title is None:
        return None
    keep = [i for i, label in enumerate(p.header) if label]
    header = [p.header[i] for i in keep]
    rows = [[_value(row[i]) if i < len(row) else None for i in keep] for row in p.rows
            if len(row) > 1 or (row and len(keep) <= 1)]  # a row spanning the table ("暂无…") is no record
    return p.title, header, [row for row in rows if any(v is not None for v in row)], p.object


def _value(text: str):
    if _NUMBER.fullmatch(text) and not (len(text) > 1 and text[0] == "0" and text[1] != "."):  # 0571… stays text
        return float(text) if "." in text else int(text)
    return text or None


@bp.after_app_request
def _export_table(response):
    name = request.args.get("export_table")
    if not name or not request.path.startswith("/console") or response.status_code != 200 \
            or response.mimetype != "text/html" or g.get("actor") is None:
        return response
    found = _parse(response.get_data(as_text=True), name[:40])
    if found is None:
        return response
    title, header, rows, obj = found
    if not obj or not g.actor.can(obj, "export"):  # as the API's exports: the object's export right, not only the page
        from crm_core.errors import PermissionDenied
        from wxapp.pages import denied

        return make_response(denied(PermissionDenied("没有导出权限。")))
    from crm_core import audit
    from crm_core.clock import local_today
    from crm_core.org.settings import org_timezone
    from wxapp.csv_export import csv_response

    filters = {k: v for k, v in request.args.items() if k not in ("export_table", "format")}
    audit.record_export(g.actor, f"console:{name[:40]}", len(rows), {"page": request.path, **filters})
    db.session.commit()
    day = local_today(org_timezone(g.actor.org_id)).isoformat()
    columns = [(str(i), label) for i, label in enumerate(header)]
    return csv_response(f"{title}_{day}.csv", columns, [dict(zip((c for c, _ in columns), row)) for row in rows])
