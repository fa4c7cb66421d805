"""Normalising phones, Chinese company names and free text for matching (撞单)."""
from __future__ import annotations

import re
import unicodedata

PROVINCES = [
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾",
    "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
]
# provincial capitals and other large cities, stripped as a leading place name
CITIES = [
    "杭州", "宁波", "温州", "绍兴", "嘉兴", "湖州", "金华", "衢州", "舟山", "台州", "丽水", "义乌", "南京", "苏州",
    "无锡", "常州", "南通", "扬州", "徐州", "合肥", "福州", "厦门", "泉州", "南昌", "济南", "青岛", "烟台", "郑州",
    "武汉", "长沙", "广州", "深圳", "东莞", "佛山", "珠海", "海口", "三亚", "成都", "贵阳", "昆明", "西安", "兰州",
    "西宁", "呼和浩特", "南宁", "拉萨", "银川", "乌鲁木齐", "石家庄", "太原", "沈阳", "大连", "长春", "哈尔滨",
]
_PLACE = sorted(set(PROVINCES + CITIES), key=len, reverse=True)
_PLACE_RE = re.compile(r"^(?:中国)?(?:(?:" + "|".join(_PLACE) + r")(?:省|市|自治区|特别行政区)?)+")
_ADMIN_PREFIX_RE = re.compile(r"^[\u4e00-\u9fff]{2,4}(?:省|市)")
SUFFIXES = [
    "股份有限公司", "有限责任公司", "集团有限公司", "集团股份有限公司", "有限公司", "分公司", "总公司", "集团公司",
    "集团", "股份", "控股", "公司", "coltd", "co", "ltd", "limited", "inc", "corp", "corporation", "company", "group",
]
_SUFFIX_RE = re.compile("(?:" + "|".join(sorted(map(re.escape, SUFFIXES), key=len, reverse=True)) + r")$")
_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)
_PAREN_RE = re.compile(r"[（(][^）)]*[）)]")


def basic(text: str | None) -> str:
    """NFKC (full-width → half-width), lower case, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def phone(text: str | None) -> str:
    """Digits only, without the +86/0086 country prefix: ``+86 138-0000-0001`` → ``13800000001``;
    landlines keep their area code: ``(0571) 8700-1234`` → ``057187001234``."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", text or ""))
    rest = None
    if digits.startswith("0086"):
        rest = digits[4:]
    elif digits.startswith("86") and len(digits) in (12, 13):
        rest = digits[2:]
    if rest:
        if rest.startswith("1") and len(rest) == 11:
            digits = rest
        elif not rest.startswith("0") and len(rest) in (9, 10, 11):
            digits = "0" + rest  # +86 571 8700 1234 -> 0571 8700 1234
    return digits if len(digits) >= 5 else ""


def company(text: str | None) -> str:
    """A company name reduced to what distinguishes it: ``浙江省杭州市西湖茶业有限公司`` → ``西湖茶业``.

    Full-width characters become half-width, bracketed parts (``（杭州）``), punctuation,
    leading province and city names (with or without 省/市) and legal-form suffixes
    (有限公司, 股份, 集团, Co. Ltd...) are removed.
    """
    s = basic(text)
    s = _PAREN_RE.sub("", s)
    s = _PUNCT_RE.sub("", s)
    for _ in range(3):
        before = s
        s = _PLACE_RE.sub("", s)
        if len(s) > 4:
            s = _ADMIN_PREFIX_RE.sub("", s) if _ADMIN_PREFIX_RE.match(s) and len(s) - 3 >= 2 else s
        while True:
            stripped = _SUFFIX_RE.sub("", s)
            if stripped == s or len(stripped) < 2:
                break
            s = stripped
        if s == before:
            break
    return s


def bigrams(text: str) -> set[str]:
    """Character bigrams (a single character for one-character strings)."""
    if len(text) < 2:
        return {text} if text else set()
    return {text[i:i + 2] for i in range(len(text) - 1)}


def similarity(a: str, b: str) -> float:
    """Dice coefficient on character bigrams, 0..1."""
    ga, gb = bigrams(a), bigrams(b)
    if not ga or not gb:
        return 0.0
    return 2 * len(ga & gb) / (len(ga) + len(gb))


def mask_name(text: str | None) -> str:
    """``杭州西湖茶业有限公司`` → ``杭州******公司``; short names keep their first character."""
    if not text:
        return ""
    if len(text) <= 2:
        return text[0] + "*"
    if len(text) <= 4:
        return text[0] + "*" * (len(text) - 1)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


def mask_phone(text: str | None) -> str:
    if not text:
        return ""
    return text[:3] + "****" + text[-4:] if len(text) >= 8 else "*" * len(text)
