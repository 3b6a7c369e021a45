"""The orders API end to end: place, amend, cancel, cancel-all, get, list, fills with fees,
idempotency, privacy, and every refusal with its code — and nothing moves on a refusal.

Each test trades on a market of its own (tests/e2e/exchange_api_support.py), so its book
and its fee account start empty.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import assert_problem, signed_up_user
from tests.e2e.exchange_api_support import open_venue

ORDERS = "/v1/exchange/orders"


@pytest.fixture
def venue(engine, ledger):
    with open_venue(engine, ledger) as venue:
        yield venue


def trader(venue, *, base: int = 0, quote: int = 0):
    user = signed_up_user(venue.client)
    if base:
        venue.fund(user.id, base, venue.market.base)
    if quote:
        venue.fund(user.id, quote, venue.market.quote)
    return user


def order_body(venue, side, size, price=None, **fields):
    body = {"market": venue.market.symbol, "side": side, "size": size, **fields}
    if price is not None:
        body["price"] = price
    return body


def test_placing_a_limit_buy_holds_its_funds_and_answers_the_order(venue):
    ada = trader(venue, quote=1_000_000)  # 10,000.00
    response = ada.post(ORDERS, order_body(venue, "buy", "0.1", "50000.00"))

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "open" and order["side"] == "buy" and order["type"] == "limit"
    assert order["price"] == "50000.00" and order["size"] == "0.10000000"
    assert order["open_size"] == "0.10000000" and order["filled_size"] == "0.00000000"
    assert order["fee_currency"] == venue.market.quote
    # Its number is how the public L3 snapshot (and the stream) name it.
    l3 = venue.get("/l3").json()
    assert [bid["order_id"] for bid in l3["bids"]] == [order["order_number"]]
    # 5,000.00 for the size and 10.00 for the largest taker fee (20 bps) are held.
    assert venue.balance(ada.id, venue.market.quote) == (1_000_000, 1_000_000 - 501_000)


def test_a_trade_settles_with_fees_and_both_sides_see_their_fills(venue):
    ada = trader(venue, quote=1_000_000)
    bob = trader(venue, base=20_000_000)
    maker = bob.post(ORDERS, order_body(venue, "sell", "0.2", "50000.00")).json()
    taker = ada.post(ORDERS, order_body(venue, "buy", "0.05", "50000.00"))
    assert taker.status_code == 201, taker.text
    assert taker.json()["status"] == "done" and taker.json()["done_reason"] == "filled"
    assert taker.json()["executed_value"] == "2500.00" and taker.json()["fee"] == "5.00"

    (ada_fill,) = ada.get("/v1/exchange/fills").json()["data"]
    (bob_fill,) = bob.get("/v1/exchange/fills").json()["data"]
    assert ada_fill["liquidity"] == "taker" and ada_fill["side"] == "buy"
    assert ada_fill["fee"] == "5.00" and ada_fill["size"] == "0.05000000"
    assert bob_fill["liquidity"] == "maker" and bob_fill["side"] == "sell"
    assert bob_fill["fee"] == "2.50" and bob_fill["order_id"] == maker["id"]
    assert ada_fill["settled"] and bob_fill["settled"]
    assert ada_fill["price"] == "50000.00" and ada_fill["quote_amount"] == "2500.00"

    base, quote = venue.market.base, venue.market.quote
    assert venue.balance(ada.id, quote) == (1_000_000 - 250_500,) * 2
    assert venue.balance(ada.id, base) == (5_000_000, 5_000_000)
    assert venue.balance(bob.id, quote) == (250_000 - 250,) * 2
    assert venue.balance(bob.id, base) == (15_000_000, 0)
    assert venue.fee_balance() == 500 + 250
    maker_now = bob.get(f"{ORDERS}/{maker['id']}").json()
    assert maker_now["open_size"] == "0.15000000" and maker_now["fee"] == "2.50"


def test_a_write_needs_an_idempotency_key_and_a_retry_answers_the_first_result(venue):
    ada = trader(venue, quote=1_000_000)
    body = order_body(venue, "buy", "0.01", "40000.00")
    missing = venue.client.post(ORDERS, json=body, headers=ada.headers())
    assert_problem(missing, 422, "idempotency_key_required")

    first = ada.post(ORDERS, body, key="place-1")
    again = ada.post(ORDERS, body, key="place-1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = ada.post(ORDERS, order_body(venue, "buy", "0.02", "40000.00"), key="place-1")
    assert_problem(other, 409, "idempotency_key_reused")
    assert len(ada.get(ORDERS).json()["data"]) == 1
    # One hold only: 400.00 + 0.80 fee.
    assert venue.balance(ada.id, venue.market.quote) == (1_000_000, 1_000_000 - 40_080)

    cancel = ada.post(f"{ORDERS}/{first.json()['id']}/cancel", key="cancel-1")
    cancel_again = ada.post(f"{ORDERS}/{first.json()['id']}/cancel", key="cancel-1")
    assert cancel.status_code == 200 and cancel_again.status_code == 200
    assert cancel_again.headers["Idempotent-Replayed"] == "true"
    assert cancel_again.json()["done_reason"] == "cancelled"
    assert_problem(ada.post(ORDERS, body, key="cancel-1"), 409, "idempotency_key_reused")


@pytest.mark.parametrize(("body_fields", "status", "code"), [
    ({"market": "NOPE-USD"}, 422, "unknown_market"),
    ({"price": "50000.005"}, 422, "invalid_amount"),
    ({"size": "0.000001"}, 422, "invalid_size"),
    ({"size": "0.00001"}, 422, "size_too_small"),
    ({"size": 0.1}, 422, "invalid_amount"),
    ({"time_in_force": "gtt"}, 422, "invalid_order"),
    ({"type": "market", "price": None}, 422, "no_liquidity"),
    ({"size": "1000"}, 422, "insufficient_funds"),
])
def test_a_refused_order_is_a_problem_and_moves_nothing(venue, body_fields, status, code):
    ada = trader(venue, quote=1_000_000)
    body = {**order_body(venue, "buy", "0.01", "40000.00"), **body_fields}
    body = {k: v for k, v in body.items() if v is not None}
    assert_problem(ada.post(ORDERS, body), status, code)
    assert venue.balance(ada.id, venue.market.quote) == (1_000_000, 1_000_000)
    assert ada.get(ORDERS).json()["data"] == []


def test_a_price_off_the_tick_is_refused(engine, ledger):
    with open_venue(engine, ledger, tick=100) as venue:  # whole dollars only
        ada = trader(venue, quote=1_000_000)
        response = ada.post(ORDERS, order_body(venue, "buy", "0.01", "40000.50"))
        assert_problem(response, 422, "invalid_price")
        assert venue.balance(ada.id, venue.market.quote) == (1_000_000, 1_000_000)


def test_post_only_that_would_cross_and_fok_that_cannot_fill_are_refused(venue):
    ada = trader(venue, quote=10_000_000)
    bob = trader(venue, base=10_000_000)
    bob.post(ORDERS, order_body(venue, "sell", "0.01", "40000.00"))
    crossing = order_body(venue, "buy", "0.01", "40000.00", post_only=True)
    assert_problem(ada.post(ORDERS, crossing), 422, "post_only_would_take")
    too_big = order_body(venue, "buy", "0.02", "40000.00", time_in_force="fok")
    assert_problem(ada.post(ORDERS, too_big), 422, "fok_not_fillable")
    assert venue.balance(ada.id, venue.market.quote) == (10_000_000, 10_000_000)
    assert ada.get(ORDERS).json()["data"] == []


def test_a_user_sees_only_their_own_orders_and_fills(venue):
    ada = trader(venue, quote=1_000_000)
    eve = trader(venue, quote=1_000_000)
    order = ada.post(ORDERS, order_body(venue, "buy", "0.01", "40000.00")).json()

    assert_problem(eve.get(f"{ORDERS}/{order['id']}"), 404, "order_not_found")
    assert_problem(eve.post(f"{ORDERS}/{order['id']}/cancel"), 404, "order_not_found")
    assert_problem(eve.post(f"{ORDERS}/{order['id']}/amend", {"size": "0.02"}), 404,
                   "order_not_found")
    assert_problem(eve.get(f"{ORDERS}/{uuid.uuid4()}"), 404, "order_not_found")
    assert eve.get(ORDERS).json()["data"] == []
    assert eve.get("/v1/exchange/fills").json()["data"] == []
    assert ada.get(f"{ORDERS}/{order['id']}").json()["status"] == "open"


def test_amend_resizes_and_reprices_and_adjusts_the_hold(venue):
    ada = trader(venue, quote=1_000_000)
    quote = venue.market.quote
    order = ada.post(ORDERS, order_body(venue, "buy", "0.1", "40000.00")).json()
    assert venue.balance(ada.id, quote)[1] == 1_000_000 - 400_800

    bigger = ada.post(f"{ORDERS}/{order['id']}/amend", {"size": "0.2"})
    assert bigger.status_code == 200, bigger.text
    assert bigger.json()["open_size"] == "0.20000000"
    assert venue.balance(ada.id, quote)[1] == 1_000_000 - 801_600

    cheaper = ada.post(f"{ORDERS}/{order['id']}/amend", {"price": "30000.00", "size": "0.1"})
    assert cheaper.json()["price"] == "30000.00" and cheaper.json()["open_size"] == "0.10000000"
    assert venue.balance(ada.id, quote)[1] == 1_000_000 - 300_600

    too_big = ada.post(f"{ORDERS}/{order['id']}/amend", {"size": "100"})
    assert_problem(too_big, 422, "insufficient_funds")
    assert venue.balance(ada.id, quote)[1] == 1_000_000 - 300_600


def test_cancel_all_cancels_the_callers_open_orders_in_a_market(venue):
    ada = trader(venue, quote=10_000_000, base=10_000_000)
    bob = trader(venue, quote=10_000_000)
    for price in ("30000.00", "31000.00"):
        ada.post(ORDERS, order_body(venue, "buy", "0.01", price))
    ada.post(ORDERS, order_body(venue, "sell", "0.01", "60000.00"))
    bobs = bob.post(ORDERS, order_body(venue, "buy", "0.01", "30000.00")).json()

    buys = ada.post(f"{ORDERS}/cancel-all", {"market": venue.market.symbol, "side": "buy"})
    assert buys.status_code == 200, buys.text
    assert len(buys.json()) == 2 and {o["done_reason"] for o in buys.json()} == {"cancelled"}
    assert [o["side"] for o in ada.get(ORDERS, {"status": "open"}).json()["data"]] == ["sell"]
    rest = ada.post(f"{ORDERS}/cancel-all", {"market": venue.market.symbol})
    assert len(rest.json()) == 1
    assert venue.balance(ada.id, venue.market.quote) == (10_000_000, 10_000_000)
    assert venue.balance(ada.id, venue.market.base) == (10_000_000, 10_000_000)
    assert bob.get(f"{ORDERS}/{bobs['id']}").json()["status"] == "open"
    assert_problem(ada.post(f"{ORDERS}/cancel-all", {"market": "NOPE-USD"}), 422,
                   "unknown_market")


def test_a_done_order_cannot_be_cancelled_or_amended(venue):
    ada = trader(venue, quote=1_000_000)
    order = ada.post(ORDERS, order_body(venue, "buy", "0.01", "40000.00")).json()
    ada.post(f"{ORDERS}/{order['id']}/cancel")
    assert_problem(ada.post(f"{ORDERS}/{order['id']}/cancel"), 409, "order_not_open")
    assert_problem(ada.post(f"{ORDERS}/{order['id']}/amend", {"size": "0.02"}), 409,
                   "order_not_open")


def test_a_market_buy_by_funds_spends_at_most_the_funds_fees_included(venue):
    ada = trader(venue, quote=1_000_000)
    bob = trader(venue, base=100_000_000)
    bob.post(ORDERS, order_body(venue, "sell", "1", "50000.00"))
    response = ada.post(ORDERS, {"market": venue.market.symbol, "side": "buy",
                                 "type": "market", "funds": "1000.00"})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "done" and order["funds"] == "1000.00"
    spent = 1_000_000 - venue.balance(ada.id, venue.market.quote)[0]
    assert 0 < spent <= 100_000
    assert venue.balance(ada.id, venue.market.quote)[0] == venue.balance(
        ada.id, venue.market.quote)[1]


def test_orders_and_fills_page_newest_first(venue):
    ada = trader(venue, quote=10_000_000)
    ids = [ada.post(ORDERS, order_body(venue, "buy", "0.01", f"{30000 + n}.00")).json()["id"]
           for n in range(3)]
    first = ada.get(ORDERS, {"limit": 2}).json()
    assert [o["id"] for o in first["data"]] == ids[:0:-1] and first["has_more"]
    second = ada.get(ORDERS, {"limit": 2, "starting_after": first["next_cursor"]}).json()
    assert [o["id"] for o in second["data"]] == [ids[0]] and not second["has_more"]
    assert ada.get(ORDERS, {"market": venue.market.symbol, "status": "done"}).json()[
        "data"] == []
    assert_problem(ada.get(ORDERS, {"market": "NOPE-USD"}), 422, "unknown_market")


def test_the_app_runs_the_exchange_on_the_default_markets(client, fund):
    """The session's app, as `pacioli serve` builds it: its lifespan started the exchange."""
    ada = signed_up_user(client)
    fund(ada, 10_000, "USD")
    # A bid far below any other test's prices, cancelled at once: the shared book is left
    # as it was found.
    placed = ada.post(ORDERS, {"market": "BTC-USD", "side": "buy", "size": "0.001",
                               "price": "1.00"})
    assert placed.status_code == 201, placed.text
    assert placed.json()["fee_currency"] == "USD"
    cancelled = ada.post(f"{ORDERS}/{placed.json()['id']}/cancel")
    assert cancelled.json()["status"] == "done"
    wallet = ada.get("/v1/me/wallets/USD").json()
    assert wallet["available"] == wallet["posted"] == "100.00"
