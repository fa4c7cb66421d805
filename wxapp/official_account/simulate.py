"""Build callbacks exactly as the WeChat server would: XML, signature, and (in safe mode)
encryption with wechatpy's ``WeChatCrypto``. Used by the phone simulator, ``wxcrm simulate``
and the tests."""
from __future__ import annotations

import random
import string
import time
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

_msg_seq = random.randint(10**15, 10**16)


def next_msg_id() -> int:
    global _msg_seq
    _msg_seq += 1
    return _msg_seq


def _cdata(value) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(kind: str, openid: str, to: str = "gh_devaccount", *, create_time: int | None = None, **kw) -> str:
    """``kind``: text, image, voice, video, shortvideo, link, location, follow, unfollow, scan, click, view,
    location_event, raw_event."""
    ct = create_time or int(time.time())
    head = f"<ToUserName>{_cdata(to)}</ToUserName><FromUserName>{_cdata(openid)}</FromUserName><CreateTime>{ct}</CreateTime>"
    if kind == "text":
        body = (f"<MsgType>{_cdata('text')}</MsgType><Content>{_cdata(kw.get('content', ''))}</Content>"
                f"<MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind == "image":
        body = (f"<MsgType>{_cdata('image')}</MsgType><PicUrl>{_cdata(kw.get('pic_url', 'http://example.invalid/p.jpg'))}</PicUrl>"
                f"<MediaId>{_cdata(kw.get('media_id', 'MEDIA1'))}</MediaId><MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind == "voice":
        recognition = f"<Recognition>{_cdata(kw['recognition'])}</Recognition>" if kw.get("recognition") else ""
        body = (f"<MsgType>{_cdata('voice')}</MsgType><MediaId>{_cdata(kw.get('media_id', 'MEDIA1'))}</MediaId>"
                f"<Format>{_cdata(kw.get('format', 'amr'))}</Format>{recognition}<MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind in ("video", "shortvideo"):
        body = (f"<MsgType>{_cdata(kind)}</MsgType><MediaId>{_cdata(kw.get('media_id', 'MEDIA1'))}</MediaId>"
                f"<ThumbMediaId>{_cdata(kw.get('thumb_media_id', 'THUMB1'))}</ThumbMediaId><MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind == "link":
        body = (f"<MsgType>{_cdata('link')}</MsgType><Title>{_cdata(kw.get('title', ''))}</Title>"
                f"<Description>{_cdata(kw.get('description', ''))}</Description><Url>{_cdata(kw['url'])}</Url>"
                f"<MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind == "location":
        body = (f"<MsgType>{_cdata('location')}</MsgType><Location_X>{kw['lat']}</Location_X><Location_Y>{kw['lng']}</Location_Y>"
                f"<Scale>15</Scale><Label>{_cdata(kw.get('label', ''))}</Label><MsgId>{kw.get('msg_id') or next_msg_id()}</MsgId>")
    elif kind == "follow":
        scene = kw.get("scene")
        extra = f"<EventKey>{_cdata('qrscene_' + str(scene))}</EventKey><Ticket>{_cdata('TICKET')}</Ticket>" if scene else ""
        body = f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('subscribe')}</Event>{extra}"
    elif kind == "unfollow":
        body = f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('unsubscribe')}</Event>"
    elif kind == "scan":
        body = (f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('SCAN')}</Event><EventKey>{_cdata(kw['scene'])}</EventKey>"
                f"<Ticket>{_cdata('TICKET')}</Ticket>")
    elif kind == "click":
        body = f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('CLICK')}</Event><EventKey>{_cdata(kw['key'])}</EventKey>"
    elif kind == "view":
        body = f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('VIEW')}</Event><EventKey>{_cdata(kw['url'])}</EventKey>"
    elif kind == "location_event":
        body = (f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata('LOCATION')}</Event><Latitude>{kw['lat']}</Latitude>"
                f"<Longitude>{kw['lng']}</Longitude><Precision>{kw.get('precision', 30)}</Precision>")
    elif kind == "raw_event":
        body = f"<MsgType>{_cdata('event')}</MsgType><Event>{_cdata(kw['event'])}</Event>{kw.get('extra', '')}"
    else:
        raise ValueError(f"unknown kind {kind}")
    return f"<xml>{head}{body}</xml>"


def signed_request(xml: str, token: str, *, aes_key: str | None = None, appid: str | None = None,
                   timestamp: int | None = None, nonce: str | None = None) -> tuple[str, bytes]:
    """``(query string, body)`` for POST /wechat/callback; encrypted when ``aes_key`` is given."""
    ts = str(timestamp or int(time.time()))
    nonce = nonce or "".join(random.choices(string.ascii_letters + string.digits, k=10))
    signer = WeChatSigner()
    signer.add_data(token, ts, nonce)
    params = {"signature": signer.signature, "timestamp": ts, "nonce": nonce, "openid": "x"}
    body = xml
    if aes_key:
        crypto = WeChatCrypto(token, aes_key, appid)
        encrypted = crypto.encrypt_message(xml, nonce, ts)
        # the encrypted envelope carries its own signature; WeChat sends it as msg_signature
        import re

        params["msg_signature"] = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", encrypted).group(1)
        params["encrypt_type"] = "aes"
        enc = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", encrypted).group(1)
        body = f"<xml><ToUserName><![CDATA[gh_devaccount]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    return urlencode(params), body.encode()


def read_reply(body: bytes, token: str, aes_key: str | None = None, appid: str | None = None, query: dict | None = None) -> str | None:
    """The text content of a passive reply (decrypting it in safe mode); None for "success"."""
    import re

    text = body.decode()
    if text.strip() in ("", "success"):
        return None
    if aes_key and "<Encrypt>" in text:
        crypto = WeChatCrypto(token, aes_key, appid)
        sig = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", text).group(1)
        ts = re.search(r"<TimeStamp>(.*?)</TimeStamp>", text).group(1)
        nonce = re.search(r"<Nonce><!\[CDATA\[(.*?)\]\]>", text).group(1)
        text = crypto.decrypt_message(text, sig, ts, nonce)
    from wechatpy import parse_message

    return parse_message(text).content if "<Content>" in text else text


__all__ = ["message_xml", "signed_request", "read_reply"]


def deliver(base_url: str, xml: str, token: str, *, aes_key: str | None = None, appid: str | None = None,
            timeout: float = 10) -> tuple[int, str | None]:
    """POST a callback to a running server as WeChat would; ``(HTTP status, reply text)``."""
    import urllib.request

    query, body = signed_request(xml, token, aes_key=aes_key, appid=appid)
    req = urllib.request.Request(f"{base_url.rstrip('/')}/wechat/callback?{query}", data=body,
                                 headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, read_reply(resp.read(), token, aes_key, appid)
