"""Convert on the wire: "buy BTC with 100.00 USD", its quote, and what it did.

Amounts are decimal strings in major units of the asset they are in: `amount` and
`spent` in the `from` asset, `received` in the `to` asset, `fee` in `fee_asset` (the
market's quote asset).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr
from pacioli.ledger.domain.money import format_minor
from pacioli.matching.convert import ConvertQuote, ConvertRoute, convert_outcome
from pacioli.matching.market import Market


class ConvertCreate(RequestModel):
    from_: StrictStr = Field(alias="from", examples=["USD"], description="The asset given.")
    to: StrictStr = Field(examples=["BTC"], description="The asset wanted.")
    amount: AmountStr = Field(description="How much of the `from` asset to convert, fees "
                              "included.")


def _major(market: Market, asset: str, amount_minor: int) -> str:
    scale = market.quote_scale if asset == market.quote else market.base_scale
    return format_minor(amount_minor, scale)


def average_price(market: Market, size: int, quote_amount: int) -> str | None:
    """The quote paid per whole base unit, rounded down to the quote's minor unit."""
    if size == 0:
        return None
    return format_minor(quote_amount * market.base_unit // size, market.quote_scale)


class _ConvertFigures(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    market: str = Field(examples=["BTC-USD"])
    side: Literal["buy", "sell"] = Field(description="The market order's side on `market`.")
    from_: str = Field(alias="from")
    to: str
    amount: str = Field(description="What was asked to convert (from asset).")
    spent: str = Field(description="What leaves the from wallet (from asset), fees included.")
    received: str = Field(description="What arrives in the to wallet (to asset), net of fees.")
    fee: str
    fee_asset: str
    filled_size: str = Field(description="The base size traded.")
    average_price: str | None = Field(description="Quote per whole base unit; null if "
                                      "nothing traded.")


class ConvertQuotePublic(_ConvertFigures):
    """What a convert of `amount` would do now, against the book as it is."""

    complete: bool = Field(description="False when the book cannot take the whole amount: "
                           "only `spent` would be spent.")
    sequence: int = Field(description="The book's sequence number the quote was read at.")

    @classmethod
    def of(cls, quote: ConvertQuote, sequence: int) -> ConvertQuotePublic:
        route, market = quote.route, quote.route.market
        return cls(
            market=market.symbol, side=str(route.side), from_=route.from_asset,
            to=route.to_asset, amount=_major(market, route.from_asset, quote.amount),
            spent=_major(market, route.from_asset, quote.spent),
            received=_major(market, route.to_asset, quote.received),
            fee=_major(market, market.quote, quote.fee), fee_asset=market.quote,
            filled_size=_major(market, market.base, quote.filled_size),
            average_price=average_price(market, quote.filled_size, quote.quote_amount),
            complete=quote.complete, sequence=sequence,
        )


class ConvertPublic(_ConvertFigures):
    """A convert: the market order it placed (`id`, `order_id`) and what it did."""

    id: UUID = Field(description="The id of the convert's market order (see the orders API).")
    status: Literal["filled", "partially_filled", "unfilled"]
    done_reason: str | None = Field(description="The order's: filled, unfilled, self_trade.")
    settled: bool = Field(description="Whether the ledger has moved the money yet (the "
                          "wallets show it once true; settlement trails by milliseconds).")
    created_at: datetime

    @classmethod
    def of(cls, route: ConvertRoute, order, amount: int, settled: bool) -> ConvertPublic:
        """From the service's `OrderView` of the convert's order."""
        market = route.market
        spent, received = convert_outcome(
            route, amount, filled_size=order.filled_size, filled_quote=order.filled_quote,
            fee=order.fee,
        )
        if order.filled_size == 0:
            status = "unfilled"
        elif order.done_reason == "filled":
            status = "filled"
        else:
            status = "partially_filled"
        return cls(
            id=order.id, market=market.symbol, side=str(route.side), from_=route.from_asset,
            to=route.to_asset, amount=_major(market, route.from_asset, amount),
            spent=_major(market, route.from_asset, spent),
            received=_major(market, route.to_asset, received),
            fee=_major(market, market.quote, order.fee), fee_asset=market.quote,
            filled_size=_major(market, market.base, order.filled_size),
            average_price=average_price(market, order.filled_size, order.filled_quote),
            status=status, done_reason=order.done_reason, settled=settled,
            created_at=order.created_at,
        )

