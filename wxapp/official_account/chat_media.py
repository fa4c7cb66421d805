"""Pictures, voice and video that followers send the account (在线客服): WeChat keeps a message's media for three days
and hands it out by ``media/get``; the product keeps its own copy.

The callback does not wait for it (it answers within WeChat's 5 s from the message alone): a periodic job copies the
media of recent messages, and an agent opening one before the job has run gets it copied on the spot. A picture is
cleaned like every upload (re-encoded, metadata dropped, a thumbnail); voice (AMR/Speex, which browsers do not play:
the console offers it as a download, beside WeChat's recognition text) and video are kept as WeChat sent them. Each
copy is a :class:`crm_core.media.MediaFile` with the sender's openid, found again by the message's media id."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from crm_core import jobs, media
from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.media import MediaFile
from crm_core.wechat.models import InboundMessage

log = logging.getLogger("wxcrm.wechat")

# message type -> MediaFile purpose
PURPOSES = {"image": "chat", "voice": "chat_voice", "video": "chat_video", "shortvideo": "chat_video"}
WECHAT_KEEPS = timedelta(days=3)
PREFETCH_BATCH = 200  # the newest media messages looked at per run (a run a minute)
MAX_MEDIA_BYTES = 20 * 1024 * 1024  # WeChat's own limit for a voice or video message is 10 MB
EXTENSIONS = {"audio/amr": "amr", "audio/speex": "speex", "audio/mpeg": "mp3", "video/mp4": "mp4", "image/jpeg": "jpg"}


def media_id_of(m: InboundMessage) -> str | None:
    if m.msg_type not in PURPOSES:
        return None
    return (m.summary or {}).get("media_id") or None


def copy_of(m: InboundMessage) -> MediaFile | None:
    """The product's copy of the message's media (pending, ready or failed), if one was made."""
    mid = media_id_of(m)
    if not mid:
        return None
    return db.session.scalars(select(MediaFile).where(MediaFile.wechat_media_id == mid, MediaFile.uploaded_by_openid == m.openid)
                              .order_by(MediaFile.id.desc()).limit(1)).first()


def ensure_copy(m: InboundMessage, org_id: int | None) -> MediaFile | None:
    """The message's media, copied from WeChat now when it is not yet (None for a message without media). Commits:
    the pending copy is saved before WeChat is asked, so no transaction waits on the network; the caller commits
    the outcome."""
    row = copy_of(m)
    if row is None and media_id_of(m):
        row = media.register_wechat_media(media_id_of(m), PURPOSES[m.msg_type], org_id=org_id, openid=m.openid)
    db.session.commit()
    if row is not None and row.status == "pending":
        if utcnow() - m.received_at > WECHAT_KEEPS:
            row.status, row.error = "failed", "微信只保留三天，已过期"
        else:
            download(row)
    return row


def download(row: MediaFile) -> None:
    """``media/get`` for a pending copy: a picture is cleaned and stored; voice and video are stored as they come (for a
    video WeChat may answer with a ``video_url`` to fetch it from). A permanent refusal marks the copy failed with
    WeChat's reason in Chinese; a transient one is raised, so the caller (a job) tries again."""
    from wechatpy.exceptions import WeChatClientException

    from wxapp.official_account import errcodes
    from wxapp.official_account.client import get_client

    try:
        response = get_client().media.download(row.wechat_media_id)
    except WeChatClientException as exc:
        if errcodes.action(exc.errcode) in (errcodes.RETRY, errcodes.REFRESH):
            raise
        entry = errcodes.ERRCODES.get(exc.errcode)
        row.status, row.error = "failed", f"微信 {exc.errcode}：{entry.meaning if entry else exc.errmsg}"[:200]
        return
    if row.purpose not in ("chat_voice", "chat_video"):  # a picture (a follower's, or one a page uploaded to WeChat)
        media.complete_download(row, response.content)
        return
    content_type = (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
    data = response.content
    if content_type in ("application/json", "text/plain"):
        try:
            url = response.json().get("video_url") or response.json().get("down_url")
        except ValueError:
            url = None
        if not url:
            row.status, row.error = "failed", "微信未返回视频地址"
            return
        import requests

        fetched = requests.get(url, timeout=(3, 20))
        data, content_type = fetched.content, (fetched.headers.get("Content-Type") or "video/mp4").split(";")[0]
    if len(data) > MAX_MEDIA_BYTES:
        row.status, row.error = "failed", "文件超过 20 MB，未保存"
        return
    media.store_raw(row, data, content_type, EXTENSIONS.get(content_type, "bin"))


@jobs.periodic(every=60)
def prefetch_chat_media() -> int:
    """Copy the media of the newest messages that have none yet, while WeChat still keeps it (three days)."""
    since = utcnow() - WECHAT_KEEPS
    recent = db.session.scalars(select(InboundMessage).where(InboundMessage.msg_type.in_(tuple(PURPOSES)),
                                                             InboundMessage.received_at >= since)
                                .order_by(InboundMessage.id.desc()).limit(PREFETCH_BATCH)).all()
    wanted = {media_id_of(m): m for m in recent if media_id_of(m)}
    if not wanted:
        return 0
    have = set(db.session.scalars(select(MediaFile.wechat_media_id).where(  # a pending copy is tried again
        MediaFile.wechat_media_id.in_(list(wanted)), MediaFile.status != "pending")))
    from crm_core.wechat import followers
    from wxapp.config import wechat_org_id

    copied = 0
    for mid, m in wanted.items():
        if mid in have:
            continue
        f = followers.find(m.appid, m.openid)
        try:
            ensure_copy(m, (f.org_id if f is not None else None) or wechat_org_id())
            db.session.commit()
            copied += 1
        except Exception:  # one message's trouble (WeChat busy) must not stop the others; the next run tries again
            db.session.rollback()
            log.warning("chat media not copied yet", exc_info=True, extra={"openid": m.openid})
    return copied


def serve(c, message_id: int, org_id: int | None, thumb: bool = False):
    """The picture, voice or video of message ``message_id`` of conversation ``c`` (already checked against the reader's
    scope): the product's copy, made from WeChat now if the periodic job has not yet. 404 in words otherwise
    (not this conversation's message, no media, or WeChat's three days are over)."""
    from flask import Response

    m = db.session.get(InboundMessage, message_id)
    if m is None or m.appid != c.appid or m.openid != c.openid or not media_id_of(m):
        return Response("没有这条消息的文件。", status=404, mimetype="text/plain")
    try:
        row = ensure_copy(m, org_id)
        db.session.commit()
    except Exception:  # WeChat busy or away: the job copies it later
        db.session.rollback()
        log.warning("chat media not copied yet", exc_info=True)
        return Response("微信暂时无法取回文件，请稍后再试。", status=503, mimetype="text/plain", headers={"Retry-After": "30"})
    if row is None or row.status != "ready":
        return Response(f"文件无法显示：{(row.error if row else None) or '尚未取回'}", status=404, mimetype="text/plain")
    data, content_type = media.read(row, thumb=thumb)
    resp = Response(data, mimetype=content_type)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    if row.purpose == "chat_voice":  # browsers do not play AMR / Speex: a download, beside the recognition text
        ext = EXTENSIONS.get(content_type, "amr")
        resp.headers["Content-Disposition"] = f'attachment; filename="voice-{m.id}.{ext}"'
    return resp


def serve_reply(c, outbox_id: int):
    """The picture an agent sent in conversation ``c`` (already checked against the reader's scope)."""
    from flask import Response

    from crm_core.outbox import OutboxMessage

    msg = db.session.get(OutboxMessage, outbox_id)
    p = (msg.payload or {}) if msg is not None else {}
    if msg is None or msg.recipient != c.openid or p.get("msgtype") != "image":
        return Response("没有这条回复的图片。", status=404, mimetype="text/plain")
    row = db.session.get(MediaFile, p.get("media_file_id"))
    if row is None or row.status != "ready":
        return Response("图片无法显示。", status=404, mimetype="text/plain")
    data, content_type = media.read(row)
    resp = Response(data, mimetype=content_type)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    return resp
