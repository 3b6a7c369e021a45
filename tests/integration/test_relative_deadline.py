"""A pending transfer's deadline given as timeout_seconds is resolved by the ledger's clock."""

from datetime import UTC, datetime, timedelta

import pytest

from pacioli.ledger import Ledger, PendingStatus, credit, debit
from pacioli.ledger.domain.errors import InvalidExpiry
from pacioli.ledger.storage.database import make_engine


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_ledger(fresh_database_url, clock):
    # An empty schema of its own: the expiry sweep at a far-future clock must not reach
    # other tests' holds.
    engine = make_engine(fresh_database_url)
    with Ledger(engine, clock=clock) as ledger:
        yield ledger
    engine.dispose()


def _two_accounts(ledger, new_key):
    bank = ledger.open_account(asset_code="USD", normal_side="debit", idempotency_key=new_key())
    shop = ledger.open_account(asset_code="USD", normal_side="credit", idempotency_key=new_key())
    return bank.value.id, shop.value.id


def test_timeout_seconds_sets_the_deadline_from_the_ledger_clock(timed_ledger, clock, new_key):
    bank, shop = _two_accounts(timed_ledger, new_key)
    hold = timed_ledger.transfer(
        [debit(bank, 500), credit(shop, 500)], pending=True, timeout_seconds=90,
        idempotency_key=new_key(),
    ).value
    assert hold.expires_at == clock.now + timedelta(seconds=90)


def test_a_retry_after_the_clock_moved_replays_the_first_hold(timed_ledger, clock, new_key):
    bank, shop = _two_accounts(timed_ledger, new_key)
    key = new_key()
    first = timed_ledger.transfer(
        [debit(bank, 500), credit(shop, 500)], pending=True, timeout_seconds=90,
        idempotency_key=key,
    )
    clock.now += timedelta(seconds=30)
    again = timed_ledger.transfer(
        [debit(bank, 500), credit(shop, 500)], pending=True, timeout_seconds=90,
        idempotency_key=key,
    )
    assert again.replayed
    assert again.value.id == first.value.id
    assert again.value.expires_at == first.value.expires_at


def test_a_hold_with_a_timeout_expires_when_the_clock_passes_it(timed_ledger, clock, new_key):
    bank, shop = _two_accounts(timed_ledger, new_key)
    hold = timed_ledger.transfer(
        [debit(bank, 500), credit(shop, 500)], pending=True, timeout_seconds=60,
        idempotency_key=new_key(),
    ).value
    clock.now += timedelta(seconds=61)
    expired = timed_ledger.expire_pending()
    assert hold.id in {t.pending_id for t in expired}
    assert timed_ledger.get_transfer(hold.id).pending_status is PendingStatus.EXPIRED


@pytest.mark.parametrize(
    "options",
    [
        {"pending": False, "timeout_seconds": 60},
        {"pending": True, "timeout_seconds": 0},
        {"pending": True, "timeout_seconds": 60, "expires_at": datetime(2031, 1, 1, tzinfo=UTC)},
    ],
)
def test_a_bad_timeout_is_invalid_expiry(timed_ledger, new_key, options):
    bank, shop = _two_accounts(timed_ledger, new_key)
    with pytest.raises(InvalidExpiry):
        timed_ledger.transfer(
            [debit(bank, 500), credit(shop, 500)], idempotency_key=new_key(), **options
        )
