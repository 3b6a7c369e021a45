"""Merchant settlement against the real ledger and the sandbox processor: T+0 and T+1
cutoffs, reports that add up, payouts that succeed or fail, crashes at every step,
concurrent runs, several currencies, and a clean ledger check afterwards."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, select

from pacioli.gateways.callbacks import HandlerRegistry, record_callback
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.gateways.sandbox.tables import requests as sandbox_requests
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import merchants, users
from pacioli.payments import settlement_errors as se
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.identity_idempotency import ANONYMOUS, WriteKey
from pacioli.payments.qr_payments import MerchantProfile, QrPayments
from pacioli.payments.qr_refunds import QrRefunds
from pacioli.payments.settlement import (
    FAULT_POINTS,
    Settlement,
    SettlementBatch,
    register_settlement_handler,
)
from pacioli.payments.settlement_accounts import bank_details, set_settlement_account
from pacioli.payments.settlement_tables import settlement_batches, settlement_items

SECRET = "whsec_settlement_integration"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
DAY = datetime(2026, 11, 20, tzinfo=UTC)  # a UTC midnight in the past
SCALES = {"USD": 2, "EUR": 2, "INR": 2, "JPY": 0}


class Crash(BaseException):
    """A simulated death of the process: not an Exception, so nothing catches it."""


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: DAY + timedelta(hours=10))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    engine: Engine
    ledger: Ledger
    chart: Chart
    clock: Clock
    gateway: SandboxGateway
    registry: HandlerRegistry
    qr: QrPayments
    refunds: QrRefunds

    def settlement(self, **options) -> Settlement:
        return Settlement(self.engine, self.ledger, self.chart, self.gateway, **options)

    def merchant(self, account_number: str | None = magic.BANK_SUCCEEDS, *,
                 iban: str | None = None) -> MerchantProfile:
        """A registered merchant with a settlement account (unless none is given)."""
        owner = users.sign_up(
            self.engine, email=f"s-{uuid.uuid4().hex[:12]}@example.com", phone=None,
            password="a long enough password", write_key=WriteKey(ANONYMOUS, uuid.uuid4().hex),
            hasher=FAST,
        ).value
        registered = merchants.register_merchant(
            self.engine, name="Corner Shop", owner_user_id=owner.id, approved=True,
            write_key=WriteKey(ANONYMOUS, uuid.uuid4().hex),
        ).value.merchant
        if account_number is not None or iban is not None:
            details = bank_details(
                account_holder="Corner Shop", iban=iban, account_number=account_number,
                routing_number=None if iban else magic.ROUTING_NUMBER,
            )
            set_settlement_account(self.engine, registered.id, owner_user_id=owner.id,
                                   details=details, one_time_code=None, gateway=self.gateway)
        return MerchantProfile(registered.id, "Corner Shop", "Lisbon", "PT", "5411")

    def pay(self, merchant: MerchantProfile, amount_minor: int, *, currency: str = "USD",
            at: datetime | None = None):
        """A payer pays the merchant's static code at `at` (the clock's time if None)."""
        if at is not None:
            self.clock.now = at
        payer = uuid.uuid4()
        self.ledger.transfer(
            [debit(self.chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
             credit(self.chart.wallet(payer, currency), amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )
        code = self.qr.create_code(merchant, currency=currency,
                                   idempotency_key=uuid.uuid4().hex).value
        return self.qr.pay(payer_user_id=payer, payload=code.payload,
                           amount_minor=amount_minor, idempotency_key=uuid.uuid4().hex).value

    def balance(self, account_id: UUID) -> tuple[int, int]:
        """(posted, available) of an account, on its normal side."""
        account = self.ledger.get_account(account_id)
        b = account.balances
        return b.net_posted(account.normal_side), b.available(account.normal_side)

    def pending_settlement(self, merchant: MerchantProfile, currency: str = "USD") -> int:
        return self.balance(self.chart.merchant_pending_settlement(merchant.id, currency))[0]

    def merchant_balance(self, merchant: MerchantProfile, currency: str = "USD"):
        return self.balance(self.chart.merchant_balance(merchant.id, currency))

    def batches(self, merchant: MerchantProfile) -> list[SettlementBatch]:
        return list(reversed(self.settlement().list(merchant.id)))

    def send(self, url: str, body: bytes, headers) -> int:
        try:
            record_callback(self.engine, "sandbox", headers, body, SECRET, self.clock(),
                            registry=self.registry)
        except Exception:  # noqa: BLE001 - a failed handler is a 500 to the gateway
            return 500
        return 200

    def deliver(self, reference: str) -> None:
        """Apply the payout's outcome and deliver its callbacks (twice: a duplicate)."""
        self.gateway.apply_due_outcomes(self.clock() + timedelta(days=2))
        for _ in range(2):
            for event in self.gateway.events_for(reference):
                assert self.gateway.send_event(event.event_id, self.send, self.clock()) == 200

    def events(self, aggregate_id: UUID) -> list[tuple[str, dict]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.event_type, outbox.c.payload)
                .where(outbox.c.aggregate_id == str(aggregate_id)).order_by(outbox.c.id)
            ).all()
        return [(row.event_type, row.payload) for row in rows]


def make_world(engine: Engine, ledger: Ledger) -> World:
    """Everything on one clock; the sandbox decides payouts at once (no delay)."""
    clock = Clock()
    gateway = SandboxGateway(
        engine, SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET,
                                async_delay_seconds=0),
        clock=clock,
    )
    chart = Chart(engine, ledger)
    qr = QrPayments(engine, ledger, chart, scale_of=SCALES.__getitem__, clock=clock)
    return World(engine, ledger, chart, clock, gateway, HandlerRegistry(), qr,
                 QrRefunds(engine, ledger, chart, clock=clock))


@pytest.fixture
def world(engine, ledger) -> Iterator[World]:
    world = make_world(engine, ledger)
    unregister = register_settlement_handler(engine, ledger, world.chart, world.gateway,
                                             registry=world.registry)
    yield world
    unregister()


def mine(batches: list[SettlementBatch], merchant: MerchantProfile) -> list[SettlementBatch]:
    return [batch for batch in batches if batch.merchant_id == merchant.id]


# Cutoffs.


def test_t_plus_one_settles_a_days_payments_on_the_next_utc_day(world):
    shop = world.merchant()
    first = world.pay(shop, 10_00, at=DAY + timedelta(hours=1))
    second = world.pay(shop, 20_00, at=DAY + timedelta(hours=23, minutes=59))
    assert world.pending_settlement(shop) == 30_00 - first.fee_minor - second.fee_minor
    settlement = world.settlement(cycle_days=1)

    same_day = settlement.run_cycle(DAY + timedelta(hours=23, minutes=59, seconds=59))
    next_day = settlement.run_cycle(DAY + timedelta(days=1, seconds=1))

    assert mine(same_day, shop) == []
    [batch] = mine(next_day, shop)
    assert (batch.item_count, batch.gross_minor, batch.status) == (2, 30_00, "payout_pending")
    assert batch.cutoff_at == DAY + timedelta(days=1)
    assert batch.payout_reference.startswith("po_")
    assert world.pending_settlement(shop) == 0
    # Moved to the merchant's balance and held there for the payout.
    assert world.merchant_balance(shop) == (batch.net_minor, 0)


def test_t_plus_one_leaves_todays_payments_for_tomorrow(world):
    shop = world.merchant()
    world.pay(shop, 10_00, at=DAY + timedelta(hours=3))
    late = world.pay(shop, 5_00, at=DAY + timedelta(days=1, hours=2))
    settlement = world.settlement(cycle_days=1)

    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1, hours=5)), shop)

    assert (batch.item_count, batch.gross_minor) == (1, 10_00)
    assert world.pending_settlement(shop) == 5_00 - late.fee_minor
    [later] = mine(settlement.run_cycle(DAY + timedelta(days=2, hours=5)), shop)
    assert (later.item_count, later.gross_minor) == (1, 5_00)


def test_t_plus_two_waits_two_days(world):
    shop = world.merchant()
    world.pay(shop, 10_00, at=DAY + timedelta(hours=3))
    settlement = world.settlement(cycle_days=2)

    assert mine(settlement.run_cycle(DAY + timedelta(days=1, hours=23)), shop) == []
    assert len(mine(settlement.run_cycle(DAY + timedelta(days=2)), shop)) == 1


def test_t_plus_zero_settles_everything_completed_before_now(world):
    shop = world.merchant()
    paid = world.pay(shop, 10_00, at=DAY + timedelta(hours=12))
    settlement = world.settlement(cycle_days=1)
    assert settlement.set_cycle_days(shop.id, 0) == 0  # the merchant's own cycle

    [batch] = mine(settlement.run_cycle(paid.completed_at + timedelta(seconds=1)), shop)

    assert batch.cutoff_at == paid.completed_at + timedelta(seconds=1)
    assert batch.net_minor == 10_00 - paid.fee_minor
    assert settlement.set_cycle_days(shop.id, None) == 1
    assert settlement.cycle_days_of(shop.id) == 1


def test_a_cycle_outside_0_to_30_days_is_refused(world):
    with pytest.raises(se.InvalidSettlementSchedule):
        world.settlement().set_cycle_days(uuid.uuid4(), 31)
    with pytest.raises(se.InvalidSettlementSchedule):
        world.settlement(cycle_days=-1)


# Reports and payouts.


def test_a_paid_out_batch_posts_its_hold_and_its_report_adds_up(world):
    shop = world.merchant()
    payments = [world.pay(shop, amount, at=DAY + timedelta(hours=h))
                for h, amount in ((1, 10_00), (2, 33_33), (3, 1_00))]
    settlement = world.settlement()
    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)
    bank_before = world.balance(world.chart.platform(Purpose.BANK_SETTLEMENT, "USD"))[0]

    world.deliver(batch.payout_reference)

    paid = settlement.get(shop.id, batch.id)
    report = settlement.report(shop.id, batch.id)
    fees = sum(p.fee_minor for p in payments)
    assert paid.status == "paid" and paid.completed_at is not None
    assert (report.batch.gross_minor, report.batch.fees_minor,
            report.batch.refunds_minor) == (44_33, fees, 0)
    assert report.batch.net_minor == 44_33 - fees == sum(i.net_minor for i in report.items)
    assert sorted(i.source_id for i in report.items) == sorted(p.id for p in payments)
    move = world.ledger.get_transfer(paid.move_transfer_id)
    assert {(p.account_id, p.amount_minor) for p in move.postings} >= {
        (world.chart.merchant_balance(shop.id, "USD"), paid.net_minor)}
    assert world.merchant_balance(shop) == (0, 0)  # paid out
    bank_after = world.balance(world.chart.platform(Purpose.BANK_SETTLEMENT, "USD"))[0]
    assert bank_before - bank_after == paid.net_minor
    [(kind, payload)] = world.events(batch.id)
    assert kind == "settlement.paid"
    assert payload == {
        "batch_id": str(batch.id), "merchant_id": str(shop.id), "currency": "USD",
        "gross_minor": "4433", "fees_minor": str(fees), "refunds_minor": "0",
        "net_minor": str(paid.net_minor), "item_count": 3, "failure_code": None,
    }


def test_a_failed_payout_returns_the_net_to_the_merchant_balance(world):
    shop = world.merchant(magic.BANK_ACCOUNT_CLOSED)
    world.pay(shop, 50_00, at=DAY + timedelta(hours=1))
    settlement = world.settlement()
    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)

    world.deliver(batch.payout_reference)

    failed = settlement.get(shop.id, batch.id)
    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    assert world.merchant_balance(shop) == (failed.net_minor, failed.net_minor)
    assert world.pending_settlement(shop) == 0
    [(kind, payload)] = world.events(batch.id)
    assert (kind, payload["failure_code"], payload["net_minor"]) == (
        "settlement.failed", "account_closed", str(failed.net_minor))
    # Nothing more happens to a failed batch, whatever runs again.
    settlement.run_cycle(DAY + timedelta(days=3))
    settlement.refresh_unsettled()
    assert settlement.get(shop.id, batch.id) == failed


def test_refresh_settles_a_payout_whose_callback_never_came(world):
    shop = world.merchant()
    world.pay(shop, 7_00, at=DAY + timedelta(hours=1))
    settlement = world.settlement()
    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)
    world.clock.now += timedelta(seconds=1)  # the sandbox's outcome is due

    refreshed = [b for b in settlement.refresh_unsettled() if b.id == batch.id]

    assert [b.status for b in refreshed] == ["paid"]
    assert world.merchant_balance(shop) == (0, 0)


def test_a_merchant_without_a_settlement_account_waits_until_it_has_one(world):
    shop = world.merchant(account_number=None)
    world.pay(shop, 12_00, at=DAY + timedelta(hours=1))
    settlement = world.settlement()

    [waiting] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)
    assert (waiting.status, waiting.waiting_reason) == ("created", "settlement_account_not_found")
    assert world.pending_settlement(shop) == waiting.net_minor  # nothing moved

    owner = merchants.get_merchant(world.engine, shop.id).owner_user_id
    set_settlement_account(
        world.engine, shop.id, owner_user_id=owner, one_time_code=None, gateway=world.gateway,
        details=bank_details(account_holder="Shop", account_number=magic.BANK_SUCCEEDS,
                             routing_number=magic.ROUTING_NUMBER),
    )
    [resumed] = mine(settlement.run_cycle(DAY + timedelta(days=1, hours=1)), shop)
    assert resumed.id == waiting.id
    assert (resumed.status, resumed.waiting_reason) == ("payout_pending", None)


def test_an_iban_account_cannot_be_paid_out_and_the_batch_says_why(world):
    shop = world.merchant(account_number=None, iban="GB82WEST12345698765432")
    world.pay(shop, 12_00, at=DAY + timedelta(hours=1))

    [waiting] = mine(world.settlement().run_cycle(DAY + timedelta(days=1)), shop)

    assert (waiting.status, waiting.waiting_reason) == (
        "created", "settlement_account_not_payable")


def test_each_currency_settles_in_its_own_batch(world):
    shop = world.merchant()
    usd = world.pay(shop, 10_00, at=DAY + timedelta(hours=1))
    eur = world.pay(shop, 20_00, currency="EUR", at=DAY + timedelta(hours=2))
    jpy = world.pay(shop, 5_000, currency="JPY", at=DAY + timedelta(hours=3))

    batches = mine(world.settlement().run_cycle(DAY + timedelta(days=1)), shop)

    by_currency = {batch.currency: batch.net_minor for batch in batches}
    assert by_currency == {"USD": 10_00 - usd.fee_minor, "EUR": 20_00 - eur.fee_minor,
                           "JPY": 5_000 - jpy.fee_minor}
    for currency in by_currency:
        assert world.pending_settlement(shop, currency) == 0


# Exactly once.


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_crash_at_any_step_then_a_rerun_settles_once(world, point):
    account = magic.BANK_ACCOUNT_CLOSED if point == "settlement.after_void" else (
        magic.BANK_SUCCEEDS)
    shop = world.merchant(account)
    world.pay(shop, 25_00, at=DAY + timedelta(hours=1))
    world.pay(shop, 5_00, at=DAY + timedelta(hours=2))

    def crash(reached: str, batch: SettlementBatch) -> None:
        if reached == point and batch.merchant_id == shop.id:
            raise Crash(point)

    dying = world.settlement(on_step=crash)
    with pytest.raises(Crash):  # the crash comes in the run or in the refresh after it
        dying.run_cycle(DAY + timedelta(days=1))
        world.clock.now += timedelta(seconds=1)
        dying.refresh_unsettled()

    survivor = world.settlement()
    for _ in range(2):  # the restarted worker, and once more for good measure
        survivor.run_cycle(DAY + timedelta(days=1, minutes=1))
        world.clock.now += timedelta(seconds=1)
        survivor.refresh_unsettled()

    [batch] = world.batches(shop)
    expected = "failed" if point == "settlement.after_void" else "paid"
    assert (batch.status, batch.item_count) == (expected, 2)
    assert [kind for kind, _ in world.events(batch.id)] == [f"settlement.{expected}"]
    paid_out = batch.net_minor if expected == "paid" else 0
    assert world.merchant_balance(shop) == (batch.net_minor - paid_out,) * 2
    # The merchant's balance was credited once (the move) and, if paid, debited once.
    postings = world.ledger.list_postings(world.chart.merchant_balance(shop.id, "USD"))
    posted = [(p.direction, p.amount_minor) for p in postings if p.layer == "posted"]
    assert posted == [("credit", batch.net_minor)] + (
        [("debit", batch.net_minor)] if expected == "paid" else [])
    with world.engine.connect() as connection:
        payouts = connection.execute(
            select(func.count()).select_from(sandbox_requests)
            .where(sandbox_requests.c.idempotency_key == f"settlement:{batch.id}:payout")
        ).scalar()
    assert payouts == 1


def test_two_concurrent_runs_make_one_batch_of_the_same_items(world):
    shop = world.merchant()
    for hour in range(1, 7):
        world.pay(shop, 3_00, at=DAY + timedelta(hours=hour))
    runners = [world.settlement() for _ in range(4)]
    barrier = threading.Barrier(len(runners))
    errors: list[BaseException] = []

    def run(settlement: Settlement) -> None:
        barrier.wait()
        try:
            settlement.run_cycle(DAY + timedelta(days=1))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    [batch] = world.batches(shop)
    assert batch.item_count == 6
    with world.engine.connect() as connection:
        bound = connection.execute(
            select(settlement_items.c.batch_id).where(settlement_items.c.merchant_id == shop.id)
        ).scalars().all()
    assert bound == [batch.id] * 6
    world.deliver(batch.payout_reference)
    assert world.settlement().get(shop.id, batch.id).status == "paid"
    assert world.merchant_balance(shop) == (0, 0)


# Refunds.


def test_refunds_of_unsettled_payments_are_netted_in_the_report(world):
    shop = world.merchant()
    kept = world.pay(shop, 40_00, at=DAY + timedelta(hours=1))
    partly = world.pay(shop, 20_00, at=DAY + timedelta(hours=2))
    wholly = world.pay(shop, 10_00, at=DAY + timedelta(hours=3))
    half = world.refunds.refund(merchant_id=shop.id, payment_id=partly.id, amount_minor=10_00,
                                idempotency_key="half").value
    whole = world.refunds.refund(merchant_id=shop.id, payment_id=wholly.id,
                                 idempotency_key="whole").value
    assert (half.source, whole.source) == ("pending_settlement", "pending_settlement")
    assert whole.amount_minor == 10_00 and whole.fee_returned_minor == wholly.fee_minor
    settlement = world.settlement()

    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)
    report = settlement.report(shop.id, batch.id)

    fees = (kept.fee_minor + partly.fee_minor + wholly.fee_minor
            - half.fee_returned_minor - whole.fee_returned_minor)
    assert (batch.gross_minor, batch.refunds_minor, batch.fees_minor) == (70_00, 20_00, fees)
    assert batch.net_minor == 70_00 - fees - 20_00 == sum(i.net_minor for i in report.items)
    assert {i.source_kind for i in report.items} == {"qr_payment", "qr_refund"}
    assert batch.item_count == 5
    assert world.pending_settlement(shop) == 0
    move = world.ledger.get_transfer(batch.move_transfer_id)
    balance_id = world.chart.merchant_balance(shop.id, "USD")
    assert [p.amount_minor for p in move.postings if p.account_id == balance_id] == [
        batch.net_minor]


def test_a_refund_of_a_settled_payment_comes_from_the_merchant_balance(world):
    shop = world.merchant(magic.BANK_ACCOUNT_CLOSED)  # the payout fails: funds stay
    paid = world.pay(shop, 30_00, at=DAY + timedelta(hours=1))
    settlement = world.settlement()
    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=1)), shop)
    world.deliver(batch.payout_reference)

    refund = world.refunds.refund(merchant_id=shop.id, payment_id=paid.id,
                                  amount_minor=5_00, idempotency_key="r").value

    assert refund.source == "merchant_balance"
    assert world.merchant_balance(shop)[0] == batch.net_minor - (5_00 - refund.fee_returned_minor)
    with pytest.raises(se.RefundExceedsPayment):
        world.refunds.refund(merchant_id=shop.id, payment_id=paid.id, amount_minor=25_01,
                             idempotency_key="too-much")


def test_a_refund_the_merchant_balance_cannot_cover_is_refused_and_replays_so(world):
    shop = world.merchant()
    paid = world.pay(shop, 30_00, at=DAY + timedelta(hours=1))
    world.settlement().run_cycle(DAY + timedelta(days=1))  # moved and held for payout

    for _ in range(2):
        with pytest.raises(e.InsufficientFunds):
            world.refunds.refund(merchant_id=shop.id, payment_id=paid.id,
                                 idempotency_key="r")


def test_negative_net_waits_for_later_payments(world):
    shop = world.merchant()
    paid = world.pay(shop, 10_00, at=DAY + timedelta(hours=1))
    world.refunds.refund(merchant_id=shop.id, payment_id=paid.id, idempotency_key="all")
    settlement = world.settlement()

    assert mine(settlement.run_cycle(DAY + timedelta(days=1)), shop) == []

    later = world.pay(shop, 4_00, at=DAY + timedelta(days=1, hours=1))
    [batch] = mine(settlement.run_cycle(DAY + timedelta(days=2)), shop)
    assert batch.item_count == 3 and batch.refunds_minor == 10_00
    assert batch.net_minor == 4_00 - later.fee_minor


def test_concurrent_refunds_never_refund_more_than_the_payment(world):
    shop = world.merchant()
    paid = world.pay(shop, 10_00, at=DAY + timedelta(hours=1))
    outcomes: list[object] = []
    barrier = threading.Barrier(6)

    def refund(i: int) -> None:
        barrier.wait()
        try:
            outcomes.append(world.refunds.refund(
                merchant_id=shop.id, payment_id=paid.id, amount_minor=3_00,
                idempotency_key=f"r{i}").value)
        except se.RefundExceedsPayment as error:
            outcomes.append(error)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refunded = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(refunded) == 3 and len(outcomes) == 6
    assert world.pending_settlement(shop) == 10_00 - paid.fee_minor - sum(
        r.amount_minor - r.fee_returned_minor for r in refunded)


# The whole ledger.


def test_the_ledger_checks_clean_after_settlements(world):
    shop = world.merchant()
    world.pay(shop, 9_99, at=DAY + timedelta(hours=1))
    [batch] = mine(world.settlement().run_cycle(DAY + timedelta(days=1)), shop)
    world.deliver(batch.payout_reference)

    report = check_ledger(world.engine)

    assert report.clean, report
    with world.engine.connect() as connection:
        statuses = connection.execute(
            select(settlement_batches.c.status).where(settlement_batches.c.id == batch.id)
        ).scalars().all()
    assert statuses == ["paid"]
