"""The desk's ticket page offers only the moves the ticket's state allows (no 派工/等待配件 on a closed case)."""
from __future__ import annotations

import re

from crm_core.db import db
from tests.conftest import console_login


def _buttons(html: str) -> list[str]:
    form = re.search(r'<form[^>]*id="ticket-actions".*?</form>', html, re.S)
    return re.findall(r'<button name="action" value="([a-z_]+)"', form.group(0)) if form else []


def _new_ticket(client, description: str):
    """The demo loaded, and a new consultation the dispatcher took for the first customer: (bearer header, ticket)."""
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    h = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "service.dispatcher", "password": "demo123456"}).get_json()["access_token"]}
    cust = client.get("/api/v1/customers", headers=h).get_json()["items"][0]
    return h, client.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "consultation",
                                                              "description": description}).get_json()


def test_ticket_actions_follow_the_state_machine(app, client):
    h, t = _new_ticket(client, "按钮随状态")
    c, _ = console_login(app, "service.dispatcher", "demo123456")
    page = lambda: c.get(f"/console/service/tickets/{t['id']}").get_data(as_text=True)  # noqa: E731
    assert _buttons(page()) == ["complete", "cancel", "reject"]  # submitted: dispatch above, or settle it
    assert client.post(f"/api/v1/tickets/{t['id']}/complete", headers=h, json={"note": "电话已解答"}).status_code == 200
    html = page()
    assert _buttons(html) == ["in_progress", "close"] and "重新处理" in html  # completed: reopen or close
    assert client.post(f"/api/v1/tickets/{t['id']}/close", headers=h, json={}).status_code == 200
    assert _buttons(page()) == []  # closed: nothing left to do


def test_the_dispatch_form_on_a_dispatched_ticket_appends_and_a_stale_one_is_told_who_has_it(app, client):
    """Two dispatchers with the new ticket open: the first sends 郑强; the second's page, loaded before, still says
    派工 — its submit is refused and names 郑强 (no second engineer on the road). Reloaded, the form reads
    追加派工 and adds a work order on purpose."""
    from flask import g
    from sqlalchemy import func, select

    from crm_core.org.models import Employee
    from crm_core.service.models import WorkOrder

    _h, t = _new_ticket(client, "两位调度同时打开")
    zheng, zhao = (db.session.scalar(select(Employee.id).where(Employee.name == n)) for n in ("郑强", "赵磊"))
    def open_page(c):
        g.pop("csrf_token", None)  # Flask-WTF caches the token in g, and this app context serves both desks
        html = c.get(f"/console/service/tickets/{t['id']}").get_data(as_text=True)
        return html, re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    first, _ = console_login(app, "service.dispatcher", "demo123456")
    _, token1 = open_page(first)
    second, _ = console_login(app, "service.dispatcher", "demo123456")
    stale, token2 = open_page(second)
    assert "追加派工" not in stale and 'name="append"' not in stale
    r = first.post(f"/console/service/tickets/{t['id']}/dispatch", data={"csrf_token": token1, "engineer_ids": [str(zheng)]},
                   follow_redirects=True)
    assert r.status_code == 200 and "已派工" in r.get_data(as_text=True), r.get_data(as_text=True)[:600]
    r = second.post(f"/console/service/tickets/{t['id']}/dispatch", data={"csrf_token": token2, "engineer_ids": [str(zhao)]},
                    follow_redirects=True)
    assert "已派给 郑强" in r.get_data(as_text=True) and "追加派工" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count(WorkOrder.id)).where(WorkOrder.ticket_id == t["id"])) == 1
    fresh, token2 = open_page(second)
    assert 'name="append" value="1"' in fresh and "已派给 郑强" in fresh
    r = second.post(f"/console/service/tickets/{t['id']}/dispatch", data={"csrf_token": token2, "append": "1"},
                    follow_redirects=True)  # 追加派工 with nobody ticked is not an automatic second engineer
    assert "追加派工请选择工程师" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count(WorkOrder.id)).where(WorkOrder.ticket_id == t["id"])) == 1
    r = second.post(f"/console/service/tickets/{t['id']}/dispatch",
                    data={"csrf_token": token2, "engineer_ids": [str(zhao)], "append": "1"}, follow_redirects=True)
    assert "已派工" in r.get_data(as_text=True)
    engineers = db.session.scalars(select(WorkOrder.engineer_id).where(WorkOrder.ticket_id == t["id"])).all()
    assert sorted(engineers) == sorted([zheng, zhao])
