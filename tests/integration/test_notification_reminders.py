"""Bill-due reminders against real bill payments and the sandbox billers.

Sandbox bills are one per (biller, customer reference), due 5 to 29 days after the
registry's `today`; the tests fix that date. The module works in a schema of its own, so
the job meets only this module's bill payments.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine

from pacioli.gateways.billers.sandbox import SandboxBillerRegistry
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.storage.database import make_engine
from pacioli.payments import notification_feed as feed
from pacioli.payments.bills import BillPayments
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.notification_reminders import BillReminders
from pacioli.payments.notifications import DirectoryLookup

TODAY = date(2026, 11, 24)
WINDOW_DAYS = 3


@pytest.fixture(scope="module")
def engine(schema_factory) -> Iterator[Engine]:
    url = schema_factory.create()
    engine = make_engine(url, pool_size=10)
    yield engine
    engine.dispose()
    schema_factory.drop(url)


@pytest.fixture
def registry(engine) -> SandboxBillerRegistry:
    return SandboxBillerRegistry(engine, today=lambda: TODAY)


@pytest.fixture
def bills(engine, ledger, registry) -> BillPayments:
    return BillPayments(engine, ledger, Chart(engine, ledger), registry)


@pytest.fixture
def reminders(engine, ledger, registry) -> BillReminders:
    return BillReminders(engine, registry, DirectoryLookup(engine, ledger, registry),
                         due_within_days=WINDOW_DAYS)


def paid_once(engine: Engine, bills: BillPayments, ledger: Ledger, biller_id: str,
              reference: str, amount_minor: int | None = None) -> UUID:
    """A new user who paid this bill (or, for direct pay, `amount_minor`), as far as it went."""
    user_id = uuid.uuid4()
    chart = Chart(engine, ledger)
    ledger.transfer([debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), 1_000_00),
                     credit(chart.wallet(user_id, "USD"), 1_000_00)],
                    idempotency_key=uuid.uuid4().hex)
    if amount_minor is None:
        amount_minor = bills.fetch_bill(biller_id, reference).amount_minor
    payment = bills.pay_bill(user_id=user_id, biller_id=biller_id, customer_reference=reference,
                             amount_minor=amount_minor, currency="USD",
                             idempotency_key=uuid.uuid4().hex).value
    bills.refresh_bill_payment(user_id, payment.id)
    return user_id


def due_date(registry, biller_id: str, reference: str) -> date:
    return registry.get(biller_id).fetch_bill(reference).due_date


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


def reminders_of(engine, user_id: UUID) -> list[feed.Notification]:
    return [n for n in feed.list_notifications(engine, user_id) if n.kind == "bill_due"]


def test_an_unpaid_bill_due_soon_is_reminded_of_once(engine, ledger, bills, registry,
                                                     reminders):
    reference = f"FAIL{uuid.uuid4().hex[:8]}"  # the biller rejects the payment: refunded
    user_id = paid_once(engine, bills, ledger, "sandbox_power", reference)
    due = due_date(registry, "sandbox_power", reference)

    reminders.remind_due_bills(at(due - timedelta(days=WINDOW_DAYS + 1)))  # not yet
    assert reminders_of(engine, user_id) == []

    reminders.remind_due_bills(at(due - timedelta(days=2)))
    reminders.remind_due_bills(at(due - timedelta(days=1)))  # the same bill: once

    (reminder,) = reminders_of(engine, user_id)
    bill = registry.get("sandbox_power").fetch_bill(reference)
    amount = f"{bill.amount_minor // 100}.{bill.amount_minor % 100:02d} USD"
    assert reminder.title == "Bill due in 2 days: Sandbox Power & Light"
    assert reminder.body == (f"Your Sandbox Power & Light bill of {amount} for account"
                             f" ••••{reference[-4:]} is due on {due.isoformat()}.")
    assert reminder.data["bill_reference"] == bill.bill_reference


def test_a_paid_or_pending_bill_is_not_reminded_of(engine, ledger, bills, registry,
                                                   reminders):
    paid_reference = f"OK{uuid.uuid4().hex[:8]}"  # confirms at the first status check
    pending_reference = f"PEND{uuid.uuid4().hex[:8]}"  # stays pending
    paid = paid_once(engine, bills, ledger, "sandbox_power", paid_reference)
    pending = paid_once(engine, bills, ledger, "sandbox_power", pending_reference)

    for reference in (paid_reference, pending_reference):
        reminders.remind_due_bills(at(due_date(registry, "sandbox_power", reference)))

    assert reminders_of(engine, paid) == [] and reminders_of(engine, pending) == []


def test_an_overdue_bill_and_a_direct_pay_biller_are_not_reminded_of(engine, ledger, bills,
                                                                      registry, reminders):
    reference = f"FAIL{uuid.uuid4().hex[:8]}"
    overdue = paid_once(engine, bills, ledger, "sandbox_power", reference)
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    prepaid = paid_once(engine, bills, ledger, "sandbox_mobile_prepaid", phone,
                        amount_minor=10_00)

    reminders.remind_due_bills(
        at(due_date(registry, "sandbox_power", reference) + timedelta(days=1)))

    assert reminders_of(engine, overdue) == [] and reminders_of(engine, prepaid) == []
