"""The staff phone workbench (移动工作台, ``/h5/staff/``): WeUI pages for engineers (and, as they land, salespeople
and managers) inside WeChat, on the same services as the console and the API.

:func:`init_app` registers the pages, their H5 home entry, and the link a staff notice about a work order opens.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wxapp.h5 import register_entry
    from wxapp.official_account.channels import register_staff_link
    from wxapp.staff import h5

    app.register_blueprint(h5.bp)
    register_entry("移动工作台", "staff_h5.home", "🧰", "我的工单、上门签到、处理与签字", staff_only=True)
    register_staff_link(h5.work_order_link)
