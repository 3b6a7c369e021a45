"""/v1/exchange/convert: Coinbase's "buy with USD" — one asset into another at the market.

A convert is a market order placed through the exchange service like any other order
(`Exchange.place_order`, so it holds the user's funds, trades, and settles in the
ledger): a market BUY by funds when the given asset is the market's quote (USD -> BTC),
a market SELL by size when it is the base (BTC -> USD), with self-trade mode `cn` so it
never touches the user's own resting orders. The quote reads the book as it is now.
Both act as the user whose token they carry. See docs/exchange.md, "Convert".
"""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from pacioli.api.auth import CurrentUser, IdempotencyKeyHeader
from pacioli.api.deps import REPLAYED_HEADER
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.exchange_market import ExchangeDep
from pacioli.api.schemas.exchange_convert import ConvertCreate, ConvertPublic, ConvertQuotePublic
from pacioli.api.schemas.money import AmountStr
from pacioli.ledger.domain.money import parse_major
from pacioli.matching.book import OrderBook
from pacioli.matching.convert import ConvertQuote, convert_order, quote_convert, route
from pacioli.matching.orders import Side
from pacioli.matching.service import Exchange
from pacioli.matching.views import OrderView

router = APIRouter(prefix=f"{API_PREFIX}/exchange", tags=["exchange convert"])


def _route_and_amount(exchange, from_asset: str, to_asset: str, amount: str):
    """The convert's market and side, and its amount in minor units of `from_asset`.

    Raises: NoMarketBetween, InvalidAmount.
    """
    convert_route = route(exchange.markets(), from_asset, to_asset)
    market = convert_route.market
    scale = market.quote_scale if convert_route.side is Side.BUY else market.base_scale
    return convert_route, parse_major(amount, scale)


@router.get("/convert/quote", summary="What converting an amount would give now")
def quote(
    user: CurrentUser, exchange: ExchangeDep,
    from_asset: Annotated[str, Query(alias="from", examples=["USD"])],
    to_asset: Annotated[str, Query(alias="to", examples=["BTC"])],
    amount: Annotated[AmountStr, Query(description="Of the from asset, fees included.")],
) -> ConvertQuotePublic:
    """Read from the book at this instant; a convert placed later meets the book as it is then."""
    convert_route, amount_minor = _route_and_amount(exchange, from_asset, to_asset, amount)
    now_us = time.time_ns() // 1000

    def read_quote(book: OrderBook) -> tuple[ConvertQuote, int]:
        ts = max(now_us, book.clock)  # as the next command's (expiring what is due by then)
        return quote_convert(book, convert_route, amount_minor, owner=str(user.id), ts=ts), (
            book.sequence
        )

    quoted, sequence = exchange.read(convert_route.market.symbol, read_quote)
    return ConvertQuotePublic.of(quoted, sequence)


@router.post("/convert", status_code=201, summary="Convert one asset into another at the market")
def convert(
    body: ConvertCreate, user: CurrentUser, key: IdempotencyKeyHeader, exchange: ExchangeDep,
    response: Response,
) -> ConvertPublic:
    """Raises (as problems): no_market, invalid_amount, insufficient_funds, no_liquidity,
    size_too_small / invalid_size (a sell off the market's size grid), idempotency_key_reused.
    """
    convert_route, amount_minor = _route_and_amount(exchange, body.from_, body.to, body.amount)
    written = exchange.place_order(
        user.id, convert_order(convert_route, amount_minor), idempotency_key=key
    )
    if written.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    order = written.value
    return ConvertPublic.of(convert_route, order, amount_minor, _settled(exchange, user.id, order))


def _settled(exchange: Exchange, user_id: UUID, order: OrderView) -> bool:
    """Whether the ledger has settled the order's fills (batches settle fills in order, so
    its newest fill being settled means all of them are)."""
    newest = exchange.list_fills(user_id, order_id=order.id, limit=1)
    return order.status == "done" and all(fill.settled for fill in newest)

