"""Time helpers. Everything is stored as naive UTC so SQLite and PostgreSQL agree.

Tests may shift the clock with :func:`travel` (reminders, retries, token expiry), so the
code under test reads time only through :func:`utcnow`.
"""
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_offset = timedelta(0)


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the storage convention)."""
    return datetime.now(timezone.utc).replace(tzinfo=None) + _offset


@contextmanager
def travel(delta: timedelta):
    """Move the clock forward by ``delta`` inside the block."""
    global _offset
    old = _offset
    _offset = old + delta
    try:
        yield
    finally:
        _offset = old


# --- the organisation's time zone: stored in UTC, shown local ------------------------------------
DEFAULT_TIMEZONE = "Asia/Shanghai"
_default_tz = DEFAULT_TIMEZONE


def configure_timezone(name: str) -> None:
    """The default zone for organisations that set none (``WXCRM_TIMEZONE``)."""
    global _default_tz
    ZoneInfo(name)  # raises on an unknown name
    _default_tz = name


def default_timezone() -> str:
    return _default_tz


def to_utc(value: datetime, assume: timezone | None = None) -> datetime:
    """The stored form of a time: naive UTC. An aware time is converted; a naive one is taken to be
    in ``assume`` (default: already UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=assume or timezone.utc)
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(value, tz: str | None = None) -> datetime | None:
    """A stored naive-UTC datetime (or an ISO string, ``Z`` or not) as an aware local datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(ZoneInfo(tz or _default_tz))


def local_str(value, fmt: str = "%Y-%m-%d %H:%M", tz: str | None = None) -> str:
    """The one way a person is shown a time: in the organisation's zone, ``fmt`` (empty for none)."""
    local = to_local(value, tz)
    return local.strftime(fmt) if local else ""


def local_today(tz: str | None = None):
    """Today's date where the organisation is."""
    return to_local(utcnow(), tz).date()


def local_date_of(value: datetime, tz: str | None = None):
    """The day a stored naive-UTC time falls on where the organisation is."""
    return to_local(value, tz).date()


def day_bounds(date_from, date_to, tz: str | None = None) -> tuple[datetime, datetime]:
    """The stored (naive UTC) half-open span [start of ``date_from``, start of the day after ``date_to``) in ``tz``."""
    zone = ZoneInfo(tz or _default_tz)
    start = datetime.combine(date_from, datetime.min.time()).replace(tzinfo=zone)
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time()).replace(tzinfo=zone)
    return to_utc(start), to_utc(end)


def report_days(date_from, date_to, tz: str | None = None, *, default_days: int = 30, max_days: int = 367):
    """A report's range of local days: to today (in ``tz``) and ``default_days`` back unless given; refused when it is
    reversed or longer than ``max_days``. Returns ``(date_from, date_to, start, end)``, the last two the stored span."""
    from crm_core.errors import ValidationFailed

    date_to = date_to or local_today(tz)
    date_from = date_from or date_to - timedelta(days=default_days - 1)
    if date_from > date_to:
        raise ValidationFailed("开始日期不能晚于结束日期。", fields={"date_from": "after date_to"})
    if (date_to - date_from).days >= max_days:
        raise ValidationFailed("查询范围不能超过一年。", fields={"date_from": "range too long"})
    return (date_from, date_to, *day_bounds(date_from, date_to, tz))
