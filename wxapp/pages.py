"""Helpers every console page module shares (CRM core, check-ins, self-service, marketing)."""
from __future__ import annotations

from flask import flash, redirect, render_template

from crm_core.db import db
from crm_core.errors import DomainError


def denied(exc: DomainError):
    """A refusal as a page, with the service's message and status."""
    return render_template("console/denied.html", message=exc.message), exc.status


def act(fn, ok: str, back: str):
    """Run a form action: commit and flash ``ok``, or roll back and flash the refusal; then go ``back``."""
    try:
        fn()
        db.session.commit()
        flash(ok, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(back)


def photo_upload(purpose: str, *, org_id: int | None, employee_id: int | None = None, openid: str | None = None):
    """The multipart ``file`` of this request, checked, cleaned and stored (H5 and API uploads)."""
    from flask import jsonify, request

    from crm_core import media
    from crm_core.errors import ValidationFailed

    f = request.files.get("file")
    if f is None:
        raise ValidationFailed("请选择一张照片。", fields={"file": "required"})
    row = media.save_upload(f.read(media.MAX_IMAGE_BYTES + 1), purpose, org_id=org_id, employee_id=employee_id, openid=openid)
    db.session.commit()
    return jsonify({"id": row.id, "width": row.width, "height": row.height}), 201
