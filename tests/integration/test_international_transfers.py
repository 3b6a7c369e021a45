"""International transfers against the real ledger: quoted, executed once, every asset balanced."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pacioli.gateways.fx import SandboxFxRates
from pacioli.ledger import credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import errors as pe
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.fx import InternationalTransfers


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def chart(engine, ledger) -> Chart:
    return Chart(engine, ledger)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fx(engine, ledger, chart, clock) -> InternationalTransfers:
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}

    def scale_of(code):
        if code not in scales:
            raise e.UnknownAsset(code)
        return scales[code]

    return InternationalTransfers(engine, ledger, chart, SandboxFxRates(), scale_of=scale_of,
                                  clock=clock)


def fund(ledger, chart, user_id, amount_minor, currency="USD"):
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


def balance(ledger, account_id):
    account = ledger.get_account(account_id)
    return account.balances.net_posted(account.normal_side)


def test_an_executed_quote_moves_exactly_the_quoted_amounts(ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=100_00,
                     idempotency_key="q").value
    assert (quote.fee_minor, quote.target_amount_minor) == (50, 9062)

    executed = fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x").value

    assert executed.status == "executed" and len(executed.transfer_ids) == 2
    assert balance(ledger, chart.wallet(alice, "USD")) == 0
    assert balance(ledger, chart.wallet(bruno, "EUR")) == 9062
    transfers = [ledger.get_transfer(uuid.UUID(t)) for t in executed.transfer_ids]
    for transfer in transfers:  # each balances in its own asset
        debits = sum(p.amount_minor for p in transfer.postings if p.direction == "debit")
        credits = sum(p.amount_minor for p in transfer.postings if p.direction == "credit")
        assert debits == credits
    assert transfers[0].batch_id == transfers[1].batch_id is not None


def test_a_quote_executes_once_and_replays_for_its_key(ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="INR", source_amount_minor=10_00,
                     idempotency_key="q").value

    first = fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x")
    again = fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x")
    with pytest.raises(pe.FxQuoteAlreadyExecuted):
        fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="other")

    assert again.replayed and again.value.transfer_ids == first.value.transfer_ids
    assert balance(ledger, chart.wallet(alice, "USD")) == 40_00


def test_concurrent_executions_with_different_keys_post_once(ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=10_00,
                     idempotency_key="q").value
    outcomes = []

    def execute(key):
        try:
            fx.execute(user_id=alice, quote_id=quote.id, idempotency_key=key)
            outcomes.append("executed")
        except pe.FxQuoteAlreadyExecuted:
            outcomes.append("refused")

    threads = [threading.Thread(target=execute, args=(f"k{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("executed") == 1
    assert balance(ledger, chart.wallet(alice, "USD")) == 40_00


def test_an_expired_quote_is_refused_and_moves_nothing(ledger, chart, fx, clock):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=10_00,
                     idempotency_key="q").value
    clock.now += timedelta(seconds=61)

    with pytest.raises(pe.FxQuoteExpired):
        fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x")
    assert balance(ledger, chart.wallet(alice, "USD")) == 50_00


def test_an_execution_that_died_after_posting_is_finished_by_a_retry_after_expiry(
    engine, ledger, chart, fx, clock
):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=10_00,
                     idempotency_key="q").value
    # The first execution posted the batch with the flow's own key, then died unrecorded.
    ledger.transfer_batch(fx._specs(quote), idempotency_key=f"fx:{quote.id}",
                          client_id=PAYMENTS_CLIENT_ID)
    clock.now += timedelta(seconds=61)

    executed = fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x").value

    assert executed.status == "executed" and len(executed.transfer_ids) == 2
    assert balance(ledger, chart.wallet(alice, "USD")) == 40_00
    assert balance(ledger, chart.wallet(bruno, "EUR")) == quote.target_amount_minor
    with engine.connect() as connection:
        announced = connection.execute(
            select(outbox.c.event_type).where(outbox.c.aggregate_id == str(quote.id))
        ).scalars().all()
    assert announced == ["international_transfer.succeeded"]


def test_insufficient_funds_leave_the_quote_open_and_nothing_moved(ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 5_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="JPY", source_amount_minor=10_00,
                     idempotency_key="q").value

    with pytest.raises(e.InsufficientFunds):
        fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x")
    assert fx.get_quote(alice, quote.id).status == "open"
    assert balance(ledger, chart.wallet(alice, "USD")) == 5_00
    assert balance(ledger, chart.wallet(bruno, "JPY")) == 0


def test_only_its_owner_sees_or_executes_a_quote(ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                     target_currency="EUR", source_amount_minor=10_00,
                     idempotency_key="q").value

    with pytest.raises(pe.FxQuoteNotFound):
        fx.get_quote(bruno, quote.id)
    with pytest.raises(pe.FxQuoteNotFound):
        fx.execute(user_id=bruno, quote_id=quote.id, idempotency_key="x")


@pytest.mark.parametrize(
    ("source", "target", "amount", "error"),
    [
        ("USD", "USD", 100, pe.InvalidPayment),
        ("USD", "BTC", 100, pe.FxPairUnavailable),
        ("USD", "EUR", 0, pe.InvalidPayment),
        ("USD", "EUR", 1, pe.InvalidPayment),  # one cent buys no whole euro cent after fees
        ("XXX", "EUR", 100, pe.FxPairUnavailable),
    ],
)
def test_bad_quotes_are_refused(fx, source, target, amount, error):
    with pytest.raises(error):
        fx.quote(user_id=uuid.uuid4(), recipient_user_id=uuid.uuid4(), source_currency=source,
                 target_currency=target, source_amount_minor=amount,
                 idempotency_key=uuid.uuid4().hex)


def test_the_same_quote_key_with_another_request_is_refused(fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    request = dict(user_id=alice, recipient_user_id=bruno, source_currency="USD",
                   target_currency="EUR", idempotency_key="q")
    first = fx.quote(source_amount_minor=10_00, **request)
    assert fx.quote(source_amount_minor=10_00, **request).value.id == first.value.id
    with pytest.raises(pe.IdempotencyKeyReusedForPayment):
        fx.quote(source_amount_minor=20_00, **request)
