"""Over real HTTP through gunicorn: every message the callback answered is stored exactly
once, even when every web process is killed hard before writing its spool."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.services import free_port
from tests.wechat_helpers import AES_KEY, APPID, TOKEN, message_xml
from wxapp.official_account.router import router
from wxapp.official_account.simulate import deliver

BIN = os.path.dirname(sys.executable)
pytestmark = pytest.mark.skipif(not shutil.which("gunicorn", path=BIN), reason="gunicorn is not installed")


def _serve(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([os.path.join(BIN, "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
                             "--log-level", "warning", "wxapp:create_app()"], env=env, cwd=os.getcwd(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except Exception:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("gunicorn did not start")


def _send(port: int, openid: str, msg_id: int) -> str:
    status, reply = deliver(f"http://127.0.0.1:{port}", message_xml("text", openid, content=f"消息 {msg_id}", msg_id=msg_id),
                            TOKEN, aes_key=AES_KEY, appid=APPID)
    assert status == 200
    return reply


def _rows(db_path: str) -> tuple[int, int]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT count(*), count(DISTINCT dedup_key) FROM inbound_message").fetchone()


def test_answered_messages_survive_killing_every_web_process(tmp_path):
    db_path = str(tmp_path / "wx.db")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db_path}", "SECRET_KEY": "t", "WECHAT_TOKEN": TOKEN,
           "WECHAT_APPID": APPID, "WECHAT_AES_KEY": AES_KEY, "WECHAT_SECRET": "s", "WXCRM_LOG_LEVEL": "WARNING",
           "WECHAT_API_BASE": "http://127.0.0.1:9/", "WXCRM_SPOOL_DIR": str(tmp_path / "spool"),
           "WXCRM_SPOOL_FLUSH_SECONDS": "3600", "WXCRM_JOBS_TICKER": "0"}  # nothing is written before the kill
    env.pop("REDIS_URL", None)
    subprocess.run([os.path.join(BIN, "wxcrm"), "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    proc = _serve(env, port)
    try:
        replies = [_send(port, f"oDurable{i % 7:02d}", 55_000_000 + i) for i in range(120)]
        assert replies == [router.default_text] * 120
        assert _rows(db_path) == (0, 0)  # all still in the spools
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # master and workers: no graceful stop, no exit handlers
        proc.wait(10)
    assert [n for n in os.listdir(tmp_path / "spool") if n.endswith(".jsonl")]
    # a new start takes the files over; WeChat's retry of one of them adds no row
    env["WXCRM_SPOOL_FLUSH_SECONDS"] = "0.2"
    proc = _serve(env, port)
    try:
        assert _send(port, "oDurable00", 55_000_000) == router.default_text
        assert _send(port, "oDurable99", 55_999_999) == router.default_text
        deadline = time.monotonic() + 15
        while _rows(db_path) != (121, 121) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _rows(db_path) == (121, 121)
    finally:
        proc.terminate()
        proc.wait(30)
    assert not [n for n in os.listdir(tmp_path / "spool") if n.endswith(".jsonl")]
