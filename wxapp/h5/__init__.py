"""Pages opened inside WeChat (``/h5``): the phone layout and the WeChat-user session.

The OAuth flow that identifies the user arrives with the official-account gateway; in
development ``/h5/dev-login?openid=...`` stands in for it. Feature packages add their
entries to the H5 home with :func:`register_entry`.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from crm_core.errors import ValidationFailed
from wxapp.auth import start_wechat_session, wechat_openid
from wxapp.guards import safe_next

bp = Blueprint("h5", __name__, url_prefix="/h5")

_entries: list[dict] = []
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


def register_entry(title: str, endpoint: str, icon: str = "•", description: str = "", staff_only: bool = False) -> None:
    """Show a feature on the H5 home page (called by feature packages at app creation);
    ``staff_only`` entries are shown to WeChat users bound to an employee only."""
    if not any(e["endpoint"] == endpoint for e in _entries):
        _entries.append({"title": title, "endpoint": endpoint, "icon": icon, "description": description,
                         "staff_only": staff_only})


@bp.get("/dev-login")
def dev_login():
    """Development only: act as the WeChat user ``openid`` without OAuth."""
    if not current_app.config["DEV_ROUTES"]:
        abort(404)
    openid = request.args.get("openid", "")
    if not OPENID_RE.match(openid):
        raise ValidationFailed("openid 格式不正确（6–64 位字母、数字、-、_）。", fields={"openid": "invalid"})
    start_wechat_session(openid)
    return redirect(safe_next(request.args.get("next"), url_for("h5.home"), ("/h5/", "/m/")))


@bp.get("/")
def home():
    from wxapp.auth import staff_actor

    openid = wechat_openid()
    is_staff = bool(openid) and staff_actor() is not None
    entries = [e for e in _entries if e["endpoint"] in current_app.view_functions and (is_staff or not e["staff_only"])]
    return render_template("h5/home.html", openid=openid, entries=entries,
                           dev_routes=current_app.config["DEV_ROUTES"])


from wxapp.h5 import quotes  # noqa: E402,F401  (the customer's quote page)
