"""Exchange orders and fills on the wire.

Sizes are decimal strings in the market's base asset ("0.05" BTC), prices, funds, fees
and executed values in its quote asset per whole base unit ("50000.00" USD per BTC),
converted with the market's scales here and nowhere else. More decimals than the asset
has is `invalid_amount`; a price off the tick or a size off the increment is the book's
`invalid_price` / `invalid_size`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr
from pacioli.ledger.domain.money import format_minor, parse_major
from pacioli.matching.market import Market
from pacioli.matching.views import FillView, OrderRequest, OrderView

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market", "stop", "stop_limit"]
TimeInForce = Literal["gtc", "gtt", "ioc", "fok"]
SelfTradePrevention = Literal["dc", "co", "cn", "cb"]


def _base(market: Market, amount: str | None) -> int | None:
    return None if amount is None else parse_major(amount, market.base_scale)


def _quote(market: Market, amount: str | None) -> int | None:
    return None if amount is None else parse_major(amount, market.quote_scale)


def _base_str(market: Market, amount: int | None) -> str | None:
    return None if amount is None else format_minor(amount, market.base_scale)


def _quote_str(market: Market, amount: int | None) -> str | None:
    return None if amount is None else format_minor(amount, market.quote_scale)


class OrderCreate(RequestModel):
    """An order. Which fields go with which type: docs/exchange.md, "Order types"."""

    market: StrictStr = Field(examples=["BTC-USD"])
    side: Side
    type: OrderType = "limit"
    size: AmountStr | None = Field(None, description="In the base asset.")
    price: AmountStr | None = Field(None, description="Quote per whole base unit.")
    funds: AmountStr | None = Field(
        None, description="A market buy by funds: what to spend in the quote asset, fees "
        "included.")
    stop_price: AmountStr | None = None
    time_in_force: TimeInForce = "gtc"
    expires_at: datetime | None = Field(None, description="For time_in_force gtt.")
    post_only: StrictBool = False
    self_trade_prevention: SelfTradePrevention = "dc"

    def to_request(self, market: Market) -> OrderRequest:
        """Raises: InvalidAmount (more decimals than the asset has, zero, negative)."""
        return OrderRequest(
            market=self.market, side=self.side, type=self.type,
            size=_base(market, self.size), price=_quote(market, self.price),
            funds=_quote(market, self.funds), stop_price=_quote(market, self.stop_price),
            time_in_force=self.time_in_force, expires_at=self.expires_at,
            post_only=self.post_only, stp=self.self_trade_prevention,
        )


class OrderAmend(RequestModel):
    """A resting limit order's new open size and/or price."""

    size: AmountStr | None = Field(None, description="The new OPEN size (left to fill).")
    price: AmountStr | None = None


class CancelAllCreate(RequestModel):
    market: StrictStr
    side: Side | None = None


class OrderPublic(BaseModel):
    """An order. `status` open (resting, or a stop waiting) or done, with `done_reason`
    (filled, cancelled, expired, self_trade, unfilled)."""

    id: UUID
    market: str
    order_number: int = Field(
        description="The book's number for this order in its market: the `order_id` of L3"
        " entries and of stream messages, so a client can find its own orders there."
    )
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    self_trade_prevention: SelfTradePrevention
    price: str | None
    size: str | None
    funds: str | None
    stop_price: str | None
    expires_at: datetime | None
    status: Literal["open", "done"]
    done_reason: str | None
    open_size: str
    filled_size: str
    executed_value: str = Field(description="The sum of its fills' quote amounts.")
    fee: str = Field(description="The fees it paid, in the quote asset.")
    fee_currency: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: OrderView, market: Market) -> OrderPublic:
        return cls(
            id=order.id, market=order.market, order_number=order.order_number,
            side=order.side, type=order.type,
            time_in_force=order.time_in_force, post_only=order.post_only,
            self_trade_prevention=order.stp, price=_quote_str(market, order.price),
            size=_base_str(market, order.size), funds=_quote_str(market, order.funds),
            stop_price=_quote_str(market, order.stop_price), expires_at=order.expires_at,
            status=order.status, done_reason=order.done_reason,
            open_size=_base_str(market, order.open_size),
            filled_size=_base_str(market, order.filled_size),
            executed_value=_quote_str(market, order.filled_quote),
            fee=_quote_str(market, order.fee), fee_currency=market.quote,
            created_at=order.created_at, updated_at=order.updated_at,
        )


class FillPublic(BaseModel):
    """One of the caller's trades, with their side, role and fee. `settled`: its money
    has moved in the ledger."""

    id: UUID
    market: str
    order_id: UUID
    side: Side
    liquidity: Literal["maker", "taker"]
    price: str
    size: str
    quote_amount: str
    fee: str
    fee_currency: str
    settled: bool
    created_at: datetime

    @classmethod
    def of(cls, fill: FillView, market: Market) -> FillPublic:
        return cls(
            id=fill.id, market=fill.market, order_id=fill.order_id, side=fill.side,
            liquidity=fill.liquidity, price=_quote_str(market, fill.price),
            size=_base_str(market, fill.size),
            quote_amount=_quote_str(market, fill.quote_amount),
            fee=_quote_str(market, fill.fee), fee_currency=market.quote, settled=fill.settled,
            created_at=fill.created_at,
        )


def amend_amounts(body: OrderAmend, market: Market) -> tuple[int | None, int | None]:
    """(size, price) in minor units. Raises: InvalidAmount."""
    return _base(market, body.size), _quote(market, body.price)
