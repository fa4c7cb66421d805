"""Configuration from environment variables (and a ``.env`` file), checked at start-up.

The names are fixed by SPEC.md; ``docs/configuration.md`` lists them all.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    """The configuration cannot run; the message is one line that says why."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _embedded_limiter_uri(database_url: str) -> str:
    """Without Redis, rate-limit counters go to a SQLite file beside the embedded database, so
    every process on the host counts together (wxapp.ratelimit_storage); in-memory otherwise."""
    prefix = "sqlite:///"
    path = database_url[len(prefix):].split("?")[0] if database_url.startswith(prefix) else ""
    if not path or path == ":memory:":
        return "memory://"
    import wxapp.ratelimit_storage  # noqa: F401  (registers the wxcrm+sqlite scheme)

    return f"wxcrm+sqlite:///{path}.ratelimit"


def _resolve_sqlite(url: str) -> str:
    """Make relative SQLite paths relative to the working directory (Flask-SQLAlchemy
    would otherwise put them under the instance folder) and create the folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:" or url.startswith("sqlite:////"):
        return url
    path = Path(url[len(prefix):].split("?")[0])
    if not path.is_absolute():
        path = Path.cwd() / path
    path.parent.mkdir(parents=True, exist_ok=True)
    query = url.split("?", 1)[1] if "?" in url else ""
    return prefix + str(path) + (f"?{query}" if query else "")


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config from the environment, then ``overrides``, then check it."""
    overrides = dict(overrides or {})
    env = overrides.get("WXCRM_ENV") or os.environ.get("WXCRM_ENV", "development")
    production = env == "production"
    cfg: dict = {
        "WXCRM_ENV": env,
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", "sqlite:///instance/wxcrm.db"),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "WECHAT_APPID": os.environ.get("WECHAT_APPID") or None,
        "WECHAT_SECRET": os.environ.get("WECHAT_SECRET") or None,
        "WECHAT_TOKEN": os.environ.get("WECHAT_TOKEN") or None,
        "WECHAT_AES_KEY": os.environ.get("WECHAT_AES_KEY") or None,
        # plain | compatible | safe (SPEC.md); unset = safe when an AES key is set, else plain
        "WECHAT_ENCRYPT_MODE": (os.environ.get("WECHAT_ENCRYPT_MODE") or "").strip().lower() or None,
        "WECHAT_API_BASE": os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com/"),
        # 企业微信 (WeCom) application for staff notices and staff sign-in (SPEC.md); unset = the official account
        "WECOM_CORP_ID": os.environ.get("WECOM_CORP_ID") or None,
        "WECOM_AGENT_ID": os.environ.get("WECOM_AGENT_ID") or None,
        "WECOM_SECRET": os.environ.get("WECOM_SECRET") or None,
        "WECOM_API_BASE": os.environ.get("WECOM_API_BASE", "https://qyapi.weixin.qq.com/cgi-bin/"),
        # Tencent Location Service key (腾讯位置服务): a follower's shared location shows as a small static map in 在线客服;
        # unset = a card with the place's name, its coordinates and a link that opens Tencent's map
        "MAP_KEY": os.environ.get("WXCRM_MAP_KEY") or None,
        # service (服务号: 4 mass sends a calendar month) or subscription (订阅号: one a day) — the 群发 allowance
        "WECHAT_ACCOUNT_TYPE": (os.environ.get("WECHAT_ACCOUNT_TYPE") or "service").strip().lower(),
        "WECHAT_TIMESTAMP_TOLERANCE": _int("WECHAT_TIMESTAMP_TOLERANCE", 300),
        # seconds a router handler may take before the callback answers "success" and the
        # handler's reply goes out later as a customer-service message (WeChat waits 5 s)
        "WECHAT_HANDLER_BUDGET": float(os.environ.get("WXCRM_WECHAT_HANDLER_BUDGET", "3.5")),
        # how long a WeChat retry waits for the first delivery's reply (WeChat gives each delivery 5 s)
        "WECHAT_RETRY_WAIT": float(os.environ.get("WXCRM_WECHAT_RETRY_WAIT", "4.5")),
        "WECHAT_TEMPLATE_NOTICE": os.environ.get("WECHAT_TEMPLATE_NOTICE") or None,
        # how long a callback's dedup key deduplicates WeChat's retries (its rows are kept for ever)
        "WECHAT_DEDUP_HORIZON_SECONDS": _int("WXCRM_WECHAT_DEDUP_HORIZON_SECONDS", 600),
        # the sandbox's access-token lifetime (WeChat: 7200 s; tests shorten it to see 42001)
        "SANDBOX_TOKEN_TTL": _int("WXCRM_SANDBOX_TOKEN_TTL", 7200),
        # the organisation the official account serves (its code); unset = the first organisation
        "WECHAT_ORG_CODE": os.environ.get("WXCRM_WECHAT_ORG") or None,
        # dev-only routes (/h5/dev-login, /sandbox): on in development, refused in production
        "DEV_ROUTES": _bool(os.environ.get("WXCRM_DEV_ROUTES"), default=not production),
        "ALLOW_SQLITE_IN_PRODUCTION": _bool(os.environ.get("WXCRM_ALLOW_SQLITE_IN_PRODUCTION")),
        "API_TOKEN_TTL_SECONDS": _int("WXCRM_API_TOKEN_TTL", 8 * 3600),
        "LOGIN_RATE_LIMIT": os.environ.get("WXCRM_LOGIN_RATE_LIMIT", "5 per minute;30 per hour"),
        # failed logins from one address over all usernames (password spraying)
        "LOGIN_ADDRESS_RATE_LIMIT": os.environ.get("WXCRM_LOGIN_ADDRESS_RATE_LIMIT", "20 per minute;100 per hour"),
        # reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0 = none)
        "TRUSTED_PROXIES": _int("WXCRM_TRUSTED_PROXIES", 0),
        # default time zone of organisations that set none; times are stored in UTC and shown in it
        "TIMEZONE": os.environ.get("WXCRM_TIMEZONE", "Asia/Shanghai"),
        # Strict-Transport-Security on every answer; on by default in production (behind HTTPS)
        "HSTS": os.environ.get("WXCRM_HSTS", "1" if os.environ.get("WXCRM_ENV") == "production" else "0") == "1",
        # uploaded photos (tickets, check-ins) on local disk; object storage plugs in behind crm_core.media.Storage
        "MEDIA_ROOT": os.environ.get("WXCRM_MEDIA_ROOT", "instance/media"),
        # the callback's write-behind spool (crm_core.spool): a local, persistent folder per host
        "SPOOL_DIR": os.environ.get("WXCRM_SPOOL_DIR", "instance/spool"),
        # 在线客服: a conversation nobody writes in for this long closes (the next message reopens it)
        "CONVERSATION_QUIET_MINUTES": _int("WXCRM_CONVERSATION_QUIET_MINUTES", 30),
        "SPOOL_FLUSH_SECONDS": float(os.environ.get("WXCRM_SPOOL_FLUSH_SECONDS", "0.2")),
        "SPOOL_FSYNC": _bool(os.environ.get("WXCRM_SPOOL_FSYNC")),
        # reverse geocoding of check-ins: offline (nearest known customer address), nominatim, baidu, amap
        "GEOCODER": os.environ.get("WXCRM_GEOCODER", "offline"),
        "GEOCODER_KEY": os.environ.get("WXCRM_GEOCODER_KEY") or None,
        # gzip for what a phone downloads to paint a page; JSON stays uncompressed (small, and CPU the write path keeps)
        "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript"],
        "COMPRESS_MIN_SIZE": 1024,
        "MAX_CONTENT_LENGTH": _int("WXCRM_MAX_UPLOAD_BYTES", 16 * 1024 * 1024),
        "API_MAX_JSON_BYTES": _int("WXCRM_MAX_JSON_BYTES", 256 * 1024),
        "JOBS_EAGER": _bool(os.environ.get("WXCRM_JOBS_EAGER")),
        "JOBS_TICKER": _bool(os.environ.get("WXCRM_JOBS_TICKER"), default=True),
        "LOG_FORMAT": os.environ.get("WXCRM_LOG_FORMAT", "json" if production else "text"),
        "LOG_LEVEL": os.environ.get("WXCRM_LOG_LEVEL", "INFO"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        # the session cookie is sent only when the session changes: with Flask's default (refresh on every request), a
        # poll begun before a sign-in in another tab answers after it with the old session and signs the user out again
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SQLALCHEMY_RECORD_QUERIES": False,
    }
    cfg.update(overrides)
    if "DATABASE_URL" in overrides:
        cfg["SQLALCHEMY_DATABASE_URI"] = overrides["DATABASE_URL"]
    cfg["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(cfg["SQLALCHEMY_DATABASE_URI"])
    mode = cfg.get("WECHAT_ENCRYPT_MODE") or ("safe" if cfg.get("WECHAT_AES_KEY") else "plain")
    if mode not in ("plain", "compatible", "safe"):
        raise RuntimeError(f"WECHAT_ENCRYPT_MODE must be plain, compatible or safe (got {mode!r})")
    if mode != "plain" and not cfg.get("WECHAT_AES_KEY"):
        raise RuntimeError(f"WECHAT_ENCRYPT_MODE={mode} needs WECHAT_AES_KEY")
    cfg["WECHAT_ENCRYPT_MODE"] = mode
    check_production(cfg)
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = secrets.token_hex(32)  # development: random per start
    # JSON columns keep Chinese readable (and searchable with LIKE) instead of ASCII escape sequences
    json_opts = {"json_serializer": lambda obj: json.dumps(obj, ensure_ascii=False)}
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        cfg["SQLALCHEMY_DATABASE_URI"] = _resolve_sqlite(cfg["SQLALCHEMY_DATABASE_URI"])
        cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 15}, **json_opts})
    else:
        # connect_timeout: a database that is away must fail fast (the callback then holds the message);
        # connections per process: sized to gunicorn's --threads (docs/operations.md), SQLAlchemy's 5 + 10 by default
        pool = {"pool_size": _int("WXCRM_DB_POOL_SIZE", 5), "max_overflow": _int("WXCRM_DB_MAX_OVERFLOW", 10)}
        cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "connect_args": {"connect_timeout": 2},
                                                     **pool, **json_opts})
    cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"] or _embedded_limiter_uri(cfg["SQLALCHEMY_DATABASE_URI"])
    return cfg


def _normalise_db_url(url: str) -> str:
    # Heroku-style postgres:// URLs and plain postgresql:// both mean psycopg 3 here
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def check_production(cfg: dict) -> None:
    """Refuse unsafe production settings, one line each."""
    if cfg["WXCRM_ENV"] != "production":
        return
    if not cfg.get("SECRET_KEY"):
        raise ConfigError("WXCRM_ENV=production needs SECRET_KEY: sessions would not survive a restart and could be forged")
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") and not cfg.get("ALLOW_SQLITE_IN_PRODUCTION"):
        raise ConfigError("WXCRM_ENV=production refuses SQLite (set DATABASE_URL to PostgreSQL, or WXCRM_ALLOW_SQLITE_IN_PRODUCTION=1 for a single-process install)")
    if cfg.get("DEV_ROUTES"):
        raise ConfigError("WXCRM_ENV=production refuses dev-only routes (unset WXCRM_DEV_ROUTES): /h5/dev-login would let anyone act as any WeChat user")


DEV_WECHAT_APPID = "wxdevappid"


def wechat_appid() -> str:
    """The official account's AppID (a fixed stand-in when none is configured, in development)."""
    from flask import current_app

    return current_app.config.get("WECHAT_APPID") or DEV_WECHAT_APPID


def wechat_org_id() -> int | None:
    """The organisation that runs the official account: ``WXCRM_WECHAT_ORG`` (its code), else the first one; None
    before any organisation exists. Followers who have not verified who they are belong to it."""
    from flask import current_app

    from crm_core.db import db
    from crm_core.org.models import Organization

    code = current_app.config.get("WECHAT_ORG_CODE")
    stmt = db.select(Organization.id)
    stmt = stmt.where(Organization.code == code) if code else stmt.order_by(Organization.id)
    return db.session.scalar(stmt.limit(1))
