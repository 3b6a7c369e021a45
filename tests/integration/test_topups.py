"""Top-ups against the real ledger and the sandbox processor: every magic card and bank
account, callbacks twice and out of order, refreshes racing callbacks, replays, and a
clean ledger check afterwards."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine

from pacioli.gateways.callbacks import HandlerRegistry, record_callback
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.ledger import Ledger
from pacioli.ledger.domain.errors import UnknownAsset
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import funding_errors as fe
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.instruments import Instruments
from pacioli.payments.topups import TopUps, register_funding_handlers

SECRET = "whsec_funding_integration"


@dataclass
class Clock:
    """The sandbox's clock, moved forward by the test."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    engine: Engine
    ledger: Ledger
    chart: Chart
    clock: Clock
    gateway: SandboxGateway
    registry: HandlerRegistry
    instruments: Instruments
    topups: TopUps

    def card(self, user_id: UUID, number: str = magic.CARD_SUCCEEDS) -> UUID:
        return self.instruments.link_card(
            user_id=user_id, number=number, exp_month=12, exp_year=2040, cvc="123",
            idempotency_key=uuid.uuid4().hex,
        ).value.id

    def bank(self, user_id: UUID, number: str = magic.BANK_SUCCEEDS) -> UUID:
        return self.instruments.link_bank_account(
            user_id=user_id, account_number=number, routing_number=magic.ROUTING_NUMBER,
            idempotency_key=uuid.uuid4().hex,
        ).value.id

    def top_up(self, user_id: UUID, instrument_id: UUID, amount_minor: int = 25_00, *,
               key: str | None = None, currency: str = "USD"):
        return self.topups.create(
            user_id=user_id, instrument_id=instrument_id, amount_minor=amount_minor,
            currency=currency, idempotency_key=key or uuid.uuid4().hex,
        )

    def balances(self, user_id: UUID, currency: str = "USD") -> tuple[int, int]:
        """(available, pending credits) of the user's wallet."""
        account = self.ledger.get_account(self.chart.wallet(user_id, currency))
        return account.balances.available(account.normal_side), account.balances.credits_pending

    def clearing(self, currency: str = "USD") -> int:
        account_id = self.chart.platform(Purpose.PROCESSOR_CLEARING, currency, scope="sandbox")
        account = self.ledger.get_account(account_id)
        return account.balances.net_posted(account.normal_side)

    def send(self, url: str, body: bytes, headers) -> int:
        try:
            record_callback(self.engine, "sandbox", headers, body, SECRET, self.clock(),
                            registry=self.registry)
        except Exception:  # noqa: BLE001 - a failed handler is a 500 to the gateway
            return 500
        return 200

    def events(self, reference: str) -> list[str]:
        """The event ids queued for a gateway object, after applying due outcomes."""
        self.gateway.apply_due_outcomes(self.clock())
        return [event.event_id for event in self.gateway.events_for(reference)]

    def deliver(self, reference: str, order: Callable[[list[str]], list[str]] = list) -> None:
        for event_id in order(self.events(reference)):
            assert self.gateway.send_event(event_id, self.send, self.clock()) == 200


def make_world(engine: Engine, ledger: Ledger) -> World:
    clock = Clock()
    settings = SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET)
    gateway = SandboxGateway(engine, settings, clock=clock)
    chart = Chart(engine, ledger)
    return World(engine, ledger, chart, clock, gateway, HandlerRegistry(),
                 Instruments(engine, gateway), TopUps(engine, ledger, chart, gateway))


@pytest.fixture
def world(engine, ledger) -> Iterator[World]:
    world = make_world(engine, ledger)
    unregister = register_funding_handlers(engine, ledger, world.chart, world.gateway,
                                           registry=world.registry)
    yield world
    unregister()


def new_user() -> UUID:
    return uuid.uuid4()


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
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


# Cards.


def test_a_good_card_is_authorized_captured_and_credited_at_once(world):
    user = new_user()
    clearing_before = world.clearing()
    topup = world.top_up(user, world.card(user), 25_00).value
    assert (topup.status, topup.failure_code) == ("succeeded", None)
    assert topup.gateway_reference.startswith("pay_")
    assert world.balances(user) == (25_00, 0)
    assert world.clearing() - clearing_before == 25_00
    assert world.gateway.fetch_status(topup.gateway_reference).status == "captured"


@pytest.mark.parametrize(("number", "failure_code"), [
    (magic.CARD_DECLINED, "card_declined"),
    (magic.CARD_INSUFFICIENT_FUNDS, "insufficient_funds"),
    (magic.CARD_EXPIRED, "expired_card"),
    (magic.CARD_PROCESSING_ERROR, "processing_error"),
])
def test_a_declined_or_failed_card_voids_the_hold(world, number, failure_code):
    user = new_user()
    topup = world.top_up(user, world.card(user, number)).value
    assert (topup.status, topup.failure_code) == ("failed", failure_code)
    assert topup.settlement_transfer_id is not None
    assert world.balances(user) == (0, 0)


def test_a_3ds_card_stays_pending_until_the_callback_then_is_captured_once(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_ASYNC_SUCCEEDS)).value
    assert topup.status == "pending"
    assert world.balances(user) == (0, 25_00)  # a pending credit is not spendable

    world.clock.advance(3)
    world.deliver(topup.gateway_reference)  # payment.authorized: the handler captures
    world.deliver(topup.gateway_reference)  # and every event again: nothing more

    assert world.topups.get(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)
    assert world.gateway.fetch_status(topup.gateway_reference).status == "captured"


def test_a_3ds_card_declined_later_voids_the_hold_on_the_callback(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_ASYNC_DECLINED)).value
    world.clock.advance(3)
    world.deliver(topup.gateway_reference)
    settled = world.topups.get(user, topup.id)
    assert (settled.status, settled.failure_code) == ("failed", "card_declined")
    assert world.balances(user) == (0, 0)


def test_the_timeout_card_ends_by_a_refresh_after_the_processors_deadline(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_TIMEOUT)).value
    assert world.topups.refresh(user, topup.id).status == "pending"
    assert world.events(topup.gateway_reference) == []  # the timeout card never calls back

    world.clock.advance(world.gateway.settings.authorization_timeout_seconds + 1)
    refreshed = world.topups.refresh(user, topup.id)

    assert (refreshed.status, refreshed.failure_code) == ("failed", "timeout")
    assert world.balances(user) == (0, 0)


def test_a_later_event_first_then_the_earlier_one_does_not_move_the_top_up_back(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_ASYNC_SUCCEEDS)).value
    world.clock.advance(3)
    # The processor authorizes, and a capture (by a refresh) makes the second event.
    assert world.topups.refresh(user, topup.id).status == "succeeded"
    authorized, captured = world.events(topup.gateway_reference)
    assert world.gateway.send_event(captured, world.send, world.clock()) == 200
    assert world.gateway.send_event(authorized, world.send, world.clock()) == 200
    assert world.topups.get(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)


def test_a_captured_callback_before_the_authorized_one_credits_once(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_ASYNC_SUCCEEDS)).value
    world.clock.advance(3)
    world.gateway.apply_due_outcomes(world.clock())
    # Capture behind the flow's back with the flow's own key, as a crashed capture would.
    world.gateway.capture(topup.gateway_reference, idempotency_key=f"topup:{topup.id}:capture")
    world.deliver(topup.gateway_reference, order=lambda ids: list(reversed(ids)))
    assert world.topups.get(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)


def test_concurrent_refreshes_and_callbacks_credit_once(world):
    user = new_user()
    topup = world.top_up(user, world.card(user, magic.CARD_ASYNC_SUCCEEDS)).value
    world.clock.advance(3)
    world.gateway.apply_due_outcomes(world.clock())
    [authorized] = world.events(topup.gateway_reference)

    def work(i: int):
        if i % 2:
            return world.topups.refresh(user, topup.id).status
        return world.gateway.send_event(authorized, world.send, world.clock())

    results = run_together(6, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert world.topups.get(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)


def test_a_gateway_that_does_not_answer_leaves_the_top_up_pending_without_credit(world):
    user = new_user()
    topup = world.top_up(user, world.card(user), magic.AMOUNT_UNAVAILABLE).value
    assert (topup.status, topup.gateway_reference) == ("pending", None)
    assert world.topups.refresh(user, topup.id).status == "pending"
    assert world.balances(user) == (0, magic.AMOUNT_UNAVAILABLE)


# Bank accounts.


def test_a_bank_debit_is_pending_until_the_callback_then_credited(world):
    user = new_user()
    topup = world.top_up(user, world.bank(user)).value
    assert topup.status == "pending"
    world.clock.advance(3)
    world.deliver(topup.gateway_reference)
    world.deliver(topup.gateway_reference)
    assert world.topups.get(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)


@pytest.mark.parametrize(("number", "failure_code"), [
    (magic.BANK_ACCOUNT_CLOSED, "account_closed"),
    (magic.BANK_INSUFFICIENT_FUNDS, "insufficient_funds"),
])
def test_a_failed_bank_debit_voids_the_hold(world, number, failure_code):
    user = new_user()
    topup = world.top_up(user, world.bank(user, number)).value
    world.clock.advance(3)
    world.deliver(topup.gateway_reference)
    settled = world.topups.get(user, topup.id)
    assert (settled.status, settled.failure_code) == ("failed", failure_code)
    assert world.balances(user) == (0, 0)


def test_a_slow_bank_debit_stays_pending_until_its_day_comes(world):
    user = new_user()
    topup = world.top_up(user, world.bank(user, magic.BANK_DELAYED)).value
    world.clock.advance(3)
    assert world.topups.refresh(user, topup.id).status == "pending"
    world.clock.advance(world.gateway.settings.delayed_seconds)
    assert world.topups.refresh(user, topup.id).status == "succeeded"
    assert world.balances(user) == (25_00, 0)


# Requests.


def test_a_retry_with_the_same_key_replays_and_another_body_is_refused(world):
    user = new_user()
    card = world.card(user)
    first = world.top_up(user, card, 10_00, key="k1")
    again = world.top_up(user, card, 10_00, key="k1")
    assert (again.value.id, again.replayed, first.replayed) == (first.value.id, True, False)
    with pytest.raises(fe.IdempotencyKeyReusedForFunding):
        world.top_up(user, card, 11_00, key="k1")
    assert world.balances(user) == (10_00, 0)


def test_concurrent_requests_with_one_key_charge_and_credit_once(world):
    user = new_user()
    card = world.card(user)
    results = run_together(5, lambda i: world.top_up(user, card, 7_00, key="same").value.id)
    assert len(set(results)) == 1, results
    assert world.balances(user) == (7_00, 0)


def test_bad_requests_are_refused_and_record_nothing(world):
    user, other = new_user(), new_user()
    card = world.card(user)
    with pytest.raises(fe.InvalidFundingRequest):
        world.top_up(user, card, 0)
    with pytest.raises(UnknownAsset):
        world.top_up(user, card, currency="XXX")
    with pytest.raises(fe.InstrumentNotFound):
        world.top_up(other, card)
    world.instruments.remove(user, card, "card")
    with pytest.raises(fe.InstrumentRemoved):
        world.top_up(user, card)
    assert world.topups.list(user) == []
    with pytest.raises(fe.TopUpNotFound):
        world.topups.get(other, uuid.uuid4())


def test_a_sweep_settles_unsettled_top_ups(world):
    user = new_user()
    topup = world.top_up(user, world.bank(user)).value
    world.clock.advance(3)
    world.topups.refresh_unsettled(limit=200)
    assert world.topups.get(user, topup.id).status == "succeeded"


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=10)
    yield engine
    engine.dispose()


def test_the_ledger_check_is_clean_after_every_kind_of_top_up(fresh_engine):
    with Ledger(fresh_engine) as ledger:
        world = make_world(fresh_engine, ledger)
        register_funding_handlers(fresh_engine, ledger, world.chart, world.gateway,
                                  registry=world.registry)
        user = new_user()
        cards = [magic.CARD_SUCCEEDS, magic.CARD_DECLINED, magic.CARD_PROCESSING_ERROR,
                 magic.CARD_ASYNC_SUCCEEDS, magic.CARD_ASYNC_DECLINED, magic.CARD_TIMEOUT]
        made = [world.top_up(user, world.card(user, number), 10_00).value for number in cards]
        made += [world.top_up(user, world.bank(user, number), 10_00).value
                 for number in (magic.BANK_SUCCEEDS, magic.BANK_ACCOUNT_CLOSED)]
        world.clock.advance(31)
        for topup in made:
            if topup.gateway_reference:
                world.deliver(topup.gateway_reference)
        statuses = [world.topups.refresh(user, t.id).status for t in made]
        balances = world.balances(user)
        report = check_ledger(fresh_engine)

    assert statuses == ["succeeded", "failed", "failed", "succeeded", "failed", "failed",
                        "succeeded", "failed"]
    assert balances == (30_00, 0)
    assert report.clean, report.to_dict()


def test_a_frozen_wallet_fails_the_top_up_before_the_card_is_charged(world):
    user = new_user()
    card = world.card(user)
    world.ledger.freeze_account(world.chart.wallet(user, "USD"), idempotency_key=uuid.uuid4().hex)
    topup = world.top_up(user, card).value
    assert (topup.status, topup.failure_code) == ("failed", "account_frozen")
    assert (topup.hold_transfer_id, topup.gateway_reference) == (None, None)


def test_concurrent_links_with_one_key_keep_one_card(world):
    user = new_user()

    def link(i: int) -> UUID:
        return world.instruments.link_card(
            user_id=user, number=magic.CARD_SUCCEEDS, exp_month=12, exp_year=2040, cvc="123",
            idempotency_key="link-once",
        ).value.id

    results = run_together(4, link)
    assert len(set(results)) == 1, results
    assert [card.id for card in world.instruments.list(user, "card")] == results[:1]


# The migration.


def test_the_funding_migration_downgrades_and_upgrades_again(fresh_database_url):
    from alembic import command
    from sqlalchemy import inspect

    from pacioli.ledger.storage.migrate import alembic_config, upgrade

    tables = {"funding_instruments", "topups", "withdrawals"}
    engine = make_engine(fresh_database_url, pool_size=1)
    try:
        assert tables <= set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(fresh_database_url), "0006@0001")
        assert not tables & set(inspect(engine).get_table_names())
        assert "accounts" in inspect(engine).get_table_names()
        upgrade(fresh_database_url)
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
