"""The capture split of an order and its reversal by refunds (commerce/order_split.py)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacioli.commerce.order_split import (
    LineMoney,
    Share,
    ShareKind,
    allocate_signed,
    line_revenue_split,
    order_shares,
    refund_shares,
    returned_goods_minor,
)
from pacioli.ledger.domain.errors import InvariantBroken

SUPPLIER = uuid.UUID(int=1)
RESELLER = uuid.UUID(int=2)
OTHER_RESELLER = uuid.UUID(int=3)


def line(quantity=1, supplier=1000, margin=0, reseller=None, tax=0, total=None) -> LineMoney:
    total = (supplier + margin) * quantity + tax if total is None else total
    return LineMoney(quantity, supplier, margin, reseller, tax, total)


def test_a_supplier_only_order_pays_goods_and_shipping_less_commission():
    shares = order_shares(SUPPLIER, [line(2, 1000, tax=180)], shipping_minor=499,
                          tax_payable_minor=180, rounding_minor=0, commission_bps=500)
    assert shares == (Share(ShareKind.SUPPLIER, SUPPLIER, 2000 + 499 - 100),
                      Share(ShareKind.COMMISSION, None, 100),
                      Share(ShareKind.TAX, None, 180))


def test_reseller_margins_are_gathered_per_reseller_and_the_discount_shared_in_proportion():
    lines = [line(1, 900, 100, RESELLER, total=900),  # 10% off: both bear it
             line(1, 500, 0, None),
             line(2, 300, 50, OTHER_RESELLER)]
    shares = order_shares(SUPPLIER, lines, shipping_minor=0, tax_payable_minor=0,
                          rounding_minor=0, commission_bps=0)
    assert shares == (Share(ShareKind.SUPPLIER, SUPPLIER, 810 + 500 + 600),
                      Share(ShareKind.RESELLER, RESELLER, 90),
                      Share(ShareKind.RESELLER, OTHER_RESELLER, 100))


def test_the_rounding_remainder_is_a_signed_share_and_the_whole_adds_up():
    lines = [line(1, 333, tax=33), line(1, 333, tax=33), line(1, 333, tax=33)]
    shares = order_shares(SUPPLIER, lines, shipping_minor=0, tax_payable_minor=100,
                          rounding_minor=-1, commission_bps=0)
    assert Share(ShareKind.ROUNDING, None, -1) in shares
    assert sum(s.amount_minor for s in shares) == sum(x.total_minor for x in lines)


def test_tax_owed_and_rounding_must_make_up_the_lines_tax():
    with pytest.raises(InvariantBroken):
        order_shares(SUPPLIER, [line(tax=10)], shipping_minor=0, tax_payable_minor=9,
                     rounding_minor=0, commission_bps=0)


def test_a_line_without_a_reseller_is_all_the_supplier_s():
    assert line_revenue_split(line(3, 100, 0, None)) == (300, 0)


def test_allocate_signed_gives_every_weight_back_when_the_total_is_their_sum():
    assert allocate_signed(100, [90, 11, -1]) == [90, 11, -1]
    assert sum(allocate_signed(37, [90, 11, -1])) == 37


def test_a_full_refund_reverses_every_share_exactly():
    shares = (Share(ShareKind.SUPPLIER, SUPPLIER, 2399), Share(ShareKind.COMMISSION, None, 100),
              Share(ShareKind.TAX, None, 180), Share(ShareKind.ROUNDING, None, -1))
    assert refund_shares(shares, refunded_before_minor=0, amount_minor=2678) == shares


def test_a_refund_beyond_what_is_left_is_a_bug_the_caller_must_prevent():
    shares = (Share(ShareKind.SUPPLIER, SUPPLIER, 100),)
    with pytest.raises(InvariantBroken):
        refund_shares(shares, refunded_before_minor=60, amount_minor=41)


share_amounts = st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=5)


@given(share_amounts, st.integers(min_value=-3, max_value=3), st.data())
def test_partial_refunds_in_any_steps_add_up_to_the_split(amounts, rounding, data):
    # Distinct owners tell the shares apart.
    shares = [Share(ShareKind.SUPPLIER, uuid.UUID(int=i), a) for i, a in enumerate(amounts)]
    shares.append(Share(ShareKind.ROUNDING, None, rounding))
    total = sum(s.amount_minor for s in shares)
    if total <= 0:
        return
    taken = {(s.kind, s.owner_id): 0 for s in shares}
    refunded = 0
    while refunded < total:
        amount = data.draw(st.integers(min_value=1, max_value=total - refunded))
        parts = refund_shares(shares, refunded_before_minor=refunded, amount_minor=amount)
        assert sum(p.amount_minor for p in parts) == amount
        for part in parts:
            taken[(part.kind, part.owner_id)] += part.amount_minor
        refunded += amount
        for share in shares:  # never more than a share, never below nothing (by sign)
            so_far = taken[(share.kind, share.owner_id)]
            low, high = sorted((0, share.amount_minor))
            assert low <= so_far <= high
    assert taken == {(s.kind, s.owner_id): s.amount_minor for s in shares}


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=50),
       st.data())
def test_returning_every_unit_in_any_steps_gives_back_the_line_total(total, quantity, data):
    returned, worth = 0, 0
    while returned < quantity:
        step = data.draw(st.integers(min_value=1, max_value=quantity - returned))
        worth += returned_goods_minor(total, quantity, returned, step)
        returned += step
    assert worth == total
