"""The desk's ticket page offers only the moves the ticket's state allows (no 派工/等待配件 on a closed case)."""
from __future__ import annotations

import re

from crm_core.db import db
from tests.conftest import console_login


def _buttons(html: str) -> list[str]:
    form = re.search(r'<form[^>]*id="ticket-actions".*?</form>', html, re.S)
    return re.findall(r'<button name="action" value="([a-z_]+)"', form.group(0)) if form else []


def test_ticket_actions_follow_the_state_machine(app, client):
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    h = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "service.dispatcher", "password": "demo123456"}).get_json()["access_token"]}
    cust = client.get("/api/v1/customers", headers=h).get_json()["items"][0]
    t = client.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "consultation",
                                                        "description": "按钮随状态"}).get_json()
    c, _ = console_login(app, "service.dispatcher", "demo123456")
    page = lambda: c.get(f"/console/service/tickets/{t['id']}").get_data(as_text=True)  # noqa: E731
    assert _buttons(page()) == ["complete", "cancel", "reject"]  # submitted: dispatch above, or settle it
    assert client.post(f"/api/v1/tickets/{t['id']}/complete", headers=h, json={"note": "电话已解答"}).status_code == 200
    html = page()
    assert _buttons(html) == ["in_progress", "close"] and "重新处理" in html  # completed: reopen or close
    assert client.post(f"/api/v1/tickets/{t['id']}/close", headers=h, json={}).status_code == 200
    assert _buttons(page()) == []  # closed: nothing left to do
