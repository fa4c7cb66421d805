"""The outbound WeChat client: wechatpy pointed at ``WECHAT_API_BASE``, with the access
token and the JS-SDK ticket cached for all processes and refreshed under a lock.

Many workers finding the token expired cause **one** fetch: the first takes the lock and
fetches; the others wait on the lock, then read what it stored. A token error (40001, 40014,
41001, 42001) refreshes once and retries the call once; the refresh is locked too and skipped
when another process has already replaced the failing token. Shared keys carry the AppID.
"""
from __future__ import annotations

import contextlib
import fcntl
import threading
import time
import weakref
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, text
from wechatpy import WeChatClient
from wechatpy.session import SessionStorage

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.wechat.models import CachedCredential
from wxapp.config import wechat_appid
from wxapp.official_account.errcodes import REFRESH_CODES

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


class RedisCredentials(SessionStorage):
    """Redis-backed cache with a Redis lock (scale-out mode)."""

    def __init__(self, conn, prefix: str = "wxcrm:wechat"):
        self.conn, self.prefix = conn, prefix

    def get(self, key, default=None):
        value = self.conn.get(f"{self.prefix}:{key}")
        return value.decode() if value is not None else default

    def set(self, key, value, ttl=None):
        self.conn.set(f"{self.prefix}:{key}", str(value), ex=int(ttl) if ttl else None)

    def delete(self, key):
        self.conn.delete(f"{self.prefix}:{key}")

    @contextlib.contextmanager
    def lock(self, key: str):
        with self.conn.lock(f"{self.prefix}:lock:{key}", timeout=15, blocking_timeout=15):
            yield


class DatabaseCredentials(SessionStorage):
    """Database-backed cache (embedded mode). The lock is an advisory lock on PostgreSQL and
    a file lock next to the SQLite database, so several local processes fetch once."""

    def get(self, key, default=None):
        with db.engine.connect() as conn:
            row = conn.execute(select(CachedCredential.value, CachedCredential.expires_at)
                               .where(CachedCredential.key == key)).first()
        if row is None or row.expires_at <= utcnow():
            return default
        return row.value

    def set(self, key, value, ttl=None):
        expires = utcnow() + timedelta(seconds=int(ttl) if ttl else 10 * 365 * 86400)
        with db.engine.begin() as conn:
            conn.execute(delete(CachedCredential).where(CachedCredential.key == key))
            conn.execute(CachedCredential.__table__.insert().values(key=key, value=str(value), expires_at=expires))

    def delete(self, key):
        with db.engine.begin() as conn:
            conn.execute(delete(CachedCredential).where(CachedCredential.key == key))

    @contextlib.contextmanager
    def lock(self, key: str):
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                    conn.commit()
            return
        import hashlib

        path = db.engine.url.database
        suffix = hashlib.sha1(key.encode()).hexdigest()[:12]  # one lock per key: the ticket lock nests the token lock
        lock_path = f"{path}.{suffix}.lock" if path and path != ":memory:" else f"/tmp/wxcrm-{suffix}.lock"
        with _thread_lock(key), open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class GatewayClient(WeChatClient):
    """wechatpy's client with a shared, locked token cache and a configurable API base."""

    def __init__(self, appid: str, secret: str, api_base: str, store):
        super().__init__(appid, secret, session=store, timeout=5)
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"
        self.store = store

    @property
    def access_token(self):
        token = self.store.get(self.access_token_key)
        if token:
            return token
        with self.store.lock(self.access_token_key):
            token = self.store.get(self.access_token_key)  # another process fetched it while we waited
            if token:
                return token
            self._locked_fetch()
            return self.store.get(self.access_token_key)

    def fetch_access_token(self, failed: str | None = None):
        """Refresh under the lock, once across processes: a token another process stored after
        the one that failed is used as it is; only the failing token (or none) is refetched."""
        with self.store.lock(self.access_token_key):
            current = self.store.get(self.access_token_key)
            if current and failed and current != failed:
                return {"access_token": current}
            return self._locked_fetch()

    def _handle_result(self, res, method=None, url=None, result_processor=None, **kwargs):
        """WeChat's token errors (40001, 40014, 41001, 42001; errcodes.REFRESH_CODES): refresh once
        and retry the call once — never a loop, whatever the second answer is."""
        result = res if isinstance(res, dict) else self._decode_result(res)
        code = result.get("errcode") if isinstance(result, dict) else None
        if self.auto_retry and code is not None and int(code) in REFRESH_CODES and "params" in kwargs:
            self.fetch_access_token(failed=kwargs["params"].get("access_token"))
            kwargs["params"]["access_token"] = self.store.get(self.access_token_key)
            self.auto_retry = False
            try:
                return self._request(method=method, url_or_endpoint=url, result_processor=result_processor, **kwargs)
            finally:
                self.auto_retry = True
        self.auto_retry, retry = False, self.auto_retry  # the base class would retry again: it must not
        try:
            return super()._handle_result(res, method, url, result_processor, **kwargs)
        finally:
            self.auto_retry = retry

    def _locked_fetch(self):
        # wechatpy hard-codes the token URL; ours follows WECHAT_API_BASE (the sandbox in dev)
        result = self._fetch_access_token(url=self.API_BASE_URL + "token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
        self.store.set(self.access_token_key + ":fetched_at", str(time.time()), 7200)
        return result

    def jsapi_ticket(self) -> str:
        """The JS-SDK ticket, cached for all processes and fetched under a lock."""
        key = f"{self.appid}_jsapi_ticket"
        ticket = self.store.get(key)
        if ticket:
            return ticket
        with self.store.lock(key):
            ticket = self.store.get(key)
            if not ticket:
                res = self.jsapi.get_ticket("jsapi")
                ticket = res["ticket"]
                self.store.set(key, ticket, max(60, int(res.get("expires_in", 7200)) - 300))
        return ticket


def credential_store():
    conn = current_app.extensions.get("wxcrm_redis")
    return RedisCredentials(conn) if conn is not None else DatabaseCredentials()


_clients = threading.local()


def get_client() -> GatewayClient:
    """The app's WeChat client, one per thread and kept: its HTTP session keeps its connections to
    WeChat open between calls (a notice job no longer opens a new TLS connection each time). Not
    shared across threads: the client flips ``auto_retry`` around each call."""
    cfg = current_app.config
    app = current_app._get_current_object()
    key = (wechat_appid(), cfg["WECHAT_SECRET"] or "dev-secret", cfg["WECHAT_API_BASE"])
    held = getattr(_clients, "entry", None)
    if held is not None and held[0]() is app and held[1] == key:
        return held[2]
    client = GatewayClient(*key, credential_store())
    _clients.entry = (weakref.ref(app), key, client)
    return client


__all__ = ["GatewayClient", "get_client", "credential_store"]
