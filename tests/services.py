"""Start throwaway PostgreSQL and Redis servers on free loopback ports for the tests.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point at servers that already run (CI may start
Debian's cluster instead). Without binaries the service-backed tests skip with the reason,
unless ``REQUIRE_SERVICES=1`` (CI), where a skip becomes a failure.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def unavailable(reason: str):
    if require_services():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class RedisServer:
    def __init__(self):
        self.proc = None
        self.url = os.environ.get("TEST_REDIS_URL")

    def start(self) -> str:
        if self.url:
            return self.url
        binary = shutil.which("redis-server")
        if not binary:
            unavailable("redis-server is not installed (apt-get install redis-server)")
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wxcrm-redis-")
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(port):
            self.stop()
            unavailable("redis-server did not start")
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    def __init__(self):
        self.url = os.environ.get("TEST_DATABASE_URL")
        self.dir = None
        self.bindir = None

    def _as_postgres(self) -> list[str]:
        # PostgreSQL refuses to run as root; CI runs as root
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> str:
        if self.url:
            return self.url
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = candidates[-1] if candidates else shutil.which("initdb")
        if not initdb:
            unavailable("PostgreSQL server binaries are not installed (apt-get install postgresql)")
        self.bindir = os.path.dirname(initdb)
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wxcrm-pg-")
        data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir, 0o700)
        run = self._as_postgres()
        subprocess.run(run + [initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.options = (f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run(run + [os.path.join(self.bindir, "pg_ctl"), "-D", data, "-l", os.path.join(self.dir, "log"), "-w",
                              "-o", self.options, "start"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(port):
            unavailable("PostgreSQL did not start")
        subprocess.run(run + [os.path.join(self.bindir, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                              "wxcrm_test"], check=True)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/wxcrm_test"
        return self.url

    def stop(self):
        if self.dir and self.bindir:
            subprocess.run(self._as_postgres() + [os.path.join(self.bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                                                  "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(self.dir, ignore_errors=True)


class OwnRedis:
    """A Redis of a test's own that it may stop and start again on the same port (the session's
    shared one must never be stopped)."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if not binary:
            unavailable("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.port, self.dir, self.proc = binary, free_port(), tempfile.mkdtemp(prefix="wxcrm-own-redis-"), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        assert _wait_port(self.port), "redis did not start"

    def stop(self, sig: int = 15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def destroy(self):
        self.stop(9)
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnPostgres(PostgresServer):
    """A PostgreSQL cluster of a test's own (``TEST_DATABASE_URL`` is ignored), which it may
    stop (``fast`` or ``immediate``) and start again on the same port."""

    def __init__(self):
        super().__init__()
        self.url = None

    def start(self) -> str:
        if self.url is None:
            self.url = super().start()
            self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
            return self.url
        subprocess.run(self._as_postgres() + [os.path.join(self.bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                                              "-l", os.path.join(self.dir, "log"), "-w", "-o", self.options, "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _wait_port(self.port), "PostgreSQL did not start again"
        return self.url

    def halt(self, mode: str = "fast") -> None:
        subprocess.run(self._as_postgres() + [os.path.join(self.bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                                              "-m", mode, "-w", "stop"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def new_database(admin_url: str, name: str) -> str:
    """Create a fresh database next to ``admin_url`` and return its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name
