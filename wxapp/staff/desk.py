"""在线客服 on the phone: the followers waiting for a person and my open conversations, one conversation's thread with
the reply box (canned replies filled in), for the agent who got the "someone is waiting" notice away from the console.
Replies are the console's own call (``crm_core.wechat.conversations.reply``: a customer-service message inside the
48-hour window, the template notice outside it)."""
from __future__ import annotations

from flask import jsonify, render_template
from pydantic import Field

from crm_core.db import db
from crm_core.org.permissions import Actor
from crm_core.wechat import conversations
from wxapp.auth import staff_user_required
from wxapp.config import wechat_appid
from wxapp.openapi import Model, h5_api, parse_json_body
from wxapp.staff.h5 import _actor, _json, bp, staff_page


@bp.get("/staff/conversations")
@staff_page
def conversation_list(actor: Actor):
    appid = wechat_appid()
    waiting, _ = conversations.list_conversations(actor, appid, status="waiting", per_page=50)
    mine, _ = conversations.list_conversations(actor, appid, status="open", mine=True, per_page=50)
    return render_template("h5/staff/conversations.html", waiting=waiting, mine=mine)


@bp.get("/staff/conversations/<int:conversation_id>")
@staff_page
def conversation_page(actor: Actor, conversation_id: int):
    c = conversations.get_conversation(actor, wechat_appid(), conversation_id)
    items = conversations.messages_of(c, limit=50, mark_read=True)
    card = conversations.follower_card(actor, c.appid, c.openid)
    db.session.commit()  # read up to here
    can_reply = actor.can("follower", "edit")
    from flask import current_app

    return render_template("h5/staff/conversation.html", c=conversations.conversation_dict(c), items=items, card=card,
                           can_reply=can_reply, canned=conversations.filled_canned(actor, card) if can_reply else [],
                           map_key=current_app.config.get("MAP_KEY"))


@h5_api.describe("/h5/api/staff/conversations/<int:conversation_id>/messages", "GET",
                 summary="Agent: the conversation's newest messages (the phone page polls it)", tags=("staff",))
@bp.get("/api/staff/conversations/<int:conversation_id>/messages")
@staff_user_required
def conversation_messages(conversation_id: int):
    items = conversations.messages(_actor(), wechat_appid(), conversation_id, limit=50, mark_read=True)
    db.session.commit()
    return jsonify({"items": items})


@h5_api.describe("/h5/api/staff/conversations/<int:conversation_id>/messages/<int:message_id>/media", "GET",
                 summary="Agent: the picture, voice or video a follower sent (the product's copy; ?thumb=1)", tags=("staff",))
@bp.get("/api/staff/conversations/<int:conversation_id>/messages/<int:message_id>/media")
@staff_user_required
def conversation_message_media(conversation_id: int, message_id: int):
    from flask import request

    from wxapp.official_account import chat_media

    actor = _actor()
    c = conversations.get_conversation(actor, wechat_appid(), conversation_id)
    return chat_media.serve(c, message_id, actor.org_id, thumb=request.args.get("thumb") == "1")


@h5_api.describe("/h5/api/staff/conversations/<int:conversation_id>/replies/<int:outbox_id>/media", "GET",
                 summary="Agent: a picture an agent sent in the conversation", tags=("staff",))
@bp.get("/api/staff/conversations/<int:conversation_id>/replies/<int:outbox_id>/media")
@staff_user_required
def conversation_reply_media(conversation_id: int, outbox_id: int):
    from wxapp.official_account import chat_media

    c = conversations.get_conversation(_actor(), wechat_appid(), conversation_id)
    return chat_media.serve_reply(c, outbox_id)


class ReplyIn(Model):
    text: str = Field(min_length=1, max_length=conversations.MAX_REPLY)


@h5_api.describe("/h5/api/staff/conversations/<int:conversation_id>/reply", "POST",
                 summary="Agent: answer the follower (customer-service message in the window, else the template notice)",
                 tags=("staff",), body=ReplyIn, status=201)
@bp.post("/api/staff/conversations/<int:conversation_id>/reply")
@staff_user_required
def conversation_reply(conversation_id: int):
    body = parse_json_body(ReplyIn)
    return _json(conversations.reply(_actor(), wechat_appid(), conversation_id, body.text), 201)


def conversation_link(payload: dict) -> str | None:
    """"Someone waits in 在线客服" opens the conversation on the phone."""
    if payload.get("kind") == "conversation_waiting" and payload.get("conversation_id"):
        return f"/h5/staff/conversations/{int(payload['conversation_id'])}"
    return None
