"""Time helpers. Everything is stored as naive UTC so SQLite and PostgreSQL agree.

Tests may shift the clock with :func:`travel` (reminders, retries, token expiry), so the
code under test reads time only through :func:`utcnow`.
"""
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

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
