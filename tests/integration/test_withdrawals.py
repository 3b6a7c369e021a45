"""Withdrawals against the real ledger and the sandbox processor: payouts that succeed or
fail, callbacks twice and out of order, concurrent withdrawals from one wallet, replays,
and a clean ledger check afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

import pytest
from sqlalchemy import Engine

from pacioli.gateways.sandbox import magic
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain.errors import InsufficientFunds
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import funding_errors as fe
from pacioli.payments.chart import Purpose
from pacioli.payments.identity_errors import SecondFactorRequired
from pacioli.payments.topups import register_funding_handlers
from pacioli.payments.withdrawals import Withdrawals
from tests.integration.test_topups import World, make_world, run_together


class Payouts:
    """The topups World, with withdrawals and a way to fund a wallet."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.withdrawals = Withdrawals(world.engine, world.ledger, world.chart, world.gateway)

    def user(self, funds_minor: int = 100_00) -> UUID:
        user_id = uuid.uuid4()
        chart = self.world.chart
        self.world.ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), funds_minor),
             credit(chart.wallet(user_id, "USD"), funds_minor)],
            idempotency_key=uuid.uuid4().hex,
        )
        return user_id

    def withdraw(self, user_id: UUID, bank_id: UUID, amount_minor: int = 40_00, *,
                 key: str | None = None, code: str | None = None):
        return self.withdrawals.create(
            user_id=user_id, bank_account_id=bank_id, amount_minor=amount_minor,
            currency="USD", idempotency_key=key or uuid.uuid4().hex, one_time_code=code,
        )

    def wallet(self, user_id: UUID) -> tuple[int, int]:
        """(available, posted) of the user's wallet."""
        account = self.world.ledger.get_account(self.world.chart.wallet(user_id, "USD"))
        b = account.balances
        return b.available(account.normal_side), b.net_posted(account.normal_side)


@pytest.fixture
def payouts(engine, ledger) -> Iterator[Payouts]:
    world = make_world(engine, ledger)
    unregister = register_funding_handlers(engine, ledger, world.chart, world.gateway,
                                           registry=world.registry)
    yield Payouts(world)
    unregister()


def test_a_paid_out_withdrawal_holds_then_posts_on_the_callback(payouts):
    world = payouts.world
    user = payouts.user(100_00)
    withdrawal = payouts.withdraw(user, world.bank(user), 40_00).value
    assert withdrawal.status == "pending"
    assert withdrawal.gateway_reference.startswith("po_")
    assert payouts.wallet(user) == (60_00, 100_00)  # held, not yet taken

    world.clock.advance(3)
    world.deliver(withdrawal.gateway_reference)
    world.deliver(withdrawal.gateway_reference)  # a duplicate changes nothing

    assert payouts.withdrawals.get(user, withdrawal.id).status == "succeeded"
    assert payouts.wallet(user) == (60_00, 60_00)


def test_a_failed_payout_releases_the_funds(payouts):
    world = payouts.world
    user = payouts.user(100_00)
    withdrawal = payouts.withdraw(user, world.bank(user, magic.BANK_ACCOUNT_CLOSED)).value
    world.clock.advance(3)
    world.deliver(withdrawal.gateway_reference)
    settled = payouts.withdrawals.get(user, withdrawal.id)
    assert (settled.status, settled.failure_code) == ("failed", "account_closed")
    assert payouts.wallet(user) == (100_00, 100_00)


def test_a_payout_settles_by_refresh_without_a_callback(payouts):
    world = payouts.world
    user = payouts.user()
    withdrawal = payouts.withdraw(user, world.bank(user, magic.BANK_DELAYED)).value
    world.clock.advance(3)
    assert payouts.withdrawals.refresh(user, withdrawal.id).status == "pending"
    world.clock.advance(world.gateway.settings.delayed_seconds)
    assert payouts.withdrawals.refresh(user, withdrawal.id).status == "succeeded"
    assert payouts.wallet(user) == (60_00, 60_00)


def test_a_stale_duplicate_after_settlement_changes_nothing(payouts):
    world = payouts.world
    user = payouts.user()
    withdrawal = payouts.withdraw(user, world.bank(user)).value
    world.clock.advance(3)
    assert payouts.withdrawals.refresh(user, withdrawal.id).status == "succeeded"
    world.deliver(withdrawal.gateway_reference, order=lambda ids: ids * 3)
    assert payouts.wallet(user) == (60_00, 60_00)


def test_insufficient_funds_fail_before_anything_moves_and_a_replay_fails_alike(payouts):
    world = payouts.world
    user = payouts.user(10_00)
    bank = world.bank(user)
    with pytest.raises(InsufficientFunds):
        payouts.withdraw(user, bank, 10_01, key="w1")
    with pytest.raises(InsufficientFunds):
        payouts.withdraw(user, bank, 10_01, key="w1")
    [failed] = payouts.withdrawals.list(user)
    assert (failed.status, failed.failure_code, failed.gateway_reference) == (
        "failed", "insufficient_funds", None)
    assert payouts.wallet(user) == (10_00, 10_00)


def test_concurrent_withdrawals_cannot_overdraw_one_wallet(payouts):
    world = payouts.world
    user = payouts.user(100_00)
    bank = world.bank(user)
    results = run_together(8, lambda i: payouts.withdraw(user, bank, 30_00).value.status)
    assert sorted(r if isinstance(r, str) else type(r).__name__ for r in results) == (
        ["InsufficientFunds"] * 5 + ["pending"] * 3)
    assert payouts.wallet(user) == (10_00, 100_00)


def test_a_retry_with_the_same_key_pays_out_once(payouts):
    world = payouts.world
    user = payouts.user()
    bank = world.bank(user)
    results = run_together(4, lambda i: payouts.withdraw(user, bank, key="same").value.id)
    assert len(set(results)) == 1, results
    with pytest.raises(fe.IdempotencyKeyReusedForFunding):
        payouts.withdraw(user, bank, 1_00, key="same")
    assert payouts.wallet(user) == (60_00, 100_00)


def test_above_the_threshold_a_withdrawal_needs_a_second_factor(payouts):
    world = payouts.world
    user = payouts.user(2_000_00)
    with pytest.raises(SecondFactorRequired):
        payouts.withdraw(user, world.bank(user), 1_000_01)
    assert payouts.withdrawals.list(user) == []
    assert payouts.wallet(user) == (2_000_00, 2_000_00)


def test_bad_requests_are_refused_and_record_nothing(payouts):
    world = payouts.world
    user, other = payouts.user(), payouts.user()
    bank, card = world.bank(user), world.card(user)
    with pytest.raises(fe.InvalidFundingRequest):
        payouts.withdraw(user, bank, -1)
    with pytest.raises(fe.InstrumentNotFound):
        payouts.withdraw(user, card)  # a card is not a payout destination
    with pytest.raises(fe.InstrumentNotFound):
        payouts.withdraw(other, bank)
    world.instruments.remove(user, bank, "bank_account")
    with pytest.raises(fe.InstrumentRemoved):
        payouts.withdraw(user, bank)
    assert payouts.withdrawals.list(user) == []
    with pytest.raises(fe.WithdrawalNotFound):
        payouts.withdrawals.get(other, uuid.uuid4())


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=10)
    yield engine
    engine.dispose()


def test_the_ledger_check_is_clean_after_every_kind_of_withdrawal(fresh_engine):
    with Ledger(fresh_engine) as ledger:
        world = make_world(fresh_engine, ledger)
        register_funding_handlers(fresh_engine, ledger, world.chart, world.gateway,
                                  registry=world.registry)
        payouts = Payouts(world)
        user = payouts.user(100_00)
        made = [payouts.withdraw(user, world.bank(user, number), 20_00).value
                for number in (magic.BANK_SUCCEEDS, magic.BANK_ACCOUNT_CLOSED,
                               magic.BANK_INSUFFICIENT_FUNDS, magic.BANK_DELAYED)]
        with pytest.raises(InsufficientFunds):
            payouts.withdraw(user, world.bank(user), 30_00)
        world.clock.advance(3)
        for withdrawal in made:
            world.deliver(withdrawal.gateway_reference)
        statuses = [payouts.withdrawals.get(user, w.id).status for w in made]
        balances = payouts.wallet(user)
        report = check_ledger(fresh_engine)

    assert statuses == ["succeeded", "failed", "succeeded", "pending"]
    assert balances == (40_00, 60_00)
    assert report.clean, report.to_dict()


def test_a_sweep_settles_unsettled_withdrawals(payouts):
    world = payouts.world
    user = payouts.user()
    withdrawal = payouts.withdraw(user, world.bank(user)).value
    world.clock.advance(3)
    payouts.withdrawals.refresh_unsettled(limit=200)
    assert payouts.withdrawals.get(user, withdrawal.id).status == "succeeded"


def test_an_unreachable_gateway_leaves_the_funds_held_until_a_refresh_gets_through(payouts):
    world = payouts.world
    user = payouts.user()
    withdrawal = payouts.withdraw(user, world.bank(user), magic.AMOUNT_UNAVAILABLE).value
    assert (withdrawal.status, withdrawal.gateway_reference) == ("pending", None)
    assert payouts.withdrawals.refresh(user, withdrawal.id).status == "pending"
    assert payouts.wallet(user) == (100_00 - magic.AMOUNT_UNAVAILABLE, 100_00)
