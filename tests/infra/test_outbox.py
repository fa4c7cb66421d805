"""Outbox: written with the change, delivered by a job, retried with backoff, never twice."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from crm_core import jobs, outbox
from crm_core.clock import travel
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from tests.factories import make_team


class FlakyChannel:
    """Fails ``failures`` times, then delivers; counts real sends."""

    def __init__(self, failures: int = 0, retryable: bool = True, delay: float = 0.0):
        self.failures, self.retryable, self.delay = failures, retryable, delay
        self.sent: list[int] = []
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, message):
        import time

        with self.lock:
            self.calls += 1
            fail = self.calls <= self.failures
        if self.delay:
            time.sleep(self.delay)
        if fail:
            raise outbox.ChannelError("45047: 客服消息超过48小时窗口", retryable=self.retryable)
        with self.lock:
            self.sent.append(message.id)
        return outbox.Delivery(provider_message_id=f"msg-{message.id}")


@pytest.fixture
def channel():
    ch = FlakyChannel()
    outbox.register_channel("test", ch)
    yield ch
    outbox._channels.pop("test", None)


def _msg(mid):
    db.session.expire_all()
    return db.session.get(OutboxMessage, mid)


def test_message_is_written_with_the_change_and_lost_with_its_rollback(any_app, channel):
    users = make_team()
    db.session.commit()
    db.session.add(Customer(org_id=users["rep1"].org_id, owner_id=users["rep1"].employee_id, name="回滚客户"))
    outbox.queue_message("test", "openid-1", {"text": "您好"})
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0
    assert channel.sent == []


def test_failing_channel_retries_with_backoff_then_sends_exactly_once(any_app, channel):
    channel.failures = 2
    mid = outbox.queue_message("test", "openid-1", {"text": "工单已派工"}).id
    db.session.commit()  # eager jobs: first attempt runs now and fails
    m = _msg(mid)
    assert (m.status, m.attempts) == ("pending", 1)
    assert "45047" in m.last_error
    first_wait = outbox.backoff(1)
    with travel(timedelta(seconds=first_wait - 5)):
        jobs.run_due()
    assert _msg(mid).attempts == 1  # not due yet
    with travel(timedelta(seconds=first_wait + 1)):
        jobs.run_due()
    assert (_msg(mid).status, _msg(mid).attempts) == ("pending", 2)
    with travel(timedelta(seconds=first_wait + outbox.backoff(2) + 2)):
        jobs.run_due()
        jobs.run_due()
    m = _msg(mid)
    assert (m.status, m.attempts, m.last_error) == ("sent", 3, None)
    assert m.provider_message_id == f"msg-{mid}"
    assert channel.sent == [mid]
    # anything that delivers the same message again sends nothing
    assert outbox.deliver(mid) == "sent"
    outbox.sweep()
    assert channel.sent == [mid]


def test_non_retryable_failure_stops_and_records_the_error(any_app, channel):
    channel.failures, channel.retryable = 99, False
    mid = outbox.queue_message("test", "openid-2", {"text": "x"}).id
    db.session.commit()
    m = _msg(mid)
    assert (m.status, m.attempts) == ("failed", 1)
    assert "45047" in m.last_error


def test_gives_up_after_max_attempts(any_app, channel):
    channel.failures = 99
    mid = outbox.queue_message("test", "openid-3", {"text": "x"}, max_attempts=2).id
    db.session.commit()
    with travel(timedelta(hours=2)):
        jobs.run_due()
    m = _msg(mid)
    assert (m.status, m.attempts) == ("failed", 2)
    assert len(channel.sent) == 0


def test_concurrent_deliveries_send_once(any_app, channel):
    """Two workers (or a retry racing the sweeper) deliver the same row at once."""
    channel.delay = 0.2
    outbox_app = any_app
    msg = outbox.OutboxMessage  # noqa: F841
    from crm_core.clock import utcnow

    row = OutboxMessage(channel="test", recipient="openid-4", payload={}, status="pending", attempts=0, max_attempts=3,
                        created_at=utcnow(), next_attempt_at=utcnow())
    db.session.add(row)
    db.session.commit()
    mid = row.id
    results = []

    def worker():
        with outbox_app.app_context():
            results.append(jobs.execute(jobs.job_name(outbox.deliver), [mid]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert channel.sent == [mid]
    assert sorted(results).count("sent") >= 1
    assert _msg(mid).attempts == 1


def test_dedupe_key_queues_one_message_per_business_event(any_app, channel):
    a = outbox.queue_message("test", "openid-5", {"text": "派工通知"}, dedupe_key="dispatch:1:engineer:2")
    b = outbox.queue_message("test", "openid-5", {"text": "派工通知"}, dedupe_key="dispatch:1:engineer:2")
    db.session.commit()
    assert a.id == b.id
    assert channel.sent == [a.id]


def test_sweeper_recovers_a_message_whose_job_was_lost(any_app, channel):
    from crm_core.clock import utcnow

    row = OutboxMessage(channel="test", recipient="openid-6", payload={}, status="pending", attempts=0, max_attempts=3,
                        created_at=utcnow(), next_attempt_at=utcnow())
    db.session.add(row)  # written without a job, as when Redis was down at commit
    db.session.commit()
    with travel(timedelta(minutes=2)):
        outbox.sweep()
    assert channel.sent == [row.id]


def test_row_stuck_in_sending_is_failed_not_resent(any_app, channel):
    from crm_core.clock import utcnow

    row = OutboxMessage(channel="test", recipient="openid-7", payload={}, status="sending", attempts=1, max_attempts=3,
                        created_at=utcnow(), next_attempt_at=utcnow(), claimed_at=utcnow())
    db.session.add(row)
    db.session.commit()
    with travel(timedelta(minutes=11)):
        outbox.sweep()
    m = _msg(row.id)
    assert m.status == "failed" and "人工确认" in m.last_error
    assert channel.sent == []


def test_outbox_api_lists_and_retries(any_app, channel, client, auth_headers):
    users = make_team()
    channel.failures, channel.retryable = 1, False
    mid = outbox.queue_message("test", "openid-8", {"text": "x"}, org_id=users["admin"].org_id).id
    db.session.commit()
    h = auth_headers(users["admin"])
    listed = client.get("/api/v1/outbox?status=failed", headers=h).get_json()
    assert listed["total"] == 1 and listed["items"][0]["last_error"].startswith("ChannelError")
    resp = client.post(f"/api/v1/outbox/{mid}/retry", headers=h)
    assert resp.status_code == 200
    assert _msg(mid).status == "sent"
    assert client.post(f"/api/v1/outbox/{mid}/retry", headers=h).status_code == 409
    assert client.get("/api/v1/outbox", headers=auth_headers(users["rep1"])).status_code == 403
