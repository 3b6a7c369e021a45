"""The biller Protocol, its value types and its errors.

A biller is a company a user pays a bill to (a power utility, a mobile operator, a card
issuer, a water board). Each one publishes rules: whether a bill is fetched first
(`fetch_then_pay`) or paid straight to a customer reference (`direct_pay`), and which
amounts it takes (`exact`: the bill's amount; `minimum`: at least the minimum due; `any`).
Amounts are `int` minor units with an ISO currency code, as everywhere below the API.

Paying a biller is asynchronous: `submit_payment` returns at once with the biller's
reference and status `pending`; the outcome comes later through `fetch_status`. The
`payment_reference` names the payment on Pacioli's side and makes a submission
idempotent: submitting it again returns the first submission, so a flow that lost the
answer (a timeout) may submit again without paying twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pacioli.gateways.base import (
    GatewayConflict,
    GatewayNotFound,
    GatewayReferenceNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pacioli.ledger.domain.errors import invariant


class BillerCategory(StrEnum):
    ELECTRICITY = "electricity"
    MOBILE = "mobile"
    CREDIT_CARD = "credit_card"
    WATER = "water"


class Presentment(StrEnum):
    """Whether a bill is fetched before it is paid."""

    FETCH_THEN_PAY = "fetch_then_pay"  # the biller presents a bill; the payment settles it
    DIRECT_PAY = "direct_pay"  # no bill: pay an amount to a customer reference (prepaid)


class AmountRule(StrEnum):
    """Which amounts a biller takes for a bill."""

    EXACT = "exact"  # exactly the bill's amount
    MINIMUM = "minimum"  # at least the bill's minimum due (a credit card statement)
    ANY = "any"  # any positive amount


class BillerStatus(StrEnum):
    """Where a submitted payment stands at the biller."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self is not BillerStatus.PENDING


@dataclass(frozen=True, slots=True)
class BillerInfo:
    """A biller in the registry, with its rules."""

    id: str
    name: str
    category: BillerCategory
    presentment: Presentment
    amount_rule: AmountRule
    currency: str
    customer_reference_label: str  # what the biller calls it: "Account number", "Phone"


@dataclass(frozen=True, slots=True)
class Bill:
    """A bill a biller presents for a customer reference.

    `minimum_due_minor` is what a `minimum` biller takes at least; for an `exact` biller it
    equals `amount_minor`, and an `any` biller leaves it None.
    """

    bill_reference: str
    customer_reference: str
    customer_name: str
    amount_minor: int
    minimum_due_minor: int | None
    currency: str
    due_date: date


@dataclass(frozen=True, slots=True)
class BillerPayment:
    """A payment submitted to a biller, as `submit_payment` or `fetch_status` reports it.

    `failure_code` is set when `status` is failed (e.g. `biller_rejected`).
    """

    biller_reference: str
    payment_reference: str
    status: BillerStatus
    amount_minor: int
    currency: str
    failure_code: str | None = None


@runtime_checkable
class Biller(Protocol):
    """One biller: fetch a bill, submit a payment, ask how a payment stands."""

    info: BillerInfo

    def fetch_bill(self, customer_reference: str) -> Bill:
        """The bill due for a customer reference.

        Raises: UnknownCustomerReference, BillFetchNotSupported (a direct-pay biller),
        BillerUnavailable.
        """
        ...

    def submit_payment(
        self, *, customer_reference: str, bill_reference: str | None, amount_minor: int,
        currency: str, payment_reference: str,
    ) -> BillerPayment:
        """Pay a bill (or, for a direct-pay biller, a customer reference); status pending.

        Raises: UnknownCustomerReference, BillerRejectedRequest, PaymentReferenceReused,
        BillerUnavailable (the outcome is unknown: submit again with the same reference).
        """
        ...

    def fetch_status(self, biller_reference: str) -> BillerPayment:
        """The current state of a submitted payment.

        Raises: BillerReferenceNotFound, BillerUnavailable.
        """
        ...


class BillerRegistry(Protocol):
    """The billers Pacioli can pay."""

    def list_billers(self, category: BillerCategory | None = None) -> list[BillerInfo]:
        """Every biller (of one category), ordered by id."""
        ...

    def get(self, biller_id: str) -> Biller:
        """Raises: UnknownBiller."""
        ...


def amount_allowed(rule: AmountRule, bill: Bill | None, amount_minor: int) -> bool:
    """Whether a biller with `rule` takes `amount_minor` for `bill` (None: direct pay)."""
    if amount_minor <= 0:
        return False
    if rule is AmountRule.ANY:
        return True
    invariant(bill is not None, f"an {rule} biller needs a bill to compare the amount with")
    if rule is AmountRule.EXACT:
        return amount_minor == bill.amount_minor
    return amount_minor >= (bill.minimum_due_minor or 0)


# Errors, in the gateway families (the API maps them: GatewayError 502, GatewayRejected
# 422, GatewayNotFound 404, GatewayConflict 409).


class BillerUnavailable(GatewayUnavailable):
    """The biller could not be reached or did not answer; the outcome is unknown."""

    code = "biller_unavailable"


class UnknownBiller(GatewayNotFound):
    """No biller has this id."""

    code = "biller_not_found"


class UnknownCustomerReference(GatewayNotFound):
    """The biller has no bill and no customer for this reference."""

    code = "bill_not_found"


class BillerReferenceNotFound(GatewayReferenceNotFound):
    """The biller has no payment with this reference."""

    code = "biller_reference_not_found"


class BillFetchNotSupported(GatewayRejected):
    """The biller is direct-pay: it presents no bills to fetch."""

    code = "bill_fetch_not_supported"


class BillerRejectedRequest(GatewayRejected):
    """The biller refused the payment as malformed (amount, currency or reference)."""

    code = "biller_rejected_request"


class PaymentReferenceReused(GatewayConflict):
    """This payment reference was already submitted with a different payment."""

    code = "payment_reference_reused"
