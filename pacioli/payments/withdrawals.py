"""Withdrawals: wallet funds paid out to one of the user's linked bank accounts.

Steps (docs/payments.md, "Top-up and withdrawal"):

1. **Record** a `withdrawals` row, `created`, unique per (user, Idempotency-Key). Above
   `second_factor_threshold_minor` the authenticator's code is checked in the same
   database transaction, so it is spent only if the withdrawal is recorded.
2. **Hold**: a pending ledger transfer, the user's wallet → `bank_settlement`, key
   `withdrawal:<id>:hold`. The pending debit counts against the wallet's available
   balance, so concurrent withdrawals cannot together take more than it holds; the
   ledger refusing (insufficient funds) makes the withdrawal `failed` and nothing moved.
3. **Pay out** through the gateway, outside any transaction (`withdrawal:<id>:payout`).
   No answer leaves it pending without a reference; a refresh asks again with the key.
4. **Settle** from a callback or a refresh: `paid_out` posts the hold
   (`withdrawal:<id>:post`, `succeeded`); `failed` voids it (`withdrawal:<id>:void`,
   `failed`: the funds are back in the wallet).

The update that makes a withdrawal `succeeded` or `failed` (also a hold the ledger
refused) appends `withdrawal.succeeded` or `withdrawal.failed` to the outbox in its own
transaction; a finisher that finds it settled already appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayStatus, PaymentGateway
from pacioli.gateways.callbacks import GatewayEvent, is_superseded
from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import funding_errors as fe
from pacioli.payments import records, totp
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.errors import rejection_with_code
from pacioli.payments.funding_tables import withdrawals
from pacioli.payments.instruments import BANK_ACCOUNT, Instruments

PAGE_LIMIT_MAX = 200
UNSETTLED = ("created", "pending")
# The event each final status announces.
FINAL_EVENTS = {"succeeded": "withdrawal.succeeded", "failed": "withdrawal.failed"}


@dataclass(frozen=True, slots=True)
class Withdrawal:
    id: UUID
    user_id: UUID
    instrument_id: UUID
    gateway: str
    currency: str
    amount_minor: int
    status: str  # created, pending, succeeded, failed
    failure_code: str | None
    gateway_reference: str | None
    hold_transfer_id: UUID | None
    settlement_transfer_id: UUID | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class WithdrawalAnswer:
    """A withdrawal, and whether an earlier request with the same key made it."""

    value: Withdrawal
    replayed: bool


class Withdrawals:
    """Pays wallet funds out to linked bank accounts (steps in the module docstring)."""

    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._gateway = gateway
        self._instruments = Instruments(engine, gateway)

    def create(
        self, *, user_id: UUID, bank_account_id: UUID, amount_minor: int, currency: str,
        idempotency_key: str, one_time_code: str | None = None,
    ) -> WithdrawalAnswer:
        """Hold the amount in the wallet and pay it out to the bank account.

        A replay with the same key needs no second code: it moves nothing new.

        Raises: InvalidFundingRequest, InstrumentNotFound, InstrumentRemoved, UnknownAsset,
        SecondFactorRequired, InvalidSecondFactor, IdempotencyKeyReusedForFunding, and
        the ledger's rejections of the hold (InsufficientFunds, AccountFrozen ...), also
        when replaying a withdrawal that failed that way.
        """
        if type(amount_minor) is not int or amount_minor <= 0:
            raise fe.InvalidFundingRequest("the amount must be a positive number of minor units")
        request_hash = records.request_hash(bank_account_id, amount_minor, currency)
        existing = self._find(user_id, idempotency_key)
        if existing is not None:
            withdrawal, replayed = _replayed(existing, request_hash, idempotency_key), True
        else:
            self._instruments.usable(user_id, bank_account_id, BANK_ACCOUNT)
            self._chart.wallet(user_id, currency)  # an unknown currency is refused now
            withdrawal, replayed = self._claim(
                user_id, bank_account_id, currency, amount_minor, idempotency_key,
                request_hash, one_time_code,
            )
        withdrawal = self._advance(withdrawal)
        if withdrawal.status == "failed" and withdrawal.hold_transfer_id is None:
            raise rejection_with_code(
                withdrawal.failure_code,
                f"withdrawal {withdrawal.id} failed: {withdrawal.failure_code}",
            )
        return WithdrawalAnswer(withdrawal, replayed)

    def refresh(self, user_id: UUID, withdrawal_id: UUID) -> Withdrawal:
        """Ask the gateway how the payout stands and settle the withdrawal if decided.

        Raises: WithdrawalNotFound, GatewayUnavailable.
        """
        return self._refresh(self.get(user_id, withdrawal_id))

    def refresh_unsettled(self, *, limit: int = 100) -> list[Withdrawal]:
        """Refresh every user's unsettled withdrawals, oldest first (for a periodic worker)."""
        t = withdrawals
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t).where(t.c.status.in_(UNSETTLED)).order_by(t.c.updated_at)
                .limit(min(limit, PAGE_LIMIT_MAX))
            ).all()
        refreshed = []
        for row in rows:
            try:
                refreshed.append(self._refresh(_withdrawal(row)))
            except gw.GatewayUnavailable:
                continue  # The next sweep asks again.
        return refreshed

    def handle_event(self, event: GatewayEvent) -> None:
        """Apply a payout callback (idempotent; stale and foreign events are ignored)."""
        withdrawal = self._find_by_reference(event.gateway, event.reference)
        if (withdrawal is None or withdrawal.status != "pending"
                or is_superseded(self._engine, event)):
            return
        if (event.amount_minor, event.currency) != (withdrawal.amount_minor,
                                                    withdrawal.currency):
            return
        self._apply(withdrawal, event.status, event.decline_code)

    # Reading.

    def get(self, user_id: UUID, withdrawal_id: UUID) -> Withdrawal:
        """One of the user's withdrawals. Raises: WithdrawalNotFound."""
        row = records.owned_row(self._engine, withdrawals, withdrawal_id, user_id)
        if row is None:
            raise fe.WithdrawalNotFound(f"no withdrawal {withdrawal_id}")
        return _withdrawal(row)

    def list(
        self, user_id: UUID, *, status: str | None = None, limit: int = 50,
        starting_after: UUID | None = None,
    ) -> list[Withdrawal]:
        """The user's withdrawals, newest first."""
        rows = records.owned_rows(self._engine, withdrawals, user_id, status=status, limit=limit,
                                  starting_after=starting_after)
        return [_withdrawal(row) for row in rows]

    # Steps.

    def _claim(
        self, user_id, bank_account_id, currency, amount_minor, idempotency_key, request_hash,
        one_time_code,
    ) -> tuple[Withdrawal, bool]:
        t = withdrawals
        now = _now()
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(t).values(
                    id=uuid7(), user_id=user_id, instrument_id=bank_account_id,
                    gateway=self._gateway.name, currency=currency, amount_minor=amount_minor,
                    status="created", idempotency_key=idempotency_key,
                    request_hash=request_hash, created_at=now, updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                .returning(t)
            ).first()
            if inserted is not None:
                # Checked after the insert, in its transaction: a refused code records
                # nothing, and a concurrent replay of this key does not spend a code.
                totp.require_second_factor(connection, user_id, one_time_code,
                                           amount_minor=amount_minor)
                return _withdrawal(inserted), False
        existing = self._find(user_id, idempotency_key)
        return _replayed(existing, request_hash, idempotency_key), True

    def _refresh(self, withdrawal: Withdrawal) -> Withdrawal:
        withdrawal = self._advance(withdrawal)
        if withdrawal.status == "pending" and withdrawal.gateway_reference is not None:
            result = self._gateway.fetch_status(withdrawal.gateway_reference)
            withdrawal = self._apply(withdrawal, result.status, result.decline_code)
        return withdrawal

    def _advance(self, withdrawal: Withdrawal) -> Withdrawal:
        if withdrawal.status == "created":
            withdrawal = self._hold(withdrawal)
        if withdrawal.status == "pending" and withdrawal.gateway_reference is None:
            withdrawal = self._pay_out(withdrawal)
        return withdrawal

    def _hold(self, withdrawal: Withdrawal) -> Withdrawal:
        try:
            wallet = self._chart.wallet(withdrawal.user_id, withdrawal.currency)
            bank = self._chart.platform(Purpose.BANK_SETTLEMENT, withdrawal.currency)
            hold = self._ledger.transfer(
                [debit(wallet, withdrawal.amount_minor), credit(bank, withdrawal.amount_minor)],
                pending=True, metadata=_metadata(withdrawal),
                idempotency_key=f"withdrawal:{withdrawal.id}:hold", client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._update(withdrawal, ("created",), status="failed",
                                failure_code=rejection.code, completed_at=_now())
        return self._update(withdrawal, ("created",), status="pending", hold_transfer_id=hold.id)

    def _pay_out(self, withdrawal: Withdrawal) -> Withdrawal:
        """Ask the gateway to pay out (no database transaction is open here)."""
        token = self._instruments.get(withdrawal.user_id, withdrawal.instrument_id).token
        try:
            result = self._gateway.payout(
                token, withdrawal.amount_minor, withdrawal.currency,
                idempotency_key=f"withdrawal:{withdrawal.id}:payout",
            )
        except gw.GatewayUnavailable:
            return withdrawal  # Unknown outcome: a refresh asks again with the same key.
        except (gw.GatewayRejected, gw.GatewayNotFound, gw.GatewayConflict) as refusal:
            return self._release(withdrawal, refusal.code)
        withdrawal = self._update(withdrawal, ("pending",), only_unsubmitted=True,
                                  gateway_reference=result.reference)
        return self._apply(withdrawal, result.status, result.decline_code)

    def _apply(
        self, withdrawal: Withdrawal, status: GatewayStatus, decline_code: gw.DeclineCode | None
    ) -> Withdrawal:
        if withdrawal.status != "pending":
            return withdrawal
        if status is GatewayStatus.PAID_OUT:
            posted = self._ledger.post_pending(
                withdrawal.hold_transfer_id, metadata=_metadata(withdrawal),
                idempotency_key=f"withdrawal:{withdrawal.id}:post",
                client_id=PAYMENTS_CLIENT_ID,
            ).value
            return self._update(withdrawal, ("pending",), status="succeeded",
                                settlement_transfer_id=posted.id, completed_at=_now())
        if status in (GatewayStatus.FAILED, GatewayStatus.DECLINED):
            return self._release(withdrawal, str(decline_code or status))
        return withdrawal

    def _release(self, withdrawal: Withdrawal, failure_code: str) -> Withdrawal:
        """Void the hold: the funds are back in the wallet."""
        voided = self._ledger.void_pending(
            withdrawal.hold_transfer_id, metadata=_metadata(withdrawal),
            idempotency_key=f"withdrawal:{withdrawal.id}:void", client_id=PAYMENTS_CLIENT_ID,
        ).value
        return self._update(withdrawal, ("pending",), status="failed", failure_code=failure_code,
                            settlement_transfer_id=voided.id, completed_at=_now())

    # Rows.

    def _find(self, user_id: UUID, idempotency_key: str):
        t = withdrawals
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.idempotency_key == idempotency_key)
            ).first()

    def _find_by_reference(self, gateway: str, reference: str) -> Withdrawal | None:
        t = withdrawals
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.gateway == gateway, t.c.gateway_reference == reference)
            ).first()
        return None if row is None else _withdrawal(row)

    def _update(
        self, withdrawal: Withdrawal, statuses: tuple[str, ...], *,
        only_unsubmitted: bool = False, **values: Any,
    ) -> Withdrawal:
        """Change the row if it is still in one of `statuses`; return it as it now is.

        An update that settles the withdrawal appends its event in the same transaction.
        """
        t = withdrawals
        condition = (t.c.id == withdrawal.id) & t.c.status.in_(statuses)
        if only_unsubmitted:
            condition &= t.c.gateway_reference.is_(None)
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(t).where(condition).values(updated_at=_now(), **values).returning(t)
            ).first()
            # `statuses` are unsettled ones, so a changed row that is final was settled now.
            if changed is not None and changed.status in FINAL_EVENTS:
                _announce(connection, changed)
            row = changed or connection.execute(select(t).where(t.c.id == withdrawal.id)).one()
        return _withdrawal(row)


def _announce(connection, row) -> None:
    """`withdrawal.succeeded` or `.failed` for a withdrawal just settled (in its
    transaction)."""
    append_event(connection, FINAL_EVENTS[row.status], "withdrawal", str(row.id), {
        "withdrawal_id": str(row.id), "user_id": str(row.user_id),
        "amount_minor": str(int(row.amount_minor)), "currency": row.currency,
        "failure_code": row.failure_code,
    })


def _replayed(row, request_hash: str, idempotency_key: str) -> Withdrawal:
    """The record an earlier request with this key made.

    Raises: IdempotencyKeyReusedForFunding.
    """
    return _withdrawal(
        records.same_request(row, request_hash, idempotency_key, fe.IdempotencyKeyReusedForFunding)
    )


def _metadata(withdrawal: Withdrawal) -> dict[str, str]:
    return {"flow": "withdrawal", "withdrawal_id": str(withdrawal.id),
            "user_id": str(withdrawal.user_id), "gateway": withdrawal.gateway}


def _now() -> datetime:
    return datetime.now(UTC)


def _withdrawal(row) -> Withdrawal:
    return Withdrawal(**{column.name: getattr(row, column.name)
                         for column in withdrawals.columns
                         if column.name not in ("idempotency_key", "request_hash")})
