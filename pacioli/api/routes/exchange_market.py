"""/v1/exchange/markets: the exchange's public market data — markets, L1/L2/L3, trades.

Public, like Coinbase's market-data endpoints: no credentials. Nothing here names an
owner (the book never publishes one), and every snapshot is read under the market's lock
(`Exchange.read`), so it is the book between two acknowledged commands, stamped with
the sequence number of the last message published before it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.exchange_market import (
    L1Public,
    L2Public,
    L3Public,
    MarketPublic,
    TradePublic,
)
from pacioli.matching import OrderBook
from pacioli.matching.service import Exchange
from pacioli.matching.service_errors import ExchangeNotRunning

L2_DEPTH_DEFAULT = 50
L2_DEPTH_MAX = 1000
TRADES_LIMIT_DEFAULT = 100
TRADES_LIMIT_MAX = 1000  # the book's trade tape keeps the last 1000

router = APIRouter(prefix=f"{API_PREFIX}/exchange", tags=["exchange market data"])


def get_exchange(request: Request) -> Exchange:
    """The app's running exchange.

    Raises: ExchangeNotRunning.
    """
    exchange = getattr(request.app.state, "exchange", None)
    if exchange is None:
        raise ExchangeNotRunning("the exchange is not running in this process")
    return exchange


ExchangeDep = Annotated[Exchange, Depends(get_exchange)]


@router.get("/markets", summary="The markets and their grids and fees")
def list_markets(exchange: ExchangeDep) -> list[MarketPublic]:
    return [MarketPublic.of(market) for market in exchange.markets()]


@router.get("/markets/{symbol}", summary="One market")
def get_market(symbol: str, exchange: ExchangeDep) -> MarketPublic:
    return MarketPublic.of(exchange.market(symbol))


@router.get("/markets/{symbol}/l1", summary="Best bid, best ask and last trade price")
def get_l1(symbol: str, exchange: ExchangeDep) -> L1Public:
    return L1Public.of(exchange.market(symbol), exchange.read(symbol, OrderBook.l1))


@router.get("/markets/{symbol}/l2", summary="Depth aggregated by price, N levels a side")
def get_l2(
    symbol: str, exchange: ExchangeDep,
    depth: Annotated[int, Query(ge=1, le=L2_DEPTH_MAX)] = L2_DEPTH_DEFAULT,
) -> L2Public:
    market = exchange.market(symbol)
    return L2Public.of(market, exchange.read(symbol, lambda book: book.l2(depth)))


@router.get("/markets/{symbol}/l3", summary="Every resting order, in priority order")
def get_l3(symbol: str, exchange: ExchangeDep) -> L3Public:
    """O(resting orders) under the market's lock: a big book's L3 briefly delays its commands."""
    return L3Public.of(exchange.market(symbol), exchange.read(symbol, OrderBook.l3))


@router.get("/markets/{symbol}/trades", summary="The most recent trades, newest first")
def list_trades(
    symbol: str, exchange: ExchangeDep,
    limit: Annotated[int, Query(ge=1, le=TRADES_LIMIT_MAX)] = TRADES_LIMIT_DEFAULT,
) -> list[TradePublic]:
    market = exchange.market(symbol)
    trades = exchange.read(symbol, lambda book: book.trades(limit))
    return [TradePublic.of(market, trade) for trade in trades]
