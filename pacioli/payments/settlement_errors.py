"""Settlement's and QR refunds' expected rejections, in the ledger's four families (so the
API's one table maps them: InvalidCommand 422, NotFound 404, Rejected 422, Conflict 409)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound, Rejected


class SettlementBatchNotFound(NotFound):
    """No settlement with this id is visible to the caller."""

    code = "settlement_not_found"


class InvalidSettlementSchedule(InvalidCommand):
    """A settlement cycle is a whole number of days from 0 (same day) to 30."""

    code = "invalid_settlement_schedule"


class SettlementAccountNotPayable(Rejected):
    """The gateway cannot pay out to this settlement account (it pays US ACH accounts)."""

    code = "settlement_account_not_payable"


class InvalidRefund(InvalidCommand):
    """The refund's amount must be a positive number of minor units."""

    code = "invalid_refund"


class PaymentNotRefundable(Rejected):
    """Only a succeeded payment can be refunded."""

    code = "payment_not_refundable"


class RefundExceedsPayment(Rejected):
    """The refunds of a payment cannot add up to more than the payment."""

    code = "refund_exceeds_payment"


class RefundNotFound(NotFound):
    """No refund with this id is visible to the caller."""

    code = "refund_not_found"


class IdempotencyKeyReusedForRefund(Conflict):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"
