"""群发 in the console: a text to a follower tag, a segment's followers or everyone — previewed to one follower first,
within the account's allowance (shown), and each send's outcome as WeChat reported it (MASSSENDJOBFINISH)."""
from __future__ import annotations

from flask import current_app, g, render_template, request, url_for

from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.org.settings import org_timezone
from crm_core.wechat import mass, tags
from wxapp.auth import console_login_required
from wxapp.config import wechat_appid
from wxapp.console import bp
from wxapp.pages import act, denied, form_int


def _account_type() -> str:
    return current_app.config.get("WECHAT_ACCOUNT_TYPE") or "service"


@bp.get("/wechat/mass")
@console_login_required
def mass_sends():
    from crm_core.customers.segments import list_segments

    try:
        rows = mass.history(g.actor, wechat_appid())
    except DomainError as exc:
        return denied(exc)
    allowance = mass.allowance(wechat_appid(), _account_type(), org_timezone(g.actor.org_id))
    segments = list_segments(g.actor) if g.actor.can("customer", "view") else []
    return render_template("console/mass_sends.html", rows=rows, allowance=allowance, account_type=_account_type(),
                           tags=tags.list_tags(wechat_appid()), segments=segments,
                           can_send=g.actor.can("campaign", "edit"))


def _form():
    return {"target": request.form.get("target") or "", "text": request.form.get("text") or "",
            "tag_id": form_int(request.form.get("tag_id")), "segment_id": form_int(request.form.get("segment_id"))}


@bp.post("/wechat/mass/preview")
@console_login_required
def mass_preview():
    f = _form()
    return act(lambda: mass.preview(g.actor, wechat_appid(), request.form.get("openid") or "", f["text"]),
               "预览已发送，请在该粉丝的微信里查看。", url_for("console.mass_sends"))


@bp.post("/wechat/mass")
@console_login_required
def mass_send():
    f = _form()
    holder = {}

    def run():
        holder["row"] = mass.send(g.actor, wechat_appid(), _account_type(), f["target"], f["text"], tag_id=f["tag_id"],
                                  segment_id=f["segment_id"], tz=org_timezone(g.actor.org_id))
        db.session.flush()

    return act(run, lambda: f"已提交群发：{holder['row'].target_label}，约 {holder['row'].total_count} 位粉丝；微信完成后这里会显示结果。",
               url_for("console.mass_sends"))
