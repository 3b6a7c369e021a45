"""Person-to-person payments and money requests between users' wallets.

A payment is recorded first (`created`, keyed by the payer and their Idempotency-Key),
then moved by one ledger transfer whose own idempotency key derives from the payment's
id, then marked `succeeded` (or `failed` with the ledger's rejection code). A retry with
the same key finds the record: a finished one is answered as it was the first time, an
unfinished one (the process died mid-way) is finished, and the ledger key makes sure the
money moves once. Concurrent requests with one key meet at the same record and the same
ledger key, so they move money once too.

Events (docs/payments.md, "Events") are appended in the transaction of the change they
announce, and only when that transaction's conditional write changed the row: a replay,
or a finisher that lost the race, announces nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart
from pacioli.payments.tables import money_requests, p2p_payments

NOTE_LENGTH_MAX = 280


@dataclass(frozen=True, slots=True)
class P2PPayment:
    id: UUID
    payer_user_id: UUID
    payee_user_id: UUID
    currency: str
    amount_minor: int
    note: str
    status: str  # created, succeeded, failed
    failure_code: str | None
    transfer_id: UUID | None
    request_id: UUID | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class MoneyRequest:
    id: UUID
    requester_user_id: UUID
    payer_user_id: UUID
    currency: str
    amount_minor: int
    note: str
    status: str  # open, paid, declined, cancelled
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class Answer:
    """A write's result, and whether an earlier request with the same key produced it."""

    value: P2PPayment | MoneyRequest
    replayed: bool


class P2P:
    """Sends money between users, and requests it."""

    def __init__(self, engine: Engine, ledger: Ledger, chart: Chart) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart

    # Payments.

    def send(
        self,
        *,
        payer_user_id: UUID,
        payee_user_id: UUID,
        currency: str,
        amount_minor: int,
        note: str = "",
        idempotency_key: str,
        request_id: UUID | None = None,
    ) -> Answer:
        """Move `amount_minor` from the payer's wallet to the payee's.

        Raises: PaymentToSelf, InvalidPayment, IdempotencyKeyReusedForPayment,
        MoneyRequestNotOpen, and the ledger's rejections (InsufficientFunds,
        UnknownAsset, AccountFrozen ...), also when replaying a failed payment.
        """
        _check_parties(payer_user_id, payee_user_id)
        _check_amount_and_note(amount_minor, note)
        request_hash = records.request_hash(payee_user_id, currency, amount_minor, note, request_id)
        payment, replayed = self._claim_payment(
            payer_user_id, payee_user_id, currency, amount_minor, note, idempotency_key,
            request_hash, request_id,
        )
        if payment.status == "created":
            payment = self._move(payment)
        if payment.status == "failed":
            raise pe.rejection_with_code(
                payment.failure_code, f"payment {payment.id} failed: {payment.failure_code}"
            )
        return Answer(payment, replayed)

    def get_payment(self, user_id: UUID, payment_id: UUID) -> P2PPayment:
        """A payment the user made or received. Raises: PaymentNotFound."""
        t = p2p_payments
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(
                    t.c.id == payment_id,
                    or_(t.c.payer_user_id == user_id, t.c.payee_user_id == user_id),
                )
            ).first()
        if row is None:
            raise pe.PaymentNotFound(f"no payment {payment_id}")
        return _payment(row)

    def list_payments(
        self, user_id: UUID, *, limit: int = 50, starting_after: UUID | None = None
    ) -> list[P2PPayment]:
        """The user's payments, sent and received, newest first (ids are time-ordered)."""
        t = p2p_payments
        query = records.newest_first(
            t, or_(t.c.payer_user_id == user_id, t.c.payee_user_id == user_id),
            limit=limit, starting_after=starting_after,
        )
        with self._engine.connect() as connection:
            return [_payment(row) for row in connection.execute(query)]

    def _claim_payment(
        self, payer_user_id, payee_user_id, currency, amount_minor, note, idempotency_key,
        request_hash, request_id,
    ) -> tuple[P2PPayment, bool]:
        """Record the payment, or find the one this key recorded before.

        Paying a request locks it first, so a retry with the key that paid it finds that
        payment (a replay) before the request is found closed.
        """
        t = p2p_payments
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            if request_id is not None:
                _lock_request(connection, request_id, payer_user_id=payer_user_id)
            row = _payment_by_key(connection, payer_user_id, idempotency_key)
            if row is None:
                if request_id is not None:
                    _check_request_payable(connection, request_id)
                inserted = connection.execute(
                    insert(t)
                    .values(
                        id=uuid7(), payer_user_id=payer_user_id, payee_user_id=payee_user_id,
                        currency=currency, amount_minor=amount_minor, note=note,
                        status="created", request_id=request_id,
                        idempotency_key=idempotency_key, request_hash=request_hash,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["payer_user_id", "idempotency_key"])
                    .returning(t)
                ).first()
                if inserted is not None:
                    return _payment(inserted), False
                row = _payment_by_key(connection, payer_user_id, idempotency_key)
        records.same_request(row, request_hash, idempotency_key)
        return _payment(row), True

    def _move(self, payment: P2PPayment) -> P2PPayment:
        """Post the ledger transfer of a recorded payment and record how it went."""
        try:
            payer_wallet = self._chart.wallet(payment.payer_user_id, payment.currency)
            payee_wallet = self._chart.wallet(payment.payee_user_id, payment.currency)
            transfer = self._ledger.transfer(
                [debit(payer_wallet, payment.amount_minor),
                 credit(payee_wallet, payment.amount_minor)],
                metadata={
                    "flow": "p2p", "payment_id": str(payment.id),
                    "payer_user_id": str(payment.payer_user_id),
                    "payee_user_id": str(payment.payee_user_id),
                },
                idempotency_key=f"p2p:{payment.id}",
                client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._finish(payment, status="failed", failure_code=rejection.code)
        return self._finish(payment, status="succeeded", transfer_id=transfer.id)

    def _finish(self, payment: P2PPayment, *, status: str, transfer_id=None, failure_code=None):
        t = p2p_payments
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            finished = connection.execute(
                update(t)
                .where(t.c.id == payment.id, t.c.status == "created")
                .values(status=status, transfer_id=transfer_id, failure_code=failure_code,
                        completed_at=now)
                .returning(t)
            ).first()
            if finished is not None and status == "succeeded":
                _announce_payment(connection, finished)
                if payment.request_id is not None:
                    _mark_request_paid(connection, payment.request_id, now)
            row = finished or connection.execute(select(t).where(t.c.id == payment.id)).one()
        return _payment(row)


    # Money requests.

    def request(
        self,
        *,
        requester_user_id: UUID,
        payer_user_id: UUID,
        currency: str,
        amount_minor: int,
        note: str = "",
        idempotency_key: str,
    ) -> Answer:
        """Ask another user for money. Raises: PaymentToSelf, InvalidPayment,
        IdempotencyKeyReusedForPayment, UnknownAsset."""
        _check_parties(requester_user_id, payer_user_id)
        _check_amount_and_note(amount_minor, note)
        self._chart.wallet(requester_user_id, currency)  # refuses an unknown currency now
        request_hash = records.request_hash(payer_user_id, currency, amount_minor, note, None)
        t = money_requests
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(t)
                .values(
                    id=uuid7(), requester_user_id=requester_user_id,
                    payer_user_id=payer_user_id, currency=currency, amount_minor=amount_minor,
                    note=note, status="open", idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["requester_user_id", "idempotency_key"])
                .returning(t)
            ).first()
            if inserted is not None:
                _announce_request(connection, "money_request.created", inserted)
                return Answer(_request(inserted), replayed=False)
            row = connection.execute(
                select(t).where(t.c.requester_user_id == requester_user_id,
                                t.c.idempotency_key == idempotency_key)
            ).one()
        records.same_request(row, request_hash, idempotency_key)
        return Answer(_request(row), replayed=True)

    def pay_request(self, *, payer_user_id: UUID, request_id: UUID, idempotency_key: str) -> Answer:
        """Pay a money request addressed to this user.

        Raises: MoneyRequestNotFound, MoneyRequestNotOpen, and what `send` raises.
        """
        money_request = self.get_request(payer_user_id, request_id)
        if money_request.payer_user_id != payer_user_id:
            raise pe.MoneyRequestNotFound(f"no money request {request_id} is addressed to you")
        return self.send(
            payer_user_id=payer_user_id,
            payee_user_id=money_request.requester_user_id,
            currency=money_request.currency,
            amount_minor=money_request.amount_minor,
            note=money_request.note,
            idempotency_key=idempotency_key,
            request_id=request_id,
        )

    def decline_request(self, *, payer_user_id: UUID, request_id: UUID) -> MoneyRequest:
        """Raises: MoneyRequestNotFound, MoneyRequestNotOpen."""
        return self._close_request(request_id, "declined", payer_user_id=payer_user_id)

    def cancel_request(self, *, requester_user_id: UUID, request_id: UUID) -> MoneyRequest:
        """Raises: MoneyRequestNotFound, MoneyRequestNotOpen."""
        return self._close_request(request_id, "cancelled", requester_user_id=requester_user_id)

    def get_request(self, user_id: UUID, request_id: UUID) -> MoneyRequest:
        """A request the user made or must answer. Raises: MoneyRequestNotFound."""
        t = money_requests
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(
                    t.c.id == request_id,
                    or_(t.c.requester_user_id == user_id, t.c.payer_user_id == user_id),
                )
            ).first()
        if row is None:
            raise pe.MoneyRequestNotFound(f"no money request {request_id}")
        return _request(row)

    def list_requests(
        self, user_id: UUID, *, status: str | None = None, limit: int = 50,
        starting_after: UUID | None = None,
    ) -> list[MoneyRequest]:
        """Requests the user made or must answer, newest first."""
        t = money_requests
        wanted = [or_(t.c.requester_user_id == user_id, t.c.payer_user_id == user_id)]
        if status is not None:
            wanted.append(t.c.status == status)
        query = records.newest_first(t, *wanted, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_request(row) for row in connection.execute(query)]

    def _close_request(self, request_id: UUID, status: str, **party: UUID) -> MoneyRequest:
        (column, user_id), = party.items()
        t = money_requests
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            row = connection.execute(
                select(t).where(t.c.id == request_id, t.c[column] == user_id).with_for_update()
            ).first()
            if row is None:
                raise pe.MoneyRequestNotFound(f"no money request {request_id}")
            live_payment = connection.execute(
                select(exists().where(and_(p2p_payments.c.request_id == request_id,
                                           p2p_payments.c.status != "failed")))
            ).scalar()
            if row.status != "open" or live_payment:
                raise pe.MoneyRequestNotOpen(f"money request {request_id} is {row.status}")
            row = connection.execute(
                update(t).where(t.c.id == request_id).values(status=status, resolved_at=now)
                .returning(t)
            ).one()
            if status == "declined":  # The catalog has no event for a cancelled request.
                _announce_request(connection, "money_request.declined", row)
        return _request(row)


def _payment_by_key(connection, payer_user_id: UUID, idempotency_key: str):
    t = p2p_payments
    return connection.execute(
        select(t).where(t.c.payer_user_id == payer_user_id, t.c.idempotency_key == idempotency_key)
    ).first()


def _lock_request(connection, request_id: UUID, *, payer_user_id: UUID) -> None:
    """Lock the request being paid; a decline or cancel waits for the payment's record.

    Raises: MoneyRequestNotFound (none is addressed to this payer).
    """
    locked = connection.execute(
        select(money_requests.c.id)
        .where(money_requests.c.id == request_id, money_requests.c.payer_user_id == payer_user_id)
        .with_for_update()
    ).first()
    if locked is None:
        raise pe.MoneyRequestNotFound(f"no money request {request_id} is addressed to you")


def _check_request_payable(connection, request_id: UUID) -> None:
    """Raises: MoneyRequestNotOpen (answered already, or a payment of it is live)."""
    status = connection.execute(
        select(money_requests.c.status).where(money_requests.c.id == request_id)
    ).scalar_one()
    if status != "open":
        raise pe.MoneyRequestNotOpen(f"money request {request_id} is {status}")
    live_payment = connection.execute(
        select(p2p_payments.c.id).where(
            p2p_payments.c.request_id == request_id, p2p_payments.c.status != "failed"
        )
    ).first()
    if live_payment is not None:
        raise pe.MoneyRequestNotOpen(f"money request {request_id} is being paid already")


def _check_parties(user_id: UUID, other_user_id: UUID) -> None:
    if user_id == other_user_id:
        raise pe.PaymentToSelf("you cannot pay or request money from yourself")


def _check_amount_and_note(amount_minor: int, note: str) -> None:
    if type(amount_minor) is not int or amount_minor <= 0:
        raise pe.InvalidPayment("the amount must be a positive number of minor units")
    if not isinstance(note, str) or len(note) > NOTE_LENGTH_MAX:
        raise pe.InvalidPayment(f"a note has at most {NOTE_LENGTH_MAX} characters")


def _mark_request_paid(connection, request_id: UUID, now: datetime) -> None:
    """Close the request a succeeded payment paid, in the payment's transaction."""
    t = money_requests
    paid = connection.execute(
        update(t).where(t.c.id == request_id, t.c.status == "open")
        .values(status="paid", resolved_at=now).returning(t)
    ).first()
    if paid is not None:
        _announce_request(connection, "money_request.paid", paid)


def _announce_payment(connection, row) -> None:
    """`p2p_payment.succeeded`, in the transaction that marked the payment succeeded."""
    append_event(connection, "p2p_payment.succeeded", "p2p_payment", str(row.id), {
        "payment_id": str(row.id), "payer_user_id": str(row.payer_user_id),
        "payee_user_id": str(row.payee_user_id), "amount_minor": str(int(row.amount_minor)),
        "currency": row.currency, "note": row.note,
    })


def _announce_request(connection, event_type: str, row) -> None:
    """A money request's event, in the transaction that recorded its new status."""
    append_event(connection, event_type, "money_request", str(row.id), {
        "request_id": str(row.id), "requester_user_id": str(row.requester_user_id),
        "payer_user_id": str(row.payer_user_id), "amount_minor": str(int(row.amount_minor)),
        "currency": row.currency, "note": row.note,
    })


def _payment(row) -> P2PPayment:
    return P2PPayment(
        id=row.id, payer_user_id=row.payer_user_id, payee_user_id=row.payee_user_id,
        currency=row.currency, amount_minor=row.amount_minor, note=row.note, status=row.status,
        failure_code=row.failure_code, transfer_id=row.transfer_id, request_id=row.request_id,
        created_at=row.created_at, completed_at=row.completed_at,
    )


def _request(row) -> MoneyRequest:
    return MoneyRequest(
        id=row.id, requester_user_id=row.requester_user_id, payer_user_id=row.payer_user_id,
        currency=row.currency, amount_minor=row.amount_minor, note=row.note, status=row.status,
        created_at=row.created_at, resolved_at=row.resolved_at,
    )
