"""Who is acting and under which request id, for the audit log and structured logs.

Services receive the actor explicitly; the :func:`service` decorator also publishes it in a
context variable so the audit listener (which runs inside SQLAlchemy's flush) can name them.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar

current_actor: ContextVar = ContextVar("current_actor", default=None)
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


@contextmanager
def acting_as(actor):
    """Run a block as ``actor`` (the audit log records them)."""
    token = current_actor.set(actor)
    try:
        yield actor
    finally:
        current_actor.reset(token)


def service(fn):
    """Mark a service function whose first argument is the acting :class:`Actor`."""

    @functools.wraps(fn)
    def wrapper(actor, *args, **kwargs):
        with acting_as(actor):
            return fn(actor, *args, **kwargs)

    return wrapper
