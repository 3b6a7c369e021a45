"""Which dramatiq broker the workers use, from one URL.

No URL: the PostgreSQL broker of `dramatiq-postgres`, on Pacioli's own database, so a
deployment needs nothing but PostgreSQL. `redis://` (or `rediss://`) selects dramatiq's
RedisBroker and `amqp://` (or `amqps://`) its RabbitmqBroker, for larger deployments.

The PostgreSQL broker keeps its queue in tables of a schema of its own (`schema`,
default "dramatiq"). `make_broker` creates them if missing, idempotently and safely from
several processes at once (dramatiq-postgres serializes its DDL on an advisory lock).
This is done by the worker at start rather than by a migration, because the schema's
name is a setting and a deployment on Redis or RabbitMQ needs no such tables; the
database role must therefore be allowed to create a schema on first start.

dramatiq-postgres keeps its SQL in one module-level object, so one process uses one
queue schema at a time: a second PostgreSQL broker with another schema switches the
first one's statements too. Tests isolate themselves by queue names instead (every
queue name starts with the `broker_queue_prefix` setting).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dramatiq import Broker

from pacioli.ledger.storage.database import sqlalchemy_url

POSTGRES_SCHEMA_DEFAULT = "dramatiq"
# How long a PostgreSQL broker's consumer sleeps between polls when no NOTIFY woke it.
POSTGRES_POLL_INTERVAL_SECONDS = 1.0
DEAD_WORKER_TIMEOUT_SECONDS_DEFAULT = 60.0
REDIS_SCHEMES = ("redis", "rediss", "unix")
RABBITMQ_SCHEMES = ("amqp", "amqps")


class UnsupportedBrokerUrl(ValueError):
    """The broker URL names no broker Pacioli knows (redis://, amqp://, or none)."""


def make_broker(
    broker_url: str | None, database_url: str, *, schema: str = POSTGRES_SCHEMA_DEFAULT,
    dead_worker_timeout_seconds: float = DEAD_WORKER_TIMEOUT_SECONDS_DEFAULT,
) -> Broker:
    """The broker `broker_url` names, or the PostgreSQL broker on `database_url` if None.

    `dead_worker_timeout_seconds`: how old a worker's last heartbeat must be before the
    messages it took and never acknowledged go to another worker (PostgreSQL, Redis).
    """
    if not broker_url:
        return postgres_broker(database_url, schema=schema,
                               dead_worker_timeout_seconds=dead_worker_timeout_seconds)
    scheme = urlsplit(broker_url).scheme
    if scheme in REDIS_SCHEMES:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=broker_url,
                           heartbeat_timeout=int(dead_worker_timeout_seconds * 1000))
    if scheme in RABBITMQ_SCHEMES:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: `send` returns only once RabbitMQ has the message, which is
        # what lets the relay mark an event sent.
        return RabbitmqBroker(url=broker_url, confirm_delivery=True)
    raise UnsupportedBrokerUrl(
        f"unsupported broker URL scheme {scheme!r}: use redis://, amqp://, or no URL"
        " for the PostgreSQL broker"
    )


def postgres_broker(
    database_url: str, *, schema: str = POSTGRES_SCHEMA_DEFAULT,
    dead_worker_timeout_seconds: float = DEAD_WORKER_TIMEOUT_SECONDS_DEFAULT,
) -> Broker:
    """A dramatiq-postgres broker on `database_url`, its tables created if missing."""
    import dramatiq_postgres

    # Heartbeats and the sweep that requeues a dead worker's messages run often enough
    # that a message comes back between one and one and a half timeouts after a crash.
    broker = dramatiq_postgres.PostgresBroker(
        url=libpq_url(database_url), schema=schema, results=False,
        poll_interval=POSTGRES_POLL_INTERVAL_SECONDS,
        heartbeat_ttl=dead_worker_timeout_seconds,
        heartbeat_interval=dead_worker_timeout_seconds / 4,
        maintenance_interval=dead_worker_timeout_seconds / 4,
    )
    try:
        with broker.pool.connection() as connection, connection.cursor() as cursor:
            dramatiq_postgres.init(cursor, schema=schema)
    except BaseException:
        broker.close()
        raise
    return broker


def libpq_url(database_url: str) -> str:
    """`database_url` as libpq reads it: postgresql://, no SQLAlchemy driver name."""
    return sqlalchemy_url(database_url).replace("postgresql+psycopg://", "postgresql://", 1)
