"""Convert through HTTP: buy the base with the quote (by funds), sell it (by size), the quote
that predicts it, and the refusals that change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from pacioli.ledger import Ledger
from tests.e2e.conftest import assert_problem, signed_up_user
from tests.e2e.exchange_api_support import ExchangeVenue, open_venue

BTC = 10**8


@pytest.fixture
def venue(engine: Engine, ledger: Ledger) -> Iterator[ExchangeVenue]:
    with open_venue(engine, ledger) as venue:
        yield venue


def _minor(decimal: str) -> int:
    return int(decimal.replace(".", ""))


def _asks(venue: ExchangeVenue):
    """A maker with three asks: 0.003 at 50,000.00, 0.002 at 50,010.00, 0.001 at 50,100.00."""
    maker = signed_up_user(venue.client)
    venue.fund(maker.id, 1 * BTC, venue.market.base)
    for size, price in ((300_000, 50_000_00), (200_000, 50_010_00), (100_000, 50_100_00)):
        venue.place(maker.id, "sell", size=size, price=price)
    return maker


def _bids(venue: ExchangeVenue):
    maker = signed_up_user(venue.client)
    venue.fund(maker.id, 1_000_000_00, venue.market.quote)
    for size, price in ((100_000, 49_990_00), (200_000, 49_900_00)):
        venue.place(maker.id, "buy", size=size, price=price)
    return maker


def _convert(venue: ExchangeVenue, user, from_: str, to: str, amount: str, key=None):
    return user.post("/v1/exchange/convert", {"from": from_, "to": to, "amount": amount},
                     key=key)


def test_buying_the_base_with_the_quote_spends_what_the_quote_said(venue):
    market = venue.market
    maker = _asks(venue)
    user = signed_up_user(venue.client)
    venue.fund(user.id, 200_00, market.quote)
    fees_before = venue.fee_balance()

    quote = user.get("/v1/exchange/convert/quote",
                     {"from": market.quote, "to": market.base, "amount": "100.00"})
    assert quote.status_code == 200, quote.text
    quoted = quote.json()
    assert (quoted["market"], quoted["side"], quoted["complete"]) == (market.symbol, "buy", True)

    response = _convert(venue, user, market.quote, market.base, "100.00")
    assert response.status_code == 201, response.text
    done = response.json()
    for field in ("spent", "received", "fee", "filled_size", "average_price", "fee_asset"):
        assert done[field] == quoted[field], field
    assert (done["from"], done["to"], done["amount"]) == (market.quote, market.base, "100.00")
    assert done["status"] == "filled" and done["settled"] is True
    # 100.00 less the largest taker fee (20 bps) leaves 99.80 for the book, which buys
    # 0.00199 (whole increments) at 50,000.00 = 99.50; its fee is 0.20 (19.9 cents, up).
    assert (done["received"], done["spent"], done["fee"]) == ("0.00199000", "99.70", "0.20")
    assert done["average_price"] == "50000.00"

    assert venue.balance(user.id, market.quote) == (200_00 - 99_70, 200_00 - 99_70)
    assert venue.balance(user.id, market.base) == (199_000, 199_000)
    # The maker received 99.50 less its 10 bps maker fee (0.10); both fees are the platform's.
    assert venue.balance(maker.id, market.quote) == (99_40, 99_40)
    assert venue.balance(maker.id, market.base) == (BTC - 199_000, BTC - 600_000)
    assert venue.fee_balance() - fees_before == 20 + 10
    order = venue.exchange.get_order(uuid.UUID(user.id), uuid.UUID(done["id"]))
    assert (order.type, order.side, order.stp) == ("market", "buy", "cn")


def test_selling_the_base_for_the_quote_walks_the_bids(venue):
    market = venue.market
    _bids(venue)
    user = signed_up_user(venue.client)
    venue.fund(user.id, 1 * BTC, market.base)
    quoted = user.get("/v1/exchange/convert/quote",
                      {"from": market.base, "to": market.quote, "amount": "0.002"}).json()
    response = _convert(venue, user, market.base, market.quote, "0.002")
    assert response.status_code == 201, response.text
    done = response.json()
    # 0.001 at 49,990.00 (49.99) + 0.001 at 49,900.00 (49.90); fees 0.10 + 0.10 (rounded up).
    assert (done["side"], done["spent"], done["filled_size"]) == ("sell", "0.00200000",
                                                                  "0.00200000")
    assert (done["fee"], done["received"]) == ("0.20", "99.69")
    assert done["average_price"] == "49945.00"
    for field in ("spent", "received", "fee", "filled_size"):
        assert done[field] == quoted[field], field
    assert venue.balance(user.id, market.base) == (BTC - 200_000, BTC - 200_000)
    assert venue.balance(user.id, market.quote) == (99_69, 99_69)


def test_a_convert_larger_than_the_book_fills_what_there_is_and_releases_the_rest(venue):
    market = venue.market
    _asks(venue)  # 0.006 in all, about 300.50
    user = signed_up_user(venue.client)
    venue.fund(user.id, 1_000_00, market.quote)
    quoted = user.get("/v1/exchange/convert/quote",
                      {"from": market.quote, "to": market.base, "amount": "1000.00"}).json()
    assert quoted["complete"] is False and quoted["filled_size"] == "0.00600000"
    done = _convert(venue, user, market.quote, market.base, "1000.00").json()
    assert done["status"] == "partially_filled" and done["done_reason"] == "unfilled"
    assert done["spent"] == quoted["spent"]
    spent = _minor(done["spent"])
    assert venue.balance(user.id, market.quote) == (1_000_00 - spent, 1_000_00 - spent)
    assert venue.get("/l1").json()["ask_price"] is None


def test_a_replay_returns_the_first_convert_and_another_body_is_refused(venue):
    market = venue.market
    _asks(venue)
    user = signed_up_user(venue.client)
    venue.fund(user.id, 500_00, market.quote)
    key = uuid.uuid4().hex
    first = _convert(venue, user, market.quote, market.base, "100.00", key=key)
    again = _convert(venue, user, market.quote, market.base, "100.00", key=key)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert venue.balance(user.id, market.quote)[0] == 500_00 - _minor(first.json()["spent"])
    other = _convert(venue, user, market.quote, market.base, "50.00", key=key)
    assert_problem(other, 409, "idempotency_key_reused")


def test_refusals_change_nothing(venue):
    market = venue.market
    user = signed_up_user(venue.client)
    venue.fund(user.id, 100_00, market.quote)
    venue.fund(user.id, 10_000, market.base)

    # No market between the two assets (nor from an asset into itself).
    assert_problem(_convert(venue, user, market.quote, "XYZ", "1.00"), 422, "no_market")
    assert_problem(_convert(venue, user, market.quote, market.quote, "1.00"), 422, "no_market")
    # Nothing on the other side of the book.
    assert_problem(_convert(venue, user, market.quote, market.base, "10.00"), 422,
                   "no_liquidity")
    _asks(venue)
    # More than the wallet holds.
    assert_problem(_convert(venue, user, market.quote, market.base, "100.01"), 422,
                   "insufficient_funds")
    # A sell off the size grid, or under the minimum size.
    assert_problem(_convert(venue, user, market.base, market.quote, "0.000015"), 422,
                   "invalid_size")
    assert_problem(_convert(venue, user, market.base, market.quote, "0.00001"), 422,
                   "size_too_small")
    # An amount with more decimals than the asset has, or not a decimal string.
    assert_problem(_convert(venue, user, market.quote, market.base, "1.001"), 422,
                   "invalid_amount")
    response = user.post("/v1/exchange/convert",
                         {"from": market.quote, "to": market.base, "amount": 10})
    assert_problem(response, 422, "invalid_amount")

    assert venue.balance(user.id, market.quote) == (100_00, 100_00)
    assert venue.balance(user.id, market.base) == (10_000, 10_000)
    assert venue.exchange.list_orders(uuid.UUID(user.id)) == []


def test_convert_needs_a_user_and_an_idempotency_key(venue):
    market = venue.market
    body = {"from": market.quote, "to": market.base, "amount": "1.00"}
    anonymous = venue.client.post("/v1/exchange/convert", json=body,
                                  headers={"Idempotency-Key": "k"})
    assert_problem(anonymous, 401, "unauthorized")
    user = signed_up_user(venue.client)
    keyless = venue.client.post("/v1/exchange/convert", json=body,
                                headers={"Authorization": f"Bearer {user.token}"})
    assert_problem(keyless, 422, "idempotency_key_required")
    quote = venue.client.get("/v1/exchange/convert/quote",
                             params={"from": market.quote, "to": market.base, "amount": "1.00"})
    assert_problem(quote, 401, "unauthorized")


def test_a_quote_stops_at_the_users_own_best_order(venue):
    market = venue.market
    user = signed_up_user(venue.client)
    venue.fund(user.id, 1 * BTC, market.base)
    venue.place(user.id, "sell", size=100_000, price=49_000_00)  # the user's own best ask
    _asks(venue)
    quoted = user.get("/v1/exchange/convert/quote",
                      {"from": market.quote, "to": market.base, "amount": "100.00"}).json()
    assert quoted["filled_size"] == "0.00000000" and quoted["complete"] is False
    assert quoted["average_price"] is None
