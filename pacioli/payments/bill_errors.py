"""Bill payments' expected rejections, in the ledger's four families (so the API's one
table maps them: InvalidCommand 422, NotFound 404, Rejected 422, Conflict 409).

A biller that cannot be reached surfaces as the gateway's `BillerUnavailable` (502).
"""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound, Rejected


class InvalidBillPayment(InvalidCommand):
    """The bill payment request is malformed."""

    code = "validation_error"


class InvalidCustomerReference(InvalidCommand):
    """A customer reference is 4 to 32 letters, digits, '+' or '-'."""

    code = "invalid_customer_reference"


class CurrencyNotAccepted(InvalidCommand):
    """The biller takes payments in another currency."""

    code = "currency_not_accepted"


class BillerNotFound(NotFound):
    """No biller has this id."""

    code = "biller_not_found"


class BillNotFound(NotFound):
    """The biller has no bill for this customer reference."""

    code = "bill_not_found"


class BillPaymentNotFound(NotFound):
    """No bill payment with this id is visible to the caller."""

    code = "bill_payment_not_found"


class BillFetchNotSupported(Rejected):
    """The biller is direct-pay: it presents no bills to fetch."""

    code = "bill_fetch_not_supported"


class AmountNotAllowed(Rejected):
    """The biller's amount rule refuses this amount (exact bill amount, or minimum due)."""

    code = "amount_not_allowed"


class BillAlreadyPaid(Conflict):
    """The bill must be paid in full once, and a payment of it is pending or succeeded."""

    code = "bill_already_paid"


class IdempotencyKeyReusedForBillPayment(Conflict):
    """The Idempotency-Key was already used for a different bill payment request."""

    code = "idempotency_key_reused"
