"""Top-ups: a user's wallet funded from a linked card or bank account.

Steps (docs/payments.md, "Top-up and withdrawal", draws them):

1. **Record** a `topups` row, `created`, unique per (user, Idempotency-Key) with a hash of
   the request.
2. **Hold**: a pending ledger transfer, `processor_clearing` (scope: the gateway) → the
   user's wallet, key `topup:<id>:hold`. A pending credit is not spendable, so nothing
   can be spent before the processor confirms. Status `pending`.
3. **Submit** outside any database transaction: a card is authorized
   (`topup:<id>:authorize`), a bank account debited (`topup:<id>:debit`). A gateway that
   does not answer leaves the top-up pending without a reference; a refresh submits again
   with the same key, so the processor acts once.
4. **Settle** from the synchronous answer, a callback or a refresh (`fetch_status`):
   an authorized card is captured (`topup:<id>:capture`); a captured payment posts the
   hold (`topup:<id>:post`, `succeeded`); a decline, failure or timeout voids it
   (`topup:<id>:void`, `failed`).

Every ledger and gateway key derives from the top-up's id, and every row update is
conditional on the status it leaves, so retries, duplicate callbacks, callbacks out of
order and concurrent refreshes credit the wallet once. Statuses only move forward:
created → pending → authorized → succeeded | failed.

The update that makes a top-up `succeeded` or `failed` appends `topup.succeeded` or
`topup.failed` to the outbox in its own transaction; a finisher whose update found the
top-up settled already appends nothing, so each top-up announces its end once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayStatus, PaymentGateway
from pacioli.gateways.callbacks import GatewayEvent, HandlerRegistry, is_superseded
from pacioli.gateways.callbacks import handlers as default_registry
from pacioli.ledger import DomainError, Ledger, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments import funding_errors as fe
from pacioli.payments import records
from pacioli.payments.chart import PAYMENTS_CLIENT_ID, Chart, Purpose
from pacioli.payments.funding_tables import topups
from pacioli.payments.instruments import CARD, Instruments
from pacioli.payments.withdrawals import Withdrawals

log = logging.getLogger(__name__)

PAGE_LIMIT_MAX = 200
UNSETTLED = ("created", "pending", "authorized")
# The gateway refused the call itself (an unknown token, a bad state); nothing was charged.
FAILURE_GATEWAY_REFUSED = "gateway_refused"
# The event each final status announces.
FINAL_EVENTS = {"succeeded": "topup.succeeded", "failed": "topup.failed"}


@dataclass(frozen=True, slots=True)
class TopUp:
    id: UUID
    user_id: UUID
    instrument_id: UUID
    source_kind: str  # card, bank_account
    gateway: str
    currency: str
    amount_minor: int
    status: str  # created, pending, authorized, succeeded, failed
    failure_code: str | None
    gateway_reference: str | None
    hold_transfer_id: UUID | None
    settlement_transfer_id: UUID | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TopUpAnswer:
    """A top-up, and whether an earlier request with the same key made it."""

    value: TopUp
    replayed: bool


class TopUps:
    """Funds wallets from linked cards and bank accounts (steps in the module docstring)."""

    def __init__(
        self, engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._chart = chart
        self._gateway = gateway
        self._instruments = Instruments(engine, gateway)

    def create(
        self, *, user_id: UUID, instrument_id: UUID, amount_minor: int, currency: str,
        idempotency_key: str, source_kind: str | None = None,
    ) -> TopUpAnswer:
        """Hold the amount as a pending credit to the wallet and charge the instrument.

        Returns the top-up: `succeeded` when the processor confirmed at once, `failed` when
        it declined (with `failure_code`), otherwise `pending` or `authorized` until a
        callback or a refresh settles it. `source_kind` (card or bank_account), when
        given, must be the instrument's kind.

        Raises: InvalidFundingRequest, InstrumentNotFound, InstrumentRemoved, UnknownAsset,
        IdempotencyKeyReusedForFunding.
        """
        if type(amount_minor) is not int or amount_minor <= 0:
            raise fe.InvalidFundingRequest("the amount must be a positive number of minor units")
        request_hash = records.request_hash(instrument_id, amount_minor, currency)
        existing = self._find(user_id, idempotency_key)
        if existing is not None:
            topup, replayed = _replayed(existing, request_hash, idempotency_key), True
        else:
            instrument = self._instruments.get(user_id, instrument_id, source_kind)
            if instrument.status != "active":
                raise fe.InstrumentRemoved(f"{instrument.kind} {instrument_id} was removed")
            self._chart.wallet(user_id, currency)  # an unknown currency is refused now
            topup, replayed = self._claim(
                user_id, instrument.id, instrument.kind, currency, amount_minor,
                idempotency_key, request_hash,
            )
        return TopUpAnswer(self._advance(topup), replayed)

    def refresh(self, user_id: UUID, topup_id: UUID) -> TopUp:
        """Ask the gateway how the user's top-up stands and settle it if it is decided.

        This is how a top-up whose processor never calls back ends (the sandbox's timeout
        card): `fetch_status` reports the failure and the hold is voided.

        Raises: TopUpNotFound, GatewayUnavailable.
        """
        return self._refresh(self.get(user_id, topup_id))

    def refresh_unsettled(self, *, limit: int = 100) -> list[TopUp]:
        """Refresh every user's unsettled top-ups, oldest first (for a periodic worker)."""
        t = topups
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t).where(t.c.status.in_(UNSETTLED)).order_by(t.c.updated_at)
                .limit(min(limit, PAGE_LIMIT_MAX))
            ).all()
        refreshed = []
        for row in rows:
            try:
                refreshed.append(self._refresh(_topup(row)))
            except gw.GatewayUnavailable:
                continue  # The next sweep asks again.
        return refreshed

    def handle_event(self, event: GatewayEvent) -> None:
        """Apply a gateway callback about a top-up's payment (idempotent, never backwards).

        An event for a payment that is not a top-up, an event a later one superseded, and
        one about a settled top-up are ignored.
        """
        topup = self._find_by_reference(event.gateway, event.reference)
        if topup is None or topup.status not in UNSETTLED or is_superseded(self._engine, event):
            return
        if (event.amount_minor, event.currency) != (topup.amount_minor, topup.currency):
            log.warning("top-up event does not match the top-up",
                         extra={"topup_id": str(topup.id), "event_id": event.event_id})
            return
        self._apply(topup, event.status, event.decline_code)

    # Reading.

    def get(self, user_id: UUID, topup_id: UUID) -> TopUp:
        """One of the user's top-ups. Raises: TopUpNotFound."""
        row = records.owned_row(self._engine, topups, topup_id, user_id)
        if row is None:
            raise fe.TopUpNotFound(f"no top-up {topup_id}")
        return _topup(row)

    def list(
        self, user_id: UUID, *, status: str | None = None, limit: int = 50,
        starting_after: UUID | None = None,
    ) -> list[TopUp]:
        """The user's top-ups, newest first (ids are time-ordered)."""
        rows = records.owned_rows(self._engine, topups, user_id, status=status, limit=limit,
                                  starting_after=starting_after)
        return [_topup(row) for row in rows]

    # Steps.

    def _claim(
        self, user_id, instrument_id, source_kind, currency, amount_minor, idempotency_key,
        request_hash,
    ) -> tuple[TopUp, bool]:
        t = topups
        now = _now()
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(t).values(
                    id=uuid7(), user_id=user_id, instrument_id=instrument_id,
                    source_kind=source_kind, gateway=self._gateway.name, currency=currency,
                    amount_minor=amount_minor, status="created",
                    idempotency_key=idempotency_key, request_hash=request_hash,
                    created_at=now, updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                .returning(t)
            ).first()
        if inserted is not None:
            return _topup(inserted), False
        existing = self._find(user_id, idempotency_key)
        return _replayed(existing, request_hash, idempotency_key), True

    def _refresh(self, topup: TopUp) -> TopUp:
        topup = self._advance(topup)
        if topup.status in ("pending", "authorized") and topup.gateway_reference is not None:
            result = self._gateway.fetch_status(topup.gateway_reference)
            topup = self._apply(topup, result.status, result.decline_code)
        return topup

    def _advance(self, topup: TopUp) -> TopUp:
        """Take a recorded top-up as far as it goes without waiting for the processor."""
        if topup.status == "created":
            topup = self._hold(topup)
        if topup.status == "pending" and topup.gateway_reference is None:
            topup = self._submit(topup)
        if topup.status == "authorized":
            topup = self._capture(topup)
        return topup

    def _hold(self, topup: TopUp) -> TopUp:
        try:
            clearing = self._chart.platform(
                Purpose.PROCESSOR_CLEARING, topup.currency, scope=topup.gateway
            )
            wallet = self._chart.wallet(topup.user_id, topup.currency)
            hold = self._ledger.transfer(
                [debit(clearing, topup.amount_minor), credit(wallet, topup.amount_minor)],
                pending=True, metadata=_metadata(topup),
                idempotency_key=f"topup:{topup.id}:hold", client_id=PAYMENTS_CLIENT_ID,
            ).value
        except DomainError as rejection:
            return self._update(topup, ("created",), status="failed",
                                failure_code=rejection.code, completed_at=_now())
        return self._update(topup, ("created",), status="pending", hold_transfer_id=hold.id)

    def _submit(self, topup: TopUp) -> TopUp:
        """Authorize the card or debit the bank account (no database transaction is open)."""
        token = self._instruments.get(topup.user_id, topup.instrument_id).token
        try:
            if topup.source_kind == CARD:
                result = self._gateway.authorize(
                    token, topup.amount_minor, topup.currency,
                    idempotency_key=f"topup:{topup.id}:authorize",
                )
            else:
                result = self._gateway.debit(
                    token, topup.amount_minor, topup.currency,
                    idempotency_key=f"topup:{topup.id}:debit",
                )
        except gw.GatewayUnavailable:
            return topup  # The outcome is unknown: a refresh submits again with the same key.
        except (gw.GatewayRejected, gw.GatewayNotFound, gw.GatewayConflict) as refusal:
            return self._release(topup, refusal.code)
        topup = self._update(topup, ("pending",), only_unsubmitted=True,
                             gateway_reference=result.reference)
        return self._apply(topup, result.status, result.decline_code)

    def _apply(
        self, topup: TopUp, status: GatewayStatus, decline_code: gw.DeclineCode | None
    ) -> TopUp:
        """Move the top-up to where the processor says its payment is (never backwards)."""
        if topup.status not in ("pending", "authorized"):
            return topup
        if status is GatewayStatus.AUTHORIZED:
            topup = self._update(topup, ("pending",), status="authorized")
            return self._capture(topup)
        if status is GatewayStatus.CAPTURED:
            return self._post(topup)
        if status in (GatewayStatus.DECLINED, GatewayStatus.FAILED, GatewayStatus.VOIDED):
            return self._release(topup, str(decline_code or status))
        return topup  # Still pending at the processor (or refunded later: not a top-up's).

    def _capture(self, topup: TopUp) -> TopUp:
        if topup.status != "authorized":
            return topup
        try:
            result = self._gateway.capture(
                topup.gateway_reference, idempotency_key=f"topup:{topup.id}:capture"
            )
        except gw.GatewayUnavailable:
            return topup  # Still authorized: a refresh or the callback captures it.
        except gw.InvalidGatewayState:
            # Captured or voided already (another capture won): the processor decides.
            result = self._gateway.fetch_status(topup.gateway_reference)
        if result.status is GatewayStatus.AUTHORIZED:
            return topup
        return self._apply(topup, result.status, result.decline_code)

    def _post(self, topup: TopUp) -> TopUp:
        posted = self._ledger.post_pending(
            topup.hold_transfer_id, metadata=_metadata(topup),
            idempotency_key=f"topup:{topup.id}:post", client_id=PAYMENTS_CLIENT_ID,
        ).value
        return self._update(topup, ("pending", "authorized"), status="succeeded",
                            settlement_transfer_id=posted.id, completed_at=_now())

    def _release(self, topup: TopUp, failure_code: str) -> TopUp:
        """Void the hold: nothing is credited."""
        voided = self._ledger.void_pending(
            topup.hold_transfer_id, metadata=_metadata(topup),
            idempotency_key=f"topup:{topup.id}:void", client_id=PAYMENTS_CLIENT_ID,
        ).value
        return self._update(topup, ("pending", "authorized"), status="failed",
                            failure_code=failure_code, settlement_transfer_id=voided.id,
                            completed_at=_now())

    # Rows.

    def _find(self, user_id: UUID, idempotency_key: str):
        t = topups
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.idempotency_key == idempotency_key)
            ).first()

    def _find_by_reference(self, gateway: str, reference: str) -> TopUp | None:
        t = topups
        with self._engine.connect() as connection:
            row = connection.execute(
                select(t).where(t.c.gateway == gateway, t.c.gateway_reference == reference)
            ).first()
        return None if row is None else _topup(row)

    def _update(
        self, topup: TopUp, statuses: tuple[str, ...], *, only_unsubmitted: bool = False,
        **values: Any,
    ) -> TopUp:
        """Change the row if it is still in one of `statuses`; return it as it now is.

        When a concurrent step moved it first, nothing changes and that step's row is
        returned, so a status never moves backwards. An update that settles the top-up
        appends its event in the same transaction.
        """
        t = topups
        condition = (t.c.id == topup.id) & t.c.status.in_(statuses)
        if only_unsubmitted:
            condition &= t.c.gateway_reference.is_(None)
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(t).where(condition).values(updated_at=_now(), **values).returning(t)
            ).first()
            # `statuses` are unsettled ones, so a changed row that is final was settled now.
            if changed is not None and changed.status in FINAL_EVENTS:
                _announce(connection, changed)
            row = changed or connection.execute(select(t).where(t.c.id == topup.id)).one()
        return _topup(row)


# Callback handlers.


@dataclass(frozen=True, slots=True)
class FundingFlows:
    """The two flows a gateway's callbacks settle."""

    topups: TopUps
    withdrawals: Withdrawals


def funding_flows(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway
) -> FundingFlows:
    return FundingFlows(TopUps(engine, ledger, chart, gateway),
                        Withdrawals(engine, ledger, chart, gateway))


def register_funding_handlers(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway, *,
    registry: HandlerRegistry | None = None,
) -> Callable[[], None]:
    """Settle top-ups on `payment.*` and withdrawals on `payout.*` callbacks of `gateway`.

    The API registers these while the app runs (its lifespan) and removes them at
    shutdown, with the function this returns. Handlers skip other gateways' events.
    """
    registry = registry or default_registry
    flows = funding_flows(engine, ledger, chart, gateway)

    def on_payment(event: GatewayEvent) -> None:
        if event.gateway == gateway.name:
            flows.topups.handle_event(event)

    def on_payout(event: GatewayEvent) -> None:
        if event.gateway == gateway.name:
            flows.withdrawals.handle_event(event)

    removers = [registry.register("payment.", on_payment),
                registry.register("payout.", on_payout)]

    def unregister() -> None:
        for remove in removers:
            remove()

    return unregister


def _announce(connection, row) -> None:
    """`topup.succeeded` or `topup.failed` for a top-up just settled (in its transaction)."""
    append_event(connection, FINAL_EVENTS[row.status], "topup", str(row.id), {
        "topup_id": str(row.id), "user_id": str(row.user_id),
        "amount_minor": str(int(row.amount_minor)), "currency": row.currency,
        "failure_code": row.failure_code,
    })


def _replayed(row, request_hash: str, idempotency_key: str) -> TopUp:
    """The record an earlier request with this key made.

    Raises: IdempotencyKeyReusedForFunding.
    """
    return _topup(
        records.same_request(row, request_hash, idempotency_key, fe.IdempotencyKeyReusedForFunding)
    )


def _metadata(topup: TopUp) -> dict[str, str]:
    return {"flow": "topup", "topup_id": str(topup.id), "user_id": str(topup.user_id),
            "gateway": topup.gateway}


def _now() -> datetime:
    return datetime.now(UTC)


def _topup(row) -> TopUp:
    return TopUp(**{column.name: getattr(row, column.name) for column in topups.columns
                    if column.name not in ("idempotency_key", "request_hash")})
