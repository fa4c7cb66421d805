"""Follower tags (粉丝标签) as WeChat keeps them: at most 100 per account, names of at most 30
characters, at most 20 tags on one follower, at most 50 followers per tagging call. The gateway
(``wxapp.official_account.account``) calls WeChat first and writes here after it agreed, so the
two never disagree about a tag WeChat refused."""
from __future__ import annotations

from sqlalchemy import delete, func, select

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.errors import NotFound, ValidationFailed
from crm_core.wechat.models import Follower, FollowerTag, FollowerTagLink

MAX_TAGS, MAX_PER_FOLLOWER, MAX_NAME, BATCH = 100, 20, 30, 50


def check_name(appid: str, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("请填写标签名。", fields={"name": "required"})
    if len(name) > MAX_NAME:
        raise ValidationFailed(f"标签名最多 {MAX_NAME} 个字。", fields={"name": "too_long"})
    if db.session.scalar(select(FollowerTag.id).where(FollowerTag.appid == appid, FollowerTag.name == name)):
        raise ValidationFailed(f"标签「{name}」已存在。", fields={"name": "exists"})
    if (db.session.scalar(select(func.count(FollowerTag.id)).where(FollowerTag.appid == appid)) or 0) >= MAX_TAGS:
        raise ValidationFailed(f"公众号最多 {MAX_TAGS} 个标签。", fields={"name": "too_many"})
    return name


def add(appid: str, name: str, wechat_id: int | None) -> FollowerTag:
    tag = FollowerTag(appid=appid, name=name, wechat_id=wechat_id, created_at=utcnow())
    db.session.add(tag)
    db.session.flush()
    return tag


def get(appid: str, tag_id: int) -> FollowerTag:
    tag = db.session.get(FollowerTag, tag_id)
    if tag is None or tag.appid != appid:
        raise NotFound("标签不存在。")
    return tag


def followers_for(appid: str, openids: list[str], org_id: int | None) -> list[Follower]:
    """The followers named (of the caller's organisation, or not yet anyone's); an unknown one is refused."""
    openids = list(dict.fromkeys(o for o in openids if o))
    if not openids:
        raise ValidationFailed("请选择粉丝。", fields={"openids": "required"})
    rows = db.session.scalars(select(Follower).where(Follower.appid == appid, Follower.openid.in_(openids))).all()
    found = {f.openid: f for f in rows if f.org_id in (None, org_id)}
    missing = [o for o in openids if o not in found]
    if missing:
        raise ValidationFailed(f"粉丝不存在：{missing[0]}", fields={"openids": "unknown"})
    return [found[o] for o in openids]


def check_room(tag: FollowerTag, followers: list[Follower]) -> None:
    counts = dict(db.session.execute(select(FollowerTagLink.follower_id, func.count()).where(
        FollowerTagLink.follower_id.in_([f.id for f in followers]), FollowerTagLink.tag_id != tag.id)
        .group_by(FollowerTagLink.follower_id)).all())
    full = [f for f in followers if counts.get(f.id, 0) >= MAX_PER_FOLLOWER]
    if full:
        raise ValidationFailed(f"有粉丝的标签已达 {MAX_PER_FOLLOWER} 个上限。", fields={"openids": "too_many_tags"})


def link(tag: FollowerTag, followers: list[Follower], remove: bool = False) -> None:
    ids = [f.id for f in followers]
    db.session.execute(delete(FollowerTagLink).where(FollowerTagLink.tag_id == tag.id, FollowerTagLink.follower_id.in_(ids)))
    if not remove:
        db.session.add_all([FollowerTagLink(tag_id=tag.id, follower_id=i) for i in ids])
    db.session.flush()


def remove_tag(tag: FollowerTag) -> None:
    db.session.execute(delete(FollowerTagLink).where(FollowerTagLink.tag_id == tag.id))
    db.session.delete(tag)
    db.session.flush()


def list_tags(appid: str) -> list[dict]:
    counts = dict(db.session.execute(select(FollowerTagLink.tag_id, func.count()).group_by(FollowerTagLink.tag_id)).all())
    return [{"id": t.id, "name": t.name, "wechat_id": t.wechat_id, "count": counts.get(t.id, 0)}
            for t in db.session.scalars(select(FollowerTag).where(FollowerTag.appid == appid).order_by(FollowerTag.name))]


def tags_of(follower_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not follower_ids:
        return out
    for fid, name in db.session.execute(select(FollowerTagLink.follower_id, FollowerTag.name).join(
            FollowerTag, FollowerTag.id == FollowerTagLink.tag_id).where(FollowerTagLink.follower_id.in_(follower_ids))
            .order_by(FollowerTag.name)):
        out.setdefault(fid, []).append(name)
    return out
