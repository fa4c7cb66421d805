"""Words a person reads come from the label table (issue #14, item 3): the console shows no raw enum value."""
from __future__ import annotations

import re
from html import unescape

import pytest

from crm_core.db import db
from crm_core.labels import LABELS, label
from tests.conftest import console_login

# enum values that must never reach a person as they are stored
RAW = {v for table in LABELS.values() for v in table} - {"in", "out", "admin", "log", "sms", "other", "email"}  # "email" is also a field name (collision rules)
RAW |= {"waiting_customer", "waiting_parts", "work_order", "dispatcher"}


def visible_text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    # identifiers people type as they are (logins), marked translate="no" as HTML has it, are not labels
    html = re.sub(r'(?is)<(span|code|option)\b[^>]*translate="no"[^>]*>.*?</\1>', " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)  # tags and their attributes are not read
    return unescape(html)


def raw_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z_]+", text) if w in RAW}


def test_label_falls_back_to_the_value():
    assert label("work_order_status", "completed") == "已完成"
    assert label("work_order_status", "unknown_value") == "unknown_value"
    assert label("nope", None) == ""


@pytest.fixture
def busy_demo(app, client):
    """The demo with a dispatched, recorded and completed ticket, an activity and a draft material."""
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()

    def tok(user):
        return {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
            "username": user, "password": "demo123456"}).get_json()["access_token"]}

    disp, eng, mkt, zhang = tok("service.dispatcher"), tok("service.engineer"), tok("marketing.wang"), tok("sales.zhang")
    cust = client.get("/api/v1/customers", headers=disp).get_json()["items"][0]
    t = client.post("/api/v1/tickets", json={"customer_id": cust["id"], "kind": "consultation", "description": "标签测试"},
                    headers=disp).get_json()
    eng_id = client.get("/api/v1/tickets/suggested-engineer", headers=disp).get_json()["engineers"][0]["id"]
    wo = client.post(f"/api/v1/tickets/{t['id']}/dispatch", json={"engineer_ids": [eng_id]}, headers=disp).get_json()
    client.post(f"/api/v1/work-orders/{wo['id']}/records", json={"note": "已检查"}, headers=eng)
    client.post("/api/v1/activities", json={"subject": "电话回访", "kind": "call", "customer_id": cust["id"]}, headers=zhang)
    client.post("/api/v1/materials", json={"title": "新品上市", "body_html": "<p>介绍</p>"}, headers=mkt)
    lead = client.get("/api/v1/leads", headers=zhang).get_json()["items"][0]
    return {"ticket": t, "work_order": wo, "customer": cust, "lead_id": lead["id"]}


def test_console_pages_show_no_raw_enum_values(app, busy_demo):
    c, resp = console_login(app, "admin", "demo123456")
    assert resp.status_code == 302
    home = c.get("/console/").get_data(as_text=True)
    pages = sorted(set(re.findall(r'href="(/console/[^"#?]*)"', home)) - {"/console/logout"})
    pages += [f"/console/service/tickets/{busy_demo['ticket']['id']}",
              f"/console/service/work-orders/{busy_demo['work_order']['id']}",
              f"/console/customers/{busy_demo['customer']['id']}", f"/console/leads/{busy_demo['lead_id']}"]
    found = {}
    for path in pages:
        resp = c.get(path)
        if resp.status_code != 200 or "text/html" not in resp.content_type:
            continue
        words = raw_words(visible_text(resp.get_data(as_text=True)))
        if words:
            found[path] = sorted(words)
    assert len(pages) > 10
    assert not found, found
