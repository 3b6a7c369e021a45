"""The order book under random command streams (hypothesis).

- Never crossed after a command; every fill at the maker's price, within the taker's limit,
  and never between two orders of one owner.
- Per order, from the results alone: filled + open + cancelled == placed (sizes), and a
  market buy by funds spends at most its funds.
- An L3 client that applies the market-data messages holds exactly the book's L3, and the
  sequence numbers run on without a gap.
- `check` gives exactly the refusal `apply` gives; a refused command changes nothing.
- Replaying the same commands gives the same `state_hash()` after every command.
- With plain limit orders and cancels, the fills equal pyorderbook's (an outside oracle).
- The same stream spelled with enum members (which plain GTC and IOC limit orders and
  cancels of resting orders take the book's inline paths with) and with plain values
  (which take the general path) gives the same results, events and state hashes; and
  the same stream through `apply` (inline paths for placements, cancels and amends) and
  through `run` with each command's handler (the general path only) does too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyorderbook
from hypothesis import given, settings
from hypothesis import strategies as st

from pacioli.matching import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Market,
    OrderBook,
    OrderType,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
)
from pacioli.matching.market_data import apply_to_l3

logging.getLogger("pyorderbook.book").setLevel(logging.WARNING)

TOY = Market(
    symbol="TOY-USD", base="TOY", quote="USD", base_scale=1, quote_scale=2,
    tick=1, size_increment=1, min_size=1,
)
OWNERS = ("ann", "bob", "cy")
SIDES = st.sampled_from(["buy", "sell"])
PRICES = st.integers(95, 105)
SIZES = st.integers(1, 8)
# The enum of each field a command may spell either way ("buy" or Side.BUY): the book's
# inline paths take only members, so the streams draw both spellings.
ENUM_FIELDS = {"side": Side, "type": OrderType, "tif": TimeInForce, "stp": SelfTrade}


def spelled(command: object, *, members: bool) -> object:
    """`command` with its enum fields as members (`members`) or as plain strings."""
    if not isinstance(command, (PlaceOrder, CancelAll)):
        return command
    fields = {}
    for name in type(command).__slots__:
        value = getattr(command, name)
        if name in ENUM_FIELDS and value is not None:
            value = ENUM_FIELDS[name](value) if members else str(ENUM_FIELDS[name](value))
        fields[name] = value
    return type(command)(**fields)


@st.composite
def commands(draw: st.DrawFn) -> list[object]:
    """A stream of every kind of command, ids and clock counting up."""
    stream: list[object] = []
    ts = 0
    next_id = 1
    for _ in range(draw(st.integers(1, 40))):
        ts += draw(st.integers(0, 3))
        kind = draw(st.sampled_from(
            ["limit"] * 6 + ["market", "stop", "stop_limit", "cancel", "cancel_all", "amend",
                             "clock"]
        ))
        owner = draw(st.sampled_from(OWNERS))
        if kind in ("cancel", "amend") and next_id > 1:
            order_id = draw(st.integers(1, next_id - 1))
            if kind == "cancel":
                stream.append(CancelOrder(ts, order_id, owner))
            else:
                stream.append(AmendOrder(
                    ts, order_id, owner, size=draw(st.none() | SIZES),
                    price=draw(st.none() | PRICES),
                ))
            continue
        if kind == "cancel_all":
            stream.append(CancelAll(ts, owner, draw(st.none() | SIDES)))
            continue
        if kind == "clock" or kind in ("cancel", "amend"):
            stream.append(AdvanceClock(ts))
            continue
        side = draw(SIDES)
        fields: dict[str, object] = {"stp": draw(st.sampled_from(["dc", "co", "cn", "cb"]))}
        if kind == "limit":
            fields.update(size=draw(SIZES), price=draw(PRICES))
            tif = draw(st.sampled_from(["gtc", "gtc", "gtt", "ioc", "fok"]))
            fields["tif"] = tif
            if tif == "gtt":
                fields["expires_at"] = ts + draw(st.integers(1, 10))
            if tif in ("gtc", "gtt"):
                fields["post_only"] = draw(st.booleans())
        elif kind == "market":
            if side == "buy" and draw(st.booleans()):
                fields["funds"] = draw(st.integers(1, 100))
            else:
                fields["size"] = draw(SIZES)
        else:
            fields.update(size=draw(SIZES), stop_price=draw(PRICES))
            if kind == "stop_limit":
                fields["price"] = draw(PRICES)
        place = PlaceOrder(ts, next_id, owner, side, kind, **fields)
        stream.append(spelled(place, members=draw(st.booleans())))
        next_id += 1
    return stream


@dataclass
class Ledger:
    """What the results say about each order, kept apart from the book."""

    placed: dict[int, int] = field(default_factory=dict)
    funds: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=dict)
    spent: dict[int, int] = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    prices: dict[int, int] = field(default_factory=dict)  # resting price, per live order

    def record(self, command: object, result) -> None:  # noqa: ANN001
        if isinstance(command, PlaceOrder):
            if command.funds is not None:
                self.funds[command.order_id] = command.funds
            else:
                self.placed[command.order_id] = command.size
        for fill in result.fills:
            for order_id in (fill.taker_order_id, fill.maker_order_id):
                self.filled[order_id] = self.filled.get(order_id, 0) + fill.size
            self.spent[fill.taker_order_id] = (
                self.spent.get(fill.taker_order_id, 0) + fill.quote_amount
            )
        for change in result.changed:
            delta = change.new_size - change.old_size
            if delta > 0:
                self.placed[change.order_id] += delta
            else:
                self.cancelled[change.order_id] = self.cancelled.get(change.order_id, 0) - delta
        for done in result.done:
            assert done.order_id not in self.done, f"order {done.order_id} done twice"
            self.done.add(done.order_id)
            self.cancelled[done.order_id] = (
                self.cancelled.get(done.order_id, 0) + done.remaining_size
            )
            if done.remaining_funds is not None:
                assert self.spent.get(done.order_id, 0) + done.remaining_funds == (
                    self.funds[done.order_id]
                )


def open_sizes(book: OrderBook) -> dict[int, int]:
    l3 = book.l3()
    sizes = {entry.order_id: entry.size for entry in l3.bids + l3.asks}
    for order_id in book.stops:
        sizes[order_id] = book.get_order(order_id).remaining_size
    return sizes


def assert_invariants(book: OrderBook, ledger: Ledger, client: dict, command, result) -> None:  # noqa: ANN001
    l1 = book.l1()
    if l1.bid_price is not None and l1.ask_price is not None:
        assert l1.bid_price < l1.ask_price, "the book is crossed"
    open_now = open_sizes(book)
    for order_id, placed in ledger.placed.items():
        filled = ledger.filled.get(order_id, 0)
        cancelled = ledger.cancelled.get(order_id, 0)
        assert filled + open_now.get(order_id, 0) + cancelled == placed, order_id
        assert (order_id in ledger.done) != (order_id in open_now), order_id
    for order_id, funds in ledger.funds.items():
        assert ledger.spent.get(order_id, 0) <= funds
    for entry in book.l3().bids + book.l3().asks:
        assert client[entry.order_id][1:] == [entry.price, entry.size]
    assert len(client) == len(book.l3().bids) + len(book.l3().asks)
    assert_l2_matches_client(book, client)


def assert_l2_matches_client(book: OrderBook, client: dict) -> None:
    """The book's L2 (running totals per level) is the client's L3 summed by price."""
    levels: dict[tuple[str, int], list[int]] = {}
    for side, price, size in client.values():
        level = levels.setdefault((str(side), price), [0, 0])
        level[0] += size
        level[1] += 1
    l2 = book.l2(depth=1000)
    bids = sorted(((p, *v) for (s, p), v in levels.items() if s == "buy"), reverse=True)
    asks = sorted((p, *v) for (s, p), v in levels.items() if s == "sell")
    assert [tuple(level) for level in l2.bids] == bids
    assert [tuple(level) for level in l2.asks] == asks


def maker_prices(book: OrderBook) -> dict[int, int]:
    l3 = book.l3()
    return {entry.order_id: entry.price for entry in l3.bids + l3.asks}


@settings(max_examples=300)
@given(commands())
def test_random_streams_keep_the_invariants(stream):
    book = OrderBook(TOY)
    ledger = Ledger()
    client: dict = {}
    sequence = 0
    for command in stream:
        before = book.state_hash()
        resting_prices = maker_prices(book)
        expected = book.check(command)
        result = book.apply(command)
        assert (result.reject is None) == (expected is None)
        if expected is not None:
            assert result.reject.code == expected.code
            assert book.state_hash() == before, "a refused command changed the book"
            assert not (result.fills or result.done or result.md)
            continue
        for fill in result.fills:
            if fill.maker_order_id in resting_prices:
                assert fill.price == resting_prices[fill.maker_order_id]
            if (
                isinstance(command, PlaceOrder) and command.type == "limit"
                and fill.taker_order_id == command.order_id
            ):
                buy = command.side == "buy"
                assert fill.price <= command.price if buy else fill.price >= command.price
            assert fill.quote_amount == TOY.quote_amount(fill.price, fill.size)
            assert fill.taker_owner != fill.maker_owner, "self-trade prevention let one through"
        for message in result.md:
            sequence += 1
            assert message.sequence == sequence
            apply_to_l3(client, message)
        ledger.record(command, result)
        assert_invariants(book, ledger, client, command, result)


@settings(max_examples=150)
@given(commands())
def test_replay_gives_the_same_state_hash_after_every_command(stream):
    first, second = OrderBook(TOY), OrderBook(TOY)
    hashes = []
    for command in stream:
        first.apply(command)
        hashes.append(first.state_hash())
    for command, expected in zip(stream, hashes, strict=True):
        second.apply(command)
        assert second.state_hash() == expected


@settings(max_examples=200)
@given(commands())
def test_members_and_values_give_the_same_results(stream):
    by_members, by_values = OrderBook(TOY), OrderBook(TOY)
    for command in stream:
        first = by_members.apply(spelled(command, members=True))  # type: ignore[arg-type]
        second = by_values.apply(spelled(command, members=False))  # type: ignore[arg-type]
        assert first.reject == second.reject
        assert first.events == second.events
        assert by_members.state_hash() == by_values.state_hash()


def apply_generally(book: OrderBook, command: object):  # noqa: ANN201
    """`book.apply(command)` through the general path (`run`, with the refusal's checks and
    the command's handler), never one of `apply`'s inline ones."""
    return book.run(command, book.check(command), book.handlers[type(command)])  # type: ignore[arg-type]


@settings(max_examples=200)
@given(commands())
def test_inline_paths_give_the_same_results_as_the_general_path(stream):
    inline, general = OrderBook(TOY), OrderBook(TOY)
    for command in stream:
        first = inline.apply(command)  # type: ignore[arg-type]
        second = apply_generally(general, command)
        assert first.reject == second.reject
        assert first.events == second.events
        assert inline.state_hash() == general.state_hash()


@st.composite
def limits_and_cancels(draw: st.DrawFn) -> list[tuple]:
    """('place', side, size, price) and ('cancel', index of an earlier placement)."""
    stream: list[tuple] = []
    placed = 0
    for _ in range(draw(st.integers(1, 80))):
        if placed and draw(st.integers(0, 3)) == 0:
            stream.append(("cancel", draw(st.integers(0, placed - 1))))
        else:
            side = draw(SIDES)
            stream.append(("place", Side(side) if draw(st.booleans()) else side, draw(SIZES),
                           draw(PRICES)))
            placed += 1
    return stream


@settings(max_examples=300)
@given(limits_and_cancels())
def test_plain_limit_orders_and_cancels_fill_exactly_as_pyorderbook(stream):
    ours = OrderBook(TOY)
    theirs = pyorderbook.Book()
    our_fills, their_fills = [], []
    peer_orders: list[pyorderbook.Order] = []
    ids: dict[object, int] = {}
    for ts, step in enumerate(stream, start=1):
        if step[0] == "place":
            _, side, size, price = step
            order_id = len(peer_orders) + 1
            # One owner per order: pyorderbook has no self-trade prevention.
            result = ours.apply(PlaceOrder(ts, order_id, f"o{order_id}", side, OrderType.LIMIT,
                                           size=size, price=price))
            our_fills += [(f.taker_order_id, f.maker_order_id, f.size, f.price)
                          for f in result.fills]
            make = pyorderbook.bid if side == "buy" else pyorderbook.ask
            order = make("TOY-USD", price, size)
            peer_orders.append(order)
            ids[order.id] = order_id
            their_fills += [
                (ids[t.incoming_order_id], ids[t.standing_order_id], t.fill_quantity,
                 int(t.fill_price))
                for t in theirs.match(order).trades
            ]
        else:
            index = step[1]
            order = peer_orders[index]
            result = ours.apply(CancelOrder(ts, index + 1, f"o{index + 1}"))
            live_there = order.id in theirs.order_map
            assert result.accepted == live_there
            if live_there:
                theirs.cancel(order)
        assert our_fills == their_fills
    # And the books left behind agree, order by order.
    l3 = ours.l3()
    resting = {ids[oid]: (o.quantity, int(o.price)) for oid, o in theirs.order_map.items()}
    assert {e.order_id: (e.size, e.price) for e in l3.bids + l3.asks} == resting

