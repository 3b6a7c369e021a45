"""Money as integer minor units, and the only conversions to and from decimal strings.

Amounts are Python ints in the asset's minor unit everywhere below the API. The API
speaks decimal strings in major units; `parse_major` and `format_minor` are the two
functions that cross that line, and they never go through float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacioli.ledger.domain.errors import AssetMismatch, InvalidAmount

# NUMERIC(39,0) holds any integer below 10**39, which is room for 128-bit amounts.
AMOUNT_MAX_MINOR = 2**128 - 1
BALANCE_MAX_MINOR = 10**39 - 1
SCALE_MAX = 18

# ASCII digits only, and the whole string: `\d` would admit other scripts' digits and `$`
# a trailing newline.
_DECIMAL_RE = re.compile(r"(?P<sign>-?)(?P<units>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
# 2**128 - 1 has 39 digits; anything longer is refused before int() parses it.
_DIGITS_MAX = 39


@dataclass(frozen=True, slots=True)
class Asset:
    """A currency or token with a fixed number of decimal places (its scale)."""

    code: str
    scale: int


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one asset in its minor unit."""

    amount_minor: int
    asset: Asset

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int:
            raise TypeError(f"amount_minor must be int, not {type(self.amount_minor).__name__}")

    def __add__(self, other: Money) -> Money:
        self._require_same_asset(other)
        return Money(self.amount_minor + other.amount_minor, self.asset)

    def __sub__(self, other: Money) -> Money:
        self._require_same_asset(other)
        return Money(self.amount_minor - other.amount_minor, self.asset)

    def _require_same_asset(self, other: Money) -> None:
        if self.asset != other.asset:
            raise AssetMismatch(f"cannot combine {self.asset.code} with {other.asset.code}")

    def __str__(self) -> str:
        return f"{format_minor(self.amount_minor, self.asset.scale)} {self.asset.code}"


def parse_major(text: str, scale: int, *, allow_zero: bool = False) -> int:
    """Parse a decimal string in major units into a positive int of minor units.

    Refuses anything that is not a plain decimal string, a negative amount, zero (unless
    `allow_zero`), more fractional digits than `scale`, and amounts above 2**128 - 1.

    Raises: InvalidAmount.
    """
    if not isinstance(text, str):
        raise InvalidAmount("amount must be a decimal string such as \"10.50\"")
    match = _DECIMAL_RE.fullmatch(text)
    if match is None:
        raise InvalidAmount(f"amount {_shown(text)} is not a decimal string such as \"10.50\"")
    if match["sign"]:
        raise InvalidAmount(f"amount {_shown(text)} must be positive")
    fraction = match["fraction"] or ""
    if len(fraction) > scale:
        raise InvalidAmount(
            f"amount {_shown(text)} has {len(fraction)} decimal places;"
            f" this asset allows {scale}"
        )
    digits = (match["units"] + fraction.ljust(scale, "0")).lstrip("0")
    if len(digits) > _DIGITS_MAX:
        raise InvalidAmount(f"amount {_shown(text)} is too large")
    amount_minor = int(digits or "0")
    if amount_minor == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if amount_minor > AMOUNT_MAX_MINOR:
        raise InvalidAmount(f"amount {_shown(text)} is too large")
    return amount_minor


def _shown(text: str) -> str:
    """The input as an error message quotes it: repr, and cut short if long."""
    return repr(text) if len(text) <= 48 else repr(text[:45]) + "…"


def format_minor(amount_minor: int, scale: int) -> str:
    """Format an int of minor units as a decimal string in major units, with `scale` places."""
    if type(amount_minor) is not int:
        raise TypeError(f"amount_minor must be int, not {type(amount_minor).__name__}")
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def allocate_pro_rata(amount_minor: int, weights: list[int]) -> tuple[list[int], int]:
    """Split `amount_minor` in proportion to `weights`, rounding each share down.

    Returns the shares and the remainder left over by rounding, so the caller books it
    explicitly instead of losing it. sum(shares) + remainder == amount_minor.
    """
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    total = sum(weights)
    shares = [amount_minor * w // total for w in weights]
    return shares, amount_minor - sum(shares)
