"""What a `pacioli worker` runs: the event consumers and the scheduled jobs, built here.

`wire(engine, ledger, settings, resources)` builds the services every worker process
needs and returns them as a `Workload`. Anything that must be closed when the worker
stops (an HTTP client, say) goes on `resources`, an ExitStack the worker closes after
the consumers and jobs have stopped.

Each area adds its consumer and jobs in its marked place below. A consumer must be
idempotent by event id; a job must be safe to run twice at once (docs/workers.md).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import Engine

from pacioli.commerce import carts, inventory
from pacioli.commerce.order_services import order_services
from pacioli.commerce.order_settings import order_settings
from pacioli.commerce.settings import commerce_settings
from pacioli.config import Settings
from pacioli.gateways.billers.sandbox import SandboxBillerRegistry
from pacioli.gateways.sandbox import SandboxGateway
from pacioli.gateways.sandbox.delivery import httpx_sender
from pacioli.ledger import Ledger
from pacioli.payments.bills import BillPayments
from pacioli.payments.chart import Chart
from pacioli.payments.notification_delivery import (
    NotificationDelivery,
    RetryPolicy,
    channels_from_settings,
)
from pacioli.payments.notification_reminders import BillReminders
from pacioli.payments.notifications import Notifications
from pacioli.payments.qr_payments import QrPayments
from pacioli.payments.settlement import Settlement
from pacioli.payments.topups import TopUps
from pacioli.payments.webhooks import Webhooks
from pacioli.payments.withdrawals import Withdrawals
from pacioli.workers.actors import EventConsumer
from pacioli.workers.scheduler import ScheduledJob

# Holds past their deadline are released within about this long.
PENDING_EXPIRY_INTERVAL = timedelta(seconds=1)
# Top-ups, withdrawals and bill payments a callback did not settle are asked about again.
UNSETTLED_REFRESH_INTERVAL = timedelta(seconds=60)
# The sandbox processor's simulated outcomes and callbacks go out this often.
SANDBOX_DELIVERY_INTERVAL = timedelta(seconds=1)
SANDBOX_CALLBACK_TIMEOUT_SECONDS = 5.0
# Notification channel deliveries due (first sends and retries) go out this often.
NOTIFICATION_DELIVERY_INTERVAL = timedelta(seconds=5)
# Bills due soon are looked for this often (each bill is reminded of once); a run fetches
# every paid-before bill from its biller, so it may take a while.
BILL_REMINDER_INTERVAL = timedelta(hours=6)
BILL_REMINDER_LEASE = timedelta(hours=1)
# Settlement runs often: what is due follows from the cutoff, so a rerun binds nothing new;
# a run left unfinished (a killed worker) is resumed by the next one, so a short lease.
SETTLEMENT_CYCLE_INTERVAL = timedelta(minutes=1)
SETTLEMENT_REFRESH_INTERVAL = timedelta(seconds=60)
SETTLEMENT_LEASE = timedelta(minutes=2)
QR_EXPIRY_INTERVAL = timedelta(seconds=30)
# Webhook deliveries due (first attempts and retries) go out this often.
WEBHOOK_DELIVERY_INTERVAL = timedelta(seconds=1)


@dataclass
class Workload:
    """The consumers fed by the relay and the jobs run by the scheduler."""

    consumers: list[EventConsumer] = field(default_factory=list)
    jobs: list[ScheduledJob] = field(default_factory=list)

    def extend(self, other: Workload) -> None:
        self.consumers += other.consumers
        self.jobs += other.jobs


def wire(engine: Engine, ledger: Ledger, settings: Settings, resources: ExitStack) -> Workload:
    """Build every area's consumers and jobs for one worker process."""
    chart = Chart(engine, ledger)
    gateway = SandboxGateway(engine)
    workload = Workload()
    workload.jobs += ledger_jobs(ledger)
    workload.jobs += funding_jobs(engine, ledger, chart, gateway)
    workload.jobs += sandbox_jobs(gateway, resources)

    workload.extend(webhook_work(engine, settings, resources))

    workload.extend(notification_work(engine, ledger, settings))

    workload.jobs += settlement_jobs(engine, ledger, chart, gateway, settings)

    workload.jobs += commerce_catalog_jobs(engine)
    workload.jobs += commerce_order_jobs(engine, ledger, chart, gateway)

    return workload


def settlement_jobs(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: SandboxGateway, settings: Settings
) -> list[ScheduledJob]:
    """Merchant settlement and payouts (docs/settlement.md), and the dynamic QR expiry."""
    settlement = Settlement(engine, ledger, chart, gateway,
                            cycle_days=settings.settlement_cycle_days,
                            fault_at=settings.fault_at)
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}
    codes = QrPayments(engine, ledger, chart, scale_of=scales.__getitem__)
    return [
        ScheduledJob("settlement.run_cycle", SETTLEMENT_CYCLE_INTERVAL, settlement.run_cycle,
                     lease=SETTLEMENT_LEASE),
        ScheduledJob("settlement.refresh_unsettled", SETTLEMENT_REFRESH_INTERVAL,
                     settlement.refresh_unsettled, lease=SETTLEMENT_LEASE),
        ScheduledJob("qr.expire_codes", QR_EXPIRY_INTERVAL, codes.expire_codes),
    ]


def commerce_order_jobs(engine: Engine, ledger: Ledger, chart: Chart,
                        gateway: SandboxGateway) -> list[ScheduledJob]:
    """Checkouts a card left undecided, captures and voids, and refunds a crash or an
    unreachable gateway left half done (docs/commerce.md, "Checkout" and "Refunds")."""
    services = order_services(engine, ledger, chart, gateway)
    interval = timedelta(seconds=order_settings().sweep_interval_seconds)
    return [
        ScheduledJob("commerce.refresh_checkouts", interval,
                     services.checkout.refresh_unsettled),
        ScheduledJob("commerce.finish_money_steps", interval,
                     services.orders.finish_money_steps),
        ScheduledJob("commerce.finish_refunds", interval, services.refunds.finish_unfinished),
    ]


def commerce_catalog_jobs(engine: Engine) -> list[ScheduledJob]:
    """Stock reservations past their time go back on sale; idle carts expire
    (docs/commerce.md, "Inventory" and "Carts")."""
    interval = timedelta(seconds=commerce_settings().expiry_interval_seconds)
    return [
        ScheduledJob("commerce.expire_reservations", interval,
                     lambda now: inventory.expire_reservations(engine, now)),
        ScheduledJob("commerce.expire_idle_carts", interval,
                     lambda now: carts.expire_idle_carts(
                         engine, now, idle_seconds=commerce_settings().cart_idle_seconds)),
    ]


def ledger_jobs(ledger: Ledger) -> list[ScheduledJob]:
    return [
        ScheduledJob("ledger.expire_pending", PENDING_EXPIRY_INTERVAL,
                     lambda now: ledger.expire_pending()),
    ]


def funding_jobs(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: SandboxGateway
) -> list[ScheduledJob]:
    """Sweeps that settle what a lost gateway or biller callback left unsettled."""
    topups = TopUps(engine, ledger, chart, gateway)
    withdrawals = Withdrawals(engine, ledger, chart, gateway)
    bills = BillPayments(engine, ledger, chart, SandboxBillerRegistry(engine))
    return [
        ScheduledJob("topups.refresh_unsettled", UNSETTLED_REFRESH_INTERVAL,
                     lambda now: topups.refresh_unsettled()),
        ScheduledJob("withdrawals.refresh_unsettled", UNSETTLED_REFRESH_INTERVAL,
                     lambda now: withdrawals.refresh_unsettled()),
        ScheduledJob("bill_payments.refresh_unsettled", UNSETTLED_REFRESH_INTERVAL,
                     lambda now: bills.refresh_unsettled()),
    ]


def webhook_work(engine: Engine, settings: Settings, resources: ExitStack) -> Workload:
    """Merchant webhooks: the consumer that makes deliveries of merchant events, and the
    job that sends the due ones (first attempts and retries; docs/webhooks.md)."""
    webhooks = Webhooks.from_settings(engine, settings)
    resources.callback(webhooks.close)
    return Workload(consumers=[webhooks], jobs=[
        ScheduledJob("webhooks.deliver_due", WEBHOOK_DELIVERY_INTERVAL,
                     lambda now: webhooks.deliver_due(now), lease=webhooks.lease),
    ])


def notification_work(engine: Engine, ledger: Ledger, settings: Settings) -> Workload:
    """The notifications consumer, channel deliveries and bill-due reminders."""
    billers = SandboxBillerRegistry(engine)
    consumer = Notifications(
        engine, ledger, billers=billers,
        low_balance_defaults_minor=settings.notification_low_balance_default_minor,
    )
    delivery = NotificationDelivery(engine, channels_from_settings(settings),
                                    policy=RetryPolicy.from_settings(settings))
    reminders = BillReminders(engine, billers, consumer.lookup,
                              due_within_days=settings.notification_bill_due_days)
    return Workload(consumers=[consumer], jobs=[
        ScheduledJob("notifications.deliver_due", NOTIFICATION_DELIVERY_INTERVAL,
                     lambda now: delivery.deliver_due(now)),
        ScheduledJob("notifications.remind_due_bills", BILL_REMINDER_INTERVAL,
                     reminders.remind_due_bills, lease=BILL_REMINDER_LEASE),
    ])


def sandbox_jobs(gateway: SandboxGateway, resources: ExitStack) -> list[ScheduledJob]:
    """The sandbox processor's outcomes and signed callbacks (to the API's callback URL)."""
    client = resources.enter_context(httpx.Client(timeout=SANDBOX_CALLBACK_TIMEOUT_SECONDS))
    send = httpx_sender(client)
    return [
        ScheduledJob("sandbox.deliver_callbacks", SANDBOX_DELIVERY_INTERVAL,
                     lambda now: gateway.deliver_due(now, send)),
    ]
