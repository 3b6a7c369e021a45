"""The exchange's public market data on the wire: markets, L1/L2/L3 snapshots, trades, stream.

The book counts in integers (sizes in base minor units, prices in quote minor units per
whole base unit); here they become decimal strings in major units, with the market's
scales: a BTC-USD price of `5000000` is "50000.00" USD per BTC, a size of `10000` is
"0.00010000" BTC. Fees are basis points and the same as a decimal rate ("0.0020").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from pacioli.ledger.domain.money import format_minor
from pacioli.matching import L1, L2, L3, Market, MarketDataMessage, MatchMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def price_str(market: Market, price: int) -> str:
    """A book price (quote minor units per whole base unit) in quote major units."""
    return format_minor(price, market.quote_scale)


def size_str(market: Market, size: int) -> str:
    """A book size (base minor units) in base major units."""
    return format_minor(size, market.base_scale)


def time_of(ts: int) -> datetime:
    """The book's clock (microseconds since the epoch) as a UTC time."""
    return _EPOCH + timedelta(microseconds=ts)


def fee_rate(bps: int) -> str:
    return format_minor(bps, 4)


class MarketPublic(BaseModel):
    symbol: str = Field(examples=["BTC-USD"])
    base: str = Field(examples=["BTC"])
    quote: str = Field(examples=["USD"])
    base_scale: int = Field(description="Decimals of the base asset.")
    quote_scale: int = Field(description="Decimals of the quote asset.")
    tick: str = Field(description="Prices are multiples of this (quote per whole base unit).")
    size_increment: str = Field(description="Sizes are multiples of this (base units).")
    min_size: str = Field(description="The smallest size an order may have (base units).")
    maker_fee_bps: int
    taker_fee_bps: int
    maker_fee_rate: str = Field(examples=["0.0010"], description="maker_fee_bps / 10000.")
    taker_fee_rate: str = Field(examples=["0.0020"], description="taker_fee_bps / 10000.")

    @classmethod
    def of(cls, market: Market) -> MarketPublic:
        return cls(
            symbol=market.symbol, base=market.base, quote=market.quote,
            base_scale=market.base_scale, quote_scale=market.quote_scale,
            tick=price_str(market, market.tick),
            size_increment=size_str(market, market.size_increment),
            min_size=size_str(market, market.min_size),
            maker_fee_bps=market.maker_fee_bps, taker_fee_bps=market.taker_fee_bps,
            maker_fee_rate=fee_rate(market.maker_fee_bps),
            taker_fee_rate=fee_rate(market.taker_fee_bps),
        )


class L1Public(BaseModel):
    """Best bid and ask (null when that side is empty) and the last trade price."""

    symbol: str
    sequence: int = Field(description="The book's sequence number this snapshot is at.")
    bid_price: str | None
    bid_size: str
    ask_price: str | None
    ask_size: str
    last_price: str | None

    @classmethod
    def of(cls, market: Market, l1: L1) -> L1Public:
        return cls(
            symbol=market.symbol, sequence=l1.sequence,
            bid_price=None if l1.bid_price is None else price_str(market, l1.bid_price),
            bid_size=size_str(market, l1.bid_size),
            ask_price=None if l1.ask_price is None else price_str(market, l1.ask_price),
            ask_size=size_str(market, l1.ask_size),
            last_price=None if l1.last_price is None else price_str(market, l1.last_price),
        )


class PriceLevelPublic(BaseModel):
    price: str
    size: str = Field(description="The open size of every order at this price.")
    orders: int


class L2Public(BaseModel):
    """Aggregated depth, best price first, to `depth` levels a side."""

    symbol: str
    sequence: int = Field(description="The book's sequence number this snapshot is at.")
    bids: list[PriceLevelPublic]
    asks: list[PriceLevelPublic]

    @classmethod
    def of(cls, market: Market, l2: L2) -> L2Public:
        def levels(side):
            return [
                PriceLevelPublic(price=price_str(market, level.price),
                                 size=size_str(market, level.size), orders=level.orders)
                for level in side
            ]

        return cls(symbol=market.symbol, sequence=l2.sequence, bids=levels(l2.bids),
                   asks=levels(l2.asks))


class BookEntryPublic(BaseModel):
    order_id: int = Field(description="The book's order number in this market.")
    price: str
    size: str = Field(description="The order's open size.")


class L3Public(BaseModel):
    """Every resting order, best price first, in time priority within a price."""

    symbol: str
    sequence: int = Field(description="The book's sequence number this snapshot is at.")
    bids: list[BookEntryPublic]
    asks: list[BookEntryPublic]

    @classmethod
    def of(cls, market: Market, l3: L3) -> L3Public:
        def entries(side):
            return [
                BookEntryPublic(order_id=entry.order_id, price=price_str(market, entry.price),
                                size=size_str(market, entry.size))
                for entry in side
            ]

        return cls(symbol=market.symbol, sequence=l3.sequence, bids=entries(l3.bids),
                   asks=entries(l3.asks))


class TradePublic(BaseModel):
    """One trade, at the resting (maker) order's price."""

    sequence: int = Field(description="The sequence number of the trade's `match` message.")
    time: datetime
    price: str
    size: str
    maker_side: Literal["buy", "sell"]
    taker_side: Literal["buy", "sell"]
    maker_order_id: int
    taker_order_id: int

    @classmethod
    def of(cls, market: Market, match: MatchMessage) -> TradePublic:
        maker_side = str(match.side)
        return cls(
            sequence=match.sequence, time=time_of(match.ts),
            price=price_str(market, match.price), size=size_str(market, match.size),
            maker_side=maker_side,  # type: ignore[arg-type]
            taker_side="sell" if maker_side == "buy" else "buy",
            maker_order_id=match.maker_order_id, taker_order_id=match.taker_order_id,
        )


# The stream's messages: the book's own fields, with quantities as decimal strings.
_QUANTITIES = ("price", "size", "old_size", "new_size", "remaining_size")


def stream_message(market: Market, message: MarketDataMessage) -> dict[str, object]:
    """A book message as the stream sends it (see docs/exchange.md, "Stream")."""
    body = message.as_dict()
    for name in _QUANTITIES:
        value = body.get(name)
        if value is not None:
            body[name] = (price_str if name == "price" else size_str)(market, value)
    body["symbol"] = market.symbol
    body["time"] = time_of(message.ts).isoformat().replace("+00:00", "Z")
    del body["ts"]
    return body
