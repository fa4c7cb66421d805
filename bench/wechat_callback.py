"""Callback throughput: the product's full path (dedup, store, route, reply) against a bare
Flask + wechatpy reference, in the same run.

gunicorn with 2 sync workers per server; wrk with 2 threads and 16 connections; every request
an AES-mode text message with its own MsgId (pre-encrypted with wechatpy's WeChatCrypto).
Runs the product on embedded SQLite and with Redis (+ PostgreSQL), then checks that exactly one
row was stored per unique message answered. Targets: ≥ 0.8× the reference's throughput,
p99 < 50 ms, no loss, no doubles.

    .venv/bin/python bench/wechat_callback.py [--seconds 10] [--messages 60000] [--rounds 3]

Reference and product alternate (``--rounds`` each, per mode) and the medians are reported:
these machines are noisy, and a single pair of runs can differ by 10 % either way.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import git_rev, machine

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = os.path.dirname(sys.executable)
TOKEN, APPID = "benchtoken", "wxbenchappid00001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def make_requests(path: str, n: int, first_id: int = 0) -> None:
    sys.path.insert(0, ROOT)
    from wxapp.official_account.simulate import message_xml, signed_request

    ts = int(time.time())
    with open(path, "w") as fh:
        for i in range(n):
            xml = message_xml("text", f"oBench{i % 500:05d}", content=f"压测消息 {i}", msg_id=9_000_000_000 + first_id + i,
                              create_time=ts)
            q, body = signed_request(xml, TOKEN, aes_key=AES_KEY, appid=APPID, timestamp=ts, nonce=f"n{i}")
            fh.write(q + "\t" + body.decode() + "\n")


def serve(app_spec: str, port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([os.path.join(BIN, "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
                             "--log-level", "warning", app_spec], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # the reference has no /healthz: 404 means it is up
        except Exception:
            time.sleep(0.1)
    time.sleep(3)  # one worker answered; each imports the app on its own, so let the other finish too
    return proc


def wrk(port: int, seconds: int, requests_file: str) -> dict:
    env = {**os.environ, "WXCRM_BENCH_REQUESTS": requests_file, "WXCRM_BENCH_THREADS": "2"}
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(ROOT, "bench", "wechat_requests.lua"), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, env=env).stdout

    def ms(label):
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else (v * 1000 if unit == "s" else v)

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "requests": total, "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def stored_rows(db_url: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT dedup_key) FROM inbound_message")).one()
    engine.dispose()
    return rows[0], rows[1]


def product_env(db_url: str, redis_url: str | None, spool_dir: str) -> dict:
    env = {**os.environ, "DATABASE_URL": db_url, "WXCRM_SPOOL_DIR": spool_dir, "SECRET_KEY": "bench", "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID,
           "WECHAT_AES_KEY": AES_KEY, "WECHAT_SECRET": "s", "WECHAT_API_BASE": "http://127.0.0.1:9/", "WXCRM_LOG_LEVEL": "WARNING",
           "WECHAT_TIMESTAMP_TOLERANCE": "0", "WXCRM_JOBS_TICKER": "0"}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--messages", type=int, default=60000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating reference/product rounds per mode (median)")
    ap.add_argument("--only", choices=("sqlite", "redis"), default=None, help="run one mode only")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    tmp = tempfile.mkdtemp(prefix="wxcrm-wxbench-")
    print(f"machine: {machine()}  commit: {git_rev()}")
    ref_env = {**os.environ, "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID, "WECHAT_AES_KEY": AES_KEY,
               "PYTHONPATH": os.path.join(ROOT, "bench")}
    counter = iter(range(10_000))

    def run_reference():
        req = os.path.join(tmp, f"req-{next(counter)}.txt")
        make_requests(req, args.messages)
        proc = serve("wechat_reference_app:app", 18601, ref_env)
        try:
            return wrk(18601, args.seconds, req)
        finally:
            proc.terminate()
            proc.wait(10)

    def run_product(db_url, redis_url=None):
        n = next(counter)
        req = os.path.join(tmp, f"req-{n}.txt")
        make_requests(req, args.messages, first_id=n * args.messages)  # new MsgIds every round
        env = product_env(db_url, redis_url, os.path.join(tmp, f"spool-{n}"))
        subprocess.run([os.path.join(BIN, "wxcrm"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        before = stored_rows(db_url)
        # Redis mode: a worker runs alongside, as in production (jobs, the spool's periodic takeover);
        # it is started and settled first, so its start-up does not compete with the measured run
        worker = None
        if redis_url:
            import redis as redis_lib

            worker = subprocess.Popen([os.path.join(BIN, "wxcrm"), "worker"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            conn = redis_lib.Redis.from_url(redis_url)
            deadline = time.time() + 60
            while not conn.smembers("rq:workers") and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1)
        proc = serve("wxapp:create_app()", 18602, env)
        try:
            r = wrk(18602, args.seconds, req)
        finally:
            proc.terminate()  # a graceful stop: each worker writes what its spool still holds
            proc.wait(30)
            if worker:
                worker.terminate()
                worker.wait(10)
        r["left_in_spool"] = sum(1 for n in os.listdir(env["WXCRM_SPOOL_DIR"]) if n.endswith(".jsonl")) \
            if os.path.isdir(env["WXCRM_SPOOL_DIR"]) else 0
        after = stored_rows(db_url)
        r["stored"], r["distinct"] = after[0] - before[0], after[1] - before[1]
        return r

    modes = [("embedded SQLite", lambda: (f"sqlite:///{tmp}/wx.db", None))] if args.only != "redis" else []
    pg = redis = None
    try:
        if args.only == "sqlite":
            raise RuntimeError("--only sqlite")
        sys.path.insert(0, ROOT)
        from tests.services import PostgresServer, RedisServer

        pg, redis = PostgresServer(), RedisServer()
        pg.url = redis.url = None
        urls = (pg.start(), redis.start())
        modes.append(("Redis + PostgreSQL", lambda: urls))
    except BaseException as exc:  # services missing: report the embedded figures only
        print(f"Redis/PostgreSQL run skipped: {exc}")
    summary = []
    try:
        for mode, urls_for in modes:
            db_url, redis_url = urls_for()
            rounds = []
            for k in range(args.rounds):
                ref, prod = run_reference(), run_product(db_url, redis_url)
                rounds.append((ref, prod))
                ok = prod["stored"] == prod["distinct"] >= prod["requests"] - prod["non2xx"] and not prod["left_in_spool"]
                print(f"{mode} round {k + 1}: reference {ref['rps']:.0f} req/s (p99 {ref['p99']:.1f} ms), product "
                      f"{prod['rps']:.0f} req/s (p50 {prod['p50']:.1f}, p99 {prod['p99']:.1f} ms) = "
                      f"{prod['rps'] / ref['rps']:.2f}x; answered {prod['requests']}, stored {prod['stored']}, "
                      f"distinct {prod['distinct']}, spool files left {prod['left_in_spool']}: "
                      f"{'one row per message, none lost' if ok else 'ROWS DO NOT MATCH'}", flush=True)
            ratios = [p["rps"] / f["rps"] for f, p in rounds]
            summary.append((mode, statistics.median(f["rps"] for f, _ in rounds), statistics.median(p["rps"] for _, p in rounds),
                            statistics.median(ratios), min(ratios), max(ratios),
                            statistics.median(p["p99"] for _, p in rounds),
                            all(p["stored"] == p["distinct"] >= p["requests"] - p["non2xx"] and not p["left_in_spool"]
                                for _, p in rounds)))
    finally:
        if pg:
            pg.stop()
        if redis:
            redis.stop()
    print(f"\n{'mode':<22}{'reference':>11}{'product':>9}{'ratio':>7}{'range':>13}{'p99 ms':>8}  rows")
    for mode, ref, prod, ratio, lo, hi, p99, ok in summary:
        print(f"{mode:<22}{ref:>11.0f}{prod:>9.0f}{ratio:>7.2f}{f'{lo:.2f}-{hi:.2f}':>13}{p99:>8.1f}  "
              f"{'one per message, none lost' if ok else 'MISMATCH'}   (target >= 0.8x, p99 < 50 ms)")


if __name__ == "__main__":
    main()
