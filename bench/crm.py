"""CRM core at scale: 100,000 customers, 300,000 contacts, 500 employees in six levels.

Measures, on SQLite and PostgreSQL, in the same run:

1. the data-scoped customer list page (20 rows + total) for a salesperson, a mid-level and
   the top manager — target median < 30 ms;
2. the collision check of a new lead against all customers (normalised phone and fuzzy
   company name, the default lead rule) — target median < 20 ms — against the reference: a
   plain scan of all customer and contact rows with the same normalisation and similarity,
   which it must beat by at least 50×;
3. the customer 360 view of a customer with contacts, archives, activities and
   opportunities — target median < 50 ms.

Each call builds a fresh Actor, as a request would.

    .venv/bin/python bench/crm.py [--customers 100000] [--repeat 30]
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, timedelta

from _common import LEVELS, build_hierarchy, git_rev, machine, median, run_on_postgresql, timed

CITIES = ["杭州", "宁波", "温州", "绍兴", "嘉兴", "湖州", "金华", "台州", "上海", "苏州", "南京", "无锡"]
CHARS = ("华盛兴达嘉恒瑞丰泰鑫宏源信德安康隆昌永和佳美新天海润博通立远腾飞金银星月明辉光耀中国际联合创智云启航晨阳"
         "蓝绿青红白雪松竹梅兰菊春秋夏冬东南西北江河湖山川石林森木水火土风雨雷电")
TRADES = ["科技", "贸易", "茶业", "物流", "餐饮", "制造", "电子", "机械", "纺织", "医疗器械", "建材", "食品", "服饰", "文化传媒",
          "信息技术", "环保设备", "化工", "家居", "汽车配件", "酒店管理"]
SUFFIXES = ["有限公司", "股份有限公司", "有限责任公司", "集团有限公司"]


def company_name(rng: random.Random) -> str:
    return rng.choice(CITIES) + rng.choice(CHARS) + rng.choice(CHARS) + rng.choice(TRADES) + rng.choice(SUFFIXES)


def build(n_customers: int):
    from sqlalchemy import insert, text

    from crm_core.activities.models import Activity
    from crm_core.customers import collision
    from crm_core.customers.models import Contact, Customer, Product, ProductArchive
    from crm_core.db import db
    from crm_core.org.models import Employee
    from crm_core.org.organization import create_user
    from crm_core.sales.models import Opportunity
    from crm_core.sales.opportunities import ensure_default_method

    org, emp_ids, emp_dept = build_hierarchy(LEVELS)
    rng = random.Random(7)
    reps = emp_ids[-LEVELS[-1]:]
    t0 = time.perf_counter()
    customers, contacts = [], []
    for i in range(n_customers):
        owner = rng.choice(reps) if rng.random() < 0.9 else rng.choice(emp_ids)
        customers.append({"org_id": org.id, "owner_id": owner, "department_id": emp_dept[owner], "name": company_name(rng),
                          "kind": "company", "trading": False, "status": "active", "tags": [], "needs_review": False,
                          "phone": f"0571{8000000 + i:08d}", "source": rng.choice(["manual", "exhibition", "referral"])})
    for start in range(0, len(customers), 5000):
        db.session.execute(insert(Customer), customers[start:start + 5000])
    db.session.commit()
    ids = [r[0] for r in db.session.execute(text("SELECT id, owner_id, department_id FROM customer ORDER BY id"))]
    owners = {r[0]: (r[1], r[2]) for r in db.session.execute(text("SELECT id, owner_id, department_id FROM customer"))}
    for k, cid in enumerate(ids):
        for j in range(3):
            o, d = owners[cid]
            contacts.append({"org_id": org.id, "customer_id": cid, "owner_id": o, "department_id": d, "name": f"联系人{k}-{j}",
                             "phone": f"13{(k * 3 + j):09d}", "interests": [], "is_primary": j == 0})
        if len(contacts) >= 15000:
            db.session.execute(insert(Contact), contacts)
            contacts = []
    if contacts:
        db.session.execute(insert(Contact), contacts)
    db.session.commit()
    # a slice of customers with history for the 360 view
    method = ensure_default_method(org.id)
    product = Product(org_id=org.id, code="P1", name="净水器", warranty_months=24)
    db.session.add(product)
    db.session.flush()
    now_date = date(2026, 11, 1)
    from crm_core.clock import utcnow

    now = utcnow()
    acts, opps, archives = [], [], []
    for cid in ids[:20000]:
        o, d = owners[cid]
        for j in range(5):
            acts.append({"org_id": org.id, "owner_id": o, "department_id": d, "subject": f"拜访{j}", "kind": "visit",
                         "status": "done", "assignee_id": o, "customer_id": cid, "warn_before_minutes": 30,
                         "created_at": now, "updated_at": now})
        opps.append({"org_id": org.id, "owner_id": o, "department_id": d, "name": "项目", "customer_id": cid,
                     "method_id": method.id, "stage_id": method.stages[0].id, "stage_entered_at": now, "status": "open",
                     "amount": 10000, "created_at": now, "updated_at": now})
        archives.append({"org_id": org.id, "owner_id": o, "department_id": d, "serial_no": f"SN{cid}", "product_id": product.id,
                         "customer_id": cid, "sold_on": now_date, "warranty_months": 24,
                         "warranty_until": now_date + timedelta(days=730), "created_at": now, "updated_at": now})
    for rows, model in ((acts, Activity), (opps, Opportunity), (archives, ProductArchive)):
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(model), rows[start:start + 5000])
    db.session.commit()
    counts = collision.reindex_org(org.id, ("customer",))
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    build_s = time.perf_counter() - t0

    def user_for(emp_id, role, name):
        return create_user(org, name, "bench-pass-1", [role], db.session.get(Employee, emp_id)).id

    users = {"salesperson": user_for(reps[0], "salesperson", "b.rep"),
             "manager L3": user_for(emp_ids[LEVELS[0] + LEVELS[1]], "sales_manager", "b.mgr3"),
             "top manager": user_for(emp_ids[0], "sales_manager", "b.top")}
    db.session.commit()
    rep_customer = db.session.execute(text(
        "SELECT c.id FROM customer c WHERE c.owner_id = :o AND c.id <= :m ORDER BY c.id LIMIT 1"),
        {"o": reps[0], "m": ids[min(19999, len(ids) - 1)]}).scalar()
    sample = db.session.execute(text("SELECT name, phone FROM customer ORDER BY id LIMIT 1 OFFSET :k"),
                                {"k": n_customers // 2}).one()
    return org.id, users, rep_customer, sample, counts, build_s


def plain_scan(org_id: int, company: str, phone: str, threshold: float = 0.8) -> list[int]:
    """The reference: read every customer and contact row and compare in Python."""
    from sqlalchemy import text

    from crm_core import normalize
    from crm_core.db import db

    want_phone, want_company = normalize.phone(phone), normalize.company(company)
    hits = set()
    for cid, name, cphone in db.session.execute(text("SELECT id, name, phone FROM customer WHERE org_id = :o"), {"o": org_id}):
        if normalize.phone(cphone) == want_phone or normalize.similarity(normalize.company(name), want_company) >= threshold:
            hits.add(cid)
    for cid, cphone in db.session.execute(text("SELECT customer_id, phone FROM contact WHERE org_id = :o"), {"o": org_id}):
        if normalize.phone(cphone) == want_phone:
            hits.add(cid)
    return sorted(hits)


def run(url: str, label: str, n: int, repeat: int):
    from crm_core.customers import collision
    from crm_core.customers.customers import customer_360, list_customers
    from crm_core.db import db
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from wxapp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.create_all()
        org_id, users, rep_customer, sample, counts, build_s = build(n)
        print(f"\n[{label}] {n} customers, {3 * n} contacts, 500 employees / 6 levels; built and indexed in {build_s:.0f} s")
        actor = lambda key: load_actor(db.session.get(User, users[key]))  # noqa: E731

        for key in users:
            ms = median(timed(lambda: list_customers(actor(key), page=1, per_page=20), repeat))
            print(f"  list page, {key:<12} median {ms:7.2f} ms   (target < 30)")

        # a new lead: same company written differently, phone of one of its contacts in another format
        company = "浙江" + sample.name.replace("股份有限公司", "有限公司")
        lead = {"name": "新线索", "company": company, "phone": "+86 " + sample.phone}

        def check():
            return collision.check(actor("salesperson"), "lead", lead)

        hits = check()
        ms_check = median(timed(check, repeat))
        ref_hits = plain_scan(org_id, lead["company"], lead["phone"])
        ms_scan = median(timed(lambda: plain_scan(org_id, lead["company"], lead["phone"]), max(3, repeat // 10), warmup=1))
        found = sorted({h.record_id for h in hits if h.object_type == "customer"})
        print(f"  collision check (lead vs customers)   median {ms_check:7.2f} ms   (target < 20)  hits {found}")
        print(f"  reference: plain scan of all rows      median {ms_scan:7.1f} ms   hits {ref_hits}")
        print(f"  speed-up {ms_scan / ms_check:6.0f}x (target >= 50x); same customers found: {set(found) <= set(ref_hits) and bool(found)}")

        ms_360 = median(timed(lambda: customer_360(actor("salesperson"), rep_customer), repeat))
        print(f"  customer 360 view                      median {ms_360:7.2f} ms   (target < 50)")
        db.session.remove()
        db.engine.dispose()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    if args.only != "postgresql":
        tmp = tempfile.mkdtemp(prefix="wxcrm-bench-")
        run(f"sqlite:///{tmp}/crm.db", "SQLite", args.customers, args.repeat)
    if args.only == "sqlite":
        return
    run_on_postgresql(lambda url: run(url, "PostgreSQL", args.customers, args.repeat))


if __name__ == "__main__":
    main()
