"""Public pages and images of marketing materials:

- ``GET /m/{code}?c=&s=&src=qr`` — the material page: records the visit server-side under the
  sharer's token ``s``, gives the viewer their own token for the share config, Open Graph tags,
  the intent form. Inside WeChat the viewer is identified by silent OAuth (openid); elsewhere by
  a first-party cookie. Drafts open only with a signed, expiring ``preview`` token.
- ``POST /m/{code}/seen`` (the page's script confirms a human), ``/shares`` (a forward),
  ``/intents`` (the intent form → a lead).
- ``GET /materials/{id}/qr.png|qr.svg|poster.png`` — cached, ETag / 304, Cache-Control.
- ``GET /h5/campaigns`` — what was pushed to this WeChat user, newest first, searchable.
"""
from __future__ import annotations

import io
import secrets
from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from pydantic import Field

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import NotFound, ValidationFailed
from materials import qr, services, visitqueue
from materials.models import Material, ShareNode
from wxapp import security_headers
from wxapp.auth import wechat_openid, wechat_user_required
from wxapp.extensions import limiter
from wxapp.openapi import Model, h5_api, parse_json_body, parse_query

bp = Blueprint("materials", __name__, template_folder="templates")
COOKIE = "wxcrm_vid"
PREVIEW_MAX_AGE = 7 * 24 * 3600


class _ClockSigner(TimestampSigner):
    """Timestamps from the product's clock (so expiry follows ``crm_core.clock``, as tests travel)."""

    def get_timestamp(self) -> int:
        return int((utcnow() - datetime(1970, 1, 1)).total_seconds())


_signers: dict[tuple, URLSafeTimedSerializer] = {}


def _signer(salt: str) -> URLSafeTimedSerializer:
    key = (current_app.config["SECRET_KEY"], salt)
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt, signer=_ClockSigner)
    return signer


def preview_token(material_id: int, version: int) -> str:
    return _signer("material-preview").dumps({"m": material_id, "v": version})


def _preview_ok(m: Material) -> bool:
    token = request.args.get("preview")
    if not token:
        return False
    try:
        data = _signer("material-preview").loads(token, max_age=PREVIEW_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return False
    return data.get("m") == m.id


def _viewer_of(cookies, openid: str | None) -> tuple[str, str | None]:
    """(viewer_key, new cookie value to set): the openid when WeChat identified the viewer,
    else the first-party cookie, minted on the first visit."""
    if openid:
        return f"o:{openid}", None
    cookie = cookies.get(COOKIE, "")
    if not (16 <= len(cookie) <= 40 and cookie.replace("-", "").replace("_", "").isalnum()):
        cookie = secrets.token_urlsafe(18)
        return f"c:{cookie}", cookie
    return f"c:{cookie}", None


def _in_wechat() -> bool:
    return "MicroMessenger" in (request.headers.get("User-Agent") or "")


def _campaign_id(args=None) -> int | None:
    c = (request.args if args is None else args).get("c", "")
    return int(c) if c.isdigit() and len(c) < 10 else None


@bp.get("/m/<code>")
def page(code: str):
    if visitqueue.redis() is not None and not request.args.get("preview"):
        fast = _lane_page(current_app, request, code)  # when the lane did not take it (it falls back here)
        if fast is not None:
            return fast
    m = services.material_by_code(code)
    preview = m.status == "draft"
    if preview and not _preview_ok(m):
        raise NotFound("内容不存在或尚未发布。")
    if _in_wechat() and not wechat_openid() and not preview and current_app.config.get("WECHAT_APPID"):
        return redirect(f"/h5/oauth/start?{urlencode({'next': request.full_path})}")  # silent snsapi_base
    cid = _campaign_id()
    node = None
    visit_id = None
    new_cookie = None
    view = {"id": m.id, "code": m.code, "title": m.title, "summary": m.summary, "body_html": m.body_html,
            "cover_media_id": m.cover_media_id, "version": m.version}
    if not preview:
        openid = wechat_openid()
        viewer_key, new_cookie = _viewer_of(request.cookies, openid)
        visit_id, node = services.record_visit(m, campaign_id=cid, viewer_key=viewer_key, openid=openid,
                                               via_token=request.args.get("s"), new_viewer=bool(new_cookie),
                                               source="qr" if request.args.get("src") == "qr" else "link",
                                               user_agent=request.headers.get("User-Agent"))
        db.session.commit()
    return _render_page(view, node, cid, _signer("visit").dumps(visit_id) if visit_id else "", preview, new_cookie)


_SHARE, _VISIT, _NONCE = "@@WXCRM_SHARE_URL@@", "@@WXCRM_VISIT@@", "@@WXCRM_NONCE@@"
_bodies: dict[tuple, str] = {}


def _page_body(view: dict, cid, in_wechat: bool, preview: bool) -> str:
    """The page rendered once per material version, campaign and client kind, with
    placeholders for the two things that differ per view (the viewer's share link, the visit)."""
    key = (view["code"], view["id"], view["version"], cid, in_wechat, preview, current_app.config["PUBLIC_BASE_URL"], id(db.engine))
    body = _bodies.get(key)
    if body is None:
        base = current_app.config["PUBLIC_BASE_URL"]
        own_nonce = g.get("csp_nonce")
        g.csp_nonce = _NONCE  # the script nonce is filled per response, like the share link
        body = render_template(
            "materials/page.html", m=view, share_url=_SHARE, base=base, in_wechat=in_wechat, preview=preview, csrf=False,
            campaign_id=cid, visit_token=_VISIT,
            cover_url=f"{base}/materials/{view['id']}/cover.jpg" if view["cover_media_id"] else f"{base}/materials/{view['id']}/qr.png")
        if own_nonce is None:
            g.pop("csp_nonce")
        else:
            g.csp_nonce = own_nonce
        if len(_bodies) > 2000:
            _bodies.clear()
        _bodies[key] = body
    return body


def _fill(body: str, share_url: str, visit_token: str) -> str:
    import json
    from html import escape

    body = body.replace(json.dumps(_SHARE), json.dumps(share_url)).replace(_SHARE, escape(share_url))
    return body.replace(json.dumps(_VISIT), json.dumps(visit_token))


def _render_page(view: dict, node: dict | None, cid, visit_token: str, preview: bool, new_cookie: str | None,
                 in_wechat: bool | None = None) -> Response:
    base = current_app.config["PUBLIC_BASE_URL"]
    cid = node["campaign_id"] if node else cid
    share_url = f"{base}/m/{view['code']}?" + urlencode({k: v for k, v in (("c", cid), ("s", node["token"] if node else None)) if v})
    in_wechat = _in_wechat() if in_wechat is None else in_wechat
    nonce = security_headers.new_nonce()
    body = _fill(_page_body(view, cid, in_wechat, preview), share_url, visit_token).replace(_NONCE, nonce)
    resp = Response(body, mimetype="text/html")
    g.csp_nonce = nonce
    security_headers.apply(resp, nonce, "/m/", current_app.config.get("HSTS", False))  # the lane has no Flask hooks
    if new_cookie:
        resp.set_cookie(COOKIE, new_cookie, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    resp.headers["Cache-Control"] = "no-store"  # every view is recorded
    return resp


def _same_origin() -> None:
    """The page's own calls carry no CSRF token (the page writes no session); the viewer's
    cookies are SameSite=Lax, and a foreign Origin is refused outright."""
    origin = request.headers.get("Origin")
    if origin and origin.split("://", 1)[-1] != request.host:
        raise ValidationFailed("请求来源不正确。", code="bad_origin")


def _my_token(code: str) -> tuple[Material, str]:
    """The viewer's own share token: derived from who they are (openid or cookie), the
    material and the campaign — never taken from the client."""
    _same_origin()
    m = services.material_by_code(code)
    viewer_key, minted = _viewer_of(request.cookies, wechat_openid())
    if minted:  # no identity yet: this browser never opened the page
        raise ValidationFailed("请先打开页面。", code="no_visit")
    cid, key = _campaign_id(), 0
    if cid is not None:
        org_id, mids = services._campaign_materials(cid)
        key = cid if org_id == m.org_id and m.id in mids else 0
    return m, visitqueue.node_token(m.id, key, viewer_key)


def _my_node(code: str) -> tuple[Material, ShareNode]:
    m, token = _my_token(code)
    conn = visitqueue.redis()
    if conn is not None:
        visitqueue.drain(conn, wait=3.0)  # an intent is rare: write the queued views first
    node = db.session.scalars(db.select(ShareNode).where(ShareNode.token == token)).first()
    if node is None:
        raise ValidationFailed("请先打开页面。", code="no_visit")
    return m, node


class Seen(Model):
    v: str = Field(min_length=1, max_length=200)


@h5_api.describe("/m/<code>/seen", "POST", summary="The page confirms a visit it was served", tags=("public",),
                 body=Seen, auth=False)
@bp.post("/m/<code>/seen")
def seen(code: str):
    _same_origin()
    body = parse_json_body(Seen)
    try:
        visit_id = _signer("visit").loads(body.v, max_age=3600)
    except (BadSignature, SignatureExpired):
        raise ValidationFailed("无效的访问标识。", fields={"v": "invalid"}) from None
    if isinstance(visit_id, str):  # a queued view: its confirmation follows it through the queue
        visitqueue.push({"t": "seen", "vkey": visit_id})
        return jsonify({"counted": None, "queued": True})
    counted = services.confirm_visit(int(visit_id))
    db.session.commit()
    return jsonify({"counted": counted})


class ShareIn(Model):
    channel: str = Field(default="timeline", max_length=12)


@h5_api.describe("/m/<code>/shares", "POST", summary="A share of the page (answers the new share token)",
                 tags=("public",), body=ShareIn, auth=False, status=201)
@bp.post("/m/<code>/shares")
def share(code: str):
    """The JS-SDK share callback fired: a forward by this viewer (their own token)."""
    body = parse_json_body(ShareIn)
    if visitqueue.redis() is not None:
        _, token = _my_token(code)
        if body.channel not in ("timeline", "appmessage"):
            raise ValidationFailed("分享渠道只能是 timeline 或 appmessage。", fields={"channel": "invalid"})
        visitqueue.push({"t": "share", "token": token, "channel": body.channel})
        return jsonify({"share_token": token}), 201
    _, node = _my_node(code)
    services.record_forward(node.token, body.channel)
    db.session.commit()
    return jsonify({"share_token": node.token}), 201


class IntentIn(Model):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=7, max_length=20)
    product: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)


@h5_api.describe("/m/<code>/intents", "POST", summary="An intent (意向) that becomes a lead", tags=("public",),
                 body=IntentIn, auth=False, status=201)
@bp.post("/m/<code>/intents")
@limiter.limit("5 per minute;30 per hour")
def intent(code: str):
    m, node = _my_node(code)
    lead, created = services.submit_intent(m, node, parse_json_body(IntentIn).model_dump())
    db.session.commit()
    return jsonify({"received": True, "lead_id": lead.id, "new": created,
                    "message": "提交成功，我们的顾问会尽快与您联系。"}), 201


# --- images -----------------------------------------------------------------------------------------
def _material_for_image(material_id: int) -> tuple[Material, bool]:
    """Published materials' images are public; a draft's only for staff who may see it."""
    m = db.session.get(Material, material_id)
    if m is None or m.status == "archived":
        abort(404)
    if m.status == "published":
        return m, True
    from crm_core.errors import DomainError
    from crm_core.org.permissions import get_visible, load_actor
    from wxapp.auth import _set_actor, actor_from_bearer, console_user

    try:
        user = console_user()
        actor = _set_actor(load_actor(user)) if user else actor_from_bearer()
        get_visible(actor, Material, m.id)
    except DomainError:
        abort(404)
    return m, False


def _image_url(m: Material, public: bool) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    params = {k: v for k, v in (("c", _campaign_id()), ("s", (request.args.get("s") or "")[:24] or None), ("src", "qr")) if v}
    if not public:
        params["preview"] = preview_token(m.id, m.version)
    return f"{base}/m/{m.code}?{urlencode(params)}"


def _send(data: bytes, mimetype: str, etag: str, public: bool) -> Response:
    if request.if_none_match.contains(etag):
        resp = Response(status=304)
    else:
        resp = Response(data, mimetype=mimetype)
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "public, max-age=86400" if public else "private, max-age=300"
    return resp


def _logo(m: Material) -> Image.Image | None:
    if request.args.get("logo") != "1":
        return None
    if m.cover_media_id:
        from crm_core import media
        from crm_core.media import MediaFile

        try:
            data, _ = media.read(db.session.get(MediaFile, m.cover_media_id), thumb=True)
            return Image.open(io.BytesIO(data))
        except Exception:  # a missing cover falls back to the brand mark
            pass
    mark = Image.new("RGBA", (120, 120), (7, 193, 96, 255))
    from PIL import ImageDraw

    ImageDraw.Draw(mark).text((60, 60), "蓝云", font=qr._font(44), fill="white", anchor="mm")
    return mark


@bp.get("/materials/<int:material_id>/qr.png")
def qr_png(material_id: int):
    m, public = _material_for_image(material_id)
    url, logo = _image_url(m, public), request.args.get("logo") == "1"
    tag = qr.etag_for("png", url if public else f"{m.id}:{m.version}", logo, m.version, m.cover_media_id)
    if request.if_none_match.contains(tag):
        return _send(b"", "image/png", tag, public)
    data = qr.cached(tag, _root(), lambda: qr.png(url, _logo(m) if logo else None))
    return _send(data, "image/png", tag, public)


@bp.get("/materials/<int:material_id>/qr.svg")
def qr_svg(material_id: int):
    m, public = _material_for_image(material_id)
    url = _image_url(m, public)
    tag = qr.etag_for("svg", url if public else f"{m.id}:{m.version}", m.version)
    if request.if_none_match.contains(tag):
        return _send(b"", "image/svg+xml", tag, public)
    return _send(qr.cached(tag, _root(), lambda: qr.svg(url)), "image/svg+xml", tag, public)


@bp.get("/materials/<int:material_id>/poster.png")
def poster_png(material_id: int):
    m, public = _material_for_image(material_id)
    url = _image_url(m, public)
    tag = qr.etag_for("poster", url if public else f"{m.id}:{m.version}", m.version, m.title, m.summary, m.cover_media_id)
    if request.if_none_match.contains(tag):
        return _send(b"", "image/png", tag, public)

    def render():
        cover = None
        if m.cover_media_id:
            from crm_core import media
            from crm_core.media import MediaFile

            data, _ = media.read(db.session.get(MediaFile, m.cover_media_id))
            cover = Image.open(io.BytesIO(data))
        return qr.poster(m.title, m.summary, url, cover)
    return _send(qr.cached(tag, _root(), render), "image/png", tag, public)


@bp.get("/materials/<int:material_id>/cover.jpg")
def cover(material_id: int):
    m, public = _material_for_image(material_id)
    if not m.cover_media_id:
        abort(404)
    from crm_core import media
    from crm_core.media import MediaFile

    data, ctype = media.read(db.session.get(MediaFile, m.cover_media_id))
    return _send(data, ctype, qr.etag_for("cover", m.cover_media_id), public)


def _root() -> str:
    import os

    root = current_app.config["MEDIA_ROOT"]
    return root if os.path.isabs(root) else os.path.join(os.getcwd(), root)


# --- the follower's campaign list ----------------------------------------------------------------------
@bp.get("/h5/campaigns")
@wechat_user_required
def campaigns_page():
    return render_template("materials/campaigns.html")


class CampaignsQuery(Model):
    q: str | None = Field(default=None, max_length=50)
    page: int = Field(default=1, ge=1, le=100_000)


@h5_api.describe("/h5/api/campaigns", "GET", summary="Campaigns pushed to me (the follower's list)", tags=("marketing",),
                 query=CampaignsQuery)
@bp.get("/h5/api/campaigns")
@wechat_user_required
def campaigns_api():
    query = parse_query(CampaignsQuery)
    items, total = services.follower_campaigns(wechat_openid(), query.q or None, query.page)
    return jsonify({"items": items, "total": total})


__all__ = ["bp", "preview_token"]


class PageLane:
    """WSGI middleware (Redis mode): ``GET /m/{code}`` for a published material skips Flask's
    request pipeline — no session is written, no rate-limit or CSRF hooks apply to a public
    page — and runs the queued page view (:func:`_lane_page`) inside an app context.
    Anything else (drafts, previews, WeChat users still to be identified by OAuth, embedded
    mode) goes through Flask as usual."""

    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (environ.get("REQUEST_METHOD") != "GET" or not path.startswith("/m/") or path.count("/") != 2
                or self.app.extensions.get("wxcrm_redis") is None):
            return self.wsgi_app(environ, start_response)
        import logging
        import time
        import uuid

        from werkzeug.wrappers import Request

        from crm_core.context import request_id

        t0 = time.perf_counter()
        req = Request(environ)
        if "preview" in req.args:
            return self.wsgi_app(environ, start_response)
        rid = uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            with self.app.app_context():
                resp = _lane_page(self.app, req, path[3:])
            if resp is None:
                return self.wsgi_app(environ, start_response)
            resp.headers["X-Request-ID"] = rid
            access = logging.getLogger("wxcrm.web")
            if access.isEnabledFor(logging.INFO):
                access.info("GET %s %s", path, resp.status_code, extra={
                    "method": "GET", "path": path, "status": resp.status_code, "ms": round((time.perf_counter() - t0) * 1000, 1)})
        finally:
            request_id.reset(token)
        return resp(environ, start_response)


def _lane_page(app, req, code: str) -> Response | None:
    from wxapp.auth import H5_APPID, H5_OPENID
    from wxapp.config import wechat_appid

    view = visitqueue.material_view(code)
    if view is None or view["status"] != "published":
        return None
    openid = None
    if app.config["SESSION_COOKIE_NAME"] in req.cookies:  # a WeChat user identified by OAuth earlier
        sess = app.session_interface.open_session(app, req)
        openid = sess.get(H5_OPENID) if sess is not None and sess.get(H5_APPID) == wechat_appid() else None
    ua = req.headers.get("User-Agent") or ""
    in_wechat = "MicroMessenger" in ua
    if in_wechat and not openid and app.config.get("WECHAT_APPID"):
        return None  # silent OAuth first (Flask's path redirects)
    viewer_key, new_cookie = _viewer_of(req.cookies, openid)
    vkey, node = visitqueue.queue_view(view, _campaign_id(req.args), viewer_key, openid, req.args.get("s"),
                                       "qr" if req.args.get("src") == "qr" else "link", ua)
    return _render_page(view, node, node["campaign_id"], _signer("visit").dumps(vkey), False, new_cookie, in_wechat=in_wechat)
