"""Offers' and history's expected rejections, in the ledger's four families (so the API's
one table maps them: InvalidCommand 422, NotFound 404, Rejected 422, Conflict 409)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound


class InvalidOffer(InvalidCommand):
    """The offer's rule is malformed."""

    code = "invalid_offer"


class OfferNotFound(NotFound):
    """No offer with this id is visible to the caller."""

    code = "offer_not_found"


class OfferEnded(Conflict):
    """The offer has ended already."""

    code = "offer_ended"


class InvalidPromotionFunding(InvalidCommand):
    """The amount to move into a promotions pool is malformed."""

    code = "validation_error"


class InvalidHistoryQuery(InvalidCommand):
    """A history filter, cursor or month is malformed."""

    code = "invalid_history_query"
