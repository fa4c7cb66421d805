"""Fault drill (#20): nothing lost, nothing doubled, nothing stuck when Redis, PostgreSQL,
WeChat or our own processes misbehave.

For each fault it starts the scale-out stack afresh — PostgreSQL and Redis of its own,
gunicorn (2 workers) serving the product, one ``wxcrm worker``, and the WeChat sandbox as a
separate process on its own SQLite database (so "WeChat" stays up whatever the product's
dependencies do) — and then:

1. sends ``--messages`` WeChat callbacks, encrypted (safe mode), of six kinds: text answered by
   default, the 报修 keyword, follow with and without a QR scene, the 在线报修 menu tap and
   LOCATION. Each is delivered three times as WeChat retries: one after another, all three at
   once, or the second while the first is still in flight;
2. runs self-service notice flows alongside: a dispatcher takes tickets for bound customers
   and dispatches them to an engineer (notices to the customer and the engineer);
3. injects one fault a quarter of the way in: ``worker_kill`` (kill -9 of the RQ worker,
   restarted 10 s later), ``web_kill`` (kill -9 of a gunicorn worker, three times),
   ``redis_stop`` / ``redis_kill`` (SIGTERM / SIGKILL, back after 15 s, its data gone),
   ``pg_restart`` (fast stop, start), ``wechat`` (the sandbox answers 40001, 42001, -1 and
   45047 and stalls 7 s), ``spool_full`` (the callback spool's disk fills for 15 s; needs tmpfs);
4. settles — with ``--fast-settle`` it runs ``wxcrm jobs-recover`` instead of waiting for the
   sweepers' slots — and counts:

- **lost**: messages answered (HTTP 200 to at least one delivery) with no stored row;
- **differing**: messages whose answered deliveries got different replies;
- **doubled**: notices WeChat received twice (same recipient, same content);
- **stuck**: outbox rows still pending or sending, callbacks still held or processing (a notice
  whose call stalled past 5 s is *failed* "是否已送达未知", not resent: at most once, listed for
  staff in the outbox; the drill reports those rows);
- **worker**: whether the worker process is alive and beating after the settle.

A run exits 1 when any of those is not zero (or the worker is dead). The short form
(``tests/drill``) runs three faults with 120 messages inside ``make test``.

    .venv/bin/python bench/fault_drill.py [--messages 5000] [--faults all] [--fast-settle]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
BIN = os.path.dirname(sys.executable)

APPID, SECRET, TOKEN = "wxdrillappid00001", "drill-secret", "drilltoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
FAULTS = ("worker_kill", "web_kill", "redis_stop", "redis_kill", "pg_restart", "wechat", "spool_full")
KINDS = ("text", "keyword", "follow", "follow_scene", "click", "location")
NOTICE_CUSTOMERS = 8


def _port() -> int:
    from tests.services import free_port

    return free_port()


def _wait_http(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


class Stack:
    """The scale-out stack of one run, with the means to hurt it."""

    def __init__(self, work: str, *, web_workers: int = 2, small_spool: bool = False):
        from tests.services import OwnPostgres, OwnRedis

        self.work, self.web_workers = work, web_workers
        self.pg, self.redis = OwnPostgres(), OwnRedis()
        self.spool_dir = os.path.join(work, "spool")
        os.makedirs(self.spool_dir)
        self.mounted = False
        if small_spool:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.spool_dir], capture_output=True)
            self.mounted = r.returncode == 0
        self.procs: dict[str, subprocess.Popen] = {}
        self.web_port, self.sandbox_port = _port(), _port()
        self.logs = {}

    # --- start and stop ------------------------------------------------------------------
    def _env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL")}
        env.update({"WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET, "WECHAT_TOKEN": TOKEN, "WECHAT_AES_KEY": AES_KEY,
                    "SECRET_KEY": "drill", "WXCRM_ENV": "development", "WXCRM_LOG_LEVEL": "WARNING",
                    "WECHAT_TIMESTAMP_TOLERANCE": "0", "PYTHONPATH": ROOT})
        env.update(extra)
        return env

    def product_env(self) -> dict:
        return self._env(DATABASE_URL=self.pg.url, REDIS_URL=self.redis.url, WXCRM_SPOOL_DIR=self.spool_dir,
                         WECHAT_API_BASE=f"http://127.0.0.1:{self.sandbox_port}/sandbox/wechat/",
                         PUBLIC_BASE_URL=f"http://127.0.0.1:{self.web_port}")

    def _log(self, name: str):
        fh = open(os.path.join(self.work, f"{name}.log"), "ab")
        self.logs[name] = fh
        return fh

    def _gunicorn(self, name: str, port: int, env: dict, workers: int, threads: int = 1) -> subprocess.Popen:
        args = [os.path.join(BIN, "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning", "--graceful-timeout", "5"]
        if threads > 1:
            args += ["--worker-class", "gthread", "--threads", str(threads)]
        proc = subprocess.Popen(args + ["wxapp:create_app()"], cwd=self.work, env=env, stdout=self._log(name),
                                stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        self.pg.start()
        self.redis.start()
        sandbox_db = f"sqlite:///{self.work}/sandbox.db"
        sandbox_env = self._env(DATABASE_URL=sandbox_db, WXCRM_SPOOL_DIR=os.path.join(self.work, "sandbox-spool"),
                                WECHAT_API_BASE="http://127.0.0.1:9/", PUBLIC_BASE_URL=f"http://127.0.0.1:{self.sandbox_port}",
                                WXCRM_JOBS_TICKER="0")
        for env in (sandbox_env, self.product_env()):
            subprocess.run([os.path.join(BIN, "wxcrm"), "db", "upgrade"], cwd=self.work, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._gunicorn("sandbox", self.sandbox_port, sandbox_env, 1, threads=16)
        self.seed()
        _wait_http(f"http://127.0.0.1:{self.sandbox_port}/healthz")
        self.introduce(["oNOTICEENG"] + [f"oNOTICE{i:04d}" for i in range(NOTICE_CUSTOMERS)])
        self._gunicorn("web", self.web_port, self.product_env(), self.web_workers)
        self.start_worker()
        _wait_http(f"http://127.0.0.1:{self.sandbox_port}/healthz")
        _wait_http(f"http://127.0.0.1:{self.web_port}/healthz")
        time.sleep(2)  # the second web worker imports the app on its own

    def seed(self) -> None:
        """The demo organisation, and customers' and the engineer's WeChat bound (so notices go out)."""
        code = (
            "from crm_core.db import db\n"
            "from crm_core.demo import load_demo\n"
            "from wxapp import create_app\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    load_demo(); db.session.commit()\n"
            "    from drill_seed import seed; seed()\n"
        )
        with open(os.path.join(self.work, "drill_seed.py"), "w") as fh:
            fh.write(SEED)
        subprocess.run([sys.executable, "-c", code], cwd=self.work, env={**self.product_env(), "WXCRM_JOBS_TICKER": "0",
                                                                         "PYTHONPATH": f"{ROOT}:{self.work}"},
                       check=True)

    def introduce(self, openids: list[str]) -> None:
        """WeChat knows who follows the account: the sandbox learns it from the follows it saw."""
        import requests

        from wxapp.official_account.simulate import message_xml

        for openid in openids:
            requests.post(f"http://127.0.0.1:{self.sandbox_port}/sandbox/saw", data=message_xml("follow", openid).encode(),
                          headers={"Content-Type": "text/xml"}, timeout=5).raise_for_status()

    def start_worker(self) -> None:
        proc = subprocess.Popen([os.path.join(BIN, "wxcrm"), "worker"], cwd=self.work, env=self.product_env(),
                                stdout=self._log("worker"), stderr=subprocess.STDOUT)
        self.procs["worker"] = proc

    def stop(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.destroy()
        self.pg.stop()
        if self.mounted:
            subprocess.run(["umount", "-l", self.spool_dir], capture_output=True)
        for fh in self.logs.values():
            fh.close()

    # --- faults --------------------------------------------------------------------------
    def web_worker_pids(self) -> list[int]:
        master = self.procs["web"].pid
        out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def sandbox_inject(self, api: str, errcode: int = 0, times: int = 1, delay: float = 0) -> None:
        import requests

        requests.post(f"http://127.0.0.1:{self.sandbox_port}/sandbox/inject",
                      json={"api": api, "errcode": errcode, "times": times, "delay": delay}, timeout=5)

    def fault(self, name: str, log) -> None:
        if name == "worker_kill":
            self.procs["worker"].kill()
            log("worker killed (-9)")
            time.sleep(10)
            self.start_worker()
            log("worker started again")
        elif name == "web_kill":
            for i in range(3):
                pids = self.web_worker_pids()
                if pids:
                    os.kill(random.choice(pids), signal.SIGKILL)
                    log(f"web worker killed (-9), {i + 1} of 3")
                time.sleep(4)
        elif name in ("redis_stop", "redis_kill"):
            self.redis.stop(signal.SIGTERM if name == "redis_stop" else signal.SIGKILL)
            log("redis stopped")
            time.sleep(15)
            self.redis.start()
            log("redis started again (empty)")
        elif name == "pg_restart":
            self.pg.halt("fast")
            log("postgresql stopped (fast)")
            time.sleep(2)
            self.pg.start()
            log("postgresql started again")
        elif name == "wechat":
            for api in ("template_send", "custom_send"):
                self.sandbox_inject(api, 40001, times=2)  # the token went bad: refresh, call again
                self.sandbox_inject(api, 42001, times=2)  # the token expired
                self.sandbox_inject(api, -1, times=2)  # 系统繁忙: retry later
                self.sandbox_inject(api, 0, times=4, delay=7)  # stalls past our 5 s: outcome unknown
            self.sandbox_inject("custom_send", 45047, times=3)  # the reply quota is used up: the template goes
            log("wechat: 40001, 42001, -1, 45047 and 7 s stalls injected")
        elif name == "spool_full":
            if not self.mounted:
                log("spool_full skipped: tmpfs cannot be mounted here")
                return
            filler = os.path.join(self.spool_dir, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=1000"], capture_output=True)
            log("spool disk full")
            time.sleep(15)
            os.unlink(filler)
            log("spool disk has room again")
        else:
            raise ValueError(name)


SEED = '''
from crm_core.clock import utcnow
from crm_core.customers.models import Contact
from crm_core.db import db
from crm_core.org.models import Employee
from crm_core.wechat.models import Follower

APPID = "%s"


def seed():
    contacts = db.session.scalars(db.select(Contact).where(Contact.phone.is_not(None)).order_by(Contact.id).limit(%d)).all()
    for i, c in enumerate(contacts):
        db.session.add(Follower(appid=APPID, openid=f"oNOTICE{i:04d}", org_id=c.org_id, subscribed=True, subscribed_at=utcnow(),
                                contact_id=c.id, customer_id=c.customer_id, bound_at=utcnow(), profile_fetched_at=utcnow()))
    eng = db.session.scalars(db.select(Employee).where(Employee.name == "郑强")).one()
    db.session.add(Follower(appid=APPID, openid="oNOTICEENG", org_id=eng.org_id, subscribed=True, subscribed_at=utcnow(),
                            employee_id=eng.id, staff_bound_at=utcnow(), profile_fetched_at=utcnow()))
    db.session.commit()
''' % (APPID, NOTICE_CUSTOMERS)


# --- traffic ----------------------------------------------------------------------------------
class Traffic:
    def __init__(self, stack: Stack, n: int, seed: int = 7):
        from wechatpy import parse_message

        from wxapp.official_account.callback import dedup_key
        from wxapp.official_account.simulate import message_xml

        self.stack, self.n = stack, n
        self.rng = random.Random(seed)
        base = int(time.time()) - n
        self.messages = []
        for i in range(n):
            openid = f"oDRILL{i % 400:05d}"
            kind = KINDS[i % len(KINDS)]
            ct = base + i
            if kind == "text":
                xml = message_xml("text", openid, content=f"你好 {i}", msg_id=8_000_000_000 + i, create_time=ct)
            elif kind == "keyword":
                xml = message_xml("text", openid, content="报修", msg_id=8_000_000_000 + i, create_time=ct)
            elif kind == "follow":
                xml = message_xml("follow", openid, create_time=ct)
            elif kind == "follow_scene":
                xml = message_xml("follow", openid, scene=f"drill{i}", create_time=ct)
            elif kind == "click":
                xml = message_xml("click", openid, key="MENU_REPAIR", create_time=ct)
            else:
                xml = message_xml("location_event", openid, lat=30.27, lng=120.15, create_time=ct)
            self.messages.append({"i": i, "kind": kind, "xml": xml, "key": dedup_key(parse_message(xml)),
                                  "pattern": ("sequential", "concurrent", "inflight")[i % 3], "answers": [], "errors": []})
        self.local = threading.local()

    def _session(self):
        import requests

        s = getattr(self.local, "s", None)
        if s is None:
            s = self.local.s = requests.Session()
        return s

    def _deliver(self, m: dict) -> None:
        import requests

        from wxapp.official_account.simulate import read_reply, signed_request

        query, body = signed_request(m["xml"], TOKEN, aes_key=AES_KEY, appid=APPID, timestamp=int(time.time()))
        try:
            r = self._session().post(f"http://127.0.0.1:{self.stack.web_port}/wechat/callback?{query}", data=body,
                                     headers={"Content-Type": "text/xml"}, timeout=5.5)
        except requests.RequestException as exc:  # no answer: WeChat would retry
            m["errors"].append(type(exc).__name__)
            return
        if r.status_code != 200:
            m["errors"].append(str(r.status_code))
            return
        m["answers"].append(read_reply(r.content, TOKEN, AES_KEY, APPID) or "success")

    def _tell_sandbox(self, m: dict) -> None:
        try:
            self._session().post(f"http://127.0.0.1:{self.stack.sandbox_port}/sandbox/saw", data=m["xml"].encode(),
                                 headers={"Content-Type": "text/xml"}, timeout=5)
        except Exception:
            pass

    def send(self, m: dict) -> None:
        wait = self.t0 + m["i"] / self.rate - time.monotonic()  # paced over the run's duration
        if wait > 0:
            time.sleep(wait)
        self._tell_sandbox(m)  # WeChat knows what its user did (quotas for later replies)
        if m["pattern"] == "sequential":
            for _ in range(3):
                self._deliver(m)
        elif m["pattern"] == "concurrent":
            ts = [threading.Thread(target=self._deliver, args=(m,)) for _ in range(3)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        else:
            first = threading.Thread(target=self._deliver, args=(m,))
            first.start()
            time.sleep(0.03)
            self._deliver(m)
            first.join()
            self._deliver(m)

    def run(self, duration: float, threads: int = 16) -> None:
        self.rate, self.t0 = self.n / duration, time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self.send, self.messages))


class NoticeFlows(threading.Thread):
    """A dispatcher taking tickets for bound customers and dispatching them to the engineer."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack, self.stop_flag = stack, threading.Event()
        self.created, self.dispatched, self.errors, self.last_error = [], [], Counter(), None

    def run(self) -> None:
        import requests

        base = f"http://127.0.0.1:{self.stack.web_port}/api/v1"
        s = requests.Session()
        headers = None
        while not self.stop_flag.is_set():
            try:
                if headers is None:
                    r = s.post(f"{base}/auth/token", json={"username": "service.dispatcher", "password": "demo123456"}, timeout=10)
                    r.raise_for_status()
                    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                    targets = s.get(f"{base}/wechat/followers", params={"per_page": 100}, headers=headers, timeout=10).json()["items"]
                    targets = [f for f in targets if f["openid"].startswith("oNOTICE") and f.get("customer_id")]
                    engineer = s.get(f"{base}/tickets/suggested-engineer", headers=headers, timeout=10).json()["suggested"] or {}
                f = targets[len(self.created) % len(targets)]
                r = s.post(f"{base}/tickets", headers={**headers, "Idempotency-Key": f"drill-{time.time_ns()}"},
                           json={"customer_id": f["customer_id"], "contact_id": f["contact_id"], "kind": "consultation",
                                 "description": f"演练报修 {len(self.created)}"}, timeout=10)
                if r.status_code != 201:
                    self.errors[f"create {r.status_code}"] += 1
                    self.last_error = r.text[:300]
                    time.sleep(0.5)
                    continue
                tid = r.json()["id"]
                self.created.append(tid)
                r = s.post(f"{base}/tickets/{tid}/dispatch", headers={**headers, "Idempotency-Key": f"drill-d-{tid}"},
                           json={"engineer_ids": [engineer["id"]] if engineer.get("id") else [], "auto": not engineer.get("id")},
                           timeout=10)
                if r.status_code == 201:
                    self.dispatched.append(tid)
                else:
                    self.errors[f"dispatch {r.status_code}"] += 1
            except Exception as exc:  # the fault of the run: note it and go on
                self.errors[type(exc).__name__] += 1
                time.sleep(0.5)
            time.sleep(0.3)


# --- counting ---------------------------------------------------------------------------------
def _pg(stack: Stack, sql: str, params: dict | None = None) -> list:
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.pg.url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params or {}).all()
    finally:
        engine.dispose()


def settle(stack: Stack, seconds: float, fast: bool, log) -> float:
    """Wait until nothing is left to do (or ``seconds`` pass). Returns the seconds it took."""
    import redis as redis_lib

    t0 = time.monotonic()
    if fast:
        time.sleep(3)  # the spools' flushers write what they hold; jobs in flight finish
        subprocess.run([os.path.join(BIN, "wxcrm"), "jobs-recover"], cwd=stack.work, env=stack.product_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    conn = redis_lib.Redis.from_url(stack.redis.url)
    while time.monotonic() - t0 < seconds:
        try:
            busy = _pg(stack, "SELECT (SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending'))"
                              " + (SELECT count(*) FROM inbound_message WHERE outcome IN ('held', 'processing'))")[0][0]
            queued = conn.llen("rq:queue:wxcrm")
            spooled = sum(1 for n in os.listdir(stack.spool_dir) if n.endswith(".jsonl") and "rejected" not in n)
        except Exception:
            busy = queued = spooled = 1
        if not busy and not queued and not spooled and _worker_beating(stack):
            break
        time.sleep(1)
        if fast and time.monotonic() - t0 > 20 and busy:
            subprocess.run([os.path.join(BIN, "wxcrm"), "jobs-recover"], cwd=stack.work, env=stack.product_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.monotonic() - t0


def _worker_beating(stack: Stack) -> bool:
    import requests

    try:
        health = requests.get(f"http://127.0.0.1:{stack.web_port}/healthz", timeout=5).json()
    except Exception:
        return False
    return stack.procs["worker"].poll() is None and bool((health.get("worker") or {}).get("ok"))


def count(stack: Stack, traffic: Traffic, flows: NoticeFlows) -> dict:
    stored = {k for (k,) in _pg(stack, "SELECT dedup_key FROM inbound_message WHERE dedup_key IS NOT NULL")}
    answered = [m for m in traffic.messages if m["answers"]]
    lost = [m for m in answered if m["key"] not in stored]
    differing = [m for m in answered if len(set(m["answers"])) > 1]
    stuck_outbox = _pg(stack, "SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending')")[0][0]
    stuck_inbound = _pg(stack, "SELECT count(*) FROM inbound_message WHERE outcome IN ('held', 'processing')")[0][0]
    statuses = dict(_pg(stack, "SELECT status, count(*) FROM outbox_message WHERE channel LIKE 'wechat%%' OR channel = 'staff'"
                               " GROUP BY status"))
    with sqlite3.connect(os.path.join(stack.work, "sandbox.db")) as sb:
        sent = sb.execute("SELECT openid, payload FROM sandbox_record WHERE api IN ('custom_send', 'template_send')"
                          " AND errcode = 0 AND openid LIKE 'oNOTICE%'").fetchall()
    seen = Counter()
    for openid, payload in sent:
        p = json.loads(payload)
        p.pop("msgid", None)
        seen[(openid, json.dumps(p, sort_keys=True, ensure_ascii=False))] += 1
    doubled = sum(n - 1 for n in seen.values() if n > 1)
    worker_alive = _worker_beating(stack)
    by_kind = defaultdict(lambda: [0, 0])
    for m in traffic.messages:
        by_kind[m["kind"]][0] += 1
        by_kind[m["kind"]][1] += 1 if m["answers"] else 0
    return {"messages": len(traffic.messages), "answered": len(answered), "lost": len(lost), "differing": len(differing),
            "unanswered_deliveries": sum(len(m["errors"]) for m in traffic.messages),
            "tickets": len(flows.created), "dispatched": len(flows.dispatched), "flow_errors": dict(flows.errors), "flow_last_error": flows.last_error,
            "failed_outbox": [tuple(r) for r in _pg(stack, "SELECT channel, recipient, last_error FROM outbox_message"
                                                          " WHERE status = 'failed' LIMIT 5")],
            "notices_received": len(sent), "doubled": doubled, "outbox": statuses,
            "stuck_outbox": stuck_outbox, "stuck_inbound": stuck_inbound, "worker_alive": worker_alive,
            "examples": {"lost": [(m["kind"], m["key"]) for m in lost[:3]],
                         "differing": [(m["kind"], m["answers"]) for m in differing[:3]]}}


def failed(result: dict) -> bool:
    return bool(result["lost"] or result["differing"] or result["doubled"] or result["stuck_outbox"]
                or result["stuck_inbound"] or not result["worker_alive"])


def run_fault(fault: str, messages: int, *, duration: float = 60, settle_seconds: float = 180, fast_settle: bool = False,
              web_workers: int = 2, quiet: bool = False) -> dict:
    """One fault on a fresh stack: ``messages`` callbacks spread over ``duration`` seconds (or as
    fast as the stack answers), the fault a quarter of the way in; returns the counts."""
    work = tempfile.mkdtemp(prefix=f"wxcrm-drill-{fault}-")
    os.chmod(work, 0o755)
    t_start = time.monotonic()

    def log(text):
        if not quiet:
            print(f"  [{fault} {time.monotonic() - t_start:6.1f}s] {text}", flush=True)

    stack = Stack(work, web_workers=web_workers, small_spool=(fault == "spool_full"))
    try:
        stack.start()
        log("stack up")
        traffic = Traffic(stack, messages)
        flows = NoticeFlows(stack)
        flows.start()
        sender = threading.Thread(target=traffic.run, args=(duration,))
        sender.start()
        time.sleep(duration / 4)  # the fault a quarter of the way in
        stack.fault(fault, log)
        sender.join()
        time.sleep(2)
        flows.stop_flag.set()
        flows.join(timeout=30)
        log(f"traffic done: {messages} messages x3, {len(flows.created)} tickets")
        took = settle(stack, settle_seconds, fast_settle, log)
        result = count(stack, traffic, flows)
        result["settle_s"] = round(took, 1)
        result["fault"] = fault
        return result
    finally:
        stack.stop()
        if not failed_keep():
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def failed_keep() -> bool:
    return os.environ.get("WXCRM_DRILL_KEEP") == "1"


def main():
    from _common import git_rev, machine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=60, help="seconds the messages are spread over")
    ap.add_argument("--faults", default="all", help="comma-separated: " + ", ".join(FAULTS))
    ap.add_argument("--settle", type=float, default=240, help="seconds to wait for the sweepers at most")
    ap.add_argument("--fast-settle", action="store_true", help="run wxcrm jobs-recover instead of waiting for the sweepers")
    ap.add_argument("--web-workers", type=int, default=2)
    args = ap.parse_args()
    faults = FAULTS if args.faults == "all" else tuple(args.faults.split(","))
    print(f"# fault drill · {machine()} · rev {git_rev()} · {args.messages} messages x3 per fault")
    results, bad = [], False
    for fault in faults:
        r = run_fault(fault, args.messages, duration=args.duration, settle_seconds=args.settle, fast_settle=args.fast_settle,
                      web_workers=args.web_workers)
        results.append(r)
        bad |= failed(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
    print("\n| fault | answered | lost | differing | notices | doubled | stuck outbox | stuck inbound | worker | settle |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['fault']} | {r['answered']}/{r['messages']} | {r['lost']} | {r['differing']} | {r['notices_received']} | "
              f"{r['doubled']} | {r['stuck_outbox']} | {r['stuck_inbound']} | {'alive' if r['worker_alive'] else 'DEAD'} | "
              f"{r['settle_s']} s |")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
