"""Helpers shared by the benchmark scripts (run by hand, never by the test suite)."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {cpu}{mem}"


def timed(fn, repeat: int = 50, warmup: int = 5) -> list[float]:
    """Milliseconds per call, after warm-up."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def median(xs):
    return statistics.median(xs)


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:
        return "?"


LEVELS = [1, 3, 9, 27, 81, 379]  # 500 employees in six reporting levels


def build_hierarchy(levels=LEVELS):
    """An organisation with one employee per position in a reporting tree ``levels`` deep.
    Returns ``(org, employee ids in level order, {employee id: department id})``."""
    from crm_core.db import db
    from crm_core.org.models import Employee, EmployeePosition, Position
    from crm_core.org.organization import ensure_builtin_roles, get_or_create_organization, upsert_department

    ensure_builtin_roles()
    org = get_or_create_organization("bench", "基准测试公司")
    root = upsert_department(org, "D0", "总部")
    depts = [upsert_department(org, f"D{i}", f"事业部{i}", root, "sales") for i in range(1, 4)]
    db.session.commit()
    positions, pos_dept, emp_ids, emp_dept, n = [], {}, [], {}, 0
    for level, count in enumerate(levels):
        row = []
        for i in range(count):
            parent = positions[level - 1][i % len(positions[level - 1])] if level else None
            dept = root.id if level == 0 else (depts[i % 3].id if level == 1 else pos_dept[parent])
            p = Position(org_id=org.id, department_id=dept, reports_to_id=parent, code=f"P{n}", name=f"岗位{n}")
            db.session.add(p)
            db.session.flush()
            e = Employee(org_id=org.id, code=f"E{n}", name=f"职员{n}")
            db.session.add(e)
            db.session.flush()
            db.session.add(EmployeePosition(employee_id=e.id, position_id=p.id, primary=True))
            pos_dept[p.id], emp_dept[e.id] = dept, dept
            emp_ids.append(e.id)
            row.append(p.id)
            n += 1
        positions.append(row)
    db.session.commit()
    return org, emp_ids, emp_dept


def run_on_postgresql(run) -> None:
    """Call ``run(url)`` on ``BENCH_DATABASE_URL`` or a throwaway PostgreSQL started like the
    tests' (Debian's binaries); say so and skip when neither is available."""
    pg, server = os.environ.get("BENCH_DATABASE_URL"), None
    if not pg:
        try:
            from tests.services import PostgresServer

            server = PostgresServer()
            server.url = None
            pg = server.start()
        except BaseException as exc:  # pytest.skip raises BaseException subclasses
            print(f"\n[PostgreSQL] skipped: {exc}")
            return
    try:
        run(pg)
    finally:
        if server:
            server.stop()
