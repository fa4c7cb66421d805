"""待我审批 in the console: every document waiting for my decision (``crm_core.sales.approvals``), each approved or
rejected with a comment, linked to its record (whose page keeps the history)."""
from __future__ import annotations

from flask import g, render_template, request, url_for

from crm_core.sales import approvals
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.guards import safe_next
from wxapp.pages import act


@bp.get("/approvals")
@console_login_required
def approvals_inbox():
    return render_template("console/approvals.html", items=approvals.inbox(g.actor))


@bp.post("/approvals/<ref>")
@console_login_required
def approvals_decide(ref: str):
    approve = request.form.get("decision") == "approve"
    comment = request.form.get("comment", "")[:500]
    done = {}

    def decide():
        if not approve and not comment.strip() and not ref.startswith("plan-"):
            from crm_core.errors import ValidationFailed

            raise ValidationFailed("驳回时请写明原因，提交人会收到通知。", fields={"comment": "required"})
        done["r"] = approvals.decide(g.actor, ref[:40], approve, comment)
        return done["r"]

    def said() -> str:
        if not approve:
            return "已退回。" if ref.startswith("plan-") else "已驳回，提交人会收到通知。"
        return "已同意，等待下一步审批。" if done["r"].get("status") == "pending" else "已通过。"
    return act(decide, said, _back())


@bp.post("/approvals/<ref>/remind")
@console_login_required
def approvals_remind(ref: str):
    """催办 from the record's page: the submitter reminds the step's approvers (once an hour)."""
    from crm_core.org import approvals_engine

    told = {}

    def remind():
        told["n"] = approvals_engine.remind(g.actor, *approvals_engine.parse_ref(ref))
    return act(remind, lambda: f"已催办：{told['n']} 位审批人会收到提醒。", _back())


def _back() -> str:
    """Where a decision taken on a record's page returns: that page (a console path), else the inbox."""
    return safe_next(request.form.get("back"), url_for("console.approvals_inbox"), ("/console/",))
