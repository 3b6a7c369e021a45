"""The payment flows' expected rejections, in the ledger's four families (so the API's one
table maps them: InvalidCommand 422, NotFound 404, Rejected 422, Conflict 409)."""

from __future__ import annotations

from pacioli.ledger.domain.errors import Conflict, DomainError, InvalidCommand, NotFound, Rejected


class InvalidPayment(InvalidCommand):
    """The payment request is malformed."""

    code = "validation_error"


class RecipientNotFound(NotFound):
    """No user matches the recipient given."""

    code = "recipient_not_found"


class PaymentToSelf(InvalidCommand):
    """A user cannot pay or request money from themselves."""

    code = "payment_to_self"


class MoneyRequestNotFound(NotFound):
    """No money request with this id is visible to the caller."""

    code = "money_request_not_found"


class PaymentNotFound(NotFound):
    """No payment with this id is visible to the caller."""

    code = "payment_not_found"


class MoneyRequestNotOpen(Conflict):
    """The money request was already paid, declined or cancelled."""

    code = "money_request_not_open"


class IdempotencyKeyReusedForPayment(Conflict):
    """The Idempotency-Key was already used for a different payment request."""

    code = "idempotency_key_reused"


class FxPairUnavailable(InvalidCommand):
    """No exchange rate is available for this pair of currencies."""

    code = "fx_pair_unavailable"


class FxQuoteNotFound(NotFound):
    """No quote with this id is visible to the caller."""

    code = "fx_quote_not_found"


class FxQuoteExpired(Rejected):
    """The quote's validity ended; ask for a new one."""

    code = "fx_quote_expired"


class FxQuoteAlreadyExecuted(Conflict):
    """The quote was executed already (a quote executes once)."""

    code = "fx_quote_already_executed"


class InvalidQrCode(InvalidCommand):
    """The QR payload cannot be trusted or is not a Pacioli merchant's code."""

    code = "qr_invalid"

    def __init__(self, error: Exception | str) -> None:
        # Keep the codec's own code (qr_malformed, qr_crc_mismatch ...) for the client.
        self.code = getattr(error, "code", type(self).code)
        super().__init__(str(error))

    @classmethod
    def unsupported(cls, detail: str) -> InvalidQrCode:
        rejection = cls(detail)
        rejection.code = "qr_unsupported"
        return rejection


class QrCodeNotFound(NotFound):
    """No QR code with this id or payload is visible to the caller."""

    code = "qr_code_not_found"


class QrCodeMismatch(InvalidCommand):
    """The payload's amount or currency differs from the merchant's code."""

    code = "qr_code_mismatch"


class QrCodeExpired(Rejected):
    """The dynamic QR code's validity ended; ask the merchant for a new one."""

    code = "qr_code_expired"


class QrCodeRevoked(Rejected):
    """The merchant revoked this QR code."""

    code = "qr_code_revoked"


class QrCodeAlreadyUsed(Conflict):
    """The dynamic QR code was paid already (it is paid once)."""

    code = "qr_code_already_used"


def rejection_with_code(code: str, detail: str) -> DomainError:
    """The DomainError subclass whose `code` is `code`, to replay a recorded rejection."""
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls(detail)
        pending.extend(cls.__subclasses__())
    return DomainError(detail)
