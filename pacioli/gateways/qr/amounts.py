"""Currencies (ISO 4217 numeric and alpha codes) and amounts as decimal strings.

QR payloads carry amounts as decimal strings in major units ("10.50"); the codec keeps
them as strings and converts to int minor units only on request, given a scale. Floats
never appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacioli.gateways.qr.errors import QrInvalidAmount, QrInvalidField, QrUnsupported

# EMVCo field 54 is at most 13 characters: digits with an optional "." and fraction.
AMOUNT_LENGTH_MAX = 13
_AMOUNT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency: alpha code, numeric code (as EMVCo field 53 carries it), exponent."""

    alpha: str
    numeric: str
    exponent: int


CURRENCIES: tuple[Currency, ...] = (
    Currency("USD", "840", 2),
    Currency("EUR", "978", 2),
    Currency("INR", "356", 2),
    Currency("CNY", "156", 2),
    Currency("JPY", "392", 0),
    Currency("BRL", "986", 2),
    Currency("GBP", "826", 2),
    Currency("SGD", "702", 2),
    Currency("HKD", "344", 2),
    Currency("THB", "764", 2),
    Currency("MYR", "458", 2),
    Currency("IDR", "360", 2),
    Currency("PHP", "608", 2),
    Currency("VND", "704", 0),
    Currency("AUD", "036", 2),
    Currency("CAD", "124", 2),
    Currency("CHF", "756", 2),
    Currency("MXN", "484", 2),
)
_BY_NUMERIC = {currency.numeric: currency for currency in CURRENCIES}
_BY_ALPHA = {currency.alpha: currency for currency in CURRENCIES}


def currency_by_numeric(numeric: str) -> Currency | None:
    """The known currency with this ISO 4217 numeric code, or None."""
    return _BY_NUMERIC.get(numeric)


def currency_numeric(code: str) -> str:
    """The ISO 4217 numeric code for `code`, given as an alpha ("BRL") or numeric ("986") code.

    Any three digits pass (a QR may carry a currency this table does not list); an alpha
    code must be in the table.
    Raises: QrInvalidField (neither form), QrUnsupported (an alpha code not listed).
    """
    if len(code) == 3 and code.isascii() and code.isdigit():
        return code
    if len(code) == 3 and code.isascii() and code.isalpha():
        currency = _BY_ALPHA.get(code.upper())
        if currency is None:
            raise QrUnsupported(f"currency {code!r} is not in the codec's ISO 4217 table;"
                                " give its numeric code")
        return currency.numeric
    raise QrInvalidField(f"currency {code!r} is neither an ISO 4217 alpha nor numeric code")


def check_amount(amount: str, *, where: str = "amount") -> str:
    """Return `amount` if it is a positive decimal string of at most 13 characters.

    Raises: QrInvalidAmount.
    """
    if (not isinstance(amount, str) or len(amount) > AMOUNT_LENGTH_MAX or not amount.isascii()
            or _AMOUNT_RE.fullmatch(amount) is None):
        raise QrInvalidAmount(f"{where} {amount!r} is not a decimal string such as \"10.50\""
                              f" of at most {AMOUNT_LENGTH_MAX} characters")
    if not amount.replace(".", "").strip("0"):
        raise QrInvalidAmount(f"{where} {amount!r} must be greater than zero")
    return amount


def amount_to_minor(amount: str, scale: int) -> int:
    """Convert a decimal amount string to int minor units at `scale` ("10.5", 2 -> 1050).

    Raises: QrInvalidAmount (not a positive decimal string, or more decimals than `scale`).
    """
    units, _, fraction = check_amount(amount).partition(".")
    if len(fraction) > scale:
        raise QrInvalidAmount(f"amount {amount!r} has {len(fraction)} decimal places;"
                              f" the currency allows {scale}")
    return int(units + fraction.ljust(scale, "0"))
