"""Helpers every console page module shares (CRM core, check-ins, self-service, marketing)."""
from __future__ import annotations

from flask import flash, redirect, render_template

from crm_core.db import db
from crm_core.errors import DomainError


def form_int(value) -> int | None:
    """An id typed or picked in a form: ASCII digits only (``²`` is no id), below ten digits; else None."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 10 else None


def denied(exc: DomainError):
    """A refusal as a page, with the service's message and status."""
    return render_template("console/denied.html", message=exc.message), exc.status


def act(fn, ok, back: str, then=None):
    """Run a form action: commit and flash ``ok`` (a text, or a function that words the result), or roll back and flash the refusal; then go ``back``
    (or, after success, to ``then(result)`` — the record the action made). A refused form comes back filled in as it was sent,
    the fields in error marked (:func:`keep_form`)."""
    try:
        result = fn()
        db.session.commit()
        if ok:
            flash(ok() if callable(ok) else ok, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        keep_form(exc.fields)
        return redirect(back)
    return redirect(then(result) if then else back)


KEPT_OUT = {"csrf_token", "_once", "password", "new_password"}


def keep_form(fields: dict | None) -> None:
    """Remember what this request's form held, for the page it redirects to (once.js fills it in)."""
    from flask import request, session

    values, size = {}, 0
    for key in request.form:
        if key in KEPT_OUT:
            continue
        items = request.form.getlist(key)
        size += sum(len(v) for v in items)
        if size > 20_000:  # the session is a cookie
            break
        values[key] = items
    session["form_retry"] = {"action": request.path, "values": values, "fields": dict(fields or {})}


def pop_form_retry() -> dict | None:
    from flask import session

    return session.pop("form_retry", None)


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


def pdf_response(body: bytes, ascii_name: str, name: str):
    """A PDF shown in the browser, saved under its Chinese name (RFC 6266 ``filename*``), never cached."""
    from urllib.parse import quote

    from flask import Response

    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store"})


def quote_pdf_response(q):
    """The quote's PDF (:func:`crm_core.sales.documents.quote_pdf`) as the console and the API answer it."""
    from crm_core.sales.documents import quote_pdf

    suffix = f"-v{q.version}" if q.version > 1 else ""
    return pdf_response(quote_pdf(q), f"quote-{q.number}{suffix}.pdf", f"报价单-{q.number}{suffix}.pdf")


def quote_url(q) -> str:
    """The customer's page for a quote inside WeChat (wxapp/h5/quotes.py), sent with the notice."""
    from flask import current_app

    return f"{current_app.config['PUBLIC_BASE_URL']}/h5/quotes/{q.id}"


def tell_quote_customer(q) -> int:
    """``on_sent`` for sending a quote from the console or the API: the customer's verified WeChat
    users get a notice linking their page (:func:`crm_core.wechat.quotes.tell_customer`)."""
    from crm_core.wechat.quotes import tell_customer
    from wxapp.config import wechat_appid

    return tell_customer(q, quote_url(q), wechat_appid())
