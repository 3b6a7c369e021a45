"""The sandbox's magic values: which card, account or amount triggers which outcome.

Like Stripe's test cards, any other valid card or account succeeds. The table of these
values for users is in docs/gateways.md; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pacioli.gateways.base import DeclineCode, GatewayStatus


class Behavior(StrEnum):
    """What an instrument does at the sandbox (stored instead of its number)."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    PROCESSING_ERROR = "processing_error"
    TIMEOUT = "timeout"
    ASYNC_SUCCEED = "async_succeed"
    ASYNC_DECLINE = "async_decline"
    ACCOUNT_CLOSED = "account_closed"
    DELAYED = "delayed"


CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_EXPIRED = "4000000000000069"
CARD_PROCESSING_ERROR = "4000000000000119"
CARD_TIMEOUT = "4000000000007775"
CARD_ASYNC_SUCCEEDS = "4000000000003220"  # Stripe's "3DS required" card
CARD_ASYNC_DECLINED = "4000008400001629"  # Stripe's "3DS required, then declined" card

BANK_SUCCEEDS = "000123456789"
BANK_ACCOUNT_CLOSED = "000111111113"
BANK_INSUFFICIENT_FUNDS = "000222222227"
BANK_DELAYED = "000333333335"
ROUTING_NUMBER = "110000000"

# Any write with exactly this amount raises GatewayUnavailable and records nothing, as if
# the processor could not be reached (5.03 in a 2-decimal currency: "503").
AMOUNT_UNAVAILABLE = 503

CARD_BEHAVIORS = {
    CARD_DECLINED: Behavior.DECLINE,
    CARD_INSUFFICIENT_FUNDS: Behavior.INSUFFICIENT_FUNDS,
    CARD_EXPIRED: Behavior.EXPIRED_CARD,
    CARD_PROCESSING_ERROR: Behavior.PROCESSING_ERROR,
    CARD_TIMEOUT: Behavior.TIMEOUT,
    CARD_ASYNC_SUCCEEDS: Behavior.ASYNC_SUCCEED,
    CARD_ASYNC_DECLINED: Behavior.ASYNC_DECLINE,
}
BANK_BEHAVIORS = {
    BANK_ACCOUNT_CLOSED: Behavior.ACCOUNT_CLOSED,
    BANK_INSUFFICIENT_FUNDS: Behavior.INSUFFICIENT_FUNDS,
    BANK_DELAYED: Behavior.DELAYED,
}


def card_behavior(number: str) -> Behavior:
    return CARD_BEHAVIORS.get(number, Behavior.SUCCEED)


def bank_behavior(account_number: str) -> Behavior:
    return BANK_BEHAVIORS.get(account_number, Behavior.SUCCEED)


@dataclass(frozen=True)
class Plan:
    """What an operation does: its status now, and the outcome to apply later, if any."""

    status: GatewayStatus
    decline_code: DeclineCode | None = None
    outcome_status: GatewayStatus | None = None
    outcome_decline_code: DeclineCode | None = None
    slow: bool = False  # the outcome takes delayed_seconds instead of async_delay_seconds
    times_out: bool = False  # no outcome ever; fails with `timeout` after the deadline


_S = GatewayStatus
_D = DeclineCode

_AUTHORIZE_PLANS = {
    Behavior.SUCCEED: Plan(_S.AUTHORIZED),
    Behavior.DECLINE: Plan(_S.DECLINED, _D.CARD_DECLINED),
    Behavior.INSUFFICIENT_FUNDS: Plan(_S.DECLINED, _D.INSUFFICIENT_FUNDS),
    Behavior.EXPIRED_CARD: Plan(_S.DECLINED, _D.EXPIRED_CARD),
    Behavior.PROCESSING_ERROR: Plan(_S.FAILED, _D.PROCESSING_ERROR),
    Behavior.TIMEOUT: Plan(_S.PENDING, times_out=True),
    Behavior.ASYNC_SUCCEED: Plan(_S.PENDING, outcome_status=_S.AUTHORIZED),
    Behavior.ASYNC_DECLINE: Plan(_S.PENDING, outcome_status=_S.DECLINED,
                                 outcome_decline_code=_D.CARD_DECLINED),
}


def authorize_plan(behavior: Behavior) -> Plan:
    return _AUTHORIZE_PLANS[behavior]


def bank_plan(behavior: Behavior, success: GatewayStatus, *, is_debit: bool) -> Plan:
    """A bank debit (success: captured) or payout (success: paid_out); always async."""
    if behavior is Behavior.ACCOUNT_CLOSED:
        return Plan(_S.PENDING, outcome_status=_S.FAILED,
                    outcome_decline_code=_D.ACCOUNT_CLOSED)
    if behavior is Behavior.INSUFFICIENT_FUNDS and is_debit:
        return Plan(_S.PENDING, outcome_status=_S.FAILED,
                    outcome_decline_code=_D.INSUFFICIENT_FUNDS)
    return Plan(_S.PENDING, outcome_status=success, slow=behavior is Behavior.DELAYED)
