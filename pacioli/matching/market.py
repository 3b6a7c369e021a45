"""A market: the pair it trades, its price and size grid, its fees, and its quote arithmetic.

Every quantity is an integer. A size is in base minor units (satoshis for BTC, wei for ETH);
a price is in quote minor units per ONE WHOLE base unit (BTC-USD at 50,000.00 USD/BTC is
`5000000`). So the quote amount of a fill is `price * size / 10**base_scale`, rounded UP
to a whole quote minor unit: the buyer pays it and the seller receives it, one number, so
quote is conserved with no remainder, and the rounding (less than one minor unit) is the
buyer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pacioli.ledger.domain.errors import invariant


@dataclass(frozen=True, slots=True)
class Market:
    """One trading pair and its grid: prices are multiples of `tick`, sizes of `size_increment`."""

    symbol: str
    base: str
    quote: str
    base_scale: int
    quote_scale: int
    tick: int
    size_increment: int
    min_size: int
    maker_fee_bps: int = 10
    taker_fee_bps: int = 20
    # 10**base_scale, computed once: the quote arithmetic runs once per fill.
    base_unit: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        invariant(self.symbol == f"{self.base}-{self.quote}", "a market's symbol is BASE-QUOTE")
        invariant(self.base_scale >= 0 and self.quote_scale >= 0, "scales are not negative")
        invariant(self.tick > 0 and self.size_increment > 0, "the grid steps are positive")
        invariant(
            self.min_size > 0 and self.min_size % self.size_increment == 0,
            "the minimum size is a positive multiple of the size increment",
        )
        invariant(
            0 <= self.maker_fee_bps <= 10000 and 0 <= self.taker_fee_bps <= 10000,
            "fees are between 0 and 10000 basis points",
        )
        object.__setattr__(self, "base_unit", 10**self.base_scale)

    def quote_amount(self, price: int, size: int) -> int:
        """The quote minor units that `size` base minor units cost at `price`, rounded up."""
        return -(-(price * size) // self.base_unit)

    def fee(self, quote_amount: int, bps: int) -> int:
        """The fee of `bps` basis points on a quote amount, rounded up (in the quote asset)."""
        return -(-(quote_amount * bps) // 10000)

    def max_taker_fee(self, quote_amount: int) -> int:
        """The most a taker can pay in fees on `quote_amount` (what a hold must cover)."""
        return self.fee(quote_amount, self.taker_fee_bps)

    def size_for_funds(self, price: int, funds: int) -> int:
        """The largest on-grid size whose quote amount at `price` is at most `funds`.

        `ceil(price * size / B) <= funds` holds exactly when `price * size <= funds * B`,
        so the bound is `funds * B // price`, then rounded down to the size increment.
        """
        size = funds * self.base_unit // price
        return size - size % self.size_increment

    def price_on_grid(self, price: object) -> bool:
        """A price is a positive integer multiple of the tick."""
        return type(price) is int and price > 0 and price % self.tick == 0

    def size_on_grid(self, size: object) -> bool:
        """A size is a positive integer multiple of the size increment."""
        return type(size) is int and size > 0 and size % self.size_increment == 0


# The shipped markets. BTC has 8 decimals, ETH 18, USD 2. Ticks are one quote minor unit
# per whole base unit; size increments are 0.00001 BTC, 0.00001 ETH and 0.0001 ETH, which
# keep the smallest trade's quote amount above one minor unit at realistic prices.
BTC_USD = Market(
    symbol="BTC-USD", base="BTC", quote="USD", base_scale=8, quote_scale=2,
    tick=1, size_increment=1000, min_size=10000,
)
ETH_USD = Market(
    symbol="ETH-USD", base="ETH", quote="USD", base_scale=18, quote_scale=2,
    tick=1, size_increment=10**13, min_size=10**15,
)
ETH_BTC = Market(
    symbol="ETH-BTC", base="ETH", quote="BTC", base_scale=18, quote_scale=8,
    tick=1, size_increment=10**14, min_size=10**15,
)
DEFAULT_MARKETS: tuple[Market, ...] = (BTC_USD, ETH_USD, ETH_BTC)
