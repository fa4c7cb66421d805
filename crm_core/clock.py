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
