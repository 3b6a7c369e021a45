"""Webhook delivery against a real HTTP receiver on 127.0.0.1 that verifies with the
`standardwebhooks` package: fan-out, first attempt, retries on the schedule, 410, giving
up, secret rotation, redelivery, dedupe and concurrent retry jobs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import select

from pacioli.gateways.webhooks import AttemptResult, TargetPolicy
from pacioli.ledger.domain.errors import IdempotencyKeyReused
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import Event, append_event
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import webhook_delivery as delivery
from pacioli.payments.webhook_delivery import ATTEMPTS_MAX, RETRY_DELAYS
from pacioli.payments.webhook_errors import (
    InvalidGracePeriod,
    WebhookDeliveryNotFound,
    WebhookEndpointDisabled,
)
from pacioli.payments.webhook_tables import webhook_deliveries
from pacioli.payments.webhooks import DeliveryStatus, WebhookDelivery
from tests.integration.webhook_support import (
    delivery_row,
    endpoint_row,
    key,
    make_webhooks,
    new_merchant,
    qr_payment_event,
    remove_endpoints,
)
from tests.webhook_receiver import WebhookReceiver, running_receiver


@pytest.fixture(autouse=True)
def others_deliveries_parked(engine):
    """These tests run the retry job over the whole (shared) database and count what it
    attempts, so a delivery another module left pending is first moved out of reach."""
    with engine.begin() as connection:
        connection.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.status == "pending")
            .values(next_attempt_at=datetime(9999, 1, 1, tzinfo=UTC))
        )


@pytest.fixture
def receiver():
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def webhooks(engine):
    webhooks = make_webhooks(engine)
    yield webhooks
    webhooks.close()


@pytest.fixture
def merchant_id(engine):
    merchant_id = new_merchant(engine)
    yield merchant_id
    remove_endpoints(engine, merchant_id)


def add_endpoint(webhooks, merchant_id, receiver: WebhookReceiver, path="hooks", **fields):
    issued = webhooks.register_endpoint(
        merchant_id, url=receiver.url.replace("/hooks", f"/{path}"), write_key=key(), **fields
    ).value
    receiver.secrets.append(issued.secret)
    return issued.endpoint


def only_delivery(webhooks, merchant_id, endpoint_id) -> WebhookDelivery:
    [found] = webhooks.list_deliveries(merchant_id, endpoint_id, limit=10)
    return found


def drive_to_next_attempt(webhooks, engine, delivery_id: UUID) -> datetime:
    """Run the retry job at the moment the delivery next falls due."""
    due_at = delivery_row(engine, delivery_id).next_attempt_at
    assert webhooks.deliver_due(due_at - timedelta(milliseconds=1)) == 0
    assert webhooks.deliver_due(due_at) == 1
    return due_at


def failing_events(engine, endpoint_id) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(outbox.c.event_type, outbox.c.payload).where(
                outbox.c.aggregate_type == "webhook_endpoint",
                outbox.c.aggregate_id == str(endpoint_id))
        ).all()


# Fan-out and the first attempt.


def test_an_event_reaches_each_subscribed_enabled_endpoint_signed_and_shaped(
    webhooks, merchant_id, receiver, engine
):
    every = add_endpoint(webhooks, merchant_id, receiver, path="every")
    qr_only = add_endpoint(webhooks, merchant_id, receiver, path="qr",
                           event_types=["qr_payment.succeeded"])
    settlements = add_endpoint(webhooks, merchant_id, receiver, path="settlements",
                               event_types=["settlement.paid"])
    disabled = add_endpoint(webhooks, merchant_id, receiver, path="off", enabled=False)
    event = qr_payment_event(merchant_id, 1050)

    webhooks.handle(event)
    assert webhooks.deliver_due(datetime.now(UTC)) == 2

    assert sorted(r.path for r in receiver.received) == ["/every", "/qr"]
    assert len(receiver.verified()) == 2
    for request in receiver.received:
        assert request.webhook_id == f"evt_{event.event_id.hex}"
        assert request.headers["content-type"] == "application/json"
        assert request.payload["type"] == "qr_payment.succeeded"
        assert request.payload["timestamp"] == event.created_at.isoformat()
        data = request.payload["data"]
        assert (data["amount"], data["fee"], data["net"], data["currency"]) == \
            ("10.50", "0.31", "10.19", "USD")
        assert data["payment_id"] == event.payload["payment_id"]
        assert "amount_minor" not in data
    for endpoint in (settlements, disabled):
        assert webhooks.list_deliveries(merchant_id, endpoint.id, limit=10) == []
    for endpoint in (every, qr_only):
        sent = only_delivery(webhooks, merchant_id, endpoint.id)
        assert sent.status == DeliveryStatus.SUCCEEDED and sent.attempt_count == 1
        assert sent.next_attempt_at is None and sent.last_status_code == 200
        [attempt] = sent.attempts
        assert (attempt.trigger, attempt.status_code, attempt.error) == ("scheduled", 200, None)
        assert attempt.latency_ms >= 0


def test_a_real_outbox_event_is_delivered(webhooks, merchant_id, receiver, engine):
    add_endpoint(webhooks, merchant_id, receiver)
    with engine.begin() as connection:
        event = append_event(connection, "settlement.paid", "settlement_batch", "b1", {
            "batch_id": "b1", "merchant_id": str(merchant_id), "currency": "JPY",
            "gross_minor": "5000", "fees_minor": "150", "refunds_minor": "0",
            "net_minor": "4850", "item_count": 3, "failure_code": None,
        })

    webhooks.handle(Event.from_message(event.to_message()))
    webhooks.deliver_due(datetime.now(UTC))

    [request] = receiver.verified()
    assert request.payload["type"] == "settlement.paid"
    assert request.payload["data"] == {
        "batch_id": "b1", "merchant_id": str(merchant_id), "currency": "JPY", "gross": "5000",
        "fees": "150", "refunds": "0", "net": "4850", "item_count": 3, "failure_code": None,
    }


def test_events_outside_the_catalog_or_naming_no_merchant_are_ignored(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    now = datetime.now(UTC)
    for event_type, payload in (
        ("transfer.posted", {"merchant_id": str(merchant_id)}),
        ("payout_destination.added", {"user_id": str(merchant_id), "kind": "bank_account"}),
        ("qr_payment.succeeded", {"amount_minor": "100", "currency": "USD"}),
        ("qr_payment.succeeded", {"merchant_id": "not a uuid"}),
    ):
        webhooks.handle(Event(uuid7(), event_type, "x", "1", payload, now))

    assert webhooks.list_deliveries(merchant_id, endpoint.id, limit=10) == []


def test_a_resent_event_makes_no_second_delivery(webhooks, merchant_id, receiver, engine):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    event = qr_payment_event(merchant_id)

    webhooks.handle(event)
    webhooks.handle(event)
    threads = [threading.Thread(target=webhooks.handle, args=(event,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    webhooks.deliver_due(datetime.now(UTC))

    assert len(webhooks.list_deliveries(merchant_id, endpoint.id, limit=10)) == 1
    assert len(receiver.received) == 1


def test_attempt_at_once_sends_the_first_attempt_while_handling(engine, merchant_id, receiver):
    webhooks = make_webhooks(engine, attempt_at_once=True)
    try:
        endpoint = add_endpoint(webhooks, merchant_id, receiver)
        webhooks.handle(qr_payment_event(merchant_id))
    finally:
        webhooks.close()

    assert len(receiver.verified()) == 1
    assert only_delivery(webhooks, merchant_id, endpoint.id).status == DeliveryStatus.SUCCEEDED


# Retries.


def test_failed_attempts_are_retried_on_the_schedule_with_one_webhook_id(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    receiver.answer(500, 503)
    webhooks.handle(qr_payment_event(merchant_id))
    first_at = datetime.now(UTC)
    webhooks.deliver_due(first_at)
    pending = only_delivery(webhooks, merchant_id, endpoint.id)

    assert pending.status == DeliveryStatus.PENDING and pending.last_status_code == 500
    assert first_at + RETRY_DELAYS[0] <= pending.next_attempt_at <= \
        first_at + RETRY_DELAYS[0] * 1.1
    second_at = drive_to_next_attempt(webhooks, engine, pending.id)
    after_second = delivery_row(engine, pending.id)
    assert after_second.status == "pending" and after_second.last_status_code == 503
    assert second_at + RETRY_DELAYS[1] <= after_second.next_attempt_at <= \
        second_at + RETRY_DELAYS[1] * 1.1
    drive_to_next_attempt(webhooks, engine, pending.id)

    done = webhooks.get_delivery(merchant_id, pending.id)
    assert done.status == DeliveryStatus.SUCCEEDED and done.attempt_count == 3
    assert [a.status_code for a in done.attempts] == [500, 503, 200]
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    assert len(receiver.verified()) == 3


def test_a_timeout_is_a_failed_attempt_with_its_latency(engine, merchant_id, receiver):
    webhooks = make_webhooks(engine, timeout_s=0.3)
    try:
        endpoint = add_endpoint(webhooks, merchant_id, receiver)
        receiver.delay_s = 1.0
        webhooks.handle(qr_payment_event(merchant_id))
        webhooks.deliver_due(datetime.now(UTC))
    finally:
        webhooks.close()

    [attempt] = only_delivery(webhooks, merchant_id, endpoint.id).attempts
    assert attempt.status_code is None and attempt.error == "timeout"
    assert 300 <= attempt.latency_ms < 1000


def test_a_refused_connection_is_a_failed_attempt(webhooks, merchant_id, engine):
    with running_receiver() as gone:
        url = gone.url
    endpoint = webhooks.register_endpoint(merchant_id, url=url, write_key=key()).value.endpoint
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))

    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    assert sent.status == DeliveryStatus.PENDING
    assert sent.last_error.startswith("connection_error")


def test_after_the_last_failed_attempt_the_endpoint_is_marked_failing_once(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver, path="broken")
    healthy = add_endpoint(webhooks, merchant_id, receiver, path="healthy",
                           event_types=["webhook_endpoint.failing"])
    receiver.default_status = 500
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))
    pending = only_delivery(webhooks, merchant_id, endpoint.id)
    for _ in range(ATTEMPTS_MAX - 1):
        assert endpoint_row(engine, endpoint.id).status == "active"
        drive_to_next_attempt(webhooks, engine, pending.id)

    failed = webhooks.get_delivery(merchant_id, pending.id)
    assert failed.status == DeliveryStatus.FAILED and failed.next_attempt_at is None
    assert failed.attempt_count == ATTEMPTS_MAX == len(failed.attempts)
    assert len([r for r in receiver.received if r.path == "/broken"]) == ATTEMPTS_MAX
    assert endpoint_row(engine, endpoint.id).status == "failing"
    [(event_type, payload)] = failing_events(engine, endpoint.id)
    assert event_type == "webhook_endpoint.failing"
    assert payload == {"endpoint_id": str(endpoint.id), "merchant_id": str(merchant_id),
                       "url": endpoint.url}

    # The announcement reaches the merchant's other endpoint, not the failing one.
    with engine.connect() as connection:
        row = connection.execute(select(outbox).where(
            outbox.c.aggregate_id == str(endpoint.id))).one()
    announcement = Event(row.event_id, row.event_type, row.aggregate_type, row.aggregate_id,
                         row.payload, row.created_at)
    receiver.default_status = 200
    webhooks.handle(announcement)
    webhooks.deliver_due(datetime.now(UTC) + timedelta(days=4))
    [told] = [r for r in receiver.verified() if r.path == "/healthy"]
    assert told.payload["type"] == "webhook_endpoint.failing"
    assert told.payload["data"]["endpoint_id"] == str(endpoint.id)
    assert len(webhooks.list_deliveries(merchant_id, endpoint.id, limit=10)) == 1
    assert only_delivery(webhooks, merchant_id, healthy.id).status == DeliveryStatus.SUCCEEDED

    # A later failure of an endpoint already failing announces nothing again ...
    receiver.default_status = 500
    second = qr_payment_event(merchant_id)
    webhooks.handle(second)
    later = datetime.now(UTC) + timedelta(days=5)
    for _ in range(ATTEMPTS_MAX):
        webhooks.deliver_due(later)
        later += timedelta(days=2)
    assert len(failing_events(engine, endpoint.id)) == 1
    # ... and a success heals it.
    receiver.default_status = 200
    webhooks.redeliver(merchant_id, failed.id, write_key=key())
    assert endpoint_row(engine, endpoint.id).status == "active"


def test_a_410_disables_the_endpoint_and_fails_its_other_deliveries_unsent(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    receiver.answer(500, 410)
    first, second = qr_payment_event(merchant_id), qr_payment_event(merchant_id)
    webhooks.handle(first)
    webhooks.deliver_due(datetime.now(UTC))  # 500: the first is retried later
    webhooks.handle(second)
    webhooks.deliver_due(datetime.now(UTC))  # 410

    stored = endpoint_row(engine, endpoint.id)
    assert (stored.status, stored.disabled_reason) == ("disabled", "gone")
    assert not webhooks.get_endpoint(merchant_id, endpoint.id).enabled
    gone = [d for d in webhooks.list_deliveries(merchant_id, endpoint.id, limit=10)
            if d.event_id == second.event_id][0]
    assert (gone.status, gone.last_status_code) == (DeliveryStatus.FAILED, 410)

    webhooks.deliver_due(datetime.now(UTC) + timedelta(hours=1))
    retried = [d for d in webhooks.list_deliveries(merchant_id, endpoint.id, limit=10)
               if d.event_id == first.event_id][0]
    assert retried.status == DeliveryStatus.FAILED
    assert retried.last_error == delivery.ENDPOINT_DISABLED_ERROR
    assert len(retried.attempts) == 1
    assert len(receiver.received) == 2

    webhooks.handle(qr_payment_event(merchant_id))
    assert len(webhooks.list_deliveries(merchant_id, endpoint.id, limit=10)) == 2
    assert failing_events(engine, endpoint.id) == []


# Secret rotation.


def test_during_the_grace_period_both_secrets_verify_and_after_it_only_the_new_one(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    [old_secret] = receiver.secrets
    rotated = webhooks.rotate_secret(merchant_id, endpoint.id, grace_period_s=3600,
                                     write_key=key()).value
    receiver.secrets.append(rotated.secret)
    rotated_at = datetime.now(UTC)
    assert rotated.secret != old_secret
    assert rotated_at < rotated.endpoint.previous_secret_expires_at <= \
        rotated_at + timedelta(hours=1, seconds=5)

    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(rotated_at + timedelta(minutes=59))
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(rotated_at + timedelta(hours=1, seconds=10))

    during, after = receiver.received
    assert sorted(during.verified_by) == sorted([old_secret, rotated.secret])
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_by == [rotated.secret]
    assert len(after.headers["webhook-signature"].split(" ")) == 1


def test_a_rotation_without_grace_stops_the_old_secret_at_once(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    rotated = webhooks.rotate_secret(merchant_id, endpoint.id, grace_period_s=0,
                                     write_key=key()).value
    receiver.secrets.append(rotated.secret)
    assert rotated.endpoint.previous_secret_expires_at is None

    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))

    [request] = receiver.received
    assert request.verified_by == [rotated.secret]


def test_the_grace_period_defaults_to_a_day_and_is_capped(webhooks, merchant_id, receiver):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    before = datetime.now(UTC)
    rotated = webhooks.rotate_secret(merchant_id, endpoint.id, write_key=key()).value
    assert before + timedelta(hours=24) <= rotated.endpoint.previous_secret_expires_at <= \
        datetime.now(UTC) + timedelta(hours=24)

    with pytest.raises(InvalidGracePeriod):
        webhooks.rotate_secret(merchant_id, endpoint.id, grace_period_s=8 * 24 * 3600,
                               write_key=key())
    with pytest.raises(InvalidGracePeriod):
        webhooks.rotate_secret(merchant_id, endpoint.id, grace_period_s=-1, write_key=key())


def test_a_replayed_rotation_issues_no_new_secret(webhooks, merchant_id, receiver, engine):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    write_key = key()
    first = webhooks.rotate_secret(merchant_id, endpoint.id, write_key=write_key)
    again = webhooks.rotate_secret(merchant_id, endpoint.id, write_key=write_key)

    assert not first.replayed and again.replayed
    assert again.value == first.value.endpoint
    assert endpoint_row(engine, endpoint.id).secret == first.value.secret
    with pytest.raises(IdempotencyKeyReused):
        webhooks.rotate_secret(merchant_id, endpoint.id, grace_period_s=0, write_key=write_key)


# Redelivery.


def test_a_redelivery_is_one_more_attempt_with_the_same_webhook_id(
    webhooks, merchant_id, receiver
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))
    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    write_key = key()

    redelivered = webhooks.redeliver(merchant_id, sent.id, write_key=write_key)
    replayed = webhooks.redeliver(merchant_id, sent.id, write_key=write_key)

    assert not redelivered.replayed and replayed.replayed
    first, second = receiver.verified()
    assert first.webhook_id == second.webhook_id and first.body == second.body
    assert len(receiver.received) == 2
    again = redelivered.value
    assert again.status == DeliveryStatus.SUCCEEDED and again.attempt_count == 1
    assert [(a.trigger, a.status_code) for a in again.attempts] == \
        [("scheduled", 200), ("manual", 200)]


def test_a_redelivery_that_succeeds_ends_a_failed_delivery_and_a_failing_one_leaves_it(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    receiver.answer(400)
    webhooks.handle(qr_payment_event(merchant_id))
    webhooks.deliver_due(datetime.now(UTC))
    pending = only_delivery(webhooks, merchant_id, endpoint.id)

    receiver.answer(500)
    still = webhooks.redeliver(merchant_id, pending.id, write_key=key()).value
    assert still.status == DeliveryStatus.PENDING
    assert still.next_attempt_at == pending.next_attempt_at
    assert still.last_status_code == 500

    done = webhooks.redeliver(merchant_id, pending.id, write_key=key()).value
    assert done.status == DeliveryStatus.SUCCEEDED and done.next_attempt_at is None
    assert webhooks.deliver_due(datetime.now(UTC) + timedelta(hours=1)) == 0
    assert len(receiver.received) == 3


def test_a_merchant_cannot_redeliver_or_read_another_merchants_delivery(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    webhooks.handle(qr_payment_event(merchant_id))
    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    stranger = new_merchant(engine)

    with pytest.raises(WebhookDeliveryNotFound):
        webhooks.redeliver(stranger, sent.id, write_key=key())
    with pytest.raises(WebhookDeliveryNotFound):
        webhooks.get_delivery(stranger, sent.id)
    assert receiver.received == []


def test_a_disabled_endpoint_refuses_redeliveries_and_test_events(
    webhooks, merchant_id, receiver
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    webhooks.handle(qr_payment_event(merchant_id))
    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    webhooks.update_endpoint(merchant_id, endpoint.id, enabled=False)

    with pytest.raises(WebhookEndpointDisabled):
        webhooks.redeliver(merchant_id, sent.id, write_key=key())
    with pytest.raises(WebhookEndpointDisabled):
        webhooks.send_test_event(merchant_id, endpoint.id, write_key=key())
    assert receiver.received == []


def test_a_test_event_is_sent_at_once(webhooks, merchant_id, receiver):
    endpoint = add_endpoint(webhooks, merchant_id, receiver,
                            event_types=["settlement.paid"])
    sent = webhooks.send_test_event(merchant_id, endpoint.id, write_key=key()).value

    [request] = receiver.verified()
    assert request.payload["type"] == "webhook_endpoint.test"
    assert request.payload["data"] == {"endpoint_id": str(endpoint.id),
                                       "merchant_id": str(merchant_id)}
    assert sent.status == DeliveryStatus.SUCCEEDED and request.webhook_id == sent.webhook_id


# Claims.


def test_two_concurrent_retry_jobs_never_send_one_attempt_twice(
    engine, merchant_id, receiver
):
    jobs = [make_webhooks(engine, concurrency=2), make_webhooks(engine, concurrency=2)]
    try:
        endpoint = add_endpoint(jobs[0], merchant_id, receiver)
        events = [qr_payment_event(merchant_id) for _ in range(24)]
        for event in events:
            jobs[0].handle(event)
        receiver.delay_s = 0.05
        now = datetime.now(UTC)
        start = threading.Barrier(2)
        attempted: list[int] = []

        def run(webhooks):
            start.wait()
            attempted.append(webhooks.deliver_due(now, limit=8))
            attempted.append(webhooks.deliver_due(now, limit=8))

        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for job in jobs:
            job.close()

    assert sum(attempted) == 24
    assert sorted(r.webhook_id for r in receiver.received) == \
        sorted(f"evt_{e.event_id.hex}" for e in events)
    deliveries = jobs[0].list_deliveries(merchant_id, endpoint.id, limit=50)
    assert {(d.status, d.attempt_count, len(d.attempts)) for d in deliveries} == \
        {(DeliveryStatus.SUCCEEDED, 1, 1)}


def test_a_claim_whose_worker_died_is_attempted_again_after_its_lease(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    webhooks.handle(qr_payment_event(merchant_id))
    now = datetime.now(UTC)
    with engine.begin() as connection:  # A worker claims, then dies before sending.
        [claim] = delivery.claim_due(connection, now=now, lease_until=now + webhooks.lease,
                                     limit=10)

    assert webhooks.deliver_due(now + webhooks.lease - timedelta(seconds=1)) == 0
    assert webhooks.deliver_due(now + webhooks.lease) == 1

    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    assert sent.id == claim.delivery_id
    assert sent.status == DeliveryStatus.SUCCEEDED and sent.attempt_count == 2
    assert len(receiver.received) == 1


def test_a_late_outcome_from_an_expired_lease_is_logged_but_changes_nothing(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    webhooks.handle(qr_payment_event(merchant_id))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        [slow] = delivery.claim_due(connection, now=now, lease_until=now, limit=10)
    webhooks.deliver_due(now)  # The lease ran out: another worker sends, successfully.
    late = AttemptResult(500, None, 10_000)
    with engine.begin() as connection:
        delivery.record_scheduled(connection, slow, late, now=now, retry_at=now)

    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    assert sent.status == DeliveryStatus.SUCCEEDED and sent.last_status_code == 200
    assert sorted(a.status_code for a in sent.attempts) == [200, 500]


def test_delivery_refuses_a_private_address_when_the_setting_is_off(
    webhooks, merchant_id, receiver, engine
):
    endpoint = add_endpoint(webhooks, merchant_id, receiver)
    strict = make_webhooks(engine, policy=TargetPolicy(allow_http=True))
    try:
        webhooks.handle(qr_payment_event(merchant_id))
        strict.deliver_due(datetime.now(UTC))
    finally:
        strict.close()

    sent = only_delivery(webhooks, merchant_id, endpoint.id)
    assert sent.status == DeliveryStatus.PENDING
    assert sent.last_error == "address_not_allowed: 127.0.0.1 resolves to 127.0.0.1, a" \
        " loopback address"
    assert receiver.received == []
