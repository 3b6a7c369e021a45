"""Card and bank account checks: Luhn, expiry, brand, CVC, last four digits.

These are pure functions. A card number and CVC pass through them and are never logged,
stored or put in an error message: errors name what is wrong, not the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from pacioli.gateways.base import (
    CardBrand,
    CardBrandUnsupported,
    CardExpired,
    InvalidBankAccount,
    InvalidCardExpiry,
    InvalidCardNumber,
    InvalidCvc,
)

CARD_LENGTH_MIN = 12
CARD_LENGTH_MAX = 19
# Spaces and dashes are how people type card numbers; nothing else is accepted.
_SEPARATORS = re.compile(r"[ \-]")
_DIGITS = re.compile(r"[0-9]+")

# (brand, lengths allowed, prefix ranges as (low, high) over the first digits).
_BRAND_RULES: tuple[tuple[CardBrand, frozenset[int], tuple[tuple[str, str], ...]], ...] = (
    (CardBrand.AMEX, frozenset({15}), (("34", "34"), ("37", "37"))),
    (CardBrand.VISA, frozenset({13, 16, 19}), (("4", "4"),)),
    (CardBrand.MASTERCARD, frozenset({16}), (("51", "55"), ("2221", "2720"))),
    (CardBrand.DISCOVER, frozenset({16, 17, 18, 19}),
     (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925"))),
)


@dataclass(frozen=True)
class CardDetails:
    """A validated card. `number` is kept out of repr so it cannot reach a log by accident."""

    number: str = field(repr=False)
    brand: CardBrand
    last4: str
    exp_month: int
    exp_year: int


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn (mod 10) check."""
    if not digits or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that, appended to `partial`, makes it pass the Luhn check."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise ValueError("partial must be a string of digits")


def normalize_card_number(raw: str) -> str:
    """The card number's digits, or InvalidCardNumber (bad characters, length or Luhn)."""
    number = _SEPARATORS.sub("", raw or "")
    if not _DIGITS.fullmatch(number):
        raise InvalidCardNumber("The card number must contain only digits.")
    if not CARD_LENGTH_MIN <= len(number) <= CARD_LENGTH_MAX:
        raise InvalidCardNumber(
            f"The card number must have {CARD_LENGTH_MIN} to {CARD_LENGTH_MAX} digits."
        )
    if not luhn_valid(number):
        raise InvalidCardNumber("The card number fails its check digit (Luhn).")
    return number


def detect_brand(number: str) -> CardBrand | None:
    """The card's brand from its prefix and length, or None for a brand not accepted."""
    for brand, lengths, ranges in _BRAND_RULES:
        if len(number) not in lengths:
            continue
        for low, high in ranges:
            if low <= number[: len(low)] <= high:
                return brand
    return None


def check_expiry(exp_month: int, exp_year: int, now: datetime) -> tuple[int, int]:
    """The expiry as (month, four-digit year); a card is valid through its expiry month.

    A two-digit year means 20YY. Raises InvalidCardExpiry for a month outside 1-12 or a
    year that is not a year, and CardExpired once `now` is past the month's end.
    """
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp_month, exp_year)):
        raise InvalidCardExpiry("The expiry month and year must be integers.")
    if not 1 <= exp_month <= 12:
        raise InvalidCardExpiry("The expiry month must be 1 to 12.")
    year = exp_year + 2000 if 0 <= exp_year <= 99 else exp_year
    if not 2000 <= year <= 2199:
        raise InvalidCardExpiry("The expiry year must be a four-digit year.")
    if (now.year, now.month) > (year, exp_month):
        raise CardExpired(f"The card expired at the end of {year:04d}-{exp_month:02d}.")
    return exp_month, year


def check_cvc(cvc: str, brand: CardBrand) -> None:
    """Raise InvalidCvc unless the CVC has the brand's length (4 for amex, else 3)."""
    expected = 4 if brand is CardBrand.AMEX else 3
    if not isinstance(cvc, str) or not cvc.isdigit() or len(cvc) != expected:
        raise InvalidCvc(f"The security code must be {expected} digits.")


def validate_card(
    number: str, exp_month: int, exp_year: int, cvc: str, *, now: datetime
) -> CardDetails:
    """Check a card completely; the CVC is checked and then forgotten.

    Raises InvalidCardNumber, CardBrandUnsupported, InvalidCardExpiry, CardExpired or
    InvalidCvc.
    """
    digits = normalize_card_number(number)
    brand = detect_brand(digits)
    if brand is None:
        raise CardBrandUnsupported()
    month, year = check_expiry(exp_month, exp_year, now)
    check_cvc(cvc, brand)
    return CardDetails(number=digits, brand=brand, last4=digits[-4:], exp_month=month,
                       exp_year=year)


def aba_routing_valid(routing_number: str) -> bool:
    """Whether a 9-digit US routing number passes its ABA checksum (3-7-1 weights)."""
    if len(routing_number) != 9 or not routing_number.isdigit():
        return False
    d = [int(c) for c in routing_number]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return total % 10 == 0


def validate_bank_account(account_number: str, routing_number: str) -> tuple[str, str]:
    """The account number (4 to 17 digits) and routing number, or InvalidBankAccount."""
    account = _SEPARATORS.sub("", account_number or "")
    if not _DIGITS.fullmatch(account) or not 4 <= len(account) <= 17:
        raise InvalidBankAccount("The account number must be 4 to 17 digits.")
    if not aba_routing_valid(routing_number or ""):
        raise InvalidBankAccount("The routing number must be 9 digits with a valid checksum.")
    return account, routing_number
