"""The market's grid and quote arithmetic."""

import pytest

from pacioli.ledger.domain.errors import InvariantBroken
from pacioli.matching import BTC_USD, DEFAULT_MARKETS, ETH_BTC, ETH_USD, Market


def test_quote_amount_rounds_up_to_a_whole_minor_unit():
    # 0.00001 BTC at 50,000.01 USD/BTC is 0.5000001 USD: the buyer pays 51 cents.
    assert BTC_USD.quote_amount(5000001, 1000) == 51
    # Exact amounts are not rounded.
    assert BTC_USD.quote_amount(5000000, 1000) == 50
    assert BTC_USD.quote_amount(5000000, 100_000_000) == 5000000


def test_eth_btc_quote_amount_is_in_satoshis():
    # 0.001 ETH at 0.05 BTC/ETH is 0.00005 BTC = 5000 sat.
    assert ETH_BTC.quote_amount(5_000_000, 10**15) == 5000


def test_fee_rounds_up():
    assert BTC_USD.fee(1001, 20) == 3  # 2.002 cents
    assert BTC_USD.fee(1000, 20) == 2
    assert BTC_USD.max_taker_fee(10_000) == 20


def test_size_for_funds_is_the_largest_on_grid_size_the_funds_pay_for():
    funds = 1000  # 10.00 USD at 50,000.00 USD/BTC buys 0.0002 BTC exactly
    size = BTC_USD.size_for_funds(5000000, funds)
    assert size == 20000
    assert BTC_USD.quote_amount(5000000, size) <= funds
    # One cent less no longer pays for the last increment.
    assert BTC_USD.size_for_funds(5000000, 999) == 19000


def test_grid_checks():
    assert BTC_USD.price_on_grid(1)
    assert not BTC_USD.price_on_grid(0)
    assert not BTC_USD.price_on_grid(1.5)
    assert ETH_USD.size_on_grid(10**13)
    assert not ETH_USD.size_on_grid(10**13 + 1)
    assert not ETH_USD.size_on_grid(-(10**13))


def test_default_markets_are_the_three_pairs():
    assert [m.symbol for m in DEFAULT_MARKETS] == ["BTC-USD", "ETH-USD", "ETH-BTC"]


def test_a_minimum_off_the_size_grid_is_a_bug():
    with pytest.raises(InvariantBroken):
        Market("A-B", "A", "B", 8, 2, tick=1, size_increment=1000, min_size=1500)
