"""Offers and cashback against the real ledger: pools, rules, once-only cashback, races.

Every offer here is limited to a merchant made for the test (or lives in a fresh
database), so no test's offer rewards another test's payments.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import errors as pe
from pacioli.payments import offer_errors as oe
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.offers import (
    PLATFORM_FUNDER,
    OfferRule,
    Offers,
    merchant_funder,
)
from pacioli.payments.qr_payments import MerchantProfile, QrPayments


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    """Offers wired into QR payments as the API wires them, on one clock."""

    def __init__(self, engine, ledger, clock: Clock, *, on_paid=None) -> None:
        self.engine, self.ledger, self.clock = engine, ledger, clock
        self.chart = Chart(engine, ledger)
        self.offers = Offers(engine, ledger, self.chart, clock=clock)
        scales = {asset.code: asset.scale for asset in ledger.list_assets()}

        def scale_of(code):
            if code not in scales:
                raise e.UnknownAsset(code)
            return scales[code]

        self.qr = QrPayments(engine, ledger, self.chart, scale_of=scale_of, clock=clock,
                             on_paid=on_paid or self.offers.reward_qr_payment)

    def merchant(self, balance_minor: int = 0) -> MerchantProfile:
        merchant = MerchantProfile(uuid.uuid4(), "Cafe Lisboa", "Lisbon", "PT", "5814")
        if balance_minor:
            self._move(Purpose.BANK_SETTLEMENT,
                       self.chart.merchant_balance(merchant.id, "USD"), balance_minor)
        return merchant

    def user(self, balance_minor: int = 1_000_00) -> uuid.UUID:
        user_id = uuid.uuid4()
        self._move(Purpose.BANK_SETTLEMENT, self.chart.wallet(user_id, "USD"), balance_minor)
        return user_id

    def _move(self, source: Purpose, account_id, amount_minor: int) -> None:
        self.ledger.transfer(
            [debit(self.chart.platform(source, "USD"), amount_minor),
             credit(account_id, amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    def code(self, merchant: MerchantProfile) -> str:
        return self.qr.create_code(merchant, currency="USD",
                                   idempotency_key=uuid.uuid4().hex).value.payload

    def merchant_offer(self, merchant: MerchantProfile, pool_minor: int = 0, **rule):
        funder = merchant_funder(merchant.id)
        if pool_minor:
            self.offers.fund_pool(funder, currency="USD", amount_minor=pool_minor,
                                  idempotency_key=uuid.uuid4().hex)
        return self.offers.create_offer(
            funder, OfferRule(**{"currency": "USD", "cashback_bps": 500, "cap_minor": 10_00,
                                 **rule}),
            idempotency_key=uuid.uuid4().hex,
        ).value

    def pay(self, user_id, payload: str, amount_minor: int, key: str | None = None):
        return self.qr.pay(payer_user_id=user_id, payload=payload, amount_minor=amount_minor,
                           idempotency_key=key or uuid.uuid4().hex).value

    def balance(self, account_id) -> int:
        account = self.ledger.get_account(account_id)
        return account.balances.available(account.normal_side)

    def wallet(self, user_id) -> int:
        return self.balance(self.chart.wallet(user_id, "USD"))


@pytest.fixture
def world(engine, ledger) -> World:
    return World(engine, ledger, Clock())


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` on `count` threads started together; results or exceptions."""
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# Cashback is paid once.


def test_a_qualifying_payment_earns_cashback_from_the_merchants_pool_once(world):
    shop = world.merchant(balance_minor=50_00)
    offer = world.merchant_offer(shop, pool_minor=20_00, cashback_bps=500, cap_minor=2_00)
    user = world.user(100_00)
    payload = world.code(shop)

    paid = world.pay(user, payload, 30_00, key="pay-1")
    again = world.pay(user, payload, 30_00, key="pay-1")
    rewarded_again = world.offers.reward_qr_payment(paid)

    cashback = world.offers.cashback_of_payment(paid.id)
    assert again.id == paid.id
    assert (cashback.status, cashback.amount_minor, cashback.offer_id) == ("paid", 1_50, offer.id)
    assert rewarded_again == cashback
    assert world.wallet(user) == 100_00 - 30_00 + 1_50
    assert world.offers.pool_balance(merchant_funder(shop.id), "USD") == 20_00 - 1_50
    # The merchant's balance paid the pool in advance; the payment less fee waits in its
    # pending-settlement account until the settlement run (docs/settlement.md).
    assert world.balance(world.chart.merchant_balance(shop.id, "USD")) == 50_00 - 20_00
    assert world.balance(world.chart.merchant_pending_settlement(shop.id, "USD")) == (
        30_00 - paid.fee_minor)


def test_concurrent_retries_of_one_payment_pay_its_cashback_once(world):
    shop = world.merchant(balance_minor=50_00)
    world.merchant_offer(shop, pool_minor=50_00, cashback_bps=1000, cap_minor=5_00)
    user = world.user(100_00)
    payload = world.code(shop)

    results = run_together(8, lambda i: world.pay(user, payload, 20_00, key="same-key"))

    assert len({payment.id for payment in results}) == 1, results
    assert world.wallet(user) == 100_00 - 20_00 + 2_00
    assert world.offers.pool_balance(merchant_funder(shop.id), "USD") == 48_00


def test_concurrent_reward_calls_for_one_payment_pay_once(engine, ledger):
    # Without the hook, so that the eight calls below are the only claims of the payment.
    world = World(engine, ledger, Clock(), on_paid=lambda payment: None)
    shop = world.merchant(balance_minor=50_00)
    world.merchant_offer(shop, pool_minor=50_00, cashback_bps=1000, cap_minor=5_00,
                         uses_per_user_max=1)
    user = world.user(100_00)
    paid = world.pay(user, world.code(shop), 20_00)

    results = run_together(8, lambda i: world.offers.reward_qr_payment(paid))

    assert len({cashback.id for cashback in results}) == 1, results
    assert world.wallet(user) == 100_00 - 20_00 + 2_00


def test_a_replayed_payment_finishes_a_cashback_the_first_attempt_left_unpaid(engine, ledger):
    clock = Clock()
    # The first attempt records the cashback, then "dies" before moving the money.
    crashed = World(engine, ledger, clock, on_paid=lambda payment: crashed.offers
                    ._claim_cashback(_qualifying(payment)))
    shop = crashed.merchant(balance_minor=10_00)
    crashed.merchant_offer(shop, pool_minor=10_00, cashback_bps=1000, cap_minor=5_00)
    user = crashed.user(100_00)
    payload = crashed.code(shop)
    paid = crashed.pay(user, payload, 20_00, key="pay")
    left = crashed.offers.cashback_of_payment(paid.id)

    restarted = World(engine, ledger, clock)
    restarted.pay(user, payload, 20_00, key="pay")
    restarted.pay(user, payload, 20_00, key="pay")

    assert left.status == "created"
    assert restarted.offers.cashback_of_payment(paid.id).status == "paid"
    assert restarted.wallet(user) == 100_00 - 20_00 + 2_00


def _qualifying(payment):
    from pacioli.payments.offers import QualifyingPayment

    return QualifyingPayment("qr_payment", payment.id, payment.payer_user_id,
                             payment.merchant_id, payment.currency, payment.amount_minor,
                             payment.completed_at)


def test_the_pool_never_goes_negative_under_concurrent_qualifying_payments(world):
    shop = world.merchant(balance_minor=4_50)
    world.merchant_offer(shop, pool_minor=4_50, cashback_bps=1000, cap_minor=1_00)
    users = [world.user(100_00) for _ in range(10)]
    payload = world.code(shop)

    payments = run_together(10, lambda i: world.pay(users[i], payload, 10_00))

    statuses = sorted(world.offers.cashback_of_payment(p.id).status for p in payments)
    assert all(p.status == "succeeded" for p in payments), payments
    assert statuses == ["paid"] * 4 + ["unfunded"] * 6
    assert world.offers.pool_balance(merchant_funder(shop.id), "USD") == 50
    assert sorted(world.wallet(u) for u in users) == [90_00] * 6 + [91_00] * 4


def test_an_empty_pool_pays_no_cashback_and_the_payment_still_succeeds(world):
    shop = world.merchant()
    world.merchant_offer(shop)
    user = world.user(100_00)

    paid = world.pay(user, world.code(shop), 10_00)

    cashback = world.offers.cashback_of_payment(paid.id)
    assert paid.status == "succeeded"
    assert (cashback.status, cashback.failure_code) == ("unfunded", "insufficient_funds")
    assert world.wallet(user) == 90_00


def test_a_failing_extension_point_never_fails_the_payment(engine, ledger):
    def broken(payment):
        raise RuntimeError("the cashback service is down")

    world = World(engine, ledger, Clock(), on_paid=broken)
    shop = world.merchant()
    user = world.user(100_00)

    paid = world.pay(user, world.code(shop), 10_00)

    assert paid.status == "succeeded" and world.wallet(user) == 90_00


# The offer's rules.


def test_a_payment_below_the_minimum_earns_nothing(world):
    shop = world.merchant(balance_minor=10_00)
    world.merchant_offer(shop, pool_minor=10_00, min_payment_minor=25_00)
    user = world.user()
    payload = world.code(shop)

    below = world.pay(user, payload, 24_99)
    at = world.pay(user, payload, 25_00)

    assert world.offers.cashback_of_payment(below.id) is None
    assert world.offers.cashback_of_payment(at.id).amount_minor == 1_25


def test_cashback_is_rounded_down_and_capped_per_payment(world):
    shop = world.merchant(balance_minor=100_00)
    world.merchant_offer(shop, pool_minor=100_00, cashback_bps=333, cap_minor=3_00)
    user = world.user()
    payload = world.code(shop)

    small = world.pay(user, payload, 10_01)  # 3.33% of 10.01 is 0.333333
    large = world.pay(user, payload, 500_00)

    assert world.offers.cashback_of_payment(small.id).amount_minor == 33
    assert world.offers.cashback_of_payment(large.id).amount_minor == 3_00


def test_an_offer_limited_to_one_merchant_does_not_reward_payments_to_another(world):
    shop, other_shop = world.merchant(), world.merchant()
    world.offers.fund_pool(PLATFORM_FUNDER, currency="USD", amount_minor=10_00,
                           idempotency_key=uuid.uuid4().hex)
    world.offers.create_offer(
        PLATFORM_FUNDER,
        OfferRule(currency="USD", cashback_bps=100, cap_minor=1_00, merchant_id=shop.id),
        idempotency_key=uuid.uuid4().hex,
    )
    user = world.user()

    there = world.pay(user, world.code(shop), 10_00)
    elsewhere = world.pay(user, world.code(other_shop), 10_00)

    cashback = world.offers.cashback_of_payment(there.id)
    assert (cashback.status, cashback.funder, cashback.amount_minor) == (
        "paid", PLATFORM_FUNDER, 10)
    assert world.offers.cashback_of_payment(elsewhere.id) is None


def test_only_payments_within_the_validity_window_qualify(world):
    shop = world.merchant(balance_minor=10_00)
    start = world.clock.now + timedelta(hours=1)
    world.merchant_offer(shop, pool_minor=10_00, starts_at=start,
                         ends_at=start + timedelta(hours=1))
    user = world.user()
    payload = world.code(shop)

    early = world.pay(user, payload, 10_00)
    world.clock.now = start
    during = world.pay(user, payload, 10_00)
    world.clock.now = start + timedelta(hours=1)
    late = world.pay(user, payload, 10_00)

    assert world.offers.cashback_of_payment(early.id) is None
    assert world.offers.cashback_of_payment(during.id).status == "paid"
    assert world.offers.cashback_of_payment(late.id) is None
    listed = world.offers.list_offers(funder=merchant_funder(shop.id),
                                      unexpired_at=world.clock.now)
    assert listed == []


def test_an_ended_offer_rewards_no_later_payment(world):
    shop = world.merchant(balance_minor=10_00)
    offer = world.merchant_offer(shop, pool_minor=10_00)
    user = world.user()
    payload = world.code(shop)
    world.clock.now += timedelta(seconds=1)

    ended = world.offers.end_offer(merchant_funder(shop.id), offer.id)
    world.clock.now += timedelta(seconds=1)
    paid = world.pay(user, payload, 10_00)

    assert ended.status == "ended" and ended.ended_at is not None
    assert world.offers.cashback_of_payment(paid.id) is None


def test_a_user_earns_an_offer_at_most_its_uses_per_user(world):
    shop = world.merchant(balance_minor=10_00)
    world.merchant_offer(shop, pool_minor=10_00, uses_per_user_max=2)
    user, other = world.user(), world.user()
    payload = world.code(shop)

    mine = [world.pay(user, payload, 10_00) for _ in range(3)]
    theirs = world.pay(other, payload, 10_00)

    assert [world.offers.cashback_of_payment(p.id) is not None for p in mine] == [
        True, True, False]
    assert world.offers.cashback_of_payment(theirs.id).status == "paid"


def test_concurrent_payments_of_one_user_cannot_both_take_the_last_use(world):
    shop = world.merchant(balance_minor=10_00)
    world.merchant_offer(shop, pool_minor=10_00, uses_per_user_max=1)
    user = world.user()
    payload = world.code(shop)

    payments = run_together(6, lambda i: world.pay(user, payload, 10_00))

    rewarded = [p for p in payments if world.offers.cashback_of_payment(p.id) is not None]
    assert len(rewarded) == 1
    assert world.wallet(user) == 1_000_00 - 60_00 + 50


def test_a_use_that_paid_nothing_is_given_back(world):
    shop = world.merchant(balance_minor=10_00)
    world.merchant_offer(shop, uses_per_user_max=1)
    user = world.user()
    payload = world.code(shop)

    unfunded = world.pay(user, payload, 10_00)
    world.offers.fund_pool(merchant_funder(shop.id), currency="USD", amount_minor=10_00,
                           idempotency_key=uuid.uuid4().hex)
    funded = world.pay(user, payload, 10_00)

    assert world.offers.cashback_of_payment(unfunded.id).status == "unfunded"
    assert world.offers.cashback_of_payment(funded.id).status == "paid"


def test_the_offer_paying_most_wins_then_the_oldest(world):
    shop = world.merchant(balance_minor=30_00)
    funder = merchant_funder(shop.id)
    world.offers.fund_pool(funder, currency="USD", amount_minor=30_00, idempotency_key="f")
    small = world.merchant_offer(shop, cashback_bps=100, cap_minor=10_00)
    big_capped = world.merchant_offer(shop, cashback_bps=2000, cap_minor=1_50)
    world.clock.now += timedelta(seconds=1)
    big_later = world.merchant_offer(shop, cashback_bps=1500, cap_minor=1_50)
    user = world.user()
    payload = world.code(shop)

    big_payment = world.pay(user, payload, 100_00)  # 1.00, 1.50 (capped), 1.50 (capped)
    small_payment = world.pay(user, payload, 5_00)  # 0.05, 1.00, 0.75

    assert world.offers.cashback_of_payment(big_payment.id).offer_id == big_capped.id
    assert world.offers.cashback_of_payment(small_payment.id).offer_id == big_capped.id
    assert small.id != big_later.id


# Pools.


def test_a_merchant_funds_its_pool_from_its_balance_and_a_replay_moves_nothing(world):
    shop = world.merchant(balance_minor=30_00)
    funder = merchant_funder(shop.id)

    first = world.offers.fund_pool(funder, currency="USD", amount_minor=20_00,
                                   idempotency_key="fund-1")
    replay = world.offers.fund_pool(funder, currency="USD", amount_minor=20_00,
                                    idempotency_key="fund-1")

    assert (first.replayed, replay.replayed) == (False, True)
    assert replay.value.id == first.value.id and first.value.status == "succeeded"
    assert world.offers.pool_balance(funder, "USD") == 20_00
    assert world.balance(world.chart.merchant_balance(shop.id, "USD")) == 10_00
    with pytest.raises(pe.IdempotencyKeyReusedForPayment):
        world.offers.fund_pool(funder, currency="USD", amount_minor=5_00,
                               idempotency_key="fund-1")


def test_a_merchant_cannot_fund_its_pool_beyond_its_balance(world):
    shop = world.merchant(balance_minor=5_00)
    funder = merchant_funder(shop.id)

    with pytest.raises(e.InsufficientFunds):
        world.offers.fund_pool(funder, currency="USD", amount_minor=5_01,
                               idempotency_key="too-much")
    with pytest.raises(e.InsufficientFunds):  # a replay answers the same
        world.offers.fund_pool(funder, currency="USD", amount_minor=5_01,
                               idempotency_key="too-much")

    assert world.offers.pool_balance(funder, "USD") == 0
    assert world.balance(world.chart.merchant_balance(shop.id, "USD")) == 5_00


def test_the_platform_funds_its_pool_from_its_bank_account(world):
    before = world.offers.pool_balance(PLATFORM_FUNDER, "USD")
    bank = world.chart.platform(Purpose.BANK_SETTLEMENT, "USD")
    bank_before = world.balance(bank)

    world.offers.fund_pool(PLATFORM_FUNDER, currency="USD", amount_minor=7_00,
                           idempotency_key=uuid.uuid4().hex)

    assert world.offers.pool_balance(PLATFORM_FUNDER, "USD") == before + 7_00
    assert world.balance(bank) == bank_before + 7_00  # debit-normal: money now earmarked


# Bad offers.


@pytest.mark.parametrize(
    "rule",
    [
        {"cashback_bps": 0},
        {"cashback_bps": 10_001},
        {"cap_minor": 0},
        {"min_payment_minor": -1},
        {"uses_per_user_max": 0},
        {"description": "x" * 201},
    ],
)
def test_a_malformed_rule_is_refused_and_nothing_is_recorded(world, rule):
    shop = world.merchant()
    funder = merchant_funder(shop.id)

    with pytest.raises(oe.InvalidOffer):
        world.merchant_offer(shop, **rule)

    assert world.offers.list_offers(funder=funder) == []


def test_an_offer_must_end_after_it_starts_and_a_merchant_rewards_only_its_own_payments(world):
    shop, other_shop = world.merchant(), world.merchant()
    now = world.clock.now

    with pytest.raises(oe.InvalidOffer):
        world.merchant_offer(shop, starts_at=now, ends_at=now)
    with pytest.raises(oe.InvalidOffer):
        world.merchant_offer(shop, merchant_id=other_shop.id)
    with pytest.raises(e.UnknownAsset):
        world.merchant_offer(shop, currency="XXX")


def test_creating_an_offer_twice_with_one_key_replays_and_another_body_is_refused(world):
    shop = world.merchant()
    funder = merchant_funder(shop.id)
    rule = OfferRule(currency="USD", cashback_bps=100, cap_minor=1_00)

    first = world.offers.create_offer(funder, rule, idempotency_key="offer-1")
    again = world.offers.create_offer(funder, rule, idempotency_key="offer-1")

    assert again.replayed and again.value == first.value
    assert first.value.merchant_id == shop.id
    with pytest.raises(pe.IdempotencyKeyReusedForPayment):
        world.offers.create_offer(funder, OfferRule(currency="USD", cashback_bps=200,
                                                    cap_minor=1_00), idempotency_key="offer-1")
    with pytest.raises(oe.OfferNotFound):
        world.offers.end_offer(merchant_funder(uuid.uuid4()), first.value.id)


# A world of its own: an offer for every merchant, and the ledger check.


def test_a_platform_offer_for_every_merchant_and_the_ledger_stays_balanced(fresh_database_url):
    engine = make_engine(fresh_database_url)
    try:
        with Ledger(engine) as ledger:
            world = World(engine, ledger, Clock())
            world.offers.fund_pool(PLATFORM_FUNDER, currency="USD", amount_minor=3_00,
                                   idempotency_key="platform-fund")
            world.offers.create_offer(
                PLATFORM_FUNDER, OfferRule(currency="USD", cashback_bps=1000, cap_minor=1_00),
                idempotency_key="everywhere",
            )
            users = [world.user(50_00) for _ in range(5)]
            shops = [world.merchant() for _ in range(5)]
            payloads = [world.code(shop) for shop in shops]

            payments = run_together(5, lambda i: world.pay(users[i], payloads[i], 20_00))

            statuses = sorted(world.offers.cashback_of_payment(p.id).status for p in payments)
            pool = world.offers.pool_balance(PLATFORM_FUNDER, "USD")
            report = check_ledger(engine)
    finally:
        engine.dispose()

    assert statuses == ["paid"] * 3 + ["unfunded"] * 2
    assert pool == 0
    assert report.clean, report.to_dict()


def test_the_offers_migration_downgrades_and_upgrades_again(fresh_database_url):
    from alembic import command
    from sqlalchemy import inspect

    from pacioli.ledger.storage.migrate import alembic_config, upgrade

    tables = {"offers", "offer_uses", "promotion_fundings", "cashbacks"}
    engine = make_engine(fresh_database_url, pool_size=1)
    try:
        assert tables <= set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(fresh_database_url), "0007@0001")
        assert not tables & set(inspect(engine).get_table_names())
        assert "accounts" in inspect(engine).get_table_names()
        upgrade(fresh_database_url)
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
