"""The ledger and gateway steps of an order's payment: hold, authorize, capture and split,
void. Each step is idempotent under a key derived from the checkout's or order's id, so a
retry (a crash, a sweep, a duplicate request) acts once.

Bookings (docs/commerce.md, "Money"):

    hold (checkout)     wallet (pending)           → order_escrow (pending)   one per order,
                        or processor_clearing                                  all or none,
                                                                               checkout:<id>:hold
    authorize (card)    gateway, order:<id>:authorize (no ledger entry)
    capture (shipped)   gateway capture, order:<id>:capture, then ONE linked ledger batch
                        order:<id>:capture: post the hold, and order_escrow → supplier and
                        reseller pending settlement, fee_revenue, tax_payable, rounding
    void (cancelled)    gateway void, order:<id>:void; ledger void of the hold, same key

The hold goes to `order_escrow`, not to the payees, because who is paid what is only
final when the order ships (a cancellation pays nobody); the capture's linked batch posts
the hold and empties the escrow into the split at once, so the escrow holds nothing
posted between batches. No database transaction is open across a gateway call.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from uuid import UUID

from sqlalchemy import Connection

from pacioli.commerce.order_split import Share, ShareKind
from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayResult, PaymentGateway
from pacioli.ledger import Ledger, Leg, PostPending, Transfer, TransferSpec, credit, debit
from pacioli.ledger.domain import errors as le
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.settlement_items import record_item

COMMERCE_CLIENT_ID = "commerce"
# An order's hold outlives its shipping: the capture posts it when the order ships.
ORDER_HOLD_SECONDS = 30 * 24 * 3600
# Settlement item kinds (docs/settlement.md): the supplier's and a reseller's part of a
# captured order, and of a refund (negative).
ORDER_SOURCE = "commerce_order"
ORDER_MARGIN_SOURCE = "commerce_order_margin"
REFUND_SOURCE = "commerce_refund"
REFUND_MARGIN_SOURCE = "commerce_refund_margin"

WALLET = "wallet"
CARD = "card"


class OrderPayments:
    """The money steps of orders; callers decide when, and record the outcome."""

    def __init__(self, ledger: Ledger, chart: Chart, gateway: PaymentGateway) -> None:
        self._ledger = ledger
        self._chart = chart
        self._gateway = gateway

    @property
    def gateway_name(self) -> str:
        return self._gateway.name

    # Holds.

    def hold(
        self, checkout_id: UUID, *, user_id: UUID, method: str, currency: str,
        orders: Sequence[tuple[UUID, int]],
    ) -> dict[UUID, UUID]:
        """One pending transfer per order (order id, total) with a total, all or none.

        Returns order id → hold id. Raises the ledger's rejections (InsufficientFunds from
        the wallet, AccountFrozen ...).
        """
        escrow = self._chart.platform(Purpose.ORDER_ESCROW, currency)
        source = (self._chart.wallet(user_id, currency) if method == WALLET else
                  self._chart.platform(Purpose.PROCESSOR_CLEARING, currency,
                                       scope=self._gateway.name))
        paid = [(order_id, total) for order_id, total in orders if total > 0]
        if not paid:
            return {}
        specs = [
            TransferSpec(
                legs=(debit(source, total), credit(escrow, total)),
                metadata={"flow": "commerce_order", "order_id": str(order_id),
                          "checkout_id": str(checkout_id), "user_id": str(user_id),
                          "method": method},
                pending=True, timeout_seconds=ORDER_HOLD_SECONDS,
            )
            for order_id, total in paid
        ]
        holds = self._ledger.transfer_batch(
            specs, idempotency_key=f"checkout:{checkout_id}:hold", client_id=COMMERCE_CLIENT_ID,
        ).value
        return {order_id: hold.id for (order_id, _), hold in zip(paid, holds, strict=True)}

    def void_hold(self, order_id: UUID, hold_id: UUID | None) -> UUID | None:
        """Release an order's hold; the void's id (None when there was nothing to void)."""
        if hold_id is None:
            return None
        try:
            return self._ledger.void_pending(
                hold_id, metadata={"flow": "commerce_order", "order_id": str(order_id)},
                idempotency_key=f"order:{order_id}:void", client_id=COMMERCE_CLIENT_ID,
            ).value.id
        except (le.PendingTransferAlreadyResolved, le.PendingTransferExpired):
            return None  # Expired (or voided by the expiry sweep): nothing is held.

    # The card.

    def authorize(self, order_id: UUID, token: str, amount_minor: int,
                  currency: str) -> GatewayResult:
        """Ask the gateway to authorize the order's total. Raises: GatewayUnavailable,
        GatewayRejected, GatewayConflict, GatewayNotFound."""
        return self._gateway.authorize(token, amount_minor, currency,
                                       idempotency_key=f"order:{order_id}:authorize")

    def fetch_status(self, reference: str) -> GatewayResult:
        return self._gateway.fetch_status(reference)

    def void_authorization(self, order_id: UUID, reference: str | None) -> None:
        """Release the card authorization (a no-op when it is already voided or failed).

        Raises: GatewayUnavailable (try again later).
        """
        if reference is None:
            return
        # Declined, failed or voided already (InvalidGatewayState): nothing is authorized.
        with contextlib.suppress(gw.InvalidGatewayState):
            self._gateway.void(reference, idempotency_key=f"order:{order_id}:void")

    def capture_card(self, order_id: UUID, reference: str) -> None:
        """Capture the authorization at the gateway.

        Raises: GatewayUnavailable (try again), InvalidGatewayState (it cannot be
        captured: voided or never authorized).
        """
        try:
            self._gateway.capture(reference, idempotency_key=f"order:{order_id}:capture")
        except gw.InvalidGatewayState:
            status = self._gateway.fetch_status(reference).status
            if status not in (gw.GatewayStatus.CAPTURED, gw.GatewayStatus.REFUNDED):
                raise

    # The capture's split.

    def capture(self, order_id: UUID, hold_id: UUID, *, currency: str, total_minor: int,
                shares: Sequence[Share]) -> Transfer:
        """Post the hold and split it out of the escrow, in one linked batch; the split."""
        escrow = self._chart.platform(Purpose.ORDER_ESCROW, currency)
        credits = self._credits(currency, shares)
        credits[escrow] = credits.get(escrow, 0) - total_minor
        metadata = {"flow": "commerce_order", "order_id": str(order_id)}
        posted = self._ledger.linked_batch(
            [PostPending(hold_id, metadata=metadata),
             TransferSpec(legs=tuple(legs_of(credits)), metadata={**metadata, "step": "split"})],
            idempotency_key=f"order:{order_id}:capture", client_id=COMMERCE_CLIENT_ID,
        ).value
        return posted[1]

    # Refunds.

    def refund_card(self, refund_id: UUID, reference: str, amount_minor: int) -> GatewayResult:
        """Refund part of a captured card payment. Raises: GatewayUnavailable,
        InvalidGatewayState."""
        return self._gateway.refund(reference, amount_minor,
                                    idempotency_key=f"order_refund:{refund_id}")

    def refund(
        self, refund_id: UUID, *, order_id: UUID, user_id: UUID, destination: str,
        currency: str, amount_minor: int, taken: Sequence[Share],
    ) -> Transfer:
        """Take `taken` back from the payees and give the amount to the wallet or back to
        the processor (a card refund). Raises the ledger's rejections."""
        credits = {account: -amount for account, amount in
                   self._credits(currency, taken).items()}
        target = (self._chart.wallet(user_id, currency) if destination == WALLET else
                  self._chart.platform(Purpose.PROCESSOR_CLEARING, currency,
                                       scope=self._gateway.name))
        credits[target] = credits.get(target, 0) + amount_minor
        return self._ledger.transfer(
            legs_of(credits),
            metadata={"flow": "commerce_refund", "refund_id": str(refund_id),
                      "order_id": str(order_id), "destination": destination},
            idempotency_key=f"order_refund:{refund_id}", client_id=COMMERCE_CLIENT_ID,
        ).value

    def _credits(self, currency: str, shares: Iterable[Share]) -> dict[UUID, int]:
        """Signed credit per ledger account (shares of one account summed)."""
        credits: dict[UUID, int] = {}
        for share in shares:
            account = self._account_of(share, currency)
            credits[account] = credits.get(account, 0) + share.amount_minor
        return credits

    def _account_of(self, share: Share, currency: str) -> UUID:
        if share.kind in (ShareKind.SUPPLIER, ShareKind.RESELLER):
            return self._chart.merchant_pending_settlement(share.owner_id, currency)
        purpose = {ShareKind.COMMISSION: Purpose.FEE_REVENUE, ShareKind.TAX: Purpose.TAX_PAYABLE,
                   ShareKind.ROUNDING: Purpose.ROUNDING}[share.kind]
        return self._chart.platform(purpose, currency)


def legs_of(credits: dict[UUID, int]) -> list[Leg]:
    """Legs from signed credits per account (a negative credit is a debit); zeros left out."""
    legs = []
    for account, amount in sorted(credits.items()):
        if amount > 0:
            legs.append(credit(account, amount))
        elif amount < 0:
            legs.append(debit(account, -amount))
    return legs


def record_settlement_items(
    connection: Connection, *, source_kind: str, margin_kind: str, source_id: UUID,
    currency: str, shares: Sequence[Share], completed_at, sign: int = 1,
) -> None:
    """Queue what the supplier and each reseller earn (or, sign -1, give back) for the
    settlement run, in the caller's transaction (docs/settlement.md, "Items").

    The supplier's item is gross (its share + the commission), fee (the commission), net
    (its share), so its net is exactly what the split moved into its pending-settlement
    account; a reseller's has no fee.
    """
    commission = sum(s.amount_minor for s in shares if s.kind is ShareKind.COMMISSION)
    for share in shares:
        if share.kind is ShareKind.SUPPLIER:
            record_item(connection, merchant_id=share.owner_id, currency=currency,
                        source_kind=source_kind, source_id=source_id,
                        gross_minor=sign * (share.amount_minor + commission),
                        fee_minor=sign * commission, completed_at=completed_at)
        elif share.kind is ShareKind.RESELLER:
            record_item(connection, merchant_id=share.owner_id, currency=currency,
                        source_kind=margin_kind,
                        source_id=uuid.uuid5(source_id, str(share.owner_id)),
                        gross_minor=sign * share.amount_minor, fee_minor=0,
                        completed_at=completed_at)
