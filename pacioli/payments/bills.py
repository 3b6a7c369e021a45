"""Bill payments: a user pays a biller from their wallet, and the money moves when the
biller confirms.

A payment goes through these steps (docs/payments.md, "Bill payments", draws them):

1. **Validate** before anything is written: the biller exists, takes this currency, and
   its amount rule takes this amount (for a fetch-then-pay biller, against the bill just
   fetched from it).
2. **Record** a `bill_payments` row, `created`, unique per (user, Idempotency-Key) with a
   hash of the request.
3. **Hold**: a pending ledger transfer, user wallet → the biller's `biller_payable`
   account, keyed `bill:<id>:hold`. The ledger refusing it (insufficient funds) makes the
   payment `failed`; nothing moved. Otherwise it is `pending`.
4. **Submit** to the biller, outside any database transaction, with the payment's id as
   the biller's payment reference (so a resubmission finds the first one). A biller that
   does not answer leaves the payment pending for a refresh to submit again; a biller
   that refuses it outright releases the hold at once (`refunded`).
5. **Settle** on a refresh (`refresh_bill_payment`): ask the biller; when it confirmed,
   post the hold (`bill:<id>:post`, `succeeded`); when it failed, void it
   (`bill:<id>:void`, `refunded`: the user has the money back).

Every ledger step has a key derived from the payment's id, and every row update is
conditional on the status it leaves, so retries, replays and concurrent refreshes move
money once. The update that makes a payment `succeeded` or `refunded` appends
`bill_payment.succeeded` or `bill_payment.refunded` to the outbox in its own transaction,
so a payment announces its end once (a hold the ledger refused, `failed`, moved nothing
and announces nothing: the request itself was refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways import base as gw
from pacioli.gateways.billers import base as billers
from pacioli.gateways.billers.base import (
    Bill,
    BillerInfo,
    BillerPayment,
    BillerRegistry,
    BillerStatus,
    Presentment,
)
from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.ledger.storage.tables import MinorUnits
from pacioli.payments import bill_errors as be
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.errors import rejection_with_code

PAGE_LIMIT_MAX = 200
CUSTOMER_REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9+\-]{4,32}")
UNSETTLED = ("created", "pending")
FAILURE_CODE_BILLER_FAILED = "biller_failed"
# The event each final status announces (a `failed` payment moved nothing: none).
FINAL_EVENTS = {"succeeded": "bill_payment.succeeded", "refunded": "bill_payment.refunded"}

metadata = MetaData()

# A bill payment: what the user asked to pay, and where it stands. Migration 0005.
bill_payments = Table(
    "bill_payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("biller_id", Text, nullable=False),
    Column("amount_rule", Text, nullable=False),
    Column("customer_reference", Text, nullable=False),
    Column("bill_reference", Text),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, pending, succeeded, failed, refunded
    Column("failure_code", Text),
    Column("biller_reference", Text),
    Column("hold_transfer_id", Uuid),
    Column("settlement_transfer_id", Uuid),  # the post or the void of the hold
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("held_at", DateTime(timezone=True)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("user_id", "idempotency_key"),
)


@dataclass(frozen=True, slots=True)
class BillPayment:
    id: UUID
    user_id: UUID
    biller_id: str
    amount_rule: str
    customer_reference: str
    bill_reference: str | None
    currency: str
    amount_minor: int
    status: str  # created, pending, succeeded, failed, refunded
    failure_code: str | None
    biller_reference: str | None
    hold_transfer_id: UUID | None
    settlement_transfer_id: UUID | None
    created_at: datetime
    held_at: datetime | None
    submitted_at: datetime | None
    checked_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class BillAnswer:
    """A payment, and whether an earlier request with the same key produced it."""

    value: BillPayment
    replayed: bool


class BillPayments:
    """Pays billers from users' wallets (see the module's docstring for the steps)."""

    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, registry: BillerRegistry
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._registry = registry

    # Billers and bills.

    def list_billers(self, category: str | None = None) -> list[BillerInfo]:
        """Every biller (of one category). Raises: InvalidBillPayment (unknown category)."""
        if category is None:
            return self._registry.list_billers()
        try:
            return self._registry.list_billers(billers.BillerCategory(category))
        except ValueError:
            raise be.InvalidBillPayment(f"no biller category is called {category!r}") from None

    def biller(self, biller_id: str) -> billers.Biller:
        """Raises: BillerNotFound."""
        try:
            return self._registry.get(biller_id)
        except billers.UnknownBiller:
            raise be.BillerNotFound(f"no biller has the id {biller_id!r}") from None

    def fetch_bill(self, biller_id: str, customer_reference: str) -> Bill:
        """The bill due for a customer reference, fetched from the biller.

        Raises: BillerNotFound, InvalidCustomerReference, BillFetchNotSupported,
        BillNotFound, BillerUnavailable.
        """
        biller = self.biller(biller_id)
        _check_reference(customer_reference)
        try:
            return biller.fetch_bill(customer_reference)
        except billers.BillFetchNotSupported as refusal:
            raise be.BillFetchNotSupported(refusal.detail) from None
        except billers.UnknownCustomerReference as missing:
            raise be.BillNotFound(missing.detail) from None

    # Paying.

    def pay_bill(
        self, *, user_id: UUID, biller_id: str, customer_reference: str, amount_minor: int,
        currency: str, idempotency_key: str,
    ) -> BillAnswer:
        """Hold the amount in the user's wallet and submit the payment to the biller.

        Returns the payment, usually `pending` (the biller confirms later; see
        `refresh_bill_payment`), or `refunded` when the biller refused it at once.

        Raises: InvalidBillPayment, InvalidCustomerReference, BillerNotFound,
        CurrencyNotAccepted, BillNotFound, AmountNotAllowed, BillAlreadyPaid,
        IdempotencyKeyReusedForBillPayment, BillerUnavailable (fetching the bill), and the
        ledger's rejections (InsufficientFunds, AccountFrozen ...), also on a replay.
        """
        _check_reference(customer_reference)
        if type(amount_minor) is not int or amount_minor <= 0:
            raise be.InvalidBillPayment("the amount must be a positive number of minor units")
        request_hash = records.request_hash(biller_id, customer_reference, amount_minor, currency)
        existing = self._find(user_id, idempotency_key)
        if existing is not None:
            payment, replayed = _replayed(existing, request_hash, idempotency_key), True
        else:
            info, bill = self._validate(biller_id, customer_reference, amount_minor, currency)
            payment, replayed = self._claim(
                user_id, info, bill, customer_reference, amount_minor, idempotency_key,
                request_hash,
            )
        payment = self._advance(payment)
        if payment.status == "failed":
            raise rejection_with_code(
                payment.failure_code, f"bill payment {payment.id} failed: {payment.failure_code}"
            )
        return BillAnswer(payment, replayed)

    def refresh_bill_payment(self, user_id: UUID, payment_id: UUID) -> BillPayment:
        """Ask the biller how the user's payment stands and settle it if it is decided.

        Idempotent: a settled payment is returned as it is, and two refreshes at once post
        or void the hold once (the ledger keys derive from the payment's id).

        Raises: BillPaymentNotFound, BillerUnavailable, and the ledger's rejections of
        the post (AccountFrozen ...), which leave the payment pending.
        """
        return self._refresh(self.get_bill_payment(user_id, payment_id))

    def refresh_unsettled(self, *, limit: int = 100) -> list[BillPayment]:
        """Refresh the unsettled payments of every user (for a periodic worker).

        The least recently checked go first (never checked before all), so payments a
        biller keeps pending for days do not starve newer ones. A biller that does not
        answer is skipped until the next sweep.
        """
        t = bill_payments
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t).where(t.c.status.in_(UNSETTLED))
                .order_by(t.c.checked_at.asc().nulls_first(), t.c.created_at)
                .limit(min(limit, PAGE_LIMIT_MAX))
            ).all()
        refreshed = []
        for row in rows:
            payment = _payment(row)
            try:
                refreshed.append(self._refresh(payment))
            except billers.BillerUnavailable:
                self._update(payment, UNSETTLED, checked_at=_now())
        return refreshed

    # Reading.

    def get_bill_payment(self, user_id: UUID, payment_id: UUID) -> BillPayment:
        """One of the user's payments. Raises: BillPaymentNotFound."""
        t = bill_payments
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.id == payment_id, t.c.user_id == user_id)
            ).first()
        if row is None:
            raise be.BillPaymentNotFound(f"no bill payment {payment_id}")
        return _payment(row)

    def list_bill_payments(
        self, user_id: UUID, *, status: str | None = None, limit: int = 50,
        starting_after: UUID | None = None,
    ) -> list[BillPayment]:
        """The user's payments, newest first (ids are time-ordered)."""
        t = bill_payments
        wanted = [t.c.user_id == user_id] + ([] if status is None else [t.c.status == status])
        query = records.newest_first(t, *wanted, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_payment(row) for row in connection.execute(query)]

    # Steps.

    def _validate(
        self, biller_id: str, customer_reference: str, amount_minor: int, currency: str
    ) -> tuple[BillerInfo, Bill | None]:
        """Every check that can refuse the payment, before anything is written."""
        info = self.biller(biller_id).info
        if currency != info.currency:
            raise be.CurrencyNotAccepted(f"{info.name} takes {info.currency}, not {currency}")
        bill = None
        if info.presentment is Presentment.FETCH_THEN_PAY:
            bill = self.fetch_bill(biller_id, customer_reference)
        if not billers.amount_allowed(info.amount_rule, bill, amount_minor):
            raise be.AmountNotAllowed(_amount_rule_text(info, bill))
        return info, bill

    def _claim(
        self, user_id, info: BillerInfo, bill: Bill | None, customer_reference, amount_minor,
        idempotency_key, request_hash,
    ) -> tuple[BillPayment, bool]:
        """Record the payment, or find the one this key recorded before."""
        t = bill_payments
        with self._engine.begin() as connection:
            # No conflict target: the (user, key) constraint and the one live payment of
            # an exact bill are both unique, and either makes the insert a no-op.
            inserted = connection.execute(
                insert(t).values(
                    id=uuid7(), user_id=user_id, biller_id=info.id,
                    amount_rule=str(info.amount_rule), customer_reference=customer_reference,
                    bill_reference=bill.bill_reference if bill else None,
                    currency=info.currency, amount_minor=amount_minor, status="created",
                    idempotency_key=idempotency_key, request_hash=request_hash,
                    created_at=datetime.now(UTC),
                ).on_conflict_do_nothing().returning(t)
            ).first()
        if inserted is not None:
            return _payment(inserted), False
        existing = self._find(user_id, idempotency_key)
        if existing is None:
            raise be.BillAlreadyPaid(
                f"bill {bill.bill_reference if bill else ''} is being paid or was paid already"
            )
        return _replayed(existing, request_hash, idempotency_key), True

    def _refresh(self, payment: BillPayment) -> BillPayment:
        payment = self._advance(payment)
        if payment.status == "pending" and payment.biller_reference is not None:
            payment = self._check(payment)
        return payment

    def _advance(self, payment: BillPayment) -> BillPayment:
        """Take a recorded payment as far as it goes without the biller's verdict."""
        if payment.status == "created":
            payment = self._hold(payment)
        if payment.status == "pending" and payment.biller_reference is None:
            payment = self._submit(payment)
        return payment

    def _hold(self, payment: BillPayment) -> BillPayment:
        """Reserve the amount: a pending transfer from the wallet to the biller payable."""
        try:
            wallet = self._chart.wallet(payment.user_id, payment.currency)
            payable = self._chart.platform(
                Purpose.BILLER_PAYABLE, payment.currency, scope=payment.biller_id
            )
            hold = self._ledger.transfer(
                [debit(wallet, payment.amount_minor), credit(payable, payment.amount_minor)],
                pending=True, metadata=_metadata(payment),
                idempotency_key=f"bill:{payment.id}:hold", client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._update(payment, ("created",), status="failed",
                                failure_code=rejection.code, completed_at=_now())
        return self._update(payment, ("created",), status="pending", hold_transfer_id=hold.id,
                            held_at=_now())

    def _submit(self, payment: BillPayment) -> BillPayment:
        """Submit a held payment to the biller (no database transaction is open here)."""
        try:
            submitted = self.biller(payment.biller_id).submit_payment(
                customer_reference=payment.customer_reference,
                bill_reference=payment.bill_reference, amount_minor=payment.amount_minor,
                currency=payment.currency, payment_reference=str(payment.id),
            )
        except billers.BillerUnavailable:
            # The outcome is unknown: a refresh submits again with the same reference.
            return payment
        except (gw.GatewayRejected, gw.GatewayNotFound) as refusal:
            # The biller refused it outright and never took it: release the hold now.
            return self._release(payment, refusal.code)
        payment = self._update(
            payment, ("pending",), only_unsubmitted=True,
            biller_reference=submitted.biller_reference, submitted_at=_now(),
        )
        if submitted.status.is_final:
            payment = self._settle(payment, submitted)
        return payment

    def _check(self, payment: BillPayment) -> BillPayment:
        """Ask the biller for its verdict and settle the payment when there is one."""
        verdict = self.biller(payment.biller_id).fetch_status(payment.biller_reference)
        if not verdict.status.is_final:
            return self._update(payment, ("pending",), checked_at=_now())
        return self._settle(payment, verdict)

    def _settle(self, payment: BillPayment, verdict: BillerPayment) -> BillPayment:
        if verdict.status is BillerStatus.SUCCEEDED:
            posted = self._ledger.post_pending(
                payment.hold_transfer_id, metadata=_metadata(payment),
                idempotency_key=f"bill:{payment.id}:post", client_id=PAYMENTS_CLIENT_ID,
            ).value
            return self._update(payment, ("pending",), status="succeeded",
                                settlement_transfer_id=posted.id, checked_at=_now(),
                                completed_at=_now())
        return self._release(payment, verdict.failure_code or FAILURE_CODE_BILLER_FAILED)

    def _release(self, payment: BillPayment, failure_code: str) -> BillPayment:
        """Void the hold: the user has the money back."""
        voided = self._ledger.void_pending(
            payment.hold_transfer_id, metadata=_metadata(payment),
            idempotency_key=f"bill:{payment.id}:void", client_id=PAYMENTS_CLIENT_ID,
        ).value
        return self._update(payment, ("pending",), status="refunded", failure_code=failure_code,
                            settlement_transfer_id=voided.id, checked_at=_now(),
                            completed_at=_now())

    # Rows.

    def _find(self, user_id: UUID, idempotency_key: str):
        """The row this user's key recorded, if any."""
        t = bill_payments
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.idempotency_key == idempotency_key)
            ).first()

    def _update(
        self, payment: BillPayment, statuses: tuple[str, ...], *,
        only_unsubmitted: bool = False, **values: Any,
    ) -> BillPayment:
        """Change the row if it is still in one of `statuses`; return it as it now is.

        When a concurrent step moved it first, the update does nothing and the row that
        step wrote is returned. An update that settles the payment appends its event in
        the same transaction.
        """
        t = bill_payments
        condition = (t.c.id == payment.id) & t.c.status.in_(statuses)
        if only_unsubmitted:
            condition &= t.c.biller_reference.is_(None)
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(t).where(condition).values(**values).returning(t)
            ).first()
            # `statuses` are unsettled ones, so a changed row that is final was settled now.
            if changed is not None and changed.status in FINAL_EVENTS:
                _announce(connection, changed)
            row = changed or connection.execute(select(t).where(t.c.id == payment.id)).one()
        return _payment(row)


def _check_reference(customer_reference: str) -> None:
    if not isinstance(customer_reference, str) or not CUSTOMER_REFERENCE_PATTERN.fullmatch(
        customer_reference
    ):
        raise be.InvalidCustomerReference(
            "a customer reference is 4 to 32 letters, digits, '+' or '-'"
        )


def _replayed(row, request_hash: str, idempotency_key: str) -> BillPayment:
    """The record an earlier request with this key made.

    Raises: IdempotencyKeyReusedForBillPayment.
    """
    return _payment(
        records.same_request(
            row, request_hash, idempotency_key, be.IdempotencyKeyReusedForBillPayment
        )
    )


def _amount_rule_text(info: BillerInfo, bill: Bill | None) -> str:
    if bill is not None and info.amount_rule is billers.AmountRule.EXACT:
        return f"{info.name} takes exactly the bill's amount ({bill.amount_minor} minor units)"
    if bill is not None and info.amount_rule is billers.AmountRule.MINIMUM:
        return (f"{info.name} takes at least the minimum due"
                f" ({bill.minimum_due_minor} minor units)")
    return f"{info.name} does not take this amount"


def _announce(connection, row) -> None:
    """`bill_payment.succeeded` or `.refunded` for a payment just settled (in its
    transaction)."""
    append_event(connection, FINAL_EVENTS[row.status], "bill_payment", str(row.id), {
        "payment_id": str(row.id), "user_id": str(row.user_id), "biller_id": row.biller_id,
        "amount_minor": str(int(row.amount_minor)), "currency": row.currency,
        "failure_code": row.failure_code,
    })


def _metadata(payment: BillPayment) -> dict[str, str]:
    return {"flow": "bill_payment", "bill_payment_id": str(payment.id),
            "user_id": str(payment.user_id), "biller_id": payment.biller_id}


def _now() -> datetime:
    return datetime.now(UTC)


def _payment(row) -> BillPayment:
    return BillPayment(**{column.name: getattr(row, column.name)
                          for column in bill_payments.columns
                          if column.name not in ("idempotency_key", "request_hash")})
