"""Self-service at scale: ticket submission, and the tracking report over 100,000 tickets and
300,000 handling records.

Measures on PostgreSQL (``--sqlite`` adds an embedded run):

1. ``POST /h5/api/tickets`` without photos, through the WSGI app with a verified WeChat
   user's session (validation, ownership, numbering, insert, timeline, staff notices) —
   target median < 20 ms;
2. the service request tracking report (服务请求跟踪: a page of 50 with first response,
   handling-record aggregates and durations, and the total) for a dispatcher over the last
   30 days and over the whole year — target median < 300 ms.

    .venv/bin/python bench/tickets.py [--tickets 100000] [--repeat 20] [--sqlite]
"""
from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from datetime import datetime, timedelta

from _common import git_rev, machine, median, run_on_postgresql, timed


def build(n: int):
    from sqlalchemy import insert, select, text

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.demo import load_demo
    from crm_core.org.models import Employee, Organization
    from crm_core.service.models import HandlingRecord, Ticket, TicketEvent, WorkOrder

    load_demo()
    db.session.commit()
    org = db.session.scalars(select(Organization)).first()
    customers = list(db.session.scalars(select(Customer.id).where(Customer.org_id == org.id)))
    engineers = list(db.session.scalars(select(Employee.id).where(Employee.name.in_(("郑强", "赵磊")))))
    dispatcher = db.session.scalar(select(Employee.id).where(Employee.name == "吴静"))
    rng = random.Random(3)
    now = datetime.utcnow()
    t0 = time.perf_counter()
    tickets, events = [], []
    for i in range(n):
        created = now - timedelta(minutes=rng.randint(60, 364 * 24 * 60))
        done = rng.random() < 0.8
        tickets.append({"org_id": org.id, "owner_id": dispatcher, "number": f"FWB{i:08d}", "kind": rng.choice(("repair", "complaint", "suggestion", "consultation")),
                        "priority": "normal", "status": "completed" if done else "in_progress", "source": "wechat",
                        "description": f"基准测试请求 {i}", "customer_id": rng.choice(customers), "handler_id": rng.choice(engineers),
                        "dispatcher_id": dispatcher, "first_response_at": created + timedelta(minutes=rng.randint(5, 300)),
                        "completed_at": created + timedelta(hours=rng.randint(2, 96)) if done else None,
                        "closed_automatically": False, "reopen_count": 0, "sla_paused_seconds": 0, "photo_ids": [],
                        "created_at": created, "updated_at": created})
    for s in range(0, n, 5000):
        db.session.execute(insert(Ticket), tickets[s:s + 5000])
    db.session.commit()
    ids = db.session.execute(text("SELECT id, created_at, handler_id FROM ticket WHERE number LIKE 'FWB%' ORDER BY id")).all()
    wos = [{"org_id": org.id, "owner_id": dispatcher, "ticket_id": tid, "status": "completed", "engineer_id": h,
            "auto_assigned": False, "created_at": c, "updated_at": c} for tid, c, h in ids]
    for s in range(0, len(wos), 5000):
        db.session.execute(insert(WorkOrder), wos[s:s + 5000])
    db.session.commit()
    wo_ids = db.session.execute(text("SELECT id, ticket_id, engineer_id, created_at FROM work_order ORDER BY id")).all()
    recs = []
    for wid, tid, eng, c in wo_ids:
        for k in range(3):
            at = c + timedelta(hours=k * 6 + 1)
            recs.append({"work_order_id": wid, "ticket_id": tid, "employee_id": eng, "visited_at": at, "minutes": 30,
                         "note": "基准处理记录", "photo_ids": [], "created_at": at, "updated_at": at})
        events.append({"ticket_id": tid, "at": c, "kind": "status", "to_status": "submitted", "public": True})
        if len(recs) >= 15000:
            db.session.execute(insert(HandlingRecord), recs)
            recs = []
    if recs:
        db.session.execute(insert(HandlingRecord), recs)
    for s in range(0, len(events), 10000):
        db.session.execute(insert(TicketEvent), events[s:s + 10000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    counts = db.session.execute(text("SELECT (SELECT count(*) FROM ticket), (SELECT count(*) FROM handling_record)")).one()
    return counts, time.perf_counter() - t0


def run(url: str, label: str, n: int, repeat: int):
    import crm_core.security
    from crm_core.db import db
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from crm_core.service import reports as service_reports
    from wxapp import create_app

    crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING",
                      "JOBS_EAGER": False, "JOBS_TICKER": False, "MEDIA_ROOT": tempfile.mkdtemp(),
                      "WECHAT_APPID": "wxbenchappid00001"})
    with app.app_context():
        db.create_all()
        from crm_core.org.organization import ensure_builtin_roles

        ensure_builtin_roles()
        db.session.commit()
        (tickets, records), build_s = build(n)
        print(f"\n[{label}] {tickets} tickets, {records} handling records; built in {build_s:.0f} s")

        # a verified customer submits through the H5 API (no photos)
        c = app.test_client()
        page = c.get("/h5/dev-login?openid=oBenchCust01&next=/h5/service", follow_redirects=True).get_data(as_text=True)
        c.environ_base["HTTP_X_CSRFTOKEN"] = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        assert c.post("/h5/api/verify/start", json={"phone": "13905710001"}).status_code == 200
        code = c.get("/sandbox/sms?phone=13905710001").get_json()["items"][0]["code"]
        assert c.post("/h5/api/verify/confirm", json={"phone": "13905710001", "code": code}).status_code == 200

        def submit():
            r = c.post("/h5/api/tickets", json={"kind": "complaint", "description": "基准测试：安装师傅迟到"})
            assert r.status_code == 201, r.get_json()

        ms = timed(submit, repeat=max(repeat * 3, 60), warmup=5)
        print(f"  POST /h5/api/tickets (no photos)        median {median(ms):8.2f} ms   (target < 20)")

        dispatcher = db.session.scalars(db.select(User).where(User.username == "service.dispatcher")).one()
        today = (datetime.utcnow() + timedelta(hours=8)).date()
        for span, d0 in (("last 30 days", today - timedelta(days=29)), ("whole year", today - timedelta(days=365))):
            ms = timed(lambda: service_reports.tracking(load_actor(dispatcher), d0, today, page=1, per_page=50),
                       repeat=repeat, warmup=2)
            total = service_reports.tracking(load_actor(dispatcher), d0, today)["total"]
            print(f"  tracking report, {span:<13} page 50    median {median(ms):8.1f} ms   ({total} tickets; target < 300)")
        last = service_reports.tracking(load_actor(dispatcher), today - timedelta(days=365), today, page=200, per_page=50)
        ms = timed(lambda: service_reports.tracking(load_actor(dispatcher), today - timedelta(days=365), today, page=200,
                                                    per_page=50), repeat=repeat, warmup=1)
        print(f"  tracking report, whole year, page 200  median {median(ms):8.1f} ms   ({len(last['rows'])} rows)")



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--sqlite", action="store_true")
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    if args.sqlite:
        tmp = tempfile.mkdtemp(prefix="wxcrm-bench-")
        run(f"sqlite:///{tmp}/tickets.db", "SQLite", args.tickets, args.repeat)
    run_on_postgresql(lambda url: run(url, "PostgreSQL", args.tickets, args.repeat))


if __name__ == "__main__":
    main()
