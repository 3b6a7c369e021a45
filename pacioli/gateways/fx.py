"""Foreign-exchange rates behind a small Protocol, and a sandbox source of fixed mid rates.

A rate is exact: a `Fraction` of major units of the quote currency per major unit of the
base currency, never a float. A real provider (a bank's or a market data feed) implements
`FxRateSource`; the sandbox quotes a fixed table through USD, so tests and the demo get
the same numbers every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Protocol


class FxRateUnavailable(Exception):
    """The source has no rate for this pair."""

    code = "fx_rate_unavailable"


@dataclass(frozen=True, slots=True)
class MidRate:
    base: str
    quote: str
    rate: Fraction  # quote major units per one base major unit
    as_of: datetime | None = None

    def as_text(self, digits: int = 10) -> str:
        """The rate as a decimal string rounded to `digits` decimals, for showing only."""
        return str(round(Decimal(self.rate.numerator) / Decimal(self.rate.denominator), digits))


class FxRateSource(Protocol):
    def mid_rate(self, base: str, quote: str) -> MidRate:
        """Raises: FxRateUnavailable."""
        ...


# Units of each currency per one US dollar (fixed sandbox values, not market data).
SANDBOX_UNITS_PER_USD: dict[str, str] = {
    "USD": "1",
    "EUR": "0.92",
    "GBP": "0.79",
    "INR": "83.25",
    "CNY": "7.24",
    "JPY": "149.5",
    "BRL": "4.97",
    "SGD": "1.34",
}


class SandboxFxRates:
    """Fixed mid rates, crossed through USD (EUR→INR = INR per USD / EUR per USD)."""

    def __init__(self, units_per_usd: dict[str, str] | None = None) -> None:
        table = units_per_usd or SANDBOX_UNITS_PER_USD
        self._units_per_usd = {code: Fraction(Decimal(value)) for code, value in table.items()}

    def mid_rate(self, base: str, quote: str) -> MidRate:
        try:
            rate = self._units_per_usd[quote] / self._units_per_usd[base]
        except KeyError:
            raise FxRateUnavailable(f"no rate for {base}/{quote}") from None
        return MidRate(base, quote, rate)
