"""Deadlines and history, with an injected clock: expiring holds, balances at an instant,
and listing transfers by time. Each test has an empty schema of its own, because moving
the clock forward would otherwise let the sweep expire other tests' holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from pacioli.ledger import Balances, Ledger, PendingStatus, TransferKind, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.storage.database import make_engine

START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def timed_ledger(fresh_database_url, clock) -> Iterator[Ledger]:
    engine = make_engine(fresh_database_url, pool_size=2)
    try:
        with Ledger(engine, clock=clock) as ledger:
            yield ledger
    finally:
        engine.dispose()


def funded(ledger, new_key, amount_minor=1000) -> tuple[UUID, UUID]:
    bank = ledger.open_account(asset_code="USD", normal_side="debit",
                               idempotency_key=new_key()).value.id
    wallet = ledger.open_account(asset_code="USD", normal_side="credit",
                                 debits_must_not_exceed_credits=True,
                                 idempotency_key=new_key()).value.id
    ledger.transfer([debit(bank, amount_minor), credit(wallet, amount_minor)],
                    idempotency_key=new_key())
    return bank, wallet


def hold(ledger, new_key, bank, wallet, amount_minor, expires_at=None):
    return ledger.transfer(
        [debit(wallet, amount_minor), credit(bank, amount_minor)], pending=True,
        expires_at=expires_at, idempotency_key=new_key(),
    ).value


# Expiry.


def test_the_sweep_expires_a_hold_at_its_deadline_and_only_once(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    due = hold(ledger, new_key, bank, wallet, 300, expires_at=START + timedelta(minutes=10))
    hold(ledger, new_key, bank, wallet, 200, expires_at=START + timedelta(minutes=20))
    hold(ledger, new_key, bank, wallet, 100)  # no deadline
    assert ledger.expire_pending() == []
    clock.advance(minutes=10)
    (expiry,) = ledger.expire_pending()
    assert expiry.kind is TransferKind.EXPIRE_PENDING
    assert expiry.pending_id == due.id
    assert expiry.created_at == clock.now
    assert ledger.get_account(wallet).balances == Balances(credits_posted=1000,
                                                           debits_pending=300)
    stored = ledger.get_transfer(due.id)
    assert stored.pending_status is PendingStatus.EXPIRED
    assert stored.resolved_by_id == expiry.id
    assert ledger.expire_pending() == []
    with pytest.raises(e.PendingTransferAlreadyResolved):
        ledger.post_pending(due.id, idempotency_key=new_key())
    assert events_of(ledger, expiry.id) == ["transfer.expire_pending"]


def events_of(ledger, aggregate_id) -> list[str]:
    with ledger.engine.connect() as connection:
        return list(connection.execute(
            text("SELECT event_type FROM outbox WHERE aggregate_id = :id"),
            {"id": str(aggregate_id)},
        ).scalars())


def test_after_its_deadline_a_hold_cannot_be_posted_or_voided(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    held = hold(ledger, new_key, bank, wallet, 300, expires_at=START + timedelta(minutes=1))
    clock.advance(minutes=1, seconds=1)
    with pytest.raises(e.PendingTransferExpired):
        ledger.post_pending(held.id, idempotency_key=new_key())
    with pytest.raises(e.PendingTransferExpired):
        ledger.void_pending(held.id, idempotency_key=new_key())
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.PENDING
    assert [t.pending_id for t in ledger.expire_pending()] == [held.id]
    assert ledger.get_account(wallet).available_minor == 1000


def test_a_hold_resolved_before_its_deadline_is_not_swept(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    posted = hold(ledger, new_key, bank, wallet, 300, expires_at=START + timedelta(minutes=5))
    voided = hold(ledger, new_key, bank, wallet, 200, expires_at=START + timedelta(minutes=5))
    clock.advance(minutes=4)
    ledger.post_pending(posted.id, idempotency_key=new_key())
    ledger.void_pending(voided.id, idempotency_key=new_key())
    clock.advance(minutes=10)
    assert ledger.expire_pending() == []
    assert ledger.get_account(wallet).balances == Balances(debits_posted=300,
                                                           credits_posted=1000)


def test_the_sweep_expires_at_most_limit_holds_at_a_time(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    holds = [
        hold(ledger, new_key, bank, wallet, 10, expires_at=START + timedelta(minutes=n))
        for n in (3, 1, 2)
    ]
    clock.advance(hours=1)
    first = ledger.expire_pending(limit=2)
    second = ledger.expire_pending(limit=2)
    # The oldest deadlines go first.
    assert [t.pending_id for t in first] == [holds[1].id, holds[2].id]
    assert [t.pending_id for t in second] == [holds[0].id]
    assert ledger.expire_pending(limit=2) == []
    assert ledger.get_account(wallet).balances.debits_pending == 0


def test_a_hold_on_a_frozen_account_still_expires(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    held = hold(ledger, new_key, bank, wallet, 300, expires_at=START + timedelta(minutes=1))
    ledger.freeze_account(wallet, idempotency_key=new_key())
    clock.advance(minutes=2)
    assert [t.pending_id for t in ledger.expire_pending()] == [held.id]
    assert ledger.get_account(wallet).balances.debits_pending == 0


def test_a_deadline_must_lie_after_the_ledgers_clock(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    with pytest.raises(e.InvalidExpiry):
        hold(ledger, new_key, bank, wallet, 1, expires_at=clock.now)
    hold(ledger, new_key, bank, wallet, 1, expires_at=clock.now + timedelta(microseconds=1))


# Balances at an instant.


def test_balances_at_reads_the_running_balance_in_force_at_each_instant(
    timed_ledger, clock, new_key
):
    ledger = timed_ledger
    opened_at = clock.now
    bank = ledger.open_account(asset_code="USD", normal_side="debit",
                               idempotency_key=new_key()).value.id
    wallet = ledger.open_account(asset_code="USD", normal_side="credit",
                                 idempotency_key=new_key()).value.id
    t1 = clock.advance(minutes=1)
    ledger.transfer([debit(bank, 100), credit(wallet, 100)], idempotency_key=new_key())
    t2 = clock.advance(minutes=1)
    ledger.transfer([debit(wallet, 30), credit(bank, 30)], idempotency_key=new_key())
    t3 = clock.advance(minutes=1)
    held = hold(ledger, new_key, bank, wallet, 20)
    t4 = clock.advance(minutes=1)
    ledger.post_pending(held.id, amount_minor=5, idempotency_key=new_key())
    expected = [
        (opened_at, Balances()),
        (t1 - timedelta(microseconds=1), Balances()),
        (t1, Balances(credits_posted=100)),
        (t1 + timedelta(seconds=30), Balances(credits_posted=100)),
        (t2, Balances(debits_posted=30, credits_posted=100)),
        (t3 - timedelta(seconds=1), Balances(debits_posted=30, credits_posted=100)),
        (t3, Balances(debits_posted=30, credits_posted=100, debits_pending=20)),
        (t4, Balances(debits_posted=35, credits_posted=100)),
        (t4 + timedelta(days=365), Balances(debits_posted=35, credits_posted=100)),
    ]
    for at, balances in expected:
        assert ledger.balances_at(wallet, at) == balances, at
    assert ledger.balances_at(wallet, t4) == ledger.get_account(wallet).balances
    assert ledger.balances_at(bank, t2) == Balances(debits_posted=100, credits_posted=30)


def test_balances_at_of_an_unknown_account_is_not_found(timed_ledger):
    with pytest.raises(e.AccountNotFound):
        timed_ledger.balances_at(uuid7(), START)


# Listing transfers by time.


def test_list_transfers_filters_by_a_half_open_time_window(timed_ledger, clock, new_key):
    ledger = timed_ledger
    bank, wallet = funded(ledger, new_key)
    (funding,) = ledger.list_transfers(account_id=wallet)  # made at START
    made = {}
    for minute in (1, 2, 3):
        at = clock.advance(minutes=1)
        made[minute] = ledger.transfer([debit(wallet, minute), credit(bank, minute)],
                                       idempotency_key=new_key()).value
        assert made[minute].created_at == at
    t1, t2, t3 = (START + timedelta(minutes=m) for m in (1, 2, 3))

    def listed(**window) -> list:
        return [t.id for t in ledger.list_transfers(account_id=wallet, **window)]

    assert listed(created_from=t2) == [made[2].id, made[3].id]
    assert listed(created_before=t2) == [funding.id, made[1].id]
    assert listed(created_from=t1, created_before=t3) == [made[1].id, made[2].id]
    assert listed(created_from=t3 + timedelta(microseconds=1)) == []
