"""The market-data stream, snapshots and the trade tape."""

from pacioli.matching.market_data import apply_to_l3

from .scenario import BUY, CN, SELL, STOP, Scenario


def busy_scenario() -> Scenario:
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("b", 3, 101)
    s.sell("c", 4, 103)
    s.sell("d", 6, 104)
    s.sell("e", 4, 101)  # trades 3 at 101, rests 1 at 101
    s.amend("a", 1, size=2)
    s.amend("d", 4, price=102)
    s.place("f", BUY, STOP, size=1, stop_price=101)  # triggered at once: takes 1 at 101
    s.buy("a", 9, 103, stp=CN)
    s.cancel("c", 3)
    s.market("g", SELL, size=1)
    return s


def test_sequence_numbers_are_consecutive_from_one():
    s = busy_scenario()
    numbers = [m.sequence for r in s.results for m in r.md]
    assert numbers == list(range(1, len(numbers) + 1))
    assert s.book.sequence == numbers[-1]


def test_an_l3_client_rebuilds_the_book_from_the_messages():
    s = busy_scenario()
    client: dict = {}
    for result in s.results:
        for message in result.md:
            apply_to_l3(client, message)
    snapshot = s.book.l3()
    for side, entries in ((BUY, snapshot.bids), (SELL, snapshot.asks)):
        mine = [(oid, price, size) for oid, (sd, price, size) in client.items() if sd == side]
        # The client's dict is in time order; sort by price as the book does (stable).
        mine.sort(key=lambda e: -e[1] if side == BUY else e[1])
        assert mine == [tuple(e) for e in entries]


def test_an_l2_client_rebuilds_the_depth_from_the_messages():
    s = busy_scenario()
    depth: dict = {}
    for result in s.results:
        for m in result.md:
            key = (m.side, m.price)
            delta = {
                "open": lambda m: m.size,
                "match": lambda m: -m.size,
                "change": lambda m: m.new_size - m.old_size,
                "done": lambda m: -m.remaining_size,
            }[m.type](m)
            depth[key] = depth.get(key, 0) + delta
    l2 = s.book.l2()
    expected = {(BUY, lv.price): lv.size for lv in l2.bids}
    expected.update({(SELL, lv.price): lv.size for lv in l2.asks})
    assert {k: v for k, v in depth.items() if v} == expected


def test_a_client_resumes_from_a_snapshot_and_detects_a_gap():
    s = Scenario()
    s.buy("a", 5, 100)
    snapshot = s.book.l3()
    later = s.buy("b", 5, 99).md + s.sell("c", 5, 100).md  # open; match, done
    assert [m.sequence for m in later] == [snapshot.sequence + 1, snapshot.sequence + 2,
                                           snapshot.sequence + 3]
    received = [later[0], later[2]]  # one message lost
    gaps = [b.sequence - a.sequence for a, b in zip(received, received[1:], strict=False)]
    assert gaps == [2]


def test_l1_and_l2_snapshots():
    s = Scenario()
    assert (s.book.l1().bid_price, s.book.l1().ask_price) == (None, None)
    s.buy("a", 5, 100)
    s.buy("b", 2, 100)
    s.buy("b", 1, 99)
    s.sell("c", 4, 102)
    l1 = s.book.l1()
    assert (l1.bid_price, l1.bid_size, l1.ask_price, l1.ask_size) == (100, 7, 102, 4)
    l2 = s.book.l2(depth=1)
    assert [tuple(level) for level in l2.bids] == [(100, 7, 2)]
    assert l2.sequence == s.book.sequence
    assert [tuple(level) for level in s.book.l2().bids] == [(100, 7, 2), (99, 1, 1)]


def test_the_tape_lists_recent_trades_newest_first():
    s = Scenario()
    s.sell("a", 1, 100)
    s.sell("a", 1, 101)
    s.sell("a", 1, 102)
    s.market("b", BUY, size=3)
    assert [t.price for t in s.book.trades()] == [102, 101, 100]
    assert [t.price for t in s.book.trades(limit=2)] == [102, 101]
    assert s.book.trades()[0].as_dict()["type"] == "match"


def test_owners_are_never_published():
    s = busy_scenario()
    for result in s.results:
        for message in result.md:
            assert "owner" not in message.as_dict()
            assert not any(v in ("a", "b", "c", "d", "e", "f", "g")
                           for v in message.as_dict().values() if isinstance(v, str))
