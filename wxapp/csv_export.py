"""Report downloads as CSV or Excel: CSV in UTF-8 with a byte-order mark (so Excel on Windows shows the Chinese
headers correctly), or an .xlsx workbook (openpyxl, write-only, bold frozen header); a header row of Chinese column
labels, a dated file name. ``?format=xlsx`` on a report asks for the workbook, ``?format=csv`` for the CSV."""
from __future__ import annotations

import csv
import io
import re
from urllib.parse import quote

from flask import Response


def xlsx_bytes(title: str, header: list[str], table: list[list]) -> bytes:
    """One sheet named ``title``: the header in bold and frozen, columns as wide as their labels."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31] or "Sheet1")
    ws.freeze_panes = "A2"
    for i, label in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(label) * 2 + 4))
    cells = []
    for label in header:
        cell = WriteOnlyCell(ws, value=label)
        cell.font = Font(bold=True)
        cells.append(cell)
    ws.append(cells)
    for row in table:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_response(filename: str, columns: list[tuple[str, str]], rows: list[dict]) -> Response:
    """The report as the request asks (``format=xlsx``: a workbook named like ``filename``; otherwise the CSV)."""
    from flask import request

    if request.args.get("format") == "xlsx":
        stem = filename.rsplit(".", 1)[0]
        table = [[_xlsx_value(safe_cell(row.get(key))) for key, _ in columns] for row in rows]
        resp = Response(xlsx_bytes(re.sub(r"[\\/*?:\[\]]", " ", stem.split("_")[0]), [label for _, label in columns], table),
                        mimetype=XLSX)
        resp.headers["Content-Disposition"] = f"attachment; filename=report.xlsx; filename*=UTF-8''{quote(stem + '.xlsx')}"
        return resp
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow([label for _, label in columns])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else safe_cell(row.get(key)) for key, _ in columns])
    resp = Response(buf.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f"attachment; filename=report.csv; filename*=UTF-8''{quote(filename)}"
    return resp


def safe_cell(value):
    """Neutralise spreadsheet formulas in user-entered text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _numeric(value):
        return "'" + value
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _xlsx_value(value):
    """A cell a workbook can hold: numbers and text as they are, lists joined, anything else as text."""
    if value is None or isinstance(value, (int, float, str)):
        return _CONTROL.sub("", value) if isinstance(value, str) else value
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return str(value)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # a workbook cannot hold control characters
