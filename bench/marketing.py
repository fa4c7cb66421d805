"""Marketing at scale, on PostgreSQL, in the same run:

1. QR PNG: first render versus the cached path, and revalidation (``If-None-Match`` → 304) —
   target: cached median < 2 ms;
2. material page views with visit recording (every request a new viewer: node + visit) under
   gunicorn with 2 workers and wrk at 16 connections, against the bare reference endpoint of the
   official-account benchmark in the same run — target ≥ 0.5× its throughput;
3. the share tree of a campaign with 100,000 visits and 20,000 viewers, up to depth 12 —
   target < 1 s;
4. top sharers (weekly and all-time, per campaign and overall) — target < 200 ms.

    .venv/bin/python bench/marketing.py [--nodes 20000] [--visits 100000] [--seconds 10]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta

from _common import git_rev, machine, median, timed

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def build(n_nodes: int, n_visits: int):
    from sqlalchemy import insert, select, text

    from crm_core.db import db
    from crm_core.demo import load_demo
    from crm_core.org.models import Organization
    from materials.models import Attribution, Campaign, Material, ShareNode, Visit

    load_demo()
    db.session.commit()
    org = db.session.scalars(select(Organization)).first()
    m = Material(org_id=org.id, code="benchmk1", title="基准素材", body_html="<p>正文</p>", status="published", version=1,
                 published_at=datetime.utcnow(), attachment_ids=[])
    db.session.add(m)
    db.session.flush()
    c = Campaign(org_id=org.id, name="基准方案", kind="campaign", status="active", material_ids=[m.id])
    db.session.add(c)
    db.session.commit()
    rng = random.Random(9)
    t0 = time.perf_counter()
    now = datetime.utcnow()
    # a random tree: each node's parent is an earlier node, depth capped at 12
    parents, depths, paths = [None], [0], ["/"]
    for i in range(1, n_nodes):
        if rng.random() < 0.02:
            parents.append(None)
            depths.append(0)
            paths.append("/")
            continue
        for _ in range(10):
            p = rng.randrange(max(0, i - 2000), i)
            if depths[p] < 12:
                break
        else:
            parents.append(None)
            depths.append(0)
            paths.append("/")
            continue
        parents.append(p)
        depths.append(depths[p] + 1)
        paths.append(None)
    first_id = (db.session.scalar(text("SELECT coalesce(max(id), 0) FROM share_node")) or 0) + 1
    ids = [first_id + i for i in range(n_nodes)]
    for i in range(n_nodes):
        if parents[i] is not None:
            paths[i] = f"{paths[parents[i]]}{ids[parents[i]]}/"
    rows = [{"id": ids[i], "token": f"tk{i:010d}", "material_id": m.id, "campaign_id": c.id, "campaign_key": c.id,
             "viewer_key": f"o:oBench{i:07d}", "openid": f"oBench{i:07d}", "parent_id": ids[parents[i]] if parents[i] is not None else None,
             "depth": depths[i], "path": paths[i], "counted": True, "created_at": now - timedelta(days=rng.randint(0, 30))}
            for i in range(n_nodes)]
    for s in range(0, len(rows), 5000):
        db.session.execute(insert(ShareNode), rows[s:s + 5000])
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval(pg_get_serial_sequence('share_node', 'id'), (SELECT max(id) FROM share_node))"))
    visits = [{"material_id": m.id, "campaign_id": c.id, "node_id": ids[rng.randrange(n_nodes)], "source": "link", "is_bot": False,
               "js_confirmed": True, "counted": True, "created_at": now - timedelta(minutes=rng.randint(0, 30 * 1440))}
              for _ in range(n_visits)]
    for s in range(0, len(visits), 10000):
        db.session.execute(insert(Visit), visits[s:s + 10000])
    attr = []
    for i in range(n_nodes):
        for anc in (paths[i] or "/").strip("/").split("/"):
            if anc:
                attr.append({"sharer_key": f"o:oBench{int(anc) - first_id:07d}", "node_id": int(anc), "material_id": m.id,
                             "campaign_key": c.id, "kind": "reach", "ref_id": ids[i], "at": rows[i]["created_at"]})
        if attr and len(attr) >= 20000:
            db.session.execute(insert(Attribution), attr)
            attr = []
    if attr:
        db.session.execute(insert(Attribution), attr)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    n_attr = db.session.scalar(text("SELECT count(*) FROM attribution"))
    return m, c, max(depths), n_attr, time.perf_counter() - t0


def in_process(url: str, args):
    import crm_core.security
    from crm_core.db import db
    from materials import services
    from wxapp import create_app

    crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"
    media_root = tempfile.mkdtemp()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "LOG_LEVEL": "WARNING", "JOBS_EAGER": False,
                      "JOBS_TICKER": False, "MEDIA_ROOT": media_root, "PUBLIC_BASE_URL": "https://crm.example.com"})
    with app.app_context():
        db.create_all()
        from crm_core.org.organization import ensure_builtin_roles

        ensure_builtin_roles()
        db.session.commit()
        m, c, depth, n_attr, build_s = build(args.nodes, args.visits)
        print(f"\n[PostgreSQL] {args.nodes} viewers (max depth {depth}), {args.visits} visits, {n_attr} attribution rows; built in {build_s:.0f} s")
        client = app.test_client()
        seq = iter(range(10**6))

        def first_render():
            r = client.get(f"/materials/{m.id}/qr.png?c={next(seq)}")
            assert r.status_code == 200
        first = timed(first_render, repeat=30, warmup=2)
        client.get(f"/materials/{m.id}/qr.png")
        cached = timed(lambda: client.get(f"/materials/{m.id}/qr.png"), repeat=200, warmup=10)
        etag = client.get(f"/materials/{m.id}/qr.png").headers["ETag"]
        r304 = client.get(f"/materials/{m.id}/qr.png", headers={"If-None-Match": etag})
        reval = timed(lambda: client.get(f"/materials/{m.id}/qr.png", headers={"If-None-Match": etag}), repeat=200, warmup=10)
        print(f"  QR PNG first render                   median {median(first):8.2f} ms")
        print(f"  QR PNG cached (200, full body)        median {median(cached):8.3f} ms   (target < 2)")
        print(f"  QR PNG revalidation ({r304.status_code})             median {median(reval):8.3f} ms")

        tree_ms = timed(lambda: services.share_tree(campaign_id=c.id), repeat=5, warmup=1)
        tree = services.share_tree(campaign_id=c.id)
        print(f"  share tree of the campaign            median {median(tree_ms):8.1f} ms   ({tree['viewers']} viewers, depth {tree['max_depth']}; target < 1000)")
        for label, fn in (("top sharers, campaign, all time", lambda: services.top_sharers(c.id)),
                          ("top sharers, campaign, this week", lambda: services.top_sharers(c.id, since=services.week_start())),
                          ("top sharers, overall, all time", lambda: services.top_sharers(None))):
            ms = timed(fn, repeat=20, warmup=2)
            print(f"  {label:<37} median {median(ms):8.1f} ms   (target < 200)")
        code = m.code
    return code, media_root


def page_views(url: str, code: str, seconds: int, media_root: str, rounds: int = 1):
    """PostgreSQL + Redis (the scale-out shape): views are queued and written by a worker
    running alongside; afterwards every answered view must be a stored row."""
    import redis as redis_lib
    import wechat_callback as wc
    from sqlalchemy import create_engine, text

    from tests.services import RedisServer

    rs = RedisServer()
    rs.url = None
    redis_url = rs.start()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": url, "SECRET_KEY": "bench", "WXCRM_LOG_LEVEL": "WARNING", "WXCRM_JOBS_TICKER": "0",
           "WECHAT_APPID": wc.APPID, "WECHAT_TOKEN": wc.TOKEN, "WECHAT_AES_KEY": wc.AES_KEY, "WXCRM_MEDIA_ROOT": media_root}
    req = os.path.join(tempfile.mkdtemp(), "req.txt")
    wc.make_requests(req, 40000)
    ref_env = {**os.environ, "WECHAT_TOKEN": wc.TOKEN, "WECHAT_APPID": wc.APPID, "WECHAT_AES_KEY": wc.AES_KEY,
               "PYTHONPATH": os.path.join(ROOT, "bench")}
    import re
    import statistics

    engine = create_engine(url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM visit")).scalar()
    prod = wc.serve("wxapp:create_app()", 18612, env)
    worker = subprocess.Popen([os.path.join(wc.BIN, "wxcrm"), "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ratios, answered_all = [], 0
    try:
        conn_r = redis_lib.Redis.from_url(redis_url)

        def drained(limit=180):
            deadline = time.time() + limit
            while (conn_r.llen("wxcrm:materials:events") or conn_r.exists("wxcrm:materials:events:lock")) and time.time() < deadline:
                time.sleep(0.2)

        for rnd in range(rounds):  # reference and product alternate, so both see the same machine
            drained()  # the previous round's views are written before the reference runs
            ref = wc.serve("wechat_reference_app:app", 18611, ref_env)
            try:
                r_ref = wc.wrk(18611, seconds, req)
            finally:
                ref.terminate()
                ref.wait(10)
            out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s",
                                  os.path.join(ROOT, "bench", "material_requests.lua"), "http://127.0.0.1:18612"],
                                 capture_output=True, text=True,
                                 env={**os.environ, "WXCRM_BENCH_PATH": f"/m/{code}?c=1&s=tk0000000001"}).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            answered_all += int(re.search(r"(\d+) requests in", out).group(1))
            ratios.append(rps / r_ref["rps"])
            print(f"  round {rnd + 1}: material page views {rps:7.0f} req/s (p99 {p99.group(1)}{p99.group(2)}, non-2xx "
                  f"{non2xx.group(1) if non2xx else 0}) vs reference {r_ref['rps']:7.0f} req/s -> {ratios[-1]:.2f}x")
        drained()
    finally:
        prod.terminate()
        prod.wait(10)
        worker.terminate()
        worker.wait(10)
        rs.stop()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM visit")).scalar() - before
    engine.dispose()
    print(f"  -> median {statistics.median(ratios):.2f}x the reference over {rounds} round(s) (target >= 0.5); "
          f"{answered_all} answered, {stored} visits stored after the drain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--visits", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternating reference/product page-view rounds")
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    from tests.services import PostgresServer

    pg = PostgresServer()
    pg.url = None
    url = os.environ.get("BENCH_DATABASE_URL") or pg.start()
    try:
        code, media_root = in_process(url, args)
        if shutil.which("wrk"):
            page_views(url, code, args.seconds, media_root, args.rounds)
        else:
            print("  wrk not installed: page-view throughput skipped (apt-get install wrk)")
    finally:
        if not os.environ.get("BENCH_DATABASE_URL"):
            pg.stop()


if __name__ == "__main__":
    main()
