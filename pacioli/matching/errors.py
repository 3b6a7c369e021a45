"""The book's refusals as domain errors, for the layers that raise them (service, API).

The book itself never raises for a business refusal: it returns a `Reject` with a stable
`code`. `rejection_error(reject)` turns one into the `DomainError` of the same code, in
the family the API maps to a status: malformed orders are `InvalidCommand` (422), an
unknown order `NotFound` (404), a reused order id `Conflict` (409), and orders the book's
state refuses `Rejected` (422).
"""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, DomainError, InvalidCommand, NotFound, Rejected
from pacioli.matching.results import Reject


class InvalidPrice(InvalidCommand):
    """The price is not a positive multiple of the market's tick."""

    code = "invalid_price"


class InvalidSize(InvalidCommand):
    """The size is not a positive multiple of the market's size increment."""

    code = "invalid_size"


class SizeTooSmall(InvalidCommand):
    """The size is below the market's minimum (or the funds buy less than one increment)."""

    code = "size_too_small"


class InvalidOrder(InvalidCommand):
    """The order's fields do not make an order of its type."""

    code = "invalid_order"


class OrderNotFound(NotFound):
    """No live order with this id is yours."""

    code = "order_not_found"


class DuplicateOrderId(Conflict):
    """The order id was used already (order ids must increase)."""

    code = "duplicate_order_id"


class PostOnlyWouldTake(Rejected):
    """A post-only order would take liquidity."""

    code = "post_only_would_take"


class FokNotFillable(Rejected):
    """A fill-or-kill order cannot be filled whole at once."""

    code = "fok_not_fillable"


class NoLiquidity(Rejected):
    """A market order finds no orders on the other side of the book."""

    code = "no_liquidity"


ERRORS_BY_CODE: dict[str, type[DomainError]] = {
    error.code: error
    for error in (
        InvalidPrice, InvalidSize, SizeTooSmall, InvalidOrder, OrderNotFound, DuplicateOrderId,
        PostOnlyWouldTake, FokNotFillable, NoLiquidity,
    )
}


def rejection_error(reject: Reject) -> DomainError:
    """The domain error of a book refusal, with the refusal's message as its detail."""
    return ERRORS_BY_CODE[reject.code](reject.message)
