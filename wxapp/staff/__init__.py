"""The staff phone workbench (移动工作台, ``/h5/staff/``): WeUI pages for engineers, salespeople and managers inside
WeChat or 企业微信, on the same services as the console and the API.

:func:`init_app` registers the pages, their H5 home entry, and the link a staff notice about a work order opens.
"""
from __future__ import annotations

import functools
from pathlib import Path

from flask import Flask
from markupsafe import Markup

WEUI_CSS = "vendor/weui-2.6.26/weui-staff.min.css"


@functools.cache
def _static_text(static_folder: str, name: str) -> str:
    return (Path(static_folder) / name).read_text(encoding="utf-8")


def init_app(app: Flask) -> None:
    from wxapp.h5 import register_entry
    from wxapp.official_account.channels import register_staff_link
    from wxapp.staff import day, desk, h5, sales, sharing, team  # noqa: F401 (sharing: its pages register on import)

    app.register_blueprint(h5.bp)
    # the WeUI subset is inlined in each staff page: on a slow link a separate stylesheet costs a second round trip
    # before anything is painted (bench/staff_pages.py); compressed with the page it is 13 KB
    app.jinja_env.globals["weui_css"] = lambda: Markup(_static_text(app.static_folder, WEUI_CSS).replace("</", "<\\/"))
    register_entry("移动工作台", "staff_h5.home", "🧰", "我的工单、上门签到、处理与签字", staff_only=True)
    register_staff_link(h5.work_order_link)
    register_staff_link(sales.approval_link)
    register_staff_link(team.plan_link)
    register_staff_link(day.activity_link)
    register_staff_link(desk.conversation_link)
