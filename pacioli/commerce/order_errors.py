"""Checkout's and orders' expected rejections, in the ledger's four families so the API's
one table maps them: InvalidCommand 422, NotFound 404, Rejected 422, Conflict 409.

Stock, cart and coupon rejections are the catalog's (`commerce/errors.py`: out_of_stock,
stale_cart_version, coupon_expired ...); checkout raises them unchanged. Payment failures
replay the gateway's or the ledger's code (`card_declined`, `insufficient_funds` ...)
through `OrderPaymentFailed`.
"""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound, Rejected


class InvalidCheckout(InvalidCommand):
    """The checkout request is malformed."""

    code = "validation_error"


class InvalidOrderRequest(InvalidCommand):
    """The request about an order is malformed (a tracking number, a note ...)."""

    code = "validation_error"


class RefundInProgress(Conflict):
    """Another refund of this order is still moving; try again when it is done."""

    code = "refund_in_progress"


class CartEmpty(Rejected):
    """The cart has nothing to buy (saved-for-later items are not bought)."""

    code = "cart_empty"


class PriceChanged(Conflict):
    """The cart's total is not the one the shopper was shown; show the new one."""

    code = "price_changed"


class CheckoutNotFound(NotFound):
    """No checkout with this id is the caller's."""

    code = "checkout_not_found"


class OrderNotFound(NotFound):
    """No order with this id is the caller's."""

    code = "order_not_found"


class RefundNotFound(NotFound):
    """No refund with this id belongs to the order."""

    code = "refund_not_found"


class InvalidOrderTransition(Conflict):
    """The order is not in a state that allows this step."""

    code = "invalid_order_transition"


class OrderNotReturnable(Conflict):
    """Only a delivered order can be returned, and only units not returned yet."""

    code = "order_not_returnable"


class InvalidReturn(InvalidCommand):
    """A return names lines of the order with quantities from 1 to what is left."""

    code = "invalid_return"


class RefundExceedsCaptured(Conflict):
    """Refunds of an order never add up to more than was captured."""

    code = "refund_exceeds_captured"


class RefundDestinationUnavailable(Rejected):
    """An order paid from the wallet is refunded to the wallet only."""

    code = "refund_destination_unavailable"


class IdempotencyKeyReusedForOrder(Conflict):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"


class OrderPaymentFailed(Rejected):
    """The payment was refused; `code` is the gateway's or the ledger's reason."""

    code = "payment_failed"

    def __init__(self, code: str | None, detail: str | None = None) -> None:
        if code:
            self.code = code
        super().__init__(detail or f"the payment was refused ({self.code})")
