"""The money chain at scale (#19, "Speed and scale"), on PostgreSQL:

1. 应收款汇总表 (``GET /api/v1/reports/receivables``: outstanding per customer by ageing bucket,
   within the data scope) over 100,000 instalments of 25,000 approved contracts with 1,000,000
   receipt allocations — target median < 300 ms, for the sales manager (subordinates' scope)
   and the administrator (the whole organisation);
2. 到期债权表 (``/reports/overdue``) over the same data, the first page of 100 with the totals;
3. 销售业绩统计 for 500 employees × 12 months (contracts, receipts and targets) — target < 300 ms;
4. a quote with 200 lines saved and priced (``POST /api/v1/quotes`` through the WSGI app:
   validation, pricing per line with Decimal, numbering, insert of the quote and its lines) —
   target median < 100 ms.

    .venv/bin/python bench/money_chain.py [--contracts 25000] [--receipts 1000000] [--repeat 20]

Data: the demo organisation; contracts owned by the demo salespeople in turn, four instalments
each (due from two years ago to a year ahead); 45 % of the instalments fully received, the other
receipts spread over the rest.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

from _common import build_hierarchy, git_rev, machine, median, run_on_postgresql, timed


def build(contracts: int, receipts: int):
    from sqlalchemy import insert, select, text

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.demo import load_demo
    from crm_core.org.models import Employee, Organization
    from crm_core.sales.models import Contract, Instalment, Receipt, ReceiptAllocation

    load_demo()
    db.session.commit()
    org = db.session.scalars(select(Organization).where(Organization.code == "lanyun")).one()
    owners = list(db.session.execute(select(Employee.id).where(Employee.org_id == org.id, Employee.name.in_(("张伟", "李娜"))))
                  .scalars())
    dept = {e.id: e.department_id for e in db.session.scalars(select(Employee).where(Employee.id.in_(owners)))}
    rng = random.Random(19)
    now = datetime.utcnow()
    t0 = time.perf_counter()
    # 5,000 customers of the two salespeople
    cust_rows = [{"org_id": org.id, "owner_id": owners[i % 2], "department_id": dept[owners[i % 2]], "name": f"应收测试客户{i:05d}",
                  "kind": "company", "trading": True, "status": "active", "tags": [], "needs_review": False,
                  "created_at": now, "updated_at": now} for i in range(5000)]
    db.session.execute(insert(Customer), cust_rows)
    customers = db.session.execute(text("SELECT id, owner_id FROM customer WHERE name LIKE '应收测试客户%' ORDER BY id")).all()
    today = date.today()
    rows = []
    for i in range(contracts):
        cid, owner = customers[i % len(customers)]
        rows.append({"org_id": org.id, "owner_id": owner, "department_id": dept[owner], "number": f"HTB{i:08d}",
                     "title": f"基准合同 {i}", "customer_id": cid, "status": "approved", "amount": Decimal("80000.00"),
                     "received": Decimal("0.00"), "signed_on": today, "approved_at": now, "created_at": now, "updated_at": now})
    for s in range(0, len(rows), 5000):
        db.session.execute(insert(Contract), rows[s:s + 5000])
    ids = db.session.execute(text("SELECT id FROM contract WHERE number LIKE 'HTB%' ORDER BY id")).scalars().all()
    inst = []
    for cid in ids:
        start = today - timedelta(days=rng.randint(0, 730))
        for k in range(4):
            inst.append({"org_id": org.id, "contract_id": cid, "seq": k + 1, "due_date": start + timedelta(days=90 * k),
                         "amount": Decimal("20000.00"), "received": Decimal("0.00")})
    for s in range(0, len(inst), 10000):
        db.session.execute(insert(Instalment), inst[s:s + 10000])
    inst_ids = db.session.execute(text("SELECT i.id, i.contract_id, c.customer_id, c.owner_id FROM instalment i "
                                       "JOIN contract c ON c.id = i.contract_id WHERE c.number LIKE 'HTB%' ORDER BY i.id")).all()
    # receipts of 1,000.00, one allocation each: 45 % of the instalments fully received (20 receipts), the
    # rest of the receipts spread over the others (never filling one), so the report has real ageing to show
    rec, alloc, n = [], [], 0
    order = list(range(len(inst_ids)))
    rng.shuffle(order)
    full = order[:min(len(order), int(receipts * 0.9) // 20)]
    plan = [k for k in full for _ in range(20)]
    rest = order[len(full):]
    counts: dict[int, int] = {}
    while rest and len(plan) < receipts:
        k = rest[rng.randrange(len(rest))]
        if counts.get(k, 0) < 19:
            counts[k] = counts.get(k, 0) + 1
            plan.append(k)
    for k in plan:
        iid, cid, cust, owner = inst_ids[k]
        rec.append({"org_id": org.id, "owner_id": owner, "department_id": dept[owner], "number": f"HKB{n:09d}", "contract_id": cid,
                    "customer_id": cust, "amount": Decimal("1000.00"), "received_on": today, "method": "bank",
                    "created_at": now, "updated_at": now})
        alloc.append((n, iid))
        n += 1
    for s in range(0, len(rec), 20000):
        db.session.execute(insert(Receipt), rec[s:s + 20000])
    first = db.session.scalar(text("SELECT min(id) FROM receipt WHERE number LIKE 'HKB%'"))
    rows = [{"receipt_id": first + k, "instalment_id": iid, "amount": Decimal("1000.00")} for k, iid in alloc]
    for s in range(0, len(rows), 20000):
        db.session.execute(insert(ReceiptAllocation), rows[s:s + 20000])
    db.session.execute(text("UPDATE instalment i SET received = a.s FROM (SELECT instalment_id, sum(amount) s FROM "
                            "receipt_allocation GROUP BY instalment_id) a WHERE a.instalment_id = i.id"))
    db.session.execute(text("UPDATE contract c SET received = i.s FROM (SELECT contract_id, sum(received) s FROM instalment "
                            "GROUP BY contract_id) i WHERE i.contract_id = c.id"))
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    counts = db.session.execute(text("SELECT (SELECT count(*) FROM instalment), (SELECT count(*) FROM receipt_allocation), "
                                     "(SELECT count(*) FROM instalment WHERE received >= amount)")).one()
    return counts, time.perf_counter() - t0


def run(url: str, contracts: int, receipts: int, repeat: int):
    import crm_core.security
    from crm_core.db import db
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from crm_core.sales import reports
    from wxapp import create_app

    crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING", "JOBS_EAGER": False,
                      "JOBS_TICKER": False, "MEDIA_ROOT": tempfile.mkdtemp(), "WECHAT_APPID": "wxbenchappid00001"})
    with app.app_context():
        db.create_all()
        from crm_core.org.organization import ensure_builtin_roles

        ensure_builtin_roles()
        db.session.commit()
        (instalments, allocations, paid), build_s = build(contracts, receipts)
        print(f"\n[PostgreSQL] {instalments:,} instalments ({paid:,} fully received), {allocations:,} receipt allocations; "
              f"built in {build_s:.0f} s")
        for login in ("sales.manager", "admin"):
            user = db.session.scalars(db.select(User).where(User.username == login)).one()
            out = reports.receivables(load_actor(user))
            ms = timed(lambda: reports.receivables(load_actor(user)), repeat=repeat, warmup=2)
            print(f"  应收款汇总表 as {login:<14} median {median(ms):7.1f} ms   ({len(out['rows']):,} customers, "
                  f"outstanding {out['totals']['outstanding']}; target < 300)")
        user = db.session.scalars(db.select(User).where(User.username == "sales.manager")).one()
        ms = timed(lambda: reports.overdue(load_actor(user)), repeat=repeat, warmup=1)
        n = reports.overdue(load_actor(user))["totals"]["count"]
        print(f"  到期债权表 as sales.manager     median {median(ms):7.1f} ms   ({n:,} instalments due; the first page of 100)")

        performance(repeat)

        c = app.test_client()
        token = c.post("/api/v1/auth/token", json={"username": "sales.zhang", "password": "demo123456"}).get_json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        products = [p["id"] for p in c.get("/api/v1/products", headers=h).get_json()["items"]]
        customer = c.get("/api/v1/customers?per_page=1", headers=h).get_json()["items"][0]["id"]
        body = {"customer_id": customer, "lines": [{"product_id": products[i % len(products)], "quantity": str(1 + i % 7),
                                                    "discount_pct": str(i % 15)} for i in range(200)]}

        def save():
            r = c.post("/api/v1/quotes", headers=h, json=body)
            assert r.status_code == 201, r.get_json()

        ms = timed(save, repeat=repeat, warmup=3)
        print(f"  POST /api/v1/quotes, 200 lines  median {median(ms):7.1f} ms   (target < 100)")


def performance(repeat: int) -> None:
    """销售业绩统计 for 500 employees (six reporting levels) × 12 months: two approved contracts, two
    receipts and a target per employee and month, read by the general manager (the whole tree) and
    by a second-level manager (a third of it)."""
    from sqlalchemy import insert, select

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.org.models import Employee, User
    from crm_core.org.organization import create_user
    from crm_core.org.permissions import load_actor
    from crm_core.sales import reports
    from crm_core.sales.models import Contract, Receipt, SalesTarget

    org, emp_ids, emp_dept = build_hierarchy()
    year, now = date.today().year, datetime.utcnow()
    db.session.execute(insert(Customer), [{"org_id": org.id, "owner_id": e, "department_id": emp_dept[e], "name": f"业绩客户{e}",
                                           "kind": "company", "trading": True, "status": "active", "tags": [], "needs_review": False,
                                           "created_at": now, "updated_at": now} for e in emp_ids])
    cust = dict(db.session.execute(select(Customer.owner_id, Customer.id).where(Customer.org_id == org.id)).all())
    contracts, targets = [], []
    for e in emp_ids:
        for m in range(1, 13):
            for k in range(2):
                contracts.append({"org_id": org.id, "owner_id": e, "department_id": emp_dept[e], "number": f"HTP{e}-{m}-{k}",
                                  "title": "业绩合同", "customer_id": cust[e], "status": "approved", "amount": Decimal("50000.00"),
                                  "received": Decimal("0.00"), "signed_on": date(year, m, 10), "created_at": now, "updated_at": now})
            targets.append({"org_id": org.id, "owner_id": e, "department_id": emp_dept[e], "month": date(year, m, 1),
                            "amount": Decimal("120000.00"), "updated_at": now})
    for s in range(0, len(contracts), 5000):
        db.session.execute(insert(Contract), contracts[s:s + 5000])
    db.session.execute(insert(SalesTarget), targets)
    ids = db.session.execute(select(Contract.id, Contract.owner_id, Contract.customer_id, Contract.signed_on)
                             .where(Contract.org_id == org.id)).all()
    db.session.execute(insert(Receipt), [{"org_id": org.id, "owner_id": o, "department_id": emp_dept[o], "number": f"HKP{i}",
                                          "contract_id": cid, "customer_id": cu, "amount": Decimal("30000.00"), "received_on": on,
                                          "method": "bank", "created_at": now, "updated_at": now}
                                         for i, (cid, o, cu, on) in enumerate(ids)])
    gm = create_user(org, "bench.gm", "bench-pass-1", ["sales_manager"], db.session.get(Employee, emp_ids[0]))
    second = create_user(org, "bench.vp", "bench-pass-1", ["sales_manager"], db.session.get(Employee, emp_ids[1]))
    db.session.commit()
    from sqlalchemy import text

    db.session.execute(text("ANALYZE"))
    db.session.commit()
    print(f"  ({len(emp_ids)} employees, {len(contracts):,} contracts, {len(ids):,} receipts, {len(targets):,} targets)")
    for label, user in (("general manager", gm), ("second-level manager", second)):
        u = db.session.get(User, user.id)
        out = reports.sales_performance(load_actor(u), year)
        ms = timed(lambda: reports.sales_performance(load_actor(u), year), repeat=repeat, warmup=2)
        print(f"  销售业绩统计, {label:<21} median {median(ms):7.1f} ms   ({len(out['rows'])} people × 12 months; target < 300)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contracts", type=int, default=25_000)
    ap.add_argument("--receipts", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    run_on_postgresql(lambda url: run(url, args.contracts, args.receipts, args.repeat))


if __name__ == "__main__":
    main()
