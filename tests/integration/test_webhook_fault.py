"""A `pacioli worker` killed with SIGKILL in the middle of webhook delivery, then started
again: every event reaches the endpoint at least once, and makes one delivery.

The worker is a real process with the real wiring (`pacioli.workers.wiring`): the relay
hands the outbox's merchant events to the webhooks consumer, and the scheduler runs the
retry job. The receiver answers slowly, so the worker dies with requests on the wire;
their deliveries stay claimed until the claim's lease runs out and are then sent again,
with the same webhook-id (receivers dedupe on it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import Event, append_event
from pacioli.ledger.storage.database import make_engine
from pacioli.payments.webhook_delivery import webhook_id
from pacioli.payments.webhook_tables import webhook_deliveries
from tests.integration.webhook_support import key, make_webhooks, new_merchant
from tests.integration.worker_harness import (
    drop_broker_schema,
    kill_worker,
    start_worker,
    stop_worker,
    wait_for_log,
    wait_until,
)
from tests.webhook_receiver import running_receiver

READY = "Pacioli worker running"
EVENTS = 8
# Short timeouts and small batches make the claim's lease short (2 s + 15 s margin).
WORKER_ENVIRONMENT = {
    "PACIOLI_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "PACIOLI_WEBHOOK_ALLOW_HTTP": "true",
    "PACIOLI_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PACIOLI_WEBHOOK_DELIVERY_BATCH_SIZE": "2",
    "PACIOLI_WEBHOOK_DELIVERY_CONCURRENCY": "2",
}


@pytest.fixture
def worker_database(fresh_database_url: str) -> Iterator[tuple[str, Engine, str]]:
    engine = make_engine(fresh_database_url, pool_size=4)
    prefix = f"test_{uuid.uuid4().hex[:12]}"
    yield fresh_database_url, engine, prefix
    engine.dispose()
    drop_broker_schema(fresh_database_url, prefix)


def merchant_events(engine: Engine, merchant_id: uuid.UUID) -> list[Event]:
    events = []
    for index in range(EVENTS):
        with engine.begin() as connection:
            payment_id = str(uuid7())
            events.append(append_event(connection, "qr_payment.succeeded", "qr_payment",
                                       payment_id, {
                                           "payment_id": payment_id,
                                           "merchant_id": str(merchant_id),
                                           "amount_minor": str(100 + index),
                                           "currency": "USD",
                                       }))
    return events


def delivery_statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(webhook_deliveries.c.status)).scalars())


def test_a_worker_killed_mid_delivery_and_restarted_delivers_every_event(
    worker_database, tmp_path
):
    url, engine, prefix = worker_database
    log = tmp_path / "worker.log"
    with running_receiver() as receiver:
        receiver.delay_s = 0.5
        merchant_id = new_merchant(engine)
        webhooks = make_webhooks(engine)
        try:
            issued = webhooks.register_endpoint(merchant_id, url=receiver.url,
                                                write_key=key()).value
        finally:
            webhooks.close()
        receiver.secrets.append(issued.secret)
        events = merchant_events(engine, merchant_id)

        first = start_worker(url, log, queue_prefix=prefix, wiring=(),
                             environment=WORKER_ENVIRONMENT)
        try:
            wait_for_log(first, log, READY)
            wait_until(lambda: len(receiver.received) >= 2, 60, process=first, log_path=log)
        finally:
            kill_worker(first)
        received_before_kill = len(receiver.received)
        assert delivery_statuses(engine).count("succeeded") < EVENTS

        second = start_worker(url, log, queue_prefix=prefix, wiring=(),
                              environment=WORKER_ENVIRONMENT)
        try:
            wait_until(lambda: delivery_statuses(engine) == ["succeeded"] * EVENTS, 120,
                       process=second, log_path=log)
        finally:
            assert stop_worker(second) == 0, log.read_text()

    expected_ids = {webhook_id(event.event_id) for event in events}
    assert {r.webhook_id for r in receiver.received} == expected_ids
    assert all(r.verified_by == [issued.secret] for r in receiver.received)
    assert len(receiver.received) >= EVENTS > received_before_kill
    with engine.connect() as connection:
        event_ids = list(connection.execute(select(webhook_deliveries.c.event_id)).scalars())
    assert sorted(event_ids) == sorted(event.event_id for event in events)
