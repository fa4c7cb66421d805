"""The 20-user write mix in scale-out mode (issue #20, item 10 and "Throughput").

The stack: a throwaway PostgreSQL and Redis, gunicorn serving ``wxapp:create_app()`` and
``wxcrm worker`` (RQ) processes; WeChat is the built-in sandbox, served by a gunicorn of its
own on the same database (so its calls do not queue behind the measured web tier; it shares
the 2 cores like everything else). The data: the demo organisation plus 10 salespeople,
2 dispatchers and 8 engineers (dispatchers and engineers signed in on WeChat, so their notices
go out as template messages: a new ticket notifies the 3 dispatchers, a dispatch the engineer
and the customer), 20,000 customers with a contact and a site each (collision keys
indexed), 2,000 of the contacts verified WeChat followers.

wrk drives 20 users over real HTTP (one connection per user, no think time; ``write_mix.lua``):

- salespeople (bearer token): ``POST /api/v1/mobile/customers`` (客户备案 with the collision
  check), ``POST /api/v1/activities``, ``POST /api/v1/checkins`` in and out at their customers;
- customers (WeChat H5 session cookie + CSRF header): ``POST /h5/api/tickets``;
- dispatchers (bearer token): ``GET /api/v1/tickets?status=submitted``, then
  ``POST /api/v1/tickets/{id}/dispatch`` to an engineer (notices to the engineer and the customer);

every POST with its own ``Idempotency-Key``. Per request kind: req/s, p50, p99 and errors (any
status >= 400, with the codes). After the load stops: how long until the job queue (RQ queued,
started and due scheduled jobs) and the outbox (rows pending or sending) are empty — the
target is 10 s.

Web-tier configurations are compared in the same run, alternating, each round on a fresh copy
of the same database (``CREATE DATABASE ... TEMPLATE``) and an empty Redis; medians per
configuration. A configuration is ``<worker class>-<workers>[x<threads>][/pool<N>]/rq<K>``:
``sync-2/rq1`` is the old Procfile (``gunicorn --workers 2``, SQLAlchemy's default pool of
5 + 10, one ``wxcrm worker``); ``gthread-2x8/pool8/rq2`` — two gthread workers of 8 threads,
a pool of 8 (``WXCRM_DB_POOL_SIZE``, overflow 2) and two RQ workers — is the Procfile now. Target: >= 200 req/s in
total with p99 < 200 ms on a 2-core machine, notices drained within 10 s.

    apt-get install wrk redis-server postgresql
    .venv/bin/python bench/write_mix.py [--seconds 60] [--users 20] [--rounds 3]
        [--configs sync-2/rq1,gthread-2x8/pool8/rq2,...] [--profile gthread-2x8/pool8/rq2]

``--profile CONFIG`` adds one run of CONFIG with py-spy recording every web worker and RQ worker
(``pip install py-spy``); the top functions by own time are printed per process kind.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from _common import git_rev, machine

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = os.path.dirname(sys.executable)
LUA = os.path.join(ROOT, "bench", "write_mix.lua")
APPID, TOKEN, SECRET = "wxbenchappid00001", "benchtoken", "benchsecret"
PASSWORD = "bench-pass-1"
SALES, DISPATCHERS, ENGINEERS = 10, 2, 8  # dispatcher accounts; the 4 dispatcher users share them
CUSTOMERS, FOLLOWERS = 20_000, 2_000
DEFAULT_CONFIGS = "sync-2/rq1,gthread-2x8/pool8/rq2,gthread-2x8/pool8/rq4"
KINDS = ["customer (collision check)", "activity", "check-in", "ticket (H5)", "ticket queue (GET)", "dispatch"]


# --- data ------------------------------------------------------------------------------------
def build(url: str) -> None:
    """Migrate ``url`` and load the organisation, staff, customers and WeChat followers."""
    env = base_env(url, None, "http://127.0.0.1:9/sandbox/wechat/")
    subprocess.run([os.path.join(BIN, "wxcrm"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    from sqlalchemy import insert, select, text

    import crm_core.security
    from crm_core import geo
    from crm_core.customers import collision
    from crm_core.customers.models import Contact, Customer
    from crm_core.db import db
    from crm_core.demo import load_demo
    from crm_core.org.models import Organization, Position
    from crm_core.org.organization import create_user, upsert_employee, upsert_position
    from crm_core.wechat.models import Follower, SandboxRecord
    from wxapp import create_app

    crm_core.security.HASH_METHOD = "pbkdf2:sha256:1000"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "JOBS_EAGER": False,
                      "JOBS_TICKER": False, "REDIS_URL": None, "WECHAT_APPID": APPID})
    t0 = time.perf_counter()
    with app.app_context():
        load_demo()
        db.session.commit()
        org = db.session.scalars(select(Organization).where(Organization.code == "lanyun")).one()
        pos = {p.code: p for p in db.session.scalars(select(Position).where(Position.org_id == org.id))}
        staff = {"sales": [], "dispatch": [], "engineer": []}
        for role, n, boss, code in (("salesperson", SALES, "SALES_MGR", "sales"), ("dispatcher", DISPATCHERS, "SVC_MGR", "dispatch"),
                                    ("engineer", ENGINEERS, "SVC_MGR", "engineer")):
            for i in range(n):
                p = upsert_position(org, f"WM_{code}_{i}", f"压测{role}{i}", pos[boss].department, pos[boss])
                emp = upsert_employee(org, f"WM{code}{i:02d}", f"压测{code}{i:02d}", p, f"1770000{len(staff[code]):02d}{i:02d}")
                create_user(org, f"wm.{code}{i:02d}", PASSWORD, [role], emp)
                db.session.flush()
                staff[code].append((emp.id, emp.department_id))
        org_id = org.id
        db.session.commit()
        rng = random.Random(20)
        now = db.session.scalar(text("SELECT now() AT TIME ZONE 'UTC'"))
        rows = []
        for i in range(CUSTOMERS):
            owner_id, dept_id = staff["sales"][i % SALES]
            lat, lng = rng.uniform(30.15, 30.40), rng.uniform(119.95, 120.40)  # Hangzhou
            rows.append({"org_id": org_id, "owner_id": owner_id, "department_id": dept_id,
                         "name": f"杭州客{_core(i)}贸易有限公司", "kind": "company", "trading": True, "status": "active",
                         "tags": [], "needs_review": False, "phone": f"0571{8000000 + i}", "address": f"杭州市某路 {i} 号",
                         "site_lat": lat, "site_lng": lng, "site_coord_system": "wgs84", "site_wgs_lat": lat,
                         "site_wgs_lng": lng, "site_cell": geo.cell_of(lat, lng), "created_at": now, "updated_at": now})
        for s in range(0, len(rows), 5000):
            db.session.execute(insert(Customer), rows[s:s + 5000])
        ids = db.session.execute(text("SELECT id, owner_id, department_id FROM customer WHERE phone LIKE '05718%' ORDER BY id")).all()
        contacts = [{"org_id": org_id, "customer_id": cid, "owner_id": o, "department_id": d, "name": f"联系人{k}",
                     "phone": f"188{k:08d}", "interests": [], "is_primary": True, "created_at": now, "updated_at": now}
                    for k, (cid, o, d) in enumerate(ids)]
        for s in range(0, len(contacts), 5000):
            db.session.execute(insert(Contact), contacts[s:s + 5000])
        collision.reindex_org(org_id, ("customer",))
        bound = db.session.execute(text("SELECT id, customer_id FROM contact WHERE phone LIKE '188%' ORDER BY id LIMIT :n"),
                                   {"n": FOLLOWERS}).all()
        followers = [{"appid": APPID, "openid": f"oWmCust{k:05d}", "org_id": org_id, "subscribed": True, "subscribed_at": now,
                      "first_subscribed_at": now, "subscribe_count": 1, "contact_id": cid, "customer_id": cust, "bound_at": now,
                      "created_at": now, "updated_at": now} for k, (cid, cust) in enumerate(bound)]
        followers += [{"appid": APPID, "openid": f"oWmStaff{e:05d}", "org_id": org_id, "subscribed": True, "subscribed_at": now,
                       "first_subscribed_at": now, "subscribe_count": 1, "employee_id": e, "staff_bound_at": now,
                       "created_at": now, "updated_at": now} for e, _ in staff["dispatch"] + staff["engineer"]]
        db.session.execute(insert(Follower), followers)
        # the sandbox knows them as WeChat would: each followed (hours ago, so notices go as templates)
        db.session.execute(insert(SandboxRecord), [{"api": "user_action", "openid": f["openid"], "errcode": 0,
                                                    "payload": {"action": "follow", "scene": None}, "created_at": now}
                                                   for f in followers])
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    print(f"data: {CUSTOMERS:,} customers, {FOLLOWERS:,} verified followers, {SALES} salespeople, {DISPATCHERS} dispatchers "
          f"(+1 demo), {ENGINEERS} engineers; built in {time.perf_counter() - t0:.0f} s", flush=True)


def _core(i: int) -> str:
    chars = "华盛兴达嘉恒瑞丰泰鑫宏源信德安康隆昌永和佳美新天海润博通立远腾飞金银星月明辉光耀中联合创智云启航晨阳"
    out = ""
    while True:
        out += chars[i % len(chars)]
        i //= len(chars)
        if not i:
            return out


def users_file(path: str, base: str, users: int, url: str) -> dict:
    """Sign everyone in over HTTP and write one line per wrk thread (see write_mix.lua)."""
    import requests
    from sqlalchemy import create_engine, text

    n_sales = max(1, round(users * 0.5))
    n_disp = max(1, round(users * 0.2))
    n_cust = max(1, users - n_sales - n_disp)
    engine = create_engine(url)
    with engine.connect() as conn:
        sites = {}
        for cid, owner, lat, lng in conn.execute(text(
                "SELECT c.id, e.code, c.site_lat, c.site_lng FROM customer c JOIN employee e ON e.id = c.owner_id "
                "WHERE e.code LIKE 'WMsales%' ORDER BY c.id")):
            sites.setdefault(owner, []).append(f"{cid},{lat:.6f},{lng:.6f}")
        engineers = [r[0] for r in conn.execute(text("SELECT id FROM employee WHERE code LIKE 'WMengineer%' ORDER BY id"))]
    engine.dispose()

    def token(username):
        r = requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": PASSWORD}, timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]

    lines = []
    for i in range(n_sales):
        lines.append(f"sales\t{token(f'wm.sales{i % SALES:02d}')}\t{';'.join(sites[f'WMsales{i % SALES:02d}'][:500])}")
    per_customer = max(1, FOLLOWERS // 200)  # 10 WeChat users per customer thread, taking turns
    for i in range(n_cust):
        sessions = []
        for j in range(per_customer):
            s = requests.Session()
            r = s.get(f"{base}/h5/dev-login?openid=oWmCust{i * per_customer + j:05d}&next=/h5/service", timeout=30)
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)
            sessions.append(f"{s.cookies['session']}|{csrf}")
        lines.append("customer\t" + ";".join(sessions))
    for i in range(n_disp):
        lines.append(f"dispatch\t{token(f'wm.dispatch{i % DISPATCHERS:02d}')}\t{i}\t{n_disp}\t{','.join(map(str, engineers))}\t10")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return {"sales": n_sales, "customers": n_cust, "dispatchers": n_disp}


# --- the stack -------------------------------------------------------------------------------
def base_env(db_url: str, redis_url: str | None, api_base: str, spool: str | None = None) -> dict:
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "bench", "WECHAT_APPID": APPID, "WECHAT_TOKEN": TOKEN,
           "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": api_base, "WXCRM_LOG_LEVEL": "WARNING",
           "WXCRM_SPOOL_DIR": spool or tempfile.mkdtemp(prefix="wxcrm-wm-spool-"), "PYTHONPATH": ROOT}
    for name in ("REDIS_URL", "WECHAT_AES_KEY", "WXCRM_DB_POOL_SIZE", "WXCRM_DB_MAX_OVERFLOW", "WEB_CONCURRENCY"):
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def parse_config(spec: str) -> dict:
    m = re.fullmatch(r"(sync|gthread)-(\d+)(?:x(\d+))?(?:/pool(\d+))?/rq(\d+)", spec)
    if not m:
        raise SystemExit(f"bad configuration {spec!r}: e.g. sync-2/rq1 or gthread-2x8/pool8/rq2")
    cls, workers, threads, pool, rq = m.groups()
    return {"spec": spec, "class": cls, "workers": int(workers), "threads": int(threads or 1),
            "pool": int(pool) if pool else None, "rq": int(rq)}


def gunicorn(port: int, env: dict, workers: int, worker_class: str = "sync", threads: int = 1) -> subprocess.Popen:
    args = [os.path.join(BIN, "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "--timeout", "60"]
    if worker_class == "gthread":
        args += ["--worker-class", "gthread", "--threads", str(threads)]
    proc = subprocess.Popen(args + ["wxapp:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # degraded (no worker heartbeat yet) is still up
        except Exception:
            time.sleep(0.2)
    time.sleep(2)  # one worker answered; the others import the app on their own
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Backlog:
    """RQ jobs still to run and outbox rows not yet delivered."""

    def __init__(self, db_url: str, redis_url: str):
        import redis as redis_lib
        from rq import Queue
        from sqlalchemy import create_engine

        self.queue = Queue("wxcrm", connection=redis_lib.Redis.from_url(redis_url))
        self.engine = create_engine(db_url, pool_size=1)

    def now(self) -> tuple[int, int, int]:
        """(queued + running jobs, due scheduled jobs, outbox rows pending or sending)."""
        from sqlalchemy import text

        q = self.queue
        due = q.connection.zcount(q.scheduled_job_registry.key, 0, time.time())
        with self.engine.connect() as conn:
            outbox = conn.execute(text("SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending')")).scalar()
        return len(q) + q.started_job_registry.count, due, outbox

    def outbox_by_status(self) -> dict:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return dict(conn.execute(text("SELECT status, count(*) FROM outbox_message GROUP BY status")).all())

    def wait_empty(self, timeout: float) -> float | None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            jobs, due, outbox = self.now()
            if jobs + due + outbox == 0:
                return time.monotonic() - t0
            time.sleep(0.25)
        return None

    def close(self):
        self.engine.dispose()


def wrk(users: int, seconds: int, users_path: str, port: int, salt: int, out: str) -> tuple[dict, dict]:
    env = {**os.environ, "WXCRM_BENCH_USERS": users_path, "WXCRM_BENCH_OUT": out, "WXCRM_BENCH_SALT": str(salt)}
    subprocess.run(["wrk", f"-t{users}", f"-c{users}", f"-d{seconds}s", "--timeout", "30s", "-s", LUA,
                    f"http://127.0.0.1:{port}"], env=env, check=True, capture_output=True, text=True)
    kinds: dict[str, dict] = {}
    summary = {}
    for line in open(out):
        f = line.rstrip("\n").split("\t")
        if f[0] == "#summary":
            summary = dict(zip(("duration_us", "requests", "connect", "read", "write", "status", "timeout"), map(int, f[1:])))
            continue
        k = kinds.setdefault(f[0], {"ms": [], "errors": {}})
        k["ms"].append(float(f[2]))
        if int(f[1]) >= 400:
            key = f"{f[1]} {f[3]}".strip()
            k["errors"][key] = k["errors"].get(key, 0) + 1
    return kinds, summary


CPU_GROUPS = ("web", "rq workers", "sandbox", "postgres", "redis", "wrk")


def cpu_seconds(web_port: int, wx_port: int, redis_port: int, postmaster: int) -> dict:
    """CPU time so far (user + system, with reaped children: RQ's work horses) per process group
    of this run, and the machine's busy time (every process, other users' too) under "machine"."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if "gunicorn" in cmd:
            group = "web" if f":{web_port} " in cmd else "sandbox" if f":{wx_port} " in cmd else None
        elif cmd.startswith(os.path.join(BIN, "python")) and f"{BIN}/wxcrm worker" in cmd:
            group = "rq workers"
        elif int(pid) == postmaster or int(stat[1]) == postmaster:
            group = "postgres"
        else:
            group = "redis" if f"redis-server 127.0.0.1:{redis_port}" in cmd else "wrk" if cmd.startswith("wrk ") else None
        if group:
            out[group] += sum(int(x) for x in stat[11:15]) / tick  # utime stime cutime cstime
    fields = open("/proc/stat").readline().split()[1:]
    total = sum(int(x) for x in fields[:8])
    out["machine"] = (total - int(fields[3]) - int(fields[4])) / tick  # all but idle and iowait
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))] if xs else float("nan")


def run_one(cfg: dict, args, pg_admin: str, pg_pidfile: str, template: str, redis_url: str, n: int,
            profile_dir: str | None = None) -> dict:
    """One round of one configuration on a fresh copy of the database."""
    import redis as redis_lib
    from sqlalchemy import create_engine, text

    db_name = f"wm_round_{n}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))
        conn.execute(text(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"'))
    admin.dispose()
    db_url = pg_admin.rsplit("/", 1)[0] + "/" + db_name
    redis_lib.Redis.from_url(redis_url).flushall()
    from tests.services import free_port

    web_port, wx_port = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="wxcrm-wm-")
    env = base_env(db_url, redis_url, f"http://127.0.0.1:{wx_port}/sandbox/wechat/", os.path.join(tmp, "spool"))
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{web_port}"
    web_env = dict(env)
    if cfg["pool"]:
        web_env["WXCRM_DB_POOL_SIZE"], web_env["WXCRM_DB_MAX_OVERFLOW"] = str(cfg["pool"]), "2"
    procs = []
    backlog = Backlog(db_url, redis_url)
    try:
        sandbox = gunicorn(wx_port, {**env, "WXCRM_SPOOL_DIR": os.path.join(tmp, "spool-sandbox")}, 2, "gthread", 8)
        procs.append(sandbox)
        workers = [subprocess.Popen([os.path.join(BIN, "wxcrm"), "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(cfg["rq"])]
        procs += workers
        web = gunicorn(web_port, web_env, cfg["workers"], cfg["class"], cfg["threads"])
        procs.append(web)
        conn = redis_lib.Redis.from_url(redis_url)
        deadline = time.time() + 60
        while len(conn.smembers("rq:workers")) < cfg["rq"] and time.time() < deadline:
            time.sleep(0.2)
        base = f"http://127.0.0.1:{web_port}"
        users_path = os.path.join(tmp, "users.tsv")
        mix = users_file(users_path, base, args.users, db_url)
        # warm-up (every worker imports its modules and fills its pool), then let the queue settle
        wrk(args.users, 3, users_path, web_port, 1, os.path.join(tmp, "warm.tsv"))
        backlog.wait_empty(120)
        spies = []
        if profile_dir:
            targets = [("web", int(p)) for p in _children(web.pid)] + [("rq", w.pid) for w in workers]
            for role, pid in targets:
                out = os.path.join(profile_dir, f"{role}-{pid}.txt")
                spies.append((role, out, subprocess.Popen(
                    [os.path.join(BIN, "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--gil", "--format", "raw",
                     "--rate", "100", "--duration", str(args.seconds), "--output", out, "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        peak = {"jobs": 0, "outbox": 0}
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.wait(1.0):
                try:
                    jobs, due, outbox = backlog.now()
                    peak["jobs"], peak["outbox"] = max(peak["jobs"], jobs + due), max(peak["outbox"], outbox)
                except Exception:
                    pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        postmaster = int(open(pg_pidfile).readline() or 0)
        ports = (web_port, wx_port, int(redis_url.rsplit(":", 1)[1].split("/")[0]), postmaster)
        cpu0 = cpu_seconds(*ports)
        kinds, summary = wrk(args.users, args.seconds, users_path, web_port, 2, os.path.join(tmp, "run.tsv"))
        stopped = time.monotonic()
        cpu1 = cpu_seconds(*ports)
        stop_sampling.set()
        sampler.join()
        at_stop = backlog.now()
        drained = backlog.wait_empty(args.drain_timeout)
        drain_s = (time.monotonic() - stopped) if drained is not None else None
        for _, _, spy in spies:
            spy.wait(60)
        seconds = summary["duration_us"] / 1e6
        all_ms = [x for k in kinds.values() for x in k["ms"]]
        result = {"config": cfg["spec"], "mix": mix, "seconds": seconds, "rps": len(all_ms) / seconds,
                  "p50": pct(all_ms, 50), "p99": pct(all_ms, 99), "kinds": {}, "socket_errors": summary,
                  "errors": sum(sum(k["errors"].values()) for k in kinds.values()),
                  "at_stop": at_stop, "peak": peak, "drain_s": drain_s, "outbox": backlog.outbox_by_status(),
                  "drain_timeout": args.drain_timeout, "left": backlog.now(),
                  "profiles": [(r, o) for r, o, _ in spies],
                  "cpu": {g: (cpu1[g] - cpu0[g]) / seconds for g in cpu0}}  # cores busy on average
        for name, k in kinds.items():
            result["kinds"][name] = {"n": len(k["ms"]), "rps": len(k["ms"]) / seconds, "p50": pct(k["ms"], 50),
                                     "p99": pct(k["ms"], 99), "errors": k["errors"]}
        return result
    finally:
        backlog.close()
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def _children(pid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return out.split()


def report_round(r: dict, k: int) -> None:
    sock = r["socket_errors"]
    sockets = sum(sock[x] for x in ("connect", "read", "write", "timeout"))
    drain = f"{r['drain_s']:.1f} s" if r["drain_s"] is not None else f"NOT DRAINED in {r['drain_timeout']:.0f} s ({r['left']} left)"
    print(f"  round {k}: {r['config']:<24} {r['rps']:6.1f} req/s  p50 {r['p50']:6.1f}  p99 {r['p99']:7.1f} ms  "
          f"errors {r['errors']} (+{sockets} socket)  backlog at stop {r['at_stop'][0] + r['at_stop'][1]} jobs / "
          f"{r['at_stop'][2]} outbox (peak {r['peak']['jobs']} / {r['peak']['outbox']})  drained in {drain}  "
          f"outbox {r['outbox']}", flush=True)
    print("      cores busy during the load: " + ", ".join(f"{g} {r['cpu'][g]:.2f}" for g in (*CPU_GROUPS, "machine"))
          + f" (of {os.cpu_count()}); web CPU per request {1000 * r['cpu']['web'] / r['rps']:.1f} ms")
    for name in KINDS:
        if name in r["kinds"]:
            x = r["kinds"][name]
            errs = ", ".join(f"{c}×{s}" for s, c in sorted(x["errors"].items())) or "0"
            print(f"      {name:<28}{x['n']:>7}{x['rps']:>8.1f}/s  p50 {x['p50']:7.1f}  p99 {x['p99']:7.1f} ms  errors {errs}")


def summarise(results: dict[str, list[dict]], target_rps: float) -> None:
    print(f"\nmedians over rounds (target: >= {target_rps:.0f} req/s, p99 < 200 ms, drained <= 10 s)")
    head = f"{'configuration':<26}{'rounds':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'peak jobs':>10}{'drain s':>9}"
    print(head + "   per kind: req/s, p50 / p99 ms")
    for spec, rounds in results.items():
        med = lambda key: statistics.median(r[key] for r in rounds)  # noqa: E731
        drains = [r["drain_s"] if r["drain_s"] is not None else float("inf") for r in rounds]
        drain = statistics.median(drains)
        print(f"{spec:<26}{len(rounds):>7}{med('rps'):>8.1f}{med('p50'):>8.1f}{med('p99'):>8.1f}"
              f"{sum(r['errors'] for r in rounds):>8}{statistics.median(r['peak']['jobs'] for r in rounds):>10.0f}"
              f"{drain:>9.1f}")
        for name in KINDS:
            xs = [r["kinds"][name] for r in rounds if name in r["kinds"]]
            if xs:
                print(f"{'':<8}{name:<28}{statistics.median(x['rps'] for x in xs):>7.1f}/s  "
                      f"{statistics.median(x['p50'] for x in xs):7.1f} / {statistics.median(x['p99'] for x in xs):7.1f}")


def print_profiles(runs: list[tuple[str, str]], top: int = 20) -> None:
    """py-spy raw output (``--gil``: samples of the thread holding the GIL, i.e. Python on CPU),
    one "frames count" line per distinct stack. Printed per process kind: the share of samples
    per view or job, the product functions by inclusive share, and the leaf functions by own share."""
    product = re.compile(r"\((?:wxapp|crm_core|materials)/")
    entry = {"web": "Flask.dispatch_request (flask/app.py", "rq": "execute (crm_core/jobs.py"}
    for role in ("web", "rq"):
        own, incl, views, views_below, total = {}, {}, {}, {}, 0
        for r, path in runs:
            if r != role or not os.path.exists(path):
                continue
            for line in open(path):
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                n, frames = int(count), [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
                total += n
                own[frames[-1]] = own.get(frames[-1], 0) + n
                for f in {f for f in frames if product.search(f)}:
                    incl[f] = incl.get(f, 0) + n
                at = max((i for i, f in enumerate(frames) if f.startswith(entry[role])), default=None)
                if at is None:
                    view = ("(request hooks: auth, CSRF, idempotency, session)" if role == "web" and
                            any(f.startswith("Flask.full_dispatch_request") for f in frames) else
                            "(server / worker loop: HTTP parsing, fork, Redis)")
                else:  # the endpoint or job: the first frame below the entry that is not a wrapper
                    view = next((f for f in frames[at + 1:] if "<locals>" not in f),
                                "(view wrapper: validation, commit, enqueue)")
                views[view] = views.get(view, 0) + n
                if at is not None and view in frames:  # the product functions it calls
                    below = views_below.setdefault(view, {})
                    for f in {f for f in frames[frames.index(view) + 1:] if product.search(f) and "<locals>" not in f}:
                        below[f] = below.get(f, 0) + n
        if not total:
            continue
        print(f"\nprofile, {role} processes: {total} on-CPU samples")
        print("  per endpoint / job (share of all samples), and what it spends most in:")
        for f, n in sorted(views.items(), key=lambda x: -x[1])[:12]:
            print(f"    {100 * n / total:5.1f}%  {f}")
            for g, m in sorted(views_below.get(f, {}).items(), key=lambda x: -x[1])[:6]:
                print(f"             {100 * m / total:5.1f}%  {g}")
        for title, table in (("product functions, inclusive", incl), ("leaf functions, own time", own)):
            print(f"  {title}:")
            for f, n in sorted(table.items(), key=lambda x: -x[1])[:top]:
                print(f"    {100 * n / total:5.1f}%  {f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per configuration (medians)")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated (default {DEFAULT_CONFIGS})")
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--profile", metavar="CONFIG", help="one more run of CONFIG under py-spy")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # kill <pid>: the servers are still stopped
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    configs = [parse_config(s.strip()) for s in args.configs.split(",") if s.strip()]
    print(f"machine: {machine()}  commit: {git_rev()}  load: {os.getloadavg()[0]:.1f}")
    print(f"{args.users} users for {args.seconds} s per round, {args.rounds} rounds, configurations alternate", flush=True)
    sys.path.insert(0, ROOT)
    from tests.services import PostgresServer, RedisServer

    pg, redis = PostgresServer(), RedisServer()
    pg.url = redis.url = None
    pg_url, redis_url = pg.start(), redis.start()
    results: dict[str, list[dict]] = {c["spec"]: [] for c in configs}
    try:
        from tests.services import new_database

        pidfile = os.path.join(pg.dir, "data", "postmaster.pid") if pg.dir else "/dev/null"
        template = "wm_template"
        build(new_database(pg_url, template))
        n = 0
        for k in range(1, args.rounds + 1):
            for cfg in (configs if k % 2 else list(reversed(configs))):
                n += 1
                r = run_one(cfg, args, pg_url, pidfile, template, redis_url, n)
                results[cfg["spec"]].append(r)
                report_round(r, k)
        summarise(results, 200)
        if args.profile:
            prof_dir = tempfile.mkdtemp(prefix="wxcrm-wm-prof-")
            r = run_one(parse_config(args.profile), args, pg_url, pidfile, template, redis_url, n + 1, prof_dir)
            print(f"\nprofiled run ({args.profile}; py-spy costs a little throughput):")
            report_round(r, 0)
            print_profiles(r["profiles"])
    finally:
        pg.stop()
        redis.stop()


if __name__ == "__main__":
    main()
