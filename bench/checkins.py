"""Field check-ins at scale: 100,000 customer sites, 500 employees in six levels.

Measures, in the same run (PostgreSQL with Redis, the scale-out shape, by default;
``--sqlite`` adds an embedded run where background jobs share the web process):

1. nearest-customer lookup (``checkins.nearby``: H3 cell disk + geodesic on the candidates)
   for an organisation-wide user — target median < 2 ms — against the reference: a
   brute-force geodesic scan of all 100,000 sites already in memory, which it must beat by
   at least 100×;
2. the check-in API (``POST /api/v1/checkins`` through the WSGI app with a bearer token:
   validation, scope checks, distance, spoofing and travel checks, insert, commit) —
   target median < 15 ms;
3. the mobile check-in report for 500 employees × 30 days (300,000 check-ins) seen by the
   top manager (the whole subtree) and by an administrator — target median < 500 ms.

    .venv/bin/python bench/checkins.py [--sites 100000] [--repeat 30] [--sqlite]
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta

from _common import LEVELS, build_hierarchy, git_rev, machine, median, run_on_postgresql, timed


def build(n_sites: int, with_report: bool = True):
    from sqlalchemy import insert, text

    from crm_core import geo
    from crm_core.customers.models import Customer
    from crm_core.db import db
    from crm_core.field.models import CheckIn
    from crm_core.org.models import Employee
    from crm_core.org.organization import create_user

    org, emp_ids, emp_dept = build_hierarchy(LEVELS)
    rng = random.Random(11)
    reps = emp_ids[-LEVELS[-1]:]
    t0 = time.perf_counter()
    rows = []
    for i in range(n_sites):
        owner = rng.choice(reps)
        lat, lng = rng.uniform(27.2, 31.2), rng.uniform(118.0, 122.9)  # Zhejiang
        rows.append({"org_id": org.id, "owner_id": owner, "department_id": emp_dept[owner], "name": f"客户{i}",
                     "kind": "company", "trading": True, "status": "active", "tags": [], "needs_review": False,
                     "address": f"浙江省某市某路 {i} 号", "site_lat": lat, "site_lng": lng, "site_coord_system": "wgs84",
                     "site_wgs_lat": lat, "site_wgs_lng": lng, "site_cell": geo.cell_of(lat, lng)})
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Customer), rows[start:start + 5000])
    db.session.commit()
    sites = db.session.execute(text("SELECT id, owner_id, site_wgs_lat, site_wgs_lng FROM customer ORDER BY id")).all()

    # 500 employees × 30 days × 20 check-ins = 300,000 rows, written as the service would
    first_day = date(2026, 10, 1)
    batch, total = [], 0
    for e_idx, emp in enumerate(emp_ids if with_report else []):
        base_lat, base_lng = rng.uniform(27.5, 31.0), rng.uniform(118.5, 122.5)
        for d in range(30):
            day = first_day + timedelta(days=d)
            t = datetime.combine(day, datetime.min.time()) + timedelta(hours=1)  # 09:00 China time
            lat, lng = base_lat, base_lng
            for k in range(20):
                kind = "in" if k % 2 == 0 else "out"
                step = rng.uniform(0, 0.02)
                lat, lng = lat + step * rng.choice((-1, 1)), lng + step * rng.choice((-1, 1))
                t += timedelta(minutes=rng.randint(10, 30))
                status = "out_of_range" if rng.random() < 0.05 else "normal"
                batch.append({"org_id": org.id, "owner_id": emp, "department_id": emp_dept[emp], "kind": kind, "lat": lat,
                              "lng": lng, "coord_system": "wgs84", "raw_lat": lat, "raw_lng": lng, "accuracy_m": 20.0,
                              "location_source": "device", "client_time": t, "local_date": day, "travel_m": step * 111000,
                              "status": status, "flags": ["out_of_range"] if status != "normal" else [],
                              "flag_reviews": {}, "flagged": status != "normal", "late": False, "mock_location": False,
                              "duration_s": rng.randint(600, 3600) if kind == "out" else None,
                              "created_at": t, "updated_at": t})
                if len(batch) >= 10000:
                    db.session.execute(insert(CheckIn), batch)
                    total += len(batch)
                    batch = []
    if batch:
        db.session.execute(insert(CheckIn), batch)
        total += len(batch)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    top = db.session.get(Employee, emp_ids[0])
    rep_id = reps[0]
    users = {
        "admin": create_user(org, "bench.admin", "bench-pass-1", ["admin"], db.session.get(Employee, emp_ids[1])).id,
        "top": create_user(org, "bench.top", "bench-pass-1", ["sales_manager"], top).id,
        "rep": create_user(org, "bench.rep", "bench-pass-1", ["salesperson"], db.session.get(Employee, rep_id)).id,
    }
    db.session.commit()
    rep_sites = [s for s in sites if s[1] == rep_id]
    return org.id, users, sites, rep_sites, total, time.perf_counter() - t0, first_day


def run(url: str, label: str, n: int, repeat: int, with_report: bool = True, redis_url: str | None = None):
    import crm_core.security
    from crm_core import geo
    from crm_core.db import db
    from crm_core.field import checkins
    from crm_core.field import reports as checkin_reports
    from crm_core.org.models import User
    from crm_core.org.permissions import load_actor
    from wxapp import create_app
    crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING",
                      "JOBS_EAGER": False, "JOBS_TICKER": False, "MEDIA_ROOT": tempfile.mkdtemp(),
                      "REDIS_URL": redis_url})
    with app.app_context():
        db.create_all()
        from crm_core.org.organization import ensure_builtin_roles

        ensure_builtin_roles()
        db.session.commit()
        org_id, users, sites, rep_sites, n_checkins, build_s, first_day = build(n, with_report)
        print(f"\n[{label}] {len(sites)} customer sites, {n_checkins} check-ins (500 employees × 30 days); built in {build_s:.0f} s")
        actor = lambda key: load_actor(db.session.get(User, users[key]))  # noqa: E731
        rng = random.Random(5)
        queries = []
        for _ in range(repeat * 4):
            s = rng.choice(sites)
            queries.append((s[2] + rng.uniform(-0.002, 0.002), s[3] + rng.uniform(-0.002, 0.002)))
        admin = actor("admin")
        it = iter(queries * 10)
        nearby_ms = timed(lambda: checkins.nearby(admin, *next(it), "wgs84", 500), repeat * 3)
        found = checkins.nearby(admin, *queries[0], "wgs84", 500)

        points = [(s[0], s[2], s[3]) for s in sites]

        def brute(q):
            out = [(geo.distance_m(q, (lat, lng)), cid) for cid, lat, lng in points]
            return sorted(x for x in out if x[0] <= 500)[:10]

        brute_ms = timed(lambda: brute(queries[0]), repeat=3, warmup=0)
        assert [c for _, c in brute(queries[0])] == [f["customer_id"] for f in found], "index and scan disagree"
        nm, bm = median(nearby_ms), median(brute_ms)
        print(f"  nearest customers (H3 + geodesic)  median {nm:8.3f} ms   (target < 2)")
        print(f"  brute-force geodesic scan          median {bm:8.1f} ms   -> {bm / nm:,.0f}x faster (target >= 100x)")

        # the check-in API, through the WSGI app with a bearer token
        client = app.test_client()
        tok = client.post("/api/v1/auth/token", json={"username": "bench.rep", "password": "bench-pass-1"}).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {tok}"}
        seq = iter(range(10**6))
        start = datetime.utcnow() - timedelta(hours=23)  # client times a minute apart: never a duplicate

        def post_checkin():
            i = next(seq)
            cid, _, lat, lng = rep_sites[i % len(rep_sites)]
            r = client.post("/api/v1/checkins", headers=headers, json={
                "kind": "in" if (i // len(rep_sites)) % 2 == 0 else "out", "lat": lat + 0.0005, "lng": lng,
                "accuracy_m": 15 + (i % 7), "customer_id": cid,
                "client_time": (start + timedelta(seconds=61 * i)).isoformat() + "Z"})
            assert r.status_code == 201, r.get_json()

        api_ms = timed(post_checkin, repeat=max(repeat * 3, 60), warmup=5)
        print(f"  POST /api/v1/checkins              median {median(api_ms):8.2f} ms   (target < 15)")

        for key in ("top", "admin") if with_report else ():
            ms = timed(lambda: checkin_reports.checkin_report(actor(key), first_day, first_day + timedelta(days=29)),
                       repeat=max(repeat // 3, 5), warmup=1)
            rows = len(checkin_reports.checkin_report(actor(key), first_day, first_day + timedelta(days=29))["rows"])
            print(f"  check-in report 30 days, {key:<5}    median {median(ms):8.1f} ms   ({rows} employee-days; target < 500)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--sqlite", action="store_true", help="also run on embedded SQLite")
    ap.add_argument("--no-report", action="store_true", help="skip the 300,000 check-ins and the report")
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    if args.sqlite:
        tmp = tempfile.mkdtemp(prefix="wxcrm-bench-")
        run(f"sqlite:///{tmp}/checkins.db", "SQLite", args.sites, args.repeat, not args.no_report)
    # the scale-out shape: PostgreSQL with Redis, so background jobs (reverse geocoding) go to
    # RQ workers instead of a thread inside the web process
    redis = None
    try:
        from tests.services import RedisServer

        redis = RedisServer()
        redis_url = redis.start()
    except BaseException as exc:  # pytest.skip raises BaseException subclasses
        print(f"[Redis] not available ({exc}); jobs run in-process")
        redis_url = None
    try:
        run_on_postgresql(lambda url: run(url, "PostgreSQL + Redis" if redis_url else "PostgreSQL", args.sites,
                                          args.repeat, not args.no_report, redis_url))
    finally:
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    main()
