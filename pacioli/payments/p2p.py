"""Person-to-person payments and money requests between users' wallets.

A payment's id derives from the payer and their Idempotency-Key (`payment_id_for`), so a
retry knows it before anything is written. A plain payment is then one ledger transfer,
under the ledger key `p2p:<payment id>`, whose metadata carries everything the payment's
record holds, and one write of the record, after the transfer, as `succeeded` (or
`failed`, with the ledger's rejection code, when the ledger refused it). The ledger key
alone makes the money move at most once; the record is a projection of the transfer, so
whoever writes it (the request, its retry, a concurrent request with the same key, or
`record_unrecorded_payments` after a crash) writes the same row, once. docs/payments.md
("One commit per payment") gives the reasoning.

Paying a money request keeps the older three steps (record `created` under the
request's lock, move, mark `succeeded`), since the record is what stops a second payment
of the same request.

Events (docs/payments.md, "Events") are appended in the transaction of the change they
announce, and only when that transaction's conditional write changed the row: a replay,
or a writer that lost the race, announces nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid5

from sqlalchemy import Engine, and_, exists, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger import DomainError, Ledger, Transfer, credit, debit
from pacioli.ledger.domain.errors import IdempotencyKeyReused
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import errors as pe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart
from pacioli.payments.p2p_batches import PaymentRecordBatches, succeeded_event_payload
from pacioli.payments.tables import money_requests, p2p_payments

NOTE_LENGTH_MAX = 280
# Payment ids are UUIDv5 of the payer and their Idempotency-Key in this namespace.
PAYMENT_ID_NAMESPACE = UUID("5d1f6a52-8f0e-4c43-9a49-2b1c0f7e6a11")
RECOVERY_PAGE_SIZE = 500
# Threads for `send_async`'s uncommon database calls (a replay, a refusal, a record that
# was there already; the common ones are batched in p2p_batches). Kept below the engine's
# pool size: a connection beyond it is opened and closed for each use.
DB_THREADS_MAX = 8


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
        self._executor: ThreadPoolExecutor | None = None
        self._batches: PaymentRecordBatches | None = None

    async def _in_thread(self, function, /, *args, **kwargs):
        if self._executor is None:
            self._executor = _executor_for(self._engine)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    @property
    def ledger(self) -> Ledger:
        return self._ledger

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
        order = _order(payer_user_id, payee_user_id, currency, amount_minor, note,
                       idempotency_key, request_id)
        if request_id is not None:
            return self._send_claimed(order)
        row = self._payment_row(order)
        if row is not None:
            return self._replay(row, order)
        try:
            written = self._ledger.transfer(
                self._legs(order), metadata=order.metadata, idempotency_key=order.ledger_key,
                client_id=PAYMENTS_CLIENT_ID,
            )
        except DomainError as rejection:
            return self._refused(order, rejection)
        return self._recorded(order, written.value, replayed=written.replayed)

    async def send_async(
        self,
        *,
        payer_user_id: UUID,
        payee_user_id: UUID,
        currency: str,
        amount_minor: int,
        note: str = "",
        idempotency_key: str,
    ) -> Answer:
        """`send` (of a plain payment) for asyncio callers: the ledger transfer is awaited,
        not waited for on a thread, and so are the record's read and write, batched with
        other payments' (`PaymentRecordBatches`); the uncommon paths run on worker threads.

        Raises: what `send` raises.
        """
        order = _order(payer_user_id, payee_user_id, currency, amount_minor, note,
                       idempotency_key, None)
        batches = self._record_batches()
        if await batches.recorded(order.payer_user_id, order.idempotency_key):
            row = await self._in_thread(self._payment_row, order)
            return await self._in_thread(self._replay, row, order)
        legs = self._known_legs(order) or await self._in_thread(self._legs, order)
        try:
            written = await self._ledger.transfer_async(
                legs, metadata=order.metadata, idempotency_key=order.ledger_key,
                client_id=PAYMENTS_CLIENT_ID,
            )
        except DomainError as rejection:
            return await self._in_thread(self._refused, order, rejection)
        values = _succeeded_values(written.value)
        if not await batches.insert_succeeded(values):  # a record was there: settle with it
            row = await self._in_thread(self._settle_with_existing_record, values)
            records.same_request(row, order.request_hash, order.idempotency_key)
            return Answer(_payment(row), written.replayed)
        row = SimpleNamespace(**values)
        records.same_request(row, order.request_hash, order.idempotency_key)
        return Answer(_payment(row), written.replayed)

    def _record_batches(self) -> PaymentRecordBatches:
        if self._batches is None:
            self._batches = PaymentRecordBatches(self._engine)
        return self._batches

    def close(self) -> None:
        """Stop the threads `send_async` started (the P2P object is unusable after)."""
        if self._batches is not None:
            self._batches.close()
            self._batches = None
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def record_unrecorded_payments(self, *, since: datetime) -> int:
        """Write the record of every payment whose transfer the ledger posted since `since`
        but whose record is missing (the process died between the two); return how many.

        The record is a projection of the transfer's metadata, so this writes exactly
        what the request (or its retry) would have written, and a concurrent writer of
        the same record makes it a no-op.
        """
        recorded, starting_after = 0, None
        while True:
            page = self._ledger.list_transfers(
                created_from=since, metadata={"flow": "p2p"}, limit=RECOVERY_PAGE_SIZE,
                starting_after=starting_after,
            )
            projected = [t for t in page if "idempotency_key" in t.metadata]
            with self._engine.connect() as connection:
                known = set(connection.execute(
                    select(p2p_payments.c.id).where(
                        p2p_payments.c.id.in_([UUID(t.metadata["payment_id"]) for t in projected])
                    )
                ).scalars())
            for transfer in projected:
                if UUID(transfer.metadata["payment_id"]) not in known:
                    _, inserted = self._write_succeeded(transfer)
                    recorded += inserted
            if len(page) < RECOVERY_PAGE_SIZE:
                return recorded
            starting_after = page[-1].id

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
        """The user's payments, sent and received, newest first.

        Payment ids derive from the Idempotency-Key, so they are not time-ordered: the
        order is (created_at, id), and the cursor is the last payment's id.
        """
        t = p2p_payments
        query = (
            select(t)
            .where(or_(t.c.payer_user_id == user_id, t.c.payee_user_id == user_id))
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(min(limit, records.PAGE_LIMIT_MAX + 1))
        )
        if starting_after is not None:
            cursor_created_at = (
                select(t.c.created_at).where(t.c.id == starting_after).scalar_subquery()
            )
            query = query.where(
                tuple_(t.c.created_at, t.c.id) < tuple_(cursor_created_at, starting_after)
            )
        with self._engine.connect() as connection:
            return [_payment(row) for row in connection.execute(query)]

    # The plain payment's steps: read the record, move, record.

    def _payment_row(self, order: _Order):
        """The row recorded under the order's key, if any. Nearly every payment has none,
        so a plain-SQL probe (no SQLAlchemy construct to build) asks first."""
        with self._engine.connect() as connection:
            recorded = connection.exec_driver_sql(
                "SELECT 1 FROM p2p_payments WHERE payer_user_id = %(payer)s"
                " AND idempotency_key = %(key)s",
                {"payer": order.payer_user_id, "key": order.idempotency_key},
            ).first()
            if recorded is None:
                return None
            return _payment_by_key(connection, order.payer_user_id, order.idempotency_key)

    def _replay(self, row, order: _Order) -> Answer:
        """Answer a retry as the first request was answered (finishing an unfinished one).

        Raises: IdempotencyKeyReusedForPayment, the recorded rejection of a failed one.
        """
        records.same_request(row, order.request_hash, order.idempotency_key)
        payment = _payment(row)
        if payment.status == "created":  # a request's payment, or one left mid-way
            payment = self._move(payment)
        return Answer(_succeeded_or_raise(payment), replayed=True)

    def _known_legs(self, order: _Order) -> list | None:
        """The transfer's legs, if both wallets are known without asking the database."""
        payer_wallet = self._chart.known_wallet(order.payer_user_id, order.currency)
        payee_wallet = self._chart.known_wallet(order.payee_user_id, order.currency)
        if payer_wallet is None or payee_wallet is None:
            return None
        return [debit(payer_wallet, order.amount_minor), credit(payee_wallet, order.amount_minor)]

    def _legs(self, order: _Order) -> list:
        """Raises: UnknownAsset."""
        return [debit(self._chart.wallet(order.payer_user_id, order.currency), order.amount_minor),
                credit(self._chart.wallet(order.payee_user_id, order.currency),
                       order.amount_minor)]

    def _refused(self, order: _Order, rejection: DomainError) -> Answer:
        """Record the ledger's rejection as a failed payment, and raise it.

        If another request with this key recorded the payment first, answer as it was
        answered instead. Raises: `rejection`, IdempotencyKeyReusedForPayment.
        """
        if isinstance(rejection, IdempotencyKeyReused):
            # The ledger key was used by another request with this key (a different body,
            # or a request's payment): that request's record answers for the key.
            raise pe.IdempotencyKeyReusedForPayment(
                f"idempotency key {order.idempotency_key!r} was used for another request"
            ) from None
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(p2p_payments)
                .values(**order.record_values(now), status="failed", failure_code=rejection.code,
                        completed_at=now)
                .on_conflict_do_nothing()
                .returning(p2p_payments.c.id)
            ).first()
            if inserted is None:
                row = connection.execute(
                    select(p2p_payments).where(p2p_payments.c.id == order.payment_id)
                ).one()
        if inserted is not None:
            raise rejection
        return self._replay(row, order)

    def _recorded(self, order: _Order, transfer: Transfer, *, replayed: bool) -> Answer:
        """The payment the transfer made, its record written if no one wrote it yet.

        `replayed` is the ledger's: whether an earlier request with this key moved the money.
        Raises: IdempotencyKeyReusedForPayment.
        """
        row, _ = self._write_succeeded(transfer)
        records.same_request(row, order.request_hash, order.idempotency_key)
        return Answer(_payment(row), replayed)

    def _write_succeeded(self, transfer: Transfer):
        """Write the succeeded record of a posted transfer: insert it, or turn a record
        that says otherwise (a concurrent request with the same key that the ledger refused
        before this one posted) into it, since the ledger's transfer is what happened.

        Returns the row and whether this call inserted it; the event is appended by the
        call that changed the row, in its transaction.
        """
        values = _succeeded_values(transfer)
        with self._engine.connect() as connection:
            # The usual case in one statement (so one round trip, committed on its own):
            # the record, and its event only if the record was inserted.
            inserted = connection.execution_options(
                isolation_level="AUTOCOMMIT"
            ).exec_driver_sql(_INSERT_ANNOUNCED_SQL, _insert_announced_params(values)).first()
        if inserted is not None:
            return SimpleNamespace(**values), True
        return self._settle_with_existing_record(values), False

    def _settle_with_existing_record(self, values: dict):
        """The record of a posted transfer when one with its id exists: that record if it
        says succeeded, else turned into the succeeded one (with its event)."""
        t = p2p_payments
        with self._engine.begin() as connection:
            row = connection.execute(select(t).where(t.c.id == values["id"])).one()
            if row.status == "succeeded":
                return row
            changed = connection.execute(
                update(t).where(t.c.id == values["id"], t.c.status != "succeeded")
                .values(**values).returning(t)
            ).first()
            if changed is not None:
                _announce_payment(connection, changed)
                return changed
            return connection.execute(select(t).where(t.c.id == values["id"])).one()

    # A money request's payment: record, move, finish.

    def _send_claimed(self, order: _Order) -> Answer:
        payment, replayed = self._claim_payment(order)
        if payment.status == "created":
            payment = self._move(payment)
        return Answer(_succeeded_or_raise(payment), replayed)

    def _claim_payment(self, order: _Order) -> tuple[P2PPayment, bool]:
        """Record the payment, or find the one this key recorded before.

        Paying a request locks it first, so a retry with the key that paid it finds that
        payment (a replay) before the request is found closed.
        """
        t = p2p_payments
        request_id = order.request_id
        with self._engine.begin() as connection:
            _lock_request(connection, request_id, payer_user_id=order.payer_user_id)
            row = _payment_by_key(connection, order.payer_user_id, order.idempotency_key)
            if row is None:
                _check_request_payable(connection, request_id)
                inserted = connection.execute(
                    insert(t)
                    .values(**order.record_values(datetime.now(UTC)), status="created")
                    .on_conflict_do_nothing()
                    .returning(t)
                ).first()
                if inserted is not None:
                    return _payment(inserted), False
                row = _payment_by_key(connection, order.payer_user_id, order.idempotency_key)
        records.same_request(row, order.request_hash, order.idempotency_key)
        return _payment(row), True

    def _move(self, payment: P2PPayment) -> P2PPayment:
        """Post the ledger transfer of a recorded payment and record how it went.

        Raises: IdempotencyKeyReusedForPayment (a plain payment under the same key took
        the ledger key first; its record replaces this one).
        """
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
        except IdempotencyKeyReused:
            raise pe.IdempotencyKeyReusedForPayment(
                f"payment {payment.id}'s key was used for another request"
            ) from None
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


def payment_id_for(payer_user_id: UUID, idempotency_key: str) -> UUID:
    """The id of the payment the payer makes under this Idempotency-Key: the same for every
    retry, and known before anything is written."""
    return uuid5(PAYMENT_ID_NAMESPACE, f"{payer_user_id}:{idempotency_key}")


@dataclass(frozen=True, slots=True)
class _Order:
    """A payment as asked for, checked, with the id and keys it will be recorded under."""

    payment_id: UUID
    payer_user_id: UUID
    payee_user_id: UUID
    currency: str
    amount_minor: int
    note: str
    idempotency_key: str
    request_hash: str
    request_id: UUID | None

    @property
    def ledger_key(self) -> str:
        return f"p2p:{self.payment_id}"

    @property
    def metadata(self) -> dict[str, str]:
        """The transfer's metadata: the payment's whole record (see `_succeeded_values`)."""
        return {
            "flow": "p2p", "payment_id": str(self.payment_id),
            "payer_user_id": str(self.payer_user_id),
            "payee_user_id": str(self.payee_user_id),
            "amount_minor": str(self.amount_minor), "currency": self.currency,
            "note": self.note, "idempotency_key": self.idempotency_key,
            "request_hash": self.request_hash,
        }

    def record_values(self, now: datetime) -> dict:
        return dict(
            id=self.payment_id, payer_user_id=self.payer_user_id,
            payee_user_id=self.payee_user_id, currency=self.currency,
            amount_minor=self.amount_minor, note=self.note, request_id=self.request_id,
            idempotency_key=self.idempotency_key, request_hash=self.request_hash,
            created_at=now,
        )


def _order(payer_user_id, payee_user_id, currency, amount_minor, note, idempotency_key,
           request_id) -> _Order:
    """Raises: PaymentToSelf, InvalidPayment."""
    _check_parties(payer_user_id, payee_user_id)
    _check_amount_and_note(amount_minor, note)
    return _Order(
        payment_id_for(payer_user_id, idempotency_key), payer_user_id, payee_user_id,
        currency, amount_minor, note, idempotency_key,
        records.request_hash(payee_user_id, currency, amount_minor, note, request_id),
        request_id,
    )


def _succeeded_values(transfer: Transfer) -> dict:
    """The succeeded record of a plain payment, from its transfer alone."""
    m = transfer.metadata
    return dict(
        id=UUID(m["payment_id"]), payer_user_id=UUID(m["payer_user_id"]),
        payee_user_id=UUID(m["payee_user_id"]), currency=m["currency"],
        amount_minor=int(m["amount_minor"]), note=m["note"], status="succeeded",
        failure_code=None, transfer_id=transfer.id, request_id=None,
        idempotency_key=m["idempotency_key"], request_hash=m["request_hash"],
        created_at=transfer.created_at, completed_at=transfer.created_at,
    )


# The succeeded record unless one exists, and its `p2p_payment.succeeded` event (the
# columns `append_event` writes, the payload `_announce_payment` makes) only for a record
# it inserted: one statement, so one round trip, committed on its own. Plain SQL, since
# building the equivalent SQLAlchemy construct cost more CPU than the round trip.
_INSERT_ANNOUNCED_SQL = """
WITH inserted AS (
    INSERT INTO p2p_payments (id, payer_user_id, payee_user_id, currency, amount_minor, note,
                              status, transfer_id, idempotency_key, request_hash, created_at,
                              completed_at)
    VALUES (%(id)s, %(payer_user_id)s, %(payee_user_id)s, %(currency)s, %(amount_minor)s,
            %(note)s, 'succeeded', %(transfer_id)s, %(idempotency_key)s, %(request_hash)s,
            %(created_at)s, %(completed_at)s)
    ON CONFLICT DO NOTHING
    RETURNING id
), announced AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload,
                        created_at)
    SELECT %(event_id)s, 'p2p_payment.succeeded', 'p2p_payment', inserted.id::text,
           %(payload)s::jsonb, %(announced_at)s
    FROM inserted
)
SELECT id FROM inserted
"""


def _insert_announced_params(values: dict) -> dict:
    return {**values, "event_id": uuid7(), "payload": json.dumps(succeeded_event_payload(values)),
            "announced_at": datetime.now(UTC)}


def _succeeded_or_raise(payment: P2PPayment) -> P2PPayment:
    """Raises: the recorded rejection of a failed payment."""
    if payment.status == "failed":
        raise pe.rejection_with_code(
            payment.failure_code, f"payment {payment.id} failed: {payment.failure_code}"
        )
    return payment


def _executor_for(engine: Engine) -> ThreadPoolExecutor:
    """Threads for `send_async`'s database calls: at most DB_THREADS_MAX, and no more than
    the engine's pool holds besides the ledger writer's connection (a connection beyond
    the pool is opened and closed for each use, which costs more than waiting for one)."""
    pool_size = getattr(engine.pool, "size", lambda: DB_THREADS_MAX + 1)()
    return ThreadPoolExecutor(max(1, min(DB_THREADS_MAX, pool_size - 1)),
                              thread_name_prefix="p2p-db")


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
