"""Callback bodies in the shapes WeChat documents, one per message or event kind.

Written out by hand after the examples on WeChat's official-account documentation pages named
in each ``source`` (developers.weixin.qq.com/doc/offiaccount/...); the same shapes are what
wechatpy's ``tests/test_parse_message.py`` and WxJava's message tests parse. ``{u}`` is the user,
``{t}`` the CreateTime and ``{n}`` a number that makes the sample's id unique.
"""
from __future__ import annotations

STANDARD = "Message_Management/Receiving_standard_messages.html (接收普通消息)"
EVENTS = "Message_Management/Receiving_event_pushes.html (接收事件推送)"
MENU = "Custom_Menus/Custom_Menu_Push_Events.html (自定义菜单事件推送)"
TEMPLATE = "Message_Management/Template_Message_Interface.html (模板消息 · 事件推送)"
MASS = "Message_Management/Batch_Sends_and_Originality_Checks.html (群发结果事件推送)"

HEAD = "<ToUserName><![CDATA[gh_e136c6e50636]]></ToUserName><FromUserName><![CDATA[{u}]]></FromUserName><CreateTime>{t}</CreateTime>"

SAMPLES = [
    # (name, source, opens a reply quota: "message" | "event" | None, body after the head)
    ("text", STANDARD, "message",
     "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>{n}</MsgId>"),
    ("image", STANDARD, "message",
     "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl>"
     "<MediaId><![CDATA[media_id]]></MediaId><MsgId>{n}</MsgId>"),
    ("voice", STANDARD, "message",
     "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format>"
     "<MsgId>{n}</MsgId>"),
    ("video", STANDARD, "message",
     "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[media_id]]></MediaId>"
     "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>{n}</MsgId>"),
    ("shortvideo", STANDARD, "message",
     "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[media_id]]></MediaId>"
     "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>{n}</MsgId>"),
    ("location", STANDARD, "message",
     "<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
     "<Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>{n}</MsgId>"),
    ("link", STANDARD, "message",
     "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title>"
     "<Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[url]]></Url><MsgId>{n}</MsgId>"),
    ("subscribe", EVENTS, "event", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"),
    ("subscribe by scan", EVENTS, "event",
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_{n}]]></EventKey>"
     "<Ticket><![CDATA[TICKET]]></Ticket>"),
    ("SCAN", EVENTS, "event",
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[{n}]]></EventKey>"
     "<Ticket><![CDATA[TICKET]]></Ticket>"),
    ("LOCATION", EVENTS, None,
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude>"
     "<Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
    ("CLICK", MENU, "event",
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY_{n}]]></EventKey>"),
    ("VIEW", MENU, None,
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com/{n}]]></EventKey>"
     "<MenuId>MENUID</MenuId>"),
    ("scancode_push", MENU, "event",
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[rselfmenu_{n}]]></EventKey>"
     "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"),
    ("scancode_waitmsg", MENU, "event",
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event>"
     "<EventKey><![CDATA[rselfmenu_w{n}]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
     "<ScanResult><![CDATA[2]]></ScanResult></ScanCodeInfo>"),
    ("TEMPLATESENDJOBFINISH", TEMPLATE, None,
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{n}</MsgID>"
     "<Status><![CDATA[success]]></Status>"),
    ("MASSSENDJOBFINISH", MASS, None,
     "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>{n}</MsgID>"
     "<Status><![CDATA[send success]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount>"
     "<SentCount>75</SentCount><ErrorCount>5</ErrorCount>"),
    ("unsubscribe", EVENTS, None, "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>"),
]


def render(body: str, user: str, create_time: int, n: int) -> str:
    return "<xml>" + (HEAD + body).format(u=user, t=create_time, n=n) + "</xml>"
