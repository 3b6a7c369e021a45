"""Settings, from the environment (prefix PACIOLI_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACIOLI_")

    # A PostgreSQL URL; with none, Pacioli runs an embedded PostgreSQL under data_dir.
    database_url: str | None = None
    data_dir: Path = platformdirs.user_data_path("pacioli")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "json"  # or "text"
    # Gather concurrent ledger commands into shared transactions (see docs/architecture.md).
    ledger_batch_size_max: int = 256
    # Writer threads per process (see docs/architecture.md); 1 suits a 2-core machine.
    ledger_writers: int = 1

    # Identity (see docs/users.md).
    # How long a user's bearer token lives after login.
    session_ttl_seconds: int = 24 * 3600
    # argon2id parameters (argon2-cffi's defaults: RFC 9106's low-memory profile). A
    # login rehashes a password stored with other parameters.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    # Withdrawals above this many minor units of their asset need a TOTP code.
    second_factor_threshold_minor: int = 100_000
    # At most this long may an old merchant key keep working after a rotation.
    api_key_rotation_grace_seconds_max: int = 7 * 24 * 3600

    # Workers (see docs/workers.md).
    # No URL: the broker is the database itself (dramatiq-postgres); redis:// or amqp://
    # select Redis or RabbitMQ.
    broker_url: str | None = None
    # The PostgreSQL broker's tables live in this schema (created by the worker).
    broker_schema: str = "dramatiq"
    # Every queue's name starts with this, so deployments (or tests) sharing a broker
    # do not see each other's messages.
    broker_queue_prefix: str = "pacioli"
    # Messages a worker took and never acknowledged (it died) go to another worker once
    # its heartbeat is this old (PostgreSQL and Redis brokers; RabbitMQ redelivers them
    # as soon as the dead worker's connection drops).
    broker_dead_worker_timeout_seconds: float = 60.0
    # Events the relay takes per round (one message per consumer carries them), and how
    # long it waits before asking again when a round found less than a full batch.
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = 0.1
    # dramatiq worker threads per `pacioli worker` process.
    worker_threads: int = 8
    # How often each worker's scheduler looks for due jobs.
    scheduler_tick_seconds: float = 1.0

    # Notifications (see docs/notifications.md).
    # The adapter each outside channel sends through; "log" only writes a log line.
    notification_email_channel: str = "log"
    notification_sms_channel: str = "log"
    notification_push_channel: str = "log"
    # A failed channel delivery is retried after base * 2**(attempt - 1) seconds (at most
    # the cap), and marked failed after this many attempts.
    notification_delivery_attempts_max: int = 8
    notification_retry_base_seconds: int = 30
    notification_retry_cap_seconds: int = 6 * 3600
    # Low-balance alert threshold per currency, in minor units, for users who set none
    # (a JSON object in the environment). A currency not listed has no default alert.
    notification_low_balance_default_minor: dict[str, int] = {
        "USD": 10_00, "EUR": 10_00, "INR": 500_00, "CNY": 50_00, "JPY": 1_000,
    }
    # Bills due within this many days are reminded of, once per bill.
    notification_bill_due_days: int = 3

    # Merchant webhooks (see docs/webhooks.md).
    # Each network step of an attempt (connect, send, read the response head) gets this long.
    webhook_timeout_seconds: float = 10.0
    # Allow endpoints on loopback, private, link-local ... addresses (development, tests);
    # off, such URLs are refused at registration and at every delivery (SSRF guard).
    webhook_allow_private_targets: bool = False
    # Allow plain http:// endpoints (development, tests); off, only https:// is accepted.
    webhook_allow_http: bool = False
    # How long a rotated-out signing secret keeps signing by default, and at most.
    webhook_secret_grace_seconds_default: int = 24 * 3600
    webhook_secret_grace_seconds_max: int = 7 * 24 * 3600
    # Deliveries one run of the retry job claims, and how many it sends at a time.
    webhook_delivery_batch_size: int = 100
    webhook_delivery_concurrency: int = 8

    # Settlement (see docs/settlement.md).
    # T+N: payments completed on UTC day D are settled and paid out on day D+N (0: at
    # the next run); a merchant's own schedule overrides it.
    settlement_cycle_days: int = 1
    # Testing aid for fault tests: the process kills itself (SIGKILL) when it reaches
    # this named point, e.g. "settlement.after_move". Never set it in production.
    fault_at: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()


def database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or the embedded server's (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from pacioli.ledger.storage.database import start_embedded

    return start_embedded(settings.data_dir / "pgdata")
