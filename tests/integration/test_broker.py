"""The relay and actors on real brokers: PostgreSQL always, Redis and RabbitMQ when reachable.

Redis and RabbitMQ are looked for at PACIOLI_TEST_REDIS_URL / PACIOLI_TEST_AMQP_URL
(default: their usual local ports); where none answers, those tests are skipped with the
reason. Each test uses queue names of its own, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import dramatiq
import pytest
from sqlalchemy import Engine, create_engine, text

from pacioli.ledger.storage.database import make_engine, sqlalchemy_url
from pacioli.workers.actors import declare_consumer_actors, queue_name
from pacioli.workers.broker import UnsupportedBrokerUrl, libpq_url, make_broker
from pacioli.workers.relay import OutboxRelay, dispatcher
from tests.integration.relay_support import (
    EffectRecorder,
    append_events,
    create_effects_table,
    effect_counts,
)

REDIS_URL = os.environ.get("PACIOLI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("PACIOLI_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
HANDLED_TIMEOUT_SECONDS = 30


@pytest.fixture
def outbox_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=8)
    create_effects_table(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def queue_prefix() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


def relay_to_consumers_through(broker: dramatiq.Broker, engine: Engine, prefix: str) -> None:
    """Events committed to the outbox reach two consumers through `broker`, once each."""
    consumers = [EffectRecorder(engine, "first"), EffectRecorder(engine, "second")]
    actors = declare_consumer_actors(broker, consumers, queue_prefix=prefix)
    written = append_events(engine, ["a", "b", "a", "c"] * 5)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100,
                             queues={queue_name(prefix, c.name) for c in consumers})
    worker.start()
    try:
        relay = OutboxRelay(engine, dispatcher(consumers, actors), batch_size=8)
        assert relay.relay_all() == len(written)
        expected = {e.event_id: 1 for e in written}
        deadline = time.monotonic() + HANDLED_TIMEOUT_SECONDS
        while time.monotonic() < deadline and any(
            effect_counts(engine, c.name) != expected for c in consumers
        ):
            time.sleep(0.1)
    finally:
        worker.stop(timeout=10_000)
    for consumer in consumers:
        assert effect_counts(engine, consumer.name) == expected


def test_the_postgres_broker_carries_events_from_the_relay_to_consumers(
    outbox_engine, fresh_database_url, queue_prefix
):
    schema = f"dramatiq_{queue_prefix}"
    broker = make_broker(None, fresh_database_url, schema=schema)
    try:
        relay_to_consumers_through(broker, outbox_engine, queue_prefix)
        with outbox_engine.connect() as connection:
            left = connection.execute(
                text(f'SELECT count(*) FROM "{schema}".queue WHERE state = \'queued\''))
            assert left.scalar_one() == 0
    finally:
        broker.close()
        _drop_schema(fresh_database_url, schema)


def test_the_postgres_broker_creates_its_tables_once(fresh_database_url, queue_prefix):
    schema = f"dramatiq_{queue_prefix}"
    try:
        for _ in range(2):  # a second worker start finds the tables and leaves them
            make_broker(None, fresh_database_url, schema=schema).close()
        engine = create_engine(sqlalchemy_url(fresh_database_url))
        with engine.connect() as connection:
            tables = connection.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                " ORDER BY table_name"), {"s": schema}).scalars().all()
        engine.dispose()
        assert tables == ["queue", "result", "worker"]
    finally:
        _drop_schema(fresh_database_url, schema)


def test_redis_carries_events_from_the_relay_to_consumers(outbox_engine, queue_prefix):
    _skip_unless_reachable("Redis", REDIS_URL, 6379)
    broker = make_broker(REDIS_URL, "unused://", schema="unused")
    try:
        relay_to_consumers_through(broker, outbox_engine, queue_prefix)
    finally:
        broker.flush_all()
        broker.close()


def test_rabbitmq_carries_events_from_the_relay_to_consumers(outbox_engine, queue_prefix):
    _skip_unless_reachable("RabbitMQ", AMQP_URL, 5672)
    broker = make_broker(AMQP_URL, "unused://", schema="unused")
    try:
        relay_to_consumers_through(broker, outbox_engine, queue_prefix)
    finally:
        for name in list(broker.queues):
            for queue in (name, f"{name}.DQ", f"{name}.XQ"):
                broker.channel.queue_delete(queue)
        broker.close()


def test_an_unknown_broker_url_is_refused():
    with pytest.raises(UnsupportedBrokerUrl, match="kafka"):
        make_broker("kafka://127.0.0.1:9092", "postgresql://localhost/x")


def test_the_broker_reads_the_database_url_as_libpq_does():
    url = "postgresql+psycopg://u@/db?host=/tmp/s&options=-csearch_path%3Dx"
    assert libpq_url(url) == "postgresql://u@/db?host=/tmp/s&options=-csearch_path%3Dx"


def _skip_unless_reachable(name: str, url: str, default_port: int) -> None:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError as error:
        pytest.skip(f"{name} is not reachable at {address[0]}:{address[1]} ({error}); "
                    f"set PACIOLI_TEST_{'REDIS' if name == 'Redis' else 'AMQP'}_URL to test it")


def _drop_schema(database_url: str, schema: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
