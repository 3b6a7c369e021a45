"""Merchant settlement: what merchants earned moves, per merchant and currency, on a cycle,
from their pending-settlement accounts to their balances and out to their banks.

One batch, one merchant, one currency (docs/settlement.md draws it):

1. **Bind** (`created`): one database transaction inserts the batch with its totals and
   sets `batch_id` on the due items it counted, only where `batch_id` is still NULL (rows
   taken with FOR UPDATE SKIP LOCKED), so an item is settled in one batch at most and
   two concurrent runs never bind the same items.
2. **Move and hold** (`moved`): one linked ledger batch, key `settlement:<id>:move`:
   pending settlement → merchant balance (the net), and a pending transfer merchant
   balance → `bank_settlement` for the payout. Linked, so the merchant can never spend
   the moved net before it is held. Waits in `created` (with `waiting_reason`) while the
   merchant has no payable settlement account.
3. **Pay out** (`payout_pending`): the gateway's `payout`, outside any transaction, with
   the idempotency key `settlement:<id>:payout`; its reference is recorded after.
4. **Resolve** on the gateway's final word (a callback, or `fetch_status` in
   `refresh_unsettled`): paid out → post the hold (`settlement:<id>:post`), `paid`;
   failed → void it (`settlement:<id>:void`: the net is back in the merchant's
   balance), `failed`. The status update appends `settlement.paid` / `.failed`.

Every step is keyed by the batch, and every status update is conditional on the status
it leaves, so a process that dies anywhere and runs again finishes each batch once:
`run_cycle` resumes unfinished batches before it binds new ones.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayStatus, PaymentGateway
from pacioli.gateways.callbacks import GatewayEvent, HandlerRegistry, is_superseded
from pacioli.gateways.callbacks import handlers as default_registry
from pacioli.ledger import DomainError, Ledger, TransferSpec, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import records
from pacioli.payments import settlement_errors as se
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.settlement_accounts import payout_destination
from pacioli.payments.settlement_items import SettlementItem, items_of_batch
from pacioli.payments.settlement_tables import (
    UNFINISHED_STATUSES,
    settlement_batches,
    settlement_items,
    settlement_schedules,
)

log = logging.getLogger(__name__)

CYCLE_DAYS_DEFAULT = 1
CYCLE_DAYS_MAX = 30
ITEMS_PER_BATCH_MAX = 1_000  # a report is one page; a busy merchant gets several batches
GROUPS_PER_RUN_MAX = 500  # (merchant, currency) pairs bound per run
BATCHES_PER_RUN_MAX = 500  # unfinished batches resumed or refreshed per run
FAULT_POINTS = ("settlement.after_bind", "settlement.after_move", "settlement.after_payout",
                "settlement.after_post", "settlement.after_void")

StepHook = Callable[[str, "SettlementBatch"], None]


@dataclass(frozen=True, slots=True)
class SettlementBatch:
    id: UUID
    merchant_id: UUID
    currency: str
    cutoff_at: datetime
    gross_minor: int
    fees_minor: int
    refunds_minor: int
    net_minor: int
    item_count: int
    status: str  # created, moved, payout_pending, paid, failed
    waiting_reason: str | None
    gateway: str | None
    destination_id: UUID | None
    payout_token: str | None
    move_transfer_id: UUID | None
    hold_transfer_id: UUID | None
    resolution_transfer_id: UUID | None
    payout_reference: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SettlementReport:
    """A batch and its items: gross − fees − refunds = net = the sum of the items' nets."""

    batch: SettlementBatch
    items: list[SettlementItem]


def cutoff_for(now: datetime, cycle_days: int) -> datetime:
    """Items completed before this instant are due at `now` on a T+`cycle_days` cycle.

    T+N settles what completed on UTC day D on day D+N, so at `now` everything
    completed before the start of UTC day (today − N + 1) is due; T+0 settles
    everything completed before `now`.
    """
    if cycle_days == 0:
        return now
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    return today - timedelta(days=cycle_days - 1)


def batch_totals(items: list[tuple[int, int, int]]) -> dict[str, int]:
    """Gross (what payments brought), fees, refunds and net of (gross, fee, net) items.

    A negative item is a refund: it gives back its gross (counted under refunds) and its
    share of the fee (taken off fees), so gross − fees − refunds = Σ net always.
    """
    gross = sum(g for g, _, _ in items if g > 0)
    refunds = -sum(g for g, _, _ in items if g < 0)
    fees = sum(f for _, f, _ in items)
    return {"gross_minor": gross, "fees_minor": fees, "refunds_minor": refunds,
            "net_minor": sum(n for _, _, n in items), "item_count": len(items)}


class Settlement:
    """Settles merchants on a cycle and pays them out (steps in the module docstring).

    `cycle_days` is the default cycle (a merchant's schedule overrides it). `on_step`
    is called at each of `FAULT_POINTS` (tests simulate a crash by raising from it), and
    `fault_at`, one of those names, makes the process kill itself with SIGKILL there (a
    testing aid for fault tests, PACIOLI_FAULT_AT; unset, it costs one comparison).
    """

    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway, *,
        cycle_days: int = CYCLE_DAYS_DEFAULT, clock: Callable[[], datetime] | None = None,
        on_step: StepHook | None = None, fault_at: str | None = None,
    ) -> None:
        _check_cycle_days(cycle_days)
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._gateway = gateway
        self._cycle_days = cycle_days
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_step = on_step
        self._fault_at = fault_at

    # The scheduled jobs.

    def run_cycle(self, now: datetime) -> list[SettlementBatch]:
        """Resume unfinished batches, then bind and settle what is due at `now`.

        Safe to run again at any time and from several workers at once: what is bound
        stays bound, and every step replays. Returns the batches it touched.
        """
        touched = [self._advance_logged(batch) for batch in self._unfinished(("created",
                                                                              "moved"))]
        for merchant_id, currency in self._due_groups(now):
            cutoff = cutoff_for(now, self._cycle_days_of(merchant_id))
            while (batch := self._bind(merchant_id, currency, cutoff)) is not None:
                self._reached("settlement.after_bind", batch)
                touched.append(self._advance_logged(batch))
        return [batch for batch in touched if batch is not None]

    def refresh_unsettled(self, now: datetime | None = None) -> list[SettlementBatch]:
        """Ask the gateway about every payout still pending, and resolve the decided ones.

        `now` is unused (the gateway's answer is the clock); jobs pass it uniformly.
        """
        refreshed = []
        for batch in self._unfinished(("payout_pending",)):
            try:
                result = self._gateway.fetch_status(batch.payout_reference)
                refreshed.append(self._apply(batch, result.status, result.decline_code))
            except gw.GatewayUnavailable:
                continue  # The next sweep asks again.
            except Exception:
                log.exception("settlement refresh failed", extra={"batch_id": str(batch.id)})
        return refreshed

    def handle_event(self, event: GatewayEvent) -> None:
        """Resolve a batch from a payout callback (idempotent; other events are ignored)."""
        if event.gateway != self._gateway.name or event.kind is not gw.OperationKind.PAYOUT:
            return
        batch = self._by_reference(event.gateway, event.reference)
        if (batch is None or batch.status != "payout_pending"
                or is_superseded(self._engine, event)):
            return
        if (event.amount_minor, event.currency) != (batch.net_minor, batch.currency):
            log.warning("payout callback disagrees with its batch",
                        extra={"batch_id": str(batch.id), "event_id": event.event_id})
            return
        self._apply(batch, event.status, event.decline_code)

    # Reading.

    def get(self, merchant_id: UUID, batch_id: UUID) -> SettlementBatch:
        """Raises: SettlementBatchNotFound."""
        t = settlement_batches
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.id == batch_id, t.c.merchant_id == merchant_id)
            ).first()
        if row is None:
            raise se.SettlementBatchNotFound(f"no settlement {batch_id}")
        return _batch(row)

    def report(self, merchant_id: UUID, batch_id: UUID) -> SettlementReport:
        """A batch with its items. Raises: SettlementBatchNotFound."""
        batch = self.get(merchant_id, batch_id)
        with self._engine.connect() as connection:
            return SettlementReport(batch, items_of_batch(connection, batch_id))

    def list(self, merchant_id: UUID, *, currency: str | None = None, limit: int = 50,
             starting_after: UUID | None = None) -> list[SettlementBatch]:
        """The merchant's batches, newest first."""
        t = settlement_batches
        wanted = [t.c.merchant_id == merchant_id]
        if currency is not None:
            wanted.append(t.c.currency == currency)
        query = records.newest_first(t, *wanted, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return [_batch(row) for row in connection.execute(query)]

    def cycle_days_of(self, merchant_id: UUID) -> int:
        return self._cycle_days_of(merchant_id)

    def set_cycle_days(self, merchant_id: UUID, cycle_days: int | None) -> int:
        """Give a merchant its own cycle (None: the default again); return the cycle.

        Raises: InvalidSettlementSchedule.
        """
        t = settlement_schedules
        with self._engine.begin() as connection:
            if cycle_days is None:
                connection.execute(t.delete().where(t.c.merchant_id == merchant_id))
                return self._cycle_days
            _check_cycle_days(cycle_days)
            values = {"cycle_days": cycle_days, "updated_at": self._clock()}
            connection.execute(
                insert(t).values(merchant_id=merchant_id, **values)
                .on_conflict_do_update(index_elements=[t.c.merchant_id], set_=values)
            )
        return cycle_days

    # Step 1: bind.

    def _due_groups(self, now: datetime) -> list[tuple[UUID, str]]:
        """(merchant, currency) pairs with unbatched items completed before `now`."""
        t = settlement_items
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t.c.merchant_id, t.c.currency)
                .where(t.c.batch_id.is_(None), t.c.completed_at < now)
                .group_by(t.c.merchant_id, t.c.currency)
                .order_by(func.min(t.c.completed_at)).limit(GROUPS_PER_RUN_MAX)
            ).all()
        return [(row.merchant_id, row.currency) for row in rows]

    def _bind(self, merchant_id: UUID, currency: str,
              cutoff: datetime) -> SettlementBatch | None:
        """Make a batch of the merchant's due items, or None when none are left to bind.

        A net of zero or less (refunds outweighing payments) binds nothing: the items
        wait for later payments to cover them, as processors carry a negative forward.
        """
        t = settlement_items
        with self._engine.begin() as connection:
            due = connection.execute(
                select(t.c.id, t.c.gross_minor, t.c.fee_minor, t.c.net_minor)
                .where(t.c.merchant_id == merchant_id, t.c.currency == currency,
                       t.c.batch_id.is_(None), t.c.completed_at < cutoff)
                .order_by(t.c.completed_at, t.c.id).limit(ITEMS_PER_BATCH_MAX)
                .with_for_update(skip_locked=True)
            ).all()
            totals = batch_totals([(r.gross_minor, r.fee_minor, r.net_minor) for r in due])
            if not due or totals["net_minor"] <= 0:
                return None
            now = self._clock()
            row = connection.execute(
                insert(settlement_batches).values(
                    id=uuid7(), merchant_id=merchant_id, currency=currency, cutoff_at=cutoff,
                    status="created", created_at=now, updated_at=now, **totals,
                ).returning(settlement_batches)
            ).one()
            bound = connection.execute(
                update(t).where(t.c.id.in_([r.id for r in due]), t.c.batch_id.is_(None))
                .values(batch_id=row.id)
            ).rowcount
            if bound != len(due):  # cannot happen while the rows are locked; be sure
                raise RuntimeError(f"settlement batch {row.id}: items changed while binding")
        return _batch(row)

    # Steps 2 to 4.

    def _advance_logged(self, batch: SettlementBatch) -> SettlementBatch | None:
        # One batch failing (a frozen account, a bug) must not stop the others.
        try:
            return self._advance(batch)
        except Exception:
            log.exception("settlement batch did not advance", extra={"batch_id": str(batch.id)})
            return None

    def _advance(self, batch: SettlementBatch) -> SettlementBatch:
        if batch.status == "created":
            batch = self._move(batch)
        if batch.status == "moved":
            batch = self._pay_out(batch)
        return batch

    def _move(self, batch: SettlementBatch) -> SettlementBatch:
        try:
            destination = payout_destination(self._engine, self._gateway, batch.merchant_id)
        except DomainError as reason:  # no (payable) account, or the gateway is down
            return self._wait(batch, reason.code)
        balance = self._chart.merchant_balance(batch.merchant_id, batch.currency)
        move = TransferSpec((
            debit(self._chart.merchant_pending_settlement(batch.merchant_id, batch.currency),
                  batch.net_minor),
            credit(balance, batch.net_minor),
        ), _metadata(batch, "move"))
        hold = TransferSpec((
            debit(balance, batch.net_minor),
            credit(self._chart.platform(Purpose.BANK_SETTLEMENT, batch.currency),
                   batch.net_minor),
        ), _metadata(batch, "payout_hold"), pending=True)
        try:
            moved, held = self._ledger.transfer_batch(
                [move, hold], idempotency_key=f"settlement:{batch.id}:move",
                client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._wait(batch, rejection.code)
        self._reached("settlement.after_move", batch)
        return self._update(
            batch, ("created",), status="moved", waiting_reason=None,
            gateway=self._gateway.name, destination_id=destination.destination_id,
            payout_token=destination.token, move_transfer_id=moved.id,
            hold_transfer_id=held.id,
        )

    def _pay_out(self, batch: SettlementBatch) -> SettlementBatch:
        """Ask the gateway to pay the net out (no database transaction is open here)."""
        try:
            result = self._gateway.payout(
                batch.payout_token, batch.net_minor, batch.currency,
                idempotency_key=f"settlement:{batch.id}:payout",
            )
        except gw.GatewayUnavailable:
            return batch  # Unknown outcome: the next run asks again with the same key.
        except (gw.GatewayRejected, gw.GatewayNotFound, gw.GatewayConflict) as refusal:
            return self._release(batch, refusal.code)
        self._reached("settlement.after_payout", batch)
        batch = self._update(batch, ("moved",), status="payout_pending",
                             payout_reference=result.reference)
        return self._apply(batch, result.status, result.decline_code)

    def _apply(self, batch: SettlementBatch, status: GatewayStatus,
               decline_code: gw.DeclineCode | None) -> SettlementBatch:
        if batch.status != "payout_pending":
            return batch
        if status is GatewayStatus.PAID_OUT:
            posted = self._ledger.post_pending(
                batch.hold_transfer_id, metadata=_metadata(batch, "payout_post"),
                idempotency_key=f"settlement:{batch.id}:post", client_id=PAYMENTS_CLIENT_ID,
            ).value
            self._reached("settlement.after_post", batch)
            return self._finish(batch, "paid", posted.id, None)
        if status in (GatewayStatus.FAILED, GatewayStatus.DECLINED):
            return self._release(batch, str(decline_code or status))
        return batch

    def _release(self, batch: SettlementBatch, failure_code: str) -> SettlementBatch:
        """Void the payout's hold: the net is back in the merchant's balance."""
        voided = self._ledger.void_pending(
            batch.hold_transfer_id, metadata=_metadata(batch, "payout_void"),
            idempotency_key=f"settlement:{batch.id}:void", client_id=PAYMENTS_CLIENT_ID,
        ).value
        self._reached("settlement.after_void", batch)
        return self._finish(batch, "failed", voided.id, failure_code)

    def _finish(self, batch: SettlementBatch, status: str, resolution_transfer_id: UUID,
                failure_code: str | None) -> SettlementBatch:
        """Mark the batch paid or failed and append its event, in one transaction."""
        t = settlement_batches
        now = self._clock()
        with self._engine.begin() as connection:
            row = connection.execute(
                update(t).where(t.c.id == batch.id,
                                t.c.status.in_(("moved", "payout_pending")))
                .values(status=status, resolution_transfer_id=resolution_transfer_id,
                        failure_code=failure_code, updated_at=now, completed_at=now)
                .returning(t)
            ).first()
            if row is None:  # another worker finished it first
                return _batch(connection.execute(select(t).where(t.c.id == batch.id)).one())
            finished = _batch(row)
            append_event(connection, f"settlement.{status}", "settlement_batch",
                         str(finished.id), _event_payload(finished), now=now)
        return finished

    def _wait(self, batch: SettlementBatch, reason: str) -> SettlementBatch:
        if batch.waiting_reason == reason:
            return batch
        log.info("settlement batch waits", extra={"batch_id": str(batch.id), "reason": reason})
        return self._update(batch, ("created",), waiting_reason=reason)

    def _reached(self, point: str, batch: SettlementBatch) -> None:
        if self._on_step is not None:
            self._on_step(point, batch)
        if self._fault_at == point:
            os.kill(os.getpid(), signal.SIGKILL)

    # Rows.

    def _unfinished(self, statuses: tuple[str, ...]) -> list[SettlementBatch]:
        t = settlement_batches
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t).where(t.c.status.in_(statuses),
                                t.c.status.in_(UNFINISHED_STATUSES))
                .order_by(t.c.updated_at).limit(BATCHES_PER_RUN_MAX)
            ).all()
        return [_batch(row) for row in rows]

    def _by_reference(self, gateway: str, reference: str) -> SettlementBatch | None:
        t = settlement_batches
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.gateway == gateway, t.c.payout_reference == reference)
            ).first()
        return None if row is None else _batch(row)

    def _cycle_days_of(self, merchant_id: UUID) -> int:
        t = settlement_schedules
        with self._engine.connect() as connection:
            days = connection.execute(
                select(t.c.cycle_days).where(t.c.merchant_id == merchant_id)
            ).scalar()
        return self._cycle_days if days is None else days

    def _update(self, batch: SettlementBatch, statuses: tuple[str, ...],
                **values: Any) -> SettlementBatch:
        """Change the row if it is still in one of `statuses`; return it as it now is."""
        t = settlement_batches
        with self._engine.begin() as connection:
            row = connection.execute(
                update(t).where(t.c.id == batch.id, t.c.status.in_(statuses))
                .values(updated_at=self._clock(), **values).returning(t)
            ).first()
            row = row or connection.execute(select(t).where(t.c.id == batch.id)).one()
        return _batch(row)


def register_settlement_handler(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway, *,
    registry: HandlerRegistry | None = None,
) -> Callable[[], None]:
    """Resolve settlement payouts on `payout.*` callbacks of `gateway`; return a function
    that removes the handler again (the API registers it while it runs)."""
    settlement = Settlement(engine, ledger, chart, gateway)
    return (registry or default_registry).register("payout.", settlement.handle_event)


def _check_cycle_days(cycle_days: int) -> None:
    if type(cycle_days) is not int or not 0 <= cycle_days <= CYCLE_DAYS_MAX:
        raise se.InvalidSettlementSchedule(
            f"a settlement cycle is 0 to {CYCLE_DAYS_MAX} days, not {cycle_days!r}"
        )


def _metadata(batch: SettlementBatch, step: str) -> dict[str, str]:
    # Only what never changes for the batch: a replayed step must be the same request.
    return {"flow": "settlement", "step": step, "batch_id": str(batch.id),
            "merchant_id": str(batch.merchant_id)}


def _event_payload(batch: SettlementBatch) -> dict[str, Any]:
    return {
        "batch_id": str(batch.id), "merchant_id": str(batch.merchant_id),
        "currency": batch.currency, "gross_minor": str(batch.gross_minor),
        "fees_minor": str(batch.fees_minor), "refunds_minor": str(batch.refunds_minor),
        "net_minor": str(batch.net_minor), "item_count": batch.item_count,
        "failure_code": batch.failure_code,
    }


def _batch(row) -> SettlementBatch:
    return SettlementBatch(**{column.name: getattr(row, column.name)
                              for column in settlement_batches.columns})
