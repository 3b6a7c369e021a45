"""The exchange's public market data through HTTP: markets, L1/L2/L3 snapshots and trades."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from pacioli.ledger import Ledger
from tests.e2e.conftest import assert_problem, signed_up_user
from tests.e2e.exchange_api_support import ExchangeVenue, open_venue

BTC = 10**8  # base minor units per whole base unit (8 decimals, like BTC)


@pytest.fixture
def venue(engine: Engine, ledger: Ledger) -> Iterator[ExchangeVenue]:
    with open_venue(engine, ledger) as venue:
        yield venue


def _traders(venue: ExchangeVenue):
    """A buyer with 100,000.00 quote and a seller with 10 base, both signed up."""
    buyer, seller = signed_up_user(venue.client), signed_up_user(venue.client)
    venue.fund(buyer.id, 100_000_00, venue.market.quote)
    venue.fund(seller.id, 10 * BTC, venue.market.base)
    return buyer, seller


def test_markets_show_their_grid_and_fees_as_decimal_strings_without_credentials(venue):
    response = venue.client.get("/v1/exchange/markets")
    assert response.status_code == 200, response.text
    market = venue.market
    assert response.json() == [{
        "symbol": market.symbol, "base": market.base, "quote": market.quote,
        "base_scale": 8, "quote_scale": 2, "tick": "0.01", "size_increment": "0.00001000",
        "min_size": "0.00010000", "maker_fee_bps": 10, "taker_fee_bps": 20,
        "maker_fee_rate": "0.0010", "taker_fee_rate": "0.0020",
    }]
    one = venue.client.get(f"/v1/exchange/markets/{market.symbol}")
    assert one.status_code == 200 and one.json() == response.json()[0]


@pytest.mark.parametrize("path", ["", "/l1", "/l2", "/l3", "/trades", "/stream"])
def test_an_unknown_market_is_a_problem_document(venue, path):
    response = venue.client.get(f"/v1/exchange/markets/NOPE-USD{path}")
    assert_problem(response, 422, "unknown_market")


def test_an_empty_book_has_empty_snapshots_at_sequence_zero(venue):
    assert venue.get("/l1").json() == {
        "symbol": venue.market.symbol, "sequence": 0, "bid_price": None, "bid_size": "0.00000000",
        "ask_price": None, "ask_size": "0.00000000", "last_price": None,
    }
    assert venue.get("/l2").json() == {"symbol": venue.market.symbol, "sequence": 0,
                                       "bids": [], "asks": []}
    assert venue.get("/l3").json() == {"symbol": venue.market.symbol, "sequence": 0,
                                       "bids": [], "asks": []}
    assert venue.get("/trades").json() == []


def test_snapshots_show_the_resting_orders_best_first_with_the_book_sequence(venue):
    buyer, seller = _traders(venue)
    first = venue.place(buyer.id, "buy", size=50_000, price=100_00)  # 0.0005 at 100.00
    second = venue.place(buyer.id, "buy", size=20_000, price=100_00)
    third = venue.place(buyer.id, "buy", size=10_000, price=99_50)
    ask = venue.place(seller.id, "sell", size=1 * BTC, price=101_25)

    l1 = venue.get("/l1").json()
    assert l1 == {
        "symbol": venue.market.symbol, "sequence": 4, "bid_price": "100.00",
        "bid_size": "0.00070000", "ask_price": "101.25", "ask_size": "1.00000000",
        "last_price": None,
    }
    l2 = venue.get("/l2").json()
    assert l2["sequence"] == 4
    assert l2["bids"] == [{"price": "100.00", "size": "0.00070000", "orders": 2},
                          {"price": "99.50", "size": "0.00010000", "orders": 1}]
    assert l2["asks"] == [{"price": "101.25", "size": "1.00000000", "orders": 1}]
    assert venue.get("/l2", depth=1).json()["bids"] == l2["bids"][:1]

    l3 = venue.get("/l3").json()
    assert l3["sequence"] == 4
    assert l3["bids"] == [
        {"order_id": first.order_number, "price": "100.00", "size": "0.00050000"},
        {"order_id": second.order_number, "price": "100.00", "size": "0.00020000"},
        {"order_id": third.order_number, "price": "99.50", "size": "0.00010000"},
    ]
    assert l3["asks"] == [{"order_id": ask.order_number, "price": "101.25",
                           "size": "1.00000000"}]


def test_trades_are_listed_newest_first_at_the_makers_price(venue):
    buyer, seller = _traders(venue)
    maker = venue.place(seller.id, "sell", size=30_000, price=200_00)
    venue.place(seller.id, "sell", size=30_000, price=201_00)
    taker = venue.place(buyer.id, "buy", size=40_000, price=205_00)  # takes 0.0003 + 0.0001

    trades = venue.get("/trades").json()
    assert [(t["price"], t["size"]) for t in trades] == [("201.00", "0.00010000"),
                                                         ("200.00", "0.00030000")]
    oldest = trades[1]
    assert oldest["maker_order_id"] == maker.order_number
    assert oldest["taker_order_id"] == taker.order_number
    assert (oldest["maker_side"], oldest["taker_side"]) == ("sell", "buy")
    assert trades[0]["sequence"] > oldest["sequence"]
    assert venue.get("/trades", limit=1).json() == trades[:1]
    l1 = venue.get("/l1").json()
    assert l1["last_price"] == "201.00"
    assert (l1["ask_price"], l1["ask_size"]) == ("201.00", "0.00020000")


def test_a_cancelled_order_leaves_the_snapshots(venue):
    buyer, _ = _traders(venue)
    order = venue.place(buyer.id, "buy", size=10_000, price=50_00)
    assert len(venue.get("/l3").json()["bids"]) == 1
    venue.cancel(buyer.id, order.id)
    l3 = venue.get("/l3").json()
    assert l3["bids"] == [] and l3["sequence"] == 2  # open, done


@pytest.mark.parametrize("params", [{"depth": 0}, {"depth": 1001}, {"depth": "x"}])
def test_an_out_of_range_depth_is_a_validation_problem(venue, params):
    assert_problem(venue.get("/l2", **params), 422, "validation_error")


def test_an_out_of_range_trades_limit_is_a_validation_problem(venue):
    assert_problem(venue.get("/trades", limit=0), 422, "validation_error")
    assert_problem(venue.get("/trades", limit=1001), 422, "validation_error")


def test_market_data_says_so_when_the_exchange_is_not_running(client):
    """The session app runs no exchange of this test's; one that runs none answers 409."""
    state = client.app.state
    saved = getattr(state, "exchange", None)
    state.exchange = None
    try:
        assert_problem(client.get("/v1/exchange/markets"), 409, "exchange_not_running")
    finally:
        state.exchange = saved
