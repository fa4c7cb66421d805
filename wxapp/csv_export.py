"""CSV downloads of reports: UTF-8 with a byte-order mark (so Excel on Windows shows the
Chinese headers correctly), a header row of Chinese column labels, a dated file name."""
from __future__ import annotations

import csv
import io
from urllib.parse import quote

from flask import Response


def csv_response(filename: str, columns: list[tuple[str, str]], rows: list[dict]) -> Response:
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
