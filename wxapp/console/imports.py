"""数据导入 (console): pick what to import, download its template, upload the filled sheet for a 预检 (the
dry run, every row marked 新建 / 撞单 / 有误 with the reason), confirm, and watch the job's progress bar until
the result file can be downloaded. The file checked is the file imported: the 预检 keeps it as a draft."""
from __future__ import annotations

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for

from crm_core import imports as svc
from crm_core.db import db
from crm_core.errors import DomainError
from crm_core.labels import LABELS
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.exports import file_response
from wxapp.pages import act

SHOWN_ROWS = 500  # a 预检 lists the rows that need a look first, then the rest, up to this many


def _allowed_kinds():
    return [k for k in svc.KINDS.values() if g.actor.can(*k.permission)]


@bp.get("/imports")
@console_login_required
def imports_home():
    kinds = _allowed_kinds()
    if not kinds:
        abort(403)
    chosen = svc.KINDS.get(request.args.get("kind", "")) or kinds[0]
    if chosen not in kinds:
        chosen = kinds[0]
    return render_template("console/imports.html", kinds=kinds, chosen=chosen, recent=svc.recent_imports(g.actor),
                           status_labels=LABELS["import_status"], max_rows=svc.MAX_ROWS, explain=svc.explain,
                           kind_labels={k.code: k.label for k in svc.KINDS.values()})


@bp.get("/imports/<kind>/template")
@console_login_required
def import_template_file(kind: str):
    k = svc.KINDS.get(kind)
    if k is None or not g.actor.can(*k.permission):
        abort(404)
    return file_response(svc.template(kind), f"{k.label}导入模板.xlsx", svc.XLSX)


@bp.post("/imports/<kind>/check")
@console_login_required
def import_check(kind: str):
    f = request.files.get("file")
    data = f.read(svc.MAX_BYTES + 1) if f else b""
    try:
        job = svc.start(g.actor, kind, data, f.filename if f else None, draft=True)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("console.imports_home", kind=kind))
    return redirect(url_for("console.import_page", import_id=job.id))


def _job(import_id: int):
    try:
        return svc.get_import(g.actor, import_id)
    except DomainError:
        abort(404)


@bp.get("/imports/<int:import_id>")
@console_login_required
def import_page(import_id: int):
    job = _job(import_id)
    check = rows = None
    if job.status == "draft":
        from crm_core import media

        try:
            check = svc.dry_run(g.actor, job.kind, media.storage().get(job.file_key))
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for("console.imports_home", kind=job.kind))
        order = {"error": 0, "collision": 1, "new": 2}
        rows = sorted(check["rows"], key=lambda r: (order[r["status"]], r["row"]))[:SHOWN_ROWS]
    elif job.status == "done":
        rows = [{"row": r.row_no, "status": r.status, "message": r.message}
                for r in svc.problem_rows(job.id, SHOWN_ROWS)]
    return render_template("console/import.html", job=job, info=svc.job_dict(job), check=check, rows=rows,
                           kind=svc.KINDS[job.kind], status_labels=LABELS["import_status"],
                           dry_labels=svc.DRY_LABELS, result_labels=svc.RESULT_LABELS, shown=SHOWN_ROWS)


@bp.post("/imports/<int:import_id>/confirm")
@console_login_required
def import_confirm(import_id: int):
    _job(import_id)
    back = url_for("console.import_page", import_id=import_id)
    return act(lambda: svc.confirm(g.actor, import_id), "已开始导入，完成后可下载导入结果。", back)


@bp.get("/imports/<int:import_id>/status")
@console_login_required
def import_status(import_id: int):
    info = svc.job_dict(_job(import_id))
    info["status_label"] = LABELS["import_status"].get(info["status"], info["status"])
    return jsonify(info)


@bp.get("/imports/<int:import_id>/result")
@console_login_required
def import_result(import_id: int):
    _job(import_id)
    try:
        data, name = svc.result_file(g.actor, import_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("console.import_page", import_id=import_id))
    return file_response(data, name, svc.XLSX)


@bp.get("/exports/<path:name>")
@console_login_required
def export_list(name: str):
    """导出 from a console list: the JSON API's own export of that list (``wxapp.exports.register``), with the
    page's filters, within the user's scope and export permission, audited — run for the signed-in user."""
    from wxapp.exports import REGISTERED
    from wxapp.openapi import parse_query

    if name not in REGISTERED:
        abort(404)
    export, query_model, _ = REGISTERED[name]
    try:
        resp = export(parse_query(query_model))
        db.session.commit()  # the export's audit entry (the API commits it through its own wrapper)
        return resp
    except DomainError as exc:
        db.session.rollback()
        from wxapp.pages import denied

        return denied(exc)
