"""List exports (SPEC: ``GET /api/v1/{customers,contacts,leads,opportunities,activities,tickets,checkins}/export
?format=xlsx|csv``): the list with the same filters as its ``GET``, within the data scope, as an
Excel workbook (openpyxl, write-only) or a CSV that Excel opens with its Chinese headers.

Exporting needs the object's ``export`` permission (销售经理 and administrators hold it for the
sales objects, 服务调度 for the service ones; a salesperson does not), is capped at
:data:`MAX_ROWS` rows (the answer says so in a header when it stops there), and is written to
the audit log. Each feature package registers its lists with :func:`register` next to its own
``GET`` (wxapp.api, wxapp.self_service, wxapp.checkin), so the filters cannot drift.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal
from urllib.parse import quote

from flask import Response, g
from pydantic import Field

from crm_core.clock import local_str, local_today
from crm_core.org.settings import org_timezone
from wxapp.csv_export import XLSX, safe_cell, xlsx_bytes

MAX_ROWS = 50_000
# list path ("customers") -> (export function, its query model, title): filled by :func:`register`
REGISTERED: dict[str, tuple[Callable, Any, str]] = {}
CHUNK = 500


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text / time (in the organisation's zone) / employee (an id shown as the name) / customer / yes_no / list / label:<table>


def _lookup(columns, rows) -> dict:
    from crm_core.customers.customers import customer_names
    from crm_core.org.organization import employee_names

    out = {"tz": org_timezone(g.actor.org_id)}
    for kind, fn in (("employee", employee_names), ("customer", customer_names)):
        keys = [c.key for c in columns if c.kind == kind]
        if keys:
            out[kind] = fn(r.get(k) for r in rows for k in keys)
    return out


def _cell(col: Column, value, names: dict):
    if value is None:
        return None
    if col.kind in ("employee", "customer"):
        value = names.get(col.kind, {}).get(value, value)
    elif col.kind.startswith("label:"):
        from crm_core.labels import label

        value = label(col.kind[6:], value)
    elif col.kind == "time":
        value = local_str(value, tz=names["tz"])  # stored UTC, shown as the people who read it live: 2026-12-02 18:30
    elif col.kind == "yes_no":
        return "是" if value else "否"
    elif col.kind == "list":
        value = "、".join(str(v) for v in value)
    if isinstance(value, str):
        value = _CONTROL.sub("", value)  # a workbook cannot hold control characters (openpyxl refuses them)
    return safe_cell(value)  # spreadsheet formulas in people's text stay text (CSV / formula injection)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def collect(fetch: Callable[[int, int], tuple[list, int]], to_dicts: Callable[[list], list[dict]]) -> tuple[list[dict], int]:
    """Every row of a paged list (``fetch(page, per_page) -> (rows, total)``), up to MAX_ROWS."""
    out, page, total = [], 1, 0
    while len(out) < MAX_ROWS:
        rows, total = fetch(page, CHUNK)
        out += to_dicts(rows)
        if len(rows) < CHUNK:
            break
        page += 1
    return out[:MAX_ROWS], total


def sheet_response(title: str, columns: list[Column], rows: list[dict], fmt: str, total: int) -> Response:
    """The rows as ``fmt`` (xlsx or csv), named ``<title>_<today>``."""
    names = _lookup(columns, rows)
    table = [[_cell(c, r.get(c.key), names) for c in columns] for r in rows]
    day = local_today(org_timezone(g.actor.org_id)).isoformat()
    if fmt == "csv":
        import csv

        buf = io.StringIO()
        buf.write("\ufeff")
        writer = csv.writer(buf)
        writer.writerow([c.label for c in columns])
        writer.writerows([["" if v is None else v for v in row] for row in table])
        body, mimetype, ext = buf.getvalue().encode("utf-8"), "text/csv", "csv"
    else:
        body, ext, mimetype = xlsx_bytes(title, [c.label for c in columns], table), "xlsx", XLSX
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename=export.{ext}; filename*=UTF-8''{quote(f'{title}_{day}.{ext}')}"
    resp.headers["X-Total-Rows"] = str(total)
    if total > len(rows):
        resp.headers["X-Export-Truncated"] = f"{len(rows)} of {total}"
    return resp


def file_response(data: bytes, filename: str, mimetype: str) -> Response:
    """A download named ``filename`` (Chinese names travel in ``filename*``, RFC 5987)."""
    ext = filename.rsplit(".", 1)[-1]
    resp = Response(data, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename=download.{ext}; filename*=UTF-8''{quote(filename)}"
    return resp


def register(bp, api, path: str, title: str, object_type: str, query_model, list_fn: Callable[..., tuple[list, int]],
             to_dicts: Callable[[list], list[dict]], columns: list[Column], exclude: tuple[str, ...] = ()) -> None:
    """Add ``GET {path}/export`` to ``bp``: ``list_fn(actor, **filters, page=, per_page=)`` with the
    filters of ``query_model`` (the list's own query, less paging)."""
    from pydantic import create_model

    from crm_core import audit
    from wxapp.openapi import Model

    fields = {name: (f.annotation, f) for name, f in query_model.model_fields.items() if name not in ("page", "per_page")}
    fields["format"] = (Literal["xlsx", "csv"], Field(default="xlsx"))
    query = create_model(f"{query_model.__name__}Export", __base__=Model, **fields)

    def export(query: Any):
        g.actor.require(object_type, "export")
        filters = query.model_dump(exclude={"format", *exclude})
        rows, total = collect(lambda page, per: list_fn(g.actor, **filters, page=page, per_page=per), to_dicts)
        audit.record_export(g.actor, object_type, len(rows), {k: v for k, v in filters.items() if v is not None})
        return sheet_response(title, columns, rows, query.format, total)

    export.__name__ = "export_" + re.sub(r"\W", "_", path.strip("/"))  # one endpoint per list (公海 and 客户 are both customers)
    REGISTERED[path.strip("/")] = (export, query, title)  # the console's 导出 links run the very same export
    api.operation(bp, f"{path}/export", "GET", summary=f"Export {title} (xlsx or csv) with the list's filters, within scope",
                  tags=("exports",), query=query)(export)
