"""Web worker memory after warm-up (target: under 150 MB RSS).

Starts gunicorn with one sync worker serving ``wxapp:create_app()`` on a SQLite database
with the demo loaded, sends a bounded warm-up over loopback (token, me, customer lists,
org chart, OpenAPI, healthz, console pages), then reads the worker's VmRSS from /proc.
Three rounds; the median is the figure.

    .venv/bin/python bench/rss.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import git_rev, machine, median

ROOT = os.path.join(os.path.dirname(__file__), "..")
BIN = os.path.dirname(sys.executable)


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def one_round(port: int, db_url: str) -> float:
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "bench", "WXCRM_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([os.path.join(BIN, "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
                             "wxapp:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                request(base + "/healthz")
                break
            except Exception:
                time.sleep(0.1)
        token = json.loads(request(base + "/api/v1/auth/token", {"username": "admin", "password": "demo123456"}))["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        for _ in range(200):  # bounded warm-up
            for path in ("/api/v1/me", "/api/v1/customers", "/api/v1/org/chart", "/api/v1/employees", "/api/v1/roles"):
                request(base + path, headers=h)
            request(base + "/healthz")
            request(base + "/console/login")
        request(base + "/api/v1/openapi.json")
        worker = children(proc.pid)[0]
        return rss_kb(worker) / 1024
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    tmp = tempfile.mkdtemp(prefix="wxcrm-bench-")
    db_url = f"sqlite:///{tmp}/bench.db"
    env = {**os.environ, "DATABASE_URL": db_url}
    subprocess.run([os.path.join(BIN, "wxcrm"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([os.path.join(BIN, "wxcrm"), "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    figures = [one_round(18500 + i, db_url) for i in range(3)]
    print(f"machine: {machine()}  commit: {git_rev()}")
    print(f"web worker RSS after warm-up (MB): runs={[round(x, 1) for x in figures]} median={median(figures):.1f} target<150")


if __name__ == "__main__":
    main()
