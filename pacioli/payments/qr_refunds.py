"""Refunds of QR payments: a merchant gives (part of) a payment back to the payer's wallet.

Steps, like every flow (record, move, finish; docs/settlement.md "Refunds"):

1. **Record** a `qr_refunds` row, `created`, unique per (merchant, Idempotency-Key), with
   the payment's row locked so concurrent refunds of one payment never add up to more
   than it. The row fixes which merchant account pays, and how much of the fee the
   platform gives back (the fee's share of the amount refunded so far, rounded down,
   less what earlier refunds gave back, so a full refund returns the fee exactly):
   - the payment is not in a settlement batch yet: its pending-settlement account, and
     the refund becomes a negative settlement item netted in the next settlement;
   - it is: the merchant's balance (which refuses to overdraw: `insufficient_funds`).
2. **Move**: one ledger transfer keyed `qr_refund:<id>`: that account (amount − fee
   returned) and `fee_revenue` (fee returned) → the payer's wallet (amount).
3. **Finish** `succeeded` (queuing the negative item, and appending
   `qr_payment.refunded`) or `failed` with the ledger's code, from `created` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from uuid import UUID

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import records
from pacioli.payments import settlement_errors as se
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.qr_payments import QR_PAYMENT_SOURCE
from pacioli.payments.settlement_items import item_of_source, record_item
from pacioli.payments.settlement_tables import qr_refunds
from pacioli.payments.tables import qr_payments

QR_REFUND_SOURCE = "qr_refund"  # the settlement items' source kind
PENDING_SETTLEMENT = "pending_settlement"
MERCHANT_BALANCE = "merchant_balance"


@dataclass(frozen=True, slots=True)
class QrRefund:
    id: UUID
    payment_id: UUID
    merchant_id: UUID
    payer_user_id: UUID
    currency: str
    amount_minor: int
    fee_returned_minor: int
    source: str  # pending_settlement, merchant_balance
    status: str  # created, succeeded, failed
    failure_code: str | None
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    value: QrRefund
    replayed: bool


def fee_share_minor(fee_minor: int, amount_minor: int, refunded_minor: int) -> int:
    """The part of a payment's fee that `refunded_minor` of its amount carries, rounded
    down (so the shares of partial refunds never add up to more than the fee)."""
    return math.floor(Fraction(fee_minor * refunded_minor, amount_minor))


class QrRefunds:
    """Merchants refund their QR payments (steps in the module docstring)."""

    def __init__(self, engine: Engine, ledger: Ledger, chart: Chart, *,
                 clock=lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._clock = clock

    def refund(
        self, *, merchant_id: UUID, payment_id: UUID, amount_minor: int | None = None,
        idempotency_key: str,
    ) -> RefundAnswer:
        """Refund `amount_minor` of a payment (all that is left of it when None).

        Raises: InvalidRefund, PaymentNotFound, PaymentNotRefundable, RefundExceedsPayment,
        IdempotencyKeyReusedForRefund, and the ledger's rejections (InsufficientFunds
        from the merchant's balance, AccountFrozen ...), also when replaying.
        """
        if amount_minor is not None and (type(amount_minor) is not int or amount_minor <= 0):
            raise se.InvalidRefund("the amount must be a positive number of minor units")
        request_hash = records.request_hash(payment_id, amount_minor)
        existing = self._by_key(merchant_id, idempotency_key)
        if existing is not None:
            refund, replayed = _replayed(existing, request_hash, idempotency_key), True
        else:
            refund, replayed = self._claim(merchant_id, payment_id, amount_minor,
                                           idempotency_key, request_hash)
        if refund.status == "created":
            refund = self._move(refund)
        if refund.status == "failed":
            raise pe.rejection_with_code(refund.failure_code,
                                         f"refund {refund.id} failed: {refund.failure_code}")
        return RefundAnswer(refund, replayed)

    def get(self, merchant_id: UUID, refund_id: UUID) -> QrRefund:
        """Raises: RefundNotFound."""
        t = qr_refunds
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.id == refund_id, t.c.merchant_id == merchant_id)
            ).first()
        if row is None:
            raise se.RefundNotFound(f"no refund {refund_id}")
        return _refund(row)

    def list(self, merchant_id: UUID, *, payment_id: UUID | None = None, limit: int = 50,
             starting_after: UUID | None = None) -> list[QrRefund]:
        """The merchant's refunds (of one payment, if given), newest first."""
        t = qr_refunds
        wanted = [t.c.merchant_id == merchant_id]
        if payment_id is not None:
            wanted.append(t.c.payment_id == payment_id)
        query = records.newest_first(t, *wanted, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_refund(row) for row in connection.execute(query)]

    # Steps.

    def _claim(self, merchant_id, payment_id, amount_minor, idempotency_key,
               request_hash) -> tuple[QrRefund, bool]:
        t = qr_refunds
        with self._engine.begin() as connection:
            payment = connection.execute(
                select(qr_payments).where(qr_payments.c.id == payment_id,
                                          qr_payments.c.merchant_id == merchant_id)
                .with_for_update()
            ).first()
            if payment is None:
                raise pe.PaymentNotFound(f"no payment {payment_id}")
            if payment.status != "succeeded":
                raise se.PaymentNotRefundable(f"payment {payment_id} is {payment.status}")
            refunded, fee_returned = connection.execute(
                select(func.coalesce(func.sum(t.c.amount_minor), 0),
                       func.coalesce(func.sum(t.c.fee_returned_minor), 0))
                .where(t.c.payment_id == payment_id, t.c.status != "failed")
            ).one()
            refunded, fee_returned = int(refunded), int(fee_returned)
            amount = amount_minor if amount_minor is not None else (
                payment.amount_minor - refunded)
            if amount <= 0 or refunded + amount > payment.amount_minor:
                raise se.RefundExceedsPayment(
                    f"{payment.amount_minor - refunded} minor units of payment {payment_id} "
                    "are left to refund"
                )
            # From here on the refund is allowed and is recorded.
            share = fee_share_minor(payment.fee_minor, payment.amount_minor, refunded + amount)
            item = item_of_source(connection, QR_PAYMENT_SOURCE, payment_id)
            row = connection.execute(
                insert(t).values(
                    id=uuid7(), payment_id=payment_id, merchant_id=merchant_id,
                    payer_user_id=payment.payer_user_id, currency=payment.currency,
                    amount_minor=amount,
                    fee_returned_minor=min(amount, max(0, share - fee_returned)),
                    source=PENDING_SETTLEMENT if item is not None and item.batch_id is None
                    else MERCHANT_BALANCE,
                    status="created", idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=self._clock(),
                ).on_conflict_do_nothing(index_elements=["merchant_id", "idempotency_key"])
                .returning(t)
            ).first()
        if row is None:  # the same key raced us
            return _replayed(self._by_key(merchant_id, idempotency_key), request_hash,
                             idempotency_key), True
        return _refund(row), False

    def _move(self, refund: QrRefund) -> QrRefund:
        merchant_share = refund.amount_minor - refund.fee_returned_minor
        source = (self._chart.merchant_pending_settlement if refund.source == PENDING_SETTLEMENT
                  else self._chart.merchant_balance)(refund.merchant_id, refund.currency)
        legs = [credit(self._chart.wallet(refund.payer_user_id, refund.currency),
                       refund.amount_minor)]
        if merchant_share:
            legs.append(debit(source, merchant_share))
        if refund.fee_returned_minor:
            legs.append(debit(self._chart.platform(Purpose.FEE_REVENUE, refund.currency),
                              refund.fee_returned_minor))
        try:
            transfer = self._ledger.transfer(
                legs,
                metadata={"flow": "qr_refund", "refund_id": str(refund.id),
                          "payment_id": str(refund.payment_id),
                          "merchant_id": str(refund.merchant_id), "source": refund.source},
                idempotency_key=f"qr_refund:{refund.id}", client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._finish(refund, "failed", failure_code=rejection.code)
        return self._finish(refund, "succeeded", transfer_id=transfer.id)

    def _finish(self, refund: QrRefund, status: str, *, transfer_id=None,
                failure_code=None) -> QrRefund:
        t = qr_refunds
        with self._engine.begin() as connection:
            finished = connection.execute(
                update(t).where(t.c.id == refund.id, t.c.status == "created").values(
                    status=status, transfer_id=transfer_id, failure_code=failure_code,
                    completed_at=self._clock(),
                ).returning(t)
            ).first()
            if finished is not None and status == "succeeded":
                _record_success(connection, _refund(finished))
            row = finished or connection.execute(select(t).where(t.c.id == refund.id)).one()
        return _refund(row)

    def _by_key(self, merchant_id: UUID, key: str):
        t = qr_refunds
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.merchant_id == merchant_id, t.c.idempotency_key == key)
            ).first()


def _record_success(connection, refund: QrRefund) -> None:
    """Queue the negative settlement item (if the pending account paid) and the event."""
    if refund.source == PENDING_SETTLEMENT:
        record_item(
            connection, merchant_id=refund.merchant_id, currency=refund.currency,
            source_kind=QR_REFUND_SOURCE, source_id=refund.id,
            gross_minor=-refund.amount_minor, fee_minor=-refund.fee_returned_minor,
            completed_at=refund.completed_at,
        )
    append_event(connection, "qr_payment.refunded", "qr_payment", str(refund.payment_id), {
        "payment_id": str(refund.payment_id), "refund_id": str(refund.id),
        "merchant_id": str(refund.merchant_id), "payer_user_id": str(refund.payer_user_id),
        "amount_minor": str(refund.amount_minor),
        "fee_returned_minor": str(refund.fee_returned_minor), "currency": refund.currency,
        "completed_at": refund.completed_at.isoformat(),
    })


def _replayed(row, request_hash: str, idempotency_key: str) -> QrRefund:
    """Raises: IdempotencyKeyReusedForRefund."""
    return _refund(records.same_request(row, request_hash, idempotency_key,
                                        se.IdempotencyKeyReusedForRefund))


def _refund(row) -> QrRefund:
    return QrRefund(**{column.name: getattr(row, column.name) for column in qr_refunds.columns
                       if column.name not in ("idempotency_key", "request_hash")})
