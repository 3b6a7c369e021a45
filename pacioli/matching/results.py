"""What a command did: a `Result` with the fills, the orders done, opened and changed.

The book records what happens as it happens, as one flat tuple per event in
`Result.events` (the kinds below); a `Result` builds its `Fill`s, `Done`s, market-data
messages and the rest from them the first time one of its lists is read. Most commands
of a busy book are never read field by field (a bench, a replay), and building two or
three objects per event was a good part of a command's cost; the events hold the same
numbers, so what a reader gets is the same either way.

The public records are plain slots classes, not dataclasses: a hand-written `__init__`
is the cheapest way to build them.
"""

from __future__ import annotations

from pacioli.matching.market_data import (
    ChangeMessage,
    DoneMessage,
    MarketDataMessage,
    MatchMessage,
    OpenMessage,
)
from pacioli.matching.orders import Side

# Reject codes (stable; the API shows them).
INVALID_PRICE = "invalid_price"  # a price or stop price off the tick grid, or not positive
INVALID_SIZE = "invalid_size"  # a size off the size increment grid, or not positive
SIZE_TOO_SMALL = "size_too_small"  # below the market's minimum (or funds that buy nothing)
INVALID_ORDER = "invalid_order"  # a combination of fields that makes no order
POST_ONLY_WOULD_TAKE = "post_only_would_take"
FOK_NOT_FILLABLE = "fok_not_fillable"
ORDER_NOT_FOUND = "order_not_found"  # also for another owner's order: it is not theirs to see
DUPLICATE_ORDER_ID = "duplicate_order_id"  # order ids must increase (see docs/exchange.md)
NO_LIQUIDITY = "no_liquidity"  # a market order with nothing on the other side

# Why an order is done (it leaves the book for good).
FILLED = "filled"
CANCELLED = "cancelled"  # by CancelOrder or CancelAll
EXPIRED = "expired"  # a GTT order whose expires_at came
SELF_TRADE = "self_trade"  # cancelled by self-trade prevention
# The part of an IOC or market order (or a triggered FOK stop) that found nothing to fill.
UNFILLED = "unfilled"

# Why an open order's size changed while it kept its place (`Changed.reason`).
AMENDED = "amended"


class Reject:
    """A business refusal: the command changed nothing."""

    __slots__ = ("code", "message")

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Reject({self.code!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reject):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    __hash__ = None  # type: ignore[assignment]


class Fill:
    """One trade: `size` base minor units at the resting (maker) order's `price`.

    `seq` is the sequence number of the fill's `match` market-data message, so it orders
    the fills of a book and names one. `quote_amount` is `market.quote_amount(price, size)`.
    """

    __slots__ = (
        "seq", "ts", "price", "size", "quote_amount", "taker_order_id", "taker_owner",
        "taker_side", "maker_order_id", "maker_owner",
    )

    def __init__(
        self, seq: int, ts: int, price: int, size: int, quote_amount: int, taker_order_id: int,
        taker_owner: str, taker_side: Side, maker_order_id: int, maker_owner: str,
    ) -> None:
        self.seq = seq
        self.ts = ts
        self.price = price
        self.size = size
        self.quote_amount = quote_amount
        self.taker_order_id = taker_order_id
        self.taker_owner = taker_owner
        self.taker_side = taker_side
        self.maker_order_id = maker_order_id
        self.maker_owner = maker_owner

    def __repr__(self) -> str:
        return (
            f"Fill(seq={self.seq}, {self.size}@{self.price}, taker={self.taker_order_id} "
            f"{self.taker_side}, maker={self.maker_order_id})"
        )


class Done:
    """An order left the book (or never rested) for good; `remaining_size` was not filled.

    For a market buy by funds `remaining_size` is 0 and `remaining_funds` is what it did
    not spend; otherwise `remaining_funds` is None.
    """

    __slots__ = ("order_id", "owner", "reason", "remaining_size", "remaining_funds")

    def __init__(
        self, order_id: int, owner: str, reason: str, remaining_size: int,
        remaining_funds: int | None = None,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.reason = reason
        self.remaining_size = remaining_size
        self.remaining_funds = remaining_funds

    def __repr__(self) -> str:
        funds = "" if self.remaining_funds is None else f", funds={self.remaining_funds}"
        return f"Done({self.order_id}, {self.reason}, remaining={self.remaining_size}{funds})"


class Opened:
    """An order now rests on the book with `size` open at `price`."""

    __slots__ = ("order_id", "owner", "side", "price", "size")

    def __init__(self, order_id: int, owner: str, side: Side, price: int, size: int) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.size = size

    def __repr__(self) -> str:
        return f"Opened({self.order_id}, {self.side}, {self.size}@{self.price})"


class Changed:
    """A live order's open size (and, for an amend, maybe its price) changed.

    `reason` is `amended` (AmendOrder) or `self_trade` (decremented by the `dc` mode).
    A decrease is cancelled quantity; an amend's increase adds to what was placed.
    """

    __slots__ = ("order_id", "owner", "side", "price", "old_size", "new_size", "reason")

    def __init__(
        self, order_id: int, owner: str, side: Side, price: int | None, old_size: int,
        new_size: int, reason: str,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.old_size = old_size
        self.new_size = new_size
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"Changed({self.order_id}, {self.reason}, {self.old_size}->{self.new_size}"
            f"@{self.price})"
        )


# The events a command records, in the order they happen (first item: the kind).
# An order rests: (OPENED, sequence, ts, order_id, owner, side, price, size).
OPENED = 0
# A trade: (MATCHED, sequence, ts, price, size, base_unit, taker_order_id, taker_owner,
#  taker_side, maker_order_id, maker_owner, maker_left); base_unit (the market's) gives the
#  quote amount. maker_left is the maker's open size after the trade: when it is 0 the maker
#  is filled, and the event also stands for the maker's LEFT (reason filled, sequence + 1),
#  so the taker loop records one event per fill instead of two.
MATCHED = 1
# A resting order leaves the book: (LEFT, sequence, ts, order_id, owner, side, price,
#  remaining_size, reason, public); not public: an amend that lost its place (no `Done`).
LEFT = 2
# An order that never rested is done: (ENDED, order_id, owner, reason, remaining_size,
#  remaining_funds).
ENDED = 3
# An open size changed in place: (RESIZED, sequence, ts, order_id, owner, side, price,
#  old_size, new_size, reason); sequence None: nothing public changed (a taker, an amend
#  that lost its place).
RESIZED = 4
# A stop triggered: (TRIGGERED, order_id).
TRIGGERED = 5

BUY, SELL = Side.BUY, Side.SELL


def match_message(event: tuple) -> MatchMessage:
    """The `match` message of a MATCHED event (the maker is on the other side)."""
    _, seq, ts, price, size, _, taker_id, _, taker_side, maker_id, _, _ = event
    return MatchMessage(seq, ts, maker_id, taker_id, SELL if taker_side is BUY else BUY,
                        price, size)


class Result:
    """What one command did. A refused command has `accepted=False`, a `reject`, and
    nothing else: it changed nothing (not even the clock).

    - `fills`: the trades, in order.
    - `done`: orders that finished (filled, cancelled, expired, self_trade, unfilled).
    - `opened`: orders that now rest on the book (placed, re-priced by an amend, or a
      triggered stop limit).
    - `changed`: open sizes changed in place (amends, self-trade decrements).
    - `triggered`: ids of stop orders whose stop price the last trade reached.
    - `md`: the market-data messages, numbered, that this command produced.

    All six are built together from `events` on the first read, then kept (`built`,
    unset until then).

    Built by `accepted(events)` or `refused(reject)`: the class has no `__init__`, because
    every command makes a `Result` and a class call without one costs a third less (the
    book's hot paths build it inline, setting `events` only). `reject` is a class
    attribute (None) here; a refused command's result is a `Refused`, which has it as a
    slot.
    """

    __slots__ = ("events", "built")

    reject: Reject | None = None
    events: list[tuple] | tuple
    built: tuple[list, ...]

    @property
    def accepted(self) -> bool:
        return self.reject is None

    @property
    def fills(self) -> list[Fill]:
        return self.lists()[0]

    @property
    def done(self) -> list[Done]:
        return self.lists()[1]

    @property
    def opened(self) -> list[Opened]:
        return self.lists()[2]

    @property
    def changed(self) -> list[Changed]:
        return self.lists()[3]

    @property
    def triggered(self) -> list[int]:
        return self.lists()[4]

    @property
    def md(self) -> list[MarketDataMessage]:
        return self.lists()[5]

    def lists(self) -> tuple[list, ...]:
        """The six lists: built on the first call, then kept."""
        try:
            return self.built
        except AttributeError:  # not built yet
            return self.build()

    def build(self) -> tuple[list, ...]:
        """The six lists, from the events (see the kinds above)."""
        fills: list[Fill] = []
        done: list[Done] = []
        opened: list[Opened] = []
        changed: list[Changed] = []
        triggered: list[int] = []
        md: list[MarketDataMessage] = []
        for event in self.events:
            kind = event[0]
            if kind == MATCHED:
                (_, seq, ts, price, size, base_unit, taker_id, taker_owner, taker_side,
                 maker_id, maker_owner, maker_left) = event
                fills.append(Fill(seq, ts, price, size, -(-(price * size) // base_unit),
                                  taker_id, taker_owner, taker_side, maker_id, maker_owner))
                md.append(match_message(event))
                if maker_left == 0:  # the maker is filled: its LEFT, folded into this event
                    maker_side = SELL if taker_side is BUY else BUY
                    md.append(DoneMessage(seq + 1, ts, maker_id, maker_side, price, 0, FILLED))
                    done.append(Done(maker_id, maker_owner, FILLED, 0))
            elif kind == OPENED:
                _, seq, ts, order_id, owner, side, price, size = event
                opened.append(Opened(order_id, owner, side, price, size))
                md.append(OpenMessage(seq, ts, order_id, side, price, size))
            elif kind == LEFT:
                _, seq, ts, order_id, owner, side, price, remaining, reason, public = event
                md.append(DoneMessage(seq, ts, order_id, side, price, remaining, reason))
                if public:
                    done.append(Done(order_id, owner, reason, remaining))
            elif kind == ENDED:
                _, order_id, owner, reason, remaining, funds = event
                done.append(Done(order_id, owner, reason, remaining, funds))
            elif kind == RESIZED:
                _, seq, ts, order_id, owner, side, price, old, new, reason = event
                changed.append(Changed(order_id, owner, side, price, old, new, reason))
                if seq is not None:
                    md.append(ChangeMessage(seq, ts, order_id, side, price, old, new))
            else:
                triggered.append(event[1])
        self.built = built = (fills, done, opened, changed, triggered, md)
        return built

    def __repr__(self) -> str:
        if not self.accepted:
            return f"Result(rejected {self.reject!r})"
        return (
            f"Result(fills={self.fills}, done={self.done}, opened={self.opened}, "
            f"changed={self.changed}, triggered={self.triggered})"
        )


class Refused(Result):
    """The `Result` of a refused command (see `refused`)."""

    __slots__ = ("reject",)


def accepted(events: list[tuple]) -> Result:
    """The `Result` of an accepted command that recorded `events`."""
    result = Result()
    result.events = events
    return result


def refused(reject: Reject) -> Result:
    """The `Result` of a refused command: it changed nothing."""
    result = Refused()
    result.events = ()
    result.reject = reject
    return result
