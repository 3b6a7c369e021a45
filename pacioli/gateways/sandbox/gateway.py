"""The sandbox processor: a `PaymentGateway` that behaves like a real card and bank processor.

It keeps its state in its own `sandbox_*` tables, so it acts as an external system
across processes and restarts. Calls return at once; where a real processor is
asynchronous (3DS-like card authorizations, bank debits, payouts) the object stays
`pending` and its outcome is scheduled for later: when due, `deliver_due` (or a
`fetch_status` of that object) applies it and a signed callback event is queued. Every
change of an object's state queues one event, even one the synchronous answer already
told, as real processors do. Which inputs trigger which outcome is in `magic.py`.

Each write runs in one database transaction that stores the idempotency key with the
result, so a retried request returns the first result and never acts twice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.gateways.base import (
    BankAccountToken,
    CardToken,
    DeclineCode,
    GatewayIdempotencyKeyReused,
    GatewayReferenceNotFound,
    GatewayResult,
    GatewayStatus,
    GatewayUnavailable,
    InvalidGatewayAmount,
    InvalidGatewayState,
    InvalidIdempotencyKey,
    OperationKind,
    UnknownInstrument,
)
from pacioli.gateways.cards import validate_bank_account, validate_card
from pacioli.gateways.sandbox import delivery, magic
from pacioli.gateways.sandbox.settings import SandboxSettings, get_sandbox_settings
from pacioli.gateways.sandbox.tables import callbacks, instruments, operations, requests
from pacioli.ledger.domain.ids import uuid7

Clock = Callable[[], datetime]
_S = GatewayStatus


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class SandboxGateway:
    """The sandbox processor (`name = "sandbox"`); see docs/gateways.md for its magic values."""

    name = "sandbox"

    def __init__(
        self, engine: Engine, settings: SandboxSettings | None = None, *,
        clock: Clock = _utc_now,
    ) -> None:
        self._engine = engine
        self.settings = settings or get_sandbox_settings()
        self._clock = clock

    # Instruments.

    def tokenize_card(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        """Validate a card and store its token, brand, last four and behaviour, never the number.

        Raises InvalidCardNumber, CardBrandUnsupported, InvalidCardExpiry, CardExpired or
        InvalidCvc.
        """
        card = validate_card(number, exp_month, exp_year, cvc, now=self._clock())
        token = CardToken(token=_new_id("tok"), brand=card.brand, last4=card.last4,
                          exp_month=card.exp_month, exp_year=card.exp_year)
        self._insert_instrument(
            token=token.token, kind="card", brand=card.brand.value, last4=card.last4,
            exp_month=card.exp_month, exp_year=card.exp_year,
            behavior=magic.card_behavior(card.number).value,
        )
        return token

    def tokenize_bank_account(self, account_number: str, routing_number: str) -> BankAccountToken:
        """Validate a bank account and store its token (InvalidBankAccount)."""
        account, routing = validate_bank_account(account_number, routing_number)
        token = BankAccountToken(token=_new_id("ba"), last4=account[-4:], routing_number=routing)
        self._insert_instrument(
            token=token.token, kind="bank_account", last4=token.last4, routing_number=routing,
            behavior=magic.bank_behavior(account).value,
        )
        return token

    def _insert_instrument(self, **values: Any) -> None:
        with self._engine.begin() as connection:
            connection.execute(insert(instruments).values(created_at=self._clock(), **values))

    # Payments.

    def authorize(
        self, card_token: str, amount_minor: int, currency: str, *, idempotency_key: str
    ) -> GatewayResult:
        """Authorize a card payment: authorized, declined, failed or pending (see magic.py)."""
        _check_amount(amount_minor, currency)
        request = {"card_token": card_token, "amount_minor": amount_minor, "currency": currency}

        def work(connection: Connection, now: datetime) -> GatewayResult:
            instrument = _instrument(connection, card_token, "card")
            plan = magic.authorize_plan(magic.Behavior(instrument.behavior))
            return self._create(connection, now, OperationKind.PAYMENT, card_token,
                                amount_minor, currency, plan)

        return self._write("authorize", idempotency_key, request, work)

    def debit(
        self, bank_account_token: str, amount_minor: int, currency: str, *,
        idempotency_key: str,
    ) -> GatewayResult:
        """Pull funds from a bank account: pending, then captured or failed by callback."""
        return self._bank_operation("debit", OperationKind.PAYMENT, _S.CAPTURED,
                                    bank_account_token, amount_minor, currency, idempotency_key)

    def payout(
        self, bank_account_token: str, amount_minor: int, currency: str, *,
        idempotency_key: str,
    ) -> GatewayResult:
        """Send funds to a bank account: pending, then paid_out or failed by callback."""
        return self._bank_operation("payout", OperationKind.PAYOUT, _S.PAID_OUT,
                                    bank_account_token, amount_minor, currency, idempotency_key)

    def _bank_operation(
        self, operation: str, kind: OperationKind, success: GatewayStatus, token: str,
        amount_minor: int, currency: str, idempotency_key: str,
    ) -> GatewayResult:
        _check_amount(amount_minor, currency)
        request = {"token": token, "amount_minor": amount_minor, "currency": currency}

        def work(connection: Connection, now: datetime) -> GatewayResult:
            instrument = _instrument(connection, token, "bank_account")
            plan = magic.bank_plan(magic.Behavior(instrument.behavior), success,
                                   is_debit=operation == "debit")
            return self._create(connection, now, kind, token, amount_minor, currency, plan)

        return self._write(operation, idempotency_key, request, work)

    def capture(
        self, reference: str, amount_minor: int | None = None, *, idempotency_key: str
    ) -> GatewayResult:
        """Capture all or part of an authorized card payment (InvalidGatewayState)."""
        request = {"reference": reference, "amount_minor": amount_minor}

        def work(connection: Connection, now: datetime) -> GatewayResult:
            row = self._locked(connection, reference, now)
            if row.kind != OperationKind.PAYMENT or row.status != _S.AUTHORIZED:
                raise InvalidGatewayState(f"Only an authorized payment can be captured; "
                                          f"this one is {row.status}.")
            amount = int(row.amount_minor) if amount_minor is None else amount_minor
            if not _positive_int(amount) or amount > int(row.amount_minor):
                raise InvalidGatewayAmount("The capture must be positive and at most the "
                                           "authorized amount.")
            return _transition(connection, reference, _S.CAPTURED, None, now,
                               captured_minor=amount)

        return self._write("capture", idempotency_key, request, work)

    def void(self, reference: str, *, idempotency_key: str) -> GatewayResult:
        """Release a pending or authorized card payment (InvalidGatewayState otherwise)."""

        def work(connection: Connection, now: datetime) -> GatewayResult:
            row = self._locked(connection, reference, now)
            card = _instrument(connection, row.instrument_token, None).kind == "card"
            if row.kind != OperationKind.PAYMENT or not card or row.status not in (
                _S.PENDING, _S.AUTHORIZED
            ):
                raise InvalidGatewayState(f"Only a pending or authorized card payment can "
                                          f"be voided; this one is {row.status}.")
            # A scheduled outcome is dropped with the void, as an abandoned 3DS check is.
            return _transition(connection, reference, _S.VOIDED, None, now)

        return self._write("void", idempotency_key, {"reference": reference}, work)

    def refund(
        self, reference: str, amount_minor: int | None = None, *, idempotency_key: str
    ) -> GatewayResult:
        """Refund all or part of what was captured; returns the refund (InvalidGatewayState)."""
        request = {"reference": reference, "amount_minor": amount_minor}

        def work(connection: Connection, now: datetime) -> GatewayResult:
            row = self._locked(connection, reference, now)
            if row.kind != OperationKind.PAYMENT or row.status != _S.CAPTURED:
                raise InvalidGatewayState(f"Only a captured payment can be refunded; "
                                          f"this one is {row.status}.")
            refundable = int(row.captured_minor) - int(row.refunded_minor)
            amount = refundable if amount_minor is None else amount_minor
            if not _positive_int(amount) or amount > refundable:
                raise InvalidGatewayAmount(f"The refund must be positive and at most "
                                           f"{refundable}.")
            refund = self._create(connection, now, OperationKind.REFUND, row.instrument_token,
                                  amount, row.currency, magic.Plan(_S.REFUNDED),
                                  parent_reference=reference)
            refunded = int(row.refunded_minor) + amount
            if refunded == int(row.captured_minor):
                _transition(connection, reference, _S.REFUNDED, None, now,
                            refunded_minor=refunded)
            else:
                connection.execute(update(operations).where(
                    operations.c.reference == reference).values(refunded_minor=refunded))
            return refund

        return self._write("refund", idempotency_key, request, work)

    def fetch_status(self, reference: str) -> GatewayResult:
        """The object's current state, applying a due outcome or an expired deadline first."""
        with self._engine.begin() as connection:
            return _result(self._locked(connection, reference, self._clock()))

    # Callbacks.

    def apply_due_outcomes(self, now: datetime) -> int:
        """Apply every scheduled outcome due by `now` (queuing its event); return how many."""
        statement = (
            select(operations.c.reference)
            .where(operations.c.outcome_due_at <= now)
            .order_by(operations.c.outcome_due_at)
            .limit(self.settings.delivery_batch_size)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as connection:
            references = connection.execute(statement).scalars().all()
            for reference in references:
                self._locked(connection, reference, now)
        return len(references)

    def deliver_due(self, now: datetime, send: delivery.Send) -> delivery.DeliveryReport:
        """Apply due outcomes, then POST every due callback (signed); see delivery.py."""
        while self.apply_due_outcomes(now) == self.settings.delivery_batch_size:
            pass
        return delivery.deliver_due(self._engine, self.settings, now, send)

    def send_event(self, event_id: str, send: delivery.Send, now: datetime) -> int | None:
        """Send one event again, whatever its state (to test duplicates and reordering)."""
        return delivery.send_event(self._engine, self.settings, event_id, now, send)

    def events_for(self, reference: str) -> list[delivery.QueuedEvent]:
        """The events queued for a gateway object, in sequence order."""
        return delivery.events_for(self._engine, reference)

    # The write path.

    def _write(
        self, operation: str, idempotency_key: str, request: dict[str, Any],
        work: Callable[[Connection, datetime], GatewayResult],
    ) -> GatewayResult:
        """Run `work` once per idempotency key; a replay returns the stored result."""
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
            raise InvalidIdempotencyKey()
        request_hash = hashlib.sha256(
            json.dumps([operation, request], sort_keys=True).encode()
        ).digest()
        now = self._clock()
        with self._engine.begin() as connection:
            claimed = connection.execute(
                pg_insert(requests)
                .values(idempotency_key=idempotency_key, operation=operation,
                        request_hash=request_hash, response={}, created_at=now)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(requests.c.idempotency_key)
            ).first()
            if claimed is None:
                return _replay(connection, idempotency_key, request_hash)
            result = work(connection, now)
            connection.execute(
                update(requests).where(requests.c.idempotency_key == idempotency_key)
                .values(response=_to_json(result))
            )
        return result

    def _create(
        self, connection: Connection, now: datetime, kind: OperationKind, token: str,
        amount_minor: int, currency: str, plan: magic.Plan, *,
        parent_reference: str | None = None,
    ) -> GatewayResult:
        """Insert a new gateway object, pending, then move it as the plan says."""
        prefix = {OperationKind.PAYMENT: "pay", OperationKind.REFUND: "re",
                  OperationKind.PAYOUT: "po"}[kind]
        reference = _new_id(prefix)
        delay_s = (self.settings.delayed_seconds if plan.slow
                   else self.settings.async_delay_seconds)
        scheduled = plan.outcome_status is not None
        connection.execute(insert(operations).values(
            reference=reference, kind=kind.value, instrument_token=token,
            parent_reference=parent_reference, amount_minor=amount_minor, currency=currency,
            status=_S.PENDING.value,
            outcome_status=plan.outcome_status.value if scheduled else None,
            outcome_decline_code=_value(plan.outcome_decline_code),
            outcome_due_at=now + timedelta(seconds=delay_s) if scheduled else None,
            deadline_at=(now + timedelta(seconds=self.settings.authorization_timeout_seconds)
                         if plan.times_out else None),
            created_at=now, updated_at=now,
        ))
        if plan.status is _S.PENDING:
            return _result(_row(connection, reference))
        return _transition(connection, reference, plan.status, plan.decline_code, now)

    def _locked(self, connection: Connection, reference: str, now: datetime) -> Any:
        """The object's row, locked, after applying an outcome or deadline that has come."""
        row = _row(connection, reference, lock=True)
        if row.status != _S.PENDING:
            return row
        if row.outcome_due_at is not None and row.outcome_due_at <= now:
            status = _S(row.outcome_status)
            code = DeclineCode(row.outcome_decline_code) if row.outcome_decline_code else None
            captured = int(row.amount_minor) if status is _S.CAPTURED else None
            _transition(connection, reference, status, code, row.outcome_due_at,
                        captured_minor=captured)
        elif row.deadline_at is not None and row.deadline_at <= now:
            # A timed-out authorization never sends a callback: the caller has to ask.
            _transition(connection, reference, _S.FAILED, DeclineCode.TIMEOUT, now,
                        emit=False)
        else:
            return row
        return _row(connection, reference)


def _check_amount(amount_minor: int, currency: str) -> None:
    if not _positive_int(amount_minor):
        raise InvalidGatewayAmount("The amount must be a positive integer of minor units.")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii()
            and currency.isupper() and currency.isalpha()):
        raise InvalidGatewayAmount("The currency must be a 3-letter upper-case code.")
    if amount_minor == magic.AMOUNT_UNAVAILABLE:
        raise GatewayUnavailable("The sandbox processor is unavailable (magic amount 503).")


def _value(code: DeclineCode | None) -> str | None:
    return code.value if code is not None else None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _instrument(connection: Connection, token: str, kind: str | None) -> Any:
    row = connection.execute(select(instruments).where(instruments.c.token == token)).first()
    if row is None or (kind is not None and row.kind != kind):
        raise UnknownInstrument(f"The sandbox has no {kind or 'instrument'} with this token.")
    return row


def _row(connection: Connection, reference: str, *, lock: bool = False) -> Any:
    statement = select(operations).where(operations.c.reference == reference)
    if lock:
        statement = statement.with_for_update()
    row = connection.execute(statement).first()
    if row is None:
        raise GatewayReferenceNotFound()
    return row


def _transition(
    connection: Connection, reference: str, status: GatewayStatus,
    decline_code: DeclineCode | None, occurred_at: datetime, *, emit: bool = True,
    **amounts: int | None,
) -> GatewayResult:
    """Move an object to `status`, clear its schedule, and queue the event that says so."""
    values: dict[str, Any] = {k: v for k, v in amounts.items() if v is not None}
    row = connection.execute(
        update(operations).where(operations.c.reference == reference)
        .values(status=status.value, decline_code=_value(decline_code), outcome_status=None,
                outcome_decline_code=None, outcome_due_at=None, deadline_at=None,
                sequence=operations.c.sequence + 1, updated_at=occurred_at, **values)
        .returning(*operations.c)
    ).one()
    result = _result(row)
    if emit:
        _queue_event(connection, result, row.sequence, occurred_at)
    return result


def _queue_event(
    connection: Connection, result: GatewayResult, sequence: int, occurred_at: datetime
) -> None:
    # Time-ordered, so events queued in one instant still sort in the order they happened.
    event_id = f"evt_{uuid7().hex}"
    event_type = f"{result.kind}.{result.status}"
    body = {
        "id": event_id, "type": event_type, "kind": result.kind.value,
        "gateway_reference": result.reference, "parent_reference": result.parent_reference,
        "status": result.status.value,
        "decline_code": result.decline_code.value if result.decline_code else None,
        "amount_minor": result.amount_minor, "currency": result.currency,
        "sequence": sequence, "occurred_at": occurred_at.isoformat(),
    }
    connection.execute(insert(callbacks).values(
        event_id=event_id, gateway_reference=result.reference, event_type=event_type,
        sequence=sequence, body=json.dumps(body, separators=(",", ":")),
        due_at=occurred_at, created_at=occurred_at,
    ))


def _result(row: Any) -> GatewayResult:
    return GatewayResult(
        reference=row.reference, kind=OperationKind(row.kind), status=_S(row.status),
        amount_minor=int(row.amount_minor), currency=row.currency,
        decline_code=DeclineCode(row.decline_code) if row.decline_code else None,
        parent_reference=row.parent_reference,
    )


def _to_json(result: GatewayResult) -> dict[str, Any]:
    return {key: (value.value if hasattr(value, "value") else value)
            for key, value in asdict(result).items()}


def _replay(connection: Connection, idempotency_key: str, request_hash: bytes) -> GatewayResult:
    row = connection.execute(
        select(requests).where(requests.c.idempotency_key == idempotency_key)
    ).one()
    if bytes(row.request_hash) != request_hash:
        raise GatewayIdempotencyKeyReused()
    stored = dict(row.response)
    return GatewayResult(
        reference=stored["reference"], kind=OperationKind(stored["kind"]),
        status=_S(stored["status"]), amount_minor=int(stored["amount_minor"]),
        currency=stored["currency"],
        decline_code=DeclineCode(stored["decline_code"]) if stored["decline_code"] else None,
        parent_reference=stored["parent_reference"],
    )
