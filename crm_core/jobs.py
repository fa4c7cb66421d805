"""One small facade for background work.

Jobs are plain functions taking ids, registered with :func:`job` (or :func:`periodic`).
:func:`enqueue` never runs or sends anything before the current transaction commits: the
job is held on the session and handed to the backend from SQLAlchemy's ``after_commit``
hook, and dropped on rollback (a job about a row that was never saved would fail or, worse,
act on stale data).

Backends:

* :class:`EmbeddedBackend` (no ``REDIS_URL``): a thread in this process runs jobs after
  the response; delayed jobs are rows in ``scheduled_job`` written in the same transaction,
  and a ticker thread runs them when due. Nothing to install.
* :class:`RedisBackend` (``REDIS_URL`` set): RQ on Redis with retries and exponential
  backoff; delayed jobs use RQ's scheduler (``wxcrm worker`` runs it).

Periodic jobs (reminders, sweeps) are claimed per time slot in the database
(``periodic_run`` has a unique key), so any number of processes may tick and each slot still
runs once.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_core.clock import utcnow
from crm_core.db import db


class ScheduledJob(db.Model):
    """A delayed job in embedded mode (with Redis, RQ's scheduler keeps them)."""

    __table_args__ = (Index("ix_scheduled_job_due", "status", "run_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list] = mapped_column(JSON, default=list)
    run_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled/running/done/failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class PeriodicRun(db.Model):
    """One row per periodic job and time slot: the unique key makes a tick run once
    however many processes tick at the same time."""

    __table_args__ = (UniqueConstraint("name", "slot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slot: Mapped[int]
    claimed_at: Mapped[datetime]


log = logging.getLogger("wxcrm.jobs")

_registry: dict[str, Callable[..., Any]] = {}
_BATCH_KEY = "wxcrm_batched_jobs"
_PENDING_KEY = "wxcrm_pending_jobs"
RETRY_INTERVALS = [10, 60, 300]  # seconds between RQ retries (and embedded delayed-job retries)


@dataclass
class PeriodicSpec:
    name: str
    every: int  # seconds


_periodic: dict[str, PeriodicSpec] = {}


def job_name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def job(fn: Callable) -> Callable:
    """Register a function as a job. Its arguments must be JSON-friendly (ids, strings)."""
    _registry[job_name(fn)] = fn
    return fn


def _registered(fn: Callable) -> str:
    """The job name of ``fn``, which must be registered with :func:`job`."""
    name = job_name(fn)
    if name not in _registry:
        raise ValueError(f"{name} is not a registered job; decorate it with @job")
    return name


def periodic(every: int):
    """Register a job that runs every ``every`` seconds, once per slot across processes."""

    def deco(fn: Callable) -> Callable:
        job(fn)
        _periodic[job_name(fn)] = PeriodicSpec(job_name(fn), every)
        return fn

    return deco


def registered_periodic() -> dict[str, PeriodicSpec]:
    return dict(_periodic)


# --- backends ----------------------------------------------------------------------------
class EmbeddedBackend:
    """Runs jobs in this process. ``eager`` runs them synchronously right after commit
    (used by tests so results are visible without waiting)."""

    mode = "embedded"

    def __init__(self, context_factory: Callable, eager: bool = False, workers: int = 1):
        self.context_factory = context_factory
        self.eager = eager
        self._executor = None if eager else ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wxcrm-job")
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, name: str, args: list) -> None:
        if self.eager:
            self._run(name, args)
        else:
            self._executor.submit(self._run, name, args)

    def _run(self, name: str, args: list) -> None:
        with self.context_factory():
            try:
                execute(name, list(args))
            except Exception:
                log.exception("job failed", extra={"job": name, "job_args": args})

    def schedule(self, name: str, args: list, run_at: datetime) -> None:
        # Embedded delayed jobs are rows written in the caller's transaction (see enqueue).
        raise AssertionError("embedded delayed jobs are stored by enqueue()")

    def depth(self) -> int:
        queued = self._executor._work_queue.qsize() if self._executor else 0
        due = db.session.scalar(select(func.count(ScheduledJob.id)).where(
            ScheduledJob.status == "scheduled", ScheduledJob.run_at <= utcnow()))
        return int(queued + (due or 0))

    def start_ticker(self, interval: float = 5.0) -> None:
        """Start the thread that runs due delayed jobs and periodic jobs."""
        if self._ticker is not None:
            return

        def loop():
            while not self._stop.wait(interval):
                try:
                    with self.context_factory():
                        run_due()
                        tick_periodic()
                except Exception:
                    log.exception("job ticker failed")

        self._ticker = threading.Thread(target=loop, name="wxcrm-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._executor:
            self._executor.shutdown(wait=True)


class RedisBackend:
    """RQ on Redis: retries with backoff, delayed jobs through RQ's scheduler. Results are not
    kept (``result_ttl=0``: what a job did is in the database; a finished job leaves Redis at once,
    sparing the worker RQ's result bookkeeping); failures are, for ``rq`` and the operators."""

    mode = "redis"

    def __init__(self, connection, queue_name: str = "wxcrm"):
        from rq import Queue

        self.connection = connection
        self.queue = Queue(queue_name, connection=connection)

    def _retry(self):
        from rq import Retry

        return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)

    def submit(self, name: str, args: list) -> None:
        self.queue.enqueue(execute, name, list(args), retry=self._retry(), description=name, result_ttl=0)

    def submit_many(self, jobs: list[tuple[str, list]]) -> None:
        """Several jobs in one Redis round trip (a commit that queued notices to three people)."""
        from rq import Queue

        self.queue.enqueue_many([Queue.prepare_data(execute, [name, list(args)], retry=self._retry(), description=name,
                                                    result_ttl=0) for name, args in jobs])

    def schedule(self, name: str, args: list, run_at: datetime) -> None:
        from datetime import timezone

        self.queue.enqueue_at(run_at.replace(tzinfo=timezone.utc), execute, name, list(args),
                              retry=self._retry(), description=name, result_ttl=0)

    def depth(self) -> int:
        return len(self.queue) + self.queue.scheduled_job_registry.count


_backend: EmbeddedBackend | RedisBackend | None = None


def configure(backend) -> None:
    """Install the backend (the app factory does this)."""
    global _backend
    if _backend is not None and _backend is not backend and isinstance(_backend, EmbeddedBackend):
        _backend._stop.set()
    _backend = backend


def backend():
    if _backend is None:
        raise RuntimeError("job backend not configured; call crm_core.jobs.configure() (create_app does)")
    return _backend


# --- enqueueing -------------------------------------------------------------------------
def enqueue(fn: Callable, *args: Any, delay: timedelta | int | float | None = None,
            run_at: datetime | None = None) -> None:
    """Run ``fn(*args)`` in the background once the current transaction commits.

    ``delay`` (seconds or timedelta) or ``run_at`` (naive UTC) make it a delayed job.
    Nothing happens if the transaction rolls back.
    """
    name = _registered(fn)
    if delay is not None and run_at is None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        run_at = utcnow() + timedelta(seconds=seconds)
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so a rollback before any SQL still drops the job
    if run_at is not None and isinstance(backend(), EmbeddedBackend):
        # a row in the same transaction: it commits or rolls back with the change
        session.add(ScheduledJob(name=name, args=list(args), run_at=run_at))
        return
    session.info.setdefault(_PENDING_KEY, []).append((name, list(args), run_at))


def enqueue_batched(fn: Callable, item: Any) -> None:
    """Like :func:`enqueue`, but every item a transaction adds for ``fn`` goes to one job,
    ``fn([item, ...])``, after the commit: a ticket that notifies three dispatchers is one job,
    not three (each costs the worker a dozen Redis round trips before any work)."""
    name = _registered(fn)
    session = db.session()
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_BATCH_KEY, {}).setdefault(name, []).append(item)


def submit_now(fn: Callable, *args: Any, delay: float | None = None) -> None:
    """Hand ``fn(*args)`` to the Redis backend right away, outside any transaction (for
    callers that wrote nothing to the database, e.g. the callback's Redis fast path);
    ``delay`` seconds lets work gather into one batch."""
    name = _registered(fn)
    be = backend()
    if delay and isinstance(be, RedisBackend):
        be.schedule(name, list(args), utcnow() + timedelta(seconds=delay))
    else:
        be.submit(name, list(args))


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released (SQLAlchemy fires after_commit for it too): wait for the real commit
    pending = session.info.pop(_PENDING_KEY, None) or []
    pending += [(name, [items], None) for name, items in session.info.pop(_BATCH_KEY, {}).items()]
    if not pending:
        return
    be = backend()
    now = [(name, args) for name, args, run_at in pending if run_at is None]
    if len(now) > 1 and hasattr(be, "submit_many"):
        try:
            be.submit_many(now)
        except Exception:  # e.g. Redis down: the sweepers re-find what these jobs would have done
            log.exception("could not enqueue jobs", extra={"job": ", ".join(sorted({n for n, _ in now}))})
        pending = [p for p in pending if p[2] is not None]
    for name, args, run_at in pending:
        try:
            if run_at is not None:
                be.schedule(name, args, run_at)
            else:
                be.submit(name, args)
        except Exception:  # e.g. Redis down: the outbox sweeper re-finds undelivered messages
            log.exception("could not enqueue job", extra={"job": name})


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    # soft rollback fires even when no SQL ran yet (after_rollback would not); a savepoint
    # rolling back leaves the outer transaction's jobs alone
    if previous_transaction.parent is None and not previous_transaction.nested:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_BATCH_KEY, None)


# --- running ----------------------------------------------------------------------------
_engine_pid = os.getpid()


def execute(name: str, args: list) -> Any:
    """Run one registered job in its own transaction (what the backends call)."""
    global _engine_pid
    if os.getpid() != _engine_pid:  # forked RQ work horse: never share the parent's sockets
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()
    fn = _registry.get(name)
    if fn is None:
        _import_job_module(name)
        fn = _registry[name]
    try:
        result = fn(*args)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def _import_job_module(name: str) -> None:
    import importlib

    module = name.rsplit(".", 1)[0]
    while module:
        try:
            importlib.import_module(module)
            return
        except ImportError:
            module = module.rpartition(".")[0]


def run_due(now: datetime | None = None, limit: int = 100) -> int:
    """Run delayed embedded jobs that are due. Returns how many ran."""
    now = now or utcnow()
    ids = db.session.scalars(
        select(ScheduledJob.id).where(ScheduledJob.status == "scheduled", ScheduledJob.run_at <= now)
        .order_by(ScheduledJob.run_at).limit(limit)
    ).all()
    db.session.commit()
    ran = 0
    for job_id in ids:
        claimed = db.session.execute(
            update(ScheduledJob).where(ScheduledJob.id == job_id, ScheduledJob.status == "scheduled")
            .values(status="running", attempts=ScheduledJob.attempts + 1)
        ).rowcount
        db.session.commit()
        if not claimed:
            continue  # another process took it
        row = db.session.get(ScheduledJob, job_id)
        name, args, attempts = row.name, list(row.args), row.attempts
        db.session.remove()
        try:
            execute(name, args)
            status, error, retry_at = "done", None, None
        except Exception as exc:  # retry with backoff, like RQ would
            log.exception("delayed job failed", extra={"job": name})
            error = f"{type(exc).__name__}: {exc}"
            if attempts <= len(RETRY_INTERVALS):
                status, retry_at = "scheduled", utcnow() + timedelta(seconds=RETRY_INTERVALS[attempts - 1])
            else:
                status, retry_at = "failed", None
        values = {"status": status, "last_error": error}
        if retry_at:
            values["run_at"] = retry_at
        db.session.execute(update(ScheduledJob).where(ScheduledJob.id == job_id).values(**values))
        db.session.commit()
        ran += 1
    return ran


def tick_periodic(now: datetime | None = None) -> list[str]:
    """Enqueue each periodic job whose current slot nobody has claimed yet."""
    now = now or utcnow()
    epoch = int(now.timestamp()) if now.tzinfo else int((now - datetime(1970, 1, 1)).total_seconds())
    started = []
    for spec in list(_periodic.values()):
        slot = epoch // spec.every
        try:
            db.session.add(PeriodicRun(name=spec.name, slot=slot, claimed_at=utcnow()))
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            continue
        enqueue(_registry[spec.name])
        db.session.commit()
        started.append(spec.name)
    return started


def run_worker_ticker(stop: threading.Event, context_factory: Callable, interval: float = 15.0) -> threading.Thread:
    """A thread for ``wxcrm worker``: claims periodic slots and enqueues them on RQ."""

    def loop():
        while not stop.is_set():
            try:
                with context_factory():
                    tick_periodic()
            except Exception:
                log.exception("periodic tick failed")
            stop.wait(interval)

    t = threading.Thread(target=loop, name="wxcrm-periodic", daemon=True)
    t.start()
    return t


def wait_idle(timeout: float = 5.0) -> None:
    """Wait until the embedded executor has no queued work (tests, CLI)."""
    be = backend()
    if isinstance(be, EmbeddedBackend) and be._executor is not None:
        deadline = time.monotonic() + timeout
        while be._executor._work_queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.02)
