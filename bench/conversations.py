"""在线客服 at scale (#17, "Speed and scale"), on PostgreSQL: the agent's conversation list with 10,000 conversations
and 1,000,000 messages — first page < 50 ms — and one conversation opened (its last 100 messages both ways).

    .venv/bin/python bench/conversations.py [--conversations 10000] [--messages 1000000] [--repeat 30]

Data: the demo organisation; 10,000 followers of the account (a third bound to a contact), one conversation each
(a tenth waiting for a person, a fifth assigned to the dispatcher, the rest open or closed), their last activity
spread over 30 days; 1,000,000 inbound messages (text, pictures, locations, menu taps) spread over the followers.
Timed through the WSGI app (``GET /api/v1/conversations``: scope, filters, count, unread per row, the follower's
window), signed in as the demo dispatcher (吴静), the way the console's 在线客服 page asks.
"""
from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta

from _common import git_rev, machine, median, run_on_postgresql, timed


def build(conversations: int, messages: int):
    from sqlalchemy import insert, select, text

    from crm_core.customers.models import Contact
    from crm_core.db import db
    from crm_core.demo import load_demo
    from crm_core.org.models import Employee, Organization, User
    from crm_core.wechat.models import Conversation, Follower, InboundMessage
    from wxapp.config import wechat_appid

    load_demo()
    db.session.commit()
    appid = wechat_appid()
    org = db.session.scalars(select(Organization)).first()
    agent = db.session.scalar(select(User.employee_id).where(User.username == "service.dispatcher"))
    contacts = db.session.scalars(select(Contact.id)).all()
    assert db.session.get(Employee, agent)
    now = datetime.utcnow()
    rnd = random.Random(17)
    openids = [f"oBench{i:07d}" for i in range(conversations)]
    db.session.execute(insert(Follower), [{
        "appid": appid, "openid": o, "org_id": org.id, "subscribed": True, "subscribe_count": 1,
        "contact_id": contacts[i % len(contacts)] if i % 3 == 0 and contacts else None,
        "subscribed_at": now - timedelta(days=40), "last_interaction_at": now - timedelta(minutes=rnd.randrange(60 * 24 * 30)),
        "created_at": now - timedelta(days=40)} for i, o in enumerate(openids)])
    db.session.execute(insert(Conversation), [{
        "appid": appid, "openid": o, "status": ("waiting" if i % 10 == 0 else "closed" if i % 4 == 0 else "open"),
        "assignee_id": agent if i % 5 == 0 else None, "last_message_at": now - timedelta(minutes=rnd.randrange(60 * 24 * 30)),
        "last_read_id": 0, "created_at": now - timedelta(days=30)} for i, o in enumerate(openids)])
    kinds = [("text", None, {"type": "text", "content": "你好，净水器滤芯怎么换？"}), ("image", None, {"type": "image", "media_id": "M"}),
             ("location", None, {"type": "location", "location_x": "30.2", "location_y": "120.1", "label": "西湖区"}),
             ("event", "click", {"type": "event", "event": "click", "key": "MENU_REPAIR"})]
    batch = []
    for n in range(messages):
        kind, event, summary = kinds[n % 7 % 4]
        batch.append({"appid": appid, "openid": openids[rnd.randrange(conversations)], "dedup_key": None, "msg_type": kind,
                      "event": event, "summary": summary, "received_at": now - timedelta(seconds=rnd.randrange(30 * 86400)),
                      "outcome": "replied"})
        if len(batch) == 20_000:
            db.session.execute(insert(InboundMessage), batch)
            batch = []
    if batch:
        db.session.execute(insert(InboundMessage), batch)
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def run(url: str, conversations: int, messages: int, repeat: int) -> None:
    import logging
    import time

    from crm_core.db import db
    from tests.conftest import _create_schema, _make_app

    app = _make_app(url)
    logging.getLogger("wxcrm").setLevel(logging.WARNING)  # one line per request would be most of the output
    with app.app_context():
        _create_schema()
        t0 = time.perf_counter()
        build(conversations, messages)
        print(f"  built {conversations:,} conversations, {messages:,} messages in {time.perf_counter() - t0:.0f} s")
        c = app.test_client()
        h = {"Authorization": "Bearer " + c.post("/api/v1/auth/token", json={
            "username": "service.dispatcher", "password": "demo123456"}).get_json()["access_token"]}
        first = c.get("/api/v1/conversations", headers=h).get_json()
        assert first["total"] >= conversations and len(first["items"]) == 20, first.get("total")
        for label, query in (("first page, all", ""), ("waiting (待接入)", "?status=waiting"), ("mine", "?mine=1"),
                             ("search by openid", "?q=oBench00042"), ("search by what they wrote", "?q=%E6%BB%A4%E8%8A%AF"),
                             ("page 50", "?page=50")):
            def get(query=query):
                r = c.get("/api/v1/conversations" + query, headers=h)
                assert r.status_code == 200, r.get_json()
            ms = timed(get, repeat=repeat, warmup=3)
            print(f"  GET /api/v1/conversations{query:<18} median {median(ms):6.1f} ms   p95 {sorted(ms)[int(len(ms) * 0.95) - 1]:6.1f}"
                  f"   ({label}; target < 50)")
        cid = first["items"][0]["id"]

        def open_one():
            r = c.get(f"/api/v1/conversations/{cid}/messages", headers=h)
            assert r.status_code == 200
        ms = timed(open_one, repeat=repeat, warmup=3)
        print(f"  GET /api/v1/conversations/{{id}}/messages   median {median(ms):6.1f} ms   (the last 100 both ways)")
        db.session.remove()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    run_on_postgresql(lambda url: run(url, args.conversations, args.messages, args.repeat))


if __name__ == "__main__":
    main()
