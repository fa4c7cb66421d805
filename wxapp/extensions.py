"""Flask extensions, created unbound and initialised by the app factory."""
from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

migrate = Migrate()
csrf = CSRFProtect()


def _login_key() -> str:
    """Throttle login attempts per client address *and* username, so one attacker cannot
    lock out everyone and one account cannot be guessed from many tabs."""
    username = ""
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            username = str(body.get("username", ""))[:64]
    else:
        username = request.form.get("username", "")[:64]
    return f"{get_remote_address()}|{username.lower()}"


limiter = Limiter(key_func=get_remote_address, key_prefix="wxcrm", headers_enabled=True)
