"""Redis lists as write-behind queues, drained in order by one writer at a time.

Used by the callback's fast path and by material page views: the request appends (one
``RPUSH``), a job drains. ``handle(items)`` writes a batch and commits; the items leave the
list only after that (``LTRIM``), so a writer that crashes between the two re-writes the batch
on its next run — handlers must be idempotent (insert-or-ignore on a key). A lock key keeps a
second writer from trimming what the first has not written.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable


def drain_list(conn, queue_key: str, lock_key: str, handle: Callable[[list[bytes]], None], *, batch: int = 500,
               wait: float = 0.0, lock_ttl: int = 120) -> int:
    """Drain ``queue_key``; returns how many items were handled (0 when another writer runs
    and does not finish within ``wait`` seconds)."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not conn.set(lock_key, token, nx=True, ex=lock_ttl):
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.02)
    moved = 0
    try:
        while True:
            items = conn.lrange(queue_key, 0, batch - 1)
            if not items:
                break
            handle(items)
            conn.ltrim(queue_key, len(items), -1)
            moved += len(items)
    finally:
        if (conn.get(lock_key) or b"").decode() == token:
            conn.delete(lock_key)
    return moved
