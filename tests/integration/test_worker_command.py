"""`pacioli worker` as a real process: it relays events to consumers, runs its jobs, stops
on SIGTERM, and a restart after SIGKILL loses nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.storage.database import make_engine
from pacioli.ledger.storage.outbox_relay import unsent_count
from pacioli.workers.tables import scheduled_jobs
from tests.integration.relay_support import append_events, create_effects_table, effect_counts
from tests.integration.worker_harness import (
    RECORDER_DELAY_VARIABLE,
    drop_broker_schema,
    kill_worker,
    start_worker,
    stop_worker,
    wait_for_log,
    wait_until,
)

READY = "Pacioli worker running"


@pytest.fixture
def worker_database(fresh_database_url: str) -> Iterator[tuple[str, Engine, str]]:
    """A schema of this test's own, an engine on it, and a queue prefix of its own."""
    engine = make_engine(fresh_database_url, pool_size=4)
    create_effects_table(engine)
    prefix = f"test_{uuid.uuid4().hex[:12]}"
    yield fresh_database_url, engine, prefix
    engine.dispose()
    drop_broker_schema(fresh_database_url, prefix)


def test_the_worker_relays_events_to_a_consumer_and_stops_on_sigterm(worker_database, tmp_path):
    url, engine, prefix = worker_database
    log = tmp_path / "worker.log"
    before_start = append_events(engine, ["a", "b"])  # waiting in the outbox already
    process = start_worker(url, log, queue_prefix=prefix)
    try:
        wait_for_log(process, log, READY)
        after_start = append_events(engine, ["a", "c", "b"])
        expected = {e.event_id: 1 for e in before_start + after_start}
        wait_until(lambda: effect_counts(engine) == expected, 30, process=process,
                   log_path=log)
    finally:
        status = stop_worker(process)
    assert status == 0, log.read_text()
    assert "worker stopped" in log.read_text()
    with engine.connect() as connection:
        assert unsent_count(connection) == 0


def test_the_worker_runs_the_scheduled_jobs_it_is_wired_with(worker_database, tmp_path):
    url, engine, prefix = worker_database
    log = tmp_path / "worker.log"
    with Ledger(engine) as ledger:
        source = ledger.open_account(asset_code="USD", normal_side="debit",
                                     idempotency_key="src").value.id
        target = ledger.open_account(asset_code="USD", normal_side="credit",
                                     idempotency_key="dst").value.id
        hold = ledger.transfer([debit(source, 500), credit(target, 500)], pending=True,
                               expires_at=datetime.now(UTC) + timedelta(seconds=1),
                               idempotency_key="hold").value
    process = start_worker(url, log, queue_prefix=prefix, arguments=("--no-relay",))
    try:
        wait_for_log(process, log, READY)

        def expired() -> bool:
            with Ledger(engine) as ledger:
                return ledger.get_transfer(hold.id).pending_status.value == "expired"

        wait_until(expired, 30, process=process, log_path=log)
        with engine.connect() as connection:
            names = set(connection.execute(select(scheduled_jobs.c.name)).scalars())
        assert {"ledger.expire_pending", "topups.refresh_unsettled",
                "withdrawals.refresh_unsettled", "bill_payments.refresh_unsettled",
                "sandbox.deliver_callbacks"} <= names
    finally:
        assert stop_worker(process) == 0, log.read_text()
    with engine.connect() as connection:
        assert unsent_count(connection) > 0  # --no-relay: events stay in the outbox


def test_a_worker_killed_with_sigkill_loses_nothing_after_a_restart(worker_database, tmp_path):
    url, engine, prefix = worker_database
    log = tmp_path / "worker.log"
    slow = {RECORDER_DELAY_VARIABLE: "0.02"}
    process = start_worker(url, log, queue_prefix=prefix, environment=slow)
    wait_for_log(process, log, READY)
    first = append_events(engine, [f"agg-{i % 7}" for i in range(60)])
    wait_until(lambda: len(effect_counts(engine)) >= 5, 30, process=process, log_path=log)
    kill_worker(process)  # in the middle of a message: some of its events handled
    handled_before_restart = len(effect_counts(engine))
    second = append_events(engine, [f"agg-{i % 7}" for i in range(40)])

    process = start_worker(url, log, queue_prefix=prefix, environment=slow)
    try:
        expected = {e.event_id: 1 for e in first + second}
        wait_until(lambda: effect_counts(engine) == expected, 90, process=process,
                   log_path=log)
    finally:
        assert stop_worker(process) == 0, log.read_text()
    assert handled_before_restart < len(first)  # the kill did interrupt the work
