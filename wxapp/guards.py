"""Input limits checked at the edge, before a value reaches a service or the database.

- JSON nesting depth is bounded *before* parsing (the standard library recurses per level, so
  ``[`` × 50,000 would raise RecursionError): :class:`SafeJSONProvider` is the app's JSON provider,
  so every ``request.get_json`` in the API, the H5 API and the public ``/m/`` calls goes through it.
- Integers in bodies and query strings fit the database (signed 64-bit); ids (``id``, ``*_id``,
  ``*_ids``) are positive; dates lie between 1900 and 2200; a ``date_from``/``date_to`` pair is
  ordered and spans at most :data:`MAX_REPORT_DAYS`. Path ids use :class:`BoundedIntConverter`
  (an id past the 64-bit range is simply not found).
- The console's ``next`` redirect target is a local path without control characters.
"""
from __future__ import annotations

import re
from datetime import date, datetime

from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel
from werkzeug.routing import IntegerConverter

from crm_core.errors import ValidationFailed

MAX_JSON_DEPTH = 64
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2200, 12, 31)
MAX_REPORT_DAYS = 3 * 366  # a report or list filtered by dates covers at most about three years

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class JSONTooDeep(ValueError):
    """Raised instead of parsing a document nested deeper than :data:`MAX_JSON_DEPTH`."""


def check_json_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse ``data`` when its arrays/objects nest deeper than ``limit`` (strings are skipped)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # cannot be deeper than the number of openers: the common case costs two C scans
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise JSONTooDeep(f"JSON nested deeper than {limit} levels")
        else:
            depth -= 1


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with the nesting check in front of ``loads``."""

    def loads(self, s, **kwargs):
        check_json_depth(s)
        return super().loads(s, **kwargs)


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that never hands the database an integer past the signed 64-bit range.

    A larger id maps to 0, which no row has, so the view answers its usual 404 (refusing the
    match instead would make werkzeug answer 405 when another method's rule has the same path).
    """

    def to_python(self, value: str):
        number = super().to_python(value)
        return number if number <= INT64_MAX else 0


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id") or name.endswith("_ids")


def _walk(value, path: str, name: str, errors: dict[str, str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if value > INT64_MAX or value < INT64_MIN:
            errors[path] = "数值超出范围"
        elif _is_id(name) and value < 1:
            errors[path] = "编号必须是正整数"
    elif isinstance(value, float):
        if abs(value) > 1e15:  # money and measures are NUMERIC(18,2) at most
            errors[path] = "数值超出范围"
    elif isinstance(value, (datetime, date)):
        d = value.date() if isinstance(value, datetime) else value
        if not MIN_DATE <= d <= MAX_DATE:
            errors[path] = f"日期须在 {MIN_DATE.year} 至 {MAX_DATE.year} 年之间"
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, f"{path}.{k}" if path else str(k), str(k), errors)
    elif isinstance(value, (list, tuple, set)):
        for i, v in enumerate(value):
            _walk(v, f"{path}.{i}", name, errors)


def check_values(model: BaseModel, *, query: bool = False) -> None:
    """Refuse values a database or a report cannot take (see the module docstring) with 422."""
    data = model.model_dump()  # python mode: dates stay dates, nested models become dicts
    errors: dict[str, str] = {}
    for key, value in data.items():
        _walk(value, key, key, errors)
    start, end = data.get("date_from"), data.get("date_to")
    if isinstance(start, date) and isinstance(end, date) and not errors:
        if end < start:
            errors["date_to"] = "结束日期不能早于开始日期"
        elif (end - start).days > MAX_REPORT_DAYS:
            errors["date_to"] = f"日期范围最长 {MAX_REPORT_DAYS} 天"
    if errors:
        raise ValidationFailed("查询参数有误。" if query else "提交的数据有误，请检查标出的字段。", fields=errors)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None, default: str, prefixes: tuple[str, ...] = ("/",)) -> str:
    """A redirect target that stays on this site under one of ``prefixes``: a path starting with
    one ``/``, no scheme, no host, no backslash, no control characters (CR/LF would split the
    Location header)."""
    if not target or not target.startswith(prefixes) or target.startswith("//") or _CONTROL.search(target):
        return default
    return target
