"""Two dispatchers dispatching the same new ticket at the same moment (#20 item 4): one work order,
one notice; the other dispatcher is told, with 409, never a 500."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from crm_core.db import db
from crm_core.outbox import OutboxMessage
from crm_core.service.models import WorkOrder


def _dispatcher_desk(app):
    """The demo dispatcher's client, bearer header and the first customer they see."""
    c = app.test_client()
    h = {"Authorization": "Bearer " + c.post("/api/v1/auth/token", json={
        "username": "service.dispatcher", "password": "demo123456"}).get_json()["access_token"]}
    return c, h, c.get("/api/v1/customers", headers=h).get_json()["items"][0]


def test_simultaneous_dispatches_of_one_ticket_make_one_work_order(any_app):
    from crm_core.demo import load_demo

    with any_app.app_context():
        load_demo()
        db.session.commit()
        c, h, cust = _dispatcher_desk(any_app)
        ticket = c.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "consultation",
                                                             "description": "同时派工"}).get_json()
        engineers = [e["id"] for e in c.get("/api/v1/tickets/suggested-engineer", headers=h).get_json()["engineers"]][:2]
        assert len(engineers) == 2
        db.session.remove()

    barrier, answers = threading.Barrier(2), []

    def dispatch(engineer_id):
        with any_app.app_context():
            client = any_app.test_client()
            barrier.wait(timeout=10)
            r = client.post(f"/api/v1/tickets/{ticket['id']}/dispatch", headers=h, json={"engineer_ids": [engineer_id]})
            answers.append((r.status_code, (r.get_json() or {}).get("error", {}).get("code")))
            db.session.remove()

    threads = [threading.Thread(target=dispatch, args=(e,)) for e in engineers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = sorted(code for code, _ in answers)
    # the second is refused whether it read the ticket before the first saved (concurrent_change) or after
    # (already_dispatched: it names who has it); 503 only where SQLite's lock gave up: nothing saved
    assert codes[0] == 201 and codes[1] in (409, 503), answers
    assert all(code != 500 for code, _ in answers)
    with any_app.app_context():
        assert db.session.scalar(select(func.count(WorkOrder.id)).where(WorkOrder.ticket_id == ticket["id"])) == 1
        notices = db.session.scalars(select(OutboxMessage.dedupe_key).where(
            OutboxMessage.dedupe_key.like("wo-assigned:%"))).all()
        db.session.remove()
    assert len(notices) == 1, notices  # one engineer is told of one work order


def test_simultaneous_ticket_submissions_all_get_numbers(pg_url, monkeypatch):
    """Twelve tickets taken at once on PostgreSQL (#20: numbered "highest of the day plus one",
    some ran out of retries and were answered 409): every one is saved, with its own number."""
    from crm_core.demo import load_demo
    from crm_core.service.models import Ticket
    from tests.conftest import _create_schema, _make_app

    # The race is over the day's counter, not over opening connections: twelve connections are opened one by one
    # beforehand (on a loaded CI machine twelve at once can outlast the 2 s connect timeout and answer 503)
    monkeypatch.setenv("WXCRM_DB_POOL_SIZE", "12")
    app = _make_app(pg_url)
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        warm = [db.engine.connect() for _ in range(12)]
        for conn in warm:
            conn.close()
        _c, h, cust = _dispatcher_desk(app)
        before = db.session.scalar(select(func.count(Ticket.id)))
        db.session.remove()

    barrier, answers = threading.Barrier(12), []

    def submit(i):
        with app.app_context():
            client = app.test_client()
            barrier.wait(timeout=10)
            r = client.post("/api/v1/tickets", headers=h, json={"customer_id": cust["id"], "kind": "consultation",
                                                                 "description": f"同时提交 {i}"})
            answers.append((r.status_code, (r.get_json() or {}).get("number")))
            db.session.remove()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(code for code, _ in answers) == [201] * 12, answers
    assert len({n for _, n in answers}) == 12
    with app.app_context():
        assert db.session.scalar(select(func.count(Ticket.id))) == before + 12
        db.session.remove()
        db.engine.dispose()
