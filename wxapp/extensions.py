"""Flask extensions, created unbound and initialised by the app factory."""
from __future__ import annotations

from flask import current_app, request
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

migrate = Migrate()
csrf = CSRFProtect()
compress = Compress()  # pages, CSS and JS only (COMPRESS_MIMETYPES in config): JSON and WeChat XML go as they are


def login_username() -> str:
    """The username a login request names, normalised as login itself reads it (whitespace
    stripped), whatever the Content-Type claims: JSON bodies are parsed as the API parses them
    (``force=True``), forms as forms. Lower-cased for the throttle key only."""
    username = request.form.get("username") if request.form else None
    if username is None:
        body = request.get_json(silent=True, force=True)
        username = body.get("username") if isinstance(body, dict) else ""
    return str(username or "").strip()[:64].lower()


def _login_key() -> str:
    """Failed logins per client address *and* username: one account cannot be guessed from many tabs."""
    return f"login|{get_remote_address()}|{login_username()}"


def _login_address_key() -> str:
    """Failed logins per client address, whatever the username: one password sprayed over many names."""
    return f"login-addr|{get_remote_address()}"


def _failed(response) -> bool:
    return response.status_code == 401


def login_throttle(view):
    """Both login limits on a view (API token, console login, H5 staff bind); only failures count.
    Storage is shared by every process through Redis in scale-out mode (docs/security.md)."""
    view = limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_key, methods=["POST"],
                         deduct_when=_failed)(view)
    return limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], key_func=_login_address_key,
                         methods=["POST"], deduct_when=_failed)(view)


limiter = Limiter(key_func=get_remote_address, key_prefix="wxcrm", headers_enabled=True)
