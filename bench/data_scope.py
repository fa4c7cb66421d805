"""Cost of the data-scope filter on a customer list page.

Builds an organisation with 500 employees in a six-level reporting hierarchy and
100,000 customers (``--customers`` to change), then times the first page of the customer
list (20 rows + total) through ``crm_core.customers.customers.list_customers`` — the same
call the API makes, with a fresh :class:`Actor` per call as a request would — for a
salesperson (scope self), a mid-level manager and the top manager (scope subordinates) and
an administrator (organisation scope). The reference is the same page with only the
organisation filter, measured in the same run. Runs on SQLite and, when PostgreSQL binaries
or ``BENCH_DATABASE_URL`` exist, on PostgreSQL.

    .venv/bin/python bench/data_scope.py [--customers 100000] [--repeat 50]
"""
from __future__ import annotations

import argparse
import random
import tempfile

from _common import LEVELS, build_hierarchy, git_rev, machine, median, run_on_postgresql, timed


def build(n_customers: int):
    from sqlalchemy import insert, text

    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.org.models import Employee
    from crm_core.org.organization import create_user

    org, emp_ids, emp_dept = build_hierarchy(LEVELS)
    rng = random.Random(42)
    reps = emp_ids[-LEVELS[-1]:]
    batch = []
    for i in range(n_customers):
        owner = rng.choice(reps) if rng.random() < 0.9 else rng.choice(emp_ids)
        batch.append({"org_id": org.id, "owner_id": owner, "department_id": emp_dept[owner], "name": f"客户{i:06d}",
                      "kind": "company", "trading": False, "phone": f"138{i:08d}"})
        if len(batch) == 5000:
            db.session.execute(insert(Customer), batch)
            batch = []
    if batch:
        db.session.execute(insert(Customer), batch)
    db.session.commit()
    db.session.execute(text("ANALYZE"))  # a production database has statistics; give the planner them
    db.session.commit()

    def user_for(emp_id, role, name):
        return create_user(org, name, "bench-pass-1", [role], db.session.get(Employee, emp_id))

    users = {
        "salesperson (self)": user_for(reps[0], "salesperson", "b.rep"),
        "manager, level 3 (subordinates)": user_for(emp_ids[LEVELS[0] + LEVELS[1]], "sales_manager", "b.mgr3"),
        "top manager (subordinates = 500)": user_for(emp_ids[0], "sales_manager", "b.top"),
        "administrator (organisation)": user_for(emp_ids[1], "admin", "b.admin"),
    }
    db.session.commit()
    return org, {k: u.id for k, u in users.items()}


def run(url: str, label: str, n_customers: int, repeat: int):
    from sqlalchemy import func, select

    from crm_core.customers.customers import list_customers
    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from wxapp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.create_all()
        org, users = build(n_customers)
        org_id = org.id

        def reference():
            stmt = select(Customer).where(Customer.org_id == org_id)
            db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
            db.session.scalars(stmt.order_by(Customer.id.desc()).limit(20)).all()

        ref = median(timed(reference, repeat))
        print(f"\n[{label}] {n_customers} customers, 500 employees, 6 levels")
        print(f"  {'reference: organisation filter only':<40} median {ref:7.2f} ms")
        for name, uid in users.items():
            def scoped():
                actor = load_actor(db.session.get(User, uid))
                rows, total = list_customers(actor, page=1, per_page=20)
                return total

            total = scoped()
            ms = median(timed(scoped, repeat))
            print(f"  {name:<40} median {ms:7.2f} ms  ratio {ms / ref:5.2f}x  visible {total}")
        db.session.remove()
        db.engine.dispose()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    tmp = tempfile.mkdtemp(prefix="wxcrm-bench-")
    run(f"sqlite:///{tmp}/scope.db", "SQLite", args.customers, args.repeat)
    run_on_postgresql(lambda url: run(url, "PostgreSQL", args.customers, args.repeat))


if __name__ == "__main__":
    main()
