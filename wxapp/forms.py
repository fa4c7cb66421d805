"""Reading what people type into console forms: numbers the way they write them."""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from crm_core.errors import ValidationFailed

_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$|^\d+(\.\d+)?$")


def parse_amount(raw: str | None, field: str, label: str, *, allow_negative: bool = False) -> Decimal | None:
    """An amount as written: ``5000``, ``5,000``, ``5000.00``, ``¥5,000``, full-width digits; empty is None.
    Anything else is refused with a message naming the field (never silently turned into a number)."""
    if raw is None or not raw.strip():
        return None
    text = unicodedata.normalize("NFKC", raw).strip().replace(" ", "").lstrip("¥￥").replace("元", "")
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if not _GROUPED.match(body) or (negative and not allow_negative):
        raise ValidationFailed(f"{label}请填写金额，例如 5000 或 5,000.00。", fields={field: "请填写金额，例如 5000 或 5,000.00"})
    try:
        value = Decimal(body.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ValidationFailed(f"{label}请填写金额。", fields={field: "请填写金额"}) from None
    if value.as_tuple().exponent < -2:
        raise ValidationFailed(f"{label}最多两位小数。", fields={field: "最多两位小数"})
    if value >= Decimal("1e16"):
        raise ValidationFailed(f"{label}超出范围。", fields={field: "数值超出范围"})
    return -value if negative else value


def form_values(model, data: dict, labels: dict[str, str]):
    """``data`` (what a console form sent, empty fields as None) checked by the API's own pydantic
    ``model``: the same limits as the JSON API, refused with the field's Chinese name and what is wrong
    (「电话」最多 32 个字符), the fields marked for the form to show."""
    from pydantic import ValidationError

    from wxapp.openapi import field_errors

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = field_errors(exc)
        first, why = next(iter(fields.items()))
        name = labels.get(first.split(".")[0], first)
        raise ValidationFailed(f"「{name}」{why}。", fields=fields) from None


def text_fields(form, names, none_if_empty=()) -> dict:
    """The named form fields, trimmed. An emptied text stays "" (it clears the field; a required one is
    refused by its model's minimum length); ``none_if_empty`` fields (dates, choices) are None when empty."""
    out = {n: (form.get(n) or "").strip() for n in names}
    for n in none_if_empty:
        if n in out and not out[n]:
            out[n] = None
    return out


def split_list(raw: str | None) -> list[str]:
    """Tags and the like as people type them: separated by commas (either width), 顿号 or semicolons (a tag may hold
    a space: "Key Account")."""
    return [p.strip() for p in re.split(r"[,，、;；\n]+", raw or "") if p.strip()]
