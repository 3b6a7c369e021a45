"""Settlement's pure rules: the T+N cutoff, a batch's totals, a refund's share of the fee."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacioli.payments.qr_payments import merchant_fee
from pacioli.payments.qr_refunds import fee_share_minor
from pacioli.payments.settlement import batch_totals, cutoff_for

NOON = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(("cycle_days", "cutoff"), [
    (0, NOON),
    (1, datetime(2026, 11, 24, tzinfo=UTC)),
    (2, datetime(2026, 11, 23, tzinfo=UTC)),
    (7, datetime(2026, 11, 18, tzinfo=UTC)),
])
def test_a_t_plus_n_cutoff_is_the_start_of_utc_day_today_minus_n_plus_one(cycle_days, cutoff):
    assert cutoff_for(NOON, cycle_days) == cutoff


def test_the_cutoff_follows_the_utc_day_whatever_the_callers_time_zone():
    lisbon_evening = datetime(2026, 11, 25, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert cutoff_for(lisbon_evening, 1) == datetime(2026, 11, 24, tzinfo=UTC)


def test_items_completed_on_day_d_are_due_exactly_from_day_d_plus_n():
    completed = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
    day_after = datetime(2026, 11, 21, tzinfo=UTC)
    for n in (1, 2, 3):
        assert completed >= cutoff_for(day_after + timedelta(days=n - 1) - timedelta(
            microseconds=1), n)
        assert completed < cutoff_for(day_after + timedelta(days=n - 1), n)


def test_totals_count_refunds_apart_from_payments():
    payments_and_a_refund = [(10_00, 6, 9_94), (5_00, 3, 4_97), (-2_00, -1, -1_99)]
    assert batch_totals(payments_and_a_refund) == {
        "gross_minor": 15_00, "fees_minor": 8, "refunds_minor": 2_00, "net_minor": 12_92,
        "item_count": 3,
    }


items = st.lists(
    st.tuples(st.integers(-10**12, 10**12), st.integers(-10**6, 10**6)).map(
        lambda pair: (pair[0], pair[1], pair[0] - pair[1])),
    max_size=30,
)


@given(items)
def test_gross_less_fees_less_refunds_is_always_the_sum_of_nets(batch):
    totals = batch_totals(batch)
    assert (totals["gross_minor"] - totals["fees_minor"] - totals["refunds_minor"]
            == totals["net_minor"] == sum(net for _, _, net in batch))
    assert totals["gross_minor"] >= 0 and totals["refunds_minor"] >= 0


@given(st.integers(1, 10**9), st.lists(st.integers(1, 10**8), min_size=1, max_size=10))
def test_partial_refunds_give_back_the_fee_at_most_once_and_exactly_when_all_is_refunded(
    amount, parts
):
    fee = merchant_fee(amount)
    refunded = returned = 0
    for part in parts:
        part = min(part, amount - refunded)
        if part == 0:
            break
        share = fee_share_minor(fee, amount, refunded + part) - returned
        assert 0 <= share <= part
        refunded, returned = refunded + part, returned + share
    assert returned <= fee
    if refunded == amount:
        assert returned == fee
