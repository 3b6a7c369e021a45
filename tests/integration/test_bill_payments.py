"""Bill payments against the real ledger and the sandbox billers: every sandbox outcome,
each amount rule, replays, concurrent double-spends and refreshes, refunds, and a clean
ledger check afterwards."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from sqlalchemy import Engine, func, select

from pacioli.gateways.billers.base import (
    BillerReferenceNotFound,
    BillerRejectedRequest,
    BillerStatus,
    BillerUnavailable,
    PaymentReferenceReused,
    UnknownCustomerReference,
)
from pacioli.gateways.billers.sandbox import SandboxBillerRegistry, sandbox_biller_payments
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain.errors import InsufficientFunds
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import bill_errors as be
from pacioli.payments.bills import BillPayments
from pacioli.payments.chart import Chart, Purpose


@dataclass
class World:
    engine: Engine
    ledger: Ledger
    chart: Chart
    registry: SandboxBillerRegistry
    bills: BillPayments

    def user(self, funds_minor: int = 0, currency: str = "USD") -> UUID:
        user_id = uuid.uuid4()
        if funds_minor:
            self.ledger.transfer(
                [debit(self.chart.platform(Purpose.BANK_SETTLEMENT, currency), funds_minor),
                 credit(self.chart.wallet(user_id, currency), funds_minor)],
                idempotency_key=uuid.uuid4().hex,
            )
        return user_id

    def available(self, user_id: UUID, currency: str = "USD") -> int:
        account = self.ledger.get_account(self.chart.wallet(user_id, currency))
        return account.balances.available(account.normal_side)

    def posted(self, user_id: UUID, currency: str = "USD") -> int:
        account = self.ledger.get_account(self.chart.wallet(user_id, currency))
        return account.balances.net_posted(account.normal_side)

    def payable(self, biller_id: str, currency: str = "USD") -> int:
        account_id = self.chart.platform(Purpose.BILLER_PAYABLE, currency, scope=biller_id)
        account = self.ledger.get_account(account_id)
        return account.balances.net_posted(account.normal_side)

    def pay(self, user_id: UUID, biller_id: str, reference: str, amount_minor: int | None = None,
            *, key: str | None = None, currency: str = "USD"):
        if amount_minor is None:
            amount_minor = self.bills.fetch_bill(biller_id, reference).amount_minor
        return self.bills.pay_bill(
            user_id=user_id, biller_id=biller_id, customer_reference=reference,
            amount_minor=amount_minor, currency=currency,
            idempotency_key=key or uuid.uuid4().hex,
        )


def make_world(engine: Engine, ledger: Ledger) -> World:
    chart = Chart(engine, ledger)
    registry = SandboxBillerRegistry(engine)
    return World(engine, ledger, chart, registry, BillPayments(engine, ledger, chart, registry))


@pytest.fixture
def world(engine, ledger) -> World:
    return make_world(engine, ledger)


def ref(prefix: str = "ACC") -> str:
    """A customer reference no other test uses, with a magic prefix."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


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


# The sandbox billers' own behaviour.


def test_a_sandbox_submission_is_pending_then_confirms_at_the_first_status_check(world):
    power = world.registry.get("sandbox_power")
    customer = ref()
    bill = power.fetch_bill(customer)

    submitted = power.submit_payment(
        customer_reference=customer, bill_reference=bill.bill_reference,
        amount_minor=bill.amount_minor, currency="USD", payment_reference="pay-1" + customer,
    )

    assert submitted.status is BillerStatus.PENDING
    assert power.fetch_status(submitted.biller_reference).status is BillerStatus.SUCCEEDED
    assert power.fetch_status(submitted.biller_reference).status is BillerStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("prefix", "status", "failure_code"),
    [("FAIL", BillerStatus.FAILED, "biller_rejected"), ("PEND", BillerStatus.PENDING, None)],
)
def test_magic_references_fail_or_stay_pending_at_the_sandbox(world, prefix, status, failure_code):
    water = world.registry.get("sandbox_water")
    customer = ref(prefix)
    bill = water.fetch_bill(customer)
    submitted = water.submit_payment(
        customer_reference=customer, bill_reference=bill.bill_reference, amount_minor=5_00,
        currency="USD", payment_reference=customer,
    )

    for _ in range(2):
        checked = water.fetch_status(submitted.biller_reference)
        assert (checked.status, checked.failure_code) == (status, failure_code)


def test_a_resubmission_with_the_same_payment_reference_finds_the_first(world):
    prepaid = world.registry.get("sandbox_mobile_prepaid")
    phone = "+1415" + str(uuid.uuid4().int % 10**7).zfill(7)
    submit = dict(customer_reference=phone, bill_reference=None, amount_minor=10_00,
                  currency="USD", payment_reference=phone)

    first, second = prepaid.submit_payment(**submit), prepaid.submit_payment(**submit)

    assert first == second
    with pytest.raises(PaymentReferenceReused):
        prepaid.submit_payment(**{**submit, "amount_minor": 11_00})


def test_a_lost_answer_is_recorded_and_found_by_the_resubmission(world):
    prepaid = world.registry.get("sandbox_mobile_prepaid")
    customer = ref("LOST")
    submit = dict(customer_reference=customer, bill_reference=None, amount_minor=3_00,
                  currency="USD", payment_reference=customer)

    with pytest.raises(BillerUnavailable):
        prepaid.submit_payment(**submit)
    again = prepaid.submit_payment(**submit)

    assert again.status is BillerStatus.PENDING
    assert prepaid.fetch_status(again.biller_reference).status is BillerStatus.SUCCEEDED


def test_the_sandbox_refuses_what_a_real_biller_would(world):
    power = world.registry.get("sandbox_power")
    customer = ref()
    bill = power.fetch_bill(customer)
    submit = dict(customer_reference=customer, bill_reference=bill.bill_reference,
                  amount_minor=bill.amount_minor, currency="USD", payment_reference=customer)

    with pytest.raises(BillerRejectedRequest):
        power.submit_payment(**{**submit, "amount_minor": bill.amount_minor - 1})
    with pytest.raises(BillerRejectedRequest):
        power.submit_payment(**{**submit, "currency": "EUR"})
    with pytest.raises(BillerRejectedRequest):
        power.submit_payment(**{**submit, "bill_reference": "stale"})
    with pytest.raises(UnknownCustomerReference):
        power.submit_payment(**{**submit, "customer_reference": ref("NONE")})
    with pytest.raises(BillerReferenceNotFound):
        power.fetch_status("BLR-NOPE")


# Paying, and each sandbox outcome.


def test_a_confirmed_bill_is_held_then_posted_to_the_biller(world):
    user = world.user(500_00)
    customer = ref()
    bill = world.bills.fetch_bill("sandbox_power", customer)
    payable_before = world.payable("sandbox_power")

    answer = world.pay(user, "sandbox_power", customer)

    payment = answer.value
    assert not answer.replayed
    assert payment.status == "pending" and payment.biller_reference is not None
    assert payment.bill_reference == bill.bill_reference
    assert world.available(user) == 500_00 - bill.amount_minor
    assert world.posted(user) == 500_00  # held, not yet taken

    settled = world.bills.refresh_bill_payment(user, payment.id)

    assert settled.status == "succeeded" and settled.completed_at is not None
    assert settled.settlement_transfer_id is not None and settled.failure_code is None
    assert world.posted(user) == world.available(user) == 500_00 - bill.amount_minor
    assert world.payable("sandbox_power") - payable_before == bill.amount_minor


def test_a_biller_failure_refunds_the_wallet_exactly(world):
    user = world.user(500_00)
    payment = world.pay(user, "sandbox_power", ref("FAIL")).value
    assert world.available(user) < 500_00

    refunded = world.bills.refresh_bill_payment(user, payment.id)

    assert refunded.status == "refunded" and refunded.failure_code == "biller_rejected"
    assert world.available(user) == world.posted(user) == 500_00
    assert world.bills.refresh_bill_payment(user, payment.id) == refunded


def test_a_payment_the_biller_leaves_pending_stays_held(world):
    user = world.user(500_00)
    payment = world.pay(user, "sandbox_water", ref("PEND"), 20_00).value

    checked = world.bills.refresh_bill_payment(user, payment.id)

    assert checked.status == "pending" and checked.checked_at is not None
    assert world.available(user) == 480_00 and world.posted(user) == 500_00


def test_an_unknown_reference_is_refused_before_anything_moves(world):
    user = world.user(100_00)
    with pytest.raises(be.BillNotFound):
        world.bills.fetch_bill("sandbox_power", ref("NONE"))
    with pytest.raises(be.BillNotFound):
        world.pay(user, "sandbox_power", ref("NONE"), 10_00)
    assert world.bills.list_bill_payments(user) == []
    assert world.available(user) == 100_00


def test_a_direct_payment_the_biller_refuses_outright_is_refunded_at_once(world):
    user = world.user(100_00)

    payment = world.pay(user, "sandbox_mobile_prepaid", ref("NONE"), 15_00).value

    assert payment.status == "refunded" and payment.failure_code == "bill_not_found"
    assert payment.biller_reference is None
    assert world.available(user) == world.posted(user) == 100_00


def test_a_lost_submission_is_resubmitted_by_a_refresh_and_pays_once(world):
    user = world.user(100_00)
    customer = ref("LOST")

    payment = world.pay(user, "sandbox_mobile_prepaid", customer, 25_00).value
    assert payment.status == "pending" and payment.biller_reference is None
    settled = world.bills.refresh_bill_payment(user, payment.id)

    assert settled.status == "succeeded" and settled.biller_reference is not None
    assert world.available(user) == world.posted(user) == 75_00
    with world.engine.connect() as connection:
        submissions = connection.execute(
            select(func.count()).where(sandbox_biller_payments.c.customer_reference == customer)
        ).scalar()
    assert submissions == 1


def test_direct_pay_billers_present_no_bill(world):
    with pytest.raises(be.BillFetchNotSupported):
        world.bills.fetch_bill("sandbox_mobile_prepaid", "+14155550100")


# Validation before anything moves.


def test_an_exact_biller_takes_only_the_bill_amount(world):
    user = world.user(1_000_00)
    customer = ref()
    amount = world.bills.fetch_bill("sandbox_power", customer).amount_minor

    for wrong in (amount - 1, amount + 1):
        with pytest.raises(be.AmountNotAllowed):
            world.pay(user, "sandbox_power", customer, wrong)
    assert world.available(user) == 1_000_00
    assert world.pay(user, "sandbox_power", customer, amount).value.status == "pending"


def test_a_minimum_biller_takes_the_minimum_due_or_more(world):
    user = world.user(2_000_00)
    customer = ref()
    bill = world.bills.fetch_bill("sandbox_card", customer)

    with pytest.raises(be.AmountNotAllowed):
        world.pay(user, "sandbox_card", customer, bill.minimum_due_minor - 1)
    at_minimum = world.pay(user, "sandbox_card", customer, bill.minimum_due_minor).value
    above_total = world.pay(user, "sandbox_card", customer, bill.amount_minor + 1).value

    assert at_minimum.status == above_total.status == "pending"
    assert world.available(user) == 2_000_00 - bill.minimum_due_minor - bill.amount_minor - 1


def test_an_any_amount_biller_takes_any_positive_amount(world):
    user = world.user(10_00)
    assert world.pay(user, "sandbox_water", ref(), 1).value.status == "pending"
    assert world.pay(user, "sandbox_mobile_prepaid", ref(), 9_99).value.status == "pending"
    assert world.available(user) == 0


@pytest.mark.parametrize(
    ("biller_id", "reference", "amount_minor", "currency", "error"),
    [
        ("sandbox_gas", "ACC-1234", 1_00, "USD", be.BillerNotFound),
        ("sandbox_water", "ACC-1234", 1_00, "INR", be.CurrencyNotAccepted),
        ("sandbox_water", "no spaces", 1_00, "USD", be.InvalidCustomerReference),
        ("sandbox_water", "ACC-1234", 0, "USD", be.InvalidBillPayment),
        ("sandbox_water", "ACC-1234", -1_00, "USD", be.InvalidBillPayment),
    ],
)
def test_bad_requests_are_refused_and_record_nothing(
    world, biller_id, reference, amount_minor, currency, error
):
    user = world.user(100_00)
    with pytest.raises(error):
        world.pay(user, biller_id, reference, amount_minor, currency=currency)
    assert world.bills.list_bill_payments(user) == []
    assert world.available(user) == 100_00


def test_an_unknown_category_is_refused(world):
    with pytest.raises(be.InvalidBillPayment):
        world.bills.list_billers("gas")
    assert [b.id for b in world.bills.list_billers("water")] == ["sandbox_water"]


def test_insufficient_funds_fail_the_payment_and_a_replay_fails_the_same_way(world):
    user = world.user(5_00)
    with pytest.raises(InsufficientFunds):
        world.pay(user, "sandbox_water", ref(), 6_00, key="short")
    world.ledger.transfer(
        [debit(world.chart.platform(Purpose.BANK_SETTLEMENT, "USD"), 100_00),
         credit(world.chart.wallet(user, "USD"), 100_00)], idempotency_key=uuid.uuid4().hex,
    )
    (failed,) = world.bills.list_bill_payments(user)

    assert failed.status == "failed" and failed.failure_code == "insufficient_funds"
    with pytest.raises(InsufficientFunds):
        world.bills.pay_bill(user_id=user, biller_id="sandbox_water",
                             customer_reference=failed.customer_reference, amount_minor=6_00,
                             currency="USD", idempotency_key="short")
    assert world.available(user) == 105_00


# Idempotency and concurrency.


def test_a_retry_with_the_same_key_replays_the_payment(world):
    user = world.user(100_00)
    customer = ref()

    first = world.pay(user, "sandbox_water", customer, 10_00, key="k1")
    second = world.pay(user, "sandbox_water", customer, 10_00, key="k1")

    assert second.replayed and second.value.id == first.value.id
    with pytest.raises(be.IdempotencyKeyReusedForBillPayment):
        world.pay(user, "sandbox_water", customer, 11_00, key="k1")
    assert world.available(user) == 90_00
    other_user = world.pay(world.user(1_00), "sandbox_water", customer, 1, key="k1")
    assert not other_user.replayed and other_user.value.id != first.value.id  # keys are per user


def test_an_exact_bill_is_paid_once_but_again_after_a_refund(world):
    user = world.user(1_000_00)
    paid, failing = ref(), ref("FAIL")
    world.pay(user, "sandbox_power", paid)
    with pytest.raises(be.BillAlreadyPaid):
        world.pay(user, "sandbox_power", paid)
    with pytest.raises(be.BillAlreadyPaid):
        world.pay(world.user(1_000_00), "sandbox_power", paid)

    first = world.pay(user, "sandbox_power", failing).value
    world.bills.refresh_bill_payment(user, first.id)
    again = world.pay(user, "sandbox_power", failing).value

    assert again.id != first.id and again.status == "pending"


def test_concurrent_payments_from_one_wallet_never_overdraw_it(world):
    user = world.user(100_00)  # room for exactly five payments of 20.00

    results = run_together(10, lambda i: world.pay(user, "sandbox_water", ref(), 20_00))

    held = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(held) == 5 and all(isinstance(r, InsufficientFunds) for r in refused)
    assert world.available(user) == 0
    settled = [world.bills.refresh_bill_payment(user, a.value.id) for a in held]
    assert {p.status for p in settled} == {"succeeded"}
    assert world.posted(user) == 0


def test_concurrent_requests_with_one_key_hold_and_submit_once(world):
    user = world.user(100_00)
    customer = ref()

    results = run_together(8, lambda i: world.pay(user, "sandbox_water", customer, 30_00,
                                                  key="same"))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.value.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert world.available(user) == 70_00
    with world.engine.connect() as connection:
        submissions = connection.execute(
            select(func.count()).where(sandbox_biller_payments.c.customer_reference == customer)
        ).scalar()
    assert submissions == 1


def test_concurrent_refreshes_settle_once(world):
    user = world.user(100_00)
    payment = world.pay(user, "sandbox_water", ref(), 40_00).value
    failing = world.pay(user, "sandbox_water", ref("FAIL"), 40_00).value

    settled = run_together(8, lambda i: world.bills.refresh_bill_payment(user, payment.id))
    refunded = run_together(8, lambda i: world.bills.refresh_bill_payment(user, failing.id))

    assert {(p.status, p.settlement_transfer_id) for p in settled} == {
        ("succeeded", settled[0].settlement_transfer_id)}
    assert {(p.status, p.settlement_transfer_id) for p in refunded} == {
        ("refunded", refunded[0].settlement_transfer_id)}
    assert world.available(user) == world.posted(user) == 60_00


def test_a_sweep_settles_what_the_billers_decided(fresh_engine):
    with Ledger(fresh_engine) as ledger:
        world = make_world(fresh_engine, ledger)
        user = world.user(100_00)
        confirming = world.pay(user, "sandbox_water", ref(), 10_00).value
        failing = world.pay(user, "sandbox_water", ref("FAIL"), 10_00).value
        waiting = world.pay(user, "sandbox_water", ref("PEND"), 10_00).value

        first = world.bills.refresh_unsettled()
        second = world.bills.refresh_unsettled()

        assert [(p.id, p.status) for p in first] == [
            (confirming.id, "succeeded"), (failing.id, "refunded"), (waiting.id, "pending")]
        assert [p.id for p in second] == [waiting.id]
        assert world.available(user) == 80_00


# Who sees what.


def test_another_user_cannot_see_or_refresh_a_payment(world):
    user, mallory = world.user(100_00), world.user()
    payment = world.pay(user, "sandbox_water", ref(), 10_00).value

    with pytest.raises(be.BillPaymentNotFound):
        world.bills.get_bill_payment(mallory, payment.id)
    with pytest.raises(be.BillPaymentNotFound):
        world.bills.refresh_bill_payment(mallory, payment.id)
    assert world.bills.list_bill_payments(mallory) == []
    assert world.bills.get_bill_payment(user, payment.id).status == "pending"


def test_payments_list_newest_first_with_a_cursor_and_a_status_filter(world):
    user = world.user(100_00)
    ids = [world.pay(user, "sandbox_water", ref(), n).value.id for n in (1, 2, 3)]
    world.bills.refresh_bill_payment(user, ids[0])

    page = world.bills.list_bill_payments(user, limit=2)
    rest = world.bills.list_bill_payments(user, limit=2, starting_after=page[-1].id)

    assert [p.id for p in page + rest] == ids[::-1]
    assert [p.id for p in world.bills.list_bill_payments(user, status="succeeded")] == ids[:1]


# The ledger stays sound.


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=10)
    yield engine
    engine.dispose()


def test_the_ledger_check_is_clean_after_every_kind_of_bill_payment(fresh_engine):
    with Ledger(fresh_engine) as ledger:
        world = make_world(fresh_engine, ledger)
        user = world.user(1_000_00)
        payments = [
            world.pay(user, "sandbox_power", ref()).value,
            world.pay(user, "sandbox_card", ref("FAIL"), 50_00).value,
            world.pay(user, "sandbox_water", ref("PEND"), 5_00).value,
            world.pay(user, "sandbox_mobile_prepaid", ref("LOST"), 7_00).value,
            world.pay(user, "sandbox_mobile_prepaid", ref("NONE"), 9_00).value,
        ]
        with pytest.raises(InsufficientFunds):
            world.pay(user, "sandbox_water", ref(), 10_000_00)
        run_together(4, lambda i: [world.bills.refresh_bill_payment(user, p.id)
                                   for p in payments])
        statuses = [world.bills.get_bill_payment(user, p.id).status for p in payments]

        report = check_ledger(fresh_engine)

    assert statuses == ["succeeded", "refunded", "pending", "succeeded", "refunded"]
    assert report.clean, report.to_dict()


# The migration.


def test_the_bill_payments_migration_downgrades_and_upgrades_again(fresh_database_url):
    from alembic import command
    from sqlalchemy import inspect

    from pacioli.ledger.storage.migrate import alembic_config, upgrade

    tables = {"bill_payments", "sandbox_biller_payments"}
    engine = make_engine(fresh_database_url, pool_size=1)
    try:
        assert tables <= set(inspect(engine).get_table_names())
        command.downgrade(alembic_config(fresh_database_url), "0005@0001")
        assert not tables & set(inspect(engine).get_table_names())
        assert "accounts" in inspect(engine).get_table_names()
        upgrade(fresh_database_url)
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
