"""The exchange service's own refusals (the book's are in errors.py, the ledger's pass through:
`insufficient_funds` when the wallet cannot cover an order's hold)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound


class UnknownMarket(InvalidCommand):
    """No market has this symbol."""

    code = "unknown_market"


class ExchangeOrderNotFound(NotFound):
    """No order with this id is yours."""

    code = "order_not_found"


class OrderNotOpen(Conflict):
    """The order is done (filled, cancelled or expired): it cannot be changed any more."""

    code = "order_not_open"


class OrderNotHoldable(InvalidCommand):
    """A stop buy by size has no price bound to hold funds against; place it by funds."""

    code = "invalid_order"


class IdempotencyKeyReusedForOrder(Conflict):
    """The Idempotency-Key was used for another exchange request."""

    code = "idempotency_key_reused"


class RequestInProgress(Conflict):
    """A request with this Idempotency-Key is still being processed; retry shortly."""

    code = "request_in_progress"


class ExchangeAlreadyRunning(Conflict):
    """Another process runs this market's book (one writer per market)."""

    code = "exchange_already_running"


class ExchangeNotRunning(Conflict):
    """The exchange has not been started (or was closed)."""

    code = "exchange_not_running"
