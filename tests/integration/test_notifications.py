"""The notifications consumer against the real database and ledger: events in, one
notification per user and event out, with channel deliveries and low-balance alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy import select

from pacioli.gateways.billers.sandbox import SandboxBillerRegistry
from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.outbox import Event, append_event
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import notification_feed as feed
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.merchants import merchants
from pacioli.payments.notification_messages import WalletChange
from pacioli.payments.notification_tables import notification_deliveries
from pacioli.payments.notifications import Notifications
from pacioli.payments.p2p import P2P
from pacioli.payments.users import users

DEFAULTS = {"USD": 10_00}


@pytest.fixture
def chart(engine, ledger) -> Chart:
    return Chart(engine, ledger)


@pytest.fixture
def consumer(engine, ledger) -> Notifications:
    return Notifications(engine, ledger, billers=SandboxBillerRegistry(engine),
                         low_balance_defaults_minor=DEFAULTS)


def new_user(engine, *, display_name: str | None = None, email: bool = True,
             phone: bool = False) -> UUID:
    user_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(users.insert().values(
            id=user_id, display_name=display_name,
            email=f"{user_id.hex}@example.com" if email else None,
            phone=f"+1555{user_id.int % 10**7:07d}" if phone else None,
            password_hash="not-a-hash", created_at=datetime.now(UTC),
        ))
    return user_id


def new_merchant(engine, owner_user_id: UUID, name: str = "Corner Shop") -> UUID:
    merchant_id = uuid.uuid4()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(merchants.insert().values(
            id=merchant_id, name=name, owner_user_id=owner_user_id, status="approved",
            created_at=now, reviewed_at=now,
        ))
    return merchant_id


def appended(engine, event_type: str, aggregate_type: str, payload: dict) -> Event:
    """An event written to the outbox as a flow writes it."""
    with engine.begin() as connection:
        return append_event(connection, event_type, aggregate_type, str(uuid.uuid4()), payload)


def fund(ledger: Ledger, chart: Chart, user_id: UUID, amount_minor: int) -> None:
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), amount_minor),
         credit(chart.wallet(user_id, "USD"), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


def feed_of(engine, user_id: UUID) -> list[feed.Notification]:
    return feed.list_notifications(engine, user_id)


def deliveries_of(engine, notification_id: UUID) -> dict[str, str]:
    d = notification_deliveries
    with engine.connect() as connection:
        rows = connection.execute(select(d.c.channel, d.c.status)
                                  .where(d.c.notification_id == notification_id))
        return {row.channel: row.status for row in rows}


def outbox_event(engine, event_type: str, aggregate_id: UUID) -> Event:
    """The event a flow wrote to the outbox for `aggregate_id`, as the relay sends it."""
    with engine.connect() as connection:
        row = connection.execute(
            select(outbox).where(outbox.c.event_type == event_type,
                                 outbox.c.aggregate_id == str(aggregate_id))
        ).one()
    return Event(row.event_id, row.event_type, row.aggregate_type, row.aggregate_id,
                 row.payload, row.created_at)


def p2p_payload(payer: UUID, payee: UUID, amount_minor: int) -> dict:
    return {"payment_id": str(uuid.uuid4()), "payer_user_id": str(payer),
            "payee_user_id": str(payee), "amount_minor": str(amount_minor),
            "currency": "USD", "note": ""}


def test_a_real_p2p_payment_notifies_the_payee_by_the_payers_name(engine, ledger, chart,
                                                                   consumer):
    ada, bob = new_user(engine, display_name="Ada"), new_user(engine, display_name="Bob")
    fund(ledger, chart, ada, 100_00)
    payment = P2P(engine, ledger, chart).send(
        payer_user_id=ada, payee_user_id=bob, currency="USD", amount_minor=25_50,
        note="dinner", idempotency_key=uuid.uuid4().hex,
    ).value

    consumer.handle(outbox_event(engine, "p2p_payment.succeeded", payment.id))

    (received,) = feed_of(engine, bob)
    assert received.kind == "money_received" and received.title == "You received 25.50 USD"
    assert received.body == 'Ada sent you 25.50 USD. Note: "dinner"'
    assert received.data["payment_id"] == str(payment.id)
    assert deliveries_of(engine, received.id) == {"push": "pending"}
    assert feed_of(engine, ada) == []  # 74.50 left: above the 10.00 threshold


def test_a_re_sent_event_notifies_once(engine, consumer):
    ada, bob = new_user(engine, display_name="Ada"), new_user(engine)
    event = appended(engine, "money_request.created", "money_request", {
        "request_id": str(uuid.uuid4()), "requester_user_id": str(ada),
        "payer_user_id": str(bob), "amount_minor": "2000", "currency": "USD", "note": "rent",
    })

    consumer.handle(event)
    consumer.handle(Event.from_message(event.to_message()))  # the relay sends it again

    (requested,) = feed_of(engine, bob)
    assert requested.title == "Ada requests 20.00 USD"
    assert deliveries_of(engine, requested.id) == {"push": "pending"}


def test_email_and_sms_deliveries_are_made_only_for_users_with_the_address(engine, consumer):
    with_both = new_user(engine, phone=True)
    without_phone = new_user(engine)
    without_email = new_user(engine, email=False, phone=True)
    for user_id in (with_both, without_phone, without_email):
        consumer.handle(appended(engine, "payout_destination.added", "user", {
            "user_id": str(user_id), "kind": "bank_account", "masked": "•••• 6789",
            "destination_id": str(uuid.uuid4()),
        }))

    (full,) = feed_of(engine, with_both)
    (no_sms,) = feed_of(engine, without_phone)
    (no_email,) = feed_of(engine, without_email)
    assert full.kind == "new_payout_destination"
    assert deliveries_of(engine, full.id) == {"email": "pending", "push": "pending",
                                              "sms": "pending"}
    assert deliveries_of(engine, no_sms.id) == {"email": "pending", "push": "pending"}
    assert deliveries_of(engine, no_email.id) == {"push": "pending", "sms": "pending"}


def test_merchant_events_notify_the_merchants_owner(engine, consumer):
    owner = new_user(engine, display_name="Owner")
    shop = new_merchant(engine, owner)
    consumer.handle(appended(engine, "settlement.paid", "settlement_batch", {
        "batch_id": str(uuid.uuid4()), "merchant_id": str(shop), "currency": "USD",
        "gross_minor": "100000", "fees_minor": "2000", "refunds_minor": "0",
        "net_minor": "98000", "item_count": 7, "failure_code": None,
    }))
    consumer.handle(appended(engine, "webhook_endpoint.failing", "webhook_endpoint", {
        "endpoint_id": str(uuid.uuid4()), "merchant_id": str(shop),
        "url": "https://hooks.example.com/pacioli",
    }))

    failing, paid = feed_of(engine, owner)
    assert paid.title == "Settlement paid: 980.00 USD" and "Corner Shop" in paid.body
    assert failing.kind == "webhook_endpoint_failing"
    assert deliveries_of(engine, failing.id) == {"email": "pending"}


def test_an_order_fill_appended_by_the_exchange_notifies_the_user(engine, consumer):
    trader = new_user(engine)
    consumer.handle(appended(engine, "order.filled", "order", {
        "order_id": str(uuid.uuid4()), "user_id": str(trader), "market": "BTC-USD",
        "side": "sell", "filled_size": "0.25", "price": "61000.00",
    }))

    (filled,) = feed_of(engine, trader)
    assert filled.body == "Your sell order on BTC-USD filled: 0.25 at 61000.00."


def test_a_bill_payment_result_names_the_biller(engine, consumer):
    payer = new_user(engine)
    consumer.handle(appended(engine, "bill_payment.refunded", "bill_payment", {
        "payment_id": str(uuid.uuid4()), "user_id": str(payer), "biller_id": "sandbox_power",
        "amount_minor": "4217", "currency": "USD", "failure_code": "biller_rejected",
    }))

    (refunded,) = feed_of(engine, payer)
    assert refunded.title == "Bill payment to Sandbox Power & Light not accepted"
    assert deliveries_of(engine, refunded.id) == {"email": "pending", "push": "pending"}


def test_ignored_events_change_nothing(engine, consumer):
    user_id = new_user(engine)
    consumer.handle(appended(engine, "account.opened", "account", {"user_id": str(user_id)}))

    assert feed_of(engine, user_id) == []


# Low balance.


def pay(engine, consumer, ledger, chart, payer: UUID, payee: UUID, amount_minor: int) -> None:
    """Move money between wallets and hand the consumer the event the P2P flow emits."""
    ledger.transfer([debit(chart.wallet(payer, "USD"), amount_minor),
                     credit(chart.wallet(payee, "USD"), amount_minor)],
                    idempotency_key=uuid.uuid4().hex)
    consumer.handle(appended(engine, "p2p_payment.succeeded", "p2p_payment",
                             p2p_payload(payer, payee, amount_minor)))


def low_balance_alerts_of(engine, user_id: UUID) -> list[feed.Notification]:
    return [n for n in feed_of(engine, user_id) if n.kind == "low_balance"]


def test_a_low_balance_alerts_once_per_crossing(engine, ledger, chart, consumer):
    ada, bob = new_user(engine), new_user(engine)
    fund(ledger, chart, ada, 50_00)

    pay(engine, consumer, ledger, chart, ada, bob, 45_80)  # 4.20 left: below 10.00
    pay(engine, consumer, ledger, chart, ada, bob, 1_00)  # still low: no second alert
    (alert,) = low_balance_alerts_of(engine, ada)
    assert alert.title == "Low balance: 4.20 USD"
    assert alert.body == "Your USD balance is 4.20 USD, below your alert threshold of 10.00 USD."
    assert deliveries_of(engine, alert.id) == {"email": "pending", "push": "pending"}

    pay(engine, consumer, ledger, chart, bob, ada, 20_00)  # 23.20: recovered, re-armed
    assert len(low_balance_alerts_of(engine, ada)) == 1
    pay(engine, consumer, ledger, chart, ada, bob, 15_00)  # 8.20: a new crossing

    assert [n.title for n in low_balance_alerts_of(engine, ada)] == [
        "Low balance: 8.20 USD", "Low balance: 4.20 USD"]


def test_the_users_own_threshold_replaces_the_default(engine, ledger, chart, consumer):
    ada, bob = new_user(engine), new_user(engine)
    fund(ledger, chart, ada, 100_00)
    feed.set_low_balance_thresholds(engine, ada, {"USD": 50_00}, defaults=DEFAULTS)

    pay(engine, consumer, ledger, chart, ada, bob, 60_00)  # 40.00: below the user's 50.00

    (alert,) = low_balance_alerts_of(engine, ada)
    assert "threshold of 50.00 USD" in alert.body


def test_a_zero_threshold_turns_the_alert_off(engine, ledger, chart, consumer):
    ada, bob = new_user(engine), new_user(engine)
    fund(ledger, chart, ada, 5_00)
    feed.set_low_balance_thresholds(engine, ada, {"USD": 0}, defaults=DEFAULTS)

    pay(engine, consumer, ledger, chart, ada, bob, 5_00)  # empty

    assert low_balance_alerts_of(engine, ada) == []


def test_a_credit_below_the_threshold_raises_no_alert(engine, ledger, chart, consumer):
    ada, bob = new_user(engine), new_user(engine)
    fund(ledger, chart, bob, 5_00)

    pay(engine, consumer, ledger, chart, bob, ada, 3_00)  # ada's 3.00 arrives: a credit

    assert low_balance_alerts_of(engine, ada) == []
    assert len(low_balance_alerts_of(engine, bob)) == 1  # bob's 2.00 left is a debit


def test_the_balance_watch_is_judged_against_the_current_balance(engine, ledger, chart,
                                                                  consumer):
    ada = new_user(engine)
    fund(ledger, chart, ada, 3_00)
    source = uuid.uuid4()

    assert consumer.watch_balance(WalletChange(ada, "USD", debited=True), source_event_id=source)
    # The same event again (a re-send): the alert is outstanding, nothing new.
    assert not consumer.watch_balance(WalletChange(ada, "USD", debited=True),
                                      source_event_id=source)
    # A user with no wallet in the currency is not watched.
    assert not consumer.watch_balance(WalletChange(uuid.uuid4(), "USD", debited=True),
                                      source_event_id=source)
