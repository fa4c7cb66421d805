"""The benchmark's reference: a bare Flask + wechatpy endpoint that only verifies the
signature, decrypts, parses and replies (encrypted). No dedup, no storage, no routing."""
import os

from flask import Flask, Response, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

TOKEN, AES_KEY, APPID = os.environ["WECHAT_TOKEN"], os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"]
app = Flask(__name__)
crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)


@app.post("/wechat/callback")
def callback():
    a = request.args
    check_signature(TOKEN, a["signature"], a["timestamp"], a["nonce"])
    xml = crypto.decrypt_message(request.get_data(), a["msg_signature"], a["timestamp"], a["nonce"])
    msg = parse_message(xml)
    reply = TextReply(message=msg, content="您好，我们已收到您的消息。").render()
    return Response(crypto.encrypt_message(reply, a["nonce"]), mimetype="application/xml")
