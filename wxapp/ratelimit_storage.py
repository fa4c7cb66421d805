"""A rate-limit store for the embedded mode that every process on the host shares.

Flask-Limiter counts in Redis whenever ``REDIS_URL`` is set. Without Redis, ``memory://`` would
give each gunicorn worker its own counters, so a login throttle of 5 per minute would be 5 per
worker. This store keeps the fixed-window counters in a small SQLite file beside the embedded
database (``<database>.ratelimit``), so all processes count together. It registers the scheme
``wxcrm+sqlite`` with the ``limits`` library: ``wxcrm+sqlite:////abs/path/file``.
"""
from __future__ import annotations

import sqlite3
import threading
import time

from limits.storage import Storage

SCHEMA = "CREATE TABLE IF NOT EXISTS counter (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL NOT NULL)"


class SQLiteStorage(Storage):
    STORAGE_SCHEME = ["wxcrm+sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = "/" + uri.split("://", 1)[1].lstrip("/")
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(SCHEMA)

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)  # autocommit; BEGIN IMMEDIATE below
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # one writer at a time across processes
        try:
            conn.execute("DELETE FROM counter WHERE key = ? AND expires_at <= ?", (key, now))
            conn.execute("INSERT OR IGNORE INTO counter (key, value, expires_at) VALUES (?, 0, ?)", (key, now + expiry))
            conn.execute("UPDATE counter SET value = value + ? WHERE key = ?", (amount, key))
            value = conn.execute("SELECT value FROM counter WHERE key = ?", (key,)).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(value)

    def get(self, key: str) -> int:
        row = self._conn().execute("SELECT value FROM counter WHERE key = ? AND expires_at > ?", (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._conn().execute("SELECT expires_at FROM counter WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._conn().execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        cur = self._conn().execute("DELETE FROM counter")
        return cur.rowcount

    def clear(self, key: str) -> None:
        self._conn().execute("DELETE FROM counter WHERE key = ?", (key,))
