"""Background jobs of the gateway."""
from __future__ import annotations

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.wechat.models import Follower
from wxapp.official_account import chat_media  # noqa: F401  (its periodic job: followers' media copied)


@jobs.job
def fetch_profile(follower_id: int) -> None:
    """Check a new follower with cgi-bin/user/info: whether they still follow, and the union id
    and language WeChat gives. Since 2021-12-27 it returns no nickname or avatar, so nothing here
    depends on them (a follower is named by their bound contact, ``followers.display_name``); a
    nickname is kept only if WeChat ever sends one. 40003: the openid is not this account's."""
    from wechatpy.exceptions import WeChatClientException

    from crm_core.wechat import followers
    from wxapp.official_account.client import get_client

    follower = db.session.get(Follower, follower_id)
    if follower is None:
        return
    try:
        info = get_client().user.get(follower.openid)
    except WeChatClientException as exc:
        if exc.errcode == 40003:
            followers.mark_invalid(follower.appid, follower.openid)
            return
        raise
    if info.get("subscribe") == 0 and follower.subscribed:
        followers.unfollow(follower)
    follower.nickname = info.get("nickname") or follower.nickname
    follower.avatar_url = info.get("headimgurl") or follower.avatar_url
    follower.profile_fetched_at = utcnow()


@jobs.job
def download_media(media_file_id: int) -> None:
    """Fetch a photo that a page uploaded to WeChat (``wx.uploadImage``) and store it cleaned
    (:func:`wxapp.official_account.chat_media.download`, which also copies followers' media)."""
    from crm_core.media import MediaFile

    row = db.session.get(MediaFile, media_file_id)
    if row is None or row.status != "pending":
        return
    chat_media.download(row)


@jobs.periodic(every=30)
def recover_inbound_spool() -> int:
    """Take over callback spool files whose process stopped before moving them into the
    database (a flusher also looks every few seconds, but only while its process has traffic)."""
    from wxapp.official_account import fastpath

    return fastpath.spool().recover()


@jobs.periodic(every=300)
def purge_dedup_keys() -> int:
    """Retries come within WeChat's retry horizon (three tries, 5 s apart): after
    ``WECHAT_DEDUP_HORIZON_SECONDS`` a message's dedup key is cleared, so it deduplicates no
    more, while the stored row stays (docs/wechat.md)."""
    from datetime import timedelta

    from flask import current_app
    from sqlalchemy import update

    from crm_core.wechat.models import InboundMessage

    cutoff = utcnow() - timedelta(seconds=current_app.config["WECHAT_DEDUP_HORIZON_SECONDS"])
    n = db.session.execute(update(InboundMessage).where(InboundMessage.dedup_key.is_not(None),
                                                        InboundMessage.received_at < cutoff)
                           .values(dedup_key=None).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return n


@jobs.periodic(every=60)
def recover_lost_jobs() -> int:
    """Jobs lost with the queue (Redis died with them, a worker was killed) are found again from
    the rows that still wait: followers of the last day whose profile was never checked, and photos
    chosen in WeChat still waiting for their download. The jobs themselves are idempotent."""
    from datetime import timedelta

    from sqlalchemy import select

    from crm_core.media import MediaFile

    now = utcnow()
    settled = now - timedelta(minutes=1)  # the normal job (and RQ's first retries) had its chance
    profiles = db.session.scalars(select(Follower.id).where(
        Follower.subscribed.is_(True), Follower.profile_fetched_at.is_(None), Follower.invalid_at.is_(None),
        Follower.subscribed_at < settled, Follower.subscribed_at > now - timedelta(days=1)).limit(200)).all()
    photos = db.session.scalars(select(MediaFile.id).where(MediaFile.status == "pending",
                                                           MediaFile.wechat_media_id.is_not(None),
                                                           MediaFile.created_at < settled,
                                                           MediaFile.created_at > now - timedelta(days=3)).limit(200)).all()
    for follower_id in profiles:
        jobs.enqueue(fetch_profile, follower_id)
    for media_id in photos:
        jobs.enqueue(download_media, media_id)
    db.session.commit()
    return len(profiles) + len(photos)


@jobs.periodic(every=300)
def close_quiet_conversations() -> int:
    """在线客服: conversations quiet for ``WXCRM_CONVERSATION_QUIET_MINUTES`` (30) close, their
    session's response times kept; the next message reopens them."""
    from datetime import timedelta

    from flask import current_app

    from crm_core.wechat import conversations

    n = conversations.close_quiet(quiet=timedelta(minutes=current_app.config["CONVERSATION_QUIET_MINUTES"]))
    db.session.commit()
    return n


@jobs.job
def run_held_message(inbound_id: int) -> None:
    """A callback held while the database was away (held.py): its handler runs now, and its reply
    goes to the user as a customer-service message."""
    from wxapp.official_account import callback

    callback.run_held(inbound_id)


@jobs.periodic(every=30)
def recover_held_messages() -> int:
    """Held callbacks whose job was lost with the queue, and deliveries a dead process left
    ``processing`` for over a minute, run (again) — each once: the run claims its row first."""
    from wxapp.official_account import held

    ids = held.sweep()
    for inbound_id in ids:
        jobs.enqueue(run_held_message, inbound_id)
    db.session.commit()
    return len(ids)
