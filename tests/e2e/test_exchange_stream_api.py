"""The market-data stream through a real HTTP server: a client that applies the stream to a
snapshot holds the book the snapshots show; gaps are detectable; slow clients are dropped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from pacioli.api.routes.exchange_stream import StreamSlots
from pacioli.ledger import Ledger
from tests.e2e.conftest import assert_problem, signed_up_user
from tests.e2e.exchange_api_support import EventReader, ExchangeVenue, open_venue, serve

BTC = 10**8
BOOK_MESSAGES = {"open", "match", "change", "done"}


@pytest.fixture
def venue(engine: Engine, ledger: Ledger) -> Iterator[ExchangeVenue]:
    with open_venue(engine, ledger) as venue:
        yield venue


@pytest.fixture
def base_url(venue: ExchangeVenue) -> Iterator[str]:
    with serve(venue.app) as url:
        yield url


def _traders(venue: ExchangeVenue):
    buyer, seller = signed_up_user(venue.client), signed_up_user(venue.client)
    venue.fund(buyer.id, 1_000_000_00, venue.market.quote)
    venue.fund(seller.id, 100 * BTC, venue.market.base)
    return buyer.id, seller.id


def _trade_a_while(venue: ExchangeVenue, buyer: str, seller: str) -> None:
    """Rest, cross, partially fill, amend down (change), amend price (replaced), cancel."""
    bids = [venue.place(buyer, "buy", size=20_000 * (i + 1), price=100_00 - i * 10)
            for i in range(4)]
    asks = [venue.place(seller, "sell", size=30_000, price=101_00 + i * 10) for i in range(3)]
    venue.place(buyer, "buy", size=40_000, price=101_10)  # takes one ask, part of the next
    venue.place(seller, "sell", size=25_000, price=99_90)  # takes the best bid, part of the next
    venue.amend(buyer, bids[3].id, size=40_000)  # a decrease in place: a change message
    venue.amend(seller, asks[2].id, price=102_00)  # loses its place: done(replaced) + open
    venue.cancel(buyer, bids[2].id)
    venue.place(buyer, "buy", type="market", size=10_000)


def _apply(l3: dict[int, list], event) -> None:
    """Apply one stream message to a client-side L3 {order_id: [side, price, size]}."""
    data = event.data
    if event.name == "open":
        l3[data["order_id"]] = [data["side"], data["price"], data["size"]]
    elif event.name == "match":
        entry = l3[data["maker_order_id"]]
        entry[2] = _minus(entry[2], data["size"])
    elif event.name == "change":
        assert l3[data["order_id"]][2] == data["old_size"]
        l3[data["order_id"]][2] = data["new_size"]
    elif event.name == "done":
        assert l3.pop(data["order_id"])[2] == data["remaining_size"]


def _minus(a: str, b: str) -> str:
    scale = len(a.split(".")[1])
    digits = str(int(a.replace(".", "")) - int(b.replace(".", ""))).rjust(scale + 1, "0")
    return f"{digits[:-scale]}.{digits[-scale:]}"


def _client_l3(snapshot: dict) -> dict[int, list]:
    l3 = {}
    for side, entries in (("buy", snapshot["bids"]), ("sell", snapshot["asks"])):
        for entry in entries:
            l3[entry["order_id"]] = [side, entry["price"], entry["size"]]
    return l3


def _as_snapshot_lists(l3: dict[int, list]) -> tuple[list, list]:
    """The client's L3 in the server's order: best price first, time priority within it.

    The dict keeps insertion order, which is each order's time priority (an order that
    loses its place is removed and opened again, at the back).
    """
    def entries(side: str, best_first: bool):
        chosen = [(oid, price, size) for oid, (s, price, size) in l3.items() if s == side]
        ranked = sorted(enumerate(chosen), key=lambda item: (
            -_num(item[1][1]) if best_first else _num(item[1][1]), item[0]))
        return [{"order_id": oid, "price": price, "size": size} for _, (oid, price, size) in ranked]

    return entries("buy", True), entries("sell", False)


def _num(decimal: str) -> int:
    return int(decimal.replace(".", ""))


def _read_until(reader: EventReader, sequence: int, timeout_s: float = 15.0) -> list:
    """Book messages until the one numbered `sequence` (heartbeats skipped)."""
    events = []
    deadline = time.monotonic() + timeout_s
    while True:
        assert time.monotonic() < deadline, f"no message {sequence} after {events[-3:]}"
        event = reader.next()
        assert event is not None, "the stream ended early"
        if event.name in BOOK_MESSAGES:
            events.append(event)
            if event.id >= sequence:
                return events


def _assert_consecutive(events, after: int) -> None:
    assert [event.id for event in events] == list(range(after + 1, after + 1 + len(events)))
    assert all(event.id == event.data["sequence"] for event in events)


def test_a_snapshot_plus_the_stream_is_the_book_the_snapshots_show(venue, base_url):
    buyer, seller = _traders(venue)
    venue.place(buyer, "buy", size=10_000, price=90_00)  # a book before the client arrives
    reader = EventReader(f"{base_url}{venue.prefix}/stream", {"snapshot": "l3"})
    try:
        assert reader.status == 200
        assert reader.headers["content-type"].startswith("text/event-stream")
        subscribed = reader.next()
        assert subscribed.name == "subscribed" and subscribed.data["sequence"] == 1
        snapshot = reader.next()
        assert snapshot.name == "snapshot" and snapshot.data["type"] == "snapshot_l3"
        assert snapshot.data["sequence"] == 1 and len(snapshot.data["bids"]) == 1

        _trade_a_while(venue, buyer, seller)
        fresh = venue.get("/l3").json()
        events = _read_until(reader, fresh["sequence"])
        _assert_consecutive(events, snapshot.data["sequence"])
        assert {event.name for event in events} == BOOK_MESSAGES
        assert any(e.name == "done" and e.data["reason"] == "replaced" for e in events)

        l3 = _client_l3(snapshot.data)
        for event in events:
            _apply(l3, event)
        bids, asks = _as_snapshot_lists(l3)
        assert (bids, asks) == (fresh["bids"], fresh["asks"])
        l2 = venue.get("/l2").json()
        assert l2["sequence"] == fresh["sequence"]
        assert [level["price"] for level in l2["bids"]] == sorted(
            {b["price"] for b in bids}, key=_num, reverse=True)
    finally:
        reader.close()


def test_a_client_without_a_snapshot_on_the_stream_uses_a_rest_snapshot_and_the_sequence(
    venue, base_url
):
    """Coinbase's recipe: subscribe, take a snapshot, drop messages up to its sequence."""
    buyer, seller = _traders(venue)
    reader = EventReader(f"{base_url}{venue.prefix}/stream")
    try:
        assert reader.next().data == {"type": "subscribed", "symbol": venue.market.symbol,
                                      "sequence": None}
        venue.place(buyer, "buy", size=10_000, price=95_00)  # before the snapshot
        snapshot = venue.get("/l3").json()
        _trade_a_while(venue, buyer, seller)
        fresh = venue.get("/l3").json()
        events = _read_until(reader, fresh["sequence"])
        assert events[0].id == 1  # the stream had it; the client drops what the snapshot has
        newer = [event for event in events if event.id > snapshot["sequence"]]
        _assert_consecutive(newer, snapshot["sequence"])
        l3 = _client_l3(snapshot)
        for event in newer:
            _apply(l3, event)
        assert _as_snapshot_lists(l3) == (fresh["bids"], fresh["asks"])
    finally:
        reader.close()


def test_stream_messages_carry_decimal_strings_and_no_owner(venue, base_url):
    buyer, seller = _traders(venue)
    reader = EventReader(f"{base_url}{venue.prefix}/stream")
    try:
        reader.next()
        maker = venue.place(seller, "sell", size=30_000, price=123_45)
        taker = venue.place(buyer, "buy", size=10_000, price=123_45)
        opened, match = _read_until(reader, 2)
        assert opened.name == "open"
        assert {k: v for k, v in opened.data.items() if k != "time"} == {
            "type": "open", "sequence": 1, "order_id": maker.order_number, "side": "sell",
            "price": "123.45", "size": "0.00030000", "symbol": venue.market.symbol,
        }
        assert opened.data["time"].endswith("Z")
        assert match.data["maker_order_id"] == maker.order_number
        assert match.data["taker_order_id"] == taker.order_number
        assert (match.data["price"], match.data["size"]) == ("123.45", "0.00010000")
        assert not any("owner" in key or "user" in key for key in match.data)
    finally:
        reader.close()


def test_an_idle_stream_sends_heartbeats(venue, base_url):
    reader = EventReader(f"{base_url}{venue.prefix}/stream", {"heartbeat_s": 1})
    try:
        assert reader.next().name == "subscribed"
        heartbeat = reader.next(timeout_s=5)
        assert heartbeat.name == "heartbeat"
        assert heartbeat.data["symbol"] == venue.market.symbol
        assert heartbeat.data["last_sequence"] is None
    finally:
        reader.close()


def test_a_client_that_falls_behind_gets_resync_and_the_stream_ends(venue, base_url):
    buyer, seller = _traders(venue)
    venue.app.state.exchange_stream_queue_max = 3
    reader = EventReader(f"{base_url}{venue.prefix}/stream")
    try:
        assert reader.next().name == "subscribed"
        venue.place(seller, "sell", size=10_000, price=100_00)
        venue.place(seller, "sell", size=10_000, price=100_01)
        # One command of four messages (two matches, two dones) overflows a queue of three.
        venue.place(buyer, "buy", type="market", size=20_000)
        names = []
        while (event := reader.next()) is not None:
            names.append(event.name)
        assert names[-1] == "resync"
        assert venue.exchange.runtime(venue.market.symbol).feed.subscriber_count == 0
        # Matching went on: the book took the order.
        assert venue.get("/l1").json()["ask_price"] is None
    finally:
        reader.close()


def test_streams_beyond_the_limit_are_refused_with_retry_after(venue, base_url):
    venue.app.state.exchange_streams = StreamSlots(limit=1)
    first = EventReader(f"{base_url}{venue.prefix}/stream")
    try:
        assert first.next().name == "subscribed"
        second = EventReader(f"{base_url}{venue.prefix}/stream")
        second.close()
        assert second.status == 503
        assert second.headers["retry-after"] == "5"
        refused = venue.client.get(f"{venue.prefix}/stream")
        assert_problem(refused, 503, "too_many_streams")
    finally:
        first.close()


def test_a_client_that_goes_away_gives_back_its_slot_and_subscription(venue, base_url):
    slots = venue.app.state.exchange_streams = StreamSlots(limit=4)
    feed = venue.exchange.runtime(venue.market.symbol).feed
    reader = EventReader(f"{base_url}{venue.prefix}/stream", {"snapshot": "l2"})
    assert reader.next().name == "subscribed"
    assert (slots.open, feed.subscriber_count) == (1, 1)
    reader.close()
    deadline = time.monotonic() + 10
    while (slots.open, feed.subscriber_count) != (0, 0):
        assert time.monotonic() < deadline, (slots.open, feed.subscriber_count)
        time.sleep(0.05)
