"""The job facade: after-commit enqueueing, rollback safety, delayed and periodic jobs,
in embedded mode and on real Redis with RQ."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_core import jobs
from crm_core.clock import travel, utcnow
from crm_core.db import db
from crm_core.jobs import ScheduledJob
from tests.conftest import _make_app
from tests.jobs_fixtures import CALLS, flaky, record_call


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()


def test_job_runs_only_after_commit(app):
    jobs.enqueue(record_call, 1)
    assert CALLS == []  # not before the transaction commits
    db.session.commit()
    assert CALLS == [("call", 1)]


def test_job_enqueued_in_rolled_back_transaction_never_runs(app):
    jobs.enqueue(record_call, 2)
    db.session.rollback()
    db.session.commit()  # a later commit does not resurrect it
    assert CALLS == []


def test_unregistered_function_is_refused(app):
    with pytest.raises(ValueError):
        jobs.enqueue(print, 1)


def test_delayed_job_in_embedded_mode_is_a_row_in_the_same_transaction(app):
    jobs.enqueue(record_call, 3, delay=timedelta(minutes=10))
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(ScheduledJob.id))) == 0
    jobs.enqueue(record_call, 4, delay=600)
    db.session.commit()
    assert jobs.run_due() == 0 and CALLS == []
    with travel(timedelta(minutes=11)):
        assert jobs.run_due() == 1
    assert CALLS == [("call", 4)]
    assert db.session.scalars(db.select(ScheduledJob)).one().status == "done"


def test_delayed_job_retries_with_backoff(app):
    jobs.enqueue(flaky, "x", delay=1)
    db.session.commit()
    with travel(timedelta(seconds=2)):
        jobs.run_due()
    row = db.session.scalars(db.select(ScheduledJob)).one()
    assert row.status == "scheduled" and "first attempt fails" in row.last_error
    with travel(timedelta(seconds=2 + jobs.RETRY_INTERVALS[0] + 1)):
        jobs.run_due()
    row = db.session.scalars(db.select(ScheduledJob)).one()
    assert row.status == "done" and row.attempts == 2


def test_periodic_job_runs_once_per_slot_however_many_ticks(app):
    now = utcnow()
    jobs.tick_periodic(now)
    jobs.tick_periodic(now)  # a second process ticking in the same slot
    assert CALLS.count(("periodic", None)) == 1
    jobs.tick_periodic(now + timedelta(seconds=301))
    assert CALLS.count(("periodic", None)) == 2


def test_embedded_background_thread_runs_after_response(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", JOBS_EAGER=False)
    with app.app_context():
        db.create_all()
        jobs.enqueue(record_call, 5)
        db.session.commit()
        jobs.wait_idle()
        jobs.backend().stop()
    assert CALLS == [("call", 5)]


# --- Redis + RQ --------------------------------------------------------------------------
@pytest.fixture
def rq_app(tmp_path, redis_url):
    app = _make_app(f"sqlite:///{tmp_path}/t.db", REDIS_URL=redis_url)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()


def _work(app):
    from rq import SimpleWorker

    conn = app.extensions["wxcrm_redis"]
    SimpleWorker(["wxcrm"], connection=conn).work(burst=True)


@pytest.mark.services
def test_rq_job_is_enqueued_after_commit_and_run_by_a_worker(rq_app):
    backend = jobs.backend()
    jobs.enqueue(record_call, 6)
    assert backend.depth() == 0
    db.session.commit()
    assert len(backend.queue) == 1
    _work(rq_app)
    assert CALLS == [("call", 6)]


@pytest.mark.services
def test_rq_jobs_of_one_commit_go_in_one_round_trip_and_all_run_with_their_retries(rq_app):
    from redis.client import Pipeline

    backend = jobs.backend()
    trips = []
    real = Pipeline.execute

    def counting(self, *args, **kwargs):
        trips.append(len(self.command_stack))
        return real(self, *args, **kwargs)

    for n in (1, 2, 3):
        jobs.enqueue(record_call, n)
    Pipeline.execute = counting
    try:
        db.session.commit()
    finally:
        Pipeline.execute = real
    assert len(backend.queue) == 3
    assert len(trips) == 1, trips  # one pipeline for the three, not one per job
    assert all(j.retries_left == len(jobs.RETRY_INTERVALS) for j in backend.queue.jobs)
    _work(rq_app)
    assert sorted(CALLS) == [("call", 1), ("call", 2), ("call", 3)]


@pytest.mark.services
def test_rq_rolled_back_job_never_reaches_redis(rq_app):
    jobs.enqueue(record_call, 7)
    db.session.rollback()
    db.session.commit()
    assert len(jobs.backend().queue) == 0


@pytest.mark.services
def test_rq_failed_job_is_retried_with_backoff(rq_app):
    from rq.job import Job

    jobs.enqueue(flaky, "r")
    db.session.commit()
    job_id = jobs.backend().queue.job_ids[0]
    _work(rq_app)
    job = Job.fetch(job_id, connection=rq_app.extensions["wxcrm_redis"])
    assert job.retries_left == len(jobs.RETRY_INTERVALS) - 1
    assert job.get_status() == "scheduled"  # waits RETRY_INTERVALS[0] seconds in RQ's scheduler


@pytest.mark.services
def test_rq_delayed_job_goes_to_the_scheduler(rq_app):
    jobs.enqueue(record_call, 8, delay=3600)
    db.session.commit()
    backend = jobs.backend()
    assert len(backend.queue) == 0
    assert backend.queue.scheduled_job_registry.count == 1
    assert backend.depth() == 1


def test_job_enqueued_inside_a_savepoint_waits_for_the_outer_commit(app):
    with db.session.begin_nested():
        jobs.enqueue(record_call, 9)
    assert CALLS == []  # releasing the savepoint is not the commit
    db.session.commit()
    assert CALLS == [("call", 9)]
