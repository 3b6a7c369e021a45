"""The payment flows announce what they did through the outbox: one event per committed
change, in the change's own transaction; none for a replay, a lost race or a rollback.

Tests share one schema, so each reads the outbox by the aggregate ids it made itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import ProgrammingError

from pacioli.gateways.fx import SandboxFxRates
from pacioli.gateways.sandbox import magic
from pacioli.ledger import credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import errors as pe
from pacioli.payments import p2p as p2p_module
from pacioli.payments import sessions, users
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.fx import InternationalTransfers
from pacioli.payments.identity_errors import InvalidCredentials
from pacioli.payments.identity_idempotency import ANONYMOUS, WriteKey
from pacioli.payments.offers import merchant_funder
from pacioli.payments.p2p import P2P
from pacioli.payments.topups import register_funding_handlers
from tests.integration.test_bill_payments import make_world as make_bills_world
from tests.integration.test_bill_payments import ref
from tests.integration.test_offers import Clock as OffersClock
from tests.integration.test_offers import World as OffersWorld
from tests.integration.test_topups import make_world as make_funding_world
from tests.integration.test_topups import run_together
from tests.integration.test_withdrawals import Payouts

USD = "USD"


def events(engine, aggregate_id, event_type: str | None = None) -> list[Any]:
    """The outbox rows of one aggregate, in commit order (of one type, when given)."""
    query = select(outbox).where(outbox.c.aggregate_id == str(aggregate_id))
    if event_type is not None:
        query = query.where(outbox.c.event_type == event_type)
    with engine.connect() as connection:
        return connection.execute(query.order_by(outbox.c.id)).all()


def the_event(engine, aggregate_id, event_type: str | None = None):
    """The one event of an aggregate (fails when there are none or several)."""
    rows = events(engine, aggregate_id, event_type)
    assert len(rows) == 1, [(row.event_type, row.payload) for row in rows]
    return rows[0]


@pytest.fixture
def chart(engine, ledger) -> Chart:
    return Chart(engine, ledger)


def fund(ledger, chart: Chart, user_id, amount_minor: int, currency: str = USD) -> None:
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


# P2P payments and money requests.


@pytest.fixture
def p2p(engine, ledger, chart) -> P2P:
    return P2P(engine, ledger, chart)


def test_a_payment_announces_it_succeeded_once_and_a_replay_announces_nothing(
    engine, ledger, chart, p2p
):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency=USD, amount_minor=25_50,
                   note="dinner", idempotency_key="pay")

    payment = p2p.send(**request).value
    assert p2p.send(**request).replayed

    event = the_event(engine, payment.id)
    assert (event.event_type, event.aggregate_type) == ("p2p_payment.succeeded", "p2p_payment")
    assert event.payload == {
        "payment_id": str(payment.id), "payer_user_id": str(alice),
        "payee_user_id": str(bob), "amount_minor": "2550", "currency": USD, "note": "dinner",
    }
    assert event.sent_at is None


def test_a_payment_the_ledger_refuses_announces_nothing(engine, ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_00)
    with pytest.raises(e.InsufficientFunds):
        p2p.send(payer_user_id=alice, payee_user_id=bob, currency=USD, amount_minor=10_01,
                 idempotency_key="too-much")
    [payment] = p2p.list_payments(alice)
    assert payment.status == "failed"
    assert events(engine, payment.id) == []


def test_concurrent_requests_with_one_key_announce_one_payment(engine, ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)

    results = run_together(6, lambda i: p2p.send(
        payer_user_id=alice, payee_user_id=bob, currency=USD, amount_minor=5_00,
        idempotency_key="once").value.id)

    assert len(set(results)) == 1, results
    assert the_event(engine, results[0]).event_type == "p2p_payment.succeeded"


def test_an_event_that_cannot_be_written_leaves_the_payment_unrecorded(
    engine, ledger, chart, p2p, monkeypatch
):
    """The event and the record share one transaction: neither commits alone, and the
    retry that records the payment (its transfer posted once) announces it once."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency=USD, amount_minor=7_00,
                   idempotency_key="crash")
    payment_id = p2p_module.payment_id_for(alice, "crash")

    # The record and its event are one statement: point the event at a table that is not
    # there, and the database refuses the whole statement.
    statement = p2p_module._INSERT_ANNOUNCED_SQL
    assert "INSERT INTO outbox " in statement
    monkeypatch.setattr(p2p_module, "_INSERT_ANNOUNCED_SQL",
                        statement.replace("INSERT INTO outbox ", "INSERT INTO outbox_unavailable "))
    with pytest.raises(ProgrammingError):
        p2p.send(**request)
    assert p2p.list_payments(alice) == []
    assert events(engine, payment_id) == []

    monkeypatch.undo()
    finished = p2p.send(**request)
    assert (finished.value.id, finished.value.status) == (payment_id, "succeeded")
    assert the_event(engine, payment_id).event_type == "p2p_payment.succeeded"


def test_a_money_request_announces_its_creation_and_its_payment(engine, ledger, chart, p2p):
    requester, payer = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, payer, 50_00)
    ask = dict(requester_user_id=requester, payer_user_id=payer, currency=USD,
               amount_minor=12_00, note="tickets", idempotency_key="ask")

    request = p2p.request(**ask).value
    assert p2p.request(**ask).replayed
    payment = p2p.pay_request(payer_user_id=payer, request_id=request.id,
                              idempotency_key="pay-request").value
    p2p.pay_request(payer_user_id=payer, request_id=request.id, idempotency_key="pay-request")

    created, paid = events(engine, request.id)
    payload = {
        "request_id": str(request.id), "requester_user_id": str(requester),
        "payer_user_id": str(payer), "amount_minor": "1200", "currency": USD, "note": "tickets",
    }
    assert (created.event_type, created.aggregate_type, created.payload) == (
        "money_request.created", "money_request", payload)
    assert (paid.event_type, paid.aggregate_type, paid.payload) == (
        "money_request.paid", "money_request", payload)
    assert the_event(engine, payment.id).event_type == "p2p_payment.succeeded"


def test_a_declined_request_announces_it_and_a_cancelled_one_does_not(engine, p2p):
    requester, payer = uuid.uuid4(), uuid.uuid4()
    ask = dict(requester_user_id=requester, payer_user_id=payer, currency=USD,
               amount_minor=3_00)
    declined = p2p.request(**ask, idempotency_key="one").value
    cancelled = p2p.request(**ask, idempotency_key="two").value

    p2p.decline_request(payer_user_id=payer, request_id=declined.id)
    p2p.cancel_request(requester_user_id=requester, request_id=cancelled.id)
    with pytest.raises(pe.MoneyRequestNotOpen):
        p2p.decline_request(payer_user_id=payer, request_id=declined.id)

    assert [row.event_type for row in events(engine, declined.id)] == [
        "money_request.created", "money_request.declined"]
    assert events(engine, declined.id)[1].payload["payer_user_id"] == str(payer)
    assert [row.event_type for row in events(engine, cancelled.id)] == [
        "money_request.created"]


# International transfers.


@pytest.fixture
def fx(engine, ledger, chart) -> InternationalTransfers:
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}
    return InternationalTransfers(engine, ledger, chart, SandboxFxRates(),
                                  scale_of=scales.__getitem__)


def test_an_executed_quote_announces_one_international_transfer(engine, ledger, chart, fx):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency=USD,
                     target_currency="EUR", source_amount_minor=100_00,
                     idempotency_key="q").value
    assert events(engine, quote.id) == []  # a quote alone moves nothing

    fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x")
    assert fx.execute(user_id=alice, quote_id=quote.id, idempotency_key="x").replayed

    event = the_event(engine, quote.id)
    assert (event.event_type, event.aggregate_type) == (
        "international_transfer.succeeded", "international_transfer")
    assert event.payload == {
        "transfer_id": str(quote.id), "sender_user_id": str(alice),
        "recipient_user_id": str(bruno), "source_amount_minor": "10000",
        "source_currency": USD, "target_amount_minor": str(quote.target_amount_minor),
        "target_currency": "EUR",
    }


def test_concurrent_executions_with_different_keys_announce_one_transfer(
    engine, ledger, chart, fx
):
    alice, bruno = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 50_00)
    quote = fx.quote(user_id=alice, recipient_user_id=bruno, source_currency=USD,
                     target_currency="EUR", source_amount_minor=10_00,
                     idempotency_key="q").value

    results = run_together(6, lambda i: fx.execute(user_id=alice, quote_id=quote.id,
                                                    idempotency_key=f"k{i}"))

    assert sum(not isinstance(r, pe.FxQuoteAlreadyExecuted) for r in results) == 1, results
    assert the_event(engine, quote.id).event_type == "international_transfer.succeeded"


# Top-ups.


@pytest.fixture
def funding(engine, ledger):
    world = make_funding_world(engine, ledger)
    unregister = register_funding_handlers(engine, ledger, world.chart, world.gateway,
                                           registry=world.registry)
    yield world
    unregister()


def test_a_top_up_announces_it_succeeded_once_and_a_replay_announces_nothing(engine, funding):
    user = uuid.uuid4()
    card = funding.card(user)
    topup = funding.top_up(user, card, 25_00, key="top").value
    assert funding.top_up(user, card, 25_00, key="top").replayed
    funding.topups.refresh(user, topup.id)

    event = the_event(engine, topup.id)
    assert (event.event_type, event.aggregate_type) == ("topup.succeeded", "topup")
    assert event.payload == {"topup_id": str(topup.id), "user_id": str(user),
                             "amount_minor": "2500", "currency": USD, "failure_code": None}


def test_a_declined_card_announces_the_top_up_failed(engine, funding):
    user = uuid.uuid4()
    topup = funding.top_up(user, funding.card(user, magic.CARD_DECLINED), 10_00).value

    event = the_event(engine, topup.id)
    assert event.event_type == "topup.failed"
    assert event.payload == {"topup_id": str(topup.id), "user_id": str(user),
                             "amount_minor": "1000", "currency": USD,
                             "failure_code": "card_declined"}


def test_a_top_up_the_ledger_refuses_to_hold_announces_it_failed(engine, funding):
    user = uuid.uuid4()
    card = funding.card(user)
    funding.ledger.freeze_account(funding.chart.wallet(user, USD),
                                  idempotency_key=uuid.uuid4().hex)
    topup = funding.top_up(user, card).value

    event = the_event(engine, topup.id)
    assert (event.event_type, event.payload["failure_code"]) == ("topup.failed",
                                                                 "account_frozen")


def test_a_pending_top_up_announces_nothing_until_its_callback_settles_it(engine, funding):
    user = uuid.uuid4()
    topup = funding.top_up(user, funding.bank(user)).value
    assert topup.status == "pending" and events(engine, topup.id) == []

    funding.clock.advance(3)
    funding.deliver(topup.gateway_reference)
    funding.deliver(topup.gateway_reference)  # duplicates change nothing

    assert the_event(engine, topup.id).event_type == "topup.succeeded"


def test_callbacks_and_refreshes_racing_announce_one_top_up(engine, funding):
    user = uuid.uuid4()
    topup = funding.top_up(user, funding.card(user, magic.CARD_ASYNC_SUCCEEDS)).value
    funding.clock.advance(3)
    [authorized] = funding.events(topup.gateway_reference)

    def work(i: int):
        if i % 2:
            return funding.topups.refresh(user, topup.id).status
        return funding.gateway.send_event(authorized, funding.send, funding.clock())

    results = run_together(6, work)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert the_event(engine, topup.id).event_type == "topup.succeeded"


# Withdrawals.


@pytest.fixture
def payouts(funding) -> Payouts:
    return Payouts(funding)


def test_a_paid_out_withdrawal_announces_it_succeeded_once(engine, payouts):
    world = payouts.world
    user = payouts.user(100_00)
    withdrawal = payouts.withdraw(user, world.bank(user), 40_00, key="out").value
    assert withdrawal.status == "pending" and events(engine, withdrawal.id) == []

    world.clock.advance(3)
    world.deliver(withdrawal.gateway_reference)
    world.deliver(withdrawal.gateway_reference)
    assert payouts.withdraw(user, withdrawal.instrument_id, 40_00, key="out").replayed

    event = the_event(engine, withdrawal.id)
    assert (event.event_type, event.aggregate_type) == ("withdrawal.succeeded", "withdrawal")
    assert event.payload == {"withdrawal_id": str(withdrawal.id), "user_id": str(user),
                             "amount_minor": "4000", "currency": USD, "failure_code": None}


def test_a_failed_payout_announces_the_withdrawal_failed(engine, payouts):
    world = payouts.world
    user = payouts.user(100_00)
    withdrawal = payouts.withdraw(user, world.bank(user, magic.BANK_ACCOUNT_CLOSED)).value
    world.clock.advance(3)
    world.deliver(withdrawal.gateway_reference)

    event = the_event(engine, withdrawal.id)
    assert event.event_type == "withdrawal.failed"
    assert event.payload["failure_code"] == "account_closed"


def test_a_withdrawal_beyond_the_balance_announces_it_failed_once(engine, payouts):
    user = payouts.user(10_00)
    bank = payouts.world.bank(user)
    for _ in range(2):  # the request, then its replay
        with pytest.raises(e.InsufficientFunds):
            payouts.withdraw(user, bank, 10_01, key="too-much")
    [withdrawal] = payouts.withdrawals.list(user)

    event = the_event(engine, withdrawal.id)
    assert (event.event_type, event.payload["failure_code"]) == ("withdrawal.failed",
                                                                 "insufficient_funds")


def test_a_callback_and_refreshes_racing_announce_one_withdrawal(engine, payouts):
    world = payouts.world
    user = payouts.user(100_00)
    withdrawal = payouts.withdraw(user, world.bank(user)).value
    world.clock.advance(3)
    [paid_out] = world.events(withdrawal.gateway_reference)

    def work(i: int):
        if i % 2:
            return payouts.withdrawals.refresh(user, withdrawal.id).status
        return world.gateway.send_event(paid_out, world.send, world.clock())

    results = run_together(6, work)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert the_event(engine, withdrawal.id).event_type == "withdrawal.succeeded"


# Bill payments.


@pytest.fixture
def bills(engine, ledger):
    return make_bills_world(engine, ledger)


def test_a_confirmed_bill_payment_announces_it_succeeded_once(engine, bills):
    user = bills.user(500_00)
    payment = bills.pay(user, "sandbox_water", ref(), 20_00, key="bill").value
    assert payment.status == "pending" and events(engine, payment.id) == []

    bills.bills.refresh_bill_payment(user, payment.id)
    bills.bills.refresh_bill_payment(user, payment.id)
    assert bills.pay(user, "sandbox_water", payment.customer_reference, 20_00,
                     key="bill").replayed

    event = the_event(engine, payment.id)
    assert (event.event_type, event.aggregate_type) == ("bill_payment.succeeded", "bill_payment")
    assert event.payload == {"payment_id": str(payment.id), "user_id": str(user),
                             "biller_id": "sandbox_water", "amount_minor": "2000",
                             "currency": USD, "failure_code": None}


def test_a_biller_refusal_announces_the_refund(engine, bills):
    user = bills.user(500_00)
    later = bills.pay(user, "sandbox_water", ref("FAIL"), 20_00).value
    at_once = bills.pay(user, "sandbox_mobile_prepaid", ref("NONE"), 15_00).value
    bills.bills.refresh_bill_payment(user, later.id)

    refused_later = the_event(engine, later.id)
    refused_at_once = the_event(engine, at_once.id)
    assert (refused_later.event_type, refused_later.payload["failure_code"]) == (
        "bill_payment.refunded", "biller_rejected")
    assert (refused_at_once.event_type, refused_at_once.payload["failure_code"]) == (
        "bill_payment.refunded", "bill_not_found")


def test_a_bill_payment_the_ledger_refuses_announces_nothing(engine, bills):
    user = bills.user(10_00)
    with pytest.raises(e.InsufficientFunds):
        bills.pay(user, "sandbox_water", ref(), 20_00)
    [payment] = bills.bills.list_bill_payments(user)
    assert payment.status == "failed" and events(engine, payment.id) == []


def test_concurrent_refreshes_announce_one_settlement(engine, bills):
    user = bills.user(100_00)
    confirmed = bills.pay(user, "sandbox_water", ref(), 40_00).value
    failing = bills.pay(user, "sandbox_water", ref("FAIL"), 40_00).value

    run_together(8, lambda i: bills.bills.refresh_bill_payment(user, confirmed.id))
    run_together(8, lambda i: bills.bills.refresh_bill_payment(user, failing.id))

    assert the_event(engine, confirmed.id).event_type == "bill_payment.succeeded"
    assert the_event(engine, failing.id).event_type == "bill_payment.refunded"


# Cashback.


@pytest.fixture
def offers_world(engine, ledger) -> OffersWorld:
    return OffersWorld(engine, ledger, OffersClock())


def test_paid_cashback_is_announced_once(engine, offers_world):
    world = offers_world
    shop = world.merchant(balance_minor=50_00)
    world.merchant_offer(shop, pool_minor=20_00, cashback_bps=500, cap_minor=2_00)
    user = world.user(100_00)
    payload = world.code(shop)

    paid = world.pay(user, payload, 30_00, key="pay")
    world.pay(user, payload, 30_00, key="pay")
    world.offers.reward_qr_payment(paid)

    cashback = world.offers.cashback_of_payment(paid.id)
    event = the_event(engine, cashback.id)
    assert (event.event_type, event.aggregate_type) == ("cashback.credited", "cashback")
    assert event.payload == {"payment_id": str(paid.id), "user_id": str(user),
                             "merchant_id": str(shop.id), "amount_minor": "150",
                             "currency": USD}


def test_concurrent_rewards_of_one_payment_announce_one_cashback(engine, ledger):
    world = OffersWorld(engine, ledger, OffersClock(), on_paid=lambda payment: None)
    shop = world.merchant(balance_minor=50_00)
    world.merchant_offer(shop, pool_minor=50_00, cashback_bps=1000, cap_minor=5_00)
    user = world.user(100_00)
    paid = world.pay(user, world.code(shop), 20_00)

    results = run_together(8, lambda i: world.offers.reward_qr_payment(paid))

    assert len({cashback.id for cashback in results}) == 1, results
    assert the_event(engine, results[0].id).event_type == "cashback.credited"


def test_cashback_an_empty_pool_cannot_pay_is_not_announced(engine, offers_world):
    world = offers_world
    shop = world.merchant()
    world.merchant_offer(shop, cashback_bps=500, cap_minor=2_00)  # nothing in the pool
    user = world.user(100_00)

    paid = world.pay(user, world.code(shop), 30_00)

    cashback = world.offers.cashback_of_payment(paid.id)
    assert cashback.status == "unfunded" and events(engine, cashback.id) == []
    assert world.offers.pool_balance(merchant_funder(shop.id), USD) == 0


# Logins and payout destinations.


PASSWORD = "a long enough password"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # any hash will do here


def sign_up(engine) -> users.User:
    return users.sign_up(engine, email=f"e-{uuid.uuid4().hex[:12]}@example.com", phone=None,
                         password=PASSWORD, write_key=WriteKey(ANONYMOUS, uuid.uuid4().hex),
                         hasher=FAST).value


def test_each_login_announces_its_session(engine):
    user = sign_up(engine)
    at = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

    _, first = sessions.log_in(engine, login=user.email, password=PASSWORD, hasher=FAST, now=at)
    _, second = sessions.log_in(engine, login=user.email, password=PASSWORD, hasher=FAST)

    logins = events(engine, user.id, "user.logged_in")
    assert [row.payload["session_id"] for row in logins] == [str(first.id), str(second.id)]
    assert logins[0].aggregate_type == "user"
    assert logins[0].payload == {"user_id": str(user.id), "session_id": str(first.id),
                                 "logged_in_at": at.isoformat()}


def test_a_failed_login_announces_nothing(engine):
    user = sign_up(engine)
    with pytest.raises(InvalidCredentials):
        sessions.log_in(engine, login=user.email, password="not the password", hasher=FAST)
    assert events(engine, user.id, "user.logged_in") == []


def test_linking_a_bank_account_announces_a_payout_destination_once(engine, funding):
    user = uuid.uuid4()
    link = dict(user_id=user, account_number=magic.BANK_SUCCEEDS,
                routing_number=magic.ROUTING_NUMBER, idempotency_key="link")

    bank = funding.instruments.link_bank_account(**link).value
    assert funding.instruments.link_bank_account(**link).replayed
    funding.card(user)  # a card is a source of funds, not a payout destination

    event = the_event(engine, user)
    assert (event.event_type, event.aggregate_type) == ("payout_destination.added", "user")
    assert event.payload == {"user_id": str(user), "kind": "bank_account",
                             "masked": "•••• 6789", "destination_id": str(bank.id)}


def test_concurrent_links_with_one_key_announce_one_destination(engine, funding):
    user = uuid.uuid4()

    def link(i: int):
        return funding.instruments.link_bank_account(
            user_id=user, account_number=magic.BANK_SUCCEEDS,
            routing_number=magic.ROUTING_NUMBER, idempotency_key="same").value.id

    results = run_together(4, link)

    assert len(set(results)) == 1, results
    assert the_event(engine, user).payload["destination_id"] == str(results[0])
