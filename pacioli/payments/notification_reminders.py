"""Bill-due reminders: a scheduled job that tells users of bills they are about to owe.

`BillReminders.remind_due_bills(now)` goes through every biller account a user has paid
through Pacioli (each distinct (user, biller, customer reference) in `bill_payments`,
whatever became of the payment), fetches the current bill from the biller (outside any
transaction) and stores a `bill_due` notification when the bill

* is due between today and `due_within_days` days from now (UTC dates), and
* is not paid: no payment of that bill, by anyone, is live (created, pending or
  succeeded; a failed or refunded one does not count).

Each bill is reminded of once per user: the notification's source is a UUIDv5 of
(biller, bill reference), so the unique (user, source, kind) refuses a second reminder,
whether from the next run or from a concurrent one.

Direct-pay billers present no bills, and a biller that does not answer is skipped until
the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid5

from sqlalchemy import Engine, exists, select, tuple_

from pacioli.config import get_settings
from pacioli.gateways.base import GatewayError
from pacioli.gateways.billers import Bill, BillerRegistry, Presentment
from pacioli.payments.bills import bill_payments
from pacioli.payments.notification_messages import Lookup, bill_due_draft
from pacioli.payments.notifications import store

log = logging.getLogger(__name__)

# The namespace of bill reminders' source ids (a UUIDv5 per biller and bill reference).
BILL_DUE_NAMESPACE = UUID("5d0c3b1e-6f1a-4c57-9a43-2b7f4e0b9d21")
LIVE_STATUSES = ("created", "pending", "succeeded")
PAGE_SIZE = 500


def bill_source_id(biller_id: str, bill_reference: str) -> UUID:
    """The source id a reminder of this bill is stored under."""
    return uuid5(BILL_DUE_NAMESPACE, f"bill_due:{biller_id}:{bill_reference}")


class BillReminders:
    """The job `remind_due_bills(now)`."""

    def __init__(
        self, engine: Engine, billers: BillerRegistry, lookup: Lookup, *,
        due_within_days: int | None = None,
    ) -> None:
        """`due_within_days` defaults to the setting `notification_bill_due_days`."""
        self._engine = engine
        self._billers = billers
        self._lookup = lookup
        if due_within_days is None:
            due_within_days = get_settings().notification_bill_due_days
        self._due_within_days = due_within_days

    def remind_due_bills(self, now: datetime) -> int:
        """Remind users of unpaid bills due soon; returns how many reminders were stored."""
        today = now.astimezone(UTC).date()
        stored = 0
        for user_id, biller_id, customer_reference in self._biller_accounts():
            bill = self._current_bill(biller_id, customer_reference)
            if bill is None or not 0 <= (bill.due_date - today).days <= self._due_within_days:
                continue
            if self._is_paid(biller_id, bill.bill_reference):
                continue
            draft = bill_due_draft(
                user_id, biller_id=biller_id, bill_reference=bill.bill_reference,
                customer_reference=customer_reference, amount_minor=bill.amount_minor,
                minimum_due_minor=bill.minimum_due_minor, currency=bill.currency,
                due_date=bill.due_date, today=today, lookup=self._lookup,
            )
            with self._engine.begin() as connection:
                stored += len(store(connection, [draft], now=now,
                                    source_event_id=bill_source_id(biller_id,
                                                                   bill.bill_reference)))
        return stored

    def _biller_accounts(self) -> Iterator[tuple[UUID, str, str]]:
        """Each distinct (user, biller, customer reference) paid through, in pages."""
        t = bill_payments
        key = tuple_(t.c.user_id, t.c.biller_id, t.c.customer_reference)
        after = None
        while True:
            query = (select(t.c.user_id, t.c.biller_id, t.c.customer_reference).distinct()
                     .order_by(t.c.user_id, t.c.biller_id, t.c.customer_reference)
                     .limit(PAGE_SIZE))
            if after is not None:
                query = query.where(key > tuple_(*after))
            with self._engine.connect() as connection:
                page = [tuple(row) for row in connection.execute(query)]
            yield from page
            if len(page) < PAGE_SIZE:
                return
            after = page[-1]

    def _current_bill(self, biller_id: str, customer_reference: str) -> Bill | None:
        """The biller's current bill, or None (no such biller, direct pay, no answer)."""
        try:
            biller = self._billers.get(biller_id)
            if biller.info.presentment is not Presentment.FETCH_THEN_PAY:
                return None
            return biller.fetch_bill(customer_reference)
        except GatewayError as error:
            log.info("no bill from %s for a reminder: %s", biller_id, error.code)
            return None

    def _is_paid(self, biller_id: str, bill_reference: str) -> bool:
        t = bill_payments
        with self._engine.connect() as connection:
            return connection.execute(select(exists().where(
                t.c.biller_id == biller_id, t.c.bill_reference == bill_reference,
                t.c.status.in_(LIVE_STATUSES),
            ))).scalar_one()
