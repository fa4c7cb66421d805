"""WeChat's error codes, and what the product does with each (docs/wechat.md has the same table).

One table, used by the outbound client (token refresh), the WeChat outbox channels (template
fallback, stop, defer, retry) and the sandbox (which answers with these codes and messages as
WeChat does). An errcode that is not listed is treated as a failure to retry with backoff, and
logged, so an unexpected answer never loses a message silently.
"""
from __future__ import annotations

from dataclasses import dataclass

# what happens to the call or the outbox row
REFRESH = "refresh"            # the access token is bad: refresh it once and retry the call
TEMPLATE = "template"          # no customer-service quota: send the template message instead, now
UNSUBSCRIBED = "unsubscribed"  # the user does not follow: mark the follower unsubscribed, stop
INVALID_USER = "invalid_user"  # not an openid of this account: mark the follower invalid, stop
ALERT = "alert"                # configuration is wrong (template, secret, permission): fail, alert admins
TOMORROW = "tomorrow"          # the daily API quota is used up: try again after midnight (Beijing time)
RETRY = "retry"                # transient: retry with backoff
FAIL = "fail"                  # the request itself is wrong: fail, no retry


@dataclass(frozen=True)
class Errcode:
    code: int
    errmsg: str   # WeChat's errmsg (what the sandbox answers)
    meaning: str  # in plain words
    action: str


_TABLE = [
    Errcode(-1, "system error", "微信系统繁忙", RETRY),
    Errcode(40001, "invalid credential, access_token is invalid or not latest", "access_token 无效或不是最新", REFRESH),
    Errcode(40002, "invalid grant_type", "grant_type 不正确", FAIL),
    Errcode(40003, "invalid openid", "openid 不属于本公众号", INVALID_USER),
    Errcode(40007, "invalid media_id", "media_id 无效或已过期（临时素材 3 天）", FAIL),
    Errcode(40008, "invalid message type", "消息类型不正确", FAIL),
    Errcode(40013, "invalid appid", "AppID 不正确", ALERT),
    Errcode(40014, "invalid access_token", "access_token 不合法", REFRESH),
    Errcode(40016, "invalid button size", "菜单按钮个数不正确（一级 1–3 个，二级 1–5 个）", FAIL),
    Errcode(40017, "invalid button type", "菜单按钮类型不正确", FAIL),
    Errcode(40018, "invalid button name size", "菜单按钮名称过长（一级 16 字节，二级 60 字节）", FAIL),
    Errcode(40019, "invalid button key size", "菜单 key 过长（128 字节）", FAIL),
    Errcode(40029, "invalid code", "网页授权 code 无效", FAIL),
    Errcode(40037, "invalid template_id", "模板 ID 不存在", ALERT),
    Errcode(40125, "invalid appsecret", "AppSecret 不正确", ALERT),
    Errcode(40163, "code been used", "网页授权 code 已被使用", FAIL),
    Errcode(41001, "access_token missing", "缺少 access_token", REFRESH),
    Errcode(41002, "appid missing", "缺少 appid", FAIL),
    Errcode(41004, "appsecret missing", "缺少 secret", FAIL),
    Errcode(42001, "access_token expired", "access_token 已过期", REFRESH),
    Errcode(42002, "refresh_token expired", "网页授权 refresh_token 已过期（30 天）", FAIL),
    Errcode(43004, "require subscribe", "用户未关注公众号", UNSUBSCRIBED),
    Errcode(43101, "user refuse to accept the msg", "用户拒收订阅消息（仍是粉丝）", FAIL),
    Errcode(44004, "empty content", "文本消息内容为空", FAIL),
    Errcode(45008, "article size out of limit", "图文消息超过条数限制（客服图文消息只能 1 条）", FAIL),
    Errcode(47001, "data format error", "数据格式错误（图文缺少标题或链接）", FAIL),
    Errcode(45009, "reach max api daily quota limit", "接口当日调用次数已用完", TOMORROW),
    Errcode(45015, "response out of time limit or subscription is canceled",
            "超出客服消息时限：48 小时内用户没有可回复的互动", TEMPLATE),
    Errcode(45047, "out of response count limit", "本次互动允许的客服消息条数已用完", TEMPLATE),
    Errcode(40032, "invalid openid list size", "每次最多 50 个用户", FAIL),
    Errcode(45056, "too many tags", "标签数已达上限（100 个）", FAIL),
    Errcode(45058, "can't modify sys tag", "不能修改或删除系统保留的标签（0、1、2）", FAIL),
    Errcode(45059, "too many tags for this user", "有用户的标签已达上限（20 个）", FAIL),
    Errcode(45157, "invalid tag name", "标签名非法或已存在", FAIL),
    Errcode(45158, "tag name too long", "标签名超过 30 个字符", FAIL),
    Errcode(45159, "invalid tag id", "标签 ID 不存在", FAIL),
    Errcode(48001, "api unauthorized", "接口未授权（如 snsapi_base 调用了用户信息）", ALERT),
    Errcode(10003, "redirect_uri domain not match with backend", "网页授权回调域名不一致", ALERT),
]
ERRCODES: dict[int, Errcode] = {e.code: e for e in _TABLE}
REFRESH_CODES = frozenset(e.code for e in _TABLE if e.action == REFRESH)


def action(code: int) -> str:
    """What to do about ``code`` (unknown codes: retry with backoff)."""
    e = ERRCODES.get(code)
    return e.action if e else RETRY


def errmsg(code: int) -> str:
    e = ERRCODES.get(code)
    return e.errmsg if e else "system error"
