"""Field check-ins (移动签到): the salesperson's H5 page, the JSON API and managers' reports.

Importing the package adds its API operations and console pages to the shared blueprints
(before they are registered); :func:`init_app` registers the H5 blueprint, the H5 home
entry and the WeChat menu answer for 签到.
"""
from __future__ import annotations

from flask import Flask

from wxapp.checkin import api as _api  # noqa: F401  (adds /api/v1/checkins and the field reports)
from wxapp.checkin import console as _console  # noqa: F401  (adds /console/field/...)


def init_app(app: Flask) -> None:
    from crm_core.customers.customers import register_360_section
    from crm_core.field.checkins import visits_section
    from wxapp.checkin import h5
    from wxapp.h5 import register_entry
    from wxapp.official_account import router

    app.register_blueprint(h5.bp)
    register_360_section("visits", visits_section)
    register_entry("移动签到", "checkin_h5.page", "📍", "员工在客户现场签到、签退", staff_only=True)
    router.add(_menu_checkin, name="checkin.menu", msg_type="event", event="click", key_pattern=r"^MENU_CHECKIN$",
               label="菜单：签到（员工打开移动签到页）")


def _menu_checkin(ib) -> str:
    """The 签到 menu entry: a link to the check-in page (staff sign in there once)."""
    from flask import current_app

    base = current_app.config["PUBLIC_BASE_URL"]
    return f'点击进入<a href="{base}/h5/checkin">移动签到</a>（仅限公司员工，首次需用 CRM 账号登录）。'
