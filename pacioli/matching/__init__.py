"""The exchange's order book: pure, deterministic, no I/O (see docs/exchange.md, "Book").

Deviations from the contract in /work/ctx/exchange.md: none in names. Choices the contract
left open: `Done.reason` is one of filled, cancelled, expired, self_trade, unfilled (no
`replaced`: an amend that loses the order's place is not done; the market-data stream
shows it as a `done` message with reason `replaced` followed by the order's `open`);
`Done` has an extra `remaining_funds` (market buys by funds); `AmendOrder.size` is the new
OPEN size; order ids must increase (`duplicate_order_id` otherwise).
"""

from pacioli.matching.book import OrderBook
from pacioli.matching.market import BTC_USD, DEFAULT_MARKETS, ETH_BTC, ETH_USD, Market
from pacioli.matching.market_data import (
    L1,
    L2,
    L3,
    BookEntry,
    ChangeMessage,
    DoneMessage,
    MarketDataMessage,
    MatchMessage,
    OpenMessage,
    PriceLevel,
)
from pacioli.matching.orders import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    OrderType,
    OrderView,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
)
from pacioli.matching.results import Changed, Done, Fill, Opened, Reject, Result

__all__ = [
    "BTC_USD", "DEFAULT_MARKETS", "ETH_BTC", "ETH_USD", "L1", "L2", "L3", "AdvanceClock",
    "AmendOrder", "BookEntry", "CancelAll", "CancelOrder", "ChangeMessage", "Changed",
    "Command", "Done", "DoneMessage", "Fill", "Market", "MarketDataMessage", "MatchMessage",
    "OpenMessage", "Opened", "OrderBook", "OrderType", "OrderView", "PlaceOrder", "PriceLevel",
    "Reject", "Result", "SelfTrade", "Side", "TimeInForce",
]
