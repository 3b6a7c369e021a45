"""Channel deliveries against the real database: each channel sent, retried with backoff and
given up on by itself; concurrent runs claim different rows.

The module works in a schema of its own, so `deliver_due` meets only its own deliveries.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, select

from pacioli.gateways.channels import Channel, ChannelError, ChannelMessage, LogChannel, Recipient
from pacioli.ledger.storage.database import make_engine
from pacioli.payments.notification_delivery import (
    CLAIM_LEASE,
    DeliveryReport,
    NotificationDelivery,
    RetryPolicy,
    channels_from_settings,
)
from pacioli.payments.notification_messages import Draft, Kind
from pacioli.payments.notification_tables import notification_deliveries, notifications
from pacioli.payments.notifications import store
from pacioli.payments.users import users

POLICY = RetryPolicy(attempts_max=3, base_seconds=30, cap_seconds=3600)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class RecordingChannel:
    """Accepts every message and remembers it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Recipient, ChannelMessage]] = []
        self._lock = threading.Lock()

    def send(self, recipient: Recipient, message: ChannelMessage) -> None:
        with self._lock:
            self.sent.append((recipient, message))


class FlakyChannel(RecordingChannel):
    """Fails the first `failures` sends with a ChannelError, then accepts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def send(self, recipient: Recipient, message: ChannelMessage) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ChannelError(f"provider returned 503 (call {self.calls})")
        super().send(recipient, message)


@pytest.fixture(scope="module")
def engine(schema_factory) -> Iterator[Engine]:
    url = schema_factory.create()
    engine = make_engine(url, pool_size=10)
    yield engine
    engine.dispose()
    schema_factory.drop(url)


def notify(engine: Engine, kind: Kind, *, email: bool = True, phone: bool = False) -> UUID:
    """A user and one stored notification of `kind` for them; returns the notification id."""
    user_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(users.insert().values(
            id=user_id, email=f"{user_id.hex}@example.com" if email else None,
            phone=f"+1555{user_id.int % 10**7:07d}" if phone else None,
            password_hash="not-a-hash", created_at=T0,
        ))
        (notification_id,) = store(
            connection, [Draft(user_id, kind, "Title", "Body", {})],
            source_event_id=uuid.uuid4(), now=T0,
        )
    return notification_id


def delivery(engine: Engine, notification_id: UUID, channel: Channel):
    d = notification_deliveries
    with engine.connect() as connection:
        return connection.execute(select(d).where(d.c.notification_id == notification_id,
                                                  d.c.channel == channel)).one()


def drain(engine: Engine) -> None:
    """Send whatever earlier tests left due, so each test counts only its own."""
    NotificationDelivery(engine, {c: RecordingChannel() for c in Channel},
                         policy=RetryPolicy(attempts_max=1)).deliver_due(T0 + timedelta(days=365),
                                                                         limit=500)


@pytest.fixture(autouse=True)
def nothing_due(engine) -> None:
    drain(engine)


def test_a_failing_channel_is_retried_while_the_others_are_sent(engine):
    notification_id = notify(engine, Kind.TOPUP_FAILED)  # push and email
    push, email = RecordingChannel(), FlakyChannel(failures=1)
    delivery_job = NotificationDelivery(
        engine, {Channel.PUSH: push, Channel.EMAIL: email, Channel.SMS: RecordingChannel()},
        policy=POLICY,
    )

    first = delivery_job.deliver_due(T0)

    assert first == DeliveryReport(sent=1, retrying=1, failed=0)
    assert [m.notification_id for _, m in push.sent] == [notification_id]
    pending = delivery(engine, notification_id, Channel.EMAIL)
    assert pending.status == "pending" and pending.attempts == 1
    assert pending.next_attempt_at == T0 + timedelta(seconds=30)
    assert "provider returned 503" in pending.last_error

    assert delivery_job.deliver_due(T0 + timedelta(seconds=29)) == DeliveryReport()
    assert delivery_job.deliver_due(T0 + timedelta(seconds=30)) == DeliveryReport(sent=1)

    sent = delivery(engine, notification_id, Channel.EMAIL)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)
    (recipient, message), = email.sent
    assert recipient.email is not None and message.title == "Title"
    assert len(push.sent) == 1  # the push went once, whatever email did


def test_a_channel_that_keeps_failing_is_given_up_after_the_last_attempt(engine):
    notification_id = notify(engine, Kind.SETTLEMENT_PAID)  # email only
    email = FlakyChannel(failures=10)
    delivery_job = NotificationDelivery(
        engine, {Channel.PUSH: RecordingChannel(), Channel.EMAIL: email,
                 Channel.SMS: RecordingChannel()}, policy=POLICY,
    )

    reports = [delivery_job.deliver_due(T0 + timedelta(hours=hour)) for hour in range(4)]

    assert reports == [DeliveryReport(retrying=1), DeliveryReport(retrying=1),
                       DeliveryReport(failed=1), DeliveryReport()]
    failed = delivery(engine, notification_id, Channel.EMAIL)
    assert (failed.status, failed.attempts, email.calls) == ("failed", 3, 3)


def test_a_broken_adapter_fails_its_own_delivery_not_the_run(engine):
    class Broken:
        def send(self, recipient, message):
            raise RuntimeError("bug in the adapter")

    notification_id = notify(engine, Kind.NEW_PAYOUT_DESTINATION, phone=True)
    push, email = RecordingChannel(), RecordingChannel()
    delivery_job = NotificationDelivery(
        engine, {Channel.PUSH: push, Channel.EMAIL: email, Channel.SMS: Broken()}, policy=POLICY,
    )

    assert delivery_job.deliver_due(T0) == DeliveryReport(sent=2, retrying=1)
    assert "RuntimeError: bug in the adapter" in delivery(
        engine, notification_id, Channel.SMS).last_error


def test_an_address_removed_since_is_failed_at_once(engine):
    notification_id = notify(engine, Kind.LOW_BALANCE, phone=True)  # push and email
    n = notifications
    owner = select(n.c.user_id).where(n.c.id == notification_id).scalar_subquery()
    with engine.begin() as connection:
        connection.execute(users.update().where(users.c.id == owner).values(email=None))
    delivery_job = NotificationDelivery(engine, {c: RecordingChannel() for c in Channel},
                                        policy=POLICY)

    assert delivery_job.deliver_due(T0) == DeliveryReport(sent=1, failed=1)
    failed = delivery(engine, notification_id, Channel.EMAIL)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == "the user has no email address"


def test_a_claim_whose_worker_died_is_retried_after_the_lease(engine):
    notification_id = notify(engine, Kind.MONEY_RECEIVED)  # push only
    delivery_job = NotificationDelivery(engine, {c: RecordingChannel() for c in Channel},
                                        policy=POLICY)
    delivery_job._claim(T0, 10)  # a worker claims it and dies before sending

    assert delivery_job.deliver_due(T0 + CLAIM_LEASE - timedelta(seconds=1)) == DeliveryReport()
    assert delivery_job.deliver_due(T0 + CLAIM_LEASE) == DeliveryReport(sent=1)
    assert delivery(engine, notification_id, Channel.PUSH).attempts == 2


def test_concurrent_runs_send_each_delivery_once(engine):
    ids = {notify(engine, Kind.MONEY_RECEIVED) for _ in range(40)}
    push = RecordingChannel()
    delivery_job = NotificationDelivery(
        engine, {Channel.PUSH: push, Channel.EMAIL: RecordingChannel(),
                 Channel.SMS: RecordingChannel()}, policy=POLICY,
    )
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        while delivery_job.deliver_due(T0, limit=5) != DeliveryReport():
            pass

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent_ids = [message.notification_id for _, message in push.sent]
    assert sorted(sent_ids) == sorted(ids)  # each once


def test_channels_come_from_the_settings_with_log_only_defaults():
    channels = channels_from_settings()

    assert set(channels) == set(Channel)
    assert all(isinstance(channel, LogChannel) for channel in channels.values())


def test_the_worker_wiring_runs_the_consumer_and_both_jobs(engine, ledger):
    from pacioli.config import get_settings
    from pacioli.workers.wiring import notification_work

    work = notification_work(engine, ledger, get_settings())
    jobs = {job.name: job for job in work.jobs}
    notification_id = notify(engine, Kind.MONEY_RECEIVED)  # push only

    assert [consumer.name for consumer in work.consumers] == ["notifications"]
    assert jobs["notifications.deliver_due"].run(T0) == DeliveryReport(sent=1)
    assert delivery(engine, notification_id, Channel.PUSH).status == "sent"
    assert jobs["notifications.remind_due_bills"].run(T0) == 0  # no bill payments here
