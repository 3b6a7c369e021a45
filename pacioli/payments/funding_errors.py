"""Top-ups', withdrawals' and linked instruments' expected rejections, in the ledger's four
families (so the API's one table maps them: InvalidCommand 422, NotFound 404, Rejected
422, Conflict 409). Card and bank account validation errors are the gateway's own
(`invalid_card_number`, `card_expired` ..., 422); an unreachable gateway is its
`gateway_unavailable` (502)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound, Rejected


class InvalidFundingRequest(InvalidCommand):
    """The top-up or withdrawal request is malformed."""

    code = "validation_error"


class InstrumentNotFound(NotFound):
    """No linked card or bank account with this id is visible to the caller."""

    code = "instrument_not_found"


class InstrumentRemoved(Rejected):
    """The card or bank account was removed; link it again to use it."""

    code = "instrument_removed"


class TopUpNotFound(NotFound):
    """No top-up with this id is visible to the caller."""

    code = "topup_not_found"


class WithdrawalNotFound(NotFound):
    """No withdrawal with this id is visible to the caller."""

    code = "withdrawal_not_found"


class IdempotencyKeyReusedForFunding(Conflict):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"
