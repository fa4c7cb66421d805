"""Background jobs of the gateway."""
from __future__ import annotations

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.wechat.models import Follower


@jobs.job
def fetch_profile(follower_id: int) -> None:
    """Fetch nickname and avatar after a follow (cgi-bin/user/info)."""
    from wxapp.official_account.client import get_client

    follower = db.session.get(Follower, follower_id)
    if follower is None:
        return
    info = get_client().user.get(follower.openid)
    follower.nickname = info.get("nickname") or follower.nickname
    follower.avatar_url = info.get("headimgurl") or follower.avatar_url
    follower.profile_fetched_at = utcnow()


@jobs.job
def download_media(media_file_id: int) -> None:
    """Fetch a photo that a page uploaded to WeChat (``wx.uploadImage``) and store it cleaned."""
    from crm_core import media
    from crm_core.media import MediaFile
    from wxapp.official_account.client import get_client

    row = db.session.get(MediaFile, media_file_id)
    if row is None or row.status != "pending":
        return
    response = get_client().media.download(row.wechat_media_id)
    media.complete_download(row, response.content)


@jobs.periodic(every=30)
def recover_inbound_spool() -> int:
    """Take over callback spool files whose process stopped before moving them into the
    database (a flusher also looks every few seconds, but only while its process has traffic)."""
    from wxapp.official_account import fastpath

    return fastpath.spool().recover()
