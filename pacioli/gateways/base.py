"""The payment gateway Protocol, its value types and its errors.

A gateway is an external card and bank processor. Pacioli talks to it through the small
`PaymentGateway` Protocol below; each provider lives in a folder of its own
(`gateways/sandbox/`) and no vendor type leaves that folder. Amounts are `int` minor
units with an ISO currency code, as everywhere below the API.

Operations on a processor are often asynchronous: a call returns at once with a gateway
reference and status `pending`, and the outcome arrives later as a signed callback (see
`gateways/callbacks.py`) or through `fetch_status`. A payment flow therefore never keeps
a database transaction open across a gateway call: it records its intent, calls the
gateway with an idempotency key derived from its own ids, then records the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pacioli.ledger.domain.errors import DomainError


class GatewayStatus(StrEnum):
    """Where a gateway object (payment, refund or payout) stands."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PAID_OUT = "paid_out"
    DECLINED = "declined"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """Whether no further change can come (an authorization can still be captured)."""
        return self not in (GatewayStatus.PENDING, GatewayStatus.AUTHORIZED,
                            GatewayStatus.CAPTURED)


class DeclineCode(StrEnum):
    """Why a processor declined or failed an operation."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    PROCESSING_ERROR = "processing_error"
    TIMEOUT = "timeout"
    ACCOUNT_CLOSED = "account_closed"


class OperationKind(StrEnum):
    """The kind of gateway object a reference names."""

    PAYMENT = "payment"  # a card authorization (then capture) or a bank debit
    REFUND = "refund"
    PAYOUT = "payout"


class CardBrand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"


@dataclass(frozen=True)
class CardToken:
    """What Pacioli keeps of a card: the gateway's token, never the number or CVC."""

    token: str
    brand: CardBrand
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class BankAccountToken:
    """What Pacioli keeps of a bank account: the gateway's token and the last four digits."""

    token: str
    last4: str
    routing_number: str


@dataclass(frozen=True)
class GatewayResult:
    """The state of one gateway object, as a call or `fetch_status` reports it.

    `reference` names the object at the gateway (a payment, refund or payout);
    `parent_reference` is the payment a refund belongs to. `decline_code` is set when
    `status` is declined or failed.
    """

    reference: str
    kind: OperationKind
    status: GatewayStatus
    amount_minor: int
    currency: str
    decline_code: DeclineCode | None = None
    parent_reference: str | None = None


@runtime_checkable
class PaymentGateway(Protocol):
    """A card and bank processor.

    Every write takes an `idempotency_key`: the same key with the same request returns
    the first result (so a flow may retry after a timeout without charging twice); with a
    different request it raises `GatewayIdempotencyKeyReused`. Calls raise
    `GatewayUnavailable` when the processor cannot be reached; the outcome is then
    unknown, and the flow retries with the same key or asks `fetch_status`.
    """

    name: str

    def tokenize_card(
        self, number: str, exp_month: int, exp_year: int, cvc: str
    ) -> CardToken:
        """Validate a card and exchange it for a token (InvalidCardNumber, CardExpired ...)."""
        ...

    def tokenize_bank_account(self, account_number: str, routing_number: str) -> BankAccountToken:
        """Validate a bank account and exchange it for a token (InvalidBankAccount)."""
        ...

    def authorize(
        self, card_token: str, amount_minor: int, currency: str, *, idempotency_key: str
    ) -> GatewayResult:
        """Reserve funds on a card: authorized, declined, or pending (outcome by callback)."""
        ...

    def capture(
        self, reference: str, amount_minor: int | None = None, *, idempotency_key: str
    ) -> GatewayResult:
        """Take all (or, with `amount_minor`, part) of an authorized payment."""
        ...

    def void(self, reference: str, *, idempotency_key: str) -> GatewayResult:
        """Release a pending or authorized payment that was not captured."""
        ...

    def refund(
        self, reference: str, amount_minor: int | None = None, *, idempotency_key: str
    ) -> GatewayResult:
        """Return all or part of a captured payment; the result names the refund."""
        ...

    def debit(
        self, bank_account_token: str, amount_minor: int, currency: str, *,
        idempotency_key: str,
    ) -> GatewayResult:
        """Pull funds from a bank account: pending, then captured or failed by callback."""
        ...

    def payout(
        self, bank_account_token: str, amount_minor: int, currency: str, *,
        idempotency_key: str,
    ) -> GatewayResult:
        """Send funds to a bank account: pending, then paid_out or failed by callback."""
        ...

    def fetch_status(self, reference: str) -> GatewayResult:
        """The current state of a payment, refund or payout (GatewayReferenceNotFound)."""
        ...


# Errors. The API maps the four families to statuses in `pacioli/api/errors.py`:
# GatewayError 502, GatewayRejected 422, GatewayNotFound 404, GatewayConflict 409,
# and InvalidSignature 401.


class GatewayError(DomainError):
    """The payment gateway failed to handle the request."""

    code = "gateway_error"


class GatewayUnavailable(GatewayError):
    """The payment gateway could not be reached or did not answer; try again."""

    code = "gateway_unavailable"


class GatewayRejected(GatewayError):
    """The payment gateway refused the request as invalid."""

    code = "gateway_rejected"


class InvalidCardNumber(GatewayRejected):
    """The card number is not a valid card number."""

    code = "invalid_card_number"


class CardBrandUnsupported(GatewayRejected):
    """The card's brand is not one the gateway accepts (visa, mastercard, amex, discover)."""

    code = "card_brand_unsupported"


class InvalidCardExpiry(GatewayRejected):
    """The card's expiry month or year is not a valid date."""

    code = "invalid_card_expiry"


class CardExpired(GatewayRejected):
    """The card has expired."""

    code = "card_expired"


class InvalidCvc(GatewayRejected):
    """The card's security code is malformed."""

    code = "invalid_cvc"


class InvalidBankAccount(GatewayRejected):
    """The bank account or routing number is malformed."""

    code = "invalid_bank_account"


class InvalidGatewayAmount(GatewayRejected):
    """The amount must be a positive integer of minor units with a 3-letter currency code."""

    code = "invalid_gateway_amount"


class InvalidIdempotencyKey(GatewayRejected):
    """The idempotency key for a gateway request must be 1 to 255 characters."""

    code = "invalid_gateway_idempotency_key"


class UnknownInstrument(GatewayRejected):
    """The gateway has no card or bank account with this token."""

    code = "unknown_instrument"


class GatewayNotFound(GatewayError):
    """The gateway or the object named does not exist."""

    code = "gateway_not_found"


class GatewayReferenceNotFound(GatewayNotFound):
    """The gateway has no payment, refund or payout with this reference."""

    code = "gateway_reference_not_found"


class GatewayConflict(GatewayError):
    """The request conflicts with the state of the gateway object."""

    code = "gateway_conflict"


class InvalidGatewayState(GatewayConflict):
    """The gateway object is not in a state that allows this operation."""

    code = "invalid_gateway_state"


class GatewayIdempotencyKeyReused(GatewayConflict):
    """This idempotency key was already used for a different gateway request."""

    code = "gateway_idempotency_key_reused"


class InvalidSignature(GatewayError):
    """The callback's signature is missing, malformed, wrong or too old."""

    code = "invalid_signature"


class InvalidCallback(GatewayRejected):
    """The callback's body is not a well-formed gateway event."""

    code = "invalid_callback"
